"""One activity record (spec section 7): checking, quantifying, fingerprinting, encoding.

Built for ingestion's hot path: a Methodology is compiled once into `RecordRules`, and each
record then costs a few dict lookups, one integer division and two SHA-256.

Every string a record can hold is ASCII from [A-Za-z0-9._-:] by construction (identifiers,
codes, enum values, the time format) and every key is a fixed ASCII name, so no value needs a
JSON escape and sorting keys by code point is JCS's UTF-16 order. Records and fingerprints are
therefore written in canonical form by hand, a few times faster than a general encoder; the
tests compare the bytes with the `rfc8785` package.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import re
from typing import Any, NamedTuple

# Spec section 1 identifiers; subjects (pseudonyms) follow the same rule here.
from quantify.methodology import IDENTIFIER, MAX_CODE_CHARS, Methodology

CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,%d}" % (MAX_CODE_CHARS - 1))
# Spec section 1 time, with field ranges; whether the day exists in its month is checked after.
TIME = re.compile(
    r"[0-9]{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]\.[0-9]{6}Z"
)
RECORD_FIELDS = frozenset(("activity_id", "subject", "occurred_at", "inputs"))
FINGERPRINT_DOMAIN = b"puhui-fingerprint/v1\n"

_MAX_CACHED_DATES = 100_000
_ACTIVITY_ID_RULE = "activity_id must be an identifier ^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
_SUBJECT_RULE = "subject must be a pseudonym ^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
_TIME_RULE = ("occurred_at must be a real UTC time written YYYY-MM-DDTHH:MM:SS.ffffffZ, with exactly 6 fractional "
              "digits (e.g. 2026-04-06T08:00:00.000000Z)")


class InvalidActivity(ValueError):
    """A raw record or inputs that the methodology does not accept."""

    def __init__(self, code: str, detail: str):
        super().__init__(f"{code}: {detail}")
        self.code = code  # a rejection reason: "malformed" | "invalid_record" | "invalid_input"
        self.detail = detail


@functools.lru_cache(maxsize=_MAX_CACHED_DATES)
def is_real_date(date: str) -> bool:
    """Whether YYYY-MM-DD (fields in range) names a day that exists."""
    try:
        dt.date.fromisoformat(date)
    except ValueError:
        return False
    return True


BEIJING_OFFSET = dt.timedelta(hours=8)  # China Standard Time: UTC+8, no daylight saving


@functools.lru_cache(maxsize=_MAX_CACHED_DATES)
def _next_date(date: str) -> str:
    return (dt.date.fromisoformat(date) + dt.timedelta(days=1)).isoformat()


def beijing_day(occurred_at: str) -> str:
    """The China Standard Time date (YYYY-MM-DD, UTC+8, no daylight saving) of a checked UTC time.

    The day a Hubei citizen lives: daily caps, day fingerprints and the personal account use it.
    Batch periods use the UTC date instead, as the spec checks occurred_at's date against them.
    """
    date = occurred_at[:10]
    # 16:00 UTC is midnight in Beijing.
    return date if occurred_at[11:13] < "16" else _next_date(date)


def beijing_midnight_utc(day: str, days: int = 0) -> str:
    """The UTC time (spec format) at which Beijing day `day` (+ days) begins: 16:00Z the day
    before. The inverse of beijing_day, for asking a log which records fall on a Beijing day."""
    moment = dt.datetime.fromisoformat(day) + dt.timedelta(days=days) - BEIJING_OFFSET
    return f"{moment:%Y-%m-%dT%H:%M:%S}.000000Z"


# An input's kind, as InputCheck.kind holds it: small ints compare faster than the strings.
INTEGER_INPUT, CODE_INPUT, ENUM_INPUT = 0, 1, 2
_KINDS = {"integer": INTEGER_INPUT, "code": CODE_INPUT, "enum": ENUM_INPUT}
_MISSING = object()


class InputCheck(NamedTuple):
    """How one input of a methodology is checked and written."""

    name: str
    key: str  # its JCS text up to the value: "name":
    kind: int  # INTEGER_INPUT, CODE_INPUT or ENUM_INPUT
    required: bool
    low: int | None  # an integer input's bounds, inclusive
    high: int | None
    values: frozenset[str]  # an enum input's values
    public: bool  # format 2: written in the record (else only in its opening)


class CompiledRules(NamedTuple):
    """What RecordRules compiles a methodology into. The fast path (quantify.fastpath) builds
    its patterns and templates from this same value, so the two paths cannot apply different
    rules."""

    checks: tuple[InputCheck, ...]  # sorted by name: JCS key order
    quantity_field: str | None
    # reduction_g = floor(max(0, quantity * numerator / denominator)), quantity 1 without a field
    numerator: int
    denominator: int
    fingerprint_fields: tuple[str, ...]  # sorted
    fingerprint_time: str  # "minute" | "hour" | "day"


class RecordRules:
    """A methodology compiled for checking and quantifying records quickly."""

    def __init__(self, methodology: Methodology):
        self.methodology = methodology
        formula = methodology.formula
        # reduction_g's coefficient is an exact ratio, so quantifying is decimal arithmetic in
        # integers, without a context to round in.
        numerator, denominator = methodology.coefficient().as_integer_ratio()
        self.compiled = CompiledRules(
            # In JCS key order, so checking the inputs also writes their canonical text.
            checks=tuple(
                InputCheck(f.name, f'"{f.name}":', _KINDS[f.kind], f.required, f.minimum, f.maximum,
                           frozenset(f.values), f.public)
                for f in sorted(methodology.inputs, key=lambda f: f.name)
            ),
            quantity_field=formula.quantity_field,
            numerator=numerator,
            denominator=denominator * formula.per_units,
            fingerprint_fields=tuple(sorted(methodology.fingerprint_fields)),
            fingerprint_time=methodology.fingerprint_time,
        )
        self._fields = frozenset(field.name for field in methodology.inputs)
        self._fingerprint_tail = f'}},"methodology_id":"{methodology.methodology_id}","subject":"'

    def check_inputs(self, inputs: Any) -> str:
        """The JCS text of inputs that match the schema; InvalidActivity("invalid_input") if not."""
        if type(inputs) is not dict:
            raise InvalidActivity("invalid_input", "inputs must be a JSON object")
        if not inputs.keys() <= self._fields:
            unknown = sorted(str(k) for k in inputs.keys() - self._fields)
            raise InvalidActivity("invalid_input", f"unknown input(s) {', '.join(unknown)[:200]}")
        parts = []
        for name, key, kind, required, low, high, values, _ in self.compiled.checks:
            value = inputs.get(name, _MISSING)
            if value is _MISSING:
                if required:
                    raise InvalidActivity("invalid_input", f"missing input {name}")
            elif kind == INTEGER_INPUT:
                # type() rather than isinstance: true is not 1 metre.
                if type(value) is not int or not low <= value <= high:
                    raise InvalidActivity("invalid_input", f"{name} must be an integer in {low}..{high}")
                parts.append(f"{key}{value}")
            else:
                if kind == CODE_INPUT:
                    if type(value) is not str or not CODE.fullmatch(value):
                        raise InvalidActivity(
                            "invalid_input", f"{name} must be a code of 1 to {MAX_CODE_CHARS} characters [A-Za-z0-9._-]"
                        )
                elif type(value) is not str or value not in values:
                    raise InvalidActivity("invalid_input", f"{name} must be one of {', '.join(sorted(values))}")
                parts.append(f'{key}"{value}"')  # codes and enum values need no JSON escape
        return "{" + ",".join(parts) + "}"

    def check_record(self, record: Any) -> str:
        """Check a raw record {activity_id, subject, occurred_at, inputs}; return the JCS text of
        its inputs. InvalidActivity (malformed, invalid_record, invalid_input) if it fails."""
        if type(record) is not dict:
            raise InvalidActivity("malformed", "a record must be a JSON object")
        if record.keys() != RECORD_FIELDS:
            missing = sorted(RECORD_FIELDS - record.keys())
            extra = sorted(str(k) for k in record.keys() - RECORD_FIELDS)
            raise InvalidActivity("invalid_record", f"missing {missing} unknown {extra}"[:300])
        activity_id = record["activity_id"]
        if type(activity_id) is not str or not IDENTIFIER.fullmatch(activity_id):
            raise InvalidActivity("invalid_record", _ACTIVITY_ID_RULE)
        # check_subject and check_time, inlined: this runs once per ingested record.
        subject = record["subject"]
        if type(subject) is not str or not IDENTIFIER.fullmatch(subject):
            raise InvalidActivity("invalid_record", _SUBJECT_RULE)
        occurred_at = record["occurred_at"]
        if type(occurred_at) is not str or not TIME.fullmatch(occurred_at) or not is_real_date(occurred_at[:10]):
            raise InvalidActivity("invalid_record", _TIME_RULE)
        return self.check_inputs(record["inputs"])

    def reduction_g(self, inputs: dict[str, Any]) -> int:
        """Integer grams for checked inputs: exact, clipped at 0, floored."""
        compiled = self.compiled
        quantity = 1 if compiled.quantity_field is None else inputs[compiled.quantity_field]
        scaled = quantity * compiled.numerator
        return scaled // compiled.denominator if scaled > 0 else 0

    def fingerprint_time(self, occurred_at: str) -> str:
        unit = self.compiled.fingerprint_time
        if unit == "minute":
            return occurred_at[:16] + "Z"
        if unit == "hour":
            return occurred_at[:13] + "Z"
        return beijing_day(occurred_at) + "+08:00"

    def fingerprint(self, subject: str, occurred_at: str, inputs: dict[str, Any]) -> str:
        """SHA-256 hex naming the real-world act, whichever platform reports it (checked parts).

        Over "puhui-fingerprint/v1\n" || JCS({"fields": {the methodology's fingerprint fields},
        "methodology_id", "subject", "time": occurred_at truncated as the methodology says}).
        The version is left out: a new version does not make an old act new. Written by hand in
        JCS order: every value is a code, enum value, pseudonym or time, none needing an escape.
        """
        return hashlib.sha256(FINGERPRINT_DOMAIN + self.fingerprint_text(subject, occurred_at, inputs)).hexdigest()

    def fingerprint_text(self, subject: str, occurred_at: str, inputs: dict[str, Any]) -> bytes:
        """The JCS bytes of {"fields", "methodology_id", "subject", "time"} that a fingerprint hashes
        (format 1) or keys (format 2, quantify.private)."""
        compiled = self.compiled
        fields = ",".join([f'"{name}":"{inputs[name]}"' for name in compiled.fingerprint_fields])
        when = occurred_at[:16] + "Z" if compiled.fingerprint_time == "minute" else self.fingerprint_time(occurred_at)
        return f'{{"fields":{{{fields}{self._fingerprint_tail}{subject}","time":"{when}"}}'.encode()


def check_subject(subject: Any) -> None:
    if type(subject) is not str or not IDENTIFIER.fullmatch(subject):
        raise InvalidActivity("invalid_record", _SUBJECT_RULE)


def check_time(occurred_at: Any) -> None:
    if type(occurred_at) is not str or not TIME.fullmatch(occurred_at) or not is_real_date(occurred_at[:10]):
        raise InvalidActivity("invalid_record", _TIME_RULE)


def record_bytes(activity_id: str, fingerprint: str, inputs_jcs: str, occurred_at: str,
                 reduction_g: int, subject: str) -> bytes:
    """The JCS bytes of a checked activity record (spec section 7), keys in JCS order.

    inputs_jcs is what RecordRules.check_inputs returned; identifiers, the hex fingerprint and
    the time need no JSON escape.
    """
    return (
        f'{{"activity_id":"{activity_id}","fingerprint":"{fingerprint}","inputs":{inputs_jcs},'
        f'"occurred_at":"{occurred_at}","reduction_g":{reduction_g},"subject":"{subject}"}}'
    ).encode()


@functools.lru_cache(maxsize=256)
def rules_for(methodology: Methodology) -> RecordRules:
    return RecordRules(methodology)


def quantify(methodology: Methodology, inputs: Any) -> int:
    """reduction_g for one set of inputs; InvalidActivity if they do not fit the schema."""
    rules = rules_for(methodology)
    rules.check_inputs(inputs)
    return rules.reduction_g(inputs)


def fingerprint(methodology: Methodology, subject: str, occurred_at: str, inputs: Any) -> str:
    """The fingerprint of an act; InvalidActivity if any part is malformed."""
    rules = rules_for(methodology)
    check_subject(subject)
    check_time(occurred_at)
    rules.check_inputs(inputs)
    return rules.fingerprint(subject, occurred_at, inputs)


def activity_record(methodology: Methodology, raw: Any) -> dict[str, Any]:
    """A raw platform record ({activity_id, subject, occurred_at, inputs}) as a full record,
    before any daily cap (ingestion applies the cap across records)."""
    rules = rules_for(methodology)
    rules.check_record(raw)
    return {
        "activity_id": raw["activity_id"],
        "fingerprint": rules.fingerprint(raw["subject"], raw["occurred_at"], raw["inputs"]),
        "inputs": raw["inputs"],
        "occurred_at": raw["occurred_at"],
        "reduction_g": rules.reduction_g(raw["inputs"]),
        "subject": raw["subject"],
    }
