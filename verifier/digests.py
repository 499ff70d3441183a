"""Ids remembered as 64-bit keyed digests, never as the ids themselves.

Ids of events (request ids, transfer ids, ...) go into Python sets of these digests (ints, C-speed
lookups). Activity ids and fingerprints, which number in the billions, are written as packed
digests (8 bytes each) and searched for repeats after the log (uniqueness.py) in DigestSets: flat
arrays of digests, never one Python object per id.

Why it is sound: each id is reduced to a 64-bit keyed hash under a key drawn at random for this
run and never shown, so no one who wrote the log can aim two different ids at one digest. Two
different ids share a digest with probability 2^-64 per pair; among n ids the chance of any
false "seen before" is at most n^2 / 2^65 (about 3e-6 for 10^7 ids, 3e-8 for 10^6, several
expected at 10^10). A real repeat always has equal digests, so a duplicate is never missed; for
activity ids and fingerprints every digest hit is confirmed against the full values before it is
reported (uniqueness.py), so a collision costs a re-read of two records, never a false report.

The keyed hash is Python's own string hash when the interpreter drew its key at random (the
default: SipHash-1-3 under a 128-bit secret from os.urandom, made for exactly this, inputs chosen
by someone who wants collisions) and worker processes are forked, so they share that secret; it
costs a twentieth of BLAKE2b through hashlib. When PYTHONHASHSEED fixes the secret, or workers
would not share it, BLAKE2b-64 under a random 32-byte key is used instead.

Dask's workers are not forked: they can share the secret only if the auditor starts them and the
verifier with the same PYTHONHASHSEED, a number drawn at random for the run (for the workers,
Dask's setting distributed.nanny.pre-spawn-environ.PYTHONHASHSEED, whose default, 6640, everyone
knows and is never taken for a secret; docs/scale.md). Then, and only if every worker hashes a
check text as this process does, the string hash is used on the cluster too
(digester_for_workers). Its secret is then 32 bits drawn by the auditor after the log was
written, where it is 128 bits otherwise. That is still no aim for whoever wrote the log: an id
and fingerprint hit is confirmed anyway, and for the other ids a chosen pair collides only under
the one seed in 2^32 it was made for.

The table is open addressing with linear probing over array('q'), grown by doubling at 70% load.
0 marks an empty slot; digests never take it, nor -1 (kept free for a removed-slot mark).
"""

import multiprocessing
import os
import sys
from array import array
from hashlib import blake2b

EMPTY = 0
REMOVED = -1
MAX_LOAD_NUMERATOR, MAX_LOAD_DENOMINATOR = 7, 10


STRING_HASH_CHECK_TEXT = "puhui-verify digest check"
MAX_HASH_SEED = 4294967295  # PYTHONHASHSEED's largest value
# Seeds everyone knows: Dask's nannies give their workers 6640 unless configured otherwise.
PUBLIC_HASH_SEEDS = frozenset({6640})


def _string_hash_is_keyed():
    """Whether hash() of a str is a 64-bit keyed SipHash, whatever its key."""
    info = sys.hash_info
    return (
        sys.implementation.name == "cpython"
        and info.width == 64
        and info.algorithm.startswith("siphash")  # not FNV, which takes no key
        and info.cutoff == 0  # no short strings hashed by an unkeyed function
    )


def _string_hash_is_secret():
    """Whether hash() of a str is a 64-bit keyed SipHash under a secret forked workers share."""
    seed = os.environ.get("PYTHONHASHSEED", "random")
    return (
        seed in ("", "random")  # drawn from os.urandom at start, not fixed by the environment
        and _string_hash_is_keyed()
        # parallel.py forks its workers wherever fork exists; a spawned worker would draw its own secret
        and "fork" in multiprocessing.get_all_start_methods()
    )


def string_hash_seed():
    """The PYTHONHASHSEED that set this process's string-hash secret, or None: drawn at random,
    0 (which turns the key off), or a seed everyone knows."""
    seed = os.environ.get("PYTHONHASHSEED", "")
    if not seed.isdigit() or not 0 < int(seed) <= MAX_HASH_SEED or int(seed) in PUBLIC_HASH_SEEDS:
        return None
    return int(seed)


def string_hash_check():
    """This process's hash of the check text: equal in two processes only if they share the secret."""
    return hash(STRING_HASH_CHECK_TEXT)


def new_digester():
    """The run's keyed digest: Python's string hash where its key is a secret shared with forked
    workers, BLAKE2b-64 under a fresh random key otherwise."""
    return StringHashDigester() if _string_hash_is_secret() else Blake2bDigester(os.urandom(32))


def digester_for_workers(worker_checks):
    """The run's keyed digest for workers not forked from this process (Dask), given each worker's
    string_hash_check(): the string hash when this process's secret was set by a PYTHONHASHSEED and
    every worker has the same (they were started with that seed), BLAKE2b-64 under a fresh random
    key otherwise."""
    shared = (
        string_hash_seed() is not None
        and _string_hash_is_keyed()
        and len(worker_checks) > 0
        and all(check == string_hash_check() for check in worker_checks)
    )
    return StringHashDigester() if shared else Blake2bDigester(os.urandom(32))


def _never_empty_or_removed(value):
    return value if value != EMPTY and value != REMOVED else 1


def _hash_of_text(text):
    # CPython hashes a str's internal bytes (1, 2 or 4 per character), so "\u0141" and "A\x01"
    # share a hash under every secret; UTF-8 after a byte no ASCII text starts with is injective.
    return hash(text) if text.isascii() else hash(b"\xff" + text.encode("utf-8", "surrogatepass"))


class SecretNotShared(RuntimeError):
    """A StringHashDigester unpickled in a process whose string-hash secret differs."""


class StringHashDigester:
    """hash(text) under the interpreter's secret (UTF-8 bytes for a text that is not ASCII). Sent to
    a worker, it checks that the worker has the same secret (a forked child does), since digests
    from two secrets would never match. CPython hashes only the empty string without the key (to
    0); no id or fingerprint is empty."""

    def __init__(self):
        self._check = string_hash_check()

    def __setstate__(self, state):
        self.__dict__.update(state)
        if string_hash_check() != self._check:
            raise SecretNotShared("a worker process does not share the main process's string-hash secret")

    @staticmethod
    def of_text(text):
        # Replay asks for one or two digests an event: an ASCII text, the common case, without a call.
        value = hash(text) if text.isascii() else _hash_of_text(text)
        return value if value != EMPTY else 1  # CPython's hash() never returns -1 (REMOVED)

    @staticmethod
    def pack_texts(texts):
        """The digests of many texts, 8 bytes each (EMPTY and REMOVED are moved aside on receipt)."""
        if "".join(texts).isascii():  # activity ids and fingerprints always are: one C-level pass
            return array("q", map(hash, texts)).tobytes()
        return array("q", map(_hash_of_text, texts)).tobytes()

    def pack_of_texts(self, texts):
        """of_text of many texts, 8 bytes each, without a Python call a text."""
        return _as_of_text(StringHashDigester.pack_texts(texts), texts, self.of_text)


class Blake2bDigester:
    """BLAKE2b-64 of the UTF-8 text under a random key."""

    def __init__(self, key):
        self.key = key
        self._keyed = None

    def __getstate__(self):
        return {"key": self.key, "_keyed": None}

    def _start(self):
        if self._keyed is None:
            self._keyed = blake2b(digest_size=8, key=self.key)  # copied per use: the key block is hashed once
        return self._keyed.copy()

    def _packed(self, text):
        digest = self._start()
        digest.update(text.encode("utf-8", "surrogatepass"))  # JSON may carry a lone surrogate
        return digest.digest()

    def of_text(self, text):
        return _never_empty_or_removed(int.from_bytes(self._packed(text), sys.byteorder, signed=True))

    def pack_texts(self, texts):
        return b"".join([self._packed(text) for text in texts])

    def pack_of_texts(self, texts):
        """of_text of many texts, 8 bytes each (this class's pack_texts: a subclass may narrow its own)."""
        return _as_of_text(Blake2bDigester.pack_texts(self, texts), texts, self.of_text)


def _as_of_text(packed, texts, of_text):
    """Digests packed from texts as of_text gives them: EMPTY and REMOVED (probability 2^-63 a
    text) moved to 1. The byte search may also hit a run across two digests, which costs only time."""
    if packed.find(b"\x00" * 8) >= 0 or packed.find(b"\xff" * 8) >= 0:
        return array("q", map(of_text, texts)).tobytes()
    return packed


def digests_to_array(packed):
    """Digests packed by `pack_texts` (8 bytes each, native order) as array('q')."""
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

    def add_all(self, digests):
        """Insert every digest of an array; returns the positions in `digests` already present."""
        repeats = []
        needed = self.count + len(digests)
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
        self.count += len(digests) - len(repeats)
        return repeats

    def _grow(self):
        old = self._slots
        size = len(old) * 2
        self._slots = slots = array("q", [EMPTY]) * size
        self._mask = mask = size - 1
        for digest in old:
            if digest != EMPTY:
                slot = digest & mask
                while slots[slot] != EMPTY:
                    slot = (slot + 1) & mask
                slots[slot] = digest
