"""Where key passphrases come from: an environment variable, or a prompt on a terminal.

Never from a command-line argument: argv is visible to every user through ps and /proc, and lands
in shell history. Each role has its own variable (PUHUI_ROOT_KEY_PASSPHRASE, ...), falling back
to PUHUI_KEY_PASSPHRASE, then to a prompt, so that the server's environment need hold only the
log key's; each variable NAME_FILE names a file holding the passphrase instead. A process that has
loaded its keys forgets the variables, so its children never inherit them. (Linux keeps a
process's initial environment readable in /proc/PID/environ by its owner and root whatever the
process does later: a _FILE variable or the prompt keeps the secret out of it.)
"""

from __future__ import annotations

import getpass
import os
import sys

from .errors import KeyFileError
from .secret_files import read_secret_file

PASSPHRASE_ENV = "PUHUI_KEY_PASSPHRASE"
MIN_PASSPHRASE_CHARS = 12  # for a new key; the demo's keys are exempt (they guard nothing)
FILE_SUFFIX = "_FILE"
MAX_PASSPHRASE_FILE_BYTES = 4096


def role_passphrase_env(role: str) -> str:
    """The variable that holds the passphrase of role's key: PUHUI_ROOT_KEY_PASSPHRASE, ..."""
    if not role.replace("_", "").isalnum():
        raise ValueError(f"a role is a word, got {role!r}")
    return f"PUHUI_{role.upper()}_KEY_PASSPHRASE"


def passphrase_for_role(role: str, purpose: str, *, confirm: bool = False) -> bytes:
    """The passphrase of role's key: its own variable, else PUHUI_KEY_PASSPHRASE, else a prompt.
    A variable NAME_FILE (e.g. PUHUI_LOG_KEY_PASSPHRASE_FILE) names a file holding it instead, such
    as a systemd credential: the environment then holds a path, not the secret."""
    own = role_passphrase_env(role)
    for name in (own, PASSPHRASE_ENV):
        from_file = os.environ.get(f"{name}{FILE_SUFFIX}")
        if from_file:
            return _read_passphrase_file(from_file, name)
        if os.environ.get(name):
            return os.environ[name].encode("utf-8")
    return passphrase_from_env_or_prompt(purpose, confirm=confirm)


def _read_passphrase_file(path: str, variable: str) -> bytes:
    label = f"{variable}{FILE_SUFFIX}={path}"
    try:
        data = read_secret_file(path, label=label, what="passphrase file", max_bytes=MAX_PASSPHRASE_FILE_BYTES)
    except OSError as exc:
        raise KeyFileError(f"{label}: cannot read it: {exc.strerror}") from None
    passphrase = data.split(b"\n", 1)[0].removesuffix(b"\r")
    if not passphrase:
        raise KeyFileError(f"{variable}{FILE_SUFFIX}={path}: expected one line holding the passphrase")
    return passphrase


def forget_passphrases() -> None:
    """Clear every passphrase variable from this process's environment (and its future children's)."""
    for name in [name for name in os.environ if name.removesuffix(FILE_SUFFIX) == PASSPHRASE_ENV or
                 (name.startswith("PUHUI_") and name.removesuffix(FILE_SUFFIX).endswith("_KEY_PASSPHRASE"))]:
        del os.environ[name]


def check_new_passphrase(passphrase: bytes, purpose: str) -> None:
    """A passphrase for a new key: at least MIN_PASSPHRASE_CHARS characters."""
    if len(passphrase.decode("utf-8")) < MIN_PASSPHRASE_CHARS:
        raise KeyFileError(f"the passphrase for {purpose} is shorter than {MIN_PASSPHRASE_CHARS} characters: "
                           f"choose a longer one")


def passphrase_from_env_or_prompt(
    purpose: str, *, confirm: bool = False, env: str = PASSPHRASE_ENV
) -> bytes:
    """The passphrase for purpose (e.g. "the root key"), as UTF-8 bytes.

    The environment variable env when it is set and non-empty; otherwise a getpass prompt when a
    terminal is attached (asked twice when confirm, for a new key); otherwise KeyFileError.
    """
    from_env = os.environ.get(env)
    if from_env:
        return from_env.encode("utf-8")
    if not terminal_attached():
        raise KeyFileError(
            f"no passphrase for {purpose}: set the environment variable {env} "
            f"(no terminal is attached to prompt for one)"
        )
    passphrase = getpass.getpass(f"Passphrase for {purpose}: ")
    if not passphrase:
        raise KeyFileError(f"an empty passphrase is not allowed (for {purpose})")
    if confirm and getpass.getpass(f"Repeat the passphrase for {purpose}: ") != passphrase:
        raise KeyFileError(f"the two passphrases for {purpose} differ")
    return passphrase.encode("utf-8")


def terminal_attached() -> bool:
    """True when a person can be prompted: standard input is a terminal."""
    try:
        return sys.stdin is not None and sys.stdin.isatty()
    except (AttributeError, ValueError):  # replaced or closed stdin
        return False
