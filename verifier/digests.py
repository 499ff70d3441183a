"""Ids remembered as 64-bit keyed digests, never as the ids themselves.

Ids of events (request ids, transfer ids, ...) go into Python sets of these digests, as 8-byte
strings (about 80 bytes per id, and C-speed lookups). Activity ids and fingerprints, which number in the billions,
go into a DigestSet: one flat array of digests (16 bytes per id at most), never one Python object
per id.

Why it is sound: each id is reduced to BLAKE2b-64 under a random key drawn for this run, so no one
who wrote the log can aim two different ids at one digest. Two different ids share a digest with
probability 2^-64 per pair; among n ids the chance of any false "seen before" is at most
n^2 / 2^65 (about 3e-6 for 10^7 ids, 3e-8 for 10^6). A real repeat always has equal digests, so a
duplicate is never missed. A reported duplicate can be confirmed by running again (new key).

The table is open addressing with linear probing over array('q'), grown by doubling at 70% load.
0 marks an empty slot and -1 a removed one (see `remove_all`); digests never take these values.
"""

import os
from array import array
from hashlib import blake2b

EMPTY = 0
REMOVED = -1
MAX_LOAD_NUMERATOR, MAX_LOAD_DENOMINATOR = 7, 10


def new_digest_key():
    return os.urandom(32)


class KeyedDigest:
    """BLAKE2b-64 of bytes under the run's key, as a signed int that is never EMPTY or REMOVED."""

    def __init__(self, key):
        self._keyed = blake2b(digest_size=8, key=key)  # copied per use: the key block is hashed once

    def __call__(self, data):
        digest = self._keyed.copy()
        digest.update(data)
        value = int.from_bytes(digest.digest(), "little", signed=True)
        return value if value != EMPTY and value != REMOVED else 1

    def packed(self, data):
        """The 8 raw bytes (little-endian), for sending many at once between processes; 0 and -1
        are moved aside by the receiver (see activities.py)."""
        digest = self._keyed.copy()
        digest.update(data)
        return digest.digest()


def digests_to_array(packed):
    """Digests packed by `KeyedDigest.packed` (8 bytes each, little-endian) as array('q')."""
    values = array("q")
    values.frombytes(packed)
    if values.itemsize != 8:
        raise RuntimeError("array('q') is not 64-bit on this platform")
    return values


def table_bits_for(expected_count):
    """Bits of a table that holds expected_count digests below the maximum load."""
    bits = 10
    while (1 << bits) * MAX_LOAD_NUMERATOR <= expected_count * MAX_LOAD_DENOMINATOR:
        bits += 1
    return bits


class DigestSet:
    def __init__(self, initial_bits=10):
        self._slots = array("q", [EMPTY]) * (1 << initial_bits)
        self._mask = (1 << initial_bits) - 1
        self._used = 0  # occupied or removed slots
        self.count = 0

    def __len__(self):
        return self.count

    @property
    def memory_bytes(self):
        return len(self._slots) * 8

    def __contains__(self, digest):
        slots, mask = self._slots, self._mask
        slot = digest & mask
        value = slots[slot]
        while value != EMPTY:
            if value == digest:
                return True
            slot = (slot + 1) & mask
            value = slots[slot]
        return False

    def add_all(self, digests, added):
        """Insert every digest of an array; append each one that was new to `added` (for a later
        `remove_all`). Returns the positions in `digests` that were already present."""
        repeats = []
        needed = self._used + len(digests)
        while needed * MAX_LOAD_DENOMINATOR >= len(self._slots) * MAX_LOAD_NUMERATOR:
            self._grow()
        slots, mask = self._slots, self._mask
        position = -1
        for digest in digests:
            position += 1
            slot = digest & mask
            value = slots[slot]
            if value == EMPTY:  # the common case, first
                slots[slot] = digest
                continue
            while value != EMPTY:
                if value == digest:
                    repeats.append(position)
                    break
                slot = (slot + 1) & mask
                value = slots[slot]
            else:
                slots[slot] = digest
        if repeats:
            repeated = set(repeats)
            added.extend(digest for position, digest in enumerate(digests) if position not in repeated)
        else:
            added.extend(digests)
        count = len(digests) - len(repeats)
        self._used += count
        self.count += count
        return repeats

    def remove_all(self, digests):
        """Undo `add_all`: mark the slots of these digests removed (probing continues past them)."""
        slots, mask = self._slots, self._mask
        for digest in digests:
            slot = digest & mask
            value = slots[slot]
            while value != EMPTY:
                if value == digest:
                    slots[slot] = REMOVED
                    self.count -= 1
                    break
                slot = (slot + 1) & mask
                value = slots[slot]

    def _grow(self):
        old = self._slots
        size = len(old) * 2
        self._slots = slots = array("q", [EMPTY]) * size
        self._mask = mask = size - 1
        for digest in old:
            if digest != EMPTY and digest != REMOVED:
                slot = digest & mask
                while slots[slot] != EMPTY:
                    slot = (slot + 1) & mask
                slots[slot] = digest
        self._used = self.count
