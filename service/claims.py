"""A neutrality claim's public page from the log: the declared footprint, the retired serials (and
the issuances they come from), each retirement's receipt and the claim's.

With the claimant's inventory, the page also breaks the footprint down by scope, source, site and
month; the inventory must be the claim's (subject, period, total), or ClaimMismatch.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Sequence

from ledger.queries import MAX_PAGE_ITEMS, Queries
from ledger.receipts import build_receipt
from ledger.registry import LogReader
from quantify.footprint import footprint
from quantify.neutrality import Retirement, claim_page, claim_page_from_log, neutrality_plan
from quantify.report import Report, Table, format_tonnes


class ClaimMismatch(ValueError):
    """An inventory that is not the claim's: another subject or period, or another total."""


class LoggedClaim(NamedTuple):
    claim: dict[str, Any]  # as its body says it, plus seq, time and retired_g
    retirements: list[dict[str, Any]]  # as the disclosure list shows them (serials and their sources), in the claim's order


def logged_claim(queries: Queries, claim_id: str, fields: Sequence[str]) -> LoggedClaim | None:
    """The claim (its `fields`, in that order) and its retirements, or None if there is no such claim."""
    logged = queries.claim(claim_id)
    if logged is None:
        return None
    claim = {key: logged[key] for key in fields}
    first_seq = min(queries.retirement_seqs(claim["retirements"]).values(), default=None)
    wanted, found, after = set(claim["retirements"]), {}, -1 if first_seq is None else first_seq - 1
    while True:  # the claimant's neutrality retirements from the first of them; the claim uses its own
        page = queries.retirements(account=claim["claimant"], purpose="carbon_neutrality", after=after,
                                   limit=MAX_PAGE_ITEMS)
        found.update((item["retirement_id"], item) for item in page.items if item["retirement_id"] in wanted)
        if len(found) == len(wanted) or page.next_after is None:
            break
        after = page.next_after
    return LoggedClaim(claim, [found[retirement_id] for retirement_id in claim["retirements"]])


def claim_page_report(log: LogReader, queries: Queries, logged: LoggedClaim, inventory: Any, note: str) -> Report:
    """The claim's page with a receipt for each retirement and for the claim, all under `note` (a
    checkpoint that covers the claim); with the inventory's footprint unless inventory is None."""
    claim, retirements = logged
    receipts = [build_receipt(log, queries, r["seq"], note) for r in retirements]
    retired = [Retirement(r["retirement_id"], r["account"], r["amount_g"], r["purpose"], r["serials"], r["seq"],
                          receipt["inclusion"]) for r, receipt in zip(retirements, receipts)]
    if inventory is None:
        page = claim_page_from_log(claim, retired)
    else:
        fp = footprint(inventory)
        declared = (claim["subject"]["kind"], claim["subject"]["name"], claim["period_start"], claim["period_end"])
        if (fp.kind, fp.name, fp.period_start, fp.period_end) != declared:
            raise ClaimMismatch(f"the inventory is {fp.kind} {fp.name!r} {fp.period_start}..{fp.period_end}; the claim "
                                f"is {declared[0]} {declared[1]!r} {declared[2]}..{declared[3]}")
        if fp.total_g != claim["footprint_g"]:
            raise ClaimMismatch(f"the inventory's footprint is {fp.total_g} g; the claim declares {claim['footprint_g']} g")
        page = claim_page(claim, neutrality_plan(fp, claim["claimant"], retired))
    sources = [(r["retirement_id"], s["issuance_id"], s["methodology_id"], s["vintage"], s["region"], s["amount_g"],
                format_tonnes(s["amount_g"]), " ".join(f"[{start},{end})" for start, end in s["serials"]))
               for r in retirements for s in r["sources"]]
    shown = [{**entry, "beneficiary": r["beneficiary"], "sources": r["sources"], "receipt": receipt}
             for entry, r, receipt in zip(page.data["retirements"], retirements, receipts)]
    return Report(
        title=page.title,
        tables={**page.tables, "sources": Table(("retirement_id", "issuance_id", "methodology_id", "vintage", "region",
                                                 "amount_g", "amount_t", "serials"), sources)},
        notes=page.notes + ["each receipt proves its event in the tree of a checkpoint signed by the log key "
                            "(docs/receipt.md; `puhui-verify receipt`)"],
        data={**page.data, "retirements": shown, "receipt": build_receipt(log, queries, claim["seq"], note)},
    )
