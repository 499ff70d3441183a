"""The small history the browser tests serve: a platform account holding one issuance; and the
citizen of the /me tests, whose rides the in-process page tests log too."""

from __future__ import annotations

import base64
import sys
from pathlib import Path
from typing import Any, NamedTuple

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "api"))  # served_registry, shared with the API tests
from served_registry import Cast, Served, root_signer  # noqa: E402

from format2_records import metro_record  # noqa: E402
from service.client import RegistryClient  # noqa: E402

PLATFORM = "wuhan-platform"
CITIZEN = "p-citizen"  # the person id the identity hub derives the daily pseudonyms from
CITIZEN_SALT = bytes(range(100, 116))


class Ride(NamedTuple):
    activity_id: str
    occurred_at: str
    distance_m: int
    before_g: int  # what the citizen was credited earlier that day (section 7.2's daily cap)


# Two metro rides on 2026-01-06 (the second clipped by the daily cap of 3000 g: 3136 by the
# formula, 967 before it) for the issued batch, one on 2026-01-07 for a batch not issued yet.
CITIZEN_RIDES = (Ride("me-1", "2026-01-06T01:02:03.000000Z", 12345, 0), Ride("me-2", "2026-01-06T09:00:00.000000Z", 40000, 967),
                 Ride("me-3", "2026-01-07T02:00:00.000000Z", 5000, 0))
ISSUED_RIDES = 2
BATCH_PERIOD = ("2026-01-01", "2026-01-31")


def citizen_records() -> list[dict[str, Any]]:
    return [metro_record(ride.activity_id, CITIZEN, ride.occurred_at, ride.distance_m, before_g=ride.before_g,
                         salt=CITIZEN_SALT) for ride in CITIZEN_RIDES]


def citizen_opening(activity_id: str = "me-1") -> dict[str, Any]:
    """The opening the platform gave the citizen for one of their rides (spec 7.4)."""
    ride = next(ride for ride in CITIZEN_RIDES if ride.activity_id == activity_id)
    return {"fields": {"entry_station": "L2-07", "exit_station": "L4-12", "occurred_at": ride.occurred_at},
            "salt": base64.b64encode(CITIZEN_SALT).decode()}


def platform_with_issuance(server: Served, amount_g: int = 2_500_000) -> RegistryClient:
    """Keys, the platform account, HB-GT-METRO and an issuance of amount_g to the platform; the client.
    In a format-2 registry also the reviewers, and the citizen's rides: two in a batch issued as
    iss-me, one in a batch not issued yet."""
    client = RegistryClient(server.url, trust=server.trust())
    cast = Cast(client)
    if client.log_format == 2:
        cast.grant_reviewers(root_signer(server.directory))
    cast.register(cast.wuhan, ["platform"])
    cast.open(PLATFORM, "platform", [cast.wuhan])
    cast.methodology()
    cast.issue("iss-1", PLATFORM, amount_g)
    if client.log_format == 2:
        records = citizen_records()
        for batch_id, rides in (("wh-me", records[:ISSUED_RIDES]), ("wh-me-2", records[ISSUED_RIDES:])):
            client.upload_activity_batch(cast.wuhan.signer, {
                "batch_id": batch_id, "platform": PLATFORM, "methodology_id": "HB-GT-METRO", "methodology_version": 1,
                "period_start": BATCH_PERIOD[0], "period_end": BATCH_PERIOD[1]}, rides, prove=False)
        cast.issue("iss-me", PLATFORM, sum(r["reduction_g"] for r in records[:ISSUED_RIDES]), batches=("wh-me",))
    return client
