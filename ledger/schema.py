"""Event bodies of spec section 6: exactly the listed fields, each of its type.

Every check here needs the body alone (no state), so every failure is `SCHEMA`. The registry's
own limits (string lengths, list sizes) are stricter than the spec and are marked as such.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import re
from typing import Any, Callable

from ledger.errors import Rejected

IDENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
KEY_ID = re.compile(r"[0-9a-f]{16}")
HEX64 = re.compile(r"[0-9a-f]{64}")
REGION = re.compile(r"[0-9]{6}")
REGION_PREFIX = re.compile(r"[0-9]{1,6}")
DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z")

ROLES = ("admin", "platform", "ets")
ACCOUNT_KINDS = ("individual", "enterprise", "organization", "platform", "compliance_entity")
SECTORS = ("green_travel", "green_consumption", "resource_saving", "energy_substitution", "other")
PURPOSES = ("ets_offset", "carbon_neutrality", "eco_compensation", "voluntary")
SUBJECT_KINDS = ("organization", "product", "event", "individual", "building")

# Registry limits (the spec sets none): keep every stored row and every replay bounded.
MAX_TEXT_CHARS = 256
MAX_LIST_ITEMS = 1000
MAX_BATCH_EVENTS = 1_000  # signed events in one submission of a batch (POST /v1/events:batch)
MAX_CONTROLLERS = 16
MAX_OFFSET_REGIONS = 64
MAX_VINTAGE_YEARS = 100

Check = Callable[[str, Any], None]


def key_id_of(public_key: bytes) -> str:
    """Spec section 2: hex of the first 8 bytes of SHA-256 of the public key."""
    return hashlib.sha256(public_key).digest()[:8].hex()


def _fail(field: str, why: str) -> None:
    raise Rejected("SCHEMA", f"{field}: {why}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def integer(low: int, high: int = 2**53 - 1) -> Check:
    def check(field: str, value: Any) -> None:
        if not _is_int(value):
            _fail(field, f"must be an integer, got {type(value).__name__}")
        if not low <= value <= high:
            _fail(field, f"must be in {low}..{high}, got {value}")
    return check


def boolean(field: str, value: Any) -> None:
    if not isinstance(value, bool):
        _fail(field, "must be true or false")


def matching(pattern: re.Pattern[str], what: str) -> Check:
    def check(field: str, value: Any) -> None:
        if not isinstance(value, str) or not pattern.fullmatch(value):
            _fail(field, f"must be {what}, got {value!r:.80}")
    return check


identifier = matching(IDENT, "an identifier ^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
key_id = matching(KEY_ID, "a key id (16 lowercase hex)")
hex64 = matching(HEX64, "64 lowercase hex characters")
region = matching(REGION, "a 6-digit region code (GB/T 2260)")


def text(field: str, value: Any) -> None:
    if not isinstance(value, str) or not 1 <= len(value) <= MAX_TEXT_CHARS:
        _fail(field, f"must be a string of 1 to {MAX_TEXT_CHARS} characters")


def request_id(field: str, value: Any) -> None:
    if not isinstance(value, str) or not 1 <= len(value) <= 128:
        _fail(field, "must be a string of 1 to 128 characters")


def date(field: str, value: Any) -> None:
    if not isinstance(value, str) or not DATE.fullmatch(value):
        _fail(field, "must be a date YYYY-MM-DD")
    try:
        dt.date.fromisoformat(value)
    except ValueError:
        _fail(field, f"{value} is not a calendar date")


def one_of(choices: tuple[str, ...]) -> Check:
    def check(field: str, value: Any) -> None:
        if value not in choices:
            _fail(field, f"must be one of {', '.join(choices)}, got {value!r:.80}")
    return check


def nullable(inner: Check) -> Check:
    def check(field: str, value: Any) -> None:
        if value is not None:
            inner(field, value)
    return check


def list_of(inner: Check, *, min_items: int, max_items: int = MAX_LIST_ITEMS, unique: bool = False) -> Check:
    def check(field: str, value: Any) -> None:
        if not isinstance(value, list):
            _fail(field, "must be a list")
        if not min_items <= len(value) <= max_items:
            _fail(field, f"must hold {min_items} to {max_items} items, got {len(value)}")
        for index, item in enumerate(value):
            inner(f"{field}[{index}]", item)
        if unique and len(set(value)) != len(value):
            _fail(field, "must not repeat an item")
    return check


def _base64_of(size: int, what: str) -> Check:
    def check(field: str, value: Any) -> None:
        if not isinstance(value, str):
            _fail(field, f"must be base64 of {what}")
        try:
            raw = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            _fail(field, "is not standard base64 with padding")
        if len(raw) != size or base64.b64encode(raw).decode() != value:
            _fail(field, f"must be canonical base64 of exactly {size} bytes ({what})")
    return check


public_key = _base64_of(32, "a 32-byte Ed25519 public key")
signature = _base64_of(64, "a 64-byte Ed25519 signature")


def json_object(field: str, value: Any) -> None:
    if not isinstance(value, dict):
        _fail(field, "must be a JSON object")


def fields(spec: dict[str, Check]) -> Check:
    """An object with exactly these fields."""
    def check(field: str, value: Any) -> None:
        if not isinstance(value, dict):
            _fail(field, "must be a JSON object")
        missing = sorted(set(spec) - set(value))
        extra = sorted(set(value) - set(spec))
        if missing:
            _fail(field, f"missing field(s) {', '.join(missing)}")
        if extra:
            _fail(field, f"unknown field(s) {', '.join(extra)}")
        for name, inner in spec.items():
            inner(f"{field}.{name}" if field else name, value[name])
    return check


rules = fields({
    "offset_cap_ppm": integer(0, 1_000_000),
    "offset_vintage_years": integer(0, MAX_VINTAGE_YEARS),
    "offset_regions": list_of(matching(REGION_PREFIX, "a region prefix of 1 to 6 digits"),
                              min_items=0, max_items=MAX_OFFSET_REGIONS, unique=True),
})
controllers = list_of(key_id, min_items=1, max_items=MAX_CONTROLLERS, unique=True)
amount_g = integer(1)
year = integer(1900, 9999)


def origin(field: str, value: Any) -> None:
    # A C2SP note key name: no whitespace and no '+', which would break the verifier key string.
    if not isinstance(value, str) or not 1 <= len(value) <= 255 or any(c.isspace() or c == "+" for c in value):
        _fail(field, "must be 1 to 255 characters without spaces or '+'")


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
        _fail("period_start", "must not be after period_end")
    if event_type == "transfer" and body["from"] == body["to"]:
        _fail("to", "must differ from `from`")
    if event_type == "key.register":
        derived = key_id_of(base64.b64decode(body["public_key"]))
        if derived != body["key_id"]:
            _fail("key_id", f"must be the key id of public_key ({derived})")


def check_submission(event: Any) -> tuple[str, dict[str, Any], dict[str, str]]:
    """A client's signed event: {"type", "body", "auth": {"key", "sig"}} and nothing else."""
    if not isinstance(event, dict):
        _fail("event", "must be a JSON object")
    extra = sorted(set(event) - {"type", "body", "auth"})
    missing = sorted({"type", "body", "auth"} - set(event))
    if missing or extra:
        _fail("event", f"must have exactly type, body, auth (missing {missing}, unknown {extra})")
    event_type = check_event_type(event["type"])
    _AUTH("auth", event["auth"])
    check_body(event_type, event["body"])
    return event_type, event["body"], event["auth"]


def check_effects(event_type: str, effects: Any) -> list[list[int]]:
    """The `effects` of a leaf: {"serials": [[start, end], ...]} sorted, disjoint, merged."""
    if not isinstance(effects, dict) or set(effects) != {"serials"} or not isinstance(effects["serials"], list):
        _fail("effects", 'must be {"serials": [[START, END], ...]}')
    serials = effects["serials"]
    for index, pair in enumerate(serials):
        if (not isinstance(pair, list) or len(pair) != 2 or not all(_is_int(x) and x >= 0 for x in pair)):
            _fail(f"effects.serials[{index}]", "must be [START, END] of non-negative integers")
    return serials


def parse_time(value: Any) -> dt.datetime:
    if not isinstance(value, str) or not TIME.fullmatch(value):
        raise ValueError(f"time {value!r:.40} is not YYYY-MM-DDTHH:MM:SS.ffffffZ")
    return dt.datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.timezone.utc)


def format_time(moment: dt.datetime) -> str:
    return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
