"""Format-2 activity records for tests, built the way spec section 7.4 recommends: the daily
pseudonym from a hub key, the fingerprint keyed by the scheme secret, private_sha256 over an
opening with a fresh salt, and reduction_g by section 7.2 (ledger.definitions)."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import os
from typing import Any

from ledger.canonical import jcs
from ledger.definitions import compile_definition
from quantify.methodology import load_shipped, register_body

HUB_KEY = bytes(range(32))            # the identity hub's key of the spec's example
FINGERPRINT_KEY = bytes(range(32, 64))  # the scheme-wide fingerprint secret of the spec's example
METRO = load_shipped().get("HB-GT-METRO")
METRO_PARAMS = register_body(METRO)["params"]  # the spec's example definition: distance_m public, stations not
METRO_DEFINITION = compile_definition("HB-GT-METRO", 1, METRO_PARAMS)


def beijing_day(occurred_at: str) -> str:
    moment = dt.datetime.strptime(occurred_at, "%Y-%m-%dT%H:%M:%S.%fZ")
    return (moment + dt.timedelta(hours=8)).date().isoformat()


def daily_subject(person: str, occurred_on: str) -> str:
    return hmac.new(HUB_KEY, f"{person}|{occurred_on}".encode(), hashlib.sha256).digest()[:16].hex()


def metro_record(activity_id: str, person: str, occurred_at: str, distance_m: int, *, before_g: int = 0,
                 reduction_g: int | None = None, entry: str = "L2-07", exit_: str = "L4-12",
                 salt: bytes | None = None) -> dict[str, Any]:
    """A HB-GT-METRO record; reduction_g by section 7.2 after `before_g` credited that day unless given."""
    occurred_on = beijing_day(occurred_at)
    subject = daily_subject(person, occurred_on)
    stations = {"entry_station": entry, "exit_station": exit_}
    opening = {"fields": {**stations, "occurred_at": occurred_at},
               "salt": base64.b64encode(os.urandom(16) if salt is None else salt).decode()}
    fingerprint = hmac.new(FINGERPRINT_KEY, b"puhui-fingerprint/v2\n" + jcs({
        "fields": stations, "methodology_id": "HB-GT-METRO", "subject": subject, "time": occurred_at[:16] + "Z"}),
        hashlib.sha256).hexdigest()
    inputs = {"distance_m": distance_m}
    if reduction_g is None:
        reduction_g = METRO_DEFINITION.reduction_g(inputs, before_g)
    return {"activity_id": activity_id, "fingerprint": fingerprint, "inputs": inputs, "occurred_on": occurred_on,
            "private_sha256": hashlib.sha256(jcs(opening)).hexdigest(), "reduction_g": reduction_g,
            "subject": subject}
