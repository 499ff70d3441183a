"""ledger.merkle against RFC 9162 itself: published vectors, a naive reference, read counts."""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import math
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from spec_paths import RFC9162_VECTORS, VECTORS

from ledger import merkle
from ledger.merkle import (
    EMPTY_ROOT,
    Frontier,
    MemoryNodes,
    consistency_json,
    consistency_proof,
    inclusion_json,
    inclusion_proof,
    leaf_hash,
    node_hash,
    range_hash,
    root,
    root_of_leaf_hashes,
    verify_consistency,
    verify_inclusion,
)

BUNDLE = VECTORS / "valid" / "bundle"


# --- A naive reference, written straight from RFC 9162 section 2.1 over lists of leaf hashes ---


def _k(n: int) -> int:
    """The largest power of two smaller than n."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


@functools.lru_cache(maxsize=None)
def ref_mth(d: tuple[bytes, ...]) -> bytes:
    n = len(d)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return d[0]
    k = _k(n)
    return hashlib.sha256(b"\x01" + ref_mth(d[:k]) + ref_mth(d[k:])).digest()


def ref_path(m: int, d: tuple[bytes, ...]) -> list[bytes]:
    n = len(d)
    if n == 1:
        return []
    k = _k(n)
    if m < k:
        return ref_path(m, d[:k]) + [ref_mth(d[k:])]
    return ref_path(m - k, d[k:]) + [ref_mth(d[:k])]


def ref_subproof(m: int, d: tuple[bytes, ...], b: bool) -> list[bytes]:
    n = len(d)
    if m == n:
        return [] if b else [ref_mth(d)]
    k = _k(n)
    if m <= k:
        return ref_subproof(m, d[:k], b) + [ref_mth(d[k:])]
    return ref_subproof(m - k, d[k:], False) + [ref_mth(d[:k])]


def ref_proof(m: int, d: tuple[bytes, ...]) -> list[bytes]:
    if m == 0 or m == len(d):
        return []
    return ref_subproof(m, d, True)


def leaves_of(n: int, salt: str = "") -> tuple[bytes, ...]:
    return tuple(leaf_hash(f"{salt}leaf {i}".encode()) for i in range(n))


class CountingReader:
    def __init__(self, inner: merkle.NodeReader) -> None:
        self.inner = inner
        self.reads = 0

    def perfect(self, level: int, index: int) -> bytes:
        self.reads += 1
        return self.inner.perfect(level, index)


# --- Primitives ---


def test_hash_primitives():
    assert EMPTY_ROOT == bytes.fromhex("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    assert leaf_hash(b"") == bytes.fromhex("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d")
    assert leaf_hash(b"ab") == hashlib.sha256(b"\x00ab").digest()
    assert node_hash(b"l" * 32, b"r" * 32) == hashlib.sha256(b"\x01" + b"l" * 32 + b"r" * 32).digest()


def test_rfc6962_reference_roots():
    # The eight-leaf tree of RFC 6962 / transparency-dev test data: roots of every prefix.
    data = [b"", b"\x00", b"\x10", b"\x20\x21", b"\x30\x31", b"\x40\x41\x42\x43",
            bytes(range(0x50, 0x58)), bytes(range(0x60, 0x70))]
    want = [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ]
    nodes = MemoryNodes(leaf_hash(d) for d in data)
    for size in range(1, 9):
        assert root(nodes, size).hex() == want[size - 1]
        assert root_of_leaf_hashes([leaf_hash(d) for d in data[:size]]).hex() == want[size - 1]


# --- RFC 9162 vectors from transparency-dev/merkle ---


def _b64(value):
    return base64.b64decode(value) if value is not None else b""


def _vector_files(kind: str) -> list[Path]:
    files = sorted((RFC9162_VECTORS / kind).rglob("*.json"))
    assert files, f"no {kind} vectors under {RFC9162_VECTORS}"
    return files


def _load(path: Path) -> dict:
    vector = json.loads(path.read_text())
    vector["proof"] = [_b64(p) for p in vector["proof"] or []]
    return vector


# The happy paths are proofs over the eight-leaf test tree; build it to regenerate them.
_TEST_TREE = MemoryNodes(
    leaf_hash(d)
    for d in [b"", b"\x00", b"\x10", b"\x20\x21", b"\x30\x31", b"\x40\x41\x42\x43",
              bytes(range(0x50, 0x58)), bytes(range(0x60, 0x70))]
)


@pytest.mark.parametrize("path", _vector_files("inclusion"), ids=lambda p: str(p.relative_to(RFC9162_VECTORS)))
def test_rfc9162_inclusion_vector(path):
    v = _load(path)
    ok = verify_inclusion(_b64(v["leafHash"]), v["leafIdx"], v["treeSize"], v["proof"], _b64(v["root"]))
    assert ok is (not v["wantErr"])
    if path.name == "happy-path.json":
        assert inclusion_proof(_TEST_TREE, v["leafIdx"], v["treeSize"]) == v["proof"]
        assert root(_TEST_TREE, v["treeSize"]) == _b64(v["root"])


@pytest.mark.parametrize("path", _vector_files("consistency"), ids=lambda p: str(p.relative_to(RFC9162_VECTORS)))
def test_rfc9162_consistency_vector(path):
    v = _load(path)
    ok = verify_consistency(v["size1"], v["size2"], _b64(v["root1"]), _b64(v["root2"]), v["proof"])
    assert ok is (not v["wantErr"])
    if path.name == "happy-path.json":
        assert consistency_proof(_TEST_TREE, v["size1"], v["size2"]) == v["proof"]
        assert root(_TEST_TREE, v["size1"]) == _b64(v["root1"])
        assert root(_TEST_TREE, v["size2"]) == _b64(v["root2"])


def test_happy_path_vectors_exist():
    # Guards the regeneration checks above against a renamed vector file.
    names = [p.name for p in _vector_files("inclusion") + _vector_files("consistency")]
    assert names.count("happy-path.json") == 10


# --- Exhaustive comparison with the reference ---

N_EXHAUSTIVE = 130
_LEAVES = leaves_of(N_EXHAUSTIVE)
_NODES = MemoryNodes(_LEAVES)


def test_exhaustive_roots_and_frontiers():
    growing = MemoryNodes()
    assert root(_NODES, 0) == EMPTY_ROOT == growing.root()
    for size in range(1, N_EXHAUSTIVE + 1):
        growing.append(_LEAVES[size - 1])
        want = ref_mth(_LEAVES[:size])
        assert root(_NODES, size) == want
        assert growing.root() == want
        assert root_of_leaf_hashes(_LEAVES[:size]) == want
        assert Frontier.from_reader(_NODES, size) == growing.frontier
        assert len(growing.frontier.hashes) <= math.log2(size) + 1


def test_exhaustive_inclusion_proofs():
    for size in range(1, N_EXHAUSTIVE + 1):
        tree = _LEAVES[:size]
        want_root = ref_mth(tree)
        for index in range(size):
            proof = inclusion_proof(_NODES, index, size)
            assert proof == ref_path(index, tree), (index, size)
            assert verify_inclusion(tree[index], index, size, proof, want_root)
            # The same proof must not verify a neighbouring leaf, nor the leaf at another index.
            if size > 1:
                other = (index + 1) % size
                assert not verify_inclusion(tree[other], index, size, proof, want_root)
                assert not verify_inclusion(tree[index], other, size, proof, want_root)


def test_exhaustive_consistency_proofs():
    roots = [ref_mth(_LEAVES[:n]) for n in range(N_EXHAUSTIVE + 1)]
    for second in range(N_EXHAUSTIVE + 1):
        tree = _LEAVES[:second]
        for first in range(second + 1):
            proof = consistency_proof(_NODES, first, second)
            assert proof == ref_proof(first, tree), (first, second)
            ok = verify_consistency(first, second, roots[first], roots[second], proof)
            # A proof from the empty tree is meaningless (transparency-dev semantics).
            assert ok is (first > 0)
            if 0 < first < second:
                assert not verify_consistency(first, second, roots[first - 1], roots[second], proof)
                assert not verify_consistency(first, second, roots[first], roots[second - 1], proof)
                assert not verify_consistency(first, second, roots[second], roots[first], proof)


def test_range_hash_of_every_range():
    # Also ranges the proofs never ask for: range_hash is MTH(D[start:end]) for all of them.
    leaves = _LEAVES[:40]
    nodes = MemoryNodes(leaves)
    for start in range(41):
        for end in range(start, 41):
            assert range_hash(nodes, start, end) == ref_mth(leaves[start:end])


def test_forked_tree_fails_consistency():
    honest = MemoryNodes(_LEAVES[:20])
    forked = MemoryNodes(_LEAVES[:7] + (leaf_hash(b"rewritten"),) + _LEAVES[8:20])
    old_root = root(honest, 12)
    proof = consistency_proof(forked, 12, 20)
    assert not verify_consistency(12, 20, old_root, root(forked, 20), proof)
    assert verify_consistency(12, 20, old_root, root(honest, 20), consistency_proof(honest, 12, 20))


# --- Hypothesis: larger random trees against the reference ---


@settings(max_examples=60, deadline=None)
@given(data=st.data(), size=st.integers(min_value=1, max_value=400))
def test_random_trees_match_reference(data, size):
    leaves = leaves_of(size, salt=f"h{size}/")
    nodes = MemoryNodes(leaves)
    assert root(nodes, size) == ref_mth(leaves) == root_of_leaf_hashes(leaves)
    assert Frontier.from_reader(nodes, size) == nodes.frontier

    index = data.draw(st.integers(0, size - 1), label="index")
    proof = inclusion_proof(nodes, index, size)
    assert proof == ref_path(index, leaves)
    assert verify_inclusion(leaves[index], index, size, proof, ref_mth(leaves))

    second = data.draw(st.integers(0, size), label="second")
    first = data.draw(st.integers(0, second), label="first")
    proof = consistency_proof(nodes, first, second)
    assert proof == ref_proof(first, leaves[:second])
    assert verify_consistency(first, second, ref_mth(leaves[:first]), ref_mth(leaves[:second]), proof) is (first > 0)

    start = data.draw(st.integers(0, size), label="start")
    end = data.draw(st.integers(start, size), label="end")
    assert range_hash(nodes, start, end) == ref_mth(leaves[start:end])


@settings(max_examples=60, deadline=None)
@given(data=st.data(), size=st.integers(min_value=1, max_value=300))
def test_frontier_resumes_from_stored_nodes(data, size):
    # A store that restarts at any size rebuilds its frontier and keeps appending identically.
    leaves = leaves_of(size, salt="resume/")
    cut = data.draw(st.integers(0, size), label="cut")
    first_run = MemoryNodes(leaves[:cut])
    resumed = Frontier.from_reader(first_run, cut)
    persisted = Frontier(cut, resumed.hashes)
    for h in leaves[cut:]:
        for level, index, node in persisted.append(h):
            first_run.nodes[(level, index)] = node
    assert persisted.root() == ref_mth(leaves)
    assert first_run.nodes == MemoryNodes(leaves).nodes


# --- extend (a batch folded level by level) is append, leaf by leaf ---


N_EXTEND = 300
_EXTEND_LEAVES = leaves_of(N_EXTEND + 64, salt="extend/")


def test_extend_gives_the_reference_root_for_every_size():
    for size in range(N_EXTEND + 1):
        leaves = _EXTEND_LEAVES[:size]
        frontier = Frontier()
        frontier.extend(leaves)
        assert frontier.size == size
        assert frontier.root() == ref_mth(leaves)
        appended = Frontier()
        for h in leaves:
            appended.append(h)
        assert frontier == appended


def test_extend_from_every_size_equals_appends():
    # A batch of any length onto a tree of any size: the edge's subtrees at every height merge.
    for size in range(65):
        for count in range(65):
            start = Frontier()
            start.extend(_EXTEND_LEAVES[:size])
            appended = start.copy()
            start.extend(_EXTEND_LEAVES[size:size + count])
            for h in _EXTEND_LEAVES[size:size + count]:
                appended.append(h)
            assert start == appended
            assert start.root() == ref_mth(_EXTEND_LEAVES[:size + count])


@settings(max_examples=60, deadline=None)
@given(counts=st.lists(st.integers(min_value=0, max_value=700), min_size=1, max_size=8))
def test_extend_in_random_batches_matches_reference(counts):
    leaves = leaves_of(sum(counts), salt="batches/")
    frontier, appended, done = Frontier(), Frontier(), 0
    for count in counts:
        frontier.extend(iter(leaves[done:done + count]))  # any iterable
        for h in leaves[done:done + count]:
            appended.append(h)
        done += count
        assert frontier == appended
        assert frontier.root() == ref_mth(leaves[:done])
    assert Frontier.from_reader(MemoryNodes(leaves), done) == frontier


def test_extend_refuses_what_is_no_leaf_hash():
    for bad in ([b"short"], [_LEAVES[0], "x" * 32], [None], [bytearray(32)]):
        frontier = Frontier()
        frontier.extend(_LEAVES[:3])
        with pytest.raises(ValueError):
            frontier.extend(bad)
        assert frontier == Frontier.from_reader(_NODES, 3)  # unchanged


# --- Append emits exactly the completed nodes ---


def test_append_reports_completed_nodes():
    frontier = Frontier()
    assert frontier.append(_LEAVES[0]) == [(0, 0, _LEAVES[0])]
    completed = frontier.append(_LEAVES[1])
    assert completed == [(0, 1, _LEAVES[1]), (1, 0, ref_mth(_LEAVES[:2]))]
    frontier.append(_LEAVES[2])
    completed = frontier.append(_LEAVES[3])
    assert [(lv, ix) for lv, ix, _ in completed] == [(0, 3), (1, 1), (2, 0)]
    assert completed[-1][2] == ref_mth(_LEAVES[:4])
    # Every stored node is the perfect subtree it names.
    for (level, index), node in _NODES.nodes.items():
        assert node == ref_mth(_LEAVES[index << level:(index + 1) << level])
    assert len(_NODES.nodes) == 2 * N_EXHAUSTIVE - N_EXHAUSTIVE.bit_count()


# --- O(log n) reads ---


def test_reads_are_logarithmic():
    nodes = MemoryNodes()
    checkpoints = [1, 2, 3, 1000, 4096, 4097, 65535, 65536, 99_999, 100_003]
    for size in checkpoints:
        nodes.extend(leaf_hash(i.to_bytes(8, "big")) for i in range(nodes.size, size))
        bound = 2 * size.bit_length() + 2
        probes = {0, size // 3, size // 2, size - 2, size - 1}
        for x in sorted(p for p in probes if 0 <= p < size):
            for name, call in [
                ("root", lambda r: root(r, size)),
                ("inclusion", lambda r: inclusion_proof(r, x, size)),
                ("consistency", lambda r: consistency_proof(r, x + 1, size)),
                ("frontier", lambda r: Frontier.from_reader(r, size)),
            ]:
                counter = CountingReader(nodes)
                call(counter)
                assert counter.reads <= bound, (name, size, x, counter.reads)
        counter = CountingReader(nodes)
        assert root(counter, size) == nodes.root()
        assert counter.reads == size.bit_count()


# --- Argument checking ---


def test_out_of_range_arguments_raise():
    nodes = MemoryNodes(_LEAVES[:5])
    for index, size in [(5, 5), (0, 0), (-1, 5), (True, 5)]:
        with pytest.raises(ValueError):
            inclusion_proof(nodes, index, size)
    for first, second in [(6, 5), (-1, 3), (1, 0)]:
        with pytest.raises(ValueError):
            consistency_proof(nodes, first, second)
    with pytest.raises(ValueError):
        range_hash(nodes, 3, 2)
    with pytest.raises(KeyError):
        root(nodes, 6)  # beyond what is stored
    with pytest.raises(ValueError):
        Frontier(3, [EMPTY_ROOT])
    with pytest.raises(ValueError):
        Frontier().append(b"short")


def test_verifiers_never_raise_on_garbage():
    good_root = ref_mth(_LEAVES[:5])
    proof = ref_path(2, _LEAVES[:5])
    garbage = [None, "x", b"", b"\x00" * 31, 3.0, [None], ["ab"], [b"\x00" * 33], -1, True, 2**70]
    for g in garbage:
        assert verify_inclusion(g, 2, 5, proof, good_root) is False
        assert verify_inclusion(_LEAVES[2], g, 5, proof, good_root) is False
        assert verify_inclusion(_LEAVES[2], 2, g, proof, good_root) is False
        assert verify_inclusion(_LEAVES[2], 2, 5, g, good_root) is False
        assert verify_inclusion(_LEAVES[2], 2, 5, proof, g) is False
        cproof = ref_proof(3, _LEAVES[:5])
        r3 = ref_mth(_LEAVES[:3])
        assert verify_consistency(g, 5, r3, good_root, cproof) is False
        assert verify_consistency(3, g, r3, good_root, cproof) is False
        assert verify_consistency(3, 5, g, good_root, cproof) is False
        assert verify_consistency(3, 5, r3, g, cproof) is False
        assert verify_consistency(3, 5, r3, good_root, g) is False
    assert verify_inclusion(_LEAVES[2], 2, 5, proof, good_root) is True
    # Overlong proofs stop at the root instead of looping.
    assert verify_inclusion(_LEAVES[2], 2, 5, proof + [EMPTY_ROOT] * 100, good_root) is False


# --- The conformance bundle: roots of log.jsonl prefixes equal the signed checkpoints ---


def test_bundle_roots_match_checkpoints():
    lines = BUNDLE.joinpath("log.jsonl").read_bytes().split(b"\n")
    assert lines[-1] == b""
    leaves = [leaf_hash(line) for line in lines[:-1]]
    nodes = MemoryNodes(leaves)
    found = {}
    for record in BUNDLE.joinpath("checkpoints.jsonl").read_text().splitlines():
        origin, size, root_b64 = json.loads(record)["note"].split("\n")[:3]
        found[int(size)] = base64.b64decode(root_b64)
    assert sorted(found) == [18, 24, 30]
    for size, want in found.items():
        assert root(nodes, size) == want
        assert root_of_leaf_hashes(leaves[:size]) == want
    assert verify_consistency(18, 30, found[18], found[30], consistency_proof(nodes, 18, 30))


# --- JSON forms ---


def test_proof_json():
    proof = inclusion_proof(_NODES, 5, 9)
    assert inclusion_json(5, 9, proof) == {"leaf_index": 5, "tree_size": 9, "hashes": [h.hex() for h in proof]}
    cproof = consistency_proof(_NODES, 3, 9)
    assert consistency_json(3, 9, cproof) == {"first": 3, "second": 9, "hashes": [h.hex() for h in cproof]}
    assert json.loads(json.dumps(consistency_json(0, 0, []))) == {"first": 0, "second": 0, "hashes": []}


class BatchCountingReader:
    """A BatchNodeReader over MemoryNodes that counts its batch reads and refuses single ones."""

    def __init__(self, inner: MemoryNodes) -> None:
        self.inner = inner
        self.batches: list[int] = []

    def perfect(self, level: int, index: int) -> bytes:
        raise AssertionError("a batch reader is asked for its nodes at once")

    def perfect_many(self, nodes):
        self.batches.append(len(nodes))
        return {node: self.inner.perfect(*node) for node in nodes}


def test_proofs_and_roots_read_their_nodes_in_one_batch_and_equal_the_node_by_node_reads():
    leaves = [leaf_hash(bytes([i % 256, i // 256])) for i in range(130)]
    nodes = MemoryNodes(leaves)
    for size in range(1, 131):
        batch = BatchCountingReader(nodes)
        assert root(batch, size) == merkle.range_hash(nodes, 0, size) == root_of_leaf_hashes(leaves[:size])
        for index in range(size):
            before = len(batch.batches)
            proof = inclusion_proof(batch, index, size)
            assert len(batch.batches) == before + (1 if proof else 0)
            assert proof == [merkle.range_hash(nodes, s, e) for s, e in merkle.inclusion_ranges(index, size)]
            assert verify_inclusion(leaves[index], index, size, proof, root_of_leaf_hashes(leaves[:size]))
    for second in range(1, 65):
        for first in range(1, second + 1):
            batch = BatchCountingReader(nodes)
            proof = consistency_proof(batch, first, second)
            assert len(batch.batches) == (1 if proof else 0)
            assert verify_consistency(first, second, root_of_leaf_hashes(leaves[:first]),
                                      root_of_leaf_hashes(leaves[:second]), proof)
    assert max(len(merkle.range_nodes(0, size)) for size in range(1, 1 << 12)) == 12  # one node per set bit


def test_a_range_the_recursion_never_asks_for_has_no_node_plan():
    assert merkle.range_nodes(1, 3) is None and merkle.range_nodes(2, 4) == [merkle.NodeId(1, 1)]
    nodes = MemoryNodes(leaf_hash(bytes([i])) for i in range(8))
    assert merkle.range_hashes(nodes, [(1, 3)]) == [merkle.range_hash(nodes, 1, 3)]
