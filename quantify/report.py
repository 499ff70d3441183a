"""Reports for people: tonnes with three decimals at the edge, integer grams inside, CSV for all.

A report is a title, named tables and notes (illustrative factors, caveats). The JSON form keeps
grams next to tonnes so nothing a machine reads is rounded; the CSV form is one file a
spreadsheet opens, one section per table.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from typing import Any

from ledger.units import tonnes

def format_tonnes(grams: int) -> str:
    """Integer grams as tonnes with exactly three decimals (ledger.units.tonnes: exact, rounded
    half to even at the kilogram), without the "-0.000" a small negative change would show."""
    if not isinstance(grams, int) or isinstance(grams, bool):
        raise TypeError(f"grams must be an int, got {type(grams).__name__}")
    text = tonnes(grams)
    return "0.000" if text == "-0.000" else text


@dataclass(frozen=True)
class Table:
    """Rows of plain values (str, int, bool or None) under named columns."""

    columns: tuple[str, ...]
    rows: list[tuple[Any, ...]]

    def __post_init__(self) -> None:
        for row in self.rows:
            if len(row) != len(self.columns):
                raise ValueError(f"row {row!r} has {len(row)} cells for {len(self.columns)} columns")

    def as_json(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row)) for row in self.rows]

    def to_csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(self.columns)
        writer.writerows(_csv_row(row) for row in self.rows)
        return out.getvalue()


def _csv_row(row: tuple[Any, ...]) -> list[str]:
    return ["" if cell is None else ("true" if cell is True else "false" if cell is False else str(cell)) for cell in row]


@dataclass(frozen=True)
class Report:
    title: str
    tables: dict[str, Table]
    notes: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)  # the machine form (grams, ids, proofs)

    def as_json(self) -> dict[str, Any]:
        return {
            "title": self.title,
            **self.data,
            "tables": {name: table.as_json() for name, table in self.tables.items()},
            "notes": list(self.notes),
        }

    def to_csv(self) -> str:
        """One CSV file: a `[table]` row, the header and rows per table, a blank row between."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow([self.title])
        for name, table in self.tables.items():
            writer.writerow([])
            writer.writerow([f"[{name}]"])
            writer.writerow(table.columns)
            writer.writerows(_csv_row(row) for row in table.rows)
        if self.notes:
            writer.writerow([])
            writer.writerow(["[notes]"])
            writer.writerows([note] for note in self.notes)
        return out.getvalue()
