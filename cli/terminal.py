"""The terminal every `puhui` command writes to, and how a refusal shows there: one line on
stderr and exit code 1, not a traceback (service.refusals says what the line is)."""

from __future__ import annotations

import functools
from typing import Any, Callable, NoReturn

import typer
from rich.console import Console
from rich.text import Text

from service.refusals import MACHINE_ERRORS, REQUEST_ERRORS, Cause, refusal

console = Console(soft_wrap=True)
errors = Console(stderr=True, soft_wrap=True)


def fail(message: str) -> NoReturn:
    errors.print(Text("error: ", style="bold red") + Text(message))
    raise typer.Exit(1)


def guarded(fn: Callable[..., Any]) -> Callable[..., Any]:
    """A command whose refusals (service.refusals) end it with one line and exit code 1."""
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (*REQUEST_ERRORS, *MACHINE_ERRORS) as exc:
            refused = refusal(exc)
            fail(f"{refused.code}: {refused.message}" if refused.cause is Cause.REJECTED else refused.message)
    return wrapper
