"""Field rules that need no state (spec sections 1, 3 and 6; docs/spec-readings.md, "Field rules
that need no state"): for each event type, the exact body fields and their types. Any failure here
is SCHEMA. Only what the spec forbids is refused: no length limits beyond the spec's own."""

import base64
import binascii
import re
from datetime import date
from hashlib import sha256

from verifier.canonical import MAX_SAFE_INTEGER, find_unsafe_integer
from verifier.methodologies import definition_problem

ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
KEY_ID = re.compile(r"[0-9a-f]{16}")
HEX64 = re.compile(r"[0-9a-f]{64}")
REGION = re.compile(r"[0-9]{6}")
DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
TIME = re.compile(r"([0-9]{4}-[0-9]{2}-[0-9]{2})T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]\.[0-9]{6}Z")

ROLES = frozenset({"admin", "platform", "ets"})
ACCOUNT_KINDS = frozenset({"individual", "enterprise", "organization", "platform", "compliance_entity"})
SECTORS = frozenset({"green_travel", "green_consumption", "resource_saving", "energy_substitution", "other"})
PURPOSES = frozenset({"ets_offset", "carbon_neutrality", "eco_compensation", "voluntary"})
SUBJECT_KINDS = frozenset({"organization", "product", "event", "individual", "building"})
EFFECT_TYPES = frozenset({"issuance", "transfer", "retirement", "cancellation"})

_real_dates = {}  # "YYYY-MM-DD" -> bool; a cache, as the same few dates recur millions of times


def is_real_date(text):
    known = _real_dates.get(text)
    if known is None:
        try:
            date.fromisoformat(text)
            known = True
        except ValueError:
            known = False
        if len(_real_dates) < 100_000:
            _real_dates[text] = known
    return known


def is_date(value):
    return type(value) is str and DATE.fullmatch(value) is not None and is_real_date(value)


def _is_str(value):
    return type(value) is str


def _is_id(value):
    return type(value) is str and ID.fullmatch(value) is not None


def _is_key_id(value):
    return type(value) is str and KEY_ID.fullmatch(value) is not None


def _is_hex64(value):
    return type(value) is str and HEX64.fullmatch(value) is not None


def _is_region(value):
    return type(value) is str and REGION.fullmatch(value) is not None


def _is_request_id(value):
    return type(value) is str and 1 <= len(value) <= 128


def _is_bool(value):
    return type(value) is bool


# Every integer field is bounded here, which is what keeps the 2^53 bound of the ENCODING check
# off the common path (see leaves.py): a leaf whose fields all pass holds no unsafe integer.
def _is_object(value):
    return type(value) is dict and find_unsafe_integer(value) is None


def _is_positive(value):
    return type(value) is int and 1 <= value <= MAX_SAFE_INTEGER


def _is_non_negative(value):
    return type(value) is int and 0 <= value <= MAX_SAFE_INTEGER


def _is_int(value):
    return type(value) is int and -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER


def _is_year(value):
    return type(value) is int and 1900 <= value <= 9999


def _is_optional_id(value):
    return value is None or _is_id(value)


def _is_evidence(value):
    return value is None or _is_hex64(value)


def _is_id_list(value):
    return type(value) is list and all(_is_id(item) for item in value)


def _is_nonempty_id_list(value):
    return type(value) is list and len(value) > 0 and all(_is_id(item) for item in value)


def _is_controllers(value):
    return (
        type(value) is list
        and len(value) > 0
        and all(_is_key_id(item) for item in value)
        and len(set(value)) == len(value)
    )


def _is_roles(value):
    return (
        type(value) is list
        and all(type(item) is str and item in ROLES for item in value)
        and len(set(value)) == len(value)
    )


def _one_of(allowed):
    return lambda value: type(value) is str and value in allowed


def decode_public_key(value):
    """The 32 bytes of a base64 (standard, padded, canonical) Ed25519 public key, or None."""
    if type(value) is not str:
        return None
    try:
        key = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None
    if len(key) != 32 or base64.b64encode(key).decode("ascii") != value:
        return None
    return key


def _is_public_key(value):
    return decode_public_key(value) is not None


def _is_rules(value):
    return (
        type(value) is dict
        and value.keys() == {"offset_cap_ppm", "offset_vintage_years", "offset_regions"}
        and type(value["offset_cap_ppm"]) is int
        and 0 <= value["offset_cap_ppm"] <= 1_000_000
        and _is_non_negative(value["offset_vintage_years"])
        and type(value["offset_regions"]) is list
        and all(type(item) is str for item in value["offset_regions"])
    )


def _is_subject(value):
    return (
        type(value) is dict
        and value.keys() == {"kind", "name"}
        and type(value["kind"]) is str
        and value["kind"] in SUBJECT_KINDS
        and type(value["name"]) is str
    )


def _period_in_order(body):
    if body["period_start"] > body["period_end"]:
        return "period_start is after period_end"
    return None


def _key_id_matches(body):
    public_key = decode_public_key(body["public_key"])
    if sha256(public_key).digest()[:8].hex() != body["key_id"]:
        return "key_id is not the key id of public_key"
    return None


def _transfer_to_differs(body):
    if body["to"] == body["from"]:
        return "to equals from"
    return None


# type -> ({field: (check, what the field must be)}, rule across fields or None)
_STRING = (_is_str, "must be a string")
_ID = (_is_id, "must be an identifier (^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$)")
_KEY = (_is_key_id, "must be a key id (16 lowercase hex digits)")
_POSITIVE = (_is_positive, "must be an integer >= 1")
_DATE = (is_date, "must be a real date YYYY-MM-DD")
_CONTROLLERS = (_is_controllers, "must be a non-empty list of key ids without repeats")
_RETIREMENTS = (_is_nonempty_id_list, "must be a non-empty list of retirement ids")
BODY_RULES = {
    "registry.genesis": ({"origin": _STRING, "name": _STRING, "rules": (_is_rules, "must be valid rules")}, None),
    "registry.rules": ({"rules": (_is_rules, "must be valid rules")}, None),
    "key.register": (
        {
            "key_id": _KEY,
            "public_key": (_is_public_key, "must be base64 of a 32-byte Ed25519 key"),
            "roles": (_is_roles, "must be a list of admin, platform, ets without repeats"),
            "label": _STRING,
        },
        _key_id_matches,
    ),
    "key.revoke": ({"key_id": _KEY, "reason": _STRING}, None),
    "account.open": (
        {
            "account_id": _ID,
            "kind": (_one_of(ACCOUNT_KINDS), f"must be one of {sorted(ACCOUNT_KINDS)}"),
            "name": _STRING,
            "region": (_is_region, "must be a 6-digit region code"),
            "controllers": _CONTROLLERS,
            "platform": (_is_optional_id, "must be an account id or null"),
        },
        None,
    ),
    "account.controllers": ({"account_id": _ID, "controllers": _CONTROLLERS}, None),
    "methodology.register": (
        {
            "methodology_id": _ID,
            "version": _POSITIVE,
            "title": _STRING,
            "sector": (_one_of(SECTORS), f"must be one of {sorted(SECTORS)}"),
            "params": (_is_object, "must be an object"),
            "offset_eligible": (_is_bool, "must be true or false"),
        },
        None,
    ),
    "methodology.eligibility": (
        {"methodology_id": _ID, "offset_eligible": (_is_bool, "must be true or false")},
        None,
    ),
    "activity.batch": (
        {
            "batch_id": _ID,
            "platform": _ID,
            "methodology_id": _ID,
            "methodology_version": _POSITIVE,
            "period_start": _DATE,
            "period_end": _DATE,
            "count": _POSITIVE,
            "total_g": (_is_non_negative, "must be an integer >= 0"),
            "root": (_is_hex64, "must be 64 lowercase hex digits"),
        },
        _period_in_order,
    ),
    "issuance": (
        {
            "issuance_id": _ID,
            "account": _ID,
            "methodology_id": _ID,
            "vintage": (_is_year, "must be a year between 1900 and 9999"),
            "region": (_is_region, "must be a 6-digit region code"),
            "amount_g": _POSITIVE,
            "batches": (_is_id_list, "must be a list of batch ids"),
            "evidence": (_is_evidence, "must be null or 64 lowercase hex digits"),
        },
        None,
    ),
    "transfer": (
        {"transfer_id": _ID, "from": _ID, "to": _ID, "amount_g": _POSITIVE},
        _transfer_to_differs,
    ),
    "retirement": (
        {
            "retirement_id": _ID,
            "account": _ID,
            "amount_g": _POSITIVE,
            "purpose": (_one_of(PURPOSES), f"must be one of {sorted(PURPOSES)}"),
            "beneficiary": _STRING,
        },
        None,
    ),
    "cancellation": ({"cancellation_id": _ID, "account": _ID, "amount_g": _POSITIVE, "reason": _STRING}, None),
    "offset.surrender": (
        {
            "surrender_id": _ID,
            "entity": _ID,
            "compliance_year": (_is_int, "must be an integer"),
            "allocation_g": (_is_int, "must be an integer"),
            "retirements": _RETIREMENTS,
        },
        None,
    ),
    "neutrality.claim": (
        {
            "claim_id": _ID,
            "claimant": _ID,
            "subject": (_is_subject, f"must be {{kind: one of {sorted(SUBJECT_KINDS)}, name: string}}"),
            "period_start": _DATE,
            "period_end": _DATE,
            "footprint_g": _POSITIVE,
            "retirements": _RETIREMENTS,
        },
        _period_in_order,
    ),
}


def _with_request_id(body_rules):
    for fields, _ in body_rules.values():
        fields["request_id"] = (_is_request_id, "must be a string of 1 to 128 characters")
    return body_rules


class BodySchema:
    """The body rules of one log format: which types exist, their exact fields and checks."""

    def __init__(self, body_rules):
        self.event_types = frozenset(body_rules)
        self.body_fields = {event_type: frozenset(fields) for event_type, (fields, _) in body_rules.items()}
        self.cross_rules = {event_type: cross_rule for event_type, (_, cross_rule) in body_rules.items()}
        self._checks = {
            event_type: (tuple((name, check, what) for name, (check, what) in fields.items()), cross_rule)
            for event_type, (fields, cross_rule) in body_rules.items()
        }

    def body_problem(self, event_type, body):
        """Why body is not a valid body of event_type (a known type), or None."""
        if type(body) is not dict:
            return "body is not an object"
        field_set = self.body_fields[event_type]
        if body.keys() != field_set:
            missing = sorted(field_set - body.keys())
            extra = sorted(body.keys() - field_set)
            return f"{event_type} body: missing fields {missing}, extra fields {extra}"
        checks, cross_rule = self._checks[event_type]
        for name, check, what in checks:
            if not check(body[name]):
                return f"{event_type} body: {name} {what}"
        if cross_rule is not None:
            problem = cross_rule(body)
            if problem:
                return f"{event_type} body: {problem}"
        return None


FORMAT_1 = BodySchema(_with_request_id(BODY_RULES))
EVENT_TYPES = FORMAT_1.event_types
BODY_FIELDS = FORMAT_1.body_fields
CROSS_RULES = FORMAT_1.cross_rules
body_problem = FORMAT_1.body_problem


# -- format 2 (spec sections 6 and 7.1: the rules marked "(format 2)") --------------------------------

ROLES_2 = ROLES | {"validator", "expert"}
SOLE_ROLES = frozenset({"validator", "expert"})  # never beside another role
VERDICTS = frozenset({"approved", "rejected"})


def _is_roles_2(value):
    if not (type(value) is list and all(type(item) is str and item in ROLES_2 for item in value) and len(set(value)) == len(value)):
        return False
    return len(value) <= 1 or SOLE_ROLES.isdisjoint(value)


def _is_quorum(value):
    return (
        type(value) is dict
        and value.keys() == {"issuance", "eligibility"}
        and _is_non_negative(value["issuance"])
        and _is_non_negative(value["eligibility"])
    )


def _is_rules_2(value):
    if type(value) is not dict or value.keys() != {"offset_cap_ppm", "offset_vintage_years", "offset_regions", "review_quorum"}:
        return False
    rules_1 = {name: value[name] for name in ("offset_cap_ppm", "offset_vintage_years", "offset_regions")}
    return _is_rules(rules_1) and _is_quorum(value["review_quorum"])


def _is_format_2(value):
    return type(value) is int and value == 2


def _is_issuances(value):
    """null, or a non-empty list of distinct issuance ids."""
    return value is None or (_is_nonempty_id_list(value) and len(set(value)) == len(value))


def _is_version(value):
    return type(value) is int and 1 <= value <= MAX_SAFE_INTEGER


def _is_review_target(value):
    if type(value) is not dict or value.keys() != {"kind", "id", "version"}:
        return False
    kind = value["kind"]
    if kind == "batch":
        return _is_id(value["id"]) and value["version"] is None
    if kind == "evidence":
        return _is_hex64(value["id"]) and value["version"] is None
    if kind == "methodology":
        return _is_id(value["id"]) and _is_version(value["version"])
    return False


def _params_problem(body):
    problem = definition_problem(body["params"])
    return f"params: {problem}" if problem else None


_ISSUANCES = (_is_issuances, "must be null or a non-empty list of distinct issuance ids")


def _format_2_rules():
    rules = {event_type: (dict(fields), cross_rule) for event_type, (fields, cross_rule) in BODY_RULES.items()}
    rules["registry.genesis"][0].update(rules=(_is_rules_2, "must be valid rules with review_quorum"), format=(_is_format_2, "must be 2"))
    rules["registry.rules"][0]["rules"] = (_is_rules_2, "must be valid rules with review_quorum")
    rules["key.register"][0]["roles"] = (_is_roles_2, "must be distinct roles of admin, platform, ets, or validator or expert alone")
    # The definition's own message says what is wrong with it, so params is checked as a cross rule.
    rules["methodology.register"][0]["params"] = (_is_object, "must be an object")
    rules["methodology.register"] = (rules["methodology.register"][0], _params_problem)
    rules["methodology.eligibility"][0]["version"] = _POSITIVE
    for event_type in ("transfer", "retirement", "cancellation"):
        rules[event_type][0]["issuances"] = _ISSUANCES
    rules["account.hold"] = (
        {"hold_id": _ID, "account_id": _ID, "held": (_is_bool, "must be true or false"), "case_id": _ID, "reason": _STRING},
        None,
    )
    rules["review"] = (
        {
            "review_id": _ID,
            "target": (_is_review_target, "must be {kind: batch, id: ID, version: null}, {kind: evidence, id: HEX64, version: null} or {kind: methodology, id: ID, version: INT >= 1}"),
            "verdict": (_one_of(VERDICTS), f"must be one of {sorted(VERDICTS)}"),
            "report_sha256": (_is_hex64, "must be 64 lowercase hex digits"),
        },
        None,
    )
    return _with_request_id(rules)


FORMAT_2 = BodySchema(_format_2_rules())
SCHEMAS = {1: FORMAT_1, 2: FORMAT_2}


def effects_problem(effects):
    """Why effects is not {"serials": [[int, int], ...]}, or None. Order and sums are NOT_HELD or SERIALS."""
    if type(effects) is not dict or effects.keys() != {"serials"}:
        return 'effects must be exactly {"serials": [...]}'
    serials = effects["serials"]
    if type(serials) is not list:
        return "effects.serials must be a list"
    bound = MAX_SAFE_INTEGER
    for pair in serials:
        if type(pair) is not list or len(pair) != 2:
            return "effects.serials must hold [START, END] pairs of integers"
        start, end = pair
        if type(start) is not int or type(end) is not int or not -bound <= start <= bound or not -bound <= end <= bound:
            return "effects.serials must hold [START, END] pairs of integers"
    return None
