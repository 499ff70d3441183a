"""Neutrality plans and claims (碳中和): a footprint against the retirements meant to cover it.

The plan counts only retirements that `neutrality.claim` accepts (spec section 6): purpose
carbon_neutrality, retired from the claimant, not used by an earlier surrender or claim, each
listed once. The claim body is built only when they cover the footprint; the claim's public page
shows the footprint, the retired serials and their proofs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Container, Sequence

from quantify.activity import IDENTIFIER
from quantify.footprint import Footprint
from quantify.report import Report, Table, format_tonnes


class NotCovered(ValueError):
    """The retirements do not cover the footprint: no claim may be submitted."""


@dataclass(frozen=True)
class Retirement:
    """A retirement as the log holds it (the registry fills this from its projections)."""

    retirement_id: str
    account: str
    amount_g: int
    purpose: str
    serials: Sequence[Sequence[int]] = ()  # effects.serials: half-open [START, END) ranges
    seq: int | None = None  # the retirement's leaf in the log
    proof: dict[str, Any] | None = None  # its inclusion proof in the log (spec section 4 JSON)


@dataclass(frozen=True)
class NeutralityPlan:
    footprint: Footprint
    claimant: str
    counted: tuple[Retirement, ...]
    excluded: tuple[tuple[Retirement, str], ...]  # (retirement, why it does not count)
    retired_g: int = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "retired_g", sum(r.amount_g for r in self.counted))

    @property
    def footprint_g(self) -> int:
        return self.footprint.total_g

    @property
    def covered(self) -> bool:
        return self.footprint_g >= 1 and self.retired_g >= self.footprint_g

    @property
    def short_g(self) -> int:
        return max(0, self.footprint_g - self.retired_g)

    def report(self) -> Report:
        verdict = ("covered: a neutrality.claim may be submitted" if self.covered
                   else f"short by {format_tonnes(self.short_g)} t ({self.short_g} g): retire more before claiming")
        if self.footprint_g < 1:
            verdict = "nothing to neutralize: the footprint is 0 g"
        rows = [(r.retirement_id, r.amount_g, format_tonnes(r.amount_g), "counted") for r in self.counted]
        rows += [(r.retirement_id, r.amount_g, format_tonnes(r.amount_g), f"excluded: {why}") for r, why in self.excluded]
        return Report(
            title=f"Neutrality plan of {self.claimant} for {self.footprint.name}",
            tables={
                "summary": Table(("item", "grams", "tonnes"), [
                    ("footprint", self.footprint_g, format_tonnes(self.footprint_g)),
                    ("retired", self.retired_g, format_tonnes(self.retired_g)),
                    ("short", self.short_g, format_tonnes(self.short_g)),
                ]),
                "retirements": Table(("retirement_id", "amount_g", "amount_t", "status"), rows),
            },
            notes=[verdict],
            data={"claimant": self.claimant, "footprint_g": self.footprint_g, "retired_g": self.retired_g,
                  "covered": self.covered, "short_g": self.short_g},
        )


def neutrality_plan(footprint: Footprint, claimant: str, retirements: Sequence[Retirement],
                    used_retirement_ids: Container[str] = frozenset()) -> NeutralityPlan:
    """Which retirements count toward the footprint, and whether they cover it."""
    if not isinstance(claimant, str) or not IDENTIFIER.fullmatch(claimant):
        raise ValueError("claimant must be an account id")
    counted: list[Retirement] = []
    excluded: list[tuple[Retirement, str]] = []
    listed: set[str] = set()
    for retirement in retirements:
        if retirement.retirement_id in listed:
            excluded.append((retirement, "listed twice"))
        elif retirement.purpose != "carbon_neutrality":
            excluded.append((retirement, f"purpose {retirement.purpose}, not carbon_neutrality"))
        elif retirement.account != claimant:
            excluded.append((retirement, f"retired from {retirement.account}, not from {claimant}"))
        elif retirement.retirement_id in used_retirement_ids:
            excluded.append((retirement, "already used by an earlier surrender or claim"))
        else:
            counted.append(retirement)
        listed.add(retirement.retirement_id)
    return NeutralityPlan(footprint, claimant, tuple(counted), tuple(excluded))


def neutrality_claim_body(plan: NeutralityPlan, claim_id: str) -> dict[str, Any]:
    """The `neutrality.claim` body (without request_id); NotCovered unless the plan is covered."""
    if not isinstance(claim_id, str) or not IDENTIFIER.fullmatch(claim_id):
        raise ValueError("claim_id must be an identifier")
    if not plan.covered:
        raise NotCovered(f"retirements of {plan.retired_g} g do not cover the footprint of {plan.footprint_g} g")
    fp = plan.footprint
    return {
        "claim_id": claim_id,
        "claimant": plan.claimant,
        "subject": {"kind": fp.kind, "name": fp.name},
        "period_start": fp.period_start,
        "period_end": fp.period_end,
        "footprint_g": plan.footprint_g,
        "retirements": [r.retirement_id for r in plan.counted],
    }


def claim_page(claim: dict[str, Any], plan: NeutralityPlan) -> Report:
    """The public page of a submitted claim: footprint by scope and source with every factor
    cited, the retired serials and each retirement's proof in the log."""
    if claim["retirements"] != [r.retirement_id for r in plan.counted] or claim["footprint_g"] != plan.footprint_g:
        raise ValueError("the claim does not match the plan it is shown with")
    footprint_report = plan.footprint.report()
    return _page(claim, plan.counted, {"footprint": footprint_report.tables["summary"],
                                       "factors": footprint_report.tables["factors"]},
                 footprint_report.notes, plan.footprint.as_json())


def claim_page_from_log(claim: dict[str, Any], retirements: Sequence[Retirement]) -> Report:
    """The public page of a submitted claim from what the log holds alone: the footprint as the
    signed claim declares it (footprint_g), the retired serials and each retirement's proof.
    The breakdown by scope and source is the claimant's inventory: claim_page shows it."""
    if claim["retirements"] != [r.retirement_id for r in retirements]:
        raise ValueError("the retirements are not the claim's")
    notes = ["the footprint is the one declared in the signed claim (footprint_g); its breakdown by scope, "
             "source, site and month, with every factor cited, comes from the claimant's inventory"]
    return _page(claim, retirements, {}, notes, None)


def _page(claim: dict[str, Any], retirements: Sequence[Retirement], footprint_tables: dict[str, Table],
          notes: list[str], footprint_json: dict[str, Any] | None) -> Report:
    retired_g = sum(r.amount_g for r in retirements)
    retirement_rows = [
        (r.retirement_id, r.amount_g, format_tonnes(r.amount_g),
         " ".join(f"[{start},{end})" for start, end in r.serials), r.seq,
         None if r.proof is None else f"{len(r.proof['hashes'])} hashes, tree size {r.proof['tree_size']}")
        for r in retirements
    ]
    return Report(
        title=f"Carbon neutrality claim {claim['claim_id']}: {claim['subject']['name']}",
        tables={
            "claim": Table(("item", "value"), [
                ("claimant", claim["claimant"]),
                ("subject", f"{claim['subject']['kind']}: {claim['subject']['name']}"),
                ("period", f"{claim['period_start']} to {claim['period_end']}"),
                ("footprint_t", format_tonnes(claim["footprint_g"])),
                ("retired_t", format_tonnes(retired_g)),
            ]),
            **footprint_tables,
            "retirements": Table(("retirement_id", "amount_g", "amount_t", "serials", "seq", "proof"),
                                 retirement_rows),
        },
        notes=notes,
        data={
            "claim": claim,
            "footprint": footprint_json,
            "retirements": [
                {"retirement_id": r.retirement_id, "amount_g": r.amount_g, "serials": [list(s) for s in r.serials],
                 "seq": r.seq, "proof": r.proof}
                for r in retirements
            ],
        },
    )
