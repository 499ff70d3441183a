"""Where key passphrases come from: an environment variable, or a prompt on a terminal.

Never from a command-line argument: argv is visible to every user through ps and /proc, and lands
in shell history.
"""

from __future__ import annotations

import getpass
import os
import sys

from .errors import KeyFileError

PASSPHRASE_ENV = "PUHUI_KEY_PASSPHRASE"


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
