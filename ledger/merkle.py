"""RFC 9162 Merkle tree over stored perfect-subtree hashes (puhui-log-v1 section 4).

Node (level, index) is the root of the perfect subtree over leaves
[index << level, (index + 1) << level); level 0 holds the leaf hashes. Those nodes never change
once complete, so the store keeps exactly them. Every hash a root or proof needs is MTH of a
range the RFC 9162 recursion produces, and such a range is a run of at most log2(n) + 1 perfect
subtrees: roots and proofs read O(log n) nodes.

Verification follows RFC 9162 sections 2.1.3.2 and 2.1.4.2 word for word and never raises.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from typing import NamedTuple, Protocol

HASH_BYTES = 32
EMPTY_ROOT: bytes = hashlib.sha256(b"").digest()

_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"


def leaf_hash(data: bytes) -> bytes:
    """SHA-256(0x00 || data): the hash of one leaf."""
    return hashlib.sha256(_LEAF_PREFIX + bytes(data)).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 || left || right): the hash of an interior node."""
    return hashlib.sha256(_NODE_PREFIX + left + right).digest()


def _largest_power_of_two_below(n: int) -> int:
    """k of RFC 9162: the largest power of two strictly smaller than n (n >= 2)."""
    assert n >= 2
    return 1 << ((n - 1).bit_length() - 1)


def _is_hash(value: object) -> bool:
    return isinstance(value, bytes) and len(value) == HASH_BYTES


def _is_size(value: object) -> bool:
    # bool is an int subclass; True as a tree size is a caller bug, not a size of one.
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


class NodeId(NamedTuple):
    """Node (level, index): the root of the perfect subtree over leaves [index << level, (index + 1) << level)."""
    level: int
    index: int


class NodeReader(Protocol):
    def perfect(self, level: int, index: int) -> bytes:
        """The hash of node (level, index); raises KeyError if it is not stored."""
        ...


class BatchNodeReader(NodeReader, Protocol):
    """A reader that answers many nodes in one read (one query of a database): proofs and roots
    first work out every node they need, then ask for all of them at once."""

    def perfect_many(self, nodes: Sequence[NodeId]) -> dict[NodeId, bytes]:
        """The hash of each node; raises KeyError if one is not stored."""
        ...


class Frontier:
    """The right edge of a tree (its compact range): the roots of its perfect subtrees, largest
    (leftmost) first.

    There is one per set bit of size, so appending needs no reads: a new leaf merges with the
    trailing subtrees of equal size exactly as a binary counter carries. append() gives the
    nodes each leaf completes (a store keeps them); extend() takes many leaves at once, faster,
    where the inner nodes are not kept (a batch being ingested, a root over leaves in memory).
    """

    __slots__ = ("size", "hashes")

    def __init__(self, size: int = 0, hashes: Sequence[bytes] = ()) -> None:
        if not _is_size(size):
            raise ValueError(f"tree size must be a non-negative int, got {size!r}")
        hashes = list(hashes)
        if len(hashes) != size.bit_count():
            raise ValueError(f"a tree of size {size} has {size.bit_count()} frontier hashes, got {len(hashes)}")
        if not all(_is_hash(h) for h in hashes):
            raise ValueError(f"frontier hashes must be {HASH_BYTES}-byte bytes")
        self.size: int = size
        self.hashes: list[bytes] = hashes

    @classmethod
    def from_reader(cls, reader: NodeReader, size: int) -> Frontier:
        """Rebuild the frontier of a stored tree of this size: one read per set bit of size."""
        if not _is_size(size):
            raise ValueError(f"tree size must be a non-negative int, got {size!r}")
        hashes = []
        start = 0
        for level in reversed(range(size.bit_length())):
            if size >> level & 1:
                hashes.append(reader.perfect(level, start >> level))
                start += 1 << level
        assert start == size
        return cls(size, hashes)

    def append(self, leaf_hash: bytes) -> list[tuple[int, int, bytes]]:
        """Append one leaf hash; return every node (level, index, hash) it completes, leaf first."""
        if not _is_hash(leaf_hash):
            raise ValueError(f"a leaf hash is {HASH_BYTES} bytes")
        completed = [(0, self.size, leaf_hash)]
        level, index, node = 0, self.size, leaf_hash
        # Each trailing one bit of size is a perfect subtree of 2^level leaves that the new
        # node's sibling completes.
        while self.size >> level & 1:
            node = node_hash(self.hashes.pop(), node)
            level, index = level + 1, index >> 1
            completed.append((level, index, node))
        self.hashes.append(node)
        self.size += 1
        assert len(self.hashes) == self.size.bit_count()
        return completed

    def extend(self, leaf_hashes: Iterable[bytes]) -> None:
        """Append leaf hashes a level at a time: each level's new nodes are hashed in one pass,
        with no carry loop per leaf (nearly twice as fast as append per leaf)."""
        level = list(leaf_hashes)
        if not all(map(_is_hash, level)):
            raise ValueError(f"a leaf hash is {HASH_BYTES} bytes")
        edge = self.hashes
        start = self.size  # the index of level[0] among the nodes of its height
        self.size += len(level)
        carried: list[bytes] = []  # roots of the new size's subtrees below the current height
        sha256 = hashlib.sha256
        while level:
            # An odd start: the edge's smallest subtree is level[0]'s left sibling (every smaller
            # one was merged at a lower height).
            if start & 1:
                level = [edge.pop(), *level]
                start -= 1
            # An odd count: the last node has no sibling yet; it is one of the new edge's roots.
            if len(level) & 1:
                carried.append(level.pop())
            level = [sha256(_NODE_PREFIX + left + right).digest() for left, right in zip(level[0::2], level[1::2])]
            start >>= 1
        edge.extend(reversed(carried))
        assert len(edge) == self.size.bit_count()

    def root(self) -> bytes:
        """MTH of all appended leaves: the perfect subtrees folded right to left."""
        if not self.hashes:
            return EMPTY_ROOT
        root = self.hashes[-1]
        for left in reversed(self.hashes[:-1]):
            root = node_hash(left, root)
        return root

    def copy(self) -> Frontier:
        return Frontier(self.size, self.hashes)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Frontier):
            return NotImplemented
        return self.size == other.size and self.hashes == other.hashes

    def __repr__(self) -> str:
        return f"Frontier(size={self.size}, root={self.root().hex()})"


class MemoryNodes:
    """A NodeReader over a dict of (level, index) -> hash, grown by appending leaf hashes."""

    def __init__(self, leaf_hashes: Iterable[bytes] = ()) -> None:
        self.nodes: dict[tuple[int, int], bytes] = {}
        self.frontier = Frontier()
        self.extend(leaf_hashes)

    @property
    def size(self) -> int:
        return self.frontier.size

    def perfect(self, level: int, index: int) -> bytes:
        return self.nodes[(level, index)]

    def append(self, leaf_hash: bytes) -> None:
        for level, index, node in self.frontier.append(leaf_hash):
            self.nodes[(level, index)] = node

    def extend(self, leaf_hashes: Iterable[bytes]) -> None:
        for h in leaf_hashes:
            self.append(h)

    def root(self) -> bytes:
        return self.frontier.root()


def range_hash(reader: NodeReader, start: int, end: int) -> bytes:
    """MTH(D[start:end]), read from stored perfect subtrees.

    For the ranges the RFC 9162 recursion produces (start a multiple of the smallest power of
    two >= end - start) every left part is one stored node, so this reads at most
    log2(end - start) + 1 nodes. Other ranges are still correct but may read more nodes.
    """
    if not (_is_size(start) and _is_size(end) and start <= end):
        raise ValueError(f"invalid range [{start!r}, {end!r})")
    if start == end:
        return EMPTY_ROOT
    # The right spine of the recursion: left parts are collected, then folded bottom-up.
    lefts: list[bytes] = []
    while True:
        n = end - start
        level = n.bit_length() - 1
        if n == 1 << level and start % n == 0:
            node = reader.perfect(level, start >> level)
            break
        k = _largest_power_of_two_below(n)
        lefts.append(range_hash(reader, start, start + k))
        start += k
    for left in reversed(lefts):
        node = node_hash(left, node)
    return node


def range_nodes(start: int, end: int) -> list[NodeId] | None:
    """The perfect subtrees, left to right, whose right fold is MTH(D[start:end]), for a range the
    RFC 9162 recursion produces (start a multiple of the smallest power of two >= end - start):
    at most log2(end - start) + 1 of them. None for any other range."""
    nodes: list[NodeId] = []
    while start < end:
        n = end - start
        k = n if n & (n - 1) == 0 else _largest_power_of_two_below(n)
        if start % k:
            return None
        level = k.bit_length() - 1
        nodes.append(NodeId(level, start >> level))
        start += k
    return nodes


def _fold(hashes: Sequence[bytes]) -> bytes:
    """MTH of a run of perfect subtrees of decreasing size: node_hash(P1, node_hash(P2, ... Pk))."""
    if not hashes:
        return EMPTY_ROOT
    node = hashes[-1]
    for left in reversed(hashes[:-1]):
        node = node_hash(left, node)
    return node


def range_hashes(reader: NodeReader, ranges: Sequence[tuple[int, int]]) -> list[bytes]:
    """MTH(D[start:end]) of each range: every node they need worked out first, then read at once
    (one query where the reader answers perfect_many), as Go's sumdb/tlog does."""
    plans: list[list[NodeId]] = []
    for start, end in ranges:
        plan = range_nodes(start, end)
        if plan is None:  # not a range of the recursion: read as range_hash does
            return [range_hash(reader, start, end) for start, end in ranges]
        plans.append(plan)
    wanted = list(dict.fromkeys(node for plan in plans for node in plan))
    many = getattr(reader, "perfect_many", None)
    if not wanted:
        found: dict[NodeId, bytes] = {}
    elif many is not None:
        found = many(wanted)
    else:
        found = {node: reader.perfect(*node) for node in wanted}
    return [_fold([found[node] for node in plan]) for plan in plans]


def root(reader: NodeReader, size: int) -> bytes:
    """MTH of the first size leaves (EMPTY_ROOT for 0): one node per set bit of size, one read."""
    if not _is_size(size):
        raise ValueError(f"invalid tree size {size!r}")
    return range_hashes(reader, [(0, size)])[0]


def inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """The ranges whose MTHs are PATH(index, D[0:size]) (RFC 9162 section 2.1.3.1), leaf-side
    sibling first."""
    if not (_is_size(index) and _is_size(size) and index < size):
        raise ValueError(f"no inclusion proof for leaf {index!r} in a tree of size {size!r}")
    ranges = []
    start, end = 0, size
    while end - start > 1:
        k = _largest_power_of_two_below(end - start)
        if index < start + k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            start += k
    # The recursion emits the deepest sibling first; the loop walked down from the root.
    ranges.reverse()
    return ranges


def inclusion_proof(reader: NodeReader, index: int, size: int) -> list[bytes]:
    """PATH(index, D[0:size]) of RFC 9162 section 2.1.3.1, leaf-side sibling first, in one read."""
    return range_hashes(reader, inclusion_ranges(index, size))


def consistency_ranges(first: int, second: int) -> list[tuple[int, int]]:
    """The ranges whose MTHs are PROOF(first, D[0:second]) (RFC 9162 section 2.1.4.1); none if
    first is 0 or second."""
    if not (_is_size(first) and _is_size(second) and first <= second):
        raise ValueError(f"no consistency proof from size {first!r} to size {second!r}")
    if first == 0 or first == second:
        return []
    ranges = []
    start, end = 0, second
    first_is_whole_subtree = True  # the b flag of SUBPROOF
    while first != end:
        k = _largest_power_of_two_below(end - start)
        if first <= start + k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            start += k
            first_is_whole_subtree = False
    ranges.reverse()
    # SUBPROOF(m, D[m], false) = [MTH(D[m])]: the old subtree the verifier cannot know alone.
    return ranges if first_is_whole_subtree else [(start, end), *ranges]


def consistency_proof(reader: NodeReader, first: int, second: int) -> list[bytes]:
    """PROOF(first, D[0:second]) of RFC 9162 section 2.1.4.1, in one read."""
    return range_hashes(reader, consistency_ranges(first, second))


def verify_inclusion(leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes) -> bool:
    """RFC 9162 section 2.1.3.2. False for any malformed argument; never raises."""
    if not (_is_hash(leaf_hash) and _is_hash(root) and _is_size(index) and _is_size(size)):
        return False
    if not isinstance(proof, (list, tuple)) or not all(_is_hash(p) for p in proof):
        return False
    if index >= size:
        return False
    fn, sn = index, size - 1
    r = leaf_hash
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and r == root


def verify_consistency(
    first: int, second: int, first_root: bytes, second_root: bytes, proof: Sequence[bytes]
) -> bool:
    """RFC 9162 section 2.1.4.2. False for any malformed argument; never raises.

    As in transparency-dev/merkle, a proof from the empty tree is meaningless and rejected, and
    equal sizes need an empty proof and identical roots.
    """
    if not (_is_size(first) and _is_size(second)) or first > second or first == 0:
        return False
    if not isinstance(proof, (list, tuple)):
        return False
    if first == second:
        return (
            not proof
            and isinstance(first_root, bytes)
            and isinstance(second_root, bytes)
            and first_root == second_root
        )
    if not (proof and _is_hash(first_root) and _is_hash(second_root) and all(_is_hash(p) for p in proof)):
        return False
    path = list(proof)
    if first & (first - 1) == 0:
        path.insert(0, first_root)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    return fr == first_root and sr == second_root and sn == 0


def root_of_leaf_hashes(hashes: Sequence[bytes]) -> bytes:
    """MTH over an in-memory list of leaf hashes, in O(n) time."""
    frontier = Frontier()
    frontier.extend(hashes)
    return frontier.root()


def inclusion_json(index: int, size: int, proof: Sequence[bytes]) -> dict:
    """An inclusion proof as puhui-log-v1 section 4 writes it in JSON."""
    return {"leaf_index": index, "tree_size": size, "hashes": [h.hex() for h in proof]}


def consistency_json(first: int, second: int, proof: Sequence[bytes]) -> dict:
    """A consistency proof as puhui-log-v1 section 4 writes it in JSON."""
    return {"first": first, "second": second, "hashes": [h.hex() for h in proof]}
