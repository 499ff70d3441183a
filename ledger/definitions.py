"""Methodology definitions (spec section 7.1, format 2) and their quantification (section 7.2).

`definition` is the field check of a format-2 `methodology.register` params (SCHEMA, naming the
part that is wrong and why). `compile_definition` turns a checked definition into a `Definition`
once per batch; each record then costs a few integer operations: a DECIMAL factor "78.4" is the
integer 78_400_000 millionths, F = S * 10^6 is their signed sum, and formula = max(0, floor(q * F /
(per_units * 10^6))) in Python integers (products reach about 10^28, which they hold exactly). No
float is made from a definition or a record."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Mapping, NamedTuple

from ledger.field_checks import fail, is_int

DECIMAL = re.compile(r"(0|[1-9][0-9]{0,8})(?:\.([0-9]{1,6}))?")
CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
INPUT_NAME = re.compile(r"[a-z][a-z0-9_]{0,39}")
RESERVED_INPUT_NAMES = frozenset({"subject", "occurred_at"})
MILLIONTHS = 1_000_000
MAX_INPUTS = 16
MAX_ENUM_VALUES = 32
MAX_INTEGER_INPUT = 10**12
MAX_DAILY_CAP_G = 1_000_000_000
FINGERPRINT_TIMES = ("minute", "hour", "day")
DEFINITION_FIELDS = frozenset({"description", "formula", "inputs", "factors", "daily_cap", "fingerprint"})
FORMULA_FIELDS = frozenset({"kind", "expression", "quantity_field", "quantity_unit", "rounding"})
FACTOR_FIELDS = frozenset({"value", "unit", "source", "illustrative"})  # and optionally "note"
CAP_FIELDS = frozenset({"value_g", "source", "illustrative"})
INPUT_FIELDS = {
    "integer": frozenset({"type", "required", "public", "description", "unit", "min", "max"}),
    "code": frozenset({"type", "required", "public", "description"}),
    "enum": frozenset({"type", "required", "public", "description", "values"}),
}


class Term(NamedTuple):
    sign: int  # +1 baseline, -1 project
    factor: str


class Kind(NamedTuple):
    """A row of section 7.1's kinds table."""
    quantity_field: str | None  # None: per_trip, q = 1
    quantity_unit: str | None
    per_units: int
    terms: tuple[Term, ...]


KINDS: dict[str, Kind] = {
    "per_trip": Kind(None, None, 1, (Term(1, "g_per_trip"),)),
    "per_distance": Kind("distance_m", "m", 1000, (Term(1, "g_per_km"),)),
    "distance_baseline_minus_project": Kind("distance_m", "m", 1000,
                                            (Term(1, "baseline_g_per_km"), Term(-1, "project_g_per_km"))),
    "per_item": Kind("items", "item", 1, (Term(1, "g_per_item"),)),
    "per_kg": Kind("mass_g", "g", 1000, (Term(1, "g_per_kg"),)),
    "per_kwh": Kind("energy_wh", "Wh", 1000, (Term(1, "g_per_kwh"),)),
    "energy_baseline_minus_project": Kind("energy_wh", "Wh", 1000,
                                          (Term(1, "baseline_g_per_kwh"), Term(-1, "project_g_per_kwh"))),
}


def decimal_millionths(text: Any) -> int | None:
    """A DECIMAL's value times 10^6, exactly; None if `text` is not a DECIMAL."""
    match = DECIMAL.fullmatch(text) if type(text) is str else None
    if match is None:
        return None
    return int(match.group(1)) * MILLIONTHS + int((match.group(2) or "").ljust(6, "0"))


def _is_text(value: Any) -> bool:
    return type(value) is str and value != ""


def _exactly(field: str, value: Any, names: frozenset[str]) -> None:
    if type(value) is not dict or value.keys() != names:
        fail(field, f"must be an object of exactly the fields {', '.join(sorted(names))}")


def _citation(field: str, value: dict[str, Any]) -> None:
    """A citation is cited (illustrative false, a non-empty source) or illustrative (true, source null)."""
    if not ((value["illustrative"] is False and _is_text(value["source"]))
            or (value["illustrative"] is True and value["source"] is None)):
        fail(field, "illustrative must be false with a non-empty source, or true with source null")


def _input(field: str, name: Any, spec: Any) -> None:
    if type(name) is not str or not INPUT_NAME.fullmatch(name) or name in RESERVED_INPUT_NAMES:
        fail(field, f"input name {name!r:.60} must be ^[a-z][a-z0-9_]{{0,39}}$ and neither subject nor occurred_at")
    where = f"{field}.{name}"
    kind = spec.get("type") if type(spec) is dict else None
    if type(kind) is not str or kind not in INPUT_FIELDS:
        fail(f"{where}.type", "must be integer, code or enum")
    _exactly(where, spec, INPUT_FIELDS[kind])
    if type(spec["required"]) is not bool or type(spec["public"]) is not bool:
        fail(where, "required and public must be true or false")
    if not _is_text(spec["description"]):
        fail(f"{where}.description", "must be a non-empty string")
    if kind == "integer":
        if not _is_text(spec["unit"]):
            fail(f"{where}.unit", "must be a non-empty string")
        low, high = spec["min"], spec["max"]
        if not (type(low) is int and type(high) is int and 0 <= low <= high <= MAX_INTEGER_INPUT):
            fail(where, f"min and max must be integers with 0 <= min <= max <= 10^12, got {low!r:.30}, {high!r:.30}")
    elif kind == "enum":
        values = spec["values"]
        if not (type(values) is list and 1 <= len(values) <= MAX_ENUM_VALUES
                and all(type(value) is str and CODE.fullmatch(value) for value in values)
                and len(set(values)) == len(values)):
            fail(f"{where}.values", f"must be 1 to {MAX_ENUM_VALUES} distinct codes ^[A-Za-z0-9][A-Za-z0-9._-]{{0,63}}$")


def definition(field: str, params: Any) -> None:
    """SCHEMA unless `params` is a section 7.1 definition (the field check of a format-2
    `methodology.register` params); the message names the part that is wrong and why."""
    _exactly(field, params, DEFINITION_FIELDS)
    if not _is_text(params["description"]):
        fail(f"{field}.description", "must be a non-empty string")
    formula = params["formula"]
    _exactly(f"{field}.formula", formula, FORMULA_FIELDS)
    kind = KINDS.get(formula["kind"]) if type(formula["kind"]) is str else None
    if kind is None:
        fail(f"{field}.formula.kind", f"must be one of {', '.join(KINDS)}")
    if type(formula["expression"]) is not str or type(formula["rounding"]) is not str:
        fail(f"{field}.formula", "expression and rounding must be strings (text for readers)")
    if formula["quantity_field"] != kind.quantity_field or formula["quantity_unit"] != kind.quantity_unit:
        fail(f"{field}.formula", f"quantity_field and quantity_unit must be {kind.quantity_field!r} and "
                                 f"{kind.quantity_unit!r} for kind {formula['kind']}")
    inputs = params["inputs"]
    if type(inputs) is not dict or not 1 <= len(inputs) <= MAX_INPUTS:
        fail(f"{field}.inputs", f"must be an object of 1 to {MAX_INPUTS} inputs")
    for name, spec in inputs.items():
        _input(f"{field}.inputs", name, spec)
    if kind.quantity_field is not None:
        quantity = inputs.get(kind.quantity_field)
        if quantity is None or quantity["type"] != "integer" or quantity["required"] is not True \
                or quantity["public"] is not True:
            fail(f"{field}.inputs", f"must hold {kind.quantity_field}, an integer input, required and public: "
                                    f"kind {formula['kind']} quantifies it and a verifier recomputes from public inputs")
    factors = params["factors"]
    names = frozenset(term.factor for term in kind.terms)
    if type(factors) is not dict or factors.keys() != names:
        fail(f"{field}.factors", f"must be exactly {', '.join(sorted(names))} for kind {formula['kind']}")
    for name, factor in factors.items():
        where = f"{field}.factors.{name}"
        if type(factor) is not dict or not FACTOR_FIELDS <= factor.keys() <= FACTOR_FIELDS | {"note"}:
            fail(where, "must have value, unit, source, illustrative and optionally note")
        if decimal_millionths(factor["value"]) is None:
            fail(f"{where}.value", f"must be a DECIMAL string such as \"78.4\", got {factor['value']!r:.40}")
        if not _is_text(factor["unit"]):
            fail(f"{where}.unit", "must be a non-empty string")
        if "note" in factor and type(factor["note"]) is not str:
            fail(f"{where}.note", "must be a string")
        _citation(where, factor)
    cap = params["daily_cap"]
    _exactly(f"{field}.daily_cap", cap, CAP_FIELDS)
    if not (type(cap["value_g"]) is int and 1 <= cap["value_g"] <= MAX_DAILY_CAP_G):
        fail(f"{field}.daily_cap.value_g", f"must be an integer in 1..{MAX_DAILY_CAP_G}")
    _citation(f"{field}.daily_cap", cap)
    fingerprint = params["fingerprint"]
    _exactly(f"{field}.fingerprint", fingerprint, frozenset({"fields", "time"}))
    if type(fingerprint["time"]) is not str or fingerprint["time"] not in FINGERPRINT_TIMES:
        fail(f"{field}.fingerprint.time", "must be minute, hour or day")
    fields = fingerprint["fields"]
    if type(fields) is not list or not all(type(name) is str for name in fields) or len(set(fields)) != len(fields):
        fail(f"{field}.fingerprint.fields", "must be a list of distinct input names")
    for name in fields:
        spec = inputs.get(name)
        if spec is None or spec["type"] not in ("code", "enum") or spec["required"] is not True:
            fail(f"{field}.fingerprint.fields", f"{name!r:.60} is not a required code or enum input "
                                                f"(a measured quantity never identifies the act)")


def is_illustrative(params: Mapping[str, Any]) -> bool:
    """A version is illustrative when one of its factors is (section 7.1): never offset eligible."""
    return any(factor["illustrative"] for factor in params["factors"].values())


def public_inputs(params: Mapping[str, Any]) -> frozenset[str]:
    """The inputs a record carries (section 7.4): those the definition marks public."""
    return frozenset(name for name, spec in params["inputs"].items() if spec["public"])


class InputRule(NamedTuple):
    """What a valid value of one input is (section 7.1's input table)."""
    type: str
    required: bool
    low: int
    high: int
    values: frozenset[str]

    def accepts(self, value: Any) -> bool:
        if self.type == "integer":
            return is_int(value) and self.low <= value <= self.high
        if self.type == "code":
            return type(value) is str and CODE.fullmatch(value) is not None
        return type(value) is str and value in self.values


@dataclass(frozen=True, slots=True)
class Definition:
    """A registered version's definition compiled for quantifying records (section 7.2)."""
    methodology_id: str
    version: int
    quantity_field: str | None  # None: q = 1 (per_trip)
    factor_millionths: int      # F = S * 10^6, exact (negative when the project emits more)
    divisor: int                # per_units * 10^6
    daily_cap_g: int
    public: Mapping[str, InputRule]
    required_public: frozenset[str]

    def inputs_problem(self, inputs: Mapping[str, Any]) -> str | None:
        """Why a record's inputs are not exactly this version's public inputs, each with a valid value."""
        public = self.public
        for name, value in inputs.items():
            rule = public.get(name)
            if rule is None:
                return (f"input {name!r:.60} is not a public input of {self.methodology_id} v{self.version} "
                        f"(public: {', '.join(sorted(public)) or 'none'})")
            if not rule.accepts(value):
                return f"input {name} = {value!r:.60} is not a valid value"
        missing = self.required_public - inputs.keys()
        if missing:
            return f"required public input(s) {', '.join(sorted(missing))} missing"
        return None

    def formula_g(self, inputs: Mapping[str, Any]) -> int:
        """formula(inputs) of section 7.2, for inputs without an inputs_problem."""
        quantity = 1 if self.quantity_field is None else inputs[self.quantity_field]
        return max(0, quantity * self.factor_millionths // self.divisor)

    def reduction_g(self, inputs: Mapping[str, Any], total_before_g: int) -> int:
        """Section 7.2's reduction_g of a record: its formula, clipped to what the subject's daily cap
        leaves after `total_before_g` credited that day under this methodology_id (any version)."""
        return min(self.formula_g(inputs), max(0, self.daily_cap_g - total_before_g))


def compile_definition(methodology_id: str, version: int, params: Mapping[str, Any]) -> Definition:
    """The Definition of params that passed `definition`."""
    kind = KINDS[params["formula"]["kind"]]
    factors = params["factors"]
    public = {name: InputRule(spec["type"], spec["required"], spec.get("min", 0), spec.get("max", 0),
                              frozenset(spec.get("values", ())))
              for name, spec in params["inputs"].items() if spec["public"]}
    return Definition(
        methodology_id=methodology_id,
        version=version,
        quantity_field=kind.quantity_field,
        factor_millionths=sum(term.sign * (decimal_millionths(factors[term.factor]["value"]) or 0) for term in kind.terms),
        divisor=kind.per_units * MILLIONTHS,
        daily_cap_g=params["daily_cap"]["value_g"],
        public=public,
        required_public=frozenset(name for name, rule in public.items() if rule.required),
    )
