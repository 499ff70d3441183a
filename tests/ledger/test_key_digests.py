"""The writer's digests of stored keys (ledger.key_digests): a miss must prove absence, a hit must
name every partition that holds the value, a collision must be a candidate (confirmed by the
database, never dropped), and nothing may change when the buckets split."""

from __future__ import annotations

import random

import pytest

from ledger import key_digests
from ledger.key_digests import DIGEST_MASK, MAX_PARTITION, StoredKeyDigests


class Chosen(str):
    """A value whose digest the test chooses (str's hash is otherwise keyed by a secret)."""

    def __new__(cls, text: str, digest: int) -> "Chosen":
        value = super().__new__(cls, text)
        value.digest = digest
        return value

    def __hash__(self) -> int:
        return self.digest if self.digest < 1 << 63 else self.digest - (1 << 64)

    def __eq__(self, other: object) -> bool:
        return str.__eq__(self, other)


def test_stored_values_name_their_partitions_and_absent_ones_nothing():
    rng = random.Random(7)
    digests = StoredKeyDigests()
    stored: dict[str, list[int]] = {}
    for i in range(5_000):
        value, partition = f"a-{rng.getrandbits(40)}", rng.randrange(MAX_PARTITION + 1)
        digests.add(value, partition)
        stored.setdefault(value, []).append(partition)
    absent = [f"b-{i}" for i in range(5_000)]
    assert len(digests) == 5_000
    for value, partitions in stored.items():
        assert sorted(digests.partitions_of(value)) == sorted(partitions)
    assert all(digests.partitions_of(value) == [] for value in absent)
    candidates = digests.candidates([*stored, *absent])
    assert sorted(v for values in candidates.values() for v in values) == sorted(v for v, ps in stored.items() for _ in ps)
    for partition, values in candidates.items():
        assert all(partition in stored[v] for v in values)


def test_a_collision_is_a_candidate_in_the_stored_values_partition():
    digests = StoredKeyDigests()
    stored, colliding = Chosen("stored", 0x1234_5678_9ABC_DEF0), Chosen("never stored", 0x1234_5678_9ABC_DEF0)
    digests.add(stored, 41)
    assert digests.partitions_of(colliding) == [41]
    assert digests.candidates([colliding, Chosen("other", 0x1234_5678_9ABC_DEF1)]) == {41: ["never stored"]}


def test_a_match_across_two_entries_is_no_match():
    digests = StoredKeyDigests()
    top = 0xABCD << 48  # one bucket for all three
    first = 0x0000_1111_2222_3333
    digests.add(Chosen("first", top | first), 0x4455)
    digests.add(Chosen("second", top | 0x6666_7777_8888), 0x99AA)
    # The bytes of "first"'s entry from its third byte on: its digest's high 32 of 48 bits, then its partition.
    straddling = int.from_bytes(first.to_bytes(6, "little")[2:] + (0x4455).to_bytes(2, "little"), "little")
    assert digests.partitions_of(Chosen("straddling", top | straddling)) == []
    assert digests.candidates([Chosen("straddling", top | straddling)]) == {}


def test_buckets_split_as_the_set_grows_and_every_value_keeps_its_partitions(monkeypatch):
    monkeypatch.setattr(key_digests, "MEAN_BUCKET_ENTRIES", 1)  # split past 2 entries a bucket: 131,072
    digests = StoredKeyDigests()
    values = [f"v-{i}" for i in range(300_000)]
    for partition in range(3):
        digests.add_many(values[partition::3], partition)
    assert digests._bits == key_digests.MIN_BUCKET_BITS + 2
    assert len(digests) == len(values)
    for i in range(0, len(values), 97):
        assert digests.partitions_of(values[i]) == [i % 3]
    assert digests.candidates([f"w-{i}" for i in range(10_000)]) == {}


def test_sizing_from_the_expected_entries_and_limits():
    assert StoredKeyDigests()._bits == key_digests.MIN_BUCKET_BITS
    assert StoredKeyDigests(expected_entries=10**8)._bits == 21  # 2^21 buckets of about 48 entries
    assert StoredKeyDigests(expected_entries=10**12)._bits == key_digests.MAX_BUCKET_BITS
    digests = StoredKeyDigests()
    for partition in (-1, MAX_PARTITION + 1):
        with pytest.raises(ValueError, match="partition"):
            digests.add("x", partition)
    assert len(digests) == 0
    digests.add(Chosen("max", DIGEST_MASK), MAX_PARTITION)
    assert digests.partitions_of(Chosen("max", DIGEST_MASK)) == [MAX_PARTITION]
