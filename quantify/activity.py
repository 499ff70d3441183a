"""One activity record (spec section 7): checking, quantifying, fingerprinting, encoding.

Built for ingestion's hot path: a Methodology is compiled once into `RecordRules`, and each
record then costs a few dict lookups, one integer division and two SHA-256.

Every string a record can hold is ASCII by construction (identifiers, codes, enum values, the
time format), and every key is a fixed ASCII name. For such values `json.dumps` with sorted keys
and no spaces is exactly RFC 8785 (JCS orders keys by UTF-16 units, which differs from code
point order only above U+FFFF), so records are encoded without a general canonicalizer; the
tests compare the bytes with the `rfc8785` package.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import re
from typing import Any

from quantify.methodology import MAX_CODE_CHARS, Methodology

# Spec section 1 identifiers; subjects (pseudonyms) follow the same rule here.
IDENTIFIER = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,%d}" % (MAX_CODE_CHARS - 1))
# Spec section 1 time, with field ranges; whether the day exists in its month is checked after.
TIME = re.compile(
    r"[0-9]{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]\.[0-9]{6}Z"
)
RECORD_FIELDS = frozenset(("activity_id", "subject", "occurred_at", "inputs"))
FINGERPRINT_DOMAIN = b"puhui-fingerprint/v1\n"
# China Standard Time (UTC+8, no daylight saving): the day a Hubei citizen lives, used for
# daily caps, day fingerprints and the personal account. Batch periods use the UTC date, as
# the spec checks occurred_at's date against them.
BEIJING_OFFSET_HOURS = 8

_MAX_CACHED_DATES = 100_000


class InvalidActivity(ValueError):
    """A raw record or inputs that the methodology does not accept."""

    def __init__(self, code: str, detail: str):
        super().__init__(f"{code}: {detail}")
        self.code = code  # "invalid_record" | "invalid_input"
        self.detail = detail


@functools.lru_cache(maxsize=_MAX_CACHED_DATES)
def _real_date(date: str) -> bool:
    try:
        dt.date.fromisoformat(date)
    except ValueError:
        return False
    return True


@functools.lru_cache(maxsize=_MAX_CACHED_DATES)
def _next_date(date: str) -> str:
    return (dt.date.fromisoformat(date) + dt.timedelta(days=1)).isoformat()


def time_error(occurred_at: Any) -> str | None:
    if type(occurred_at) is not str or not TIME.fullmatch(occurred_at) or not _real_date(occurred_at[:10]):
        return "occurred_at must be a real time written YYYY-MM-DDTHH:MM:SS.ffffffZ"
    return None


def beijing_day(occurred_at: str) -> str:
    """The China Standard Time date (YYYY-MM-DD) of a checked UTC time."""
    date = occurred_at[:10]
    # 16:00 UTC is midnight in Beijing.
    return date if occurred_at[11:13] < "16" else _next_date(date)


_INTEGER, _CODE, _ENUM = 0, 1, 2
_KINDS = {"integer": _INTEGER, "code": _CODE, "enum": _ENUM}
_MISSING = object()


class RecordRules:
    """A methodology compiled for checking and quantifying records quickly."""

    def __init__(self, methodology: Methodology):
        self.methodology = methodology
        formula = methodology.formula
        self._fields = frozenset(field.name for field in methodology.inputs)
        self._checks = tuple(
            (f.name, _KINDS[f.kind], f.required, f.minimum, f.maximum, frozenset(f.values))
            for f in methodology.inputs
        )
        self._quantity_field = formula.quantity_field
        # reduction_g = floor(max(0, quantity * numerator / denominator)), exact in integers:
        # the decimal coefficient is an exact ratio, so this is decimal arithmetic without a
        # context to round in.
        numerator, denominator = methodology.coefficient().as_integer_ratio()
        self._numerator = numerator
        self._denominator = denominator * formula.per_units
        self._fingerprint_fields = methodology.fingerprint_fields
        self._fingerprint_time = methodology.fingerprint_time
        self._methodology_id = methodology.methodology_id

    def input_error(self, inputs: Any) -> str | None:
        """Why inputs do not match the methodology's schema, or None."""
        if type(inputs) is not dict:
            return "inputs must be a JSON object"
        if not inputs.keys() <= self._fields:
            unknown = sorted(str(k) for k in inputs.keys() - self._fields)
            return f"unknown input(s) {', '.join(unknown)[:200]}"
        for name, kind, required, low, high, values in self._checks:
            value = inputs.get(name, _MISSING)
            if value is _MISSING:
                if required:
                    return f"missing input {name}"
            elif kind == _INTEGER:
                # type() rather than isinstance: true is not 1 distance unit.
                if type(value) is not int or not low <= value <= high:
                    return f"{name} must be an integer in {low}..{high}"
            elif kind == _CODE:
                if type(value) is not str or not CODE.fullmatch(value):
                    return f"{name} must be a code of 1 to {MAX_CODE_CHARS} characters [A-Za-z0-9._-]"
            elif type(value) is not str or value not in values:
                return f"{name} must be one of {', '.join(sorted(values))}"
        return None

    def record_error(self, record: Any) -> tuple[str, str] | None:
        """(reason code, detail) if a raw record is not acceptable, else None."""
        if type(record) is not dict:
            return "malformed", "a record must be a JSON object"
        if record.keys() != RECORD_FIELDS:
            missing = sorted(RECORD_FIELDS - record.keys())
            extra = sorted(str(k) for k in record.keys() - RECORD_FIELDS)
            return "invalid_record", f"missing {missing} unknown {extra}"[:300]
        activity_id = record["activity_id"]
        if type(activity_id) is not str or not IDENTIFIER.fullmatch(activity_id):
            return "invalid_record", "activity_id must be an identifier ^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
        subject = record["subject"]
        if type(subject) is not str or not IDENTIFIER.fullmatch(subject):
            return "invalid_record", "subject must be a pseudonym ^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
        error = time_error(record["occurred_at"])
        if error is not None:
            return "invalid_record", error
        error = self.input_error(record["inputs"])
        if error is not None:
            return "invalid_input", error
        return None

    def reduction_g(self, inputs: dict[str, Any]) -> int:
        """Integer grams for checked inputs: exact, clipped at 0, floored."""
        quantity = 1 if self._quantity_field is None else inputs[self._quantity_field]
        scaled = quantity * self._numerator
        return scaled // self._denominator if scaled > 0 else 0

    def fingerprint_time(self, occurred_at: str) -> str:
        if self._fingerprint_time == "minute":
            return occurred_at[:16] + "Z"
        if self._fingerprint_time == "hour":
            return occurred_at[:13] + "Z"
        return beijing_day(occurred_at) + "+08:00"

    def fingerprint(self, subject: str, occurred_at: str, inputs: dict[str, Any]) -> str:
        """SHA-256 hex naming the real-world act, whichever platform reports it.

        Over "puhui-fingerprint/v1\\n" || JCS({"fields": {the methodology's fingerprint fields},
        "methodology_id", "subject", "time": occurred_at truncated as the methodology says}).
        The version is left out: a new version does not make an old act new.
        """
        fields = {name: inputs[name] for name in self._fingerprint_fields}
        text = json.dumps(
            {"fields": fields, "methodology_id": self._methodology_id, "subject": subject,
             "time": self.fingerprint_time(occurred_at)},
            sort_keys=True, separators=(",", ":"),
        )
        return hashlib.sha256(FINGERPRINT_DOMAIN + text.encode()).hexdigest()


def record_bytes(activity_id: str, fingerprint: str, inputs: dict[str, Any], occurred_at: str,
                 reduction_g: int, subject: str) -> bytes:
    """The JCS bytes of a checked activity record (spec section 7), keys in JCS order."""
    return (
        f'{{"activity_id":"{activity_id}","fingerprint":"{fingerprint}","inputs":'
        f'{json.dumps(inputs, sort_keys=True, separators=(",", ":"))},"occurred_at":"{occurred_at}",'
        f'"reduction_g":{reduction_g},"subject":"{subject}"}}'
    ).encode()


@functools.lru_cache(maxsize=256)
def rules_for(methodology: Methodology) -> RecordRules:
    return RecordRules(methodology)


def quantify(methodology: Methodology, inputs: Any) -> int:
    """reduction_g for one set of inputs; InvalidActivity if they do not fit the schema."""
    rules = rules_for(methodology)
    error = rules.input_error(inputs)
    if error is not None:
        raise InvalidActivity("invalid_input", error)
    return rules.reduction_g(inputs)


def fingerprint(methodology: Methodology, subject: str, occurred_at: str, inputs: Any) -> str:
    """The fingerprint of an act; InvalidActivity if any part is malformed."""
    rules = rules_for(methodology)
    if type(subject) is not str or not IDENTIFIER.fullmatch(subject):
        raise InvalidActivity("invalid_record", "subject must be a pseudonym ^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
    error = time_error(occurred_at)
    if error is not None:
        raise InvalidActivity("invalid_record", error)
    error = rules.input_error(inputs)
    if error is not None:
        raise InvalidActivity("invalid_input", error)
    return rules.fingerprint(subject, occurred_at, inputs)


def activity_record(methodology: Methodology, raw: Any) -> dict[str, Any]:
    """A raw platform record ({activity_id, subject, occurred_at, inputs}) as a full record,
    before any daily cap (ingestion applies the cap across records)."""
    rules = rules_for(methodology)
    error = rules.record_error(raw)
    if error is not None:
        raise InvalidActivity(*error)
    return {
        "activity_id": raw["activity_id"],
        "fingerprint": rules.fingerprint(raw["subject"], raw["occurred_at"], raw["inputs"]),
        "inputs": raw["inputs"],
        "occurred_at": raw["occurred_at"],
        "reduction_g": rules.reduction_g(raw["inputs"]),
        "subject": raw["subject"],
    }
