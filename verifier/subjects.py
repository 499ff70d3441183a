"""The subjects of a format-2 log's accepted batches (spec sections 7.2 and 7.3), followed across
the whole log within a share of --memory-limit.

Section 7.2's daily cap and section 7.3's PRIVACY need, for every subject of an accepted batch,
its occurred_on and the grams credited to it that day under each methodology_id. There is one
subject per person and day: millions at 10^7 records, billions in a province-year. KnownSubjects
keeps them in generations of an open-addressing table of 16-byte slots. A new generation begins
between two readings of activity files when the subjects of the readings since the current one
began (every reading's, accepted or not) would pass what an eighth of the limit holds; the
current one becomes the previous one, and the previous one is forgotten. A subject of the
previous generation that an accepted batch credits again moves to the current one, so the
subjects of the days being posted stay.

A forgotten subject met again would be judged as new, where an unbounded table would know it. So
every subject of every reading is written to a SubjectStream with the reading's number, and each
reading's generation is noted. After the log, if any generation was forgotten, the stream is
searched for digests of two readings or more (on the workers, with the jobs of uniqueness.py): a
subject whose readings span two generations could have been forgotten between them (at_risk).
The pass was exact if every such subject was pinned; else the log is replayed with them pinned:
kept in a table of their own that forgets nothing, so the next pass judges them as an unbounded
table does (subjects are known by their digests, as in an unbounded table: no confirmation on the
full values is needed for the two to agree). Where generations begin depends only on the files
read, not on which batches were accepted or which subjects pinned, so the second pass reading
the same files has every subject at risk pinned and is exact. A log whose subjects fit (10^7
records of the bench: 128 MiB) forgets nothing and is read once; its stream is dropped unsearched.
"""
import os
from array import array
from itertools import compress, repeat
from operator import is_

from verifier.uniqueness import SEARCH_BYTES_PER_DIGEST, PartsJob, SearchJob, _int_at, repeated_in_partition

SLOT_BYTES = 16  # a digest and its packed value
GENERATIONS = 2  # the current one and the previous one
MIN_TABLE_BITS = 10
READ_BYTES = 4
EMPTY_GRAMS = {}


class _Table:
    """One generation: linear probing over array('q') keys and values, 0 an empty slot, grown by
    doubling at 70% load; the grams of a subject's other methodology_ids in a dict beside
    (subject -> {methodology_id: grams})."""

    __slots__ = ("keys", "values", "mask", "count", "other_grams")

    def __init__(self, bits):
        self.keys = array("q", [0]) * (1 << bits)
        self.values = array("q", [0]) * (1 << bits)
        self.mask = (1 << bits) - 1
        self.count = 0
        self.other_grams = {}

    def room(self):
        """Subjects this table takes before it must grow."""
        return len(self.keys) * 7 // 10 - self.count

    def slot_of(self, subject):
        keys, mask = self.keys, self.mask
        slot = subject & mask
        key = keys[slot]
        while key != subject:
            if key == 0:
                return -1
            slot = (slot + 1) & mask
            key = keys[slot]
        return slot

    def grow(self):
        old_keys, old_values = self.keys, self.values
        size = len(old_keys) * 2
        self.keys, self.values = keys, values = array("q", [0]) * size, array("q", [0]) * size
        self.mask = mask = size - 1
        for key, value in zip(old_keys, old_values):
            if key != 0:
                slot = key & mask
                while keys[slot] != 0:
                    slot = (slot + 1) & mask
                keys[slot] = key
                values[slot] = value


class KnownSubjects:
    """The subjects of every accepted batch that fit in `max_bytes` (module docstring), and every
    pinned one: each one's occurred_on and the grams credited to it under each methodology_id that
    day. A slot's value packs day << 40 | tag << 32 | grams, the day an index into the days seen,
    the tag that of the methodology_id whose grams are inline (1 to 255, in order of first sight; 0
    for none); grams of any other methodology_id, or beyond 255 tags, are in the table's dict beside.
    Grams kept never exceed the daily cap (at most 10^9 < 2^32): a batch that went beyond is
    refused and keeps nothing."""

    __slots__ = (
        "_current", "_previous", "_pinned", "_pinned_digests", "_max_bits", "_capacity", "_counted", "_generation_due",
        "generations", "generations_forgotten", "_day_indexes", "_day_names", "_tags",
    )

    def __init__(self, max_bytes=None, pinned=frozenset(), initial_bits=MIN_TABLE_BITS):
        max_bits = initial_bits
        if max_bytes is None:
            max_bits = 62
        else:
            while (2 << max_bits) * SLOT_BYTES * GENERATIONS <= max_bytes:
                max_bits += 1
        self._max_bits = max_bits
        self._capacity = (1 << max_bits) * 7 // 10  # subjects of readings a generation spans
        self._counted = 0  # subjects of the readings since the current generation began
        self._generation_due = False  # a new generation begins with the reading being concluded
        self.generations = 0  # begun after the first: the generation a subject kept now is in
        self._current = _Table(initial_bits)
        self._previous = None
        self._pinned_digests = frozenset(pinned)
        self._pinned = _Table(initial_bits) if pinned else None
        self.generations_forgotten = 0
        self._day_indexes = {}  # occurred_on -> index in _day_names
        self._day_names = []
        self._tags = {}  # methodology_id -> 1..255

    @property
    def count(self):
        """Subjects held (one moved to the current generation is counted in both until the previous one goes)."""
        return sum(table.count for table in self._tables())

    def _tables(self):
        """The tables to look in, in order: a pinned subject is only in its own, a moved one is
        current in the current generation."""
        return [table for table in (self._pinned, self._current, self._previous) if table is not None and table.count]

    def days_and_grams(self, subjects, methodology_id, days):
        """The grams credited to each subject under methodology_id on its day (0 for a subject not
        known), and its day written into `days`, where a subject's day already there (not None: a
        subject of the file being checked, so not here) is left as it is."""
        grams = [0] * len(subjects)
        tables = self._tables()
        if not tables:
            return grams
        tag = self._tags.get(methodology_id)
        day_names = self._day_names
        if len(tables) == 1:  # the common case, without a call per subject
            table = tables[0]
            keys, values, mask, other_grams = table.keys, table.values, table.mask, table.other_grams
            for index in compress(range(len(subjects)), map(is_, days, repeat(None))):
                subject = subjects[index]
                slot = subject & mask
                key = keys[slot]
                while key != subject:
                    if key == 0:
                        break
                    slot = (slot + 1) & mask
                    key = keys[slot]
                else:
                    packed = values[slot]
                    days[index] = day_names[packed >> 40]
                    grams[index] = packed & 0xFFFFFFFF if packed >> 32 & 0xFF == tag else other_grams.get(subject, EMPTY_GRAMS).get(methodology_id, 0)
            return grams
        for index in compress(range(len(subjects)), map(is_, days, repeat(None))):
            subject = subjects[index]
            for table in tables:
                slot = table.slot_of(subject)
                if slot >= 0:
                    packed = table.values[slot]
                    days[index] = day_names[packed >> 40]
                    grams[index] = packed & 0xFFFFFFFF if packed >> 32 & 0xFF == tag else table.other_grams.get(subject, EMPTY_GRAMS).get(methodology_id, 0)
                    break
        return grams

    def begin_reading(self, subject_count):
        """A reading of an activity file has looked its subjects up and is concluded (accepted or
        not): a new generation begins with it when the subjects of the readings since the current
        one began would pass a generation's capacity. Counting every reading's subjects, kept or
        not, pinned or not, makes where generations begin the same in every pass that reads the
        same files, so the subjects one pass saw at risk of being forgotten are all the next pass
        can forget. The generation begins in keep, once the reading's subjects found in the
        previous generation are taken out of it, or in end_reading if it keeps nothing."""
        if self._counted and self._counted + subject_count > self._capacity:
            self._generation_due = True
            self._counted = 0
        self._counted += subject_count

    def end_reading(self):
        if self._generation_due:
            self._begin_generation()

    def _begin_generation(self):
        if self._previous is not None:
            self.generations_forgotten += 1
        # At its full size at once: grown by doubling beside the previous generation, it would
        # hold its old and new arrays together (measured: 40 MiB more at the peak under 384M).
        self._previous, self._current = self._current, _Table(self._max_bits)
        self._generation_due = False
        self.generations += 1

    def keep(self, new_days, grams_of, methodology_id):
        """Take in an accepted file's subjects: new_days, subject -> occurred_on for those not known
        before; grams_of, subject -> grams under methodology_id on its day (every subject of the file)."""
        tag = self._tags.get(methodology_id)
        if tag is None and len(self._tags) < 0xFF:
            tag = self._tags[methodology_id] = len(self._tags) + 1
        tag_bits = None if tag is None else tag << 32
        # Subjects known before, first: no table changes generation until they are credited.
        moving = []  # (subject, packed value, other grams) of subjects credited again in the previous generation
        tables = self._tables()
        for subject in grams_of.keys() - new_days.keys():
            for table in tables:
                slot = table.slot_of(subject)
                if slot >= 0:
                    break
            else:
                raise AssertionError("a subject known to the file is in no table")
            if table is self._previous:
                moving.append((subject, table.values[slot], table.other_grams.get(subject)))
            else:
                _credit(table, slot, subject, tag, tag_bits, methodology_id, grams_of[subject])
        if self._generation_due:  # the moving subjects are out of the generation it forgets
            self._begin_generation()
        day_bits = {day: self._day_index(day) << 40 for day in set(new_days.values())}
        arriving = new_days.items()
        if self._pinned is not None:
            pinned = self._pinned_digests
            pinned_items = [item for item in arriving if item[0] in pinned]
            while self._pinned.room() < len(pinned_items):
                self._pinned.grow()
            _insert_new(self._pinned, pinned_items, day_bits, grams_of, tag_bits, methodology_id)
            arriving = [item for item in arriving if item[0] not in pinned]
        current = self._current
        # Generations begin only between readings (begin_reading): a reading with more subjects
        # than a generation holds is kept whole, past the generation's size (its own state, a few
        # dicts of its subjects, holds them already), so that where generations begin never
        # depends on which subjects were kept.
        while current.room() < len(moving) + len(arriving):
            current.grow()
        _move_in(current, moving, grams_of, tag, tag_bits, methodology_id)
        _insert_new(current, arriving, day_bits, grams_of, tag_bits, methodology_id)

    def _day_index(self, day):
        index = self._day_indexes.get(day)
        if index is None:
            index = self._day_indexes[day] = len(self._day_names)
            self._day_names.append(day)
        return index


def _insert_new(table, items, day_bits, grams_of, tag_bits, methodology_id):
    """Put each (subject, occurred_on) of subjects new to every table in one that has room for them."""
    keys, values, mask, other_grams = table.keys, table.values, table.mask, table.other_grams
    count = 0
    for subject, day in items:
        grams = grams_of[subject]
        slot = subject & mask
        while keys[slot]:
            slot = (slot + 1) & mask
        keys[slot] = subject
        if tag_bits is not None and grams <= 0xFFFFFFFF:
            values[slot] = day_bits[day] | tag_bits | grams
        else:
            values[slot] = day_bits[day]
            other_grams.setdefault(subject, {})[methodology_id] = grams
        count += 1
    table.count += count


def _move_in(table, items, grams_of, tag, tag_bits, methodology_id):
    """Put each (subject, packed value, other grams) of the previous generation, credited again,
    in the current one, which has room for them."""
    keys, values, mask, other_grams = table.keys, table.values, table.mask, table.other_grams
    for subject, packed, others in items:
        slot = subject & mask
        while keys[slot]:
            slot = (slot + 1) & mask
        keys[slot] = subject
        values[slot] = packed
        if others:
            other_grams[subject] = dict(others)
        _credit(table, slot, subject, tag, tag_bits, methodology_id, grams_of[subject])
    table.count += len(items)


def _credit(table, slot, subject, tag, tag_bits, methodology_id, grams):
    """Set a subject's grams under methodology_id: inline when the slot has no other methodology's
    grams inline (and they fit in 32 bits), else in the dict beside."""
    values = table.values
    packed = values[slot]
    owner = packed >> 32 & 0xFF  # 0: no methodology_id's grams inline yet
    if tag is not None and (owner == 0 or owner == tag) and grams <= 0xFFFFFFFF:
        values[slot] = packed >> 40 << 40 | tag_bits | grams
        return
    if owner == tag:  # grams beyond 32 bits: they move beside
        values[slot] = packed >> 40 << 40
    table.other_grams.setdefault(subject, {})[methodology_id] = grams


class SubjectStream:
    """The digests of the subjects of each reading of an activity file (but the pinned ones), with
    the reading's number, in reading order: in memory, then appended to two files past `max_bytes`."""

    def __init__(self, max_bytes, spill_directory):
        self._max_entries = max(1, max_bytes // (8 + READ_BYTES))
        self._spill_directory = spill_directory  # called for the pass's directory when first needed
        self._digests = array("q")
        self._reads = array("i")
        if self._reads.itemsize != READ_BYTES or self._digests.itemsize != 8:
            raise RuntimeError("array('i') and array('q') are not of 4 and 8 bytes on this platform")
        self.spilled = 0
        self.digests_path = self.reads_path = None

    @property
    def count(self):
        return self.spilled + len(self._digests)

    def add(self, subjects, read):
        """The digests of the subjects of reading number `read`."""
        before = len(self._digests)
        self._digests.extend(subjects)
        self._reads.extend(repeat(read, len(self._digests) - before))
        if len(self._digests) >= self._max_entries:
            self.spill()

    def spill(self):
        """Append what is in memory to the files."""
        if self.digests_path is None:
            directory = self._spill_directory()
            self.digests_path, self.reads_path = os.path.join(directory, "subjects.digests"), os.path.join(directory, "subjects.reads")
        for path, values in ((self.digests_path, self._digests), (self.reads_path, self._reads)):
            with open(path, "ab") as handle:
                handle.write(values.tobytes())
        self.spilled += len(self._digests)
        self._digests, self._reads = array("q"), array("i")

    def written_again(self, runner, search_share):
        """{digest: [read, ...]} of every digest written by two readings or more, searched on the
        runner's workers: whole if it fits one process's share, else split into parts first."""
        if not self.spilled and self.count * SEARCH_BYTES_PER_DIGEST <= search_share:
            repeated = repeated_in_partition(SearchJob(None, self._digests.tobytes()))
            return _by_digest((digest, self._reads[index]) for digest, index in repeated)
        self.spill()
        bits = 1
        while self.count * SEARCH_BYTES_PER_DIGEST > search_share << bits and bits < 20:
            bits += 1
        parts = runner.result(runner.submit("partition_parts", PartsJob(self.digests_path, bits, max(1, search_share // 16))))
        tickets = [(part, runner.submit("partition", SearchJob(part.digests_path, b""))) for part in parts]
        found = []
        for part, ticket in tickets:
            for digest, index in runner.result(ticket):
                position = _int_at(part.indexes_path, index, 8)
                found.append((digest, _int_at(self.reads_path, position, READ_BYTES)))
            os.remove(part.digests_path)
            os.remove(part.indexes_path)
        return _by_digest(found)


def _by_digest(pairs):
    reads_of = {}
    for digest, read in pairs:
        reads_of.setdefault(digest, []).append(read)
    return {digest: sorted(reads) for digest, reads in reads_of.items() if len(reads) > 1}  # a reading writes a subject once


def at_risk(written_again, generation_at):
    """The digests of subjects whose readings span two generations or more (generation_at[read]:
    the generation current while that reading looked its subjects up). Kept at the first, such a
    subject is in that generation or a later one, and the last could have found it forgotten;
    within one generation's span it is always found. The next pass pins them."""
    return frozenset(digest for digest, reads in written_again.items() if generation_at[reads[-1]] - generation_at[reads[0]] >= 2)
