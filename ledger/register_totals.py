"""The register's totals for the public home page (issued, active, retired by purpose, cancelled,
issued by methodology, and the flow by month), stored in the register_totals table.

Each commit moves the rows its events change (TotalsChanges, through ledger.page_indexes), in the
same transaction as the events, and rewrites the ("size", "") row with the log size they cover: a
page reads a few dozen rows in one statement, whatever the log's length, and always a whole commit.
"""

from __future__ import annotations

from typing import NamedTuple

from sqlalchemy import select, tuple_
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection

from ledger.leaf import Leaf
from ledger.schema import PURPOSES
from ledger.state import State
from ledger.store import register_totals

MAX_MONTHS = 1_200  # a century of months: the flows by month never outgrow this
TABLE = register_totals.name


class MonthFlow(NamedTuple):
    month: str  # YYYY-MM of the events' registry time (UTC)
    issued_g: int
    retired_g: int


class RegisterTotals(NamedTuple):
    size: int  # the committed log size these totals cover
    issued_g: int
    active_g: int
    retired_g: int
    cancelled_g: int
    retired_by_purpose_g: dict[str, int]
    issued_by_methodology_g: dict[str, int]  # by methodology_id, sorted
    by_month: list[MonthFlow]  # oldest first


class TotalKey(NamedTuple):
    """One row's key: a measure ("issued", "retired_by_purpose", ...) and what it is by ("" for none)."""
    measure: str
    key: str


class TotalRow(NamedTuple):
    """A register_totals row, in column order (as the projection digest hashes it)."""
    measure: str
    key: str
    value: int  # grams; the log size for SIZE


SIZE = TotalKey("size", "")


class TotalsChanges:
    """How a group of events moves the totals (grams by TotalKey), written at its commit."""

    def __init__(self) -> None:
        self.deltas: dict[TotalKey, int] = {}

    def note(self, leaf: Leaf) -> None:
        body, month = leaf.body, leaf.time[:7]
        if leaf.type == "issuance":
            self._add(amount_g=body["amount_g"], keys=(
                TotalKey("issued", ""), TotalKey("issued_by_methodology", body["methodology_id"]),
                TotalKey("issued_by_month", month)))
        elif leaf.type == "retirement":
            self._add(amount_g=body["amount_g"], keys=(
                TotalKey("retired_by_purpose", body["purpose"]), TotalKey("retired_by_month", month)))
        elif leaf.type == "cancellation":
            self._add(amount_g=body["amount_g"], keys=(TotalKey("cancelled", ""),))

    def _add(self, *, amount_g: int, keys: tuple[TotalKey, ...]) -> None:
        for key in keys:
            self.deltas[key] = self.deltas.get(key, 0) + amount_g

    def write(self, conn: Connection, size: int) -> tuple[list[TotalRow], list[TotalRow]]:
        """Move the rows by the deltas and set the size; (old rows, new rows) for the digest."""
        wanted = [*self.deltas, SIZE]
        t = register_totals
        old = [TotalRow(*row) for row in conn.execute(
            select(t.c.measure, t.c.key, t.c.value).where(tuple_(t.c.measure, t.c.key).in_(wanted)))]
        values = {TotalKey(row.measure, row.key): row.value for row in old}
        new = [TotalRow(k.measure, k.key, values.get(k, 0) + delta) for k, delta in self.deltas.items()]
        new.append(TotalRow(SIZE.measure, SIZE.key, size))
        insert = sqlite_insert if conn.dialect.name == "sqlite" else postgresql_insert
        statement = insert(t)
        conn.execute(statement.on_conflict_do_update(index_elements=[t.c.measure, t.c.key],
                                                     set_={"value": statement.excluded.value}),
                     [row._asdict() for row in new])
        self.deltas.clear()
        return old, new


def stored_rows(conn: Connection) -> list[TotalRow]:
    t = register_totals
    return [TotalRow(*row) for row in conn.execute(select(t.c.measure, t.c.key, t.c.value).order_by(t.c.measure, t.c.key))]


def totals_from_rows(rows: list[TotalRow]) -> RegisterTotals | None:
    """The totals the rows hold (read in one statement: one commit's), None if never filled."""
    by: dict[str, dict[str, int]] = {}
    for row in rows:
        by.setdefault(row.measure, {})[row.key] = row.value
    if SIZE.key not in by.get(SIZE.measure, {}):
        return None
    issued_g, cancelled_g = by.get("issued", {}).get("", 0), by.get("cancelled", {}).get("", 0)
    retired_by_purpose_g = {purpose: by.get("retired_by_purpose", {}).get(purpose, 0) for purpose in PURPOSES}
    retired_g = sum(retired_by_purpose_g.values())
    issued_by_month, retired_by_month = by.get("issued_by_month", {}), by.get("retired_by_month", {})
    months = sorted(issued_by_month.keys() | retired_by_month.keys())[-MAX_MONTHS:]
    return RegisterTotals(
        size=by[SIZE.measure][SIZE.key], issued_g=issued_g, active_g=issued_g - retired_g - cancelled_g,
        retired_g=retired_g, cancelled_g=cancelled_g, retired_by_purpose_g=retired_by_purpose_g,
        issued_by_methodology_g=dict(sorted(by.get("issued_by_methodology", {}).items())),
        by_month=[MonthFlow(m, issued_by_month.get(m, 0), retired_by_month.get(m, 0)) for m in months])


def state_problems(totals: RegisterTotals, state: State) -> list[str]:
    """Where the stored totals differ from the State's: its grams by kind,
    retirements by purpose and issuances by methodology. The months need the events' times: the
    digest and the full check cover them."""
    problems = []
    if totals.size != state.size:
        problems.append(f"the register totals cover a log of {totals.size} events, the log holds {state.size}")
    stored = {"issued_g": totals.issued_g, "active_g": totals.active_g, "retired_g": totals.retired_g,
              "cancelled_g": totals.cancelled_g}
    if stored != state.totals_g():
        problems.append(f"the register totals {stored} differ from the accounts' {state.totals_g()}")
    by_purpose = dict.fromkeys(PURPOSES, 0)
    for retirement in state.retirements.values():
        by_purpose[retirement.purpose] += retirement.amount_g
    if by_purpose != totals.retired_by_purpose_g:
        problems.append(f"the register totals retired by purpose {totals.retired_by_purpose_g} differ from the "
                        f"retirements' {by_purpose}")
    by_methodology: dict[str, int] = {}
    for issuance in state.issuances.values():
        by_methodology[issuance.methodology_id] = by_methodology.get(issuance.methodology_id, 0) + issuance.amount_g
    if dict(sorted(by_methodology.items())) != totals.issued_by_methodology_g:
        problems.append("the register totals issued by methodology differ from the issuances'")
    return problems
