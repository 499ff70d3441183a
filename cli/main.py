"""The `puhui` command: create, fill, inspect and export a registry; serve its API."""

from __future__ import annotations

import base64
import binascii
import json
from pathlib import Path
from typing import Optional

import typer
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from cli import credits, onboarding, quantification, reviews, upkeep
from cli.help import Typer
from cli.tables import print_table
from cli.terminal import CLI_WRITER_LOCK_WAIT_S, cannot_run, console, errors, guarded
from ledger.errors import WriterLockHeld
from ledger.export import export_bundle
from ledger.note import parse_checkpoint
from ledger.units import tonnes_shown
from service.registry_dir import INIT_LOG_FORMAT, RegistryDir

app = Typer(add_completion=False, no_args_is_help=True,
                  help="Puhui: the open registry of the Hubei carbon-inclusive scheme (湖北碳普惠).")


@app.command()
@guarded
def init(directory: Path = typer.Argument(..., metavar="DIR", help="the registry's directory (created)"),
         origin: str = typer.Option(..., metavar="ORIGIN", help="the log's origin, e.g. registry.hubei.example/puhui"),
         admin_public_key: Optional[str] = typer.Option(None, metavar="BASE64", help="base64 public key of the first admin, kept off this server"),
         database_url: Optional[str] = typer.Option(None, metavar="URL", help="SQLAlchemy URL (default: SQLite in DIR)"),
         key_strength: str = typer.Option("moderate", metavar="STRENGTH", help="Argon2id cost for the key files: interactive, moderate, sensitive"),
         root_key_out: Optional[Path] = typer.Option(None, metavar="FILE", help="write the root key to this file instead of DIR/keys, "
                                                             "to be kept offline (the server never needs it)"),
         log_format: int = typer.Option(INIT_LOG_FORMAT, min=1, max=2, metavar="N", help=(
             "the log's format: 2, or 1 only beside registries of format 1 (spec \"Formats\")"))) -> None:
    """Create a registry: keys, database, genesis with the Hubei rules, first admin, trust.json.

    Passphrases: each key's own variable (PUHUI_ROOT_KEY_PASSPHRASE, PUHUI_LOG_KEY_PASSPHRASE,
    PUHUI_ADMIN_KEY_PASSPHRASE), else PUHUI_KEY_PASSPHRASE, else a prompt; 12 characters at least."""
    admin_key = None
    if admin_public_key is not None:
        try:
            admin_key = base64.b64decode(admin_public_key, validate=True)
        except (binascii.Error, ValueError):
            cannot_run("--admin-public-key is not base64")
        if len(admin_key) != 32:
            cannot_run("--admin-public-key must be 32 bytes (an Ed25519 public key)")
    registry = RegistryDir(directory).init(origin, admin_public_key=admin_key, database_url=database_url,
                                           strength=key_strength, root_key_out=root_key_out, log_format=log_format)
    console.print(f"created registry [bold]{origin}[/] in {directory} (log format {registry.log_format}, size {registry.size})")
    console.print(f"trust file for auditors: {directory / 'trust.json'}")
    root_file = root_key_out or directory / "keys" / "root.key"
    console.print(f"root key: {root_file}: move it offline now (a USB key in a safe); only key registrations by root "
                  f"and rule changes need it, never the server")
    registry.close()


# The demo's scheme secrets (the identity hub's and the fingerprint key) and its platforms' ingestion
# output (batches, rejections, the openings citizens and auditors are given), in the registry's directory.
DEMO_SCHEME_KEYS = "demo-scheme-keys"
DEMO_INGESTION = "demo-ingestion"


@app.command()
@guarded
def demo(directory: Path = typer.Argument(..., metavar="DIR", help="the registry's directory (created if absent)"),
         origin: str = typer.Option("registry.hubei.example/puhui", metavar="ORIGIN", help="origin, if the registry is created"),
         records_per_batch: int = typer.Option(400, min=1, max=100_000, metavar="N", help="activity records in each monthly batch"),
         key_strength: str = typer.Option("moderate", metavar="STRENGTH", help="Argon2id cost, if the registry is created")) -> None:
    """Fill a format-2 registry with a realistic first quarter: experts' and validators' reviews,
    platforms' ingestion with the scheme's keys, issuances, a hold, trades and every use.

    The hub and fingerprint keys are made in DIR/demo-scheme-keys under the demo's passphrase (demo
    keys: never for anything real); each ingestion run's output, openings included, stays in
    DIR/demo-ingestion."""
    from cli.demo import Demo
    from keys import new_secret, save_secret
    from quantify.private import SchemeKeys
    place = RegistryDir(directory)
    passphrase = place.passphrase(confirm=not place.exists())
    if not place.exists():
        place.init(origin, strength=key_strength, passphrase=passphrase, demo=True).close()
    for needed in ("root", "admin"):
        if needed not in place.keyring.names():
            cannot_run(f"the demo signs as the registry's {needed}, whose key is not in this directory")
    registry = place.open(with_log_key=True, passphrase=passphrase, writer_lock_wait_s=CLI_WRITER_LOCK_WAIT_S)
    if registry.size > 3:
        cannot_run(f"{directory} already holds a history of {registry.size} events; the demo starts from a new registry")
    if registry.log_format != 2:
        cannot_run(f"{directory} is a format-{registry.log_format} registry; the demo writes format 2 (`puhui init`)")
    scheme_dir, ingestion_dir = directory / DEMO_SCHEME_KEYS, directory / DEMO_INGESTION
    for made in (scheme_dir, ingestion_dir):
        if made.exists():
            cannot_run(f"{made} exists: the demo starts from a new registry")
    scheme_dir.mkdir(mode=0o700)
    secrets = {kind: new_secret() for kind in ("hub", "fingerprint")}
    for kind, secret in secrets.items():  # demo secrets, new on each run: the cheapest Argon2id cost will do
        save_secret(scheme_dir / f"{kind}.key", secret, passphrase, kind=kind, label=f"demo {kind} key of {origin}",
                    strength="interactive")
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=errors) as progress:
        task = progress.add_task("demo history", total=None)
        story = Demo(registry, place.keyring.load("root", passphrase), place.keyring.load("admin", passphrase),
                     SchemeKeys(secrets["hub"], secrets["fingerprint"]), ingestion_dir,
                     records_per_batch=records_per_batch, progress=lambda text: progress.update(task, description=text))
        story.run()
    dropped: dict[str, int] = {}
    for result in story.ingestion.values():
        for reason, count in result.reasons.items():
            dropped[reason] = dropped.get(reason, 0) + count
    records = sum(result.lines for result in story.ingestion.values())
    console.print(f"ingestion: {records} raw activity records, " + ", ".join(
        f"{reason} {count}" for reason, count in sorted(dropped.items())) + f" (reasons in each run's rejections.jsonl, "
        f"openings in openings/, under {ingestion_dir})", soft_wrap=False)  # prose, wrapped at the terminal's width
    console.print(f"scheme keys (demo only, under the demo's passphrase): {scheme_dir / 'hub.key'}, "
                  f"{scheme_dir / 'fingerprint.key'}", soft_wrap=False)
    for refused in story.refusals:
        console.print(f"refused as it must be: {refused.what}: [yellow]{refused.rejection.code}[/] "
                      f"{refused.rejection.message}", soft_wrap=False)
    for batch_id in story.rejected_batches:
        console.print(f"batch {batch_id}: rejected by its validation body, never issued", soft_wrap=False)
    console.print(f"a citizen with records: person id {story.citizen} at the identity hub; their daily pseudonyms, "
                  f"for /me: puhui pseudonyms {story.citizen} --from 2026-01-01 --to 2026-01-31 --hub-key "
                  f"{scheme_dir / 'hub.key'}", soft_wrap=False)
    _print_status(_status(registry))
    registry.close()


@app.command()
@guarded
def export(directory: Path = typer.Argument(..., metavar="DIR", help="the registry's directory"),
           out: Path = typer.Option(..., metavar="DIR", help="the bundle directory to write (must not exist)"),
           database_url: Optional[str] = typer.Option(None, metavar="URL", help="override the directory's database URL")) -> None:
    """Write a bundle (spec section 8) up to a fresh checkpoint, for auditors and `puhui-verify`."""
    if out.exists() or out.is_symlink():
        cannot_run(f"{out} exists: the bundle goes to a new directory")
    if not out.parent.is_dir():
        cannot_run(f"{out.parent} does not exist: create it, or choose another --out")
    place = RegistryDir(directory)
    registry = place.open(with_log_key=True, database_url=database_url, writer_lock_wait_s=CLI_WRITER_LOCK_WAIT_S)
    try:
        registry.checkpoint()  # the first write: it takes the writer lock
    except WriterLockHeld as exc:
        # A served registry exports itself: its checkpoint is signed by the writer that holds the log.
        registry.close()
        cannot_run(f"{exc}; a running server exports its bundle at GET /v1/export (docs/api.md)")
    with Progress(console=errors) as progress:
        task = progress.add_task("exporting the log", total=registry.size)
        manifest = export_bundle(registry, out, lambda done, total: progress.update(task, completed=done, total=total))
    console.print(f"exported {manifest['tree_size']} events to {out} (root {manifest['root']})")
    registry.close()


@app.command()
@guarded
def status(directory: Path = typer.Argument(..., metavar="DIR", help="the registry's directory"),
           database_url: Optional[str] = typer.Option(None, metavar="URL", help="override the directory's database URL"),
           as_json: bool = typer.Option(False, "--json", help="print JSON instead of tables")) -> None:
    """Size, root, latest checkpoint and totals in tonnes; exit 1 when the projections do not
    match the log (the registry then refuses to write)."""
    registry = RegistryDir(directory).open(with_log_key=False, database_url=database_url)
    report = _status(registry)
    registry.close()
    if as_json:
        console.print_json(json.dumps(report))
    else:
        _print_status(report)
    if not report["integrity"]["ok"]:
        raise typer.Exit(1)  # as `puhui check`: a monitor's script sees the refusal to write


def _status(registry) -> dict:
    state = registry.state
    totals = state.totals_g()
    by_purpose: dict[str, int] = {}
    for retirement in state.retirements.values():
        by_purpose[retirement.purpose] = by_purpose.get(retirement.purpose, 0) + retirement.amount_g
    latest = registry.latest_checkpoint()
    checkpoint = None if latest is None else parse_checkpoint(latest)
    return {"origin": registry.origin, "log_format": registry.log_format, "size": registry.size, "root": registry.root().hex(),
            "checkpoint": None if checkpoint is None else {"size": checkpoint.size, "root": checkpoint.root.hex()},
            "totals_g": totals, "retired_by_purpose_g": dict(sorted(by_purpose.items())),
            "integrity": registry.check_integrity().as_json()}


def _print_status(s: dict) -> None:
    # A root on a line of its own: a line of 80 columns holds it whole.
    console.print(f"[bold]{s['origin']}[/]: {s['size']} events (log format {s['log_format']})\n  root {s['root']}")
    cp = s["checkpoint"]
    console.print("latest checkpoint: " + ("none" if cp is None else f"size {cp['size']}\n  root {cp['root']}"))
    rows = [[label, tonnes_shown(s["totals_g"][key], unit=False)] for label, key in (
        ("issued", "issued_g"), ("active", "active_g"), ("retired", "retired_g"), ("cancelled", "cancelled_g"))]
    rows += [[f"  retired for {purpose}", tonnes_shown(amount_g, unit=False)] for purpose, amount_g in s["retired_by_purpose_g"].items()]
    print_table("reductions (t CO2e)", ["", "tonnes"], rows, right=frozenset({"tonnes"}))
    check = s["integrity"]
    if check["ok"]:
        console.print(f"projections: match the log (by {check['method']}, conservation of serials checked)")
    else:
        errors.print("[bold red]projections: DO NOT match the log; the registry refuses to write[/]")
        for problem in check["problems"]:
            errors.print(f"- {problem}", markup=False)
        errors.print("run `puhui check DIR` for the full comparison (docs/operations.md)")


@app.command()
@guarded
def serve(directory: Path = typer.Option(..., "--dir", metavar="DIR", help="the registry's directory"),
          host: str = typer.Option("127.0.0.1", metavar="ADDRESS", help="address to listen on"),
          port: int = typer.Option(8000, min=1, max=65535, metavar="PORT", help="port to listen on"),
          database_url: Optional[str] = typer.Option(None, metavar="URL", help="SQLAlchemy URL, e.g. postgresql+psycopg://... (default: the directory's)"),
          header_timeout_s: Optional[float] = typer.Option(None, metavar="SECONDS", help="close a connection whose request headers take longer [PUHUI_HEADER_TIMEOUT_S, 10]"),
          body_timeout_s: Optional[float] = typer.Option(None, metavar="SECONDS", help="408 for a body that takes longer [PUHUI_BODY_TIMEOUT_S, 120]"),
          max_requests_per_source: Optional[int] = typer.Option(None, metavar="N", help="requests in flight from one address [PUHUI_MAX_REQUESTS_PER_SOURCE, 256]"),
          key_events_per_s: Optional[float] = typer.Option(None, metavar="RATE", help="events a second per signing key, a refused one counting 10 [PUHUI_KEY_EVENTS_PER_S, 5000]"),
          key_burst_events: Optional[int] = typer.Option(None, metavar="N", help="events a key may send at once [PUHUI_KEY_BURST_EVENTS, 10000]"),
          budget_units_per_s: Optional[float] = typer.Option(None, metavar="RATE", help="unauthenticated and expensive work a second [PUHUI_BUDGET_UNITS_PER_S, 2000]"),
          budget_burst_units: Optional[int] = typer.Option(None, metavar="N", help="... at once [PUHUI_BUDGET_BURST_UNITS, 8000]"),
          max_concurrent_eligibility: Optional[int] = typer.Option(None, metavar="N", help="offset-eligibility checks at once [PUHUI_MAX_CONCURRENT_ELIGIBILITY, 2]"),
          hub_key: Optional[Path] = typer.Option(None, metavar="FILE", help="format 2: the identity hub key file, for POST /v1/ingestions (passphrase: PUHUI_HUB_KEY_PASSPHRASE)"),
          fingerprint_key: Optional[Path] = typer.Option(None, metavar="FILE", help="format 2: the fingerprint key file, with --hub-key (passphrase: PUHUI_FINGERPRINT_KEY_PASSPHRASE)")) -> None:
    """Serve the registry's HTTP API (api/). Limits and rate limits: docs/operations.md, "Limits"."""
    from api.server import Limits, run
    try:
        limits = Limits.from_env(
            header_timeout_s=header_timeout_s, body_timeout_s=body_timeout_s, max_requests_per_source=max_requests_per_source,
            key_events_per_s=key_events_per_s, key_burst_events=key_burst_events, budget_units_per_s=budget_units_per_s,
            budget_burst_units=budget_burst_units, max_concurrent_eligibility=max_concurrent_eligibility)
    except ValueError as exc:
        cannot_run(str(exc))
    if (hub_key is None) != (fingerprint_key is None):
        cannot_run("--hub-key and --fingerprint-key go together (format 2)")
    run(directory, host=host, port=port, database_url=database_url, limits=limits,
        scheme_key_files=None if hub_key is None else (hub_key, fingerprint_key))


# methodologies, eligibility, quantify, ingest, account, footprint
app.registered_commands.extend(quantification.commands.registered_commands)
app.registered_commands.extend(upkeep.commands.registered_commands)
# keys new|register|revoke, accounts open|controllers, submit
app.add_typer(onboarding.keys, name="keys")
app.add_typer(onboarding.accounts, name="accounts")
app.registered_commands.extend(onboarding.commands.registered_commands)
# issue, transfer, retire, claim
app.registered_commands.extend(credits.commands.registered_commands)
app.registered_commands.extend(reviews.commands.registered_commands)  # review, reviews, hold (format 2)


def main() -> None:
    app()
