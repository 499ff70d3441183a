"""The envelope of an event (type, body, auth; a leaf's effects) and its body checked by type.

Each body's fields and rules across fields live with its type (ledger/events/); this module
dispatches on the type. Every failure is `SCHEMA`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from ledger.errors import Rejected
from ledger.events import TYPES
from ledger.field_checks import TIME, Check, fail, fields, is_int, key_id, signature

# Read through this module by its callers: api/models.py describes each field check in the OpenAPI
# document by identity; api/, cli/, service/ and ledger/registry.py take choices and key_id_of here.
from ledger.field_checks import (  # noqa: F401  (re-exported)
    ACCOUNT_KINDS, IDENT, MAX_CONTROLLERS, MAX_TEXT_CHARS, PURPOSES, ROLES, SECTORS, SUBJECT_KINDS, amount_g, boolean,
    controllers, date, hex64, identifier, json_object, key_id_of, origin, public_key, region, request_id, rules, text,
    year,
)

# A registry limit (the spec sets none), shared by the server's body reader and the client.
MAX_BATCH_EVENTS = 1_000  # signed events in one submission of a batch (POST /v1/events:batch)

LOG_FORMATS = (1, 2)  # spec "Formats": a genesis without `format` starts format 1, "format": 2 format 2
BODIES: dict[int, dict[str, dict[str, Check]]] = {
    log_format: {name: event.bodies[log_format] for name, event in TYPES.items() if log_format in event.formats}
    for log_format in LOG_FORMATS}
EVENT_TYPES = tuple(TYPES)
TYPES_WITH_EFFECTS = tuple(name for name, event in TYPES.items() if event.has_effects)
# The id field each type introduces, for naming events in messages and receipts.
ID_FIELD = {name: event.new_id.field for name, event in TYPES.items() if event.new_id is not None}


_AUTH = fields({"key": key_id, "sig": signature})


def check_event_type(event_type: Any, log_format: int) -> str:
    if type(event_type) is not str or event_type not in TYPES:  # {} or [] would not hash
        raise Rejected("SCHEMA", f"unknown event type {event_type!r:.80}")
    if log_format not in TYPES[event_type].formats:
        raise Rejected("SCHEMA", f"unknown event type {event_type} in a format-{log_format} log "
                                 f"(it is one of format {', '.join(map(str, TYPES[event_type].formats))})")
    return event_type


def check_body(event_type: str, body: Any, log_format: int) -> None:
    """SCHEMA unless `body` is a valid body of this type in a log of this format (a genesis body
    says its own format)."""
    assert log_format in LOG_FORMATS, log_format
    event = TYPES[check_event_type(event_type, log_format)]
    event.check_fields(log_format, body)
    event.check_across_fields(body)


def check_submission(event: Any, log_format: int) -> tuple[str, dict[str, Any], dict[str, str]]:
    """A client's signed event: {"type", "body", "auth": {"key", "sig"}} and nothing else."""
    if not isinstance(event, dict):
        fail("event", "must be a JSON object")
    extra = sorted(set(event) - {"type", "body", "auth"})
    missing = sorted({"type", "body", "auth"} - set(event))
    if missing or extra:
        wrong = ([f"missing field(s) {', '.join(missing)}"] if missing else []) + (
            [f"unknown field(s) {', '.join(extra)}"] if extra else [])
        fail("event", f"must have exactly type, body, auth ({'; '.join(wrong)})")
    event_type = check_event_type(event["type"], log_format)
    _AUTH("auth", event["auth"])
    check_body(event_type, event["body"], log_format)
    return event_type, event["body"], event["auth"]


def check_effects(event_type: str, effects: Any) -> list[list[int]]:
    """The `effects` of a leaf: {"serials": [[start, end], ...]} sorted, disjoint, merged."""
    if not isinstance(effects, dict) or set(effects) != {"serials"} or not isinstance(effects["serials"], list):
        fail("effects", 'must be {"serials": [[START, END], ...]}')
    serials = effects["serials"]
    for index, pair in enumerate(serials):
        if (not isinstance(pair, list) or len(pair) != 2 or not all(is_int(x) and x >= 0 for x in pair)):
            fail(f"effects.serials[{index}]", "must be [START, END] of non-negative integers")
    return serials


def parse_time(value: Any) -> dt.datetime:
    if not isinstance(value, str) or not TIME.fullmatch(value):
        raise ValueError(f"time {value!r:.40} is not YYYY-MM-DDTHH:MM:SS.ffffffZ")
    return dt.datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.timezone.utc)


def format_time(moment: dt.datetime) -> str:
    return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
