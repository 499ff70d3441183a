"""Every `puhui` and `puhui-verify` command's help, rendered as a person sees it at 80 columns: it
names each value by a metavar (DIR, FILE, URL, N), never by typer's type tags (<str>, <path>,
<bool>, <int>, <list[str]>)."""

from __future__ import annotations

import argparse
import re
from typing import Iterator

import pytest
import typer.main
from typer.testing import CliRunner

from cli.main import app
from verifier.cli import _parser

TYPE_TAG = re.compile(r"<[A-Za-z][^<>\n]*>")


def _command_paths(command, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], object]]:
    yield path, command
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        yield from _command_paths(sub, (*path, name))


PUHUI_COMMANDS = list(_command_paths(typer.main.get_command(app)))


def test_the_walk_reaches_every_command_and_subcommand():
    paths = {" ".join(path) for path, _ in PUHUI_COMMANDS}
    assert {"", "init", "ingest", "status", "keys", "keys new", "keys register", "accounts open", "submit"} <= paths
    assert len(paths) >= 22


@pytest.mark.parametrize("path", [path for path, _ in PUHUI_COMMANDS], ids=lambda path: " ".join(path) or "puhui")
def test_puhui_help_shows_no_type_tag(path):
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "80"}, prog_name="puhui")
    assert result.exit_code == 0, result.output
    assert "Usage: puhui" in result.output
    assert TYPE_TAG.search(result.output) is None, result.output


@pytest.mark.parametrize("path", [path for path, _ in PUHUI_COMMANDS], ids=lambda path: " ".join(path) or "puhui")
def test_every_value_a_puhui_command_takes_has_a_metavar(path):
    command = dict(PUHUI_COMMANDS)[path]
    for param in command.params:
        if not getattr(param, "is_flag", False):
            assert param.metavar, f"puhui {' '.join(path)}: {param.name} has no metavar"


def _verify_parsers() -> Iterator[tuple[str, argparse.ArgumentParser]]:
    parser = _parser()
    yield "puhui-verify", parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            yield from ((f"puhui-verify {name}", sub) for name, sub in action.choices.items())


@pytest.mark.parametrize("name,parser", list(_verify_parsers()), ids=lambda v: v if isinstance(v, str) else "")
def test_puhui_verify_help_shows_no_type_tag(name, parser, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    text = parser.format_help()
    assert text.startswith(f"usage: {name}")
    assert TYPE_TAG.search(text) is None, text


@pytest.mark.parametrize("path", [path for path, command in PUHUI_COMMANDS if getattr(command, "commands", None)],
                         ids=lambda path: " ".join(path) or "puhui")
def test_command_lists_break_descriptions_only_where_the_terminal_wraps(path):
    """On a terminal wide enough, each command's description in a group's list is one line: the
    source's line breaks of a docstring must not cut a sentence in two."""
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "1000"}, prog_name="puhui")
    assert result.exit_code == 0, result.output
    panel = result.output[result.output.index("─ Commands ─"):]
    rows = [line for line in panel.splitlines()[1:] if line.startswith("│")]
    assert rows and all(not line[1:].startswith("  ") for line in rows), result.output


def _signer_key_help(path: tuple[str, ...]) -> str:
    command = dict(PUHUI_COMMANDS)[path]
    return " ".join(next(param.help for param in command.params if param.name == "signer_key").split())


@pytest.mark.parametrize("path,signer", [(("transfer",), "a controller of --from"),
                                         (("retire",), "a controller of --account"),
                                         (("claim",), "an admin, or a controller of --claimant"),
                                         (("review",), "a validator's")])
def test_signer_key_help_names_who_signs_the_command(path, signer):
    """A holder signs transfers and retirements: --signer-key's help says so, not "an admin's"."""
    text = _signer_key_help(path)
    assert text.startswith(f"the key file that signs: {signer}"), text


def test_signer_key_help_of_an_admin_command_names_the_admin():
    assert _signer_key_help(("issue",)).startswith("the key file that signs: an admin's, or the root key")
