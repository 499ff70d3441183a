"""Methodologies (方法学) as reviewed, versioned data: loading, checking, publishing.

A definition is one JSON file `methodologies/<ID>.v<VERSION>.json`: the `methodology.register`
body without request_id, whose `params` are a definition of spec section 7.1 (format 2). They name
the formula kind (a closed set, `FORMULAS`), the input schema with the inputs a record publishes,
the factors as decimal strings each with its source or an illustrative mark, the daily cap per
subject, and the fields that identify the real-world act (the fingerprint). A new version is a
new file; records keep the version that quantified them, so a new version never changes what was
already counted.
"""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass
from decimal import Context, Decimal, Inexact
from importlib import resources
from typing import Any, Iterable, Mapping

from ledger.definitions import definition
from ledger.errors import Rejected

IDENTIFIER = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
SECTORS = ("green_travel", "green_consumption", "resource_saving", "energy_substitution", "other")
# Non-negative decimal strings with a bounded size: factors never need more, and the bound keeps
# every product exact within the context below.
FACTOR_VALUE = re.compile(r"(0|[1-9][0-9]{0,8})(\.[0-9]{1,6})?")
FINGERPRINT_TIMES = ("minute", "hour", "day")
# A quantify request may carry these beside the inputs (they make the fingerprint).
RESERVED_INPUT_NAMES = ("subject", "occurred_at")

MAX_INPUT_FIELDS = 16
MAX_INTEGER_INPUT = 10**12
MAX_CODE_CHARS = 64
MAX_ENUM_VALUES = 32
MAX_TEXT_CHARS = 256
MAX_DAILY_CAP_G = 1_000_000_000

# Exact decimal arithmetic: 40 digits hold every sum and product made here (a factor sum has at
# most 16 digits, a quantity at most 19), and Inexact traps, so a rounding here would be an
# error, never a silent change.
EXACT = Context(prec=40, traps=[Inexact])

ROUNDING_RULE = (
    "the exact decimal result is clipped at 0 and rounded down (floor) to whole grams: "
    "a record never credits a fraction of a gram it did not earn"
)


class MethodologyError(ValueError):
    """A definition that does not follow the format."""


@dataclass(frozen=True)
class Formula:
    """One formula kind: which input is the quantity, its unit, and how factors combine.

    reduction_g = floor(max(0, quantity / per_units * sum(sign * factor)))
    """

    quantity_field: str | None  # None: one act, one factor (quantity is 1)
    quantity_unit: str | None
    per_units: int  # quantity units per factor unit (1000 m per km, 1000 Wh per kWh, ...)
    terms: tuple[tuple[str, int], ...]  # (factor name, +1 baseline | -1 project)

    def render(self, quantity: str | None, factors: list[str]) -> str:
        """floor(max(0, ...)) with these texts for the quantity and the factors (names or values)."""
        factor_text = factors[0] if len(factors) == 1 else "(" + " - ".join(factors) + ")"
        if self.quantity_field is None:
            product = factor_text
        elif self.per_units == 1:
            product = f"{quantity} * {factor_text}"
        else:
            product = f"{quantity} / {self.per_units} * {factor_text}"
        return f"floor(max(0, {product}))"

    def expression(self) -> str:
        return "reduction_g = " + self.render(self.quantity_field, [name for name, _ in self.terms])


FORMULAS: dict[str, Formula] = {
    "per_trip": Formula(None, None, 1, (("g_per_trip", 1),)),
    "per_distance": Formula("distance_m", "m", 1000, (("g_per_km", 1),)),
    "distance_baseline_minus_project": Formula(
        "distance_m", "m", 1000, (("baseline_g_per_km", 1), ("project_g_per_km", -1))
    ),
    "per_item": Formula("items", "item", 1, (("g_per_item", 1),)),
    "per_kg": Formula("mass_g", "g", 1000, (("g_per_kg", 1),)),
    "per_kwh": Formula("energy_wh", "Wh", 1000, (("g_per_kwh", 1),)),
    "energy_baseline_minus_project": Formula(
        "energy_wh", "Wh", 1000, (("baseline_g_per_kwh", 1), ("project_g_per_kwh", -1))
    ),
}


@dataclass(frozen=True)
class Factor:
    name: str
    value: str  # a decimal string, never a float
    unit: str
    source: str | None
    illustrative: bool
    note: str | None = None

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "value": self.value, "unit": self.unit, "source": self.source, "illustrative": self.illustrative,
        }
        if self.note is not None:
            out["note"] = self.note
        return out

    def citation(self) -> str:
        return self.source if not self.illustrative else "ILLUSTRATIVE (no published source)"


@dataclass(frozen=True)
class InputField:
    name: str
    kind: str  # "integer" | "code" | "enum"
    required: bool
    description: str
    unit: str | None = None
    minimum: int | None = None
    maximum: int | None = None
    values: tuple[str, ...] = ()
    # A format-2 record carries the public inputs only; the others stay in its private opening
    # (spec section 7.4): quantities and coarse categories are public, codes naming a place or device never.
    public: bool = False

    def as_json(self, public_marked: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.kind, "required": self.required, "description": self.description}
        if public_marked:
            out["public"] = self.public
        if self.kind == "integer":
            out.update(unit=self.unit, min=self.minimum, max=self.maximum)
        elif self.kind == "enum":
            out["values"] = list(self.values)
        return out


@dataclass(frozen=True)
class Methodology:
    methodology_id: str
    version: int
    title: str
    sector: str
    description: str
    formula_kind: str
    inputs: tuple[InputField, ...]
    factors: tuple[Factor, ...]  # in the order of the formula's terms
    daily_cap_g: int
    daily_cap_source: str | None  # None: a policy value chosen here, marked illustrative
    fingerprint_fields: tuple[str, ...]
    fingerprint_time: str
    offset_eligible: bool  # at registration; afterwards the registry operator decides
    # False for a definition logged before section 7.1 (a format-1 log), whose inputs do not say
    # which are public: its params are read and written back without `public`.
    public_marked: bool = True

    @property
    def formula(self) -> Formula:
        return FORMULAS[self.formula_kind]

    @property
    def illustrative(self) -> bool:
        """True when any factor lacks a published source."""
        return any(f.illustrative for f in self.factors)

    def factor(self, name: str) -> Factor:
        for f in self.factors:
            if f.name == name:
                return f
        raise KeyError(name)

    def coefficient(self) -> Decimal:
        """sum(sign * factor) in grams per factor unit, exact."""
        total = Decimal(0)
        for f, (_, sign) in zip(self.factors, self.formula.terms):
            total = EXACT.add(total, Decimal(f.value) if sign > 0 else -Decimal(f.value))
        return total

    def params(self) -> dict[str, Any]:
        """The `params` published in `methodology.register`: the whole reviewable definition.

        Only strings, integers, booleans, null, lists and objects: decimals are strings.
        """
        formula = self.formula
        return {
            "description": self.description,
            "formula": {
                "kind": self.formula_kind,
                "expression": formula.expression(),
                "quantity_field": formula.quantity_field,
                "quantity_unit": formula.quantity_unit,
                "rounding": ROUNDING_RULE,
            },
            "factors": {f.name: f.as_json() for f in self.factors},
            "daily_cap": {
                "value_g": self.daily_cap_g,
                "source": self.daily_cap_source,
                "illustrative": self.daily_cap_source is None,
            },
            "inputs": {field.name: field.as_json(self.public_marked) for field in self.inputs},
            "fingerprint": {"fields": list(self.fingerprint_fields), "time": self.fingerprint_time},
        }

    def as_json(self) -> dict[str, Any]:
        """The definition file's content, the register body without request_id (round-trips through from_json)."""
        return register_body(self)


# --- loading and checking -------------------------------------------------------------------


def _fail(where: str, why: str) -> None:
    raise MethodologyError(f"{where}: {why}")


def _exact_keys(where: str, obj: Any, required: set[str], optional: set[str] = frozenset()) -> None:
    if not isinstance(obj, dict):
        _fail(where, "must be a JSON object")
    missing = required - obj.keys()
    extra = obj.keys() - required - optional
    if missing:
        _fail(where, f"missing {', '.join(sorted(missing))}")
    if extra:
        _fail(where, f"unknown {', '.join(sorted(extra))}")


def _text(where: str, value: Any, limit: int = MAX_TEXT_CHARS) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        _fail(where, f"must be a non-empty string of at most {limit} characters")
    return value


def _int(where: str, value: Any, low: int, high: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        _fail(where, f"must be an integer in {low}..{high}")
    return value


def _bool(where: str, value: Any) -> bool:
    if not isinstance(value, bool):
        _fail(where, "must be true or false")
    return value


def check_citation(where: str, source: Any, illustrative: Any) -> tuple[str | None, bool]:
    """A value is either cited (source text, illustrative false) or illustrative (source null)."""
    illustrative = _bool(f"{where}.illustrative", illustrative)
    if illustrative:
        if source is not None:
            _fail(f"{where}.source", "an illustrative value has no source (null)")
        return None, True
    return _text(f"{where}.source", source, 512), False


def _input_field(where: str, name: str, spec: Any) -> InputField:
    if not re.fullmatch(r"[a-z][a-z0-9_]{0,39}", name) or name in RESERVED_INPUT_NAMES:
        _fail(where, "an input name is a lowercase ASCII identifier other than subject or occurred_at")
    kind = spec.get("type") if isinstance(spec, dict) else None
    # `public` is optional only for a definition logged before section 7.1 (from_json checks all or none say it).
    if kind == "integer":
        _exact_keys(where, spec, {"type", "required", "description", "unit", "min", "max"}, {"public"})
        low = _int(f"{where}.min", spec["min"], 0, MAX_INTEGER_INPUT)
        high = _int(f"{where}.max", spec["max"], low, MAX_INTEGER_INPUT)
        return InputField(name, kind, _bool(f"{where}.required", spec["required"]),
                          _text(f"{where}.description", spec["description"]),
                          unit=_text(f"{where}.unit", spec["unit"], 32), minimum=low, maximum=high,
                          public=_bool(f"{where}.public", spec.get("public", False)))
    if kind == "code":
        _exact_keys(where, spec, {"type", "required", "description"}, {"public"})
        return InputField(name, kind, _bool(f"{where}.required", spec["required"]),
                          _text(f"{where}.description", spec["description"]),
                          public=_bool(f"{where}.public", spec.get("public", False)))
    if kind == "enum":
        _exact_keys(where, spec, {"type", "required", "description", "values"}, {"public"})
        values = spec["values"]
        if (not isinstance(values, list) or not 1 <= len(values) <= MAX_ENUM_VALUES
                or len(set(values)) != len(values)
                or not all(isinstance(v, str) and IDENTIFIER.fullmatch(v) and len(v) <= MAX_CODE_CHARS
                           for v in values)):
            _fail(f"{where}.values", f"must be 1 to {MAX_ENUM_VALUES} distinct codes")
        return InputField(name, kind, _bool(f"{where}.required", spec["required"]),
                          _text(f"{where}.description", spec["description"]), values=tuple(values),
                          public=_bool(f"{where}.public", spec.get("public", False)))
    _fail(f"{where}.type", "must be integer, code or enum")
    raise AssertionError  # unreachable: _fail raises


def from_json(doc: Any) -> Methodology:
    """Check a definition document (a register body without request_id) and build the Methodology;
    MethodologyError says what is wrong."""
    _exact_keys("definition", doc, {"methodology_id", "version", "title", "sector", "params", "offset_eligible"})
    mid = doc["methodology_id"]
    if not isinstance(mid, str) or not IDENTIFIER.fullmatch(mid):
        _fail("methodology_id", "must be an identifier")
    where = f"{mid}"
    version = _int(f"{where}.version", doc["version"], 1, 1_000_000)
    where = f"{mid} v{version}"
    if doc["sector"] not in SECTORS:
        _fail(f"{where}.sector", f"must be one of {', '.join(SECTORS)}")
    params = doc["params"]
    _exact_keys(f"{where}.params", params, {"description", "formula", "inputs", "factors", "daily_cap", "fingerprint"})
    where = f"{where}.params"
    raw_formula = params["formula"]
    _exact_keys(f"{where}.formula", raw_formula, {"kind", "expression", "quantity_field", "quantity_unit", "rounding"})
    kind = raw_formula["kind"]
    if kind not in FORMULAS:
        _fail(f"{where}.formula", f"kind must be one of {', '.join(FORMULAS)}")
    formula = FORMULAS[kind]
    if (raw_formula["quantity_field"], raw_formula["quantity_unit"]) != (formula.quantity_field, formula.quantity_unit):
        _fail(f"{where}.formula", f"quantity_field and quantity_unit of {kind} are {formula.quantity_field!r} and "
                                  f"{formula.quantity_unit!r}")
    # expression and rounding are text for readers (the kind alone decides): any wording is read.
    _text(f"{where}.formula.expression", raw_formula["expression"], 512)
    _text(f"{where}.formula.rounding", raw_formula["rounding"], 512)

    raw_inputs = params["inputs"]
    if not isinstance(raw_inputs, dict) or not 0 < len(raw_inputs) <= MAX_INPUT_FIELDS:
        _fail(f"{where}.inputs", f"must be an object of 1 to {MAX_INPUT_FIELDS} fields")
    inputs = tuple(_input_field(f"{where}.inputs.{name}", name, spec) for name, spec in raw_inputs.items())
    marked = {"public" in spec for spec in raw_inputs.values()}
    if len(marked) != 1:
        _fail(f"{where}.inputs", "every input says whether it is public, or (a definition logged before spec 7.1) none")
    public_marked = marked == {True}
    by_name = {field.name: field for field in inputs}
    if formula.quantity_field is not None:
        quantity = by_name.get(formula.quantity_field)
        if quantity is None or quantity.kind != "integer" or not quantity.required \
                or (public_marked and not quantity.public):
            _fail(f"{where}.inputs", f"formula {kind} needs a required integer input {formula.quantity_field}, public")

    raw_factors = params["factors"]
    names = [name for name, _ in formula.terms]
    if not isinstance(raw_factors, dict) or sorted(raw_factors) != sorted(names):
        _fail(f"{where}.factors", f"formula {kind} takes exactly the factors {', '.join(names)}")
    factors = []
    for name in names:
        spec = raw_factors[name]
        fwhere = f"{where}.factors.{name}"
        _exact_keys(fwhere, spec, {"value", "unit", "source", "illustrative"}, {"note"})
        value = spec["value"]
        if not isinstance(value, str) or not FACTOR_VALUE.fullmatch(value):
            _fail(f"{fwhere}.value", "must be a non-negative decimal string such as \"78.4\" (never a JSON number)")
        source, illustrative = check_citation(fwhere, spec["source"], spec["illustrative"])
        note = spec.get("note")
        if note is not None:
            _text(f"{fwhere}.note", note, 512)
        factors.append(Factor(name, value, _text(f"{fwhere}.unit", spec["unit"], 32), source, illustrative, note))

    cap = params["daily_cap"]
    _exact_keys(f"{where}.daily_cap", cap, {"value_g", "source", "illustrative"})
    cap_g = _int(f"{where}.daily_cap.value_g", cap["value_g"], 1, MAX_DAILY_CAP_G)
    cap_source, _ = check_citation(f"{where}.daily_cap", cap["source"], cap["illustrative"])

    fp = params["fingerprint"]
    _exact_keys(f"{where}.fingerprint", fp, {"fields", "time"})
    if fp["time"] not in FINGERPRINT_TIMES:
        _fail(f"{where}.fingerprint.time", f"must be one of {', '.join(FINGERPRINT_TIMES)}")
    fields = fp["fields"]
    if not isinstance(fields, list) or len(set(fields)) != len(fields if isinstance(fields, list) else ()):
        _fail(f"{where}.fingerprint.fields", "must be a list of distinct input names")
    for name in fields:
        field = by_name.get(name) if isinstance(name, str) else None
        # Only fields every platform must send and that name the act rather than measure it:
        # two platforms measure a ride's distance differently but agree on its stations.
        if field is None or not field.required or field.kind == "integer":
            _fail(f"{where}.fingerprint.fields", f"{name!r} is not a required code or enum input")

    eligible = _bool(f"{mid} v{version}.offset_eligible", doc["offset_eligible"])
    methodology = Methodology(
        methodology_id=mid, version=version, title=_text(f"{mid} v{version}.title", doc["title"]), sector=doc["sector"],
        description=_text(f"{where}.description", params["description"], 2000), formula_kind=kind, inputs=inputs,
        factors=tuple(factors), daily_cap_g=cap_g, daily_cap_source=cap_source,
        fingerprint_fields=tuple(fields), fingerprint_time=fp["time"], offset_eligible=eligible,
        public_marked=public_marked,
    )
    if eligible and methodology.illustrative:
        _fail(f"{mid} v{version}.offset_eligible", "a methodology with an illustrative factor cannot be offset eligible")
    methodology.coefficient()  # proves the factor sum is exact
    return methodology


def check_section_7_1(doc: Any, methodology: Methodology) -> None:
    """A shipped file's params are a definition of spec section 7.1 (what a format-2 log admits),
    exactly as register_body publishes them."""
    where = f"{methodology.methodology_id} v{methodology.version}"
    try:
        definition("params", doc["params"])
    except Rejected as refusal:
        raise MethodologyError(f"{where}: not a spec 7.1 definition: {refusal.message}") from None
    if methodology.params() != doc["params"]:
        raise MethodologyError(f"{where}: params differ from what register_body publishes (formula expression "
                               "and rounding are written as the kind renders them)")


def close_matches(wanted: str, known: Iterable[str]) -> str:
    """"; did you mean ...?" with the known ids closest to a mistyped one, else the ids there are."""
    known = sorted(known)
    close = difflib.get_close_matches(str(wanted), known, n=3, cutoff=0.6)
    if close:
        return f"; did you mean {' or '.join(close)}?"
    return f"; there are {', '.join(known[:12])}{', ...' if len(known) > 12 else ''}" if known else "; there is none yet"


class MethodologyLibrary:
    """Every version of every methodology, by id; the latest version is the one in force."""

    def __init__(self, methodologies: Iterable[Methodology]):
        self._versions: dict[str, list[Methodology]] = {}
        for m in sorted(methodologies, key=lambda m: (m.methodology_id, m.version)):
            versions = self._versions.setdefault(m.methodology_id, [])
            if m.version != len(versions) + 1:
                raise MethodologyError(f"{m.methodology_id}: version {m.version} follows {len(versions)}")
            versions.append(m)

    def ids(self) -> list[str]:
        return sorted(self._versions)

    def versions(self, methodology_id: str) -> list[Methodology]:
        return list(self._versions[methodology_id])

    def get(self, methodology_id: str, version: int | None = None) -> Methodology:
        """A given version, or the latest; KeyError if there is none."""
        versions = self._versions.get(methodology_id)
        if not versions:
            raise KeyError(f"no methodology {methodology_id!r}{close_matches(methodology_id, self._versions)}")
        if version is None:
            return versions[-1]
        if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version <= len(versions):
            raise KeyError(f"no version {version!r} of methodology {methodology_id!r}")
        return versions[version - 1]

    def latest(self) -> list[Methodology]:
        return [versions[-1] for _, versions in sorted(self._versions.items())]

    def all(self) -> list[Methodology]:
        return [m for _, versions in sorted(self._versions.items()) for m in versions]


_DEFINITION_FILE = re.compile(r"(?P<id>[A-Za-z0-9][A-Za-z0-9._-]*)\.v(?P<version>[1-9][0-9]*)\.json")


def load_shipped() -> MethodologyLibrary:
    """The library shipped in quantify/methodologies/, each file checked against its name."""
    found = []
    for entry in resources.files("quantify").joinpath("methodologies").iterdir():
        match = _DEFINITION_FILE.fullmatch(entry.name)
        if match is None:
            continue
        doc = json.loads(entry.read_text(encoding="utf-8"))
        methodology = from_json(doc)
        check_section_7_1(doc, methodology)
        if (methodology.methodology_id, methodology.version) != (match["id"], int(match["version"])):
            raise MethodologyError(f"{entry.name} holds {methodology.methodology_id} v{methodology.version}")
        found.append(methodology)
    return MethodologyLibrary(found)


# --- what the registry publishes ------------------------------------------------------------


def register_body(methodology: Methodology) -> dict[str, Any]:
    """The `methodology.register` body (spec section 6) without request_id."""
    return {
        "methodology_id": methodology.methodology_id,
        "version": methodology.version,
        "title": methodology.title,
        "sector": methodology.sector,
        "params": methodology.params(),
        "offset_eligible": methodology.offset_eligible,
    }


def eligibility_body(methodology: Methodology, offset_eligible: bool) -> dict[str, Any]:
    """The `methodology.eligibility` body without request_id (成熟一个,纳入一个).

    Refuses to admit a methodology with an illustrative factor to the carbon market: an offset
    must rest on published factors.
    """
    if not isinstance(offset_eligible, bool):
        raise TypeError("offset_eligible must be a bool")
    if offset_eligible and methodology.illustrative:
        names = ", ".join(f.name for f in methodology.factors if f.illustrative)
        raise MethodologyError(
            f"OFFSET_INELIGIBLE: {methodology.methodology_id} v{methodology.version} has illustrative factors ({names}): "
            "publish a sourced version before admitting it to offsets"
        )
    return {"methodology_id": methodology.methodology_id, "offset_eligible": offset_eligible}


def listing(library: MethodologyLibrary, eligibility: Mapping[str, bool] | None = None) -> list[dict[str, Any]]:
    """`GET /v1/methodologies`: every version, with the eligibility the registry holds now.

    eligibility maps methodology_id to the current offset_eligible (from the log); ids absent
    from it keep the value they were registered with.
    """
    eligibility = eligibility or {}
    out = []
    for m in library.all():
        latest = library.get(m.methodology_id)
        out.append({
            **register_body(m),
            "offset_eligible": eligibility.get(m.methodology_id, m.offset_eligible),
            "superseded_by": None if m is latest else latest.version,
            "illustrative": m.illustrative,
        })
    return out
