"""The events that set each methodology's offset eligibility, for the methodology page's history:
the eligibility_changes table, one row per methodology.register and methodology.eligibility.

Each commit inserts the rows of its events of those types (EligibilityChanges, through
ledger.page_indexes), in the same transaction: a page reads one methodology's rows through the
(methodology_id, seq) index, never the log. Admins write few such events; a row is never changed.
"""

from __future__ import annotations

from typing import NamedTuple

from sqlalchemy import select
from sqlalchemy.engine import Connection

from ledger.leaf import Leaf
from ledger.state import State
from ledger.store import eligibility_changes

TABLE = eligibility_changes.name
TYPES = ("methodology.register", "methodology.eligibility")
MAX_SHOWN = 1_000  # changes of one methodology read for its page: a version's register, and admins' rare changes


class EligibilityChange(NamedTuple):
    """An event that set a methodology's offset eligibility: of one version (format 2, and every
    methodology.register; None: of the methodology, format 1's methodology.eligibility). An
    eligibility_changes row, in column order (as the projection digest hashes it)."""
    seq: int
    methodology_id: str
    time: str
    type: str
    version: int | None
    offset_eligible: bool


def change_of(leaf: Leaf) -> EligibilityChange | None:
    """The change an event makes, if it is of the TYPES."""
    if leaf.type not in TYPES:
        return None
    body = leaf.body
    return EligibilityChange(leaf.seq, body["methodology_id"], leaf.time, leaf.type, body.get("version"),
                             bool(body["offset_eligible"]))


class EligibilityChanges:
    """The changes of a group of events, inserted at its commit."""

    def __init__(self) -> None:
        self._rows: list[EligibilityChange] = []

    def note(self, leaf: Leaf) -> None:
        change = change_of(leaf)
        if change is not None:
            self._rows.append(change)

    def write(self, conn: Connection) -> tuple[list[EligibilityChange], list[EligibilityChange]]:
        """Insert the rows; (old rows, new rows) for the digest: none is ever rewritten."""
        rows, self._rows = self._rows, []
        if rows:
            conn.execute(eligibility_changes.insert(), [row._asdict() for row in rows])
        return [], rows


def _row(values: tuple[object, ...]) -> EligibilityChange:
    seq, methodology_id, time, event_type, version, offset_eligible = values
    return EligibilityChange(int(seq), str(methodology_id), str(time), str(event_type),
                             None if version is None else int(version), bool(offset_eligible))


def stored_rows(conn: Connection) -> list[EligibilityChange]:
    t = eligibility_changes
    return [_row(tuple(row)) for row in conn.execute(select(*t.columns).order_by(t.c.seq))]


def history(conn: Connection, methodology_id: str) -> list[EligibilityChange]:
    """One methodology's changes in log order (at most MAX_SHOWN, the first ones)."""
    t = eligibility_changes
    return [_row(tuple(row)) for row in conn.execute(
        select(*t.columns).where(t.c.methodology_id == methodology_id).order_by(t.c.seq).limit(MAX_SHOWN))]


def state_problems(rows: list[EligibilityChange], state: State, limit: int) -> list[str]:
    """Where the rows differ from the State: every registered methodology version has its
    methodology.register row, and no row names a version or methodology the State lacks."""
    registered = {(row.methodology_id, row.version) for row in rows if row.type == "methodology.register"}
    versions = {(m.methodology_id, version) for m in state.methodologies.values() for version in m.versions}
    problems = [f"eligibility index: methodology {methodology_id} version {version} has no register row"
                for methodology_id, version in sorted(versions - registered)]
    problems += [f"eligibility index: a register row of methodology {methodology_id} version {version}, which "
                 f"the methodologies do not hold" for methodology_id, version in sorted(registered - versions)]
    return problems[:limit]
