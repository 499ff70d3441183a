"""Activity files checked by workers that read them from shared storage (`--dask`): the main
process never reads a record.

For each activity file the main process asks only the file's size of the file system, then sends
two kinds of job, each naming a place in the file:
1. "newlines": count the newlines of each range (about RANGE_BYTES) of a stretch of the file (a
   read at the speed of the disk, no parsing). From the counts the main process knows which line begins
   in which range, so it can give every chunk of CHUNK_RECORDS lines (the chunks of a local run:
   chunk c holds lines c * CHUNK_RECORDS + 1 onwards) to the range its first line begins in.
2. "records_range": a range's chunks. The worker reads from the range's start, skips the lines of
   the range before it (it is told how many), and checks its chunks with the local run's own job
   (activities.py or records_v2.py), reading past the range's end to finish its last chunk.
Since the chunks are the local run's, at the same line numbers, every chunk's result (Merkle
subtrees, digests, first problem, format 2's subject-day groups) is the one a local run gets, and
the main process merges them in file order with the checker's own merge: the report is the same.
A line longer than MAX_RECORD_BYTES stops the run with the local run's message; the worker never
holds more of it than that.

What travels back is a range's chunk results: per record 20 bytes of digests and their places,
already split by partition (uniqueness.split_digests, so that the main process only appends them),
per chunk its subtree roots, total and problem. A file changed between the two jobs can only make
its batch fail (its count or root then differs from its event), as in a local run.
"""

import os
from bisect import bisect_left
from collections import deque
from typing import NamedTuple

from verifier.activities import CHUNK_RECORDS, ActivityChecker
from verifier.parallel import JOBS
from verifier.reader import MAX_RECORD_BYTES, READ_BLOCK_BYTES, InputError
from verifier.records_v2 import ActivityChecker2

# A range is a Dask task of about 60,000 records of 270 bytes: a task costs about 5 ms of CPU
# (scheduler, client and the worker's event loop, measured on a LocalCluster), 1 % of a range's
# checks (at 4 MiB it was 5 %). A newline count covers a few ranges, but no more than COUNT_BYTES
# (a few ms of counting): the file's counts come back from several workers at once, since every
# worker but one would wait for a single count.
RANGE_BYTES = 16 << 20
RANGES_PER_COUNT = 4
COUNT_BYTES = 16 << 20
# Ranges of one file in flight at once: enough to keep every worker busy, few enough that the
# results waiting for the main process stay small (a range's result is about 250 KB).
RANGES_IN_FLIGHT_PER_WORKER = 4


class CountJob(NamedTuple):
    path: str  # absolute: the worker's working directory is not the main process's
    offset: int
    length: int
    range_bytes: int


class NewlineCounts(NamedTuple):
    counts: list  # newlines in each range of the stretch, in order
    last_byte: bytes  # the stretch's last byte (b"" if it read nothing)


class RangeJob(NamedTuple):
    kind: str  # the chunk job's kind: "records" or "records_v2" (parallel.JOBS)
    chunk_job: tuple  # the chunk job, its first_number and blob filled in here for each chunk
    path: str
    offset: int  # where the range begins in the file
    skip_lines: int  # newlines to pass from offset before the first chunk (the lines of the range before)
    first_number: int  # line number of the first chunk's first record (1-based)
    chunks: int
    chunk_records: int


class RangeResult(NamedTuple):
    chunks: list  # [ChunkOutcome] in file order
    too_long_line: object  # number of the first line longer than MAX_RECORD_BYTES, or None
    unterminated: bool  # whether the file's last line, read here, has no newline


class ChunkOutcome(NamedTuple):
    first_number: int
    result: tuple  # what the chunk job returns


def _range_bytes(size, workers):
    """About RANGE_BYTES, cutting the file into a multiple of the number of workers: the next file
    is known only once this one is judged, so its last ranges should end together."""
    ranges = max(1, -(-size // RANGE_BYTES))
    workers = max(1, workers)
    return max(1, -(-size // (-(-ranges // workers) * workers)))


def _stretch_bytes(range_bytes):
    """Bytes of a newline count: a whole number of ranges."""
    return range_bytes * max(1, min(RANGES_PER_COUNT, COUNT_BYTES // range_bytes))


def count_newlines(job):
    """NewlineCounts of a stretch of a file (run on a worker)."""
    counts = []
    last_byte = b""
    with open(job.path, "rb") as handle:
        handle.seek(job.offset)
        left = job.length
        while left > 0:
            data = handle.read(min(left, job.range_bytes))
            if not data:
                break
            counts.append(data.count(b"\n"))
            last_byte = data[-1:]
            left -= len(data)
    return NewlineCounts(counts, last_byte)


class _Cursor:
    """A file's bytes from an offset, read a block at a time as far as they are needed."""

    def __init__(self, handle):
        self.handle = handle
        self.data = b""
        self.position = 0  # in data: where the next unread line begins
        self.at_end = False

    def read_more(self):
        """Append a block to what is left unread; False at the end of the file."""
        block = self.handle.read(READ_BLOCK_BYTES)
        if not block:
            self.at_end = True
            return False
        self.data = self.data[self.position :] + block
        self.position = 0
        return True

    def partial_line_bytes(self):
        """Bytes after the last newline read (the line being read so far)."""
        last = self.data.rfind(b"\n", self.position)
        return len(self.data) - (last + 1 if last >= 0 else self.position)

    def skip_lines(self, count):
        """Pass `count` lines; False if the file ends first or a line is too long to hold."""
        while count:
            newline = self.data.find(b"\n", self.position)
            if newline >= 0:
                self.position = newline + 1
                count -= 1
            elif len(self.data) - self.position > MAX_RECORD_BYTES or not self.read_more():
                return False
        return True


def _nth_newline(data, start, count, estimate_bytes):
    """Index of the count-th newline from start, or -1 if data holds fewer: counted in C around
    where the last chunk's length says it is, then found by a few searches either way."""
    end = min(len(data), start + estimate_bytes)
    seen = data.count(b"\n", start, end)
    if seen >= count:
        index = end
        for _ in range(seen - count + 1):
            index = data.rfind(b"\n", start, index)
        return index
    index = end - 1
    for _ in range(count - seen):
        index = data.find(b"\n", index + 1)
        if index < 0:
            return -1
    return index


def _first_too_long(blob, first_number):
    """Number of the first line of blob longer than MAX_RECORD_BYTES, or None."""
    if len(blob) <= MAX_RECORD_BYTES:
        return None
    for offset, line in enumerate(blob.split(b"\n")):
        if len(line) > MAX_RECORD_BYTES:
            return first_number + offset
    return None


def _with_records(chunk_job, first_number, blob):
    fields = (*chunk_job[:3], first_number, blob, *chunk_job[5:])
    return chunk_job._make(fields) if hasattr(chunk_job, "_make") else fields


def check_range(job):
    """RangeResult of a range's chunks (run on a worker, reading the file itself)."""
    check_chunk = JOBS[job.kind]
    outcomes = []
    number = job.first_number
    estimate_bytes = job.chunk_records * 256
    with open(job.path, "rb") as handle:
        handle.seek(job.offset)
        cursor = _Cursor(handle)
        if not cursor.skip_lines(job.skip_lines):
            return RangeResult(outcomes, None, False)  # the range before reports the long line, or the file shrank
        for _ in range(job.chunks):
            start = cursor.position
            newline = _nth_newline(cursor.data, start, job.chunk_records, estimate_bytes)
            while newline < 0 and not cursor.at_end:
                if cursor.partial_line_bytes() > MAX_RECORD_BYTES:
                    # Every line before it is whole: the first too long is among them, or it is this one.
                    whole = cursor.data[cursor.position : cursor.data.rfind(b"\n", cursor.position) + 1]
                    too_long = _first_too_long(whole, number)
                    return RangeResult(outcomes, too_long if too_long is not None else number + whole.count(b"\n"), False)
                if cursor.read_more():
                    start = cursor.position
                    newline = _nth_newline(cursor.data, start, job.chunk_records, estimate_bytes)
            unterminated = False
            if newline >= 0:
                blob = cursor.data[start:newline]
                cursor.position = newline + 1
            else:  # the file's last chunk
                rest = cursor.data[start:]
                if not rest:
                    break
                unterminated = not rest.endswith(b"\n")
                blob = rest if unterminated else rest[:-1]
                cursor.position = len(cursor.data)
            too_long = _first_too_long(blob, number)
            if too_long is not None:
                return RangeResult(outcomes, too_long, False)
            outcomes.append(ChunkOutcome(number, check_chunk(_with_records(job.chunk_job, number, blob))))
            number += job.chunk_records
            estimate_bytes = len(blob) + 1
            if unterminated:
                return RangeResult(outcomes, None, True)
    return RangeResult(outcomes, None, False)


class ChunkTemplate(NamedTuple):
    """The checker's chunk job (ActivityChecker._chunk_job) without its first_number and blob."""

    kind: str
    job: tuple


class RangeReading:
    """The file check of ActivityChecker with the reading done by the cluster's workers (the
    checker's runner): the checker builds the chunk jobs, merges the chunks and concludes the file."""

    def _check_file(self, path, body):
        cluster = self.runner
        size = os.path.getsize(path)
        template = ChunkTemplate(*self._chunk_job((body["period_start"], body["period_end"]), None, None))
        jobs = self._range_jobs(os.path.abspath(path), size, template)
        state = self._new_file_state()
        pending = deque()
        most_pending = RANGES_IN_FLIGHT_PER_WORKER * max(1, cluster.workers)
        unterminated = False
        bytes_before = self.bytes_read
        for job in jobs:
            pending.append(cluster.submit("records_range", job))
            while pending and (len(pending) > most_pending or (cluster.ready(pending[0]) and not cluster.has_idle_worker())):
                unterminated |= self._merge_range(state, path, cluster.result(pending.popleft()))
        self._wait_for(pending)
        while pending:
            unterminated |= self._merge_range(state, path, cluster.result(pending.popleft()))
        self.bytes_read = bytes_before + size
        if self.on_progress:
            self.on_progress()
        return self._conclude_file(state, body, unterminated)

    def _wait_for(self, tickets):
        """Let the main process do other work (the log's next chunks) while workers finish these."""
        while self.while_waiting is not None and not all(self.runner.ready(ticket) for ticket in tickets) and self.while_waiting():
            pass

    def _range_jobs(self, path, size, template):
        """The range jobs of a file: its newlines counted by the workers, its chunks given out."""
        cluster = self.runner
        range_bytes = _range_bytes(size, cluster.workers)
        stretch_bytes = _stretch_bytes(range_bytes)
        tickets = [cluster.submit("newlines", CountJob(path, offset, min(stretch_bytes, size - offset), range_bytes)) for offset in range(0, size, stretch_bytes)]
        self._wait_for(tickets)
        counts = []
        last_byte = b""
        for ticket in tickets:
            stretch = cluster.result(ticket)
            counts.extend(stretch.counts)
            last_byte = stretch.last_byte or last_byte
        ends = []  # newlines up to the end of each range
        total = 0
        for count in counts:
            total += count
            ends.append(total)
        records = total + (1 if last_byte not in (b"", b"\n") else 0)
        jobs = []
        for chunk in range(-(-records // CHUNK_RECORDS)):
            # Chunk c's first line follows newline number c * CHUNK_RECORDS (chunk 0 begins the file).
            newline = chunk * CHUNK_RECORDS
            owner = bisect_left(ends, newline) if chunk else 0
            newlines_before = ends[owner - 1] if owner else 0
            if jobs and jobs[-1].offset == owner * range_bytes:
                jobs[-1] = jobs[-1]._replace(chunks=jobs[-1].chunks + 1)
            else:
                skip = newline - newlines_before if chunk else 0
                jobs.append(RangeJob(template.kind, template.job, path, owner * range_bytes, skip, newline + 1, 1, CHUNK_RECORDS))
        return jobs

    def _merge_range(self, state, path, result):
        """Merge a range's chunks in order; returns whether it held the file's unterminated last line."""
        for outcome in result.chunks:
            self._merge_chunk(state, outcome.first_number, outcome.result)
        if result.too_long_line is not None:
            raise InputError(f"activity file {path}: line {result.too_long_line} is longer than the limit of {MAX_RECORD_BYTES} bytes")
        return result.unterminated


class RangeChecker(RangeReading, ActivityChecker):
    """Format 1's checker on a cluster."""


class RangeChecker2(RangeReading, ActivityChecker2):
    """Format 2's checker on a cluster."""


RANGE_JOBS = {"newlines": count_newlines, "records_range": check_range}
