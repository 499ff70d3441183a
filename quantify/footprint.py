"""Enterprise and event footprints (企业碳排放核算, 大型活动碳中和).

A company or an event organizer enters activity data (fuels burned, purchased electricity and
heat, and for events travel, accommodation and catering) per site and month; each line is
multiplied by a cited factor from `footprint_factors.json` and rounded UP to whole grams, so a
footprint is never understated (the mirror of reductions, which round down). Totals are sums of
lines, by scope, source, site and month, so every breakdown adds up to the total exactly.
"""

from __future__ import annotations

import functools
import json
import re
import unicodedata
from collections import defaultdict
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_HALF_EVEN, Context, Decimal
from importlib import resources
from typing import Any, Mapping

from quantify.methodology import EXACT, FACTOR_VALUE, MethodologyError, check_citation
from quantify.report import Report, Table, format_tonnes

FOOTPRINT_KINDS = ("organization", "event")  # the neutrality.claim subject kinds they become
SCOPES = (1, 2, 3)
MAX_ENTRIES = 100_000
MAX_NAME_CHARS = 256
MAX_SITE_CHARS = 64
_QUANTITY = re.compile(r"(0|[1-9][0-9]{0,11})(\.[0-9]{1,6})?")
_MONTH = re.compile(r"[0-9]{4}-(0[1-9]|1[0-2])")
_SURROGATE = re.compile("[\ud800-\udfff]")
_DATE = re.compile(r"[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])")
_PERCENT = Context(prec=28, rounding=ROUND_HALF_EVEN)  # display only; quantities stay in grams
ROUNDING_RULE = "each line's exact product is rounded up (ceiling) to whole grams: a footprint is never understated"


class FootprintError(ValueError):
    """Activity data that cannot be accounted."""


@dataclass(frozen=True)
class EmissionFactor:
    key: str
    label: str
    scope: int
    unit: str
    g_per_unit: str  # a decimal string
    source: str | None
    illustrative: bool
    note: str | None

    def citation(self) -> str:
        return "ILLUSTRATIVE (no published source)" if self.illustrative else self.source


@functools.lru_cache(maxsize=1)
def emission_factors() -> dict[str, EmissionFactor]:
    """The shipped factor table, checked like a methodology's factors."""
    doc = json.loads(resources.files("quantify").joinpath("footprint_factors.json").read_text(encoding="utf-8"))
    factors = {}
    for key, spec in doc.items():
        where = f"footprint factor {key}"
        if set(spec) != {"label", "scope", "unit", "g_per_unit", "source", "illustrative", "note"}:
            raise MethodologyError(f"{where}: unexpected fields {sorted(spec)}")
        if spec["scope"] not in SCOPES or not FACTOR_VALUE.fullmatch(str(spec["g_per_unit"])):
            raise MethodologyError(f"{where}: scope must be 1, 2 or 3 and g_per_unit a decimal string")
        source, illustrative = check_citation(where, spec["source"], spec["illustrative"])
        factors[key] = EmissionFactor(key, spec["label"], spec["scope"], spec["unit"], spec["g_per_unit"], source,
                                      illustrative, spec["note"])
    return factors


@dataclass(frozen=True)
class FootprintLine:
    site: str
    month: str
    source: str
    quantity: str
    factor: EmissionFactor
    emissions_g: int


@dataclass(frozen=True)
class Footprint:
    name: str
    kind: str
    period_start: str
    period_end: str
    lines: tuple[FootprintLine, ...]

    @property
    def total_g(self) -> int:
        return sum(line.emissions_g for line in self.lines)

    def by(self, dimension: str) -> dict[Any, int]:
        """Grams by scope, source, site or month, keys sorted."""
        totals: dict[Any, int] = defaultdict(int)
        for line in self.lines:
            key = line.factor.scope if dimension == "scope" else getattr(line, dimension)
            totals[key] += line.emissions_g
        return dict(sorted(totals.items()))

    def factors_used(self) -> list[EmissionFactor]:
        return sorted({line.factor.key: line.factor for line in self.lines}.values(), key=lambda f: f.key)

    @property
    def illustrative(self) -> bool:
        return any(f.illustrative for f in self.factors_used())

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name, "kind": self.kind, "period_start": self.period_start, "period_end": self.period_end,
            "total_g": self.total_g, "total_t": format_tonnes(self.total_g),
            **{f"by_{d}": {str(k): g for k, g in self.by(d).items()} for d in ("scope", "source", "site", "month")},
            "lines": [
                {"site": line.site, "month": line.month, "source": line.source, "scope": line.factor.scope,
                 "quantity": line.quantity, "unit": line.factor.unit, "g_per_unit": line.factor.g_per_unit,
                 "citation": line.factor.citation(), "illustrative": line.factor.illustrative,
                 "emissions_g": line.emissions_g}
                for line in self.lines
            ],
            "rounding": ROUNDING_RULE,
            "illustrative": self.illustrative,
        }

    def report(self) -> Report:
        summary = [("total", "all", self.total_g, format_tonnes(self.total_g))]
        for dimension in ("scope", "source", "site", "month"):
            summary += [(dimension, key, grams, format_tonnes(grams)) for key, grams in self.by(dimension).items()]
        lines = [
            (line.site, line.month, line.source, line.factor.scope, line.quantity, line.factor.unit,
             line.factor.g_per_unit, line.emissions_g, format_tonnes(line.emissions_g), line.factor.citation())
            for line in self.lines
        ]
        factors = [(f.key, f.label, f.scope, f.g_per_unit, f"g/{f.unit}", f.citation(), f.note)
                   for f in self.factors_used()]
        notes = [f"factor {f.key} ({f.g_per_unit} g/{f.unit}) is illustrative: no published source"
                 for f in self.factors_used() if f.illustrative]
        return Report(
            title=f"Carbon footprint of {self.name}, {self.period_start} to {self.period_end}",
            tables={
                "summary": Table(("dimension", "key", "emissions_g", "emissions_t"), summary),
                "lines": Table(("site", "month", "source", "scope", "quantity", "unit", "g_per_unit", "emissions_g",
                                "emissions_t", "citation"), lines),
                "factors": Table(("source", "label", "scope", "g_per_unit", "unit", "citation", "note"), factors),
            },
            notes=notes + [ROUNDING_RULE],
            data=self.as_json(),
        )


def _fail(where: str, why: str) -> None:
    raise FootprintError(f"{where}: {why}")


def _is_text(value: Any, limit: int) -> bool:
    # NFC because the name goes into a signed neutrality.claim, which the registry refuses otherwise.
    return (isinstance(value, str) and bool(value.strip()) and len(value) <= limit
            and unicodedata.is_normalized("NFC", value) and not _SURROGATE.search(value))


def footprint(inventory: Mapping[str, Any]) -> Footprint:
    """Account an inventory {name, kind, period_start, period_end, entries: [{site, month,
    source, quantity}]}; quantity is a decimal string or an integer in the factor's unit."""
    if not isinstance(inventory, Mapping) or set(inventory) != {"name", "kind", "period_start", "period_end",
                                                                  "entries"}:
        _fail("inventory", "must hold exactly name, kind, period_start, period_end, entries")
    name = inventory["name"]
    if not _is_text(name, MAX_NAME_CHARS):
        _fail("name", f"must be a non-empty NFC string of at most {MAX_NAME_CHARS} characters")
    if inventory["kind"] not in FOOTPRINT_KINDS:
        _fail("kind", f"must be one of {', '.join(FOOTPRINT_KINDS)}")
    start, end = inventory["period_start"], inventory["period_end"]
    for field, value in (("period_start", start), ("period_end", end)):
        if not isinstance(value, str) or not _DATE.fullmatch(value):
            _fail(field, "must be a date YYYY-MM-DD")
    if start > end:
        _fail("period", "period_start is after period_end")
    entries = inventory["entries"]
    if not isinstance(entries, list) or not 1 <= len(entries) <= MAX_ENTRIES:
        _fail("entries", f"must be a list of 1 to {MAX_ENTRIES} entries")
    factors = emission_factors()
    lines = []
    for index, entry in enumerate(entries):
        where = f"entries[{index}]"
        if not isinstance(entry, Mapping) or set(entry) != {"site", "month", "source", "quantity"}:
            _fail(where, "must hold exactly site, month, source, quantity")
        site, month, source, quantity = entry["site"], entry["month"], entry["source"], entry["quantity"]
        if not _is_text(site, MAX_SITE_CHARS):
            _fail(f"{where}.site", f"must be a non-empty NFC string of at most {MAX_SITE_CHARS} characters")
        if not isinstance(month, str) or not _MONTH.fullmatch(month) or not start[:7] <= month <= end[:7]:
            _fail(f"{where}.month", "must be a month YYYY-MM inside the period")
        factor = factors.get(source) if isinstance(source, str) else None
        if factor is None:
            _fail(f"{where}.source", f"must be one of {', '.join(sorted(factors))}")
        if isinstance(quantity, int) and not isinstance(quantity, bool):
            quantity = str(quantity)
        if not isinstance(quantity, str) or not _QUANTITY.fullmatch(quantity):
            _fail(f"{where}.quantity", "must be a non-negative decimal string (at most 6 decimals) or an integer")
        exact = EXACT.multiply(Decimal(quantity), Decimal(factor.g_per_unit))
        emissions_g = int(exact.to_integral_value(rounding=ROUND_CEILING))
        lines.append(FootprintLine(site, month, source, quantity, factor, emissions_g))
    return Footprint(name, inventory["kind"], start, end, tuple(lines))


def _change_percent(earlier_g: int, later_g: int) -> str:
    if earlier_g == 0:
        return "n/a"
    percent = _PERCENT.divide(Decimal((later_g - earlier_g) * 100), Decimal(earlier_g))
    return f"{_PERCENT.quantize(percent, Decimal('0.1')):+}%"


def compare_footprints(earlier: Footprint, later: Footprint) -> Report:
    """The later period against the earlier, by scope, source and site: grams, tonnes, change."""
    rows = [("total", "all", earlier.total_g, later.total_g, later.total_g - earlier.total_g,
             format_tonnes(later.total_g - earlier.total_g), _change_percent(earlier.total_g, later.total_g))]
    for dimension in ("scope", "source", "site"):
        before, after = earlier.by(dimension), later.by(dimension)
        for key in sorted(before.keys() | after.keys(), key=str):
            b, a = before.get(key, 0), after.get(key, 0)
            rows.append((dimension, key, b, a, a - b, format_tonnes(a - b), _change_percent(b, a)))
    illustrative = sorted({f.key for fp in (earlier, later) for f in fp.factors_used() if f.illustrative})
    return Report(
        title=(f"{later.name} {later.period_start}..{later.period_end} against "
               f"{earlier.name} {earlier.period_start}..{earlier.period_end}"),
        tables={"comparison": Table(("dimension", "key", "earlier_g", "later_g", "change_g", "change_t",
                                     "change_percent"), rows)},
        notes=[f"factor {key} is illustrative: no published source" for key in illustrative]
        + ["change_percent is rounded half to even at 0.1 %"],
        data={"earlier_total_g": earlier.total_g, "later_total_g": later.total_g},
    )
