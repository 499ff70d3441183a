"""The front's State of the committed log (api/committed_state.py), on both backends: loaded from
the projection rows it equals the writer's State, and it stays equal as it follows the log (by
the committed leaves, or by loading again when far behind)."""

from __future__ import annotations

import asyncio

import pytest

from api import committed_state
from api.committed_state import CommittedState
from ledger.registry import LogReader
from ledger.store import Store
from world import World


def _judged_state(state_of: CommittedState):
    return asyncio.run(state_of.judge(lambda state: state))


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
        state_of.close()
        reader.close()
        world.registry.close()
