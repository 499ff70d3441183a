"""The operator's upkeep of a registry: `puhui check`, `puhui backup`, `puhui restore`
(docs/operations.md says when to run each)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer

from cli.help import Typer
from cli.terminal import EXIT_REFUSED, cannot_run, console, errors, fail, guarded
from keys.errors import KeyFileError
from keys.secret_files import read_secret_file
from ledger.backup import BackupRefused, backup, restore
from ledger.note import parse_verifier_key, verify_checkpoint
from service.registry_dir import RegistryDir, RegistryDirError

commands = Typer()  # added to `puhui` by cli.main

MAX_CHECKPOINT_BYTES = 64 << 10  # a signed note: a few lines and its cosignatures

DirArgument = typer.Argument(..., metavar="DIR", help="the registry's directory")
DatabaseOption = typer.Option(None, "--database-url", metavar="URL", help="override the directory's database URL")


@commands.command("check")
@guarded
def check(directory: Path = DirArgument, database_url: Optional[str] = DatabaseOption,
          as_json: bool = typer.Option(False, "--json", help="print the report as JSON")) -> None:
    """Replay the whole log through the rules and compare every projection row with it (reads only;
    as long as the log is long). Exit 1 when they differ: the registry then refuses to write."""
    registry = RegistryDir(directory).open(with_log_key=False, database_url=database_url)
    try:
        report = registry.check_integrity(full=True)
    finally:
        registry.close()
    if as_json:
        console.print_json(json.dumps(report.as_json()))
    elif report.ok:
        console.print(f"the projections match a replay of the log ({report.size} events); serials conserved")
    else:
        for problem in report.problems:
            errors.print(f"- {problem}")
    if not report.ok:
        fail(f"{len(report.problems)} problems: the projections do not match the log (docs/operations.md, "
             f"\"When the start check fails\")", EXIT_REFUSED)


@commands.command("backup")
@guarded
def backup_command(directory: Path = DirArgument,
                   out: Path = typer.Option(..., metavar="FILE", help="the backup file to write (must not exist)"),
                   database_url: Optional[str] = DatabaseOption) -> None:
    """A consistent copy of the registry's database while it runs (SQLite's backup API, or pg_dump):
    never copy registry.sqlite3 by hand, its write-ahead log holds the latest events."""
    url = RegistryDir(directory).database_url(database_url)
    try:
        state = backup(url, out)
    except BackupRefused as exc:
        cannot_run(str(exc))
    console.print(f"backed up {state.size} events (latest checkpoint at {state.checkpoint_size}) to {out}")


def _configured_database(place: RegistryDir) -> str | None:
    """The database registry.json names, whose latest checkpoint a restore elsewhere must reach
    (None when the directory has lost its registry.json)."""
    try:
        return place.database_url()
    except (OSError, ValueError, KeyError, RegistryDirError):
        return None


@commands.command("restore")
@guarded
def restore_command(directory: Path = DirArgument,
                    backup_file: Path = typer.Argument(..., metavar="BACKUP_FILE", help="a file written by `puhui backup`"),
                    checkpoint: List[Path] = typer.Option([], "--checkpoint", metavar="FILE", help=(
                        "a signed checkpoint published by this registry, as a witness, monitor or client holds "
                        "it (repeat for several): the backup must reach it")),
                    database_url: Optional[str] = DatabaseOption) -> None:
    """Put a backup in place of the registry's database (the server stopped), refusing one older
    than the registry's own latest checkpoint or any --checkpoint given: an older one would hand
    out again seq numbers that clients hold receipts for."""
    place = RegistryDir(directory)
    url = place.database_url(database_url)
    trust_path = place.path / "trust.json"
    try:
        log_key = json.loads(trust_path.read_text())["log_key"]
    except (OSError, ValueError, KeyError):
        cannot_run(f"{trust_path} is missing or is no trust file: restore needs the registry's log key")
    if not backup_file.is_file():  # an input that cannot be read: exit 2, as every such input
        cannot_run(f"{backup_file}: no such backup file (a regular file written by `puhui backup`)")
    notes = []
    for path in checkpoint:
        try:  # a FIFO would block the read for ever (trial 11): refused as key files are
            data = read_secret_file(path, label=f"--checkpoint {path}", what="signed checkpoint",
                                    max_bytes=MAX_CHECKPOINT_BYTES, holds_a_secret=lambda _: False)
            notes.append(data.decode("utf-8"))
            verify_checkpoint(notes[-1], parse_verifier_key(log_key))  # an input not of its form: exit 2
        except (OSError, UnicodeDecodeError, KeyFileError) as exc:
            cannot_run(str(exc) if isinstance(exc, KeyFileError) else f"--checkpoint {path}: {exc}")
        except ValueError as exc:
            cannot_run(f"--checkpoint {path}: not a checkpoint this registry's log key signed: {exc}")
    if not notes:
        errors.print("note: no --checkpoint given: only the registry's own latest checkpoint (if its database can "
                     "still be read) is checked; bring the latest one your witnesses or monitors hold")
    try:
        state = restore(backup_file, url, notes, log_key, replaced_database_url=_configured_database(place))
    except BackupRefused as exc:
        fail(str(exc), EXIT_REFUSED)
    console.print(f"restored {state.size} events (latest checkpoint at {state.checkpoint_size}); start the server, "
                  f"then run `puhui check {directory}`")
