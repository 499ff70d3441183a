"""Review and holds from the command line (format 2, spec section 6): `puhui review` (a validation
body's verdict on a batch or an evidence hash, a methodology expert's on a version), `puhui reviews`
(a target's reviews and whether they make its quorum) and `puhui hold` (an admin's case on an
account, which freezes what leaves it). Added to `puhui` by cli.main.

Signing commands take the options of every signing command (cli.target); an operation that holds
already is named and nothing is signed (cli.signing).
"""

from __future__ import annotations

import hashlib
import json
import secrets
import sys
from pathlib import Path
from typing import Any, Optional

import typer

from cli.help import Typer
from cli.onboarding import _help
from cli.signing import Operation, nfc, print_outcome, send
from cli.tables import print_table
from cli.target import DatabaseOption, DirOption, LoggedReview, ServerOption, Target, TrustOption, Where, where_options
from cli.terminal import cannot_run, console, guarded
from ledger.errors import Rejected
from ledger.events.reviews import REVIEWER_ROLES
from ledger.field_checks import VERDICTS

commands = Typer()  # added to `puhui` by cli.main

MAX_REPORT_BYTES = 1 << 30  # a review report is a document (a PDF), hashed, never sent
# Which quorum of the rules' review_quorum a target's reviews make up.
QUORUM_OF = {"batch": "issuance", "evidence": "issuance", "methodology": "eligibility"}

KindArgument = typer.Argument(..., metavar="TARGET_KIND", help=f"what is reviewed: {', '.join(REVIEWER_ROLES)}")
TargetIdArgument = typer.Argument(..., metavar="TARGET_ID", help="the batch_id, the evidence hash (64 hex characters: "
                                                                 "SHA-256 of the verification report) or the methodology_id")
VersionOption = typer.Option(None, min=1, metavar="N", help="methodology: the version (default: the latest)")


def _require_format_2(target: Target, what: str) -> None:
    # A format-1 log knows no review nor hold: the type is unknown there (SCHEMA), said before signing.
    if target.log_format != 2:
        raise Rejected("SCHEMA", f"{what} exist in format-2 logs only; this registry's log is format {target.log_format}")


def _target(target: Target, kind: str, target_id: str, version: Optional[int]) -> dict[str, Any]:
    """The review's target as the spec writes it; a methodology's version defaults to its latest."""
    if kind not in REVIEWER_ROLES:
        cannot_run(f"TARGET_KIND {kind!r} is none of {', '.join(REVIEWER_ROLES)}")
    if kind != "methodology":
        if version is not None:
            cannot_run(f"--version goes with a methodology target, not a {kind}")
        return {"kind": kind, "id": target_id, "version": None}
    if version is None:
        logged = target.methodology(target_id) if target.readable else None
        if logged is None:
            if not target.readable:
                cannot_run("--version N: --sign-only without --dir or --server cannot read the latest version")
            raise Rejected("UNKNOWN_REF", f"methodology {target_id} is not registered")
        version = logged.latest_version
    return {"kind": kind, "id": target_id, "version": version}


def _report_sha256(report: Path) -> str:
    try:
        with open(report, "rb") as handle:
            if report.stat().st_size > MAX_REPORT_BYTES:
                cannot_run(f"--report {report} is larger than {MAX_REPORT_BYTES >> 30} GiB")
            return hashlib.file_digest(handle, "sha256").hexdigest()
    except OSError as exc:
        cannot_run(f"--report {report}: {exc.strerror}")


def _named(target: dict[str, Any]) -> str:
    return f"{target['kind']} {target['id']}" + ("" if target["version"] is None else f" v{target['version']}")


@commands.command("review", help=_help(
    "Sign a review (format 2): a validator's of a batch or an evidence hash (before its issuance), an expert's "
    "of a methodology version (before its offset eligibility). The report stays off the log: only its SHA-256 "
    "is signed. The same review in the log already: nothing is written."))
@guarded
@where_options(signer="a validator's (batch, evidence) or an expert's (methodology); the default, "
                      "DIR/keys/admin.key, signs no review")
def review(kind: str = KindArgument, target_id: str = TargetIdArgument, version: Optional[int] = VersionOption,
           verdict: str = typer.Option(..., metavar="VERDICT", help=f"{' or '.join(VERDICTS)}"),
           report: Path = typer.Option(..., metavar="FILE", help="the review report, hashed into report_sha256"),
           review_id: Optional[str] = typer.Option(None, metavar="ID", help="the review's id (default: a fresh one)"),
           *, where: Where) -> None:
    if verdict not in VERDICTS:
        cannot_run(f"--verdict {verdict!r} is none of {', '.join(VERDICTS)}")
    report_sha256 = _report_sha256(report)
    with where.open() as target:
        _require_format_2(target, "reviews")
        body = {"review_id": review_id or f"review-{secrets.token_hex(8)}", "target": _target(target, kind, target_id, version),
                "verdict": verdict, "report_sha256": report_sha256}
        what = f"review {body['review_id']}: {verdict} {_named(body['target'])}"
        print_outcome(target, Operation(what, what), send(target, where.signer(), "review", body))


def _counts(target: Target, review: LoggedReview, role: str, platform_controllers: frozenset[str]) -> str:
    """Whether a review counts now (spec section 6, "Reviews"): "yes", or why not."""
    key = target.key(review.signer)
    if key is None or key.revoked:
        return "no: its key is revoked"
    if role not in key.roles:
        return f"no: its key is no {role} key"
    if review.approved and review.signer in platform_controllers:
        return "no: its key controls the batch's platform"
    return "yes"


def _once_per_key(found: list[tuple[LoggedReview, str]]) -> list[tuple[LoggedReview, str]]:
    """One key counts once per target (spec section 6): a later review of the same verdict by a
    key already counted adds nothing, and says so."""
    first_seq: dict[tuple[str, bool], int] = {}
    shown = []
    for review, counts in found:
        if counts == "yes":
            earlier = first_seq.setdefault((review.signer, review.approved), review.seq)
            if earlier != review.seq:
                counts = f"no: its key counted once already (seq {earlier})"
        shown.append((review, counts))
    return shown


@commands.command("reviews")
@guarded
def reviews(kind: str = KindArgument, target_id: str = TargetIdArgument, version: Optional[int] = VersionOption,
            directory: Optional[Path] = DirOption, server: Optional[str] = ServerOption,
            trust: Optional[Path] = TrustOption, database_url: Optional[str] = DatabaseOption,
            as_json: bool = typer.Option(False, "--json", help="print JSON instead of a table")) -> None:
    """A target's reviews in the log and whether they make its quorum now (format 2; reads only):
    approvals by distinct active keys of the role, none by a controller of a batch's platform (nor of
    the issuance's recipient, judged at the issuance), and no rejection. --dir DIR, or --server URL
    --trust FILE."""
    with Where(directory, server, trust, database_url=database_url).open(writes=False) as target:
        _require_format_2(target, "reviews")
        wanted = _target(target, kind, target_id, version)
        role, quorum = REVIEWER_ROLES[kind], target.review_quorum(QUORUM_OF[kind])
        controllers: frozenset[str] = frozenset()
        if kind == "batch":
            platform = target.batch_platform(target_id)
            if platform is None:
                raise Rejected("UNKNOWN_REF", f"activity batch {target_id} does not exist")
            account = target.account(platform)
            controllers = frozenset() if account is None else account.controllers
        found = _once_per_key([(r, _counts(target, r, role, controllers))
                               for r in target.reviews(kind, target_id, wanted["version"])])
    approving = {r.signer for r, counts in found if r.approved and counts == "yes"}
    rejected = any(not r.approved and counts == "yes" for r, counts in found)
    met = quorum is not None and not rejected and len(approving) >= quorum
    if as_json:
        sys.stdout.write(json.dumps({
            "target": wanted, "quorum": quorum, "approving_keys": len(approving), "rejected": rejected, "met": met,
            "reviews": [{"review_id": r.review_id, "seq": r.seq, "signer": r.signer,
                         "verdict": "approved" if r.approved else "rejected", "counts": counts} for r, counts in found]},
            indent=1) + "\n")
        return
    print_table(f"reviews of {_named(wanted)}", ["review", "seq", "signer", "verdict", "counts"],
                [[r.review_id, str(r.seq), r.signer, "approved" if r.approved else "rejected", counts]
                 for r, counts in found], right=frozenset({"seq"}))
    why = "a counting review rejected it" if rejected else f"{len(approving)} approving key(s) count, {quorum} needed"
    console.print(f"{QUORUM_OF[kind]} quorum {'met' if met else 'NOT met'}: {why}")


@commands.command("hold", help=_help(
    "As the admin, open a case on an account (format 2, account.hold): while a case is open nothing leaves the "
    "account (transfers and retirements from it are FROZEN); it still receives. --release closes the case. The "
    "case open already: nothing is written."))
@guarded
@where_options
def hold(account_id: str = typer.Argument(..., metavar="ACCOUNT_ID", help="the account held"),
         case_id: str = typer.Argument(..., metavar="CASE_ID", help="the case, e.g. a court's or the regulator's file number"),
         reason: str = typer.Option(..., metavar="TEXT", help="why, for the log (no personal data: it is public)"),
         release: bool = typer.Option(False, "--release", help="close the case instead of opening it"),
         hold_id: Optional[str] = typer.Option(None, metavar="ID", help="the event's id (default: a fresh one)"),
         *, where: Where) -> None:
    body = {"hold_id": hold_id or f"hold-{secrets.token_hex(8)}", "account_id": account_id, "held": not release,
            "case_id": case_id, "reason": nfc(reason)}
    with where.open() as target:
        _require_format_2(target, "holds")
        case = f"case {case_id} on account {account_id}"
        print_outcome(target, Operation(f"{case} {'closed' if release else 'opened'}",
                                        f"{'close' if release else 'open'} {case}"),
                send(target, where.signer(), "account.hold", body))
