"""A record the registry cannot store as JSON (a number beyond ±(2^53-1), a string holding U+0000)
is BATCH, as spec sections 9 and 10.6 say, and in its turn: the event's own rules and the other
records' DUPLICATE_ID come first (spec section 7.3), in both formats."""

from __future__ import annotations

import json

import pytest

from ledger.errors import Rejected
from world import World


def world_of(database_url: str, log_format: int) -> World:
    world = World(database_url, log_format=log_format)
    return world.setup_v2() if log_format == 2 else world.setup()


def refused_code(world: World, by, records) -> str:
    size = world.registry.size
    with pytest.raises(Rejected) as refusal:
        world.client.batch(by, "b-unreadable", "wuhan-platform", "HB-GT-METRO", 1, "2026-01-01", "2026-01-31", records)
    assert world.registry.size == size
    return refusal.value.code


@pytest.mark.parametrize("log_format", [1, 2])
@pytest.mark.parametrize("unreadable", [2**60, -(2**53), "a\u0000b"])
def test_an_unstorable_value_in_a_record_is_batch_after_the_events_own_rules(database_url, log_format, unreadable):
    world = world_of(database_url, log_format)
    good = world.records(3)
    # In the inputs: the body's total_g stays a valid number, so only the record is unreadable.
    bad = [*good[:2], {**good[2], "inputs": {"distance_m": unreadable}}]
    assert refused_code(world, world.wuhan, bad) == "BATCH"
    # Signed by a platform key that does not control wuhan-platform: UNAUTHORIZED, whatever the records.
    assert refused_code(world, world.grid, bad) == "UNAUTHORIZED"
    world.batch("b-first", world.records(1))
    [logged] = [json.loads(line) for line in world.registry.batch_records("b-first")]
    repeated = [*bad, {**good[0], "activity_id": logged["activity_id"]}]
    assert refused_code(world, world.wuhan, repeated) == "DUPLICATE_ID"
    world.registry.close()
