"""The public pages' indexes beside the projections: the register totals (ledger.register_totals),
the serial ranges (ledger.serial_index), the eligibility changes (ledger.eligibility_index) and the
activity batches' block hashes (ledger.batch_blocks).

Like the projections, each commit writes them in its transaction (PageIndexChanges) and moves the
projection digest by the rows it rewrites; a start adds their rows to the digest it sums and
checks them against the State. A database written before they existed lacks them: its writer
fills them from the log once, at its first start (fill_from_log), a one-time migration that walks
the log in chunks inside one transaction (the eligibility changes, added later, from the events of
their types alone; the block hashes, later still, from the activity records); it gets the
projections' seq indexes then too (update_indexes).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Iterable

from sqlalchemy import inspect, select, text
from sqlalchemy.engine import Connection

from ledger import batch_blocks, eligibility_index, register_totals, serial_index
from ledger.leaf import Leaf, parse_leaf, stored_log_format
from ledger.state import State
from ledger.store import PAGE_INDEXES, PROJECTIONS, Store, events

if TYPE_CHECKING:
    from ledger.projections import ProjectionDigest

FILL_CHUNK_EVENTS = 10_000  # events folded between two writes when filling from the log

log = logging.getLogger(__name__)


class PageIndexChanges:
    """What a group of events changes in the page indexes, written at its commit."""

    def __init__(self, *, eligibility: bool = True) -> None:
        """eligibility: False when filling from the log a database whose eligibility changes are filled."""
        self._totals = register_totals.TotalsChanges()
        self._serials = serial_index.SerialIndexChanges()
        self._eligibility = eligibility_index.EligibilityChanges() if eligibility else None
        self._blocks = batch_blocks.BlockChanges()

    def note(self, leaf: Leaf, block_hashes: list[bytes] | None = None) -> None:
        """block_hashes: an activity batch's (ledger.batch_blocks), as its root was checked."""
        self._totals.note(leaf)
        self._serials.note(leaf)
        if self._eligibility is not None:
            self._eligibility.note(leaf)
        if block_hashes is not None:
            self._blocks.add(leaf.body["batch_id"], leaf.body["count"], block_hashes)

    def write(self, conn: Connection, size: int, digest: "ProjectionDigest | None") -> None:
        """Write the group's changes for a log of `size` events; with a digest, move it by the rows."""
        written = [(register_totals.TABLE, self._totals.write(conn, size)), (serial_index.TABLE, self._serials.write(conn))]
        if self._eligibility is not None:
            written.append((eligibility_index.TABLE, self._eligibility.write(conn)))
        for table, (old, new) in written:
            if digest is not None:
                for row in old:
                    digest.remove(table, row)
                for row in new:
                    digest.add(table, row)
        _add_blocks(digest, self._blocks.write(conn)[1])


def tables_exist(conn: Connection) -> bool:
    """Whether every page index exists (a database from before one lacks it until its writer starts)."""
    existing = set(inspect(conn).get_table_names())
    return all(table.name in existing for table in PAGE_INDEXES)


def _totals_exist(conn: Connection) -> bool:
    return inspect(conn).has_table(register_totals.TABLE)


def is_filled(conn: Connection) -> bool:
    """Whether the totals and serial index exist and cover some log (a database from before them has neither)."""
    return _totals_exist(conn) and register_totals.totals_from_rows(register_totals.stored_rows(conn)) is not None


def eligibility_exists(conn: Connection) -> bool:
    """Whether the eligibility changes exist (filled: created and filled in one transaction)."""
    return inspect(conn).has_table(eligibility_index.TABLE)


def blocks_exist(conn: Connection) -> bool:
    """Whether the batches' block hashes exist (filled: created and filled in one transaction)."""
    return inspect(conn).has_table(batch_blocks.TABLE)


def _add_blocks(digest: "ProjectionDigest | None", rows: Iterable[batch_blocks.BatchBlock]) -> None:
    if digest is not None:
        for row in rows:
            digest.add(batch_blocks.TABLE, row.digest_values())


def add_to_digest(conn: Connection, digest: "ProjectionDigest") -> None:
    """Add every row of the indexes to a digest being summed at start (none before they exist)."""
    if _totals_exist(conn):
        for row in register_totals.stored_rows(conn):
            digest.add(register_totals.TABLE, row)
        for row in serial_index.stored_rows(conn):
            digest.add(serial_index.TABLE, row)
    if eligibility_exists(conn):
        for row in eligibility_index.stored_rows(conn):
            digest.add(eligibility_index.TABLE, row)
    if blocks_exist(conn):
        _add_blocks(digest, batch_blocks.stored_rows(conn))


def state_problems(conn: Connection, state: State, limit: int) -> list[str]:
    """Where the stored indexes differ from the State loaded from the projections (none to check
    before they are filled)."""
    problems = []
    if eligibility_exists(conn):
        problems += eligibility_index.state_problems(eligibility_index.stored_rows(conn), state, limit)
    if blocks_exist(conn):
        problems += batch_blocks.state_problems(conn, state, limit)
    totals = register_totals.totals_from_rows(register_totals.stored_rows(conn)) if _totals_exist(conn) else None
    if totals is not None:
        problems += register_totals.state_problems(totals, state)
        problems += serial_index.state_problems(serial_index.stored_rows(conn), state, limit)
    return problems[:limit]


# Indexes of the projections' filter columns alone, as databases made before their (column, seq)
# indexes have them: those serve every query these did.
SUPERSEDED_INDEXES = ("ix_batches_platform", "ix_issuances_account", "ix_retirements_account",
                      "ix_retirements_purpose", "ix_surrenders_entity", "ix_claims_claimant")


def update_indexes(store: Store) -> list[str]:
    """Create the projections' declared indexes a database made before them lacks (seq, and each
    register filter with seq), and drop those they supersede; the names of those changed."""
    changed = []
    with store.writing() as conn:
        inspector = inspect(conn)
        present = set(inspector.get_table_names()) & PROJECTIONS.keys()  # a table added later is made with its own
        for table_name in sorted(present):
            existing = {index["name"] for index in inspector.get_indexes(table_name)}
            for index in PROJECTIONS[table_name].indexes:
                if index.name not in existing:
                    log.info("creating index %s (once)", index.name)
                    index.create(conn)
                    changed.append(str(index.name))
            for name in sorted(existing.intersection(SUPERSEDED_INDEXES)):
                log.info("dropping index %s (once): superseded", name)
                conn.execute(text(f"DROP INDEX {name}"))
                changed.append(name)
    return changed


def totals_fold_problems(conn: Connection, folded: register_totals.TotalsChanges) -> list[str]:
    """Where the stored register totals differ from those folded from the whole log (the full
    check: the start check cannot see the months, which need the events' times)."""
    if not is_filled(conn):
        return []
    stored = {register_totals.TotalKey(row.measure, row.key): row.value for row in register_totals.stored_rows(conn)}
    stored.pop(register_totals.SIZE)
    return [f"the register totals {key.measure} {key.key!r}: stored {stored.get(key, 0)} g, the log's events add up "
            f"to {folded.deltas.get(key, 0)} g" for key in sorted(stored.keys() | folded.deltas.keys())
            if stored.get(key, 0) != folded.deltas.get(key, 0)]


def fill_from_log(store: Store, size: int, digest: "ProjectionDigest") -> bool:
    """Create and fill the indexes from the first `size` events of the log if they are not filled
    (True when it did), moving the digest by their rows and storing it with them. The caller is
    the writer, holding the writer lock: the log does not move meanwhile."""
    with store.writing() as conn:
        totals_filled, eligibility_filled, blocks_filled = is_filled(conn), eligibility_exists(conn), blocks_exist(conn)
        if totals_filled and eligibility_filled and blocks_filled:
            return False
        for table in PAGE_INDEXES:
            table.create(conn, checkfirst=True)
        if not blocks_filled:
            _add_blocks(digest, batch_blocks.fill(conn))
        log_format = stored_log_format(store.leaf(conn, 0)) if size else 1
        if not eligibility_filled:
            log.info("filling the eligibility changes from the log's methodology events (once)")
            changes = eligibility_index.EligibilityChanges()
            for data in conn.execute(select(events.c.leaf).where(events.c.seq < size, events.c.type.in_(
                    eligibility_index.TYPES)).order_by(events.c.seq)).scalars():
                changes.note(parse_leaf(data, log_format))
            for row in changes.write(conn)[1]:
                digest.add(eligibility_index.TABLE, row)
        if not totals_filled:
            log.info("filling the register totals and the serial index from the %d events of the log (once)", size)
            page_changes = PageIndexChanges(eligibility=False)
            for seq, data in store.leaves(conn, 0, size):
                page_changes.note(parse_leaf(data, log_format))
                if (seq + 1) % FILL_CHUNK_EVENTS == 0:
                    page_changes.write(conn, seq + 1, digest)
            page_changes.write(conn, size, digest)
        store.write_projection_digest(conn, size, digest.hex())
    return True
