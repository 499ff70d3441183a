"""The writer's invariants, asserted before each group commits (ledger/registry.py): a broken one
commits nothing, and the State is reloaded from the database."""

from __future__ import annotations

from typing import Callable

import pytest

from ledger import merkle
from ledger.note import parse_checkpoint
from ledger.registry import Registry
from world import World


@pytest.fixture
def world(tmp_path):
    w = World(f"sqlite:///{tmp_path / 'registry.sqlite3'}").setup().history()
    yield w
    w.registry.close()


def retirement(world: World, n: int) -> dict:
    return world.client.signed(world.mall, "retirement", {"retirement_id": f"ret-inv{n}", "account": "mall-co",
                                                          "amount_g": 1, "purpose": "voluntary", "beneficiary": "x"})


def stored_size(registry: Registry) -> int:
    with registry.store.engine.connect() as conn:
        return registry.store.size(conn)


def commits_nothing(world: World, breaks: Callable[[Registry], None], match: str) -> None:
    registry = world.registry
    size = registry.size
    event = retirement(world, 0)
    breaks(registry)
    with pytest.raises(AssertionError, match=match):
        registry.append(event)
    assert registry.size == size and stored_size(registry) == size
    # The State and the frontier were reloaded from the database: the same event now commits, and
    # the checkpoint signed over the frontier's root is the root of the leaves.
    assert registry.append(event).seq == size
    leaf_hashes = [merkle.leaf_hash(data) for _, data in registry.leaf_bytes()]
    assert parse_checkpoint(registry.checkpoint()).root == merkle.root_of_leaf_hashes(leaf_hashes)


def test_running_gram_totals_keep_step_with_the_accounts(world):
    state = world.registry.state
    totals = state.totals_g()
    assert (state.active_g, state.retired_g, state.cancelled_g) == (
        totals["active_g"], totals["retired_g"], totals["cancelled_g"])
    assert state.retired_g == 11_650 and state.cancelled_g == 100 and state.grams_conserved()


def test_a_frontier_out_of_step_with_the_log_commits_nothing(world):
    commits_nothing(world, lambda registry: registry._frontier.append(bytes(32)), "frontier")


def test_seqs_that_do_not_extend_the_committed_log_commit_nothing(world):
    def skip_a_seq(registry: Registry) -> None:
        registry.state.size += 1  # memory claims a leaf the database does not hold
        registry._frontier.append(bytes(32))
    commits_nothing(world, skip_a_seq, "do not extend the committed log")


def test_grams_that_appear_from_nowhere_commit_nothing(world):
    def mint(registry: Registry) -> None:
        registry.state.retired_g += 1
    commits_nothing(world, mint, "grams not conserved")
