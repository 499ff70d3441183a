"""How `puhui --help` names a value: by its metavar (DIR, FILE, URL, N), as the usage line does,
never by typer's type tags (<str>, <path>, <bool>), which tell a person nothing the help text
does not. Every `puhui` command and group is made by `Typer` here; tests/test_cli_help.py renders
the help of each, finds no tag, and finds a metavar on every option and argument that takes a value."""

from __future__ import annotations

from typing import Any, Callable

import typer
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption


class _MetavarArgument(TyperArgument):
    def display_type_rich(self, ctx: typer.Context) -> str | None:
        return None  # the metavar stands in the name column already


class _MetavarOption(TyperOption):
    def display_type_rich(self, ctx: typer.Context) -> str | None:
        return None if self.is_flag else self.metavar


class _MetavarHelp:
    """Mixed into typer's command and group: every parameter the help lists, --help included,
    shown by its metavar. typer makes its own parameter classes and has no hook to choose others,
    and shows an argument's type tag even beside its metavar; the two above differ from typer's
    in the help alone."""

    def get_params(self, ctx: typer.Context) -> list[Any]:
        params = super().get_params(ctx)  # the command's own, then --help
        for param in params:
            if type(param) is TyperArgument:
                param.__class__ = _MetavarArgument
            elif type(param) is TyperOption:
                param.__class__ = _MetavarOption
        return params


def reflowed(help_text: str | None) -> str | None:
    """A docstring's paragraphs each on one line, for the terminal to wrap: typer's rich help keeps
    the source's line breaks, which then fall mid-sentence between the wrapped lines. A paragraph
    that starts with a dash (a list) keeps its lines."""
    if not help_text:
        return help_text
    paragraphs = help_text.split("\n\n")
    return "\n\n".join(paragraph if paragraph.lstrip().startswith("-") else " ".join(paragraph.split())
                         for paragraph in paragraphs)


class MetavarCommand(_MetavarHelp, TyperCommand):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.help = reflowed(self.help)


class MetavarGroup(_MetavarHelp, TyperGroup):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.help = reflowed(self.help)


class Typer(typer.Typer):
    """typer.Typer whose groups and commands show each value by its metavar."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(cls=MetavarGroup, **kwargs)

    def command(self, name: str | None = None, *, cls: type[TyperCommand] | None = MetavarCommand,
                **kwargs: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        return super().command(name, cls=cls, **kwargs)
