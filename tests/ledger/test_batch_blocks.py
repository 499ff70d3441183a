"""The activity batches' block hashes (ledger.batch_blocks): a proof from them and one block is
byte for byte the proof from every leaf, for every batch size and position; the writer stores them
with the batch, on SQLite and PostgreSQL; a database from before them gets them at its writer's
first start; an edited or missing block is caught by the start check and by `puhui check`."""

from __future__ import annotations

import json
import logging

import pytest
from hypothesis import given, settings, strategies as st
from sqlalchemy import delete, text, update

from ledger import batch_blocks, merkle
from ledger.batch_blocks import BLOCK_LEAVES, BLOCK_LEVEL
from ledger.errors import StorageError
from ledger.projections import ProjectionDigest, load_state
from ledger.queries import Queries
from ledger.registry import Registry
from ledger.store import Store, batch_blocks as blocks_table
from world import World

MAX_LEAVES = 5_000
LEAVES = [merkle.leaf_hash(i.to_bytes(4, "big")) for i in range(MAX_LEAVES)]
EVERY_LEAF = merkle.MemoryNodes(LEAVES)  # node (level, index) of the tree over LEAVES[:n], for every n


def proof_from_blocks(position: int, size: int, hashes: list[bytes]) -> list[bytes]:
    """From the block hashes of LEAVES[:size] and the leaves of position's block."""
    first = position - position % BLOCK_LEAVES
    return batch_blocks.inclusion_proof(position, size, hashes, LEAVES[first:min(first + BLOCK_LEAVES, size)])


def positions_checked(size: int) -> range | list[int]:
    """Every position of the sizes up to one block past the first and at each block boundary
    (511, 512, 513, ...); elsewhere the ends of every block, its middle and the last leaves."""
    if size <= BLOCK_LEAVES + 4 or size % BLOCK_LEAVES in (0, 1, BLOCK_LEAVES - 1) or size == 1_100:
        return range(size)
    ends = {start + offset for start in range(0, size, BLOCK_LEAVES) for offset in (0, 1, 127, 128, 254, 255)}
    return sorted({p for p in ends | {size - 3, size - 2, size - 1} if 0 <= p < size})


def test_the_proof_from_blocks_is_the_proof_from_every_leaf_for_every_size_to_1100():
    for size in range(1, 1_101):
        hashes = batch_blocks.block_hashes(LEAVES[:size])
        assert len(hashes) == -(-size // BLOCK_LEAVES)
        assert batch_blocks.batch_root(hashes) == merkle.root(EVERY_LEAF, size)
        for index, block_hash in enumerate(hashes[:size // BLOCK_LEAVES]):  # a complete block is a node
            assert block_hash == EVERY_LEAF.perfect(BLOCK_LEVEL, index)
        for position in positions_checked(size):
            assert proof_from_blocks(position, size, hashes) == merkle.inclusion_proof(EVERY_LEAF, position, size), (size, position)


@settings(max_examples=300, deadline=None)
@given(st.integers(1, MAX_LEAVES).flatmap(lambda size: st.tuples(st.just(size), st.integers(0, size - 1))))
def test_the_proof_from_blocks_is_the_proof_from_every_leaf_at_random(case):
    size, position = case
    hashes = batch_blocks.block_hashes(LEAVES[:size])
    assert proof_from_blocks(position, size, hashes) == merkle.inclusion_proof(EVERY_LEAF, position, size)


def proof_from_every_record(registry: Registry, activity_id: str) -> dict:
    """The proof as the registry made it before the blocks: every record of the batch hashed."""
    found = Queries(registry.store).activity_record(activity_id)
    records = list(registry.batch_records(found.batch_id))
    nodes = merkle.MemoryNodes(merkle.leaf_hash(record) for record in records)
    return merkle.inclusion_json(found.position, len(records), merkle.inclusion_proof(nodes, found.position, len(records)))


BATCH_SIZES = {"wh-600": 600, "wh-512": 512, "wh-3": 3}


def world_with_batches(database_url: str) -> World:
    world = World(database_url).setup()
    for batch_id, size in BATCH_SIZES.items():
        world.batch(batch_id, world.records(size, act_prefix=batch_id))
    return world


def activity_ids(registry: Registry, batch_id: str) -> list[str]:
    return [json.loads(record)["activity_id"] for record in registry.batch_records(batch_id)]


def checked_proofs(registry: Registry, batch_id: str, positions: list[int]) -> None:
    queries, ids = Queries(registry.store), activity_ids(registry, batch_id)
    root = bytes.fromhex(registry.state.batches[batch_id].root)
    for position in positions:
        proof = queries.activity_proof(ids[position])
        assert proof["inclusion"] == proof_from_every_record(registry, ids[position])
        assert merkle.verify_inclusion(merkle.leaf_hash(proof["record"].encode()), position, len(ids),
                                       [bytes.fromhex(h) for h in proof["inclusion"]["hashes"]], root)


def stored_blocks(url: str) -> list[batch_blocks.BatchBlock]:
    store = Store.connect(url)
    try:
        with store.engine.connect() as conn:
            return list(batch_blocks.stored_rows(conn))
    finally:
        store.close()


def test_the_writer_stores_each_batch_s_blocks_and_proofs_read_them(database_url):
    world = world_with_batches(database_url)
    try:
        rows = stored_blocks(world.url)
        assert [(row.batch_id, row.block_index) for row in rows] == [
            ("wh-3", 0), ("wh-512", 0), ("wh-512", 1), ("wh-600", 0), ("wh-600", 1), ("wh-600", 2)]
        for batch_id in BATCH_SIZES:
            leaves = [merkle.leaf_hash(record) for record in world.registry.batch_records(batch_id)]
            assert [row.hash for row in rows if row.batch_id == batch_id] == batch_blocks.block_hashes(leaves)
        checked_proofs(world.registry, "wh-600", sorted({*range(0, 600, 7), 1, 255, 256, 257, 511, 512, 513, 598, 599}))
        checked_proofs(world.registry, "wh-512", [0, 255, 256, 511])
        checked_proofs(world.registry, "wh-3", [0, 1, 2])
        world.reopen().become_writer()
        assert world.registry.integrity.ok, world.registry.integrity.problems
        assert world.registry.check_integrity(full=True).ok
    finally:
        world.registry.close()


def test_several_records_of_a_batch_are_proved_from_their_blocks_alone(database_url, monkeypatch):
    """A person's account proves each of their records (service.accounts): from the block hashes
    and each record's block, read once for records sharing it, never from every record."""
    from service.accounts import logged_record_inclusion

    world = world_with_batches(database_url)
    try:
        ids = activity_ids(world.registry, "wh-600")
        positions = [599, 3, 256, 4, 511, 0, 512]
        expected = [proof_from_every_record(world.registry, ids[p]) for p in positions]
        queries = Queries(world.registry.store)
        logged = [queries.activity_record(ids[p]) for p in positions]
        monkeypatch.setattr(Store, "batch_records", lambda *a, **k: pytest.fail("a proof read every record of its batch"))
        body = {"batch_id": "wh-600", "count": 600, "root": world.registry.state.batches["wh-600"].root}
        proofs = queries.batch_inclusion_proofs(body, [batch_blocks.PositionedRecord(r.position, r.record) for r in logged])
        assert [merkle.inclusion_json(p.position, p.size, p.hashes) for p in proofs] == expected
        assert [logged_record_inclusion(queries, ids[p])["inclusion"] for p in positions] == expected
        forged = batch_blocks.PositionedRecord(3, logged[0].record)  # record 599's bytes claimed at position 3
        with pytest.raises(StorageError, match="do not lead to its root"):
            queries.batch_inclusion_proofs(body, [forged])
    finally:
        world.registry.close()


def edited(world: World, statement, *, recompute_digest: bool) -> Registry:
    """The world's database after an edit behind the registry's back, reopened."""
    world.registry.close()
    store = Store.connect(world.url)
    with store.engine.begin() as conn:
        conn.execute(statement)
        if recompute_digest:  # as a forger who knows the digest would
            digest = ProjectionDigest()
            load_state(store, conn, world.registry.state.root_keys, store.read_meta(), digest=digest)
            store.write_projection_digest(conn, world.registry.size, digest.hex())
    store.close()
    return world.reopen()


def test_a_database_from_before_the_blocks_gets_them_at_its_writer_s_first_start(database_url, caplog):
    world = world_with_batches(database_url)
    before = stored_blocks(world.url)
    registry = edited(world, text("DROP TABLE batch_blocks"), recompute_digest=True)  # as an earlier Puhui left it
    with pytest.raises(StorageError, match="not filled yet"):
        Queries(registry.store).activity_proof(activity_ids(registry, "wh-600")[0])
    with caplog.at_level(logging.INFO, logger="ledger.batch_blocks"):
        registry.become_writer()
    assert "filling the block hashes of the 3 activity batches from their records (once)" in caplog.text
    assert registry.integrity.ok, registry.integrity.problems
    assert stored_blocks(world.url) == before
    checked_proofs(registry, "wh-600", [0, 256, 599])
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="ledger.batch_blocks"):
        world.reopen().become_writer()  # filled once: the next start only checks
    assert "filling" not in caplog.text and world.registry.integrity.ok
    assert world.registry.check_integrity(full=True).ok
    world.registry.close()


FORGED = bytes(32)
EDIT_ONE_HASH = (update(blocks_table).where(blocks_table.c.batch_id == "wh-600", blocks_table.c.block_index == 1)
                 .values(hash=FORGED))


def test_an_edited_block_hash_stops_the_writer_and_every_proof_it_would_falsify(database_url):
    world = world_with_batches(database_url)
    registry = edited(world, EDIT_ONE_HASH, recompute_digest=False)
    size = registry.size
    with pytest.raises(StorageError, match="projections do not match the log"):
        world.client.transfer(world.wuhan, "after-edit", "wuhan-platform", "alice", 1)
    assert registry.size == size and any("digest" in p for p in registry.integrity.problems)
    queries, ids = Queries(registry.store), activity_ids(registry, "wh-600")
    with pytest.raises(StorageError, match="stored block hashes of batch wh-600 do not lead to its root"):
        queries.activity_proof(ids[0])  # block 0's proof holds block 1's hash
    checked_proofs(registry, "wh-600", [300])  # block 1's own proof never reads its hash
    registry.close()


def test_an_edited_block_hash_with_a_recomputed_digest_is_caught_at_start_and_by_the_full_check(database_url):
    world = world_with_batches(database_url)
    registry = edited(world, EDIT_ONE_HASH, recompute_digest=True)
    root = registry.state.batches["wh-600"].root
    with pytest.raises(StorageError, match="projections do not match the log"):
        registry.become_writer()  # the start folds each batch's blocks to its root: no forged hash does
    not_folding = f"batch blocks: the 3 block hashes of batch wh-600 do not fold to its root {root}"
    assert registry.integrity.problems == (not_folding,)
    full = registry.check_integrity(full=True)  # and which block: compared with the records
    leaves = [merkle.leaf_hash(record) for record in registry.batch_records("wh-600")]
    assert full.problems == (not_folding, f"batch blocks: batch wh-600 block 1: stored hash {FORGED.hex()}, its "
                                          f"records hash to {batch_blocks.block_hashes(leaves)[1].hex()}")
    registry.close()


def test_a_missing_block_is_caught_by_the_start_check(database_url):
    world = world_with_batches(database_url)
    registry = edited(world, delete(blocks_table).where(blocks_table.c.batch_id == "wh-512",
                                                        blocks_table.c.block_index == 0), recompute_digest=True)
    with pytest.raises(StorageError, match="projections do not match the log"):
        registry.become_writer()
    assert registry.integrity.problems == ("batch blocks: batch wh-512 has 1 block hashes, its count makes 2",)
    with pytest.raises(StorageError, match="batch wh-512 has 1 stored block hashes, its 512 records make 2"):
        Queries(registry.store).activity_proof(activity_ids(registry, "wh-512")[0])
    registry.close()
