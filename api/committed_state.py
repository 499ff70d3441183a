"""The front's own State of the committed log, for the dry runs that judge by the rules and write
nothing (the offset-eligibility check): they run here, off the writer and off the event loop.

It is loaded once from the projection rows, read in one snapshot of the database (one committed
moment: the writer commits each group's events and rows in one transaction), then brought up to
the writer's committed size before each use by applying the committed leaves with
ledger.rules.apply and each leaf's recorded serials: the function the writer applied them with,
so at every size this State is the writer's. A dry run states the size it judged at.

One thread of its own does the loading, the catching up and the dry runs, one at a time. A State
that has fallen far behind (no dry run for a long while) is loaded again rather than caught up.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Callable, Iterator, TypeVar

from sqlalchemy.engine import Connection

from ledger.leaf import parse_leaf
from ledger.projections import load_state
from ledger.registry import LogReader
from ledger.rules import apply
from ledger.state import MemoryActivityIndex, State, root_keys_from
from ledger.store import Store

T = TypeVar("T")

RELOAD_BEHIND_LEAVES = 100_000  # further behind than this, loading the rows again is the quicker way
_RULES_TYPES = ("registry.genesis", "registry.rules")


@contextmanager
def _snapshot(store: Store) -> Iterator[Connection]:
    """A read transaction that sees one committed moment of the database throughout."""
    with store.engine.connect() as conn:
        if store.dialect == "postgresql":
            conn.execution_options(isolation_level="REPEATABLE READ")
        else:
            conn.exec_driver_sql("BEGIN")  # pysqlite begins no transaction for reads by itself
        try:
            yield conn
        finally:
            conn.rollback()


class CommittedState:
    """A State following the committed log of `reader` (sized by the writer's committed size)."""

    def __init__(self, reader: LogReader):
        self._reader = reader
        self._state: State | None = None
        # Activity records are not kept: no dry run reads them, and the writer's index is the database.
        self._activities = MemoryActivityIndex()
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="puhui-committed-state")

    async def judge(self, function: Callable[[State], T]) -> T:
        """function(State) on this thread, the State caught up with what is committed now."""
        return await asyncio.wrap_future(self._thread.submit(self._caught_up_then, function))

    def close(self) -> None:
        self._thread.shutdown(wait=True, cancel_futures=True)

    def _caught_up_then(self, function: Callable[[State], T]) -> T:
        committed = self._reader.size
        state = self._state
        if state is None or committed - state.size > RELOAD_BEHIND_LEAVES:
            state = self._state = self._load()
        if state.size < committed:
            for _, data in self._reader.leaf_bytes(state.size, committed):
                leaf = parse_leaf(data, self._reader.log_format)
                apply(state, leaf.seq, leaf.time, leaf.type, leaf.body, leaf.auth["key"], leaf.serials,
                      activities=self._activities)
        return function(state)

    def _load(self) -> State:
        store = self._reader.store
        with _snapshot(store) as conn:
            state = load_state(store, conn, root_keys_from(self._reader.meta["root_keys"]), self._reader.meta)
            # The rules in force are in the log, not in a row: the latest genesis or rules event's.
            rules_seq = store.last_seq_of_types(conn, _RULES_TYPES)
            if rules_seq is not None:
                state.rules = parse_leaf(store.leaf(conn, rules_seq), self._reader.log_format).body["rules"]
        return state
