"""Where every issued serial is, by range: the serial_ranges table, for the serial lookup.

Its rows tile [0, next serial) with ranges [start, end), each of one issuance, held by one
account in one state (active, retired, cancelled), put there by one event (`seq`). An issuance
adds a row; a transfer, retirement or cancellation reassigns the rows its serials cover, split at
its ends, and merges those of the same issuance into one: a commit reads and writes O(ranges it
moves) rows, by the primary key, in its own transaction (SerialIndexChanges, through
ledger.page_indexes). A lookup reads the one row whose start is the greatest at or below the
serial: O(log rows).
"""

from __future__ import annotations

from bisect import bisect_right, insort
from typing import Any, Callable, Iterable, NamedTuple

from sqlalchemy import delete, select, text
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection

from ledger.errors import InvariantBroken
from ledger.leaf import Leaf
from ledger.state import State
from ledger.store import serial_ranges

TABLE = serial_ranges.name
_DELETE_CHUNK = 500


class SerialRange(NamedTuple):
    """A serial_ranges row, in column order (as the projection digest hashes it)."""
    start: int
    end: int
    account: str
    state: str  # active, retired or cancelled
    seq: int  # the event that put these serials in this account and state
    issuance_seq: int  # the issuance they come from


class Placement(NamedTuple):
    """Where an event puts the serials of its effects."""
    account: str
    state: str


# The events that move serials (the ones with effects), and where each puts them.
PLACED: dict[str, Callable[[dict[str, Any]], Placement]] = {
    "issuance": lambda body: Placement(body["account"], "active"),
    "transfer": lambda body: Placement(body["to"], "active"),
    "retirement": lambda body: Placement(body["account"], "retired"),
    "cancellation": lambda body: Placement(body["account"], "cancelled"),
}


class Move(NamedTuple):
    start: int
    end: int
    placement: Placement
    seq: int
    issues: bool  # an issuance: these serials are new


class SerialIndexChanges:
    """The serial moves of a group of events, in log order, applied to the table at its commit."""

    def __init__(self) -> None:
        self._moves: list[Move] = []

    def note(self, leaf: Leaf) -> None:
        placed = PLACED.get(leaf.type)
        if placed is None:
            if leaf.serials is not None:  # a new type that moves serials: the index must learn where to
                raise InvariantBroken(f"serial index: {leaf.type} moves serials but PLACED does not say where to")
            return
        placement = placed(leaf.body)
        for start, end in leaf.serials:
            self._moves.append(Move(start, end, placement, leaf.seq, leaf.type == "issuance"))

    def write(self, conn: Connection) -> tuple[list[SerialRange], list[SerialRange]]:
        """Apply the moves; (old rows, new rows) for the digest (a row deleted is only in old)."""
        if not self._moves:
            return [], []
        loaded = {row.start: row for row in _covering(conn, _merged(move for move in self._moves if not move.issues))}
        work = _Ranges(loaded)
        for move in self._moves:
            work.place(move)
        self._moves.clear()
        rows = work.rows
        gone = sorted(loaded.keys() - rows.keys())
        old = [row for start, row in loaded.items() if rows.get(start) != row]
        new = [row for start, row in rows.items() if loaded.get(start) != row]
        t = serial_ranges
        for i in range(0, len(gone), _DELETE_CHUNK):
            conn.execute(delete(t).where(t.c.start.in_(gone[i:i + _DELETE_CHUNK])))
        if new:
            insert = sqlite_insert if conn.dialect.name == "sqlite" else postgresql_insert
            statement = insert(t)
            conn.execute(statement.on_conflict_do_update(
                index_elements=[t.c.start], set_={c.name: statement.excluded[c.name] for c in t.columns if c.name != "start"}),
                [row._asdict() for row in new])
        return old, new


class _Ranges:
    """The rows a group's moves touch, by start, split and reassigned in memory."""

    def __init__(self, rows: dict[int, SerialRange]):
        self.rows = dict(rows)
        self._starts = sorted(rows)

    def place(self, move: Move) -> None:
        if move.issues:
            if move.start in self.rows:
                raise InvariantBroken(f"serial index: an issuance of serials [{move.start}, {move.end}) already indexed")
            self._put(SerialRange(move.start, move.end, *move.placement, move.seq, move.seq))
            return
        self._split_at(move.start)
        self._split_at(move.end)
        i = bisect_right(self._starts, move.start) - 1
        covered, merged = move.start, None
        while covered < move.end:
            row = self.rows.get(self._starts[i]) if 0 <= i < len(self._starts) else None
            if row is None or row.start != covered:
                raise InvariantBroken(f"serial index: serials from {covered} are moved but not indexed")
            placed = row._replace(account=move.placement.account, state=move.placement.state, seq=move.seq)
            if merged is not None and merged.issuance_seq == placed.issuance_seq:
                merged = merged._replace(end=placed.end)
                del self.rows[row.start]
                self._starts.pop(i)
            else:
                merged, i = placed, i + 1
            self.rows[merged.start] = merged
            covered = row.end

    def _split_at(self, serial: int) -> None:
        """Cut the row holding `serial` inside it in two at `serial`."""
        i = bisect_right(self._starts, serial) - 1
        if i < 0:
            return
        row = self.rows[self._starts[i]]
        if row.start < serial < row.end:
            self.rows[row.start] = row._replace(end=serial)
            self._put(row._replace(start=serial))

    def _put(self, row: SerialRange) -> None:
        self.rows[row.start] = row
        insort(self._starts, row.start)


_COLUMNS = ", ".join(f'"{column.name}"' for column in serial_ranges.columns)
# The row holding a span's start (the greatest start at or below it), then those starting inside
# the span: two searches of the primary key. (One WHERE start >= (the first's start) AND start <
# end lets SQLite scan every row below the end.)
_COVERING_TERM = (f"SELECT * FROM (SELECT {_COLUMNS} FROM serial_ranges WHERE start <= :s{{i}} ORDER BY start DESC "
                  f"LIMIT 1) AS holding_{{i}} UNION ALL SELECT {_COLUMNS} FROM serial_ranges "
                  f"WHERE start > :s{{i}} AND start < :e{{i}}")
_SPANS_PER_STATEMENT = 200  # two SELECTs each: SQLite allows 500 in one compound statement


def _merged(moves: Iterable[Move]) -> list[tuple[int, int]]:
    """The moves' serials as sorted spans, overlapping or adjacent ones joined (a group of
    transfers often takes one account's lowest serials one after another)."""
    spans: list[list[int]] = []
    for start, end in sorted((move.start, move.end) for move in moves):
        if spans and start <= spans[-1][1]:
            spans[-1][1] = max(spans[-1][1], end)
        else:
            spans.append([start, end])
    return [(start, end) for start, end in spans]


def _covering(conn: Connection, spans: list[tuple[int, int]]) -> list[SerialRange]:
    """The rows holding any serial of these [start, end) spans, in one statement per 200 spans."""
    rows = []
    for first in range(0, len(spans), _SPANS_PER_STATEMENT):
        chunk = spans[first:first + _SPANS_PER_STATEMENT]
        statement = " UNION ALL ".join(_COVERING_TERM.format(i=i) for i in range(len(chunk)))
        parameters = {name: value for i, (start, end) in enumerate(chunk) for name, value in ((f"s{i}", start), (f"e{i}", end))}
        rows.extend(SerialRange(*row) for row in conn.execute(text(statement), parameters))
    return rows


def lookup(conn: Connection, serial: int) -> SerialRange | None:
    """The row holding this serial, None if it was never issued: one read by the primary key."""
    t = serial_ranges
    row = conn.execute(select(t).where(t.c.start <= serial).order_by(t.c.start.desc()).limit(1)).first()
    return None if row is None or row.end <= serial else SerialRange(*row)


def stored_rows(conn: Connection) -> list[SerialRange]:
    return [SerialRange(*row) for row in conn.execute(select(serial_ranges).order_by(serial_ranges.c.start))]


def state_problems(rows: list[SerialRange], state: State, limit: int) -> list[str]:
    """Where the rows differ from the State: each account's serials by state, merged, and each
    row inside the issuance it names (rows sorted by start)."""
    problems: list[str] = []
    held: dict[tuple[str, str], list[list[int]]] = {}
    by_seq = {issuance.seq: issuance for issuance in state.issuances.values()}
    for row in rows:
        ranges = held.setdefault((row.account, row.state), [])
        if ranges and ranges[-1][1] == row.start:
            ranges[-1][1] = row.end
        else:
            ranges.append([row.start, row.end])
        issuance = by_seq.get(row.issuance_seq)
        if issuance is None or not issuance.start <= row.start < row.end <= issuance.end:
            problems.append(f"serial index: serials [{row.start}, {row.end}) are not of the issuance at seq {row.issuance_seq}")
    for account in state.accounts.values():
        for kind in ("active", "retired", "cancelled"):
            indexed = held.pop((account.account_id, kind), [])
            if indexed != getattr(account, kind).ranges():
                problems.append(f"serial index: account {account.account_id} holds {kind} serials "
                                f"{getattr(account, kind).ranges()[:4]}, the index says {indexed[:4]}")
    problems.extend(f"serial index: account {account} ({kind}) is not in the accounts" for account, kind in held)
    return problems[:limit]
