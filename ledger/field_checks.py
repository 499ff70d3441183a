"""The field checks event bodies are built from (spec section 6): patterns, choices, limits.

Every check needs its value alone (no state), so every failure is `SCHEMA`. The registry's own
limits (string lengths, list sizes) are stricter than the spec and are marked as such. Each event
type (ledger/events/) composes its body from these; ledger/schema.py dispatches on the type.
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
# format 2: a validation body (reviews batches and evidence) and a methodology expert, each a role alone
SOLE_ROLES = ("validator", "expert")
ROLES_V2 = ROLES + SOLE_ROLES
VERDICTS = ("approved", "rejected")
ACCOUNT_KINDS = ("individual", "enterprise", "organization", "platform", "compliance_entity")
SECTORS = ("green_travel", "green_consumption", "resource_saving", "energy_substitution", "other")
PURPOSES = ("ets_offset", "carbon_neutrality", "eco_compensation", "voluntary")
SUBJECT_KINDS = ("organization", "product", "event", "individual", "building")

# Registry limits (the spec sets none): keep every stored row and every replay bounded.
MAX_TEXT_CHARS = 256
MAX_LIST_ITEMS = 1000
MAX_CONTROLLERS = 16
MAX_OFFSET_REGIONS = 64
MAX_VINTAGE_YEARS = 100

Check = Callable[[str, Any], None]


def key_id_of(public_key: bytes) -> str:
    """Spec section 2: hex of the first 8 bytes of SHA-256 of the public key."""
    return hashlib.sha256(public_key).digest()[:8].hex()


def fail(field: str, why: str) -> None:
    """SCHEMA at a field's path; the empty path is the checked object itself (an event's or a
    request's body), named so the message never starts with a bare colon."""
    raise Rejected("SCHEMA", f"{field or 'the body'}: {why}")


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def integer(low: int, high: int = 2**53 - 1) -> Check:
    def check(field: str, value: Any) -> None:
        if not is_int(value):
            fail(field, f"must be an integer, got {type(value).__name__}")
        if not low <= value <= high:
            fail(field, f"must be in {low}..{high}, got {value}")
    return check


def boolean(field: str, value: Any) -> None:
    if not isinstance(value, bool):
        fail(field, "must be true or false")


def matching(pattern: re.Pattern[str], what: str) -> Check:
    def check(field: str, value: Any) -> None:
        if not isinstance(value, str) or not pattern.fullmatch(value):
            fail(field, f"must be {what}, got {value!r:.80}")
    return check


identifier = matching(IDENT, "an identifier ^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
key_id = matching(KEY_ID, "a key id (16 lowercase hex)")
hex64 = matching(HEX64, "64 lowercase hex characters")
region = matching(REGION, "a 6-digit region code (GB/T 2260)")


def text(field: str, value: Any) -> None:
    if not isinstance(value, str) or not 1 <= len(value) <= MAX_TEXT_CHARS:
        fail(field, f"must be a string of 1 to {MAX_TEXT_CHARS} characters")


def request_id(field: str, value: Any) -> None:
    if not isinstance(value, str) or not 1 <= len(value) <= 128:
        fail(field, "must be a string of 1 to 128 characters")


def date(field: str, value: Any) -> None:
    if not isinstance(value, str) or not DATE.fullmatch(value):
        fail(field, "must be a date YYYY-MM-DD")
    try:
        dt.date.fromisoformat(value)
    except ValueError:
        fail(field, f"{value} is not a calendar date")


def one_of(choices: tuple[str, ...]) -> Check:
    def check(field: str, value: Any) -> None:
        if value not in choices:
            fail(field, f"must be one of {', '.join(choices)}, got {value!r:.80}")
    return check


def nullable(inner: Check) -> Check:
    def check(field: str, value: Any) -> None:
        if value is not None:
            inner(field, value)
    return check


def list_of(inner: Check, *, min_items: int, max_items: int = MAX_LIST_ITEMS, unique: bool = False) -> Check:
    def check(field: str, value: Any) -> None:
        if not isinstance(value, list):
            fail(field, "must be a list")
        if not min_items <= len(value) <= max_items:
            fail(field, f"must hold {min_items} to {max_items} items, got {len(value)}")
        for index, item in enumerate(value):
            inner(f"{field}[{index}]", item)
        if unique and len(set(value)) != len(value):
            fail(field, "must not repeat an item")
    return check


def _base64_of(size: int, what: str) -> Check:
    def check(field: str, value: Any) -> None:
        if not isinstance(value, str):
            fail(field, f"must be base64 of {what}")
        try:
            raw = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            fail(field, "is not standard base64 with padding")
        if len(raw) != size or base64.b64encode(raw).decode() != value:
            fail(field, f"must be canonical base64 of exactly {size} bytes ({what})")
    return check


public_key = _base64_of(32, "a 32-byte Ed25519 public key")
signature = _base64_of(64, "a 64-byte Ed25519 signature")


def json_object(field: str, value: Any) -> None:
    if not isinstance(value, dict):
        fail(field, "must be a JSON object")


def fields(spec: dict[str, Check]) -> Check:
    """An object with exactly these fields."""
    def check(field: str, value: Any) -> None:
        if not isinstance(value, dict):
            fail(field, "must be a JSON object")
        missing = sorted(set(spec) - set(value))
        extra = sorted(set(value) - set(spec))
        if missing:
            fail(field, f"missing field(s) {', '.join(missing)}")
        if extra:
            fail(field, f"unknown field(s) {', '.join(extra)}")
        for name, inner in spec.items():
            inner(f"{field}.{name}" if field else name, value[name])
    return check


_RULES_V1: dict[str, Check] = {
    "offset_cap_ppm": integer(0, 1_000_000),
    "offset_vintage_years": integer(0, MAX_VINTAGE_YEARS),
    "offset_regions": list_of(matching(REGION_PREFIX, "a region prefix of 1 to 6 digits"),
                              min_items=0, max_items=MAX_OFFSET_REGIONS, unique=True),
}
MAX_REVIEW_QUORUM = 32  # a registry limit: reviews needed for one issuance or one eligibility
rules = fields(_RULES_V1)
# format 2: the reviews an issuance and turning eligibility on need (spec section 6, Reviews)
rules_v2 = fields({**_RULES_V1, "review_quorum": fields({"issuance": integer(0, MAX_REVIEW_QUORUM),
                                                          "eligibility": integer(0, MAX_REVIEW_QUORUM)})})


def format_2(field: str, value: Any) -> None:
    """A genesis `format`: 2 is the only one written (a genesis without it starts a format-1 log)."""
    if not is_int(value) or value != 2:
        fail(field, f"must be 2 (a genesis without `format` starts a format-1 log), got {value!r:.40}")
controllers = list_of(key_id, min_items=1, max_items=MAX_CONTROLLERS, unique=True)
key_roles = list_of(one_of(ROLES), min_items=0, max_items=len(ROLES), unique=True)
_key_roles_v2 = list_of(one_of(ROLES_V2), min_items=0, max_items=len(ROLES), unique=True)


def key_roles_v2(field: str, value: Any) -> None:
    """A format-2 key's roles: distinct roles of admin, platform and ets, or validator or expert alone."""
    _key_roles_v2(field, value)
    if len(value) > 1 and set(value) & set(SOLE_ROLES):
        fail(field, f"{' and '.join(sorted(set(value) & set(SOLE_ROLES)))} must be a key's only role")


amount_g = integer(1)
year = integer(1900, 9999)


def origin(field: str, value: Any) -> None:
    # A C2SP note key name: no whitespace and no '+', which would break the verifier key string.
    if not isinstance(value, str) or not 1 <= len(value) <= 255 or any(c.isspace() or c == "+" for c in value):
        fail(field, "must be 1 to 255 characters without spaces or '+'")
