"""Reductions issued, moved and used, from the command line: `puhui issue`, `transfer`, `retire`,
`cancel`, `surrender` and `claim` (added to `puhui` by cli.main).

Each signs one event with the key file given and delivers it as the onboarding commands do
(cli.target: --dir DIR, --server URL --trust FILE, or --sign-only FILE). A repeat whose id is in
the log already with the same fields is named and nothing is signed (cli.signing); a refusal is
one line with the spec's code, exit 1.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, List, Optional

import typer

from cli.help import Typer
from cli.signing import Operation, nfc, print_outcome, send
from cli.target import Target, Where, WHERE_HELP, where_options
from cli.terminal import cannot_run, guarded
from ledger.canonical import parse_strict
from ledger.errors import Rejected
from ledger.field_checks import PURPOSES, SUBJECT_KINDS
from ledger.units import tonnes
from quantify.footprint import Footprint, footprint

commands = Typer()  # added to `puhui` by cli.main

MAX_INVENTORY_BYTES = 16 << 20

IssuanceOption = typer.Option([], "--issuance", metavar="ISSUANCE_ID", help=(
    "format 2: take the serials from this issuance (the lowest of those the account holds); repeat for several "
    "(default: the account's lowest serials, whatever their issuance)"))
AmountOption = typer.Option(..., "--amount-g", min=1, metavar="GRAMS", help="how much, in grams of CO2e (1 t = 1000000)")


def _controller_of(account: str) -> str:
    """--signer-key's help for an event a controller of the account signs."""
    return (f"a controller of {account}, e.g. its holder (default: DIR/keys/admin.key, which signs only if the "
            f"admin's key controls {account})")


def _help(text: str) -> str:
    return f"{text}\n\n{WHERE_HELP}"


def _grams(amount_g: int) -> str:
    return f"{amount_g} g ({tonnes(amount_g)} t)"


def _send(where: Where, target: Target, event_type: str, body: dict[str, Any], operation: Operation) -> None:
    print_outcome(target, operation, send(target, where.signer(), event_type, body))


def _chosen_issuances(target: Target, issuances: List[str]) -> dict[str, Any]:
    """The `issuances` field of a spend: format 2 only, null when none is chosen."""
    if target.log_format != 2:
        if issuances:
            cannot_run("--issuance: a format-1 log's transfers, retirements and cancellations choose no issuances "
                       "(spec v2 only)")
        return {}
    return {"issuances": sorted(set(issuances)) or None}


def _batches_total_g(target: Target, batch_ids: List[str]) -> int:
    """The batches' total from the log: an issuance from batches is of exactly that many grams."""
    if not target.readable:
        cannot_run("--amount-g GRAMS: with --sign-only alone the batches' total cannot be read (add --dir or "
                   "--server, or give the amount)")
    total_g = 0
    for batch_id in batch_ids:
        batch = target.logged("activity.batch", batch_id)
        if batch is None:
            raise Rejected("UNKNOWN_REF", f"activity batch {batch_id} does not exist")
        total_g += batch["total_g"]
    return total_g


@commands.command("issue", help=_help(
    "As an admin, issue reductions (issuance) to an account: from activity batches (their total, read from the "
    "log, unless --amount-g) or from the SHA-256 of a verification report (--evidence). In format 2 each batch "
    "needs its validator's review first (`puhui review batch`). In the log already with these fields: nothing "
    "is written."))
@guarded
@where_options
def issue(issuance_id: str = typer.Argument(..., metavar="ISSUANCE_ID", help="the issuance's id, e.g. iss-wuhan-2026-04"),
          account: str = typer.Option(..., metavar="ACCOUNT", help="the account that receives the reductions"),
          methodology_id: str = typer.Option(..., "--methodology", metavar="METHODOLOGY_ID", help="the batches' methodology"),
          vintage: int = typer.Option(..., min=1900, max=9999, metavar="YEAR", help="the year the reductions happened in"),
          region: str = typer.Option(..., metavar="CODE", help="6-digit region code (GB/T 2260) of the batches' platform"),
          batch: List[str] = typer.Option([], "--batch", metavar="BATCH_ID", help="an activity batch behind it; repeat for several"),
          evidence: Optional[str] = typer.Option(None, metavar="HEX", help=(
              "instead of batches: the SHA-256 (64 hex characters) of the verification report behind it")),
          amount_g: Optional[int] = typer.Option(None, "--amount-g", min=1, metavar="GRAMS", help=(
              "grams of CO2e (default with --batch: the batches' total; needed with --evidence)")),
          *, where: Where) -> None:
    if bool(batch) == (evidence is not None):
        cannot_run("--batch BATCH_ID (repeat for several) or --evidence HEX: one of them")
    if evidence is not None and amount_g is None:
        cannot_run("--amount-g GRAMS: an issuance from evidence names its amount")
    with where.open() as target:
        if amount_g is None:
            amount_g = _batches_total_g(target, batch)
        body = {"issuance_id": issuance_id, "account": account, "methodology_id": methodology_id, "vintage": vintage,
                "region": region, "amount_g": amount_g, "batches": batch, "evidence": evidence}
        what = f"{_grams(amount_g)} to {account} as {issuance_id}"
        _send(where, target, "issuance", body, Operation(f"issued {what}", f"issue {what}"))


@commands.command("transfer", help=_help(
    "Move reductions from one account to another (transfer), signed by a controller of the account they leave. "
    "In the log already with these fields: nothing is written."))
@guarded
@where_options(signer=_controller_of("--from"))
def transfer(transfer_id: str = typer.Argument(..., metavar="TRANSFER_ID", help="the transfer's id, e.g. tr-2026-0001"),
             source: str = typer.Option(..., "--from", metavar="ACCOUNT", help="the account they leave"),
             destination: str = typer.Option(..., "--to", metavar="ACCOUNT", help="the account they go to"),
             amount_g: int = AmountOption,
             issuance: List[str] = IssuanceOption,
             *, where: Where) -> None:
    with where.open() as target:
        body = {"transfer_id": transfer_id, "from": source, "to": destination, "amount_g": amount_g,
                **_chosen_issuances(target, issuance)}
        what = f"{_grams(amount_g)} from {source} to {destination}"
        _send(where, target, "transfer", body, Operation(f"transferred {what}", f"transfer {what}"))


@commands.command("retire", help=_help(
    "Retire reductions for good (retirement), signed by a controller of the account: for a purpose and a "
    "beneficiary. In the log already with these fields: nothing is written."))
@guarded
@where_options(signer=_controller_of("--account"))
def retire(retirement_id: str = typer.Argument(..., metavar="RETIREMENT_ID", help="the retirement's id, e.g. ret-2026-0001"),
           account: str = typer.Option(..., metavar="ACCOUNT", help="the account they are retired from"),
           amount_g: int = AmountOption,
           purpose: str = typer.Option(..., metavar="PURPOSE", help=f"one of {', '.join(PURPOSES)}"),
           beneficiary: str = typer.Option(..., metavar="TEXT", help="on whose behalf, as the public register shows it"),
           issuance: List[str] = IssuanceOption,
           *, where: Where) -> None:
    if purpose not in PURPOSES:
        cannot_run(f"--purpose {purpose!r} is none of {', '.join(PURPOSES)}")
    with where.open() as target:
        body = {"retirement_id": retirement_id, "account": account, "amount_g": amount_g, "purpose": purpose,
                "beneficiary": nfc(beneficiary), **_chosen_issuances(target, issuance)}
        what = f"{_grams(amount_g)} from {account} for {purpose}"
        _send(where, target, "retirement", body, Operation(f"retired {what}", f"retire {what}"))


@commands.command("cancel", help=_help(
    "As an admin, cancel reductions an account holds (cancellation): they never move again. It applies to a "
    "held account too (the only way anything leaves it). In the log already with these fields: nothing is "
    "written."))
@guarded
@where_options
def cancel(cancellation_id: str = typer.Argument(..., metavar="CANCELLATION_ID", help="the cancellation's id, e.g. can-2026-0001"),
           account: str = typer.Option(..., metavar="ACCOUNT", help="the account they are cancelled from"),
           amount_g: int = AmountOption,
           reason: str = typer.Option(..., metavar="TEXT", help="why, for the log (public: no personal data), e.g. a court's order"),
           issuance: List[str] = IssuanceOption,
           *, where: Where) -> None:
    with where.open() as target:
        body = {"cancellation_id": cancellation_id, "account": account, "amount_g": amount_g, "reason": nfc(reason),
                **_chosen_issuances(target, issuance)}
        what = f"{_grams(amount_g)} from {account}"
        _send(where, target, "cancellation", body, Operation(f"cancelled {what}", f"cancel {what}"))


@commands.command("surrender", help=_help(
    "As the carbon market (a key with the ets role), surrender a compliance entity's ets_offset retirements "
    "against its allocation for a compliance year (offset.surrender): each retirement is used once, and the "
    "year's surrenders stay within the offset cap of the allocation. In the log already with these fields: "
    "nothing is written."))
@guarded
@where_options(signer="the carbon market's key, holding the ets role (default: DIR/keys/admin.key, which signs "
                      "only if it holds that role)")
def surrender(surrender_id: str = typer.Argument(..., metavar="SURRENDER_ID", help="the surrender's id, e.g. sur-steel-2026-1"),
              entity: str = typer.Option(..., metavar="ACCOUNT", help="the compliance entity's account, which retired them"),
              compliance_year: int = typer.Option(..., min=1900, max=9999, metavar="YEAR", help="the compliance year"),
              allocation_g: int = typer.Option(..., "--allocation-g", min=0, metavar="GRAMS", help=(
                  "the entity's allocation for the year, in grams of CO2e: the cap is a share of it")),
              retirement: List[str] = typer.Option([], "--retirement", metavar="RETIREMENT_ID", help=(
                  "an ets_offset retirement of the entity, used once; repeat for several")),
              *, where: Where) -> None:
    if not retirement:
        cannot_run("--retirement RETIREMENT_ID: at least one retirement is surrendered")
    body = {"surrender_id": surrender_id, "entity": entity, "compliance_year": compliance_year,
            "allocation_g": allocation_g, "retirements": retirement}
    with where.open() as target:
        what = f"{', '.join(retirement)} of {entity} for {compliance_year}"
        _send(where, target, "offset.surrender", body, Operation(f"surrendered {what}", f"surrender {what}"))


def _inventory(path: Path) -> Footprint:
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_INVENTORY_BYTES + 1)
    except OSError as exc:
        cannot_run(f"--inventory {path}: {exc.strerror}")
    if len(data) > MAX_INVENTORY_BYTES:
        cannot_run(f"--inventory {path} is larger than {MAX_INVENTORY_BYTES >> 20} MiB")
    try:
        return footprint(parse_strict(data))
    except Rejected as exc:
        cannot_run(f"--inventory {path} is no inventory as `puhui footprint` reads it: {exc.message}")


def _from_inventory(given: Any, option: str, inventory: Footprint | None, value: Any) -> Any:
    """An option of the claim, or the inventory's value for it; both must agree (the claim's page
    checks the inventory against the claim)."""
    if inventory is None:
        if given is None:
            cannot_run(f"{option}: needed without --inventory")
        return given
    if given is not None and given != value:
        cannot_run(f"{option} {given} is not the inventory's ({value}): leave it out, or fix one of them")
    return value


@commands.command("claim", help=_help(
    "Claim carbon neutrality (neutrality.claim) for a subject over a period, with carbon_neutrality retirements "
    "of the claimant that cover its footprint; signed by a controller of the claimant or an admin. With "
    "--inventory the footprint, subject and period are the `puhui footprint` inventory's. In the log already "
    "with these fields: nothing is written."))
@guarded
@where_options(signer=f"an admin, or {_controller_of('--claimant')}")
def claim(claim_id: str = typer.Argument(..., metavar="CLAIM_ID", help="the claim's id, e.g. claim-mall-2026-q2"),
          claimant: str = typer.Option(..., metavar="ACCOUNT", help="the account that claims, and retired the reductions"),
          retirement: List[str] = typer.Option([], "--retirement", metavar="RETIREMENT_ID", help=(
              "a carbon_neutrality retirement of the claimant, used once; repeat for several")),
          inventory_path: Optional[Path] = typer.Option(None, "--inventory", metavar="FILE", help=(
              "the subject's inventory, as `puhui footprint` reads it: footprint, subject and period from it")),
          footprint_g: Optional[int] = typer.Option(None, "--footprint-g", min=1, metavar="GRAMS", help=(
              "the footprint in grams of CO2e (without --inventory)")),
          subject_kind: Optional[str] = typer.Option(None, metavar="KIND", help=f"one of {', '.join(SUBJECT_KINDS)}"),
          subject_name: Optional[str] = typer.Option(None, metavar="TEXT", help="what is neutral, e.g. Spring fair 2026"),
          period_start: Optional[str] = typer.Option(None, "--from", metavar="DATE", help="the period's first day, YYYY-MM-DD"),
          period_end: Optional[str] = typer.Option(None, "--to", metavar="DATE", help="the period's last day, YYYY-MM-DD"),
          *, where: Where) -> None:
    if not retirement:
        cannot_run("--retirement RETIREMENT_ID: at least one retirement backs a claim")
    inventory = None if inventory_path is None else _inventory(inventory_path)
    subject_name = None if subject_name is None else nfc(subject_name)
    body = {"claim_id": claim_id, "claimant": claimant,
            "subject": {"kind": _from_inventory(subject_kind, "--subject-kind", inventory, inventory and inventory.kind),
                        "name": _from_inventory(subject_name, "--subject-name", inventory, inventory and inventory.name)},
            "period_start": _from_inventory(period_start, "--from", inventory, inventory and inventory.period_start),
            "period_end": _from_inventory(period_end, "--to", inventory, inventory and inventory.period_end),
            "footprint_g": _from_inventory(footprint_g, "--footprint-g", inventory, inventory and inventory.total_g),
            "retirements": retirement}
    with where.open() as target:
        what = (f"claim {claim_id}: {body['subject']['name']} neutral from {body['period_start']} to "
                f"{body['period_end']}, footprint {_grams(body['footprint_g'])}")
        _send(where, target, "neutrality.claim", body, Operation(what, what))
