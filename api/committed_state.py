"""The front's own State of the committed log, for the dry runs that judge by the rules and write
nothing (the offset-eligibility check): they run here, off the writer, and in a process of the
front's own (CommittedStateProcess, api/processes.py), so that a flood of checks of 1,000 ids
never holds the event loop's interpreter lock.

It is loaded once from the projection rows, read in one snapshot of the database (one committed
moment: the writer commits each group's events and rows in one transaction), then brought up to
the writer's committed size before each use by applying the committed leaves with
ledger.rules.apply and each leaf's recorded serials: the function the writer applied them with,
so at every size this State is the writer's. A dry run states the size it judged at.

That process does the loading, the catching up and the dry runs, one at a time. A State that has
fallen far behind (no dry run for a long while) is loaded again rather than caught up.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Callable, Iterator, TypeVar

from sqlalchemy.engine import Connection

from api.processes import SpawnedProcesses, database_url_of
from ledger.eligibility import offset_eligibility
from ledger.leaf import committed_leaf, parse_leaf
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
    """A State following the committed log of `reader` (sized by the writer's committed size), in
    the process that calls it."""

    def __init__(self, reader: LogReader):
        self._reader = reader
        self._state: State | None = None
        # Activity records are not kept: no dry run reads them, and the writer's index is the database.
        self._activities = MemoryActivityIndex()

    def caught_up_then(self, function: Callable[[State], T]) -> T:
        """function(State), the State caught up with what is committed now."""
        committed = self._reader.size
        state = self._state
        if state is None or committed - state.size > RELOAD_BEHIND_LEAVES:
            state = self._state = self._load()
        if state.size < committed:
            for _, data in self._reader.leaf_bytes(state.size, committed):
                leaf = committed_leaf(data)
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


class CommittedStateProcess:
    """The front's handle on a CommittedState held by a process of its own, started at the first
    dry run, replaced if it dies (then loaded again from the rows)."""

    def __init__(self, reader: LogReader):
        self._reader = reader
        self._database_url = database_url_of(reader)
        self._process = SpawnedProcesses(1, "holding the committed State")

    async def judge(self, function: Callable[[State], T]) -> T:
        """function(State) in that process (it must pickle: a module-level function, or a partial
        of one), the State caught up with what is committed now."""
        return await self._process.run(_judged_in_process, self._database_url, self._reader.size, function)

    def close(self) -> None:
        self._process.close()


def eligibility_as_of(query: dict[str, Any], state: State) -> dict[str, Any]:
    """The offset-eligibility check's answer: the size judged at goes with it."""
    return {**offset_eligibility(state, query), "as_of_size": state.size}


# In the committed State's process: the State of each database, and the committed size the front
# named with its latest call (the State is caught up to it, never further).
_followed: dict[str, CommittedState] = {}
_committed_sizes: dict[str, int] = {}


def _judged_in_process(database_url: str, committed_size: int, function: Callable[[State], T]) -> T:
    _committed_sizes[database_url] = committed_size
    follower = _followed.get(database_url)
    if follower is None:
        reader = LogReader(Store.connect(database_url), lambda: _committed_sizes[database_url])
        follower = _followed[database_url] = CommittedState(reader)
    return follower.caught_up_then(function)
