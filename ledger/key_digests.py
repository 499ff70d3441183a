"""The single writer's in-memory digests of the activity ids or fingerprints the database holds,
each with the partition that holds it (issue 15: the fingerprint index at 10^8 rows).

Past a few million rows a lookup of a random id in a unique B-tree index is a page read, and an
upload asks for every one of its records. This set answers those lookups without the database:
a value whose digest is absent is not stored (a miss is proof, since the set holds every stored
value and only the one writer adds to the table); a value whose digest is present names the
partitions to ask, and the database confirms it there, so a digest collision costs one query and
never a false "seen before". Duplicates are rare (an upload sent twice), so nearly every lookup is
a miss answered here.

A digest is Python's string hash (SipHash keyed by a secret drawn at each start of the process):
the set is rebuilt from the database at each start, so nothing outside the process needs the key,
and without the key nobody can choose values that collide. Should hashing be made predictable
(PYTHONHASHSEED=0), a chosen collision still only costs a query.

Layout: 2^bits buckets chosen by a digest's top bits, each a bytearray of 8-byte entries: the
digest's low 48 bits and a 16-bit partition number. A lookup is one `find` over a bucket of a few
hundred bytes; an entry costs 8 bytes and a bucket some 60 bytes more.
"""

from __future__ import annotations

import sys
from typing import Iterable

DIGEST_MASK = (1 << 64) - 1
ENTRY_BYTES = 8
LOW_DIGEST_BYTES = 6  # the digest's low 48 bits: an entry's first bytes, what a lookup searches for
LOW_DIGEST_MASK = (1 << 48) - 1
MAX_PARTITION = (1 << 16) - 1
MIN_BUCKET_BITS = 16  # so that a bucket bit below the top 16 lies in an entry's 48 bits, for the splits
MAX_BUCKET_BITS = 26  # 2^26 buckets: some 4 GiB of bucket objects; past that the buckets grow instead
MEAN_BUCKET_ENTRIES = 64  # the bucket count doubles when the mean passes twice this


class StoredKeyDigests:
    """The digests of one column's stored values (activity ids, or fingerprints) by partition."""

    __slots__ = ("_bits", "_shift", "_buckets", "_entries")

    def __init__(self, expected_entries: int = 0):
        bits = MIN_BUCKET_BITS
        while bits < MAX_BUCKET_BITS and (1 << bits) * MEAN_BUCKET_ENTRIES < expected_entries:
            bits += 1
        self._entries = 0
        self._set_buckets(bits)

    def _set_buckets(self, bits: int) -> None:
        self._bits = bits
        self._shift = 64 - bits
        self._buckets = [bytearray() for _ in range(1 << bits)]

    def __len__(self) -> int:
        return self._entries

    def add(self, value: str, partition: int) -> None:
        self.add_many((value,), partition)

    def add_many(self, values: Iterable[str], partition: int) -> None:
        """Note values just stored in this partition (a value stored twice is noted twice)."""
        if not 0 <= partition <= MAX_PARTITION:
            raise ValueError(f"partition {partition} is outside 0..{MAX_PARTITION}")
        tag = partition.to_bytes(2, "little")
        buckets, shift, added = self._buckets, self._shift, 0
        for value in values:
            digest = hash(value) & DIGEST_MASK
            buckets[digest >> shift] += (digest & LOW_DIGEST_MASK).to_bytes(LOW_DIGEST_BYTES, "little") + tag
            added += 1
        self._entries += added
        if self._entries > (2 * MEAN_BUCKET_ENTRIES) << self._bits and self._bits < MAX_BUCKET_BITS:
            self._double_buckets()

    def _double_buckets(self) -> None:
        """Split each bucket in two by the next bit of its entries' digests, which lies in their
        48 stored bits since a bucket is chosen by 16 bits or more. A pause that reads every
        entry: a writer sized at its start from the rows it holds seldom pays it."""
        old_buckets = self._buckets
        split_bit = self._shift - 1  # the digest's bit that now also chooses the bucket
        assert split_bit < 8 * LOW_DIGEST_BYTES, "the split bit must lie in the stored digest bits"
        self._set_buckets(self._bits + 1)
        new_buckets = self._buckets
        for index, bucket in enumerate(old_buckets):
            low, high = new_buckets[2 * index], new_buckets[2 * index + 1]
            for start in range(0, len(bucket), ENTRY_BYTES):
                entry = bucket[start:start + ENTRY_BYTES]
                if int.from_bytes(entry[:LOW_DIGEST_BYTES], "little") >> split_bit & 1:
                    high += entry
                else:
                    low += entry
        assert sum(map(len, new_buckets)) == self._entries * ENTRY_BYTES, "a split lost or made entries"

    def partitions_of(self, value: str) -> list[int]:
        """The partitions that may hold value; empty: it is not stored."""
        digest = hash(value) & DIGEST_MASK
        bucket = self._buckets[digest >> self._shift]
        needle = (digest & LOW_DIGEST_MASK).to_bytes(LOW_DIGEST_BYTES, "little")
        found: list[int] = []
        at = bucket.find(needle)
        while at >= 0:
            if at % ENTRY_BYTES == 0:  # a match across two entries is no match
                found.append(int.from_bytes(bucket[at + LOW_DIGEST_BYTES:at + ENTRY_BYTES], "little"))
            at = bucket.find(needle, at + 1)
        return found

    def candidates(self, values: Iterable[str]) -> dict[int, list[str]]:
        """The values whose digests are present, by the partition to confirm each in: every value
        absent from the result is not stored."""
        by_partition: dict[int, list[str]] = {}
        buckets, shift = self._buckets, self._shift
        for value in values:
            digest = hash(value) & DIGEST_MASK
            if buckets[digest >> shift].find((digest & LOW_DIGEST_MASK).to_bytes(LOW_DIGEST_BYTES, "little")) < 0:
                continue  # the common case: one find, no match
            for partition in self.partitions_of(value):
                by_partition.setdefault(partition, []).append(value)
        return by_partition

    def memory_bytes(self) -> int:
        return sys.getsizeof(self._buckets) + sum(map(sys.getsizeof, self._buckets))
