"""Tables as `puhui` prints them for people: a table whose rows each fit one line of the terminal
is drawn as one; a wider one is printed a block a row, one `column  value` line a cell, so that a
row never wraps across lines and a number is never cut (an 80-column terminal, a pipe, a log file).
"""

from __future__ import annotations

import re
from typing import Sequence

from rich.console import Console
from rich.cells import cell_len
from rich.table import Table
from rich.text import Text

from cli.terminal import console as terminal

# Between a block's column names and its values.
BLOCK_GAP = 2
# A table's padding (a space each side of a cell) and its vertical lines: one more than columns.
CELL_PADDING = 2
# Where a heading's phrases part: after a comma, before a parenthesis.
PHRASE_BREAK = re.compile(r"(?<=, )|(?= \()")


def _width(text: str) -> int:
    return max(cell_len(line) for line in text.split("\n"))


def table_width(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> int:
    """The columns a table takes with no cell wrapped."""
    columns = [max([_width(header), *(_width(row[i]) for row in rows)]) for i, header in enumerate(headers)]
    return sum(width + CELL_PADDING for width in columns) + len(columns) + 1


def _table(title: str, headers: Sequence[str], rows: Sequence[Sequence[str]], right: frozenset[str]) -> Table:
    table = Table(title=title, title_justify="left")
    for header in headers:
        table.add_column(header, justify="right" if header in right else "left", no_wrap=True)
    for row in rows:
        table.add_row(*(Text(cell) for cell in row))
    return table


def heading_lines(heading: str, width: int) -> list[str]:
    """A heading in lines of at most width columns, cut only where its phrases part (PHRASE_BREAK),
    so that a narrow terminal never breaks one mid-phrase; a phrase wider than that stays whole
    (the terminal wraps it)."""
    lines: list[str] = []
    for phrase in PHRASE_BREAK.split(heading):
        if lines and cell_len(lines[-1] + phrase) <= width:
            lines[-1] += phrase
        else:
            lines.append(phrase.strip() if lines else phrase)
    return [line.rstrip() for line in lines]


def print_heading(heading: str, *, style: str = "bold", console: Console = terminal) -> None:
    for line in heading_lines(heading, console.width):
        console.print(Text(line, style=style), soft_wrap=False)


def _blocks(title: str, headers: Sequence[str], rows: Sequence[Sequence[str]], width: int) -> list[Text | Table]:
    out: list[Text | Table] = [Text(line, style="italic") for line in heading_lines(
        f"{title} (a block a row: too wide for {width} columns)", width)]
    for row in rows:
        block = Table.grid(padding=(0, BLOCK_GAP))
        block.add_column(no_wrap=True, style="bold")
        block.add_column(overflow="fold")  # only a value longer than the line (a hash, a citation) folds
        for header, cell in zip(headers, row):
            if cell:  # an empty cell says nothing in a block
                block.add_row(header, Text(cell))
        out += [block, Text("")]
    return out


def print_table(title: str, headers: Sequence[str], rows: Sequence[Sequence[str]], *,
                right: frozenset[str] = frozenset(), console: Console = terminal) -> None:
    """Print rows of cells under headers: as a table when every row fits one line of the console,
    else a block a row. right: the headers whose column holds numbers (aligned right)."""
    if table_width(headers, rows) <= console.width:
        console.print(_table(title, headers, rows, right))
        return
    for part in _blocks(title, headers, rows, console.width):
        console.print(part, soft_wrap=False)
