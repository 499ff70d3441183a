"""Global uniqueness of activity ids and fingerprints (DUPLICATE_ID, DUPLICATE_ACTIVITY), exactly
and in bounded memory, at any number of records.

A run replays the log in order and judges each batch's records against the repeats it knows of
(a RepeatJudge, empty on the first pass). Meanwhile every digested record's keyed 64-bit digests
(digests.py) are kept per kind in PARTITIONS partitions by hash prefix, split so by the worker that
computed them (split_digests): 8 bytes a digest and 2 for its place in its chunk, in reading order,
in memory up to a share of --memory-limit, then appended to files. After the log the workers
search each partition for digests seen twice (one too large for the limit is split into parts
first, on a worker too),
and every hit is confirmed against the full values by re-reading just those records
(confirmed): a digest collision is then dropped, and a real repeat kept with all its
occurrences. If those real repeats would have changed any batch's judgement of the pass, the log
is replayed again with a judge that knows them (bundle.py); since each pass's judge knows every
repeat among the records the pass read, the second pass is exact and a third is needed only when
it read files the first did not. A log without any repeat (the normal case) is read once.

The judge's state and the confirmed groups hold repeats only: a log made of repeats holds them
all in memory (documented in docs/scale.md).
"""

import os
import re
import sys
import tempfile
from array import array
from bisect import bisect_right
from collections import deque
from dataclasses import dataclass, field
from itertools import accumulate, chain
from operator import itemgetter
from typing import NamedTuple

from verifier.digests import DigestSet, digests_to_array, table_bits_for
from verifier.reader import MAX_RECORD_BYTES, LineReader

KINDS = ("activity_id", "fingerprint")
DIGEST_BYTES = 8
PLACE_BYTES = 2  # a digest's place in its chunk, array('H')
MAX_CHUNK_DIGESTS = (1 << (8 * PLACE_BYTES)) - 1  # places and a chunk's count in a partition are array('H')
COUNT_BYTES = 2
# Workers split each chunk's digests by their top bits (split_digests): the main process appends
# each partition's share of a chunk to it, and the partitions are searched on the workers. With 64,
# a partition at 10^8 records is 1.6·10^6 digests (62 MB of search table), within the share of a
# 1 GiB limit on 8 processes; a larger one is split again by its next bits before it is searched.
PARTITION_BITS = 6
PARTITIONS = 1 << PARTITION_BITS
_TOP_BYTE = DIGEST_BYTES - 1 if sys.byteorder == "little" else 0  # of a digest in native order
_PARTITION_OF_TOP_BYTE = bytes(byte >> (8 - PARTITION_BITS) for byte in range(256))
# Bytes of memory a digest takes while its partition is searched: itself as read and as array('q'),
# and its slot in a DigestSet at up to 70 % load (worst case, just after growth: 23).
SEARCH_BYTES_PER_DIGEST = 2 * DIGEST_BYTES + 24
READ_BLOCK_DIGESTS = 1 << 20
MAX_PARTITION_BITS = 16
MIN_MEMORY_LIMIT = 64 << 10
MAX_PASSES = 8  # each pass after the first reads at least one more file than any before it
# Both formats' records begin with these two fields (the frame of a digested record matched).
_ID_AND_FINGERPRINT = re.compile(rb'\{"activity_id":"([^"]*)","fingerprint":"([0-9a-f]{64})"')


def parse_size(text):
    """Bytes from '512M', '1G', '64K', '1.5G' or a number of bytes; ValueError if not a size."""
    units = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
    match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([KMGT]?)(?:I?B)?\s*", text.upper())
    if match is None:
        raise ValueError(f"{text!r} is not a size such as 512M or 1G")
    return int(float(match.group(1)) * units[match.group(2)])


def default_memory_limit():
    """Half the machine's physical memory: the rest is for the replayed state, the workers and others."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 2
    except (ValueError, OSError, AttributeError):
        return 4 << 30


def digest_array(packed):
    """Digests packed by `pack_texts` as array('q'), 0 and -1 (DigestSet's empty and removed
    slots, probability 2^-63 per digest) moved to 1: a moved digest only adds a candidate."""
    values = digests_to_array(packed)
    # The byte search is a fast first sieve; it may also hit a run across two digests (harmless).
    if packed.find(b"\x00" * 8) >= 0 or packed.find(b"\xff" * 8) >= 0:
        values = array("q", (value if value not in (0, -1) else 1 for value in values))
    return values


class Occurrence(NamedTuple):
    """A digested record: line `line` of the activity file the pass read as its read number `read`."""

    read: int
    line: int


@dataclass(slots=True)
class ReadSummary:
    """One reading of an activity file by a pass: what the judge said and what became of it."""

    batch_id: str
    first_repeats: dict = field(default_factory=dict)  # kind -> the judge's first repeated line, or None
    accepted: bool = False


class RepeatJudge:
    """Which records repeat an id or fingerprint, given the real repeats ({(kind, value):
    {(batch_id, line), ...}}, see Uniqueness.file_groups); the records of no group repeat nothing. Fed each read's
    digested group members in line order, it gives the first repeat of each kind as the in-memory
    set of every value would: a value repeats if seen earlier in this read or in an accepted one."""

    def __init__(self, groups=None):
        # kind -> batch_id -> {line: group number}
        self._members = {kind: {} for kind in KINDS}
        for number, ((kind, _), members) in enumerate((groups or {}).items()):
            for batch_id, line in members:
                self._members[kind].setdefault(batch_id, {})[line] = number
        self._registered = {kind: set() for kind in KINDS}
        self._seen = {kind: set() for kind in KINDS}
        self._lines = {kind: {} for kind in KINDS}
        self.first_repeats = {kind: None for kind in KINDS}

    def begin(self, batch_id):
        for kind in KINDS:
            self._lines[kind] = self._members[kind].get(batch_id, {})
            self._seen[kind] = set()
            self.first_repeats[kind] = None

    def observe_chunk(self, first_number, count, undigested):
        """The chunk of records first_number .. first_number + count - 1 was read; `undigested`
        lists those that were malformed (they have no id to repeat)."""
        end = first_number + count
        for kind in KINDS:
            lines = self._lines[kind]
            if lines:
                for line in sorted(line for line in lines if first_number <= line < end and line not in undigested):
                    self.observe(kind, line)

    def observe(self, kind, line):
        group = self._lines[kind][line]
        seen = self._seen[kind]
        if self.first_repeats[kind] is None and (group in seen or group in self._registered[kind]):
            self.first_repeats[kind] = line
        seen.add(group)

    def end(self, accepted):
        if accepted:
            for kind in KINDS:
                self._registered[kind] |= self._seen[kind]


class SplitDigests(NamedTuple):
    """A chunk's digests of one kind split by partition (split_digests), as a worker returns them."""

    digests: bytes  # 8 bytes each, partition 0's first, each partition's in reading order
    places: bytes  # array('H'): each digest's place among the chunk's digests (its reading order)
    counts: bytes  # array('H'): how many digests each of the PARTITIONS partitions has


def split_digests(packed):
    """The digests packed by `pack_texts` (a chunk's, at most MAX_CHUNK_DIGESTS) split by their
    top PARTITION_BITS bits: run by the worker that computed them, so that the main process only
    appends each partition's share to its partition (Uniqueness.add_chunk)."""
    values = digest_array(packed)
    if len(values) > MAX_CHUNK_DIGESTS:
        raise RuntimeError(f"a chunk of more than {MAX_CHUNK_DIGESTS} digests")
    parts = [[] for _ in range(PARTITIONS)]
    appends = [part.append for part in parts]
    # Each digest's partition from its most significant byte, all at once in C: the one Python step
    # a digest is the append (0.14 µs a digest where the shift and mask of each cost 0.23).
    for place, partition in enumerate(values.tobytes()[_TOP_BYTE::DIGEST_BYTES].translate(_PARTITION_OF_TOP_BYTE)):
        appends[partition](place)
    order = list(chain.from_iterable(parts))
    digests = itemgetter(*order)(values) if len(order) > 1 else values[: len(order)]  # itemgetter of one is no tuple
    return SplitDigests(array("q", digests).tobytes(), array("H", order).tobytes(), array("H", map(len, parts)).tobytes())


def with_split_digests(check_chunk):
    """A chunk job (either format's) whose result carries its id and fingerprint digests split by
    partition: results are (count, total_g, subtrees, id digests, fingerprint digests, ...)."""

    def check(job):
        result = check_chunk(job)
        fields = (*result[:3], split_digests(result[3]), split_digests(result[4]), *result[5:])
        return result._make(fields) if hasattr(result, "_make") else fields

    return check


class SearchJob(NamedTuple):
    """A partition's digests to search for repeats (the "partition" job): in a file or here."""

    path: object  # the digests' file, or None
    packed: bytes  # the digests when there is no file


def repeated_in_partition(job):
    """(digest, index in the partition) of every digest of a partition that occurs twice or more
    in it; run on a worker or here."""
    packed = job.packed
    if job.path is not None:
        with open(job.path, "rb") as handle:
            packed = handle.read()
    return _repeated(digests_to_array(packed))


def _repeated(digests):
    """(digest, index) of each digest occurring twice or more."""
    table = DigestSet(table_bits_for(len(digests)))
    repeats = table.add_all(digests)
    if not repeats:
        return []
    repeated = {digests[index] for index in repeats}
    return [(digest, index) for index, digest in enumerate(digests) if digest in repeated]


class Partition:
    """The digests of one kind whose top PARTITION_BITS bits are `number`, in reading order, with
    each one's place in its chunk: in memory, then appended to two spill files once too many."""

    def __init__(self, kind, number):
        self.kind = kind
        self.number = number
        self.digests = bytearray()
        self.places = bytearray()
        self.spilled = 0  # digests in the files
        self.digests_path = self.places_path = None

    @property
    def count(self):
        return self.spilled + len(self.digests) // DIGEST_BYTES

    def spill(self, directory):
        """Append what is in memory to the files; returns the bytes written."""
        if not self.digests:
            return 0
        if self.digests_path is None:
            stem = os.path.join(directory, f"{self.kind}.{self.number}")
            self.digests_path, self.places_path = stem + ".digests", stem + ".places"
        written = 0
        for path, buffer in ((self.digests_path, self.digests), (self.places_path, self.places)):
            with open(path, "ab") as handle:
                handle.write(buffer)
            written += len(buffer)
        self.spilled += len(self.digests) // DIGEST_BYTES
        self.digests, self.places = bytearray(), bytearray()
        return written

    def place(self, index):
        """The place in its chunk of the partition's digest number `index`."""
        if index >= self.spilled:
            start = (index - self.spilled) * PLACE_BYTES
            return int.from_bytes(self.places[start : start + PLACE_BYTES], sys.byteorder)
        return _int_at(self.places_path, index, PLACE_BYTES)

    def remove_files(self):
        """Delete the spill files; returns the bytes they held."""
        freed = 0
        for path in (self.digests_path, self.places_path):
            if path is not None:
                freed += os.path.getsize(path)
                os.remove(path)
        self.digests_path = self.places_path = None
        return freed


class PartFiles(NamedTuple):
    """A part of a partition too large to search at once: its digests, and each one's index in the partition."""

    digests_path: str
    indexes_path: str


class PartsJob(NamedTuple):
    """A partition's file to split into 2^bits parts by the digests' next bits (the "partition_parts" job)."""

    digests_path: str
    bits: int
    flush_digests: int  # digests held before they are appended to the parts: the worker's share of the limit


def split_partition(job):
    """[PartFiles] of a partition's parts, written beside its file (run on a worker or here)."""
    count = 1 << job.bits
    shift = 64 - PARTITION_BITS - job.bits
    mask = count - 1
    stem = job.digests_path.removesuffix(".digests")
    parts = [PartFiles(f"{stem}.{part}.digests", f"{stem}.{part}.indexes") for part in range(count)]
    digest_parts = [array("q") for _ in range(count)]
    index_parts = [array("q") for _ in range(count)]

    def flush():
        for part, digests, indexes in zip(parts, digest_parts, index_parts):
            with open(part.digests_path, "ab") as handle:
                handle.write(digests.tobytes())
            with open(part.indexes_path, "ab") as handle:
                handle.write(indexes.tobytes())
            del digests[:], indexes[:]

    index = buffered = 0
    with open(job.digests_path, "rb") as handle:
        while data := handle.read(READ_BLOCK_DIGESTS * DIGEST_BYTES):
            for digest in digests_to_array(data):
                part = (digest >> shift) & mask
                digest_parts[part].append(digest)
                index_parts[part].append(index)
                index += 1
                buffered += 1
                if buffered >= job.flush_digests:
                    flush()
                    buffered = 0
    flush()
    return parts


class _Search(NamedTuple):
    """A search submitted: its partition, or a part of it (PartFiles, removed once searched)."""

    partition: Partition
    part: object  # PartFiles or None


class Uniqueness:
    """The partitions of one pass, the map from chunks to records, and the search after it."""

    def __init__(self, memory_limit, spill_dir=None):
        self.memory_limit = memory_limit
        self.spill_parent = spill_dir
        self.partitions_of = {kind: [Partition(kind, number) for number in range(PARTITIONS)] for kind in KINDS}
        # Per chunk of digested records and kind, its digests in each partition (chunk-major): in
        # memory, then appended to a file with the partitions (128 bytes a chunk of each kind).
        self._chunk_counts = {kind: array("H") for kind in KINDS}
        self._counts_paths = dict.fromkeys(KINDS)
        self.reads = []  # ReadSummary per reading of an activity file, in log order
        # One entry per chunk of digested records: where its digests start in reading order.
        self._chunk_starts = array("q")
        self._chunk_reads = array("q")
        self._chunk_first_numbers = array("q")
        self._chunk_undigested = {}  # chunk index -> its malformed records' numbers (rarely any)
        self._digest_count = 0  # of each kind (every digested record has both)
        self._buffered_bytes = 0
        self._directory = None
        self.spill_bytes = 0  # on disk now
        self.spill_bytes_peak = 0
        self.partitions = PARTITIONS  # the most searched for one kind
        self.partitions_spilled = 0  # searches that read their digests from disk
        self.digests_hit = 0  # digests seen twice or more, before confirmation

    # -- during the pass -------------------------------------------------------------------------

    def begin_read(self, batch_id):
        self.reads.append(ReadSummary(batch_id))

    def end_read(self, first_repeats, accepted):
        summary = self.reads[-1]
        summary.first_repeats = dict(first_repeats)
        summary.accepted = accepted

    def add_chunk(self, first_number, undigested, ids, fingerprints):
        """A chunk's digests (SplitDigests of the same records in both kinds)."""
        count = len(ids.digests) // DIGEST_BYTES
        if count != len(fingerprints.digests) // DIGEST_BYTES:
            raise RuntimeError("a chunk's id and fingerprint digests differ in number")
        if not count:
            return
        index = len(self._chunk_starts)
        self._chunk_starts.append(self._digest_count)
        self._chunk_reads.append(len(self.reads) - 1)
        self._chunk_first_numbers.append(first_number)
        if undigested:
            self._chunk_undigested[index] = tuple(undigested)
        self._digest_count += count
        for kind, split in (("activity_id", ids), ("fingerprint", fingerprints)):
            counts = self._chunk_counts[kind]
            first = len(counts)
            counts.frombytes(split.counts)
            digests, places = memoryview(split.digests), memoryview(split.places)
            start = 0
            for partition, size in zip(self.partitions_of[kind], counts[first:]):
                if size:
                    end = start + size
                    partition.digests += digests[start * DIGEST_BYTES : end * DIGEST_BYTES]
                    partition.places += places[start * PLACE_BYTES : end * PLACE_BYTES]
                    start = end
        self._buffered_bytes += 2 * (count * (DIGEST_BYTES + PLACE_BYTES) + PARTITIONS * COUNT_BYTES)
        if self._buffered_bytes > self.memory_limit // 4:
            directory = self.spill_directory()
            for kind, partitions in self.partitions_of.items():
                for partition in partitions:
                    self._count_spilled(partition.spill(directory))
                self._counts_paths[kind] = os.path.join(directory, f"{kind}.counts")
                with open(self._counts_paths[kind], "ab") as handle:
                    handle.write(self._chunk_counts[kind].tobytes())
                self._count_spilled(len(self._chunk_counts[kind]) * COUNT_BYTES)
                self._chunk_counts[kind] = array("H")
            self._buffered_bytes = 0

    def spill_directory(self):
        """The pass's directory of spill files (subjects.py's too), made when first needed; close() removes it."""
        if self._directory is None:
            self._directory = tempfile.mkdtemp(prefix="puhui-verify-", dir=self.spill_parent)
        return self._directory

    def _count_spilled(self, written):
        self.spill_bytes += written
        self.spill_bytes_peak = max(self.spill_bytes_peak, self.spill_bytes)

    def close(self):
        """Remove the spill files."""
        if self._directory is not None:
            for name in os.listdir(self._directory):
                os.remove(os.path.join(self._directory, name))
            os.rmdir(self._directory)
            self._directory = None
            self.spill_bytes = 0

    # -- after the pass --------------------------------------------------------------------------

    def search_share(self, runner):
        """The memory one process may use to search digests after the log (this one's, or subjects.py's):
        its share of half the limit, the runner's processes searching at once."""
        return max(1, self.memory_limit // 2 // (runner.workers + 1))

    def candidates(self, runner):
        """kind -> {digest: [position in reading order, ...]} of every digest seen twice or more.
        The partitions are searched by the runner's workers (and the main process when they are
        full), each within its share of half the limit: as many at once as the runner has
        processes; a partition too large for its share is first split into parts, on a worker too."""
        share = self.search_share(runner)
        found = {kind: {} for kind in KINDS}
        searches = dict.fromkeys(KINDS, 0)
        searching, splitting = deque(), deque()

        def search(submitted, job):
            searches[submitted.partition.kind] += 1
            searching.append((submitted, runner.submit("partition", job)))
            while len(searching) > runner.lookahead:
                self._take(found, runner, *searching.popleft())

        def search_parts(partition, ticket):
            parts = runner.result(ticket)
            self._count_spilled(sum(os.path.getsize(path) for part in parts for path in part))
            # The places stay (repeats are mapped back through them); the digests are in the parts.
            self.spill_bytes -= os.path.getsize(partition.digests_path)
            os.remove(partition.digests_path)
            partition.digests_path = None
            for part in parts:
                self.partitions_spilled += 1
                search(_Search(partition, part), SearchJob(part.digests_path, b""))

        for kind in KINDS:
            for partition in self.partitions_of[kind]:
                if partition.count * SEARCH_BYTES_PER_DIGEST <= share:
                    search(*self._whole_search(partition))
                    continue
                bits = 1
                while partition.count * SEARCH_BYTES_PER_DIGEST > share << bits and bits < MAX_PARTITION_BITS - PARTITION_BITS:
                    bits += 1
                self._count_spilled(partition.spill(self.spill_directory()))
                splitting.append((partition, runner.submit("partition_parts", PartsJob(partition.digests_path, bits, max(1, share // (2 * DIGEST_BYTES))))))
                while len(splitting) > runner.lookahead:
                    search_parts(*splitting.popleft())
        while splitting:
            search_parts(*splitting.popleft())
        while searching:
            self._take(found, runner, *searching.popleft())
        self.partitions = max(self.partitions, *searches.values())
        for kind in KINDS:
            for partition in self.partitions_of[kind]:
                self.spill_bytes -= partition.remove_files()
            if self._counts_paths[kind] is not None:
                self.spill_bytes -= os.path.getsize(self._counts_paths[kind])
                os.remove(self._counts_paths[kind])
                self._counts_paths[kind] = None
            self.digests_hit += len(found[kind])
        return found

    def _whole_search(self, partition):
        """(_Search, SearchJob) of a partition searched whole: its digests sent, or its file named."""
        if partition.digests_path is None:
            packed, partition.digests = bytes(partition.digests), bytearray()
            return _Search(partition, None), SearchJob(None, packed)
        self._count_spilled(partition.spill(self.spill_directory()))
        self.partitions_spilled += 1
        return _Search(partition, None), SearchJob(partition.digests_path, b"")

    def _take(self, found, runner, search, ticket):
        """Add a search's repeated digests to found, each at its position in reading order."""
        by_digest = found[search.partition.kind]
        repeated = runner.result(ticket)
        ends = self._chunk_ends(search.partition) if repeated else None
        for digest, index in repeated:
            if search.part is not None:
                index = _int_at(search.part.indexes_path, index, DIGEST_BYTES)
            chunk = bisect_right(ends, index)
            by_digest.setdefault(digest, []).append(self._chunk_starts[chunk] + search.partition.place(index))
        for path in search.part or ():
            self.spill_bytes -= os.path.getsize(path)
            os.remove(path)

    def _chunk_ends(self, partition):
        """array('q'): for each chunk, how many of the partition's digests it and the chunks before hold."""
        column = array("H")
        path = self._counts_paths[partition.kind]
        if path is not None:
            with open(path, "rb") as handle:
                while data := handle.read(READ_BLOCK_DIGESTS * COUNT_BYTES):  # whole chunks: a multiple of PARTITIONS
                    counts = array("H")
                    counts.frombytes(data)
                    column.extend(counts[partition.number :: PARTITIONS])
        column.extend(self._chunk_counts[partition.kind][partition.number :: PARTITIONS])
        return array("q", accumulate(column))

    def occurrence_of(self, position):
        """The (read, line) of the digest at a stream position."""
        chunk = bisect_right(self._chunk_starts, position) - 1
        line = self._chunk_first_numbers[chunk] + position - self._chunk_starts[chunk]
        for skipped in self._chunk_undigested.get(chunk, ()):
            if skipped <= line:
                line += 1
        return Occurrence(self._chunk_reads[chunk], line)

    def confirmed(self, candidates, activities_dir):
        """{(kind, value): [(read, line), ...]} for each value digested twice or more, confirmed on
        the records' full values (a digest collision is dropped)."""
        wanted = {}  # batch_id -> lines whose values are needed
        located = []
        for kind, by_digest in candidates.items():
            for positions in by_digest.values():
                occurrences = [self.occurrence_of(position) for position in positions]
                located.append((kind, occurrences))
                for read, line in occurrences:
                    wanted.setdefault(self.reads[read].batch_id, set()).add(line)
        values = {batch_id: _values_on_lines(os.path.join(activities_dir, batch_id + ".jsonl"), lines) for batch_id, lines in wanted.items()}
        by_value = {}
        for kind, occurrences in located:
            index = KINDS.index(kind)
            for read, line in occurrences:
                value = values[self.reads[read].batch_id][line][index]
                by_value.setdefault((kind, value), []).append(Occurrence(read, line))
        return {key: sorted(occurrences) for key, occurrences in by_value.items() if len(occurrences) > 1}

    def file_groups(self, confirmed):
        """{(kind, value): {(batch_id, line), ...}}: the confirmed repeats as records of files."""
        return {key: {(self.reads[read].batch_id, line) for read, line in occurrences} for key, occurrences in confirmed.items()}

    def judged_right(self, confirmed):
        """Whether every read of this pass was judged as a judge knowing the confirmed repeats
        would judge it (in log order, with the acceptances the pass made)."""
        judge = RepeatJudge(self.file_groups(confirmed))
        lines_of_read = {}  # read -> kind -> lines
        for (kind, _), occurrences in confirmed.items():
            for read, line in occurrences:
                lines_of_read.setdefault(read, {kind: [] for kind in KINDS})[kind].append(line)
        for read, summary in enumerate(self.reads):
            judge.begin(summary.batch_id)
            for kind, lines in lines_of_read.get(read, {}).items():
                for line in sorted(lines):
                    judge.observe(kind, line)
            if judge.first_repeats != summary.first_repeats:
                return False
            judge.end(summary.accepted)
        return True


def _int_at(path, index, size):
    """The unsigned integer number `index` of a file of `size`-byte integers (native order)."""
    with open(path, "rb") as handle:
        handle.seek(index * size)
        return int.from_bytes(handle.read(size), sys.byteorder)


def _values_on_lines(path, lines):
    """{line: (activity_id, fingerprint)} of the wanted lines of an activity file."""
    wanted = set(lines)
    last = max(wanted)
    values = {}
    number = 0
    for block in LineReader(path, "activity file", MAX_RECORD_BYTES, require_final_newline=False).blocks():
        for raw in block:
            number += 1
            if number in wanted:
                match = _ID_AND_FINGERPRINT.match(raw)
                if match is None:
                    raise RuntimeError(f"{path} line {number} changed while it was verified")
                values[number] = (match.group(1).decode("utf-8"), match.group(2).decode("ascii"))
        if number >= last:
            break
    if len(values) != len(wanted):
        raise RuntimeError(f"{path} is shorter than when it was verified")
    return values
