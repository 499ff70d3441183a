"""The front's State of the committed log (api/committed_state.py), on both backends: loaded from
the projection rows it equals the writer's State, and it stays equal as it follows the log (by
the committed leaves, or by loading again when far behind)."""

from __future__ import annotations

import asyncio
import os

import pytest

from api import committed_state
from api.committed_state import CommittedState, CommittedStateProcess
from ledger.leaf import committed_leaf, parse_leaf
from ledger.registry import LogReader
from ledger.store import Store
from world import World


def _judged_state(state_of: CommittedState):
    return state_of.caught_up_then(lambda state: state)


@pytest.mark.parametrize("reload_behind_leaves", [100_000, 1])
def test_the_committed_state_is_the_writers_at_each_size(database_url, monkeypatch, reload_behind_leaves):
    monkeypatch.setattr(committed_state, "RELOAD_BEHIND_LEAVES", reload_behind_leaves)
    world = World(database_url).setup()
    reader = LogReader(Store.connect(database_url), lambda: world.registry.size)
    state_of = CommittedState(reader)
    try:
        assert _judged_state(state_of) == world.registry.state  # loaded from the rows
        world.history()  # issuances, transfers, retirements, surrenders, new rules...
        followed = _judged_state(state_of)
        assert followed.size == world.registry.size > 0
        assert followed == world.registry.state
    finally:
        reader.close()
        world.registry.close()


def _state_and_process(state):
    return state, os.getpid()


def test_dry_runs_are_judged_in_a_process_of_their_own_that_follows_the_log(database_url):
    """Off the front's interpreter lock: a check of 1,000 ids in a thread of the front held every
    honest request behind it (bench/bench_api.py's mixed run)."""
    world = World(database_url).setup()
    reader = LogReader(Store.connect(database_url), lambda: world.registry.size)
    state_of = CommittedStateProcess(reader)

    async def judged():
        return await state_of.judge(_state_and_process)
    try:
        state, pid = asyncio.run(judged())
        assert pid != os.getpid()
        assert state == world.registry.state
        world.history()
        state, again = asyncio.run(judged())
        assert again == pid, "one process holds the State between checks"
        assert state.size == world.registry.size and state == world.registry.state
    finally:
        state_of.close()
        reader.close()
        world.registry.close()


def test_a_committed_leaf_is_read_as_the_full_parse_reads_it(database_url):
    """The follower reads committed leaves without parse_leaf's checks (a ninth of the cost):
    what it reads must be what parse_leaf reads, for every leaf of a history of every type."""
    world = World(database_url).setup()
    world.history()
    reader = LogReader(Store.connect(database_url), lambda: world.registry.size)
    try:
        read = [(committed_leaf(data), parse_leaf(data, reader.log_format))
                for _, data in reader.leaf_bytes(0, world.registry.size)]
        assert len(read) == world.registry.size > 20
        assert len({fast.type for fast, _ in read}) > 8
        assert all(fast == full for fast, full in read)
    finally:
        reader.close()
        world.registry.close()
