"""Event bodies of spec section 6: exactly the listed fields, each of its type.

The field checks they are built from are in ledger/field_checks.py. Every failure is `SCHEMA`.
"""

from __future__ import annotations

import base64
import datetime as dt
from typing import Any

from ledger.errors import Rejected
# IDENT and the MAX_ limits are read through this module by api/models.py (which describes each
# field check in the OpenAPI document), as are the choices by the API and key_id_of by callers.
from ledger.field_checks import (
    ACCOUNT_KINDS, IDENT, MAX_CONTROLLERS, MAX_TEXT_CHARS, PURPOSES, ROLES, SECTORS, SUBJECT_KINDS, TIME, Check,
    amount_g, boolean, controllers, date, fail, fields, hex64, identifier, integer, is_int, json_object, key_id,
    key_id_of, list_of, nullable, one_of, origin, public_key, region, request_id, rules, signature, text, year,
)

# A registry limit (the spec sets none), shared by the server's body reader and the client.
MAX_BATCH_EVENTS = 1_000  # signed events in one submission of a batch (POST /v1/events:batch)

BODIES: dict[str, dict[str, Check]] = {
    "registry.genesis": {"origin": origin, "name": text, "rules": rules},
    "registry.rules": {"rules": rules},
    "key.register": {"key_id": key_id, "public_key": public_key,
                     "roles": list_of(one_of(ROLES), min_items=0, max_items=3, unique=True), "label": text},
    "key.revoke": {"key_id": key_id, "reason": text},
    "account.open": {"account_id": identifier, "kind": one_of(ACCOUNT_KINDS), "name": text, "region": region,
                     "controllers": controllers, "platform": nullable(identifier)},
    "account.controllers": {"account_id": identifier, "controllers": controllers},
    "methodology.register": {"methodology_id": identifier, "version": integer(1, 1_000_000), "title": text,
                             "sector": one_of(SECTORS), "params": json_object, "offset_eligible": boolean},
    "methodology.eligibility": {"methodology_id": identifier, "offset_eligible": boolean},
    "activity.batch": {"batch_id": identifier, "platform": identifier, "methodology_id": identifier,
                       "methodology_version": integer(1, 1_000_000), "period_start": date, "period_end": date,
                       "count": integer(1), "total_g": integer(0), "root": hex64},
    "issuance": {"issuance_id": identifier, "account": identifier, "methodology_id": identifier, "vintage": year,
                 "region": region, "amount_g": amount_g, "batches": list_of(identifier, min_items=0),
                 "evidence": nullable(hex64)},
    "transfer": {"transfer_id": identifier, "from": identifier, "to": identifier, "amount_g": amount_g},
    "retirement": {"retirement_id": identifier, "account": identifier, "amount_g": amount_g,
                   "purpose": one_of(PURPOSES), "beneficiary": text},
    "cancellation": {"cancellation_id": identifier, "account": identifier, "amount_g": amount_g, "reason": text},
    "offset.surrender": {"surrender_id": identifier, "entity": identifier, "compliance_year": year,
                         "allocation_g": integer(0), "retirements": list_of(identifier, min_items=1)},
    "neutrality.claim": {"claim_id": identifier, "claimant": identifier,
                         "subject": fields({"kind": one_of(SUBJECT_KINDS), "name": text}),
                         "period_start": date, "period_end": date, "footprint_g": integer(1),
                         "retirements": list_of(identifier, min_items=1)},
}
for _spec in BODIES.values():
    _spec["request_id"] = request_id
EVENT_TYPES = tuple(BODIES)
TYPES_WITH_EFFECTS = ("issuance", "transfer", "retirement", "cancellation")
_BODY_CHECKS = {event_type: fields(spec) for event_type, spec in BODIES.items()}

# The id field each type introduces, for DUPLICATE_ID and for naming events in messages.
ID_FIELD = {
    "account.open": "account_id", "activity.batch": "batch_id", "issuance": "issuance_id",
    "transfer": "transfer_id", "retirement": "retirement_id", "cancellation": "cancellation_id",
    "offset.surrender": "surrender_id", "neutrality.claim": "claim_id",
}


_AUTH = fields({"key": key_id, "sig": signature})


def check_event_type(event_type: Any) -> str:
    if type(event_type) is not str or event_type not in _BODY_CHECKS:  # {} or [] would not hash
        raise Rejected("SCHEMA", f"unknown event type {event_type!r:.80}")
    return event_type


def check_body(event_type: str, body: Any) -> None:
    _BODY_CHECKS[check_event_type(event_type)]("", body)
    if event_type in ("activity.batch", "neutrality.claim") and body["period_start"] > body["period_end"]:
        fail("period_start", "must not be after period_end")
    if event_type == "transfer" and body["from"] == body["to"]:
        fail("to", "must differ from `from`")
    if event_type == "key.register":
        derived = key_id_of(base64.b64decode(body["public_key"]))
        if derived != body["key_id"]:
            fail("key_id", f"must be the key id of public_key ({derived})")


def check_submission(event: Any) -> tuple[str, dict[str, Any], dict[str, str]]:
    """A client's signed event: {"type", "body", "auth": {"key", "sig"}} and nothing else."""
    if not isinstance(event, dict):
        fail("event", "must be a JSON object")
    extra = sorted(set(event) - {"type", "body", "auth"})
    missing = sorted({"type", "body", "auth"} - set(event))
    if missing or extra:
        fail("event", f"must have exactly type, body, auth (missing {missing}, unknown {extra})")
    event_type = check_event_type(event["type"])
    _AUTH("auth", event["auth"])
    check_body(event_type, event["body"])
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
