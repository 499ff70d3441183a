"""Onboarding from the command line: `puhui keys new|register|revoke`, `puhui accounts
open|controllers` and `puhui submit` (added to `puhui` by cli.main).

Every signing command takes the same options (cli.target): --dir DIR, or --server URL --trust
FILE, or --sign-only FILE for an admin whose key stays on their own machine, and --signer-key
FILE. An operation that holds already is named and nothing is signed (cli.signing).
"""

from __future__ import annotations

import base64
import binascii
from pathlib import Path
from typing import Any, List, Optional

import typer

from cli.help import Typer
from cli.signing import Held, Operation, already_holds, nfc, print_outcome, send
from cli.target import DatabaseOption, Delivered, DirOption, ServerOption, Target, TrustOption, Where, WHERE_HELP, where_options
from cli.terminal import cannot_run, console, fail, guarded
from keys import (KEY_FILE_ROLES, SECRET_KINDS, STRENGTHS, Ed25519Key, check_new_passphrase, new_secret,
                  passphrase_for_role, read_key_info, save_key, save_secret)
from ledger.canonical import parse_strict
from ledger.errors import Rejected
from ledger.field_checks import ROLES_V2 as LOG_ROLES
from ledger.schema import ACCOUNT_KINDS, check_submission, key_id_of

keys = Typer(no_args_is_help=True, help="Key files, and their registration and revocation in the log.")
accounts = Typer(no_args_is_help=True, help="Accounts: open one, change who controls it.")
commands = Typer()  # `puhui submit`, added to `puhui` by cli.main

MAX_SUBMIT_FILE_BYTES = 64 << 20
MAX_SUBMIT_EVENTS = 10_000


def _run(where: Where, event_type: str, body: dict[str, Any], operation: Operation) -> None:
    """Sign and deliver one operation to the target the options name (cli.target)."""
    with where.open() as target:
        print_outcome(target, operation, send(target, where.signer(), event_type, body))


def _help(text: str) -> str:
    return f"{text}\n\n{WHERE_HELP}"


def _key_id(text: str, option: str) -> str:
    """A key id (16 hex characters), or the key id of a key file (read without its passphrase)."""
    if len(text) == 16 and all(c in "0123456789abcdef" for c in text):
        return text
    if Path(text).is_file():
        return read_key_info(Path(text)).key_id
    cannot_run(f"{option} {text}: neither a key id (16 lowercase hex characters) nor a key file")


@keys.command("new")
@guarded
def new_key(role: str = typer.Argument(..., metavar="ROLE", help=f"what the key is for: {', '.join(KEY_FILE_ROLES + SECRET_KINDS)} "
                                                 f"(holder: an enterprise's or a citizen's key, registered with no role; "
                                                 f"hub, fingerprint: the scheme's secrets, never registered)"),
            name: str = typer.Argument(..., metavar="NAME", help="who holds it, e.g. wuhan-platform: the key file's label"),
            out: Path = typer.Option(..., "--out", metavar="FILE", help="the key file to write (must not exist; mode 0600)"),
            key_strength: str = typer.Option("moderate", metavar="STRENGTH", help="Argon2id cost: interactive, moderate, sensitive")) -> None:
    """Make a new Ed25519 key in an encrypted key file, and print its key id and public key; or
    (hub, fingerprint) a new scheme secret in its own encrypted file.

    Passphrase: the role's variable (PUHUI_PLATFORM_KEY_PASSPHRASE, PUHUI_HUB_KEY_PASSPHRASE, ...),
    else PUHUI_KEY_PASSPHRASE, else a prompt (asked twice); 12 characters at least. Register an
    Ed25519 key with `puhui keys register`."""
    if role not in KEY_FILE_ROLES + SECRET_KINDS:
        cannot_run(f"ROLE {role!r} is none of {', '.join(KEY_FILE_ROLES + SECRET_KINDS)}")
    if key_strength not in STRENGTHS:
        cannot_run(f"--key-strength {key_strength!r} is none of {', '.join(STRENGTHS)}")
    if out.exists() or out.is_symlink():
        cannot_run(f"--out {out} exists: a key file is never overwritten")
    if not out.parent.is_dir():
        cannot_run(f"--out: directory {out.parent} does not exist")
    passphrase = passphrase_for_role(role, f"the new {role} key {name}", confirm=True)
    check_new_passphrase(passphrase, f"the {role} key {name}")
    if role in SECRET_KINDS:
        save_secret(out, new_secret(), passphrase, kind=role, label=nfc(name), strength=key_strength)
        holder = "the identity hub alone" if role == "hub" else "the hub and the accredited platforms alone"
        console.print(f"{role} key written to {out}: a secret for {holder}, never registered, exported or logged")
        return
    key = Ed25519Key.generate()
    save_key(out, key, passphrase, role=role, label=nfc(name), strength=key_strength)
    console.print(f"key id {key.key_id}")
    console.print(f"public key {key.public_key_b64}")
    console.print(f"written to {out}; register it with `puhui keys register {out} ...`")


def _roles_for(file_role: str | None, roles: List[str]) -> list[str]:
    """The roles to grant: those asked for, else the key file's own role as the log knows it."""
    if roles:
        unknown = sorted(set(roles) - set(LOG_ROLES))
        if unknown:
            cannot_run(f"--role {', '.join(unknown)}: the log knows the roles {', '.join(LOG_ROLES)}")
        return sorted(set(roles))
    if file_role in ("root", "log"):
        cannot_run(f"a {file_role} key is never registered in the log (root keys are in the trust file, the log key "
                   f"signs checkpoints only)")
    return [file_role] if file_role in LOG_ROLES else []


@keys.command("register", help=_help(
    "Register a key in the log (key.register), signed by an admin (platform and ets roles only) or the root "
    "key (admin; in a format-2 log validator or expert, each a key's only role). Already registered with these "
    "roles: nothing is written."))
@guarded
@where_options
def register_key(key: str = typer.Argument(..., metavar="KEY", help="the new key: its key file (only the public part is read) or "
                                                     "its base64 public key"),
                 role: List[str] = typer.Option([], "--role", metavar="ROLE", help="a role to grant: admin, validator or expert (by "
                                                                   "root only), platform or ets; repeat for several "
                                                                   "(default: the key file's role; none for a "
                                                                   "holder's key)"),
                 label: Optional[str] = typer.Option(None, metavar="LABEL", help="the key's label in the log (default: the key "
                                                                "file's)"),
                 *, where: Where) -> None:
    file_role, file_label = None, None
    if Path(key).is_file():
        info = read_key_info(Path(key))
        public_key, file_role, file_label = info.public_key, info.role, info.label
    else:
        try:
            public_key = base64.b64decode(key, validate=True)
        except (binascii.Error, ValueError):
            public_key = b""
        if len(public_key) != 32:
            looks_like_a_path = "/" in key or key.endswith(".key")
            cannot_run(f"{key}: no such key file" if looks_like_a_path and not Path(key).exists()
                       else f"{key}: neither a key file nor a base64 Ed25519 public key (32 bytes)")
    roles = _roles_for(file_role, role)
    label = label or file_label
    if not label:
        cannot_run("--label: a key given by its public key needs a label")
    key_id = key_id_of(public_key)
    _run(where, "key.register",
         {"key_id": key_id, "public_key": base64.b64encode(public_key).decode(), "roles": roles, "label": nfc(label)},
         Operation(f"registered key {key_id} ({', '.join(roles) or 'no role'})",
                   f"register key {key_id} ({', '.join(roles) or 'no role'})"))


@keys.command("revoke", help=_help(
    "Revoke a key (key.revoke): it signs nothing valid afterwards. Signed by an admin, or by the root key for "
    "an admin's key. Revoked already: nothing is written."))
@guarded
@where_options
def revoke_key(key: str = typer.Argument(..., metavar="KEY", help="the key to revoke: its key id or its key file"),
               reason: str = typer.Option(..., metavar="REASON", help="why, for the log: e.g. lost, rotated, left the scheme"),
               *, where: Where) -> None:
    key_id = _key_id(key, "KEY")
    _run(where, "key.revoke", {"key_id": key_id, "reason": nfc(reason)}, Operation(f"revoked key {key_id}", f"revoke key {key_id}"))


def _controllers(values: List[str]) -> list[str]:
    if not values:
        cannot_run("--controller: at least one key (its key id or key file) controls an account")
    return sorted({_key_id(value, "--controller") for value in values})


ControllerOption = typer.Option([], "--controller", metavar="KEY", help="a key that controls the account: its key id or key file; "
                                                          "repeat for several")


@accounts.command("open", help=_help(
    "Open an account (account.open), signed by an admin, or for an individual by a platform key controlling "
    "its platform. Open already with these fields and controllers: nothing is written."))
@guarded
@where_options
def open_account(account_id: str = typer.Argument(..., metavar="ACCOUNT_ID", help="the account's id, e.g. wuhan-platform"),
                 kind: str = typer.Option(..., metavar="KIND", help=f"one of {', '.join(ACCOUNT_KINDS)}"),
                 name: str = typer.Option(..., metavar="NAME", help="its public name (an individual's: a pseudonym, never a name)"),
                 region: str = typer.Option(..., metavar="CODE", help="6-digit region code (GB/T 2260), e.g. 420100 Wuhan"),
                 controller: List[str] = ControllerOption,
                 platform: Optional[str] = typer.Option(None, metavar="ACCOUNT", help="for an individual: the platform account it "
                                                                   "comes through"),
                 *, where: Where) -> None:
    body = {"account_id": account_id, "kind": kind, "name": nfc(name), "region": region,
            "controllers": _controllers(controller), "platform": platform}
    _run(where, "account.open", body, Operation(f"opened {kind} account {account_id}", f"open {kind} account {account_id}"))


@accounts.command("controllers", help=_help(
    "Replace who controls an account (account.controllers), signed by an admin or a current controller. "
    "These controllers already: nothing is written."))
@guarded
@where_options
def set_controllers(account_id: str = typer.Argument(..., metavar="ACCOUNT_ID", help="the account"),
                    controller: List[str] = ControllerOption,
                    *, where: Where) -> None:
    controllers = _controllers(controller)
    _run(where, "account.controllers", {"account_id": account_id, "controllers": controllers},
         Operation(f"account {account_id} controlled by {', '.join(controllers)}",
                   f"have account {account_id} controlled by {', '.join(controllers)}"))


def _signed_events(path: Path, log_format: int) -> list[dict[str, Any]]:
    """The events of a --sign-only file, one a line, each checked as a submission to a log of this
    format (spec section 2)."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_SUBMIT_FILE_BYTES + 1)
    except OSError as exc:
        cannot_run(f"{path}: {exc.strerror}")
    if len(data) > MAX_SUBMIT_FILE_BYTES:
        cannot_run(f"{path} is larger than {MAX_SUBMIT_FILE_BYTES >> 20} MiB: split it")
    lines = [line for line in data.splitlines() if line.strip()]
    if not lines:
        cannot_run(f"{path} holds no signed event: it is empty; `--sign-only FILE` writes one a line")
    if len(lines) > MAX_SUBMIT_EVENTS:
        cannot_run(f"{path} holds {len(lines)} events, more than {MAX_SUBMIT_EVENTS}: split it")
    events = []
    for number, line in enumerate(lines, 1):
        try:
            event = parse_strict(line)
            check_submission(event, log_format)
        except Rejected as exc:
            fail(f"{path} line {number} is no signed event: {exc.code}: {exc.message}")
        events.append(event)
    return events


@commands.command("submit")
@guarded
def submit(file: Path = typer.Argument(..., metavar="FILE", help="signed events, one a line, as `--sign-only` writes them"),
           directory: Optional[Path] = DirOption, server: Optional[str] = ServerOption,
           trust: Optional[Path] = TrustOption, database_url: Optional[str] = DatabaseOption) -> None:
    """Post events signed elsewhere (`--sign-only`) in their order, to --dir DIR or to --server URL
    --trust FILE. One that holds already is skipped; a refusal stops there (those before it stay)."""
    with Where(directory, server, trust, database_url=database_url).open() as target:
        events = _signed_events(file, target.log_format)
        for number, event in enumerate(events, 1):
            try:
                held = already_holds(target, event["type"], event["body"])
                outcome: Delivered | Held = Held(held) if held is not None else target.deliver(event)
            except Rejected as exc:
                fail(f"line {number}: {exc.code}: {exc.message}" + (" (the lines before it are in the log)"
                                                                     if number > 1 else ""))
            print_outcome(target, Operation(f"line {number}: {event['type']}", f"line {number}: {event['type']}"), outcome)
