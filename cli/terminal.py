"""The terminal every `puhui` command writes to, and how a refusal shows there: one line on
stderr and exit code 1, not a traceback (service.refusals says what the line is)."""

from __future__ import annotations

import functools
import warnings
from typing import Any, Callable, NoReturn, TextIO

import typer
from rich.console import Console
from rich.text import Text

from service.refusals import MACHINE_ERRORS, REQUEST_ERRORS, Cause, refusal

# A command that writes waits this long for another writer (a running `puhui serve`) before it
# says who holds the log, rather than the 30 s a restarting server's writer is given.
CLI_WRITER_LOCK_WAIT_S = 2.0

console = Console(soft_wrap=True)
errors = Console(stderr=True, soft_wrap=True)


# Exit codes, as puhui-verify's (docs/operations.md): 1 when what was asked was refused (the
# registry's rules, with the spec's code; a methodology refusing an act's inputs), 2 when the
# command could not run as given: an option's value none of those allowed or contradicting
# another, an input file unreadable, empty, too large or not of its form (JSON, an inventory),
# a directory that is no registry, a key file, a passphrase, the database, a path that exists
# or is missing.
EXIT_REFUSED = 1
EXIT_CANNOT_RUN = 2


def fail(message: str, code: int = EXIT_REFUSED) -> NoReturn:
    errors.print(Text("error: ", style="bold red") + Text(message))
    raise typer.Exit(code)


def cannot_run(message: str) -> NoReturn:
    fail(message, EXIT_CANNOT_RUN)


class OneLineWarnings:
    """Python warnings (keys: a key file others may read) as a person reads them: one line on
    stderr each, said once however often a command reads the file, without Python's source lines."""

    def __init__(self) -> None:
        self.said: set[str] = set()

    def show(self, message: Warning | str, category: type[Warning], filename: str, lineno: int,
             file: TextIO | None = None, line: str | None = None) -> None:
        text = str(message)
        if text not in self.said:
            self.said.add(text)
            errors.print(Text("warning: ", style="bold yellow") + Text(text))


def guarded(fn: Callable[..., Any]) -> Callable[..., Any]:
    """A command whose refusals (service.refusals) end it with one line and exit code 1, or 2
    when the machine's side (directory, keys, database, files) kept it from running; its warnings
    are one line each (OneLineWarnings)."""
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            with warnings.catch_warnings():
                warnings.showwarning = OneLineWarnings().show
                return fn(*args, **kwargs)
        except (*REQUEST_ERRORS, *MACHINE_ERRORS) as exc:
            refused = refusal(exc)
            message = f"{refused.code}: {refused.message}" if refused.cause is Cause.REJECTED else refused.message
            fail(message, EXIT_CANNOT_RUN if refused.cause is Cause.MACHINE else EXIT_REFUSED)
    return wrapper
