"""Global uniqueness of activity ids and fingerprints (DUPLICATE_ID, DUPLICATE_ACTIVITY), exactly
and in bounded memory, at any number of records.

A run replays the log in order and judges each batch's records against the repeats it knows of
(a RepeatJudge, empty on the first pass). Meanwhile every digested record's keyed 64-bit digests
(digests.py) are written, in reading order, to one stream per kind (DigestStream): 8 bytes a
digest, in memory up to a share of --memory-limit, then spilled to a file. After the log, each
stream is searched for digests seen twice, in partitions by hash prefix small enough for the
limit, and every hit is confirmed against the full values by re-reading just those records
(confirmed_groups): a digest collision is then dropped, and a real repeat kept with all its
occurrences. If those real repeats would have changed any batch's judgement of the pass, the log
is replayed again with a judge that knows them (bundle.py); since each pass's judge knows every
repeat among the records the pass read, the second pass is exact and a third is needed only when
it read files the first did not. A log without any repeat (the normal case) is read once.

The judge's state and the confirmed groups hold repeats only: a log made of repeats holds them
all in memory (documented in docs/scale.md).
"""

import os
import re
import tempfile
from array import array
from bisect import bisect_right
from dataclasses import dataclass, field
from typing import NamedTuple

from verifier.digests import DigestSet, digests_to_array, table_bits_for
from verifier.reader import MAX_RECORD_BYTES, LineReader

KINDS = ("activity_id", "fingerprint")
DIGEST_BYTES = 8
# Bytes of memory a digest takes while its partition is searched: itself and its position
# (array('q') each) and its slot in a DigestSet at up to 70 % load (worst case, just after growth: 23).
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


class DigestStream:
    """The digests of one kind in reading order: in memory, or in a spill file once too many."""

    def __init__(self, kind):
        self.kind = kind
        self.count = 0
        self.buffer = bytearray()
        self.path = None  # the spill file, once written

    def append(self, packed):
        self.buffer += packed
        self.count += len(packed) // DIGEST_BYTES

    def spill(self, directory):
        if self.path is None:
            self.path = os.path.join(directory, f"{self.kind}.digests")
        with open(self.path, "ab") as handle:
            handle.write(self.buffer)
        written = len(self.buffer)
        self.buffer = bytearray()
        return written

    def blocks(self):
        """(position of the first, array('q') of digests) in reading order, a block at a time."""
        position = 0
        if self.path is not None:
            with open(self.path, "rb") as handle:
                while True:
                    data = handle.read(READ_BLOCK_DIGESTS * DIGEST_BYTES)
                    if not data:
                        break
                    yield position, digest_array(data)
                    position += len(data) // DIGEST_BYTES
        if self.buffer:
            yield position, digest_array(self.buffer)


def repeated_in_partition(job):
    """(digest, position) of every digest of a partition that occurs twice or more in it. job =
    (digests path, positions path); run in a worker or here."""
    digests_path, positions_path = job
    digests, positions = array("q"), array("q")
    with open(digests_path, "rb") as handle:
        digests.frombytes(handle.read())
    with open(positions_path, "rb") as handle:
        positions.frombytes(handle.read())
    return _repeated(digests, positions)


def _repeated(digests, positions=None):
    """(digest, position) of each digest occurring twice or more (positions default to the index)."""
    table = DigestSet(table_bits_for(len(digests)))
    repeats = table.add_all(digests)
    if not repeats:
        return []
    repeated = {digests[position] for position in repeats}
    if positions is None:
        return [(digest, position) for position, digest in enumerate(digests) if digest in repeated]
    return [(digest, positions[index]) for index, digest in enumerate(digests) if digest in repeated]


class Uniqueness:
    """The streams of one pass, the map from stream positions to records, and the search after it."""

    def __init__(self, memory_limit, spill_dir=None):
        self.memory_limit = memory_limit
        self.spill_parent = spill_dir
        self.streams = {kind: DigestStream(kind) for kind in KINDS}
        self.reads = []  # ReadSummary per reading of an activity file, in log order
        # One entry per chunk of digested records: where its digests start in the streams.
        self._chunk_starts = array("q")
        self._chunk_reads = array("q")
        self._chunk_first_numbers = array("q")
        self._chunk_undigested = {}  # chunk index -> its malformed records' numbers (rarely any)
        self._directory = None
        self.spill_bytes = 0  # on disk now
        self.spill_bytes_peak = 0
        self.partitions = 1
        self.digests_hit = 0  # digests seen twice or more, before confirmation

    # -- during the pass -------------------------------------------------------------------------

    def begin_read(self, batch_id):
        self.reads.append(ReadSummary(batch_id))

    def end_read(self, first_repeats, accepted):
        summary = self.reads[-1]
        summary.first_repeats = dict(first_repeats)
        summary.accepted = accepted

    def add_chunk(self, first_number, undigested, ids_packed, fingerprints_packed):
        """A chunk's digests (the same records in both), in reading order."""
        streams = self.streams
        if len(ids_packed) != len(fingerprints_packed):
            raise RuntimeError("a chunk's id and fingerprint digests differ in number")
        if ids_packed:
            index = len(self._chunk_starts)
            self._chunk_starts.append(streams["activity_id"].count)
            self._chunk_reads.append(len(self.reads) - 1)
            self._chunk_first_numbers.append(first_number)
            if undigested:
                self._chunk_undigested[index] = tuple(undigested)
            streams["activity_id"].append(ids_packed)
            streams["fingerprint"].append(fingerprints_packed)
            if self._buffered_bytes() > self.memory_limit // 4:
                for stream in streams.values():
                    self._count_spilled(stream.spill(self._spill_directory()))

    def _buffered_bytes(self):
        return sum(len(stream.buffer) for stream in self.streams.values())

    def _spill_directory(self):
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

    def candidates(self, runner):
        """kind -> {digest: [stream position, ...]} of every digest seen twice or more. Spilled
        partitions are searched by the runner's workers, as many at once as it has processes."""
        found = {}
        for kind, stream in self.streams.items():
            pairs = self._repeated_of_stream(stream, runner, runner.workers + 1)
            by_digest = {}
            for digest, position in pairs:
                by_digest.setdefault(digest, []).append(position)
            found[kind] = by_digest
            self.digests_hit += len(by_digest)
        return found

    def _repeated_of_stream(self, stream, runner, at_once):
        if stream.path is None and stream.count * SEARCH_BYTES_PER_DIGEST <= self.memory_limit // 2:
            digests = digest_array(stream.buffer)
            stream.buffer = bytearray()
            return _repeated(digests)
        # Each of the partitions searched at once gets its share of half the limit.
        share = max(1, self.memory_limit // 2 // at_once)
        bits = 1
        while stream.count * SEARCH_BYTES_PER_DIGEST > share << bits and bits < MAX_PARTITION_BITS:
            bits += 1
        self.partitions = max(self.partitions, 1 << bits)
        paths = self._write_partitions(stream, bits)
        # Partitions are independent: the runner's workers (or a Dask cluster) search them.
        tickets = [runner.submit("partition", pair) for pair in paths]
        found = []
        for ticket in tickets:
            found.extend(runner.result(ticket))
        for digests_path, positions_path in paths:
            for path in (digests_path, positions_path):
                self.spill_bytes -= os.path.getsize(path)
                os.remove(path)
        return found

    def _write_partitions(self, stream, bits):
        """Split a stream by the digests' top `bits` bits into files of (digests, positions)."""
        count = 1 << bits
        shift = 64 - bits
        mask = count - 1
        directory = self._spill_directory()
        paths = [(os.path.join(directory, f"{stream.kind}.{p}.digests"), os.path.join(directory, f"{stream.kind}.{p}.positions")) for p in range(count)]
        digest_parts = [array("q") for _ in range(count)]
        position_parts = [array("q") for _ in range(count)]
        flush_at = max(1, self.memory_limit // 4 // (2 * DIGEST_BYTES))
        buffered = 0

        def flush():
            for (digests_path, positions_path), digests, positions in zip(paths, digest_parts, position_parts):
                with open(digests_path, "ab") as handle:
                    handle.write(digests.tobytes())
                with open(positions_path, "ab") as handle:
                    handle.write(positions.tobytes())
                self._count_spilled(2 * len(digests) * DIGEST_BYTES)
                del digests[:], positions[:]

        for start, digests in stream.blocks():
            position = start
            for digest in digests:
                part = (digest >> shift) & mask
                digest_parts[part].append(digest)
                position_parts[part].append(position)
                position += 1
                buffered += 1
                if buffered >= flush_at:
                    flush()
                    buffered = 0
        flush()
        if stream.path is not None:
            self.spill_bytes -= os.path.getsize(stream.path)
            os.remove(stream.path)
            stream.path = None
        stream.buffer = bytearray()
        return paths

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
