"""Methodology definitions (spec section 7.1, format 2) and quantification (section 7.2).

`definition_problem` says why a format-2 `methodology.register` params is not a definition (SCHEMA);
`Definition.of` turns one that is into what the record checks need. Quantities are exact: a DECIMAL
factor "78.4" is read as the integer 78_400_000 millionths, and formula(q) = floor(q * F /
(per_units * 10^6)) in Python integers, which have no bound (products reach about 10^28). No float
is ever made from a record or a factor."""

import re
from dataclasses import dataclass

DECIMAL = re.compile(r"(0|[1-9][0-9]{0,8})(?:\.([0-9]{1,6}))?")
CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
INPUT_NAME = re.compile(r"[a-z][a-z0-9_]{0,39}")
RESERVED_INPUT_NAMES = frozenset({"subject", "occurred_at"})
MILLIONTHS = 1_000_000
MAX_INPUTS = 16
MAX_ENUM_VALUES = 32
MAX_INTEGER_INPUT = 10**12
MAX_DAILY_CAP_G = 1_000_000_000
FINGERPRINT_TIMES = frozenset({"minute", "hour", "day"})
DEFINITION_FIELDS = frozenset({"description", "formula", "inputs", "factors", "daily_cap", "fingerprint"})
FORMULA_FIELDS = frozenset({"kind", "expression", "quantity_field", "quantity_unit", "rounding"})
INPUT_FIELDS = {
    "integer": frozenset({"type", "required", "public", "description", "unit", "min", "max"}),
    "code": frozenset({"type", "required", "public", "description"}),
    "enum": frozenset({"type", "required", "public", "description", "values"}),
}


@dataclass(frozen=True, slots=True)
class Kind:
    quantity_field: object  # str, or None for per_trip (q = 1)
    quantity_unit: object
    per_units: int
    terms: tuple  # ((sign, factor name), ...)


KINDS = {
    "per_trip": Kind(None, None, 1, ((1, "g_per_trip"),)),
    "per_distance": Kind("distance_m", "m", 1000, ((1, "g_per_km"),)),
    "distance_baseline_minus_project": Kind("distance_m", "m", 1000, ((1, "baseline_g_per_km"), (-1, "project_g_per_km"))),
    "per_item": Kind("items", "item", 1, ((1, "g_per_item"),)),
    "per_kg": Kind("mass_g", "g", 1000, ((1, "g_per_kg"),)),
    "per_kwh": Kind("energy_wh", "Wh", 1000, ((1, "g_per_kwh"),)),
    "energy_baseline_minus_project": Kind("energy_wh", "Wh", 1000, ((1, "baseline_g_per_kwh"), (-1, "project_g_per_kwh"))),
}


def decimal_millionths(text):
    """The DECIMAL text times 10^6, exactly (an int), or None if it is not a DECIMAL."""
    if type(text) is not str:
        return None
    match = DECIMAL.fullmatch(text)
    if match is None:
        return None
    whole, fraction = match.group(1), match.group(2) or ""
    return int(whole) * MILLIONTHS + int(fraction.ljust(6, "0"))


def _is_text(value):
    return type(value) is str and value != ""


def _is_bool(value):
    return type(value) is bool


def _citation_problem(value, what):
    """A citation: illustrative false with a non-empty source, or true with source null."""
    if value["illustrative"] is False and _is_text(value["source"]):
        return None
    if value["illustrative"] is True and value["source"] is None:
        return None
    return f"{what}: illustrative must be false with a non-empty source, or true with source null"


def _input_problem(name, spec):
    if type(name) is not str or INPUT_NAME.fullmatch(name) is None or name in RESERVED_INPUT_NAMES:
        return f"input name {name!r} is not ^[a-z][a-z0-9_]{{0,39}}$ or is reserved"
    if type(spec) is not dict or type(spec.get("type")) is not str or spec["type"] not in INPUT_FIELDS:
        return f"input {name}: type must be one of integer, code, enum"
    if spec.keys() != INPUT_FIELDS[spec["type"]]:
        return f"input {name}: fields must be exactly {sorted(INPUT_FIELDS[spec['type']])}"
    if not (_is_bool(spec["required"]) and _is_bool(spec["public"]) and _is_text(spec["description"])):
        return f"input {name}: required and public must be booleans, description a non-empty string"
    if spec["type"] == "integer":
        low, high = spec["min"], spec["max"]
        if not _is_text(spec["unit"]):
            return f"input {name}: unit must be a non-empty string"
        if not (type(low) is int and type(high) is int and 0 <= low <= high <= MAX_INTEGER_INPUT):
            return f"input {name}: min and max must be integers with 0 <= min <= max <= 10^12"
    elif spec["type"] == "enum":
        values = spec["values"]
        if not (
            type(values) is list
            and 1 <= len(values) <= MAX_ENUM_VALUES
            and all(type(value) is str and CODE.fullmatch(value) for value in values)
            and len(set(values)) == len(values)
        ):
            return f"input {name}: values must be 1 to 32 distinct codes"
    return None


def definition_problem(params):
    """Why params is not a section 7.1 definition, or None."""
    if type(params) is not dict or params.keys() != DEFINITION_FIELDS:
        return f"params must have exactly the fields {sorted(DEFINITION_FIELDS)}"
    if not _is_text(params["description"]):
        return "params.description must be a non-empty string"
    formula = params["formula"]
    if type(formula) is not dict or formula.keys() != FORMULA_FIELDS:
        return f"params.formula must have exactly the fields {sorted(FORMULA_FIELDS)}"
    kind = KINDS.get(formula["kind"]) if type(formula["kind"]) is str else None
    if kind is None:
        return f"params.formula.kind must be one of {sorted(KINDS)}"
    if type(formula["expression"]) is not str or type(formula["rounding"]) is not str:
        return "params.formula.expression and rounding must be strings"
    if formula["quantity_field"] != kind.quantity_field or formula["quantity_unit"] != kind.quantity_unit:
        return f"params.formula: quantity_field and quantity_unit must be {kind.quantity_field!r} and {kind.quantity_unit!r} for {formula['kind']}"
    inputs = params["inputs"]
    if type(inputs) is not dict or not 1 <= len(inputs) <= MAX_INPUTS:
        return "params.inputs must be an object of 1 to 16 inputs"
    for name, spec in inputs.items():
        problem = _input_problem(name, spec)
        if problem:
            return f"params.inputs: {problem}"
    if kind.quantity_field is not None:
        quantity = inputs.get(kind.quantity_field)
        if quantity is None or quantity["type"] != "integer" or quantity["required"] is not True or quantity["public"] is not True:
            return f"params.inputs must hold {kind.quantity_field}, an integer input, required and public"
    factors = params["factors"]
    names = {name for _, name in kind.terms}
    if type(factors) is not dict or factors.keys() != names:
        return f"params.factors must be exactly {sorted(names)}"
    for name, factor in factors.items():
        if type(factor) is not dict or not (
            {"value", "unit", "source", "illustrative"} <= factor.keys() <= {"value", "unit", "source", "illustrative", "note"}
        ):
            return f"params.factors.{name} must have value, unit, source, illustrative and optionally note"
        if decimal_millionths(factor["value"]) is None:
            return f"params.factors.{name}.value must be a DECIMAL string"
        if not _is_text(factor["unit"]) or ("note" in factor and type(factor["note"]) is not str):
            return f"params.factors.{name}: unit must be a non-empty string, note a string"
        problem = _citation_problem(factor, f"params.factors.{name}")
        if problem:
            return problem
    cap = params["daily_cap"]
    if type(cap) is not dict or cap.keys() != {"value_g", "source", "illustrative"}:
        return "params.daily_cap must be exactly {value_g, source, illustrative}"
    if not (type(cap["value_g"]) is int and 1 <= cap["value_g"] <= MAX_DAILY_CAP_G):
        return "params.daily_cap.value_g must be an integer in 1..1000000000"
    problem = _citation_problem(cap, "params.daily_cap")
    if problem:
        return problem
    fingerprint = params["fingerprint"]
    if type(fingerprint) is not dict or fingerprint.keys() != {"fields", "time"}:
        return "params.fingerprint must be exactly {fields, time}"
    if type(fingerprint["time"]) is not str or fingerprint["time"] not in FINGERPRINT_TIMES:
        return "params.fingerprint.time must be minute, hour or day"
    fields = fingerprint["fields"]
    if type(fields) is not list or not all(type(field) is str for field in fields) or len(set(fields)) != len(fields):
        return "params.fingerprint.fields must be a list of distinct input names"
    for field in fields:
        spec = inputs.get(field)
        if spec is None or spec["type"] not in ("code", "enum") or spec["required"] is not True:
            return f"params.fingerprint.fields: {field!r} is not a required code or enum input"
    return None


@dataclass(frozen=True, slots=True)
class InputRule:
    """What a valid value of one input is (section 7.1's table)."""

    type: str
    required: bool
    low: int
    high: int
    values: frozenset

    def accepts(self, value):
        if self.type == "integer":
            return type(value) is int and self.low <= value <= self.high
        if self.type == "code":
            return type(value) is str and CODE.fullmatch(value) is not None
        return type(value) is str and value in self.values


@dataclass(frozen=True, slots=True)
class Definition:
    """A registered version's definition, as the record checks and openings use it. Small and
    picklable: it travels with every chunk of records to a worker."""

    methodology_id: str
    version: int
    quantity_field: object  # None: q = 1 (per_trip)
    factor_millionths: int  # F = S * 10^6, an exact integer
    divisor: int  # per_units * 10^6
    daily_cap_g: int
    public: dict  # name -> InputRule
    private: dict  # name -> InputRule
    required_public: frozenset
    illustrative: bool

    @classmethod
    def of(cls, methodology_id, version, params):
        """The definition of params that passed definition_problem."""
        kind = KINDS[params["formula"]["kind"]]
        factors = params["factors"]
        rules = {
            name: InputRule(spec["type"], spec["required"], spec.get("min", 0), spec.get("max", 0), frozenset(spec.get("values", ())))
            for name, spec in params["inputs"].items()
        }
        public = {name: rule for name, rule in rules.items() if params["inputs"][name]["public"]}
        return cls(
            methodology_id=methodology_id,
            version=version,
            quantity_field=kind.quantity_field,
            factor_millionths=sum(sign * decimal_millionths(factors[name]["value"]) for sign, name in kind.terms),
            divisor=kind.per_units * MILLIONTHS,
            daily_cap_g=params["daily_cap"]["value_g"],
            public=public,
            private={name: rule for name, rule in rules.items() if name not in public},
            required_public=frozenset(name for name, rule in public.items() if rule.required),
            illustrative=any(factor["illustrative"] for factor in factors.values()),
        )

    def inputs_problem(self, inputs):
        """Why a record's inputs are not exactly this version's public inputs with valid values."""
        public = self.public
        for name, value in inputs.items():
            rule = public.get(name)
            if rule is None:
                return f"input {name!r} is not a public input of {self.methodology_id} v{self.version}"
            if not rule.accepts(value):
                return f"input {name} = {value!r:.60} is not a valid value"
        missing = self.required_public - inputs.keys()
        if missing:
            return f"required public input(s) {sorted(missing)} missing"
        return None

    def formula_g(self, inputs):
        """formula(inputs) of section 7.2, for inputs that passed inputs_problem."""
        quantity = 1 if self.quantity_field is None else inputs[self.quantity_field]
        return max(0, quantity * self.factor_millionths // self.divisor)

    def formulas_g(self, quantities):
        """formula_g of many records at once, from their quantities (valid, so >= 0): with F >= 0
        no product is negative, and with F < 0 none is positive."""
        factor, divisor = self.factor_millionths, self.divisor
        if factor < 0:
            return [0] * len(quantities)
        return [quantity * factor // divisor for quantity in quantities]
