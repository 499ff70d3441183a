"""The hashes of each activity batch's blocks: what lets an activity's inclusion proof read one
block of its batch, not the whole batch (issue 13, the citizen's page).

A batch's records are the leaves of its own RFC 9162 tree (spec section 7). Its block k is the
leaves [256k, 256k + 256) (the last block may hold fewer), and the block's hash is MTH of them: a
node of the batch's tree when the block is complete. Above one block every split of the RFC 9162
recursion falls on a block boundary (k, the largest power of two below n > 256, is a multiple of
256), so the batch's tree above its blocks is the tree of the block hashes taken as leaves: the
batch root is MTH of the block hashes, and each hash of an inclusion path is MTH either of a range
inside the leaf's own block or of a run of whole blocks. A proof thus reads the batch's block
hashes (one indexed query, a row per 256 records) and the leaf's block (at most 256 records).

The writer computes the block hashes while it checks a batch's root (ledger.events.activities)
and inserts them in the transaction that inserts the batch's activity rows; ledger.page_indexes
counts them in the projection digest, checks their number at start and fills them once for a
database from before them; `puhui check` compares them with a replay of the records.
"""

from __future__ import annotations

import itertools
import json
import logging
from typing import Iterator, NamedTuple, Sequence

from sqlalchemy import inspect, select
from sqlalchemy.engine import Connection

from ledger import merkle
from ledger.errors import StorageError
from ledger.state import State
from ledger.store import Store, activities, batch_blocks, batches_projection

BLOCK_LEVEL = 8
BLOCK_LEAVES = 1 << BLOCK_LEVEL  # records a block; its hash is a node of level BLOCK_LEVEL
TABLE = batch_blocks.name
_CHUNK_ROWS = 5_000  # rows a statement inserts, or a fill reads at a time

log = logging.getLogger(__name__)


class BatchBlock(NamedTuple):
    """A batch_blocks row: MTH of the batch's leaves [block_index * 256, block_index * 256 + 256)."""
    batch_id: str
    block_index: int
    hash: bytes

    def digest_values(self) -> tuple[str, int, str]:
        """Its values as the projection digest hashes them (JSON: the hash in hex)."""
        return self.batch_id, self.block_index, self.hash.hex()


def block_count(record_count: int) -> int:
    """The blocks of a batch of this many records: ceil(record_count / 256)."""
    return -(-record_count // BLOCK_LEAVES)


def block_hashes(leaf_hashes: Sequence[bytes]) -> list[bytes]:
    """MTH of each block of these leaf hashes, the last block perhaps partial."""
    hashes = [merkle.root_of_leaf_hashes(leaf_hashes[start:start + BLOCK_LEAVES])
              for start in range(0, len(leaf_hashes), BLOCK_LEAVES)]
    assert len(hashes) == block_count(len(leaf_hashes))
    return hashes


def batch_root(hashes: Sequence[bytes]) -> bytes:
    """MTH of the whole batch, from its block hashes (the tree above the blocks is theirs)."""
    return merkle.root_of_leaf_hashes(hashes)


def inclusion_proof(position: int, size: int, hashes: Sequence[bytes], block_leaf_hashes: Sequence[bytes]) -> list[bytes]:
    """PATH(position, D[0:size]) of RFC 9162 section 2.1.3.1 from the batch's block hashes and
    the leaf hashes of position's block: the very hashes merkle.inclusion_proof gives over all
    the leaves."""
    first = position - position % BLOCK_LEAVES  # the leaf's block starts here
    assert len(hashes) == block_count(size) and len(block_leaf_hashes) == min(BLOCK_LEAVES, size - first)
    proof = []
    for start, end in merkle.inclusion_ranges(position, size):
        if first <= start and end <= first + BLOCK_LEAVES:
            proof.append(merkle.root_of_leaf_hashes(block_leaf_hashes[start - first:end - first]))
        else:  # whole blocks: the recursion splits a range of more than one block on block boundaries
            assert start % BLOCK_LEAVES == 0 and (end % BLOCK_LEAVES == 0 or end == size), (start, end, size)
            proof.append(batch_root(hashes[start // BLOCK_LEAVES:block_count(end)]))
    return proof


def _stored_hashes(conn: Connection, batch_id: str) -> list[bytes]:
    t = batch_blocks
    return [bytes(h) for h in conn.execute(select(t.c.hash).where(t.c.batch_id == batch_id)
                                           .order_by(t.c.block_index)).scalars()]


class InclusionProof(NamedTuple):
    """An activity record's inclusion proof in its batch's root."""
    position: int
    size: int
    hashes: list[bytes]


def read_inclusion_proof(conn: Connection, batch_id: str, position: int, size: int, record: bytes,
                         root: bytes) -> InclusionProof:
    """The inclusion proof of the record at `position` of a batch of `size` records whose root is
    `root`: read from the batch's block hashes and the record's block, and checked against the
    root before anyone is given it."""
    [proof] = read_inclusion_proofs(conn, batch_id, size, root, [PositionedRecord(position, record)])
    return proof


class PositionedRecord(NamedTuple):
    """A record of a batch and its leaf index there."""
    position: int
    record: bytes


def read_inclusion_proofs(conn: Connection, batch_id: str, size: int, root: bytes,
                          records: Sequence[PositionedRecord]) -> list[InclusionProof]:
    """read_inclusion_proof of several records of one batch, in their order: its block hashes read
    once, and each block that holds one of them once (a person's records of a day share blocks)."""
    stored = _stored_hashes(conn, batch_id)
    if len(stored) != block_count(size):
        raise StorageError(f"batch {batch_id} has {len(stored)} stored block hashes, its {size} records make "
                           f"{block_count(size)}: the registry's writer fills them when it starts; `puhui check DIR` "
                           f"compares them with the records")
    block_leaves: dict[int, list[bytes]] = {}
    proofs = []
    for position, record in records:
        first = position - position % BLOCK_LEAVES
        if first not in block_leaves:
            block_leaves[first] = [merkle.leaf_hash(r) for r in conn.execute(select(activities.c.record).where(
                activities.c.batch_id == batch_id, activities.c.position >= first,
                activities.c.position < first + BLOCK_LEAVES).order_by(activities.c.position)).scalars()]
        proof = inclusion_proof(position, size, stored, block_leaves[first])
        if not merkle.verify_inclusion(merkle.leaf_hash(record), position, size, proof, root):
            raise StorageError(f"the stored block hashes of batch {batch_id} do not lead to its root: `puhui check DIR` "
                               f"compares them with the records")
        proofs.append(InclusionProof(position, size, proof))
    assert len(proofs) == len(records)
    return proofs


class BlockChanges:
    """The block hashes of a group's activity batches, inserted at its commit."""

    def __init__(self) -> None:
        self._rows: list[BatchBlock] = []

    def add(self, batch_id: str, record_count: int, hashes: Sequence[bytes]) -> None:
        if len(hashes) != block_count(record_count):
            raise AssertionError(f"batch {batch_id}: {len(hashes)} block hashes for {record_count} records")
        self._rows += [BatchBlock(batch_id, index, h) for index, h in enumerate(hashes)]

    def write(self, conn: Connection) -> tuple[list[BatchBlock], list[BatchBlock]]:
        """Insert the rows; (old rows, new rows) for the digest: none is ever rewritten."""
        rows, self._rows = self._rows, []
        for start in range(0, len(rows), _CHUNK_ROWS):
            conn.execute(batch_blocks.insert(), [row._asdict() for row in rows[start:start + _CHUNK_ROWS]])
        return [], rows


def stored_rows(conn: Connection) -> Iterator[BatchBlock]:
    t = batch_blocks
    for row in conn.execute(select(t.c.batch_id, t.c.block_index, t.c.hash)
                            .order_by(t.c.batch_id, t.c.block_index)).yield_per(10_000):
        yield BatchBlock(row.batch_id, row.block_index, bytes(row.hash))


def state_problems(conn: Connection, state: State, limit: int) -> list[str]:
    """Where a batch's stored blocks differ from what its batch row commits to: their number from
    its count's, or their fold from its root. A hash forged with the projection digest recomputed
    is caught here too, since no other hashes fold to the root the log signs (trial 13: it passed
    the start and made proofs fail); `puhui check` also compares each hash with the records."""
    problems: list[str] = []
    stored = itertools.groupby(stored_rows(conn), key=lambda row: row.batch_id)
    seen: set[str] = set()
    for batch_id, rows in stored:
        seen.add(batch_id)
        hashes = [row.hash for row in rows]
        batch = state.batches.get(batch_id)
        expected = 0 if batch is None else block_count(batch.count)
        if len(hashes) != expected:
            problems.append(f"batch blocks: batch {batch_id} has {len(hashes)} block hashes, its "
                            f"{'absence' if batch is None else 'count'} makes {expected}")
        elif batch is not None and batch_root(hashes).hex() != batch.root:
            problems.append(f"batch blocks: the {len(hashes)} block hashes of batch {batch_id} do not fold to its "
                            f"root {batch.root}")
        if len(problems) >= limit:
            return problems
    problems += [f"batch blocks: batch {batch_id} has 0 block hashes, its count makes {block_count(batch.count)}"
                 for batch_id, batch in sorted(state.batches.items()) if batch_id not in seen and batch.count]
    return problems[:limit]


def _block_hashes_of_records(conn: Connection) -> list[tuple[str, list[bytes]]]:
    """Each logged batch's id and block hashes, hashed from its records (the whole table, once)."""
    found: list[tuple[str, list[bytes]]] = []
    batch_id: str | None = None
    leaves: list[bytes] = []
    for row in conn.execute(select(activities.c.batch_id, activities.c.record)
                            .order_by(activities.c.batch_id, activities.c.position)).yield_per(_CHUNK_ROWS):
        if row.batch_id != batch_id:
            if batch_id is not None:
                found.append((batch_id, block_hashes(leaves)))
            batch_id, leaves = row.batch_id, []
        leaves.append(merkle.leaf_hash(row.record))
    if batch_id is not None:
        found.append((batch_id, block_hashes(leaves)))
    return found


def fill(conn: Connection) -> list[BatchBlock]:
    """Insert the block hashes of every logged batch, hashed from its records, for a database from
    before them: each batch's blocks must fold to the root its batch row commits to. The rows."""
    batches = {row.batch_id: json.loads(row.data) for row in conn.execute(
        select(batches_projection.c.batch_id, batches_projection.c.data))}
    log.info("filling the block hashes of the %d activity batches from their records (once)", len(batches))
    changes = BlockChanges()
    unfilled = set(batches)
    for batch_id, hashes in _block_hashes_of_records(conn):  # read whole, then written
        batch = batches.get(batch_id)
        if batch is None or batch_root(hashes).hex() != batch["root"]:
            raise StorageError(f"the records of batch {batch_id} do not hash to the root its batch row holds: "
                               f"`puhui check DIR` compares the rows with the log")
        changes.add(batch_id, batch["count"], hashes)
        unfilled.discard(batch_id)
    if unfilled:
        raise StorageError(f"batch {min(unfilled)} has no activity records: `puhui check DIR`")
    return changes.write(conn)[1]


class ReplayedBlocks:
    """`puhui check`'s comparison of each batch's stored block hashes with those its records hash
    to as the replay checks its root (ledger.replay)."""

    def __init__(self, store: Store, limit: int) -> None:
        self._store, self._limit = store, limit
        with store.engine.connect() as conn:
            self._filled = inspect(conn).has_table(TABLE)  # a database from before them: filled at its writer's start
        self.problems: list[str] = []

    def compare(self, batch_id: str, hashes: Sequence[bytes]) -> None:
        if not self._filled or len(self.problems) >= self._limit:
            return
        with self._store.engine.connect() as conn:
            stored = _stored_hashes(conn, batch_id)
        if len(stored) != len(hashes):
            self.problems.append(f"batch blocks: batch {batch_id} has {len(stored)} stored block hashes, its records "
                                 f"make {len(hashes)}")
        self.problems += [f"batch blocks: batch {batch_id} block {index}: stored hash {mine.hex()}, its records "
                          f"hash to {theirs.hex()}" for index, (mine, theirs) in enumerate(zip(stored, hashes))
                          if mine != theirs][:self._limit - len(self.problems)]
