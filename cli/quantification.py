"""The `puhui` commands of quantification: `puhui methodologies`, `eligibility`, `quantify`,
`ingest`, `account`, `footprint` (added to `cli.main`'s app), over quantify/ and the service floor
(service.methodologies, service.ingestion, service.accounts).

A person reads tonnes with three decimals; every report is also CSV (`--csv`) and JSON (`--json`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any, List, Optional

import typer
from rich.text import Text

from cli.help import Typer
from cli.ingest_progress import IngestProgress
from cli.tables import print_heading, print_table
from cli.signing import Operation, print_outcome, send
from cli.target import Target, Where, WHERE_HELP, where_options
from cli.terminal import CLI_WRITER_LOCK_WAIT_S, cannot_run, console, errors, fail, guarded
from keys import load_key, load_secret, passphrase_for_role
from ledger.canonical import parse_strict
from ledger.errors import Rejected
from ledger.queries import Queries
from ledger.units import tonnes_shown
from quantify.account import opening_index
from quantify.explain import explanation_report, quantify_request
from quantify.footprint import compare_footprints, footprint
from quantify.ingest import REASONS, IngestResult
from quantify.methodology import IDENTIFIER, close_matches, load_shipped
from quantify.private import daily_pseudonyms
from quantify.report import Report, Table
from service.accounts import logged_record_inclusion, pseudonyms_account, subject_account
from service.actors import Actor, Client
from service.ingestion import check_scheme_keys, ingest_against_log, load_scheme_keys, submit_batch
from service.methodologies import (LoggedMethodologies, NoDefinition, UnknownMethodology, definition_from_log,
                                   eligibility_body_for_log, library_against_log, register_body_for_log)
from service.registry_dir import RegistryDir

commands = Typer()  # added to `puhui` by cli.main


def _grams_twin(name: str) -> str | None:
    """The grams column a tonnes column is computed from (by name), if name is a tonnes column."""
    return "grams" if name == "tonnes" else f"{name[:-2]}_g" if name.endswith("_t") else None


def _person_columns(table: Table) -> tuple[list[str], list[list[str]]]:
    """A table as a person reads it: tonnes (ledger.units.tonnes_shown, grams beside where they read
    0.000) in place of grams; a grams column beside its tonnes twin is left out, but for a summary's
    (item, grams, tonnes), whose exact grams show how its rounded tonnes add up."""
    columns = list(table.columns)
    shown: list[tuple[str, int, bool]] = []  # (header, column read, its grams shown as tonnes)
    for i, name in enumerate(columns):
        grams = _grams_twin(name)
        if grams in columns:
            shown.append((name, columns.index(grams), True))
        elif name == "grams" and "tonnes" in columns:
            shown.append((name, i, False))
        elif name == "grams" or name.endswith("_g"):
            tonnes_name = "tonnes" if name == "grams" else f"{name[:-2]}_t"
            if tonnes_name not in columns:
                shown.append((tonnes_name, i, True))
        else:
            shown.append((name, i, False))

    def cell(value: Any, as_tonnes: bool) -> str:
        if as_tonnes and isinstance(value, int) and not isinstance(value, bool):
            return tonnes_shown(value, unit=False)
        return "" if value is None else str(value)
    return [header for header, _, _ in shown], [[cell(row[i], as_tonnes) for _, i, as_tonnes in shown]
                                                 for row in table.rows]


def _print_report(report: Report) -> None:
    print_heading(report.title)
    for name, table in report.tables.items():
        headers, rows = _person_columns(table)
        print_table(name, headers, rows, right=frozenset(h for h in headers if h.endswith("_t") or h in ("tonnes", "grams")))
    for note in report.notes:
        console.print(Text(f"note: {note}"), soft_wrap=False)


def _emit(report: Report, as_csv: bool, as_json: bool, extra: dict[str, Any] | None = None) -> None:
    if as_csv and as_json:
        cannot_run("--csv and --json: choose one")
    if as_csv:
        sys.stdout.write(report.to_csv())
    elif as_json:
        sys.stdout.write(json.dumps({**report.as_json(), **(extra or {})}, ensure_ascii=False, indent=1) + "\n")
    else:
        _print_report(report)


def _read_json(path: Path) -> Any:
    try:
        return parse_strict(path.read_bytes())
    except Rejected as exc:
        cannot_run(f"{path}: {exc.message}")


DirArgument = typer.Argument(..., metavar="DIR", help="the registry's directory")
DatabaseOption = typer.Option(None, "--database-url", metavar="URL", help="override the directory's database URL")
CsvOption = typer.Option(False, "--csv", help="print the report as CSV (a section per table)")
JsonOption = typer.Option(False, "--json", help="print JSON (grams beside tonnes)")


def _with_directory(where: Where, argument: Optional[Path]) -> Where:
    """where with the registry directory given as the command's first argument (as before --dir)."""
    if argument is None:
        return where
    if where.directory is not None and where.directory != argument:
        cannot_run(f"DIR {argument} and --dir {where.directory}: one registry directory")
    return dataclasses.replace(where, directory=argument)


@commands.command("methodologies", help=(
    "The shipped methodology library against the log: registered or not, eligibility in force; --register "
    "signs what the log lacks. " + WHERE_HELP))
@guarded
@where_options
def methodologies(dir_argument: Optional[Path] = typer.Argument(None, metavar="DIR",
                                                                 help="the registry's directory (or --dir)"),
                  register_missing: bool = typer.Option(False, "--register", help=(
                      "as the admin, sign methodology.register for every shipped version not yet in the log "
                      "(with --sign-only alone: every shipped version; `puhui submit` skips those logged)")),
                  as_json: bool = JsonOption, *, where: Where) -> None:
    where = _with_directory(where, dir_argument)
    if where.sign_only is not None and not register_missing:
        cannot_run("--sign-only goes with --register")
    library = load_shipped()
    with where.open(writes=register_missing) as target:
        if register_missing:
            logged, signer = target.methodologies(), where.signer()
            for m in library.all():  # in version order: the log refuses a version that skips one
                if m.methodology_id in logged and m.version in logged[m.methodology_id].versions:
                    continue
                body = register_body_for_log(m, target.log_format)
                delivered = target.deliver(target.sign(signer.key(), "methodology.register", body))
                named = f"{m.methodology_id} v{m.version}"
                print_outcome(target, Operation(f"registered {named}", f"register {named}"), delivered)
        if where.sign_only is not None:
            return
        entries = library_against_log(library, target.methodologies(), target.log_format)
    if as_json:
        sys.stdout.write(json.dumps(entries, ensure_ascii=False, indent=1) + "\n")
        return
    rows = []
    for e in entries:
        factors = e["params"].get("factors") if isinstance(e["params"].get("factors"), dict) else {}
        factor_text = "\n".join(
            f"{name} = {f.get('value')} {f.get('unit')} ({'ILLUSTRATIVE' if f.get('illustrative') else 'sourced'})"
            for name, f in factors.items() if isinstance(f, dict)) or "(no definition in params)"
        cap = e["params"].get("daily_cap", {}).get("value_g") if isinstance(e["params"].get("daily_cap"), dict) else None
        where_logged = ("not registered" if e["logged_seq"] is None else f"seq {e['logged_seq']}"
                        + ("" if e["matches_log"] in (True, None) else ", params differ from the shipped file")
                        + (" (not shipped)" if e["illustrative"] is None else ""))
        if e["superseded_by"] is not None:
            where_logged += f", superseded by v{e['superseded_by']}"
        rows.append([str(cell) for cell in (
            e["methodology_id"], e["version"], e["sector"], e["title"], factor_text,
            "" if not isinstance(cap, int) else tonnes_shown(cap, unit=False), where_logged,
            "yes" if e["offset_eligible"] else "no")])
    print_table("methodologies: the shipped library and the log",
                ["methodology", "v", "sector", "title", "factors (g CO2e)", "daily cap t", "in the log", "offset eligible"],
                rows, right=frozenset({"v", "daily cap t"}))


def _eligibility_body(target: Target, methodology_id: str, on: bool, version: int | None) -> dict[str, Any]:
    """The methodology.eligibility body; on is refused while the version (default: the latest) has an
    illustrative factor (or no definition to check): in the log, or offline the shipped library's.
    In a format-2 log the body names the version, whose eligibility alone it sets."""
    if version is not None and target.log_format != 2:
        cannot_run("--version: a format-1 log's eligibility is the methodology's, not a version's")
    if not target.readable:
        try:
            return eligibility_body_for_log(load_shipped().get(methodology_id, version), on, target.log_format)
        except KeyError:
            cannot_run(f"{methodology_id}{'' if version is None else f' v{version}'} is not in the shipped library, "
                       f"which --sign-only without --dir or --server checks against")
    logged = target.methodology(methodology_id)
    if logged is None:
        shipped = [m.methodology_id for m in load_shipped().latest()]  # what an operator most likely means
        raise UnknownMethodology(f"UNKNOWN_REF: methodology {methodology_id!r} is not registered"
                                 f"{close_matches(methodology_id, shipped)}")
    version = logged.latest_version if version is None else version
    if version not in logged.versions:
        raise UnknownMethodology(f"UNKNOWN_REF: methodology {methodology_id} has no version {version} "
                                 f"(latest {logged.latest_version})")
    try:
        return eligibility_body_for_log(definition_from_log(methodology_id, version, logged.versions[version]), on,
                                        target.log_format)
    except NoDefinition:
        if on:  # the factors' sources cannot be checked
            raise
        return {"methodology_id": methodology_id, **({"version": version} if target.log_format == 2 else {}),
                "offset_eligible": False}


@commands.command("eligibility", help=(
    "As the admin, turn a methodology's offset eligibility on or off; on is refused while the version has an "
    "illustrative factor, and in a format-2 log without its experts' approving reviews (`puhui review "
    "methodology`). Eligibility already so: nothing is written. " + WHERE_HELP))
@guarded
@where_options
def eligibility(arguments: List[str] = typer.Argument(..., metavar="[DIR] METHODOLOGY_ID", help=(
                    "the registry's directory (or --dir, --server, --sign-only), then a registered methodology")),
                on: bool = typer.Option(..., "--on/--off", help="admit to offsets (成熟一个,纳入一个), or withdraw"),
                version: Optional[int] = typer.Option(None, min=1, metavar="N", help=(
                    "format 2: the version whose eligibility is set (default: the latest)")),
                *, where: Where) -> None:
    if len(arguments) > 2:
        cannot_run("expected [DIR] METHODOLOGY_ID")
    where = _with_directory(where, Path(arguments[0]) if len(arguments) == 2 else None)
    methodology_id = arguments[-1]
    with where.open() as target:
        body = _eligibility_body(target, methodology_id, on, version)
        named = methodology_id + (f" v{body['version']}" if "version" in body else "")
        state = "on" if on else "off"
        print_outcome(target, Operation(f"{named}: offset eligible {state}", f"turn {named}'s offset eligibility {state}"),
                      send(target, where.signer(), "methodology.eligibility", body))


@commands.command("quantify")
@guarded
def quantify_command(methodology_id: str = typer.Argument(..., metavar="METHODOLOGY_ID", help="a methodology of the shipped library"),
                     inputs: str = typer.Option(..., "--inputs", metavar="JSON", help='the inputs as a JSON object, e.g. {"distance_m": 5000, ...}'),
                     subject: Optional[str] = typer.Option(None, metavar="PSEUDONYM", help="the pseudonym (with --occurred-at: the fingerprint)"),
                     occurred_at: Optional[str] = typer.Option(None, metavar="TIME", help="YYYY-MM-DDTHH:MM:SS.ffffffZ"),
                     version: Optional[int] = typer.Option(None, min=1, metavar="N", help="a version (default: the latest)"),
                     as_csv: bool = CsvOption, as_json: bool = JsonOption) -> None:
    """Quantify one act: formula, factors with their sources, inputs and result. Writes nothing."""
    try:
        raw = parse_strict(inputs.encode("utf-8"))
    except Rejected as exc:
        cannot_run(f"--inputs: {exc.message}")
    if not isinstance(raw, dict):
        cannot_run("--inputs must be a JSON object, e.g. '{\"distance_m\": 5000}'")
    for name, value in (("subject", subject), ("occurred_at", occurred_at)):
        if value is not None:
            raw[name] = value
    request: dict[str, Any] = {"methodology_id": methodology_id, "inputs": raw}
    if version is not None:
        request["version"] = version
    try:
        answer = quantify_request(load_shipped(), request)
    except KeyError as exc:
        cannot_run(str(exc.args[0]))
    report = explanation_report({**answer["explanation"], "fingerprint": answer["fingerprint"]})
    _emit(report, as_csv, as_json, {"reduction_g": answer["reduction_g"], "fingerprint": answer["fingerprint"]})


def _default_run_id(platform: str, methodology_id: str) -> str:
    return f"{platform[:50]}-{methodology_id[:30]}-{dt.datetime.now(dt.timezone.utc):%Y%m%dT%H%M%S}"


@commands.command("ingest")
@guarded
def ingest(directory: Path = DirArgument,
           file: Path = typer.Argument(..., metavar="FILE", help="raw activity records: JSON Lines (.jsonl) or CSV (.csv, or --csv)"),
           platform: str = typer.Option(..., metavar="ACCOUNT", help="the platform account the records come from"),
           methodology_id: str = typer.Option(..., "--methodology", metavar="METHODOLOGY_ID", help="a registered methodology (its latest version)"),
           platform_key: Path = typer.Option(..., metavar="FILE", help="the platform's key file (passphrase: PUHUI_PLATFORM_KEY_PASSPHRASE, else PUHUI_KEY_PASSPHRASE)"),
           out: Path = typer.Option(..., metavar="DIR", help="directory for batches, activities/ and rejections.jsonl (new or empty)"),
           as_csv: bool = typer.Option(False, "--csv", help="the file is CSV whatever its name"),
           run_id: Optional[str] = typer.Option(None, metavar="RUN_ID", help="names the batches RUN_ID-YYYY-MM (default: platform, methodology, time)"),
           period: str = typer.Option("month", metavar="PERIOD", help="one batch per month or per day: month or day"),
           workers: int = typer.Option(0, min=0, max=64, metavar="N", help="processes that prepare records (0: this one)"),
           hub_key: Optional[Path] = typer.Option(None, metavar="FILE", help=(
               "format 2: the identity hub key file, for daily pseudonyms (passphrase: PUHUI_HUB_KEY_PASSPHRASE)")),
           fingerprint_key: Optional[Path] = typer.Option(None, metavar="FILE", help=(
               "format 2: the scheme's fingerprint key file (passphrase: PUHUI_FINGERPRINT_KEY_PASSPHRASE)")),
           database_url: Optional[str] = DatabaseOption) -> None:
    """Quantify a platform's raw records against the log, drop duplicates and over-cap amounts with a
    reason each (rejections.jsonl), then sign each batch with the platform key and append it. In a
    format-2 registry the records carry daily pseudonyms, keyed fingerprints and only public inputs;
    their openings stay in OUT/openings/, never uploaded."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        cannot_run(f"{out} exists and is not an empty directory: each run writes a new one")
    if (hub_key is None) != (fingerprint_key is None):
        cannot_run("--hub-key and --fingerprint-key go together (format 2)")
    place = RegistryDir(directory)
    signer = load_key(platform_key, place.passphrase("platform"))
    scheme_keys = None if hub_key is None else load_scheme_keys(hub_key, fingerprint_key, place.passphrase)
    registry = place.open(with_log_key=False, database_url=database_url, writer_lock_wait_s=CLI_WRITER_LOCK_WAIT_S)
    try:
        check_scheme_keys(registry.log_format, scheme_keys, "--hub-key FILE --fingerprint-key FILE")
        methodology = LoggedMethodologies(registry.store).get(methodology_id)
        with open(file, "rb") as source, IngestProgress(errors, file.stat().st_size) as progress:
            result = ingest_against_log(registry, progress.reader(source), csv=as_csv or file.suffix == ".csv",
                                        platform=platform, methodology=methodology,
                                        run_id=run_id or _default_run_id(platform, methodology_id),
                                        out_dir=out, period=period, workers=workers, scheme_keys=scheme_keys)
            _print_ingestion(result)
            actor, client, refused = Actor(signer, platform), Client(registry), 0
            progress.appending(len(result.batches))
            for batch in result.batches:
                try:
                    appended = submit_batch(client, actor, batch)
                except Rejected as exc:
                    refused += 1
                    errors.print(Text(f"batch {batch.batch_id} refused: {exc.code}: {exc.message}", style="red"))
                    continue
                progress.appended(batch.body["count"])
                console.print(f"batch {batch.batch_id}: {batch.body['count']} records, "
                              f"{tonnes_shown(batch.body['total_g'])}, appended at seq {appended.seq}")
        progress.summary(result, len(result.batches) - refused)
    finally:
        registry.close()
    if refused:
        fail(f"{refused} of {len(result.batches)} batches were refused; the others are in the log")


def _exact(amount_g: int) -> str:
    """An amount that may be nothing: "0 g" rather than a "0.000 t" that might be rounded."""
    return tonnes_shown(amount_g) if amount_g else "0 g"


def _print_ingestion(result: IngestResult) -> None:
    console.print(f"{result.lines} lines of {result.platform} records under {result.methodology_id} "
                  f"v{result.methodology_version}: {result.accepted} accepted ({_exact(result.accepted_g)}), "
                  f"{result.rejected} rejected, {_exact(result.dropped_by_cap_g)} dropped by daily caps")
    for reason in REASONS:
        if result.reasons.get(reason):
            console.print(f"  {reason}: {result.reasons[reason]}")
    if result.batches:
        console.print(f"rejections with line numbers and reasons: {result.rejections_path}; "
                      f"the batches' bodies, signed and appended below: {result.batches_path}")
    else:
        console.print(f"rejections with line numbers and reasons: {result.rejections_path}; "
                      f"no record was accepted, so there is no batch to append")
    if any(batch.openings_path is not None for batch in result.batches):
        console.print(f"openings (the platform keeps them, for citizens and auditors; never uploaded): "
                      f"{result.batches[0].openings_path.parent}")


@commands.command("account")
@guarded
def account(directory: Path = DirArgument,
            subjects: List[str] = typer.Argument(..., metavar="PSEUDONYM", help=(
                "the pseudonym; in a format-2 registry a person's daily pseudonyms (`puhui pseudonyms`)")),
            proof: Optional[str] = typer.Option(None, metavar="ACTIVITY_ID", help="an activity_id of the subject: its inclusion proof in its "
                                                           "batch and the batch's place in the log"),
            openings: List[Path] = typer.Option([], "--openings", metavar="FILE", help=(
                "format 2: a platform's openings file (OUT/openings/BATCH_ID.jsonl of `puhui ingest`), to check each "
                "record's opening; repeat for several")),
            as_csv: bool = CsvOption, as_json: bool = JsonOption, database_url: Optional[str] = DatabaseOption) -> None:
    """The personal carbon account (个人碳账户): reductions by day, methodology and platform, the
    batches and issuances they went into. In a format-2 registry: over a person's daily pseudonyms,
    every record with its inclusion proof and, given the platform's openings, its opening checked."""
    if proof is not None and as_csv:
        cannot_run("--proof prints JSON or text, not CSV")
    registry = RegistryDir(directory).open(with_log_key=False, database_url=database_url)
    try:
        queries = Queries(registry.store)
        if registry.log_format == 2:
            if proof is not None:
                cannot_run("--proof: in a format-2 registry every record's proof is shown")
            report, proofs = pseudonyms_account(queries, "the given pseudonyms", subjects,
                                                opening_index(line for path in openings
                                                              for line in path.read_bytes().splitlines()))
        else:
            if len(subjects) != 1 or openings:
                cannot_run("a format-1 registry's account is of one pseudonym, without openings")
            report = subject_account(queries, subjects[0])
            found = None if proof is None else logged_record_inclusion(queries, proof)
    finally:
        registry.close()
    if registry.log_format == 2:
        _emit(report, as_csv, as_json, {"proofs": proofs})
        if not as_json and not as_csv:
            for found in proofs:
                _print_proof(found)
        return
    subject = subjects[0]
    if proof is not None and (found is None or found["record"]["subject"] != subject):
        fail(f"{subject} has no activity record {proof}")
    _emit(report, as_csv, as_json, None if found is None else {"proof": found})
    if found is not None and not as_json:
        _print_proof(found)
        console.print_json(json.dumps(found["inclusion"]))


def _print_proof(found: dict[str, Any]) -> None:
    console.print(Text(f"record {found['record']['activity_id']}: leaf {found['inclusion']['leaf_index']} of "
                       f"{found['inclusion']['tree_size']} in batch {found['batch_id']} (root {found['root']}), batch "
                       f"at seq {found['batch_seq']}" + ("" if found["issuance_id"] is None else
                                                         f", issued in {found['issuance_id']} at seq {found['issuance_seq']}")),
                  soft_wrap=False)  # prose, wrapped at the terminal's width (a format-2 account prints one a record)


@commands.command("pseudonyms")
@guarded
def pseudonyms(person: str = typer.Argument(..., metavar="PERSON", help="the person id the identity hub knows"),
               first_day: str = typer.Option(..., "--from", metavar="DATE", help="the first Beijing date, YYYY-MM-DD"),
               last_day: str = typer.Option(..., "--to", metavar="DATE", help="the last Beijing date, YYYY-MM-DD"),
               hub_key: Path = typer.Option(..., metavar="FILE", help="the identity hub key file (passphrase: PUHUI_HUB_KEY_PASSPHRASE)"),
               as_json: bool = JsonOption) -> None:
    """The identity hub's answer to a person: their daily pseudonyms (spec 7.4) for each date of a
    range, with which `puhui account` gathers their records. Reads nothing but the hub key."""
    if not IDENTIFIER.fullmatch(person):  # the form of a raw record's subject, which ingestion turns into these
        cannot_run(f"PERSON {person!r} is no person id: the hub's ids are raw records' subjects, "
                   f"{IDENTIFIER.pattern} (e.g. hub-person-0042)")
    try:
        derived = daily_pseudonyms(load_secret(hub_key, passphrase_for_role("hub", f"the hub key {hub_key}"), "hub"),
                                   person, first_day, last_day)
    except ValueError as exc:
        cannot_run(f"--from {first_day} --to {last_day}: {exc}")
    if as_json:
        sys.stdout.write(json.dumps({"pseudonyms": [p._asdict() for p in derived]}, indent=1) + "\n")
        return
    for entry in derived:
        sys.stdout.write(f"{entry.day} {entry.subject}\n")


@commands.command("footprint")
@guarded
def footprint_command(inventory: Path = typer.Argument(..., metavar="FILE", help="activity data: {name, kind, period_start, "
                                                                 "period_end, entries: [{site, month, source, quantity}]}"),
                      compare: Optional[Path] = typer.Option(None, metavar="FILE", help="an earlier period's inventory to compare against"),
                      as_csv: bool = CsvOption, as_json: bool = JsonOption) -> None:
    """An enterprise's or an event's footprint by scope, source, site and month, every factor cited."""
    current = footprint(_read_json(inventory))
    report = current.report()
    comparison = None if compare is None else compare_footprints(footprint(_read_json(compare)), current)
    if comparison is None:
        _emit(report, as_csv, as_json)
    elif as_json:
        _emit(report, False, True, {"comparison": comparison.as_json()})
    else:
        _emit(report, as_csv, False)
        if as_csv:
            sys.stdout.write("\n")
        _emit(comparison, as_csv, False)
