"""RFC 9162 Merkle tree hashing (spec section 4): leaf and node hashes, a streaming root over any
number of leaves in O(log n) memory, and inclusion and consistency proof verification."""

from hashlib import sha256

HASH_BYTES = 32
EMPTY_ROOT = sha256(b"").digest()


def leaf_hash(leaf_bytes):
    return sha256(b"\x00" + leaf_bytes).digest()


def node_hash(left, right):
    return sha256(b"\x01" + left + right).digest()


class MerkleAccumulator:
    """The root of a growing tree, keeping one hash per set bit of its size (a compact range).

    The kept hashes are the roots of the perfect subtrees that the binary decomposition of the size
    cuts the leaves into, largest first; the tree root folds them from the right (RFC 9162 splits at
    the largest power of two below n, which is exactly that decomposition)."""

    __slots__ = ("size", "_subtrees")

    def __init__(self):
        self.size = 0
        self._subtrees = []

    def append(self, hash_of_leaf):
        # append_subtree(0, ...) written out: this runs once per leaf of the log
        carry = self.size
        subtrees = self._subtrees
        node = hash_of_leaf
        while carry & 1:
            node = sha256(b"\x01" + subtrees.pop() + node).digest()
            carry >>= 1
        subtrees.append(node)
        self.size += 1

    def append_subtree(self, height, subtree_root):
        """Append a perfect subtree of 2**height leaves; the size must be a multiple of that."""
        if self.size & ((1 << height) - 1):
            raise ValueError("subtree appended at an unaligned position")
        carry = self.size >> height
        subtrees = self._subtrees
        node = subtree_root
        while carry & 1:
            node = sha256(b"\x01" + subtrees.pop() + node).digest()
            carry >>= 1
        subtrees.append(node)
        self.size += 1 << height

    def perfect_subtrees(self):
        """[(height, root), ...] largest first: what append_subtree needs to rebuild this range."""
        heights = [bit for bit in range(self.size.bit_length() - 1, -1, -1) if self.size >> bit & 1]
        return list(zip(heights, self._subtrees))

    def root(self):
        if not self._subtrees:
            return EMPTY_ROOT
        node = self._subtrees[-1]
        for left in reversed(self._subtrees[:-1]):
            node = node_hash(left, node)
        return node


def subtrees_of(leaf_hashes):
    """[(height, root), ...] of the perfect subtrees a run of leaves (starting at a multiple of its
    largest power of two) splits into, largest first; each level hashed in one pass."""
    subtrees = []
    start = 0
    count = len(leaf_hashes)
    for height in range(count.bit_length() - 1, -1, -1):
        if count >> height & 1:
            level = leaf_hashes[start : start + (1 << height)]
            while len(level) > 1:
                level = [sha256(b"\x01" + left + right).digest() for left, right in zip(level[::2], level[1::2])]
            subtrees.append((height, level[0]))
            start += 1 << height
    return subtrees


def root_of(leaf_hashes):
    accumulator = MerkleAccumulator()
    for hash_of_leaf in leaf_hashes:
        accumulator.append(hash_of_leaf)
    return accumulator.root()


def verify_inclusion(hash_of_leaf, leaf_index, tree_size, proof, root):
    """RFC 9162 section 2.1.3.2: does proof lead from the leaf at leaf_index to root?"""
    if leaf_index < 0 or leaf_index >= tree_size:
        return False
    if len(hash_of_leaf) != HASH_BYTES or len(root) != HASH_BYTES:
        return False
    fn, sn, node = leaf_index, tree_size - 1, hash_of_leaf
    for sibling in proof:
        if sn == 0 or len(sibling) != HASH_BYTES:
            return False
        if fn & 1 or fn == sn:
            node = node_hash(sibling, node)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            node = node_hash(node, sibling)
        fn >>= 1
        sn >>= 1
    return sn == 0 and node == root


def verify_consistency(first_size, second_size, proof, first_root, second_root):
    """RFC 9162 section 2.1.4.2: is the tree of first_size a prefix of the tree of second_size?

    A first size of 0 proves nothing and is refused; equal sizes need an empty proof and equal
    roots (the conventions of the RFC 9162 test vectors from transparency-dev/merkle)."""
    if first_size <= 0 or second_size < first_size:
        return False
    if first_size == second_size:
        return not proof and first_root == second_root
    if not proof or any(len(item) != HASH_BYTES for item in proof):
        return False
    path = list(proof)
    if first_size & (first_size - 1) == 0:
        path.insert(0, first_root)
    fn, sn = first_size - 1, second_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    first_node = second_node = path[0]
    for item in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            first_node = node_hash(item, first_node)
            second_node = node_hash(item, second_node)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            second_node = node_hash(second_node, item)
        fn >>= 1
        sn >>= 1
    return sn == 0 and first_node == first_root and second_node == second_root
