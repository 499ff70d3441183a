"""A failure at any storage write leaves the log as it was and the registry usable (Sunlight style)."""

from __future__ import annotations

import copy

import pytest

from ledger import merkle
from ledger.store import Store
from world import World

WRITES = ("insert_events", "insert_nodes", "insert_activities", "upsert", "add_checkpoint")


class InjectedFailure(Exception):
    pass


@pytest.fixture
def world(tmp_path):
    w = World(f"sqlite:///{tmp_path / 'r.sqlite3'}").setup()
    yield w
    w.registry.close()


@pytest.mark.parametrize("write", WRITES)
def test_a_failed_write_commits_nothing_and_the_next_append_succeeds(world, write, monkeypatch):
    registry = world.registry
    registry.checkpoint()
    before_size, before_root, before_state = registry.size, registry.root(), copy.deepcopy(registry.state)
    real = getattr(Store, write)

    def failing(self, *args, **kwargs):
        real(self, *args, **kwargs)  # the write happens, then the transaction must roll it back
        raise InjectedFailure(write)

    monkeypatch.setattr(Store, write, failing)
    records = world.records(5)
    with pytest.raises(InjectedFailure):
        if write == "add_checkpoint":
            monkeypatch.setattr(Store, write, real)
            world.batch("b-1", records)
            monkeypatch.setattr(Store, write, failing)
            registry.checkpoint()
        else:
            world.batch("b-1", records)
    monkeypatch.setattr(Store, write, real)
    if write == "add_checkpoint":
        assert registry.latest_checkpoint().splitlines()[1] == str(before_size)
        assert registry.size == before_size + 1
    else:
        assert registry.size == before_size and registry.root() == before_root
        assert registry.state == before_state
        world.batch("b-1", records)  # the same batch goes through once storage works again
    reopened = world.reopen()
    hashes = [merkle.leaf_hash(d) for _, d in reopened.leaf_bytes()]
    assert reopened.root() == merkle.root_of_leaf_hashes(hashes)
    assert reopened.state.batches.keys() >= {"b-1"}
    reopened.checkpoint()
