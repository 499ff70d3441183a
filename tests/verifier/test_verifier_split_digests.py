"""Workers return each chunk's digests split by partition (uniqueness.split_digests), so that the
main process only appends them; the search after the log, on the workers, finds every repeated
digest at its position in reading order, in memory, spilled, and with partitions split again."""

import random
from array import array

import pytest
from test_verifier_activities import records

from verifier import records_v2
from verifier.activities import check_record_chunk
from verifier.digests import Blake2bDigester
from verifier.parallel import JOBS, InlineRunner
from verifier.uniqueness import KINDS, PARTITION_BITS, PARTITIONS, SplitDigests, Uniqueness, split_digests


def packed(values):
    return array("q", values).tobytes()


def unpacked(data, code="q"):
    values = array(code)
    values.frombytes(data)
    return list(values)


@pytest.mark.parametrize("count", [0, 1, 3000])
def test_a_chunks_digests_are_split_by_their_top_bits_in_reading_order(count):
    rng = random.Random(7)
    values = ([rng.getrandbits(64) - (1 << 63) for _ in range(count)] + [0, -1, 5])[-count:] if count else []
    split = split_digests(packed(values))
    digests, places, counts = unpacked(split.digests), unpacked(split.places, "H"), unpacked(split.counts, "H")
    assert len(counts) == PARTITIONS and sum(counts) == len(values) == len(digests) == len(places)
    moved = [value if value not in (0, -1) else 1 for value in values]  # the search's empty and removed marks
    assert [moved[place] for place in places] == digests
    start = 0
    for partition, count in enumerate(counts):
        part = range(start, start + count)
        assert all((digests[i] >> (64 - PARTITION_BITS)) & (PARTITIONS - 1) == partition for i in part)
        assert [places[i] for i in part] == sorted(places[i] for i in part)  # reading order within a partition
        start += count


@pytest.mark.parametrize("kind", ["records", "records_v2"])
def test_the_workers_chunk_jobs_return_split_digests(kind):
    digester = Blake2bDigester(b"k" * 32)
    if kind == "records":
        job = ("2026-03-01", "2026-03-31", digester, 1, b"\n".join(records("s", 100)))
        plain = check_record_chunk(job)
    else:
        job = ("2026-03-01", "2026-03-31", digester, 1, b"\n".join(records("s", 3)), None)
        plain = records_v2.check_record_chunk(job)
    result = JOBS[kind](job)
    assert type(result) is type(plain) and len(result) == len(plain)
    assert result[3] == split_digests(plain[3]) and result[4] == split_digests(plain[4])
    assert isinstance(result[3], SplitDigests) and (kind == "records_v2" or len(result[3].digests) == 800)
    assert result[:3] == plain[:3] and result[5:] == plain[5:]


def planted_chunks(rng, chunks, per_chunk):
    """Chunks of random digests of both kinds, some repeated within a chunk and across chunks."""
    made = []
    for c in range(chunks):
        chunk = {}
        for kind in KINDS:
            values = [rng.getrandbits(64) - (1 << 63) or 1 for _ in range(per_chunk)]
            for _ in range(5):  # repeats of earlier digests, of this chunk or of another
                earlier = [v for chunk_of in made for v in chunk_of[kind]] + values
                values[rng.randrange(per_chunk)] = rng.choice(earlier)
            chunk[kind] = [v if v != -1 else 1 for v in values]
        made.append(chunk)
    return made


@pytest.mark.parametrize("memory_limit, spilled, split_again", [(1 << 30, False, False), (256 << 10, True, False), (4 << 10, True, True)])
def test_the_search_finds_every_repeat_at_its_position(tmp_path, memory_limit, spilled, split_again):
    chunks = planted_chunks(random.Random(11), 10, 2000)
    uniqueness = Uniqueness(memory_limit, str(tmp_path))
    expected = {kind: {} for kind in KINDS}
    position = 0
    for number, chunk in enumerate(chunks):
        uniqueness.begin_read(f"b{number}")
        uniqueness.add_chunk(1, [], split_digests(packed(chunk["activity_id"])), split_digests(packed(chunk["fingerprint"])))
        for kind in KINDS:
            for offset, value in enumerate(chunk[kind]):
                expected[kind].setdefault(value, []).append(position + offset)
        uniqueness.end_read({kind: None for kind in KINDS}, True)
        position += len(chunk["activity_id"])
    expected = {kind: {value: at for value, at in found.items() if len(at) > 1} for kind, found in expected.items()}
    try:
        found = uniqueness.candidates(InlineRunner())
        assert {kind: {value: sorted(at) for value, at in by_digest.items()} for kind, by_digest in found.items()} == expected
        assert all(len(by_digest) >= 5 for by_digest in expected.values())
        assert (uniqueness.spill_bytes_peak > 0) == spilled and (uniqueness.partitions_spilled >= 2 * PARTITIONS) == spilled
        assert (uniqueness.partitions > PARTITIONS) == split_again
        assert uniqueness.spill_bytes == 0
        first = uniqueness.occurrence_of(expected["fingerprint"][next(iter(expected["fingerprint"]))][0])
        assert first.line >= 1 and 0 <= first.read < len(chunks)
    finally:
        uniqueness.close()
    assert list(tmp_path.iterdir()) == []
