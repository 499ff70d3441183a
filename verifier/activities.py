"""Activity files (spec section 7): each batch's records checked against its activity.batch event,
and every activity_id and fingerprint checked for repeats across the whole log.

The records of a file are cut into chunks of CHUNK_RECORDS (a power of two) so that each chunk is
a perfect subtree of the batch's Merkle tree: a worker returns the chunk's subtree roots, the
keyed digests of its ids and fingerprints (8 bytes each, see digests.py) and its first problem;
the main process joins the subtrees, hands the digests to uniqueness.py (which finds repeats after
the log, exactly) and asks the pass's RepeatJudge which records repeat. No record ever becomes a
Python object outside the chunk being checked.

A record is canonical when it is exactly
`{"activity_id":ID,"fingerprint":HEX64,"inputs":{...},"occurred_at":TIME,"reduction_g":INT,"subject":STRING}`
in JCS: the fixed frame is matched by one regular expression (JCS strings have one spelling, so
the pattern below is that spelling) and only `inputs`, the one free-form value, is parsed.
"""

import os
import re
from collections import deque
from dataclasses import dataclass, field
from hashlib import sha256
from time import perf_counter

from verifier.canonical import _SCAN, EncodingProblem, check_canonical_text, parse_canonical, parse_json_text
from verifier.merkle import MerkleAccumulator, subtrees_of
from verifier.reader import MAX_RECORD_BYTES, LineReader
from verifier.schema import ID, TIME, is_real_date

CHUNK_HEIGHT = 11
CHUNK_RECORDS = 1 << CHUNK_HEIGHT
PENDING_PER_LOOKAHEAD = 8
MAX_SAFE_INTEGER = 2**53 - 1
RECORD_KEYS = ("activity_id", "fingerprint", "inputs", "occurred_at", "reduction_g", "subject")
_JCS_STRING_BODY = r'(?:[^"\\\x00-\x1f]|\\["\\bfnrt]|\\u00(?:0[0-7bef]|1[0-9a-f]))*'
_RECORD = re.compile(
    r'\{"activity_id":"([A-Za-z0-9][A-Za-z0-9._-]{0,127})",'
    r'"fingerprint":"([0-9a-f]{64})",'
    r'"inputs":(\{.*\}),'
    r'"occurred_at":"([0-9]{4}-[0-9]{2}-[0-9]{2})T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]\.[0-9]{6}Z",'
    r'"reduction_g":(0|[1-9][0-9]{0,15}),'
    r'"subject":"' + _JCS_STRING_BODY + r'"\}',
    re.DOTALL,
)

# The same frame with a subject that needs no escape, for the chunk-at-a-time path (a subset of
# _RECORD with the same groups; the alternation of escapes costs a third of the match). It is
# applied to a whole chunk at once with findall, one tuple of groups per line and no match objects:
# without DOTALL no part of the pattern can match a newline, so with ^ and $ (MULTILINE) a match is
# exactly one whole line, and the chunk is clean only if there are as many matches as lines.
_CLEAN_RECORD_PATTERN = _RECORD.pattern.replace('"subject":"' + _JCS_STRING_BODY, '"subject":"' + r'[^"\\\x00-\x1f]*')
assert _CLEAN_RECORD_PATTERN != _RECORD.pattern
_CLEAN_RECORD_LINES = re.compile("^" + _CLEAN_RECORD_PATTERN + "$", re.MULTILINE)


def parsed_record(raw, keys):
    """(value, None) for a canonical record of exactly `keys` whose activity_id, fingerprint and
    inputs are well-formed, else (None, why): the start of either format's explaining path."""
    try:
        value = parse_canonical(raw)
    except EncodingProblem as problem:
        return None, str(problem)
    if type(value) is not dict or tuple(value) != keys:
        return None, f"keys are not exactly {', '.join(keys)}"
    if type(value["activity_id"]) is not str or not ID.fullmatch(value["activity_id"]):
        return None, "activity_id is not an identifier"
    if type(value["fingerprint"]) is not str or not re.fullmatch(r"[0-9a-f]{64}", value["fingerprint"]):
        return None, "fingerprint is not 64 lowercase hex digits"
    if type(value["inputs"]) is not dict:
        return None, "inputs is not an object"
    return value, None


def record_problem(raw):
    """Why a record that failed the fast pattern is malformed (the slow, explaining path)."""
    value, problem = parsed_record(raw, RECORD_KEYS)
    if problem is not None:
        return problem
    occurred_at = value["occurred_at"]
    if type(occurred_at) is not str or not TIME.fullmatch(occurred_at) or not is_real_date(occurred_at[:10]):
        return "occurred_at is not YYYY-MM-DDTHH:MM:SS.ffffffZ"
    if type(value["reduction_g"]) is not int or value["reduction_g"] < 0:
        return "reduction_g is not an integer >= 0"
    if type(value["subject"]) is not str:
        return "subject is not a string"
    return "not a canonical record"


def check_record_chunk(job):
    """Check one chunk of records (run in a worker); see _check_chunk. A chunk whose records are
    all well-formed takes a path that does each step for the whole chunk at once; any doubt, and
    the chunk is checked again record by record, which finds and explains the first problem."""
    period_start, period_end, digester, first_number, blob = job
    try:
        result = _check_clean_chunk(period_start, period_end, digester, blob)
    except Exception:  # anything unexpected in a record: the careful path decides
        result = None
    return result if result is not None else _check_chunk(job)


def _check_clean_chunk(period_start, period_end, digester, blob):
    """The result of _check_chunk for a chunk without any problem, or None if it may have one."""
    clean = clean_columns(_CLEAN_RECORD_LINES, blob, period_start, period_end)
    if clean is None:
        return None
    columns, _, grams = clean
    return clean_outcome(blob.split(b"\n"), columns, grams, digester)


def clean_columns(lines_pattern, blob, period_start, period_end):
    """(columns of the pattern's groups, parsed inputs, grams) of a chunk whose every line is a
    record of lines_pattern (groups 1 to 5 as in CarefulChunk) with canonical inputs, grams within
    2^53 and dates in the period; None if any of that may fail. Shared by both formats."""
    text = blob.decode("utf-8")
    fields = lines_pattern.findall(text)
    if len(fields) != text.count("\n") + 1:
        return None
    columns = tuple(zip(*fields))
    inputs_texts = columns[2]
    # Each inputs text must be exactly one JSON object (the scanner stops where the value ends),
    # and canonical: the list of all of them is checked at once, which is exact because each item's
    # text is where the list's parse finds it (a JSON object delimits itself).
    scanned = [_SCAN(inputs_text, 0) for inputs_text in inputs_texts]
    if [end for _, end in scanned] != list(map(len, inputs_texts)):
        return None
    inputs = [value for value, _ in scanned]
    check_canonical_text(inputs, "[" + ",".join(inputs_texts) + "]")
    grams = list(map(int, columns[4]))
    if max(grams) > MAX_SAFE_INTEGER:
        return None
    for day in set(columns[3]):
        if not (period_start <= day <= period_end and is_real_date(day)):
            return None
    return columns, inputs, grams


def clean_outcome(records, columns, grams, digester):
    """_check_chunk's tuple for a clean chunk (see clean_columns), from its records (the lines)."""
    return (
        len(records),
        sum(grams),
        subtrees_of([sha256(b"\x00" + raw).digest() for raw in records]),
        digester.pack_texts(columns[0]),
        digester.pack_texts(columns[1]),
        [],
        None,
    )


def _check_chunk(job):
    """Check one chunk of records (run in a worker). job = (period_start, period_end, digest key,
    number of the chunk's first record (1-based line), the records joined by newlines).

    Returns (count, total_g, perfect subtrees [(height, root)], id digests, fingerprint digests,
    numbers of the records without digests, first problem (record number, message) or None)."""
    period_start, period_end, digester, first_number, blob = job
    records = blob.split(b"\n")
    chunk = CarefulChunk(period_start, period_end)
    for _ in chunk.records(records, first_number, _RECORD.fullmatch, record_problem):
        pass
    return chunk.outcome(len(records), digester)


@dataclass(slots=True)
class CarefulChunk:
    """The record-by-record check of a chunk, shared by both formats: a record pattern's groups 1
    to 5 are activity_id, fingerprint, inputs, the record's date and reduction_g."""

    period_start: str
    period_end: str
    merkle: MerkleAccumulator = field(default_factory=MerkleAccumulator)
    ids: list = field(default_factory=list)
    fingerprints: list = field(default_factory=list)
    undigested: list = field(default_factory=list)  # numbers of the records without digests
    problem: object = None  # the first (record number, message)
    total_g: int = 0

    def outcome(self, count, digester):
        """(count, total_g, perfect subtrees, id digests, fingerprint digests, undigested, problem)."""
        return (
            count,
            self.total_g,
            self.merkle.perfect_subtrees(),
            digester.pack_texts(self.ids),
            digester.pack_texts(self.fingerprints),
            self.undigested,
            self.problem,
        )

    def note(self, number, message):
        if self.problem is None:
            self.problem = (number, message)

    def records(self, records, first_number, match_record, explain):
        """Hash every record; yield (number, match, inputs, reduction_g) for each one whose frame
        and inputs are canonical, after its ids, grams, bound and period are taken in."""
        append_leaf = self.merkle.append
        number = first_number - 1
        for raw in records:
            number += 1
            append_leaf(sha256(b"\x00" + raw).digest())
            try:
                text = raw.decode("utf-8")
                match = match_record(text)
                if match is None:
                    raise EncodingProblem(explain(raw))
                activity_id, fingerprint, inputs_text, day, reduction = match.group(1, 2, 3, 4, 5)
                inputs = parse_json_text(inputs_text)
                if type(inputs) is not dict:
                    raise EncodingProblem("inputs is not an object")
                check_canonical_text(inputs, inputs_text)
            except (UnicodeDecodeError, EncodingProblem) as error:
                reason = "not UTF-8" if isinstance(error, UnicodeDecodeError) else str(error)
                self.note(number, f"record on line {number} is malformed: {reason}")
                self.undigested.append(number)
                continue
            self.ids.append(activity_id)
            self.fingerprints.append(fingerprint)
            reduction_g = int(reduction)
            if reduction_g > MAX_SAFE_INTEGER:
                self.note(number, f"record on line {number}: reduction_g is beyond 2^53-1")
            self.total_g += reduction_g
            if self.problem is None and not (self.period_start <= day <= self.period_end and is_real_date(day)):
                self.note(number, f"record on line {number} occurred on {day}, outside the period {self.period_start}..{self.period_end}")
            yield number, match, inputs, reduction_g


class ActivityChecker:
    """Called by replay for each batch event that passed every other check (see Replay). It reads
    each file itself; file_ranges.py reads them on a cluster and uses the same _chunk_job,
    _merge_chunk and _conclude_file."""

    def __init__(self, activities_dir, runner, digester, uniqueness, judge):
        self.activities_dir = activities_dir
        self.runner = runner
        self.digester = digester
        self.uniqueness = uniqueness  # uniqueness.Uniqueness: every digest, for the search after the log
        self.judge = judge  # uniqueness.RepeatJudge: the repeats this pass knows of
        self.records_checked = 0
        self.files_checked = 0
        self.bytes_read = 0
        self.on_progress = None  # called with no argument after each block read (bundle.py's progress)
        self.while_waiting = None  # other work for the main process while workers finish a file; returns whether it did some
        self.seconds = 0.0
        self.batch_ids_opened = set()  # for the report: which activity files were read

    def __call__(self, leaf):
        body = leaf.body
        path = self._path_of(body)
        if path is None or not os.path.isfile(path):
            return "missing"
        started = perf_counter()
        self.batch_ids_opened.add(body["batch_id"])
        self.uniqueness.begin_read(body["batch_id"])
        self.judge.begin(body["batch_id"])
        try:
            return self._check_file(path, body)
        finally:
            self.seconds += perf_counter() - started

    def _path_of(self, body):
        """The batch's activity file, or None without an activities directory."""
        return os.path.join(self.activities_dir, body["batch_id"] + ".jsonl") if self.activities_dir else None

    def _check_file(self, path, body):
        reader = LineReader(path, "activity file", MAX_RECORD_BYTES, require_final_newline=False)
        state = self._new_file_state()
        pending = deque()
        period = (body["period_start"], body["period_end"])
        buffered = []
        next_number = 1
        # Results are small (tens of KB): rather than wait for the oldest, which may sit behind a
        # worker's signature chunks of the log, keep submitting; and rather than merge while a
        # worker waits for its next chunk (a merge costs about a millisecond), submit first.
        most_pending = PENDING_PER_LOOKAHEAD * self.runner.lookahead
        runner = self.runner
        chunk_records = CHUNK_RECORDS
        bytes_before = self.bytes_read
        for lines in reader.blocks():
            self.bytes_read = bytes_before + reader.bytes_read
            if self.on_progress:
                self.on_progress()
            buffered.extend(lines)
            start = 0
            while len(buffered) - start >= chunk_records:
                chunk = buffered[start : start + chunk_records]
                start += chunk_records
                pending.append((next_number, self._submit(period, next_number, b"\n".join(chunk))))
                next_number += chunk_records
                while pending and (
                    len(pending) > most_pending or (runner.ready(pending[0][1]) and not runner.has_idle_worker())
                ):
                    self._merge(state, *pending.popleft())
            del buffered[:start]
        if buffered:
            pending.append((next_number, self._submit(period, next_number, b"\n".join(buffered))))
        while self.while_waiting is not None and not all(runner.ready(ticket) for _, ticket in pending) and self.while_waiting():
            pass
        while pending:
            self._merge(state, *pending.popleft())
        self.bytes_read = bytes_before + reader.bytes_read
        return self._conclude_file(state, body, reader.unterminated_last_line)

    def _conclude_file(self, state, body, unterminated):
        """The file's finding (None if it passed), every chunk of it merged."""
        self.records_checked += state.count
        self.files_checked += 1
        state.repeated_id = self.judge.first_repeats["activity_id"]
        state.repeated_fingerprint = self.judge.first_repeats["fingerprint"]
        finding = self._first_finding(state, body, unterminated)
        self.judge.end(finding is None)
        self.uniqueness.end_read(self.judge.first_repeats, finding is None)
        if finding is not None:
            return finding
        self._keep_file(state)
        return None

    @staticmethod
    def _new_file_state():
        return _FileState()

    def _keep_file(self, state):
        """The file passed: its ids and fingerprints are already the judge's (format 2 keeps more)."""

    def _submit(self, period, first_number, blob):
        return self.runner.submit(*self._chunk_job(period, first_number, blob))

    def _chunk_job(self, period, first_number, blob):
        """(kind, job) of a chunk (parallel.JOBS), not submitted."""
        return "records", (period[0], period[1], self.digester, first_number, blob)

    def _merge(self, state, first_number, ticket):
        self._merge_chunk(state, first_number, self.runner.result(ticket))

    def _merge_chunk(self, state, first_number, result):
        """Take in one chunk's result, the chunks in file order."""
        count, total_g, subtrees, ids, fingerprints, undigested, problem = result[:7]
        state.count += count
        state.total_g += total_g
        for height, root in subtrees:
            state.merkle.append_subtree(height, root)
        if problem is not None and state.problem is None:
            state.problem = problem[1]
        self.uniqueness.add_chunk(first_number, undigested, ids, fingerprints)
        self.judge.observe_chunk(first_number, count, undigested)

    @staticmethod
    def _first_finding(state, body, unterminated):
        """The first code in the section 9 table: DUPLICATE_ID, then BATCH, then DUPLICATE_ACTIVITY."""
        name = f"activities/{body['batch_id']}.jsonl"
        if state.repeated_id is not None:
            return ("DUPLICATE_ID", f"{name} line {state.repeated_id}: activity_id seen before (in this or an earlier batch)")
        if state.problem is not None:
            return ("BATCH", f"{name}: {state.problem}")
        if unterminated:
            return ("BATCH", f"{name}: the last record does not end with a newline (truncated file?)")
        if state.count != body["count"]:
            return ("BATCH", f"{name} holds {state.count} records, the batch says count {body['count']}")
        if state.total_g != body["total_g"]:
            return ("BATCH", f"{name} records add up to {state.total_g} g, the batch says total_g {body['total_g']}")
        root = state.merkle.root().hex()
        if root != body["root"]:
            return ("BATCH", f"{name} Merkle root is {root}, the batch says {body['root']}")
        if state.repeated_fingerprint is not None:
            return (
                "DUPLICATE_ACTIVITY",
                f"{name} line {state.repeated_fingerprint}: fingerprint seen before (the same act counted twice)",
            )
        return None


class _FileState:
    __slots__ = ("count", "total_g", "merkle", "problem", "repeated_id", "repeated_fingerprint")

    def __init__(self):
        self.count = 0
        self.total_g = 0
        self.merkle = MerkleAccumulator()
        self.problem = None
        self.repeated_id = None
        self.repeated_fingerprint = None
