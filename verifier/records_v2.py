"""Activity records of a format-2 log (spec sections 7.2 to 7.4): each record checked against its
batch and its methodology version, re-quantified in exact integers, and every subject's date and
daily total followed across the whole log.

A worker checks a chunk of records as in format 1 (activities.py) and also, for each (subject,
occurred_on) of the chunk, the records' formula values (section 7.2, which need no state). The
daily cap and PRIVACY need the totals of earlier batches (log order) and earlier chunks (file
order): the main process applies each chunk's groups in chunk order, as an inline run does, so
the outcome is the same for any number of workers. A group whose records all equal their formula
needs only its total: it is valid exactly when the subject's total before it plus that total stays
within the cap (then no record of it had to be clipped; else one was and is not, and the main
process reads that chunk again to name the first such record, as for any other chunking). Any other
group carries its records, stepped through one by one. The subjects of accepted batches are kept in
subjects.KnownSubjects, 16 bytes a subject (there is one per person and day), within a share of
--memory-limit.

A record is canonical when it is exactly
`{"activity_id":ID,"fingerprint":HEX64,"inputs":{...},"occurred_on":DATE,"private_sha256":HEX64,"reduction_g":INT,"subject":SUBJECT}`
in JCS. Every value but `inputs` is escape-free by its pattern, and a valid `inputs` holds only
integers and codes, so one regular expression matches the frame and only `inputs` is parsed; when
every public input of the version is required, the frame spells `inputs` too (typed_frame) and
nothing is parsed.
"""

import re
from itertools import compress, repeat
from operator import add, eq, is_, ne
from typing import NamedTuple

from verifier.activities import MAX_SAFE_INTEGER, ActivityChecker, CarefulChunk, _FileState, clean_columns, clean_outcome, parsed_record
from verifier.reader import MAX_RECORD_BYTES, LineReader
from verifier.canonical import EncodingProblem, parse_canonical
from verifier.digests import digests_to_array
from verifier.schema import HEX64, is_real_date
from verifier.subjects import KnownSubjects, SubjectStream, at_risk

RECORD_KEYS = ("activity_id", "fingerprint", "inputs", "occurred_on", "private_sha256", "reduction_g", "subject")
SUBJECT = re.compile(r"[0-9a-f]{32}")
_RECORD = re.compile(
    r'\{"activity_id":"([A-Za-z0-9][A-Za-z0-9._-]{0,127})",'
    r'"fingerprint":"([0-9a-f]{64})",'
    r'"inputs":(\{.*\}),'
    r'"occurred_on":"([0-9]{4}-[0-9]{2}-[0-9]{2})",'
    r'"private_sha256":"[0-9a-f]{64}",'
    r'"reduction_g":(0|[1-9][0-9]{0,15}),'
    r'"subject":"([0-9a-f]{32})"\}',
    re.DOTALL,
)
# Without DOTALL no part of the frame matches a newline, so with ^ and $ (MULTILINE) a match is one
# whole line, and a chunk is clean only if it has as many matches as lines (see activities.py).
_CLEAN_RECORD_LINES = re.compile("^" + _RECORD.pattern + "$", re.MULTILINE)


class RecordJob(NamedTuple):
    period_start: str
    period_end: str
    digester: object
    first_number: int  # line number of the chunk's first record (1-based)
    blob: bytes  # the records joined by newlines
    definition: object  # methodologies.Definition of the batch's version


class SubjectDays(NamedTuple):
    """The records of a chunk grouped by (subject, occurred_on), one column per field, the groups
    in order of first appearance (columns, not an object per group: cheaper to send and to read)."""

    subjects: bytes  # keyed digests of the subjects (digester.of_text, never 0), 8 bytes each
    days: list
    first_numbers: list  # each group's first record number
    totals_g: list
    steps: list  # None (every record of the group at its formula), or [(number, formula_g, reduction_g), ...]
    by_subject: bool  # whether each subject is in one group (no subject of the chunk has two days)


class ChunkResult(NamedTuple):
    count: int
    total_g: int
    subtrees: list
    ids: bytes
    fingerprints: bytes
    undigested: list
    problem: object  # (record number, message) of the first BATCH, or None
    groups: SubjectDays


def record_problem(raw):
    """Why a record that failed the frame pattern is malformed (the explaining path)."""
    value, problem = parsed_record(raw, RECORD_KEYS)
    if problem is not None:
        return problem
    if type(value["private_sha256"]) is not str or not HEX64.fullmatch(value["private_sha256"]):
        return "private_sha256 is not 64 lowercase hex digits"
    occurred_on = value["occurred_on"]
    if type(occurred_on) is not str or not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", occurred_on) or not is_real_date(occurred_on):
        return "occurred_on is not a real date YYYY-MM-DD"
    if type(value["reduction_g"]) is not int or value["reduction_g"] < 0:
        return "reduction_g is not an integer >= 0"
    if type(value["subject"]) is not str or not SUBJECT.fullmatch(value["subject"]):
        return "subject is not 32 lowercase hex digits (a daily pseudonym)"
    return "not a canonical record"


def parse_record(raw):
    """A format-2 record's value; EncodingProblem says why raw is not one."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise EncodingProblem("not UTF-8") from None
    if _RECORD.fullmatch(text) is None:
        raise EncodingProblem(record_problem(raw))
    return parse_canonical(raw)


def check_record_chunk(job):
    """Check one chunk of format-2 records (run in a worker); returns a ChunkResult. A chunk whose
    records are all well-formed takes a path that does each step for the whole chunk at once; any
    doubt, and the chunk is checked again record by record, which finds and explains the problem."""
    try:
        result = _check_clean_chunk(job)
    except Exception:  # anything unexpected in a record: the careful path decides
        result = None
    return result if result is not None else _check_chunk(job)


def _check_clean_chunk(job):
    """The result of _check_chunk for a chunk without any problem, or None if it may have one."""
    frame = typed_frame(job.definition)
    if frame is not None:
        return _check_typed_chunk(job, frame)
    period_start, period_end, digester, first_number, blob, definition = job
    clean = clean_columns(_CLEAN_RECORD_LINES, blob, period_start, period_end)
    if clean is None:
        return None
    columns, inputs_values, grams = clean
    formula_of_text = {}  # the same inputs recur: each text is judged and quantified once
    formulas = []
    for inputs_text, inputs in zip(columns[2], inputs_values):
        formula_g = formula_of_text.get(inputs_text)
        if formula_g is None:
            if definition.inputs_problem(inputs) is not None:
                return None
            formula_g = formula_of_text[inputs_text] = definition.formula_g(inputs)
        formulas.append(formula_g)
    numbers = range(first_number, first_number + len(grams))
    groups = _subject_days(columns[5], columns[3], formulas, grams, numbers, digester)
    return ChunkResult(*clean_outcome(blob.split(b"\n"), columns, grams, digester), groups)


# The clean path's frame when every public input of the version is required: the record's whole
# JCS spelling, inputs included (names in JCS order, integers without sign or leading zero, codes
# and enum values needing no escape), so that a match is a record whose inputs are exactly the
# public ones with well-formed values, and only the integers' bounds are left to check. No part
# matches a newline, so with ^ and $ (MULTILINE) a match is one whole line (see activities.py).
# The hex values are matched as any characters but newline (`.`, without DOTALL) and checked to be
# lowercase hex afterwards, all of a chunk's at once: a character class costs the regular expression
# engine a test per character (a third of its time on these lines, even negated), a byte
# translation next to nothing. A '"' inside is no hex digit, so the frame's fields are the same.
_FRAME_HEAD = r'^\{"activity_id":"([A-Za-z0-9][A-Za-z0-9._-]{0,127})","fingerprint":"(.{64})","inputs":\{'
_FRAME_TAIL = (
    r'\},"occurred_on":"([0-9]{4}-[0-9]{2}-[0-9]{2})","private_sha256":"(.{64})",'
    r'"reduction_g":(0|[1-9][0-9]{0,15}),"subject":"(.{32})"\}$'
)
_HEX_DIGITS = b"0123456789abcdef"
_INTEGER_VALUE = "(0|[1-9][0-9]{0,12})"  # at most 10^12, the largest bound of an integer input
_CODE_VALUE = '"[A-Za-z0-9][A-Za-z0-9._-]{0,63}"'


class TypedFrame(NamedTuple):
    lines: object  # re.Pattern: groups activity_id, fingerprint, each integer input, occurred_on, private_sha256, reduction_g, subject
    integer_rules: tuple  # the InputRule of each integer input, in group order
    quantity_column: int  # which of them is the quantity (-1: per_trip, q = 1)


def typed_frame(definition):
    """The frame of a record of this version, or None when a public input is optional (the
    generic clean path then decides). Built per chunk; `re` keeps the compiled pattern."""
    entries, integer_rules, quantity_column = [], [], -1
    for name in sorted(definition.public):  # JCS orders keys by UTF-16 units: for ASCII names, as sorted() does
        rule = definition.public[name]
        if not rule.required:
            return None
        if rule.type == "integer":
            if name == definition.quantity_field:
                quantity_column = len(integer_rules)
            integer_rules.append(rule)
            value = _INTEGER_VALUE
        elif rule.type == "code":
            value = _CODE_VALUE
        else:
            value = '"(?:' + "|".join(map(re.escape, sorted(rule.values))) + ')"'
        entries.append(f'"{name}":{value}')
    return TypedFrame(re.compile(_FRAME_HEAD + ",".join(entries) + _FRAME_TAIL, re.MULTILINE), tuple(integer_rules), quantity_column)


def _check_typed_chunk(job, frame):
    """The clean path with the version's own frame: nothing of `inputs` is parsed."""
    period_start, period_end, digester, first_number, blob, definition = job
    records = blob.split(b"\n")
    fields = frame.lines.findall(blob.decode("utf-8"))
    if len(fields) != len(records):
        return None
    columns = tuple(zip(*fields))
    integers = len(frame.integer_rules)
    days, subjects = columns[2 + integers], columns[5 + integers]
    hex_texts = "".join(columns[1]) + "".join(columns[3 + integers]) + "".join(subjects)
    if hex_texts.encode("utf-8").translate(None, _HEX_DIGITS):
        return None
    grams = list(map(int, columns[4 + integers]))
    if max(grams) > MAX_SAFE_INTEGER:
        return None
    for day in set(days):
        if not (period_start <= day <= period_end and is_real_date(day)):
            return None
    quantities = [1] * len(grams)
    for column, rule in enumerate(frame.integer_rules):
        values = list(map(int, columns[2 + column]))
        if min(values) < rule.low or max(values) > rule.high:
            return None
        if column == frame.quantity_column:
            quantities = values
    numbers = range(first_number, first_number + len(grams))
    groups = _subject_days(subjects, days, definition.formulas_g(quantities), grams, numbers, digester)
    return ChunkResult(*clean_outcome(records, columns, grams, digester), groups)


def _check_chunk(job, every_step=False):
    """The careful path: record by record, explaining the first problem (every_step: each group
    carries its records, see _subject_days)."""
    period_start, period_end, digester, first_number, blob, definition = job
    records = blob.split(b"\n")
    chunk = CarefulChunk(period_start, period_end)
    subjects, days, formulas, grams, numbers = [], [], [], [], []
    for number, match, inputs, reduction_g in chunk.records(records, first_number, _RECORD.fullmatch, record_problem):
        inputs_problem = definition.inputs_problem(inputs)
        if inputs_problem is not None:
            chunk.note(number, f"record on line {number}: {inputs_problem}")
            continue
        subjects.append(match.group(6))
        days.append(match.group(4))
        formulas.append(definition.formula_g(inputs))
        grams.append(reduction_g)
        numbers.append(number)
    groups = _subject_days(subjects, days, formulas, grams, numbers, digester, every_step)
    return ChunkResult(*chunk.outcome(len(records), digester), groups)


def _subject_days(subjects, days, formulas, grams, numbers, digester, every_step=False):
    """Group a chunk's well-formed records (columns, numbers[i] the line of record i) by (subject,
    day): by the subject alone when no subject of the chunk has two days (always, in a valid file),
    which saves a tuple per record. A group carries its records (steps) when one is off its
    formula, or always with every_step."""
    day_of = dict(zip(subjects, days))  # a subject's last day: each record's day is that of its subject, or not
    distinct_days = set(days)
    by_subject = len(distinct_days) == 1 or all(map(eq, map(day_of.__getitem__, subjects), days))
    keys = subjects if by_subject else list(zip(subjects, days))
    count = len(keys)
    first = dict(zip(reversed(keys), reversed(numbers)))  # the last write of a key is its first record
    totals = dict.fromkeys(keys, 0)  # in order of first appearance
    for key, reduction_g in zip(keys, grams):
        totals[key] += reduction_g
    steps = dict.fromkeys(totals)
    off_formula = set(keys) if every_step else {keys[position] for position in compress(range(count), map(ne, formulas, grams))}
    if off_formula:
        for position in compress(range(count), map(off_formula.__contains__, keys)):
            group = steps[keys[position]]
            if group is None:
                group = steps[keys[position]] = []
            group.append((numbers[position], formulas[position], grams[position]))
    if by_subject:
        group_subjects, group_days = list(totals), map(day_of.__getitem__, totals)
    else:
        group_subjects, group_days = [subject for subject, _ in totals], [day for _, day in totals]
    one_of = {day: day for day in distinct_days}  # one object per day, so that it is sent once
    return SubjectDays(
        digester.pack_of_texts(group_subjects),  # never 0, the empty slot of KnownSubjects
        list(map(one_of.__getitem__, group_days)),
        list(map(first.__getitem__, totals)),
        list(totals.values()),
        list(steps.values()),
        by_subject,
    )


def _earliest(finding, number, message):
    """The finding of the lower record number: (number, "line N: message")."""
    if finding is not None and finding[0] <= number:
        return finding
    return (number, f"line {number}: {message}")


class ChunkPlace(NamedTuple):
    first_number: int  # line number of the chunk's first record
    count: int


def _lines(path, first_number, count):
    """Lines first_number to first_number + count - 1 of an activity file (read from its start)."""
    reader = LineReader(path, "activity file", MAX_RECORD_BYTES, require_final_newline=False)
    wanted, number = [], 0
    for lines in reader.blocks():
        if number + len(lines) >= first_number:
            wanted.extend(lines[max(0, first_number - 1 - number) : first_number - 1 + count - number])
            if len(wanted) >= count:
                break
        number += len(lines)
    return wanted


class _FileState2(_FileState):
    __slots__ = ("subject_days", "cap_totals", "quantification", "privacy", "chunk", "every_step")

    def __init__(self):
        super().__init__()
        self.subject_days = {}  # this file's subjects not seen in earlier batches -> day
        # Grams of this file's methodology so far (earlier batches included), by subject digest for
        # the subject's one day, by (digest, day) for another day (then the file is PRIVACY anyway).
        self.cap_totals = {}
        self.quantification = None  # first (record number, message)
        self.privacy = None
        self.chunk = None  # ChunkPlace of the chunk being merged
        self.every_step = None  # (ChunkPlace, its groups' records): see ActivityChecker2._every_step


class ActivityChecker2(ActivityChecker):
    """The format-2 checker: called by replay_v2 with the batch's methodology version and whether
    an earlier batch of its methodology_id was registered unverified (then a record's grams are
    only checked to be at most what section 7.2 gives)."""

    def __init__(self, *args, pinned_subjects=frozenset(), subjects_whole=False, **kwargs):
        super().__init__(*args, **kwargs)
        memory_limit = self.uniqueness.memory_limit
        self.pinned_subjects = frozenset(pinned_subjects)
        self.known_subjects = KnownSubjects(None if subjects_whole else memory_limit // 4, self.pinned_subjects)
        self.subject_stream = SubjectStream(memory_limit // 16, self.uniqueness.spill_directory)
        self.generation_at = []  # per reading: the subjects' generation current at its lookups
        self.generations_forgotten = 0
        self._definition = None
        self._relaxed = False
        self._batch = None  # the body of the batch being checked

    def __call__(self, leaf, definition, relaxed):
        self._definition = definition
        self._relaxed = relaxed
        self._batch = leaf.body
        return super().__call__(leaf)

    @staticmethod
    def _new_file_state():
        return _FileState2()

    def _chunk_job(self, period, first_number, blob):
        return "records_v2", RecordJob(period[0], period[1], self.digester, first_number, blob, self._definition)

    def _merge_chunk(self, state, first_number, result):
        super()._merge_chunk(state, first_number, result)
        state.chunk = ChunkPlace(first_number, result.count)
        groups = result.groups
        subjects = digests_to_array(groups.subjects)
        # Each group's reference day: that of its subject in this file so far, or in an earlier
        # batch (never both: state.subject_days holds only subjects no earlier batch has), or None.
        references = list(map(state.subject_days.get, subjects))
        known_grams = self.known_subjects.days_and_grams(subjects, self._definition.methodology_id, references)
        if not (groups.by_subject and self._merge_at_once(state, subjects, groups, references, known_grams)):
            self._merge_each(state, subjects, groups, references, known_grams)

    def _merge_at_once(self, state, subjects, groups, references, known_grams):
        """The common case a column at a time: each subject once in the chunk, on its reference day
        if it has one, and no subject beyond the cap. False, having changed nothing, otherwise."""
        days = groups.days
        new = list(map(is_, references, repeat(None)))
        if sum(new) + sum(map(eq, references, days)) != len(days):
            return False
        cap_g = self._definition.daily_cap_g
        befores = list(map(state.cap_totals.get, subjects, known_grams))
        afters = list(map(add, befores, groups.totals_g))
        if afters and max(afters) > cap_g:
            return False
        if any(groups.steps):
            self._check_steps(state, compress(zip(groups.steps, befores), groups.steps))
        state.subject_days.update(compress(zip(subjects, days), new))
        state.cap_totals.update(zip(subjects, afters))
        return True

    def _merge_each(self, state, subjects, groups, references, known_grams):
        """Group by group, finding and explaining PRIVACY and QUANTIFICATION."""
        cap_g = self._definition.daily_cap_g
        state_days, state_grams = state.subject_days, state.cap_totals
        for subject, day, first_number, total_g, steps, reference, known_g in zip(
            subjects, groups.days, groups.first_numbers, groups.totals_g, groups.steps, references, known_grams
        ):
            if reference is None:  # a new subject: the day of its first group in this file
                reference = state_days.setdefault(subject, day)
            if reference == day:
                key = subject
            else:
                state.privacy = _earliest(state.privacy, first_number, f"its subject has records on {reference} and {day}")
                key, known_g = (subject, day), 0
            before_g = state_grams.get(key, known_g)
            if steps is None and before_g + total_g > cap_g and (state.quantification is None or first_number < state.quantification[0]):
                # Every record is at its formula and one of them goes beyond the cap: which one
                # depends on each record's grams, which a worker sends only for groups off their
                # formula, so the chunk is checked again here to name it (whatever the chunking).
                steps = self._every_step(state)[(subject, day)]
            if steps is not None:
                self._check_steps(state, ((steps, before_g),))
            state_grams[key] = before_g + total_g

    def _every_step(self, state):
        """(subject digest, day) -> the records of that group in the chunk being merged, read again
        from the file (kept for the chunk: at most one chunk a file is read twice, since the first
        record it names comes before every group of a later chunk)."""
        if state.every_step is None or state.every_step[0] != state.chunk:
            batch = self._batch
            blob = b"\n".join(_lines(self._path_of(batch), state.chunk.first_number, state.chunk.count))
            _, job = self._chunk_job((batch["period_start"], batch["period_end"]), state.chunk.first_number, blob)
            groups = _check_chunk(job, every_step=True).groups
            keys = zip(digests_to_array(groups.subjects), groups.days)
            state.every_step = (state.chunk, dict(zip(keys, groups.steps)))
        return state.every_step[1]

    def _check_steps(self, state, groups):
        """Section 7.2 record by record, for each (steps, grams before them) of groups (in relaxed
        mode, only that no record is above it). One call a chunk: a group has two or three records."""
        cap_g = self._definition.daily_cap_g
        strict = not self._relaxed
        for steps, before_g in groups:
            for number, formula_g, reduction_g in steps:
                room_g = cap_g - before_g if before_g < cap_g else 0
                expected_g = formula_g if formula_g < room_g else room_g  # min(formula_g, max(0, cap_g - before_g))
                if reduction_g != expected_g if strict else reduction_g > expected_g:
                    message = f"reduction_g {reduction_g}, section 7.2 gives {expected_g}"
                    state.quantification = _earliest(state.quantification, number, message)
                before_g += reduction_g

    def _first_finding(self, state, body, unterminated):
        """Section 7.3's order: DUPLICATE_ID, BATCH, QUANTIFICATION, PRIVACY, DUPLICATE_ACTIVITY."""
        finding = super()._first_finding(state, body, unterminated)
        if finding is not None and finding[0] != "DUPLICATE_ACTIVITY":
            return finding
        name = f"activities/{body['batch_id']}.jsonl"
        if state.quantification is not None:
            return ("QUANTIFICATION", f"{name} {state.quantification[1]}")
        if state.privacy is not None:
            return ("PRIVACY", f"{name} {state.privacy[1]}")
        return finding

    def _keep_file(self, state):
        self.known_subjects.keep(state.subject_days, state.cap_totals, self._definition.methodology_id)

    def _conclude_file(self, state, body, unterminated):
        # Every subject of the reading, whatever the file's outcome (subjects.py): its count
        # decides where generations begin, and the stream of them which subjects were at risk.
        subjects = state.cap_totals.keys()
        if state.privacy is not None:  # a subject on a second day is also keyed (digest, day)
            subjects = {key if type(key) is int else key[0] for key in subjects}
        read = len(self.uniqueness.reads) - 1
        assert read == len(self.generation_at), "a reading without its generation"
        self.generation_at.append(self.known_subjects.generations)
        self.known_subjects.begin_reading(len(subjects))
        finding = super()._conclude_file(state, body, unterminated)
        self.known_subjects.end_reading()
        if self.pinned_subjects:
            subjects = [subject for subject in subjects if subject not in self.pinned_subjects]
        self.subject_stream.add(subjects, read)
        return finding

    def subjects_at_risk(self, runner):
        """After the log: the subjects whose readings spanned two generations or more, none if no
        generation was forgotten; the pass was exact for subjects if it had pinned them all. The
        tables are dropped first."""
        self.generations_forgotten = self.known_subjects.generations_forgotten
        self.known_subjects = None
        if not self.generations_forgotten:
            return frozenset()
        return at_risk(self.subject_stream.written_again(runner, self.uniqueness.search_share(runner)), self.generation_at)
