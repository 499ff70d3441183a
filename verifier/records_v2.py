"""Activity records of a format-2 log (spec sections 7.2 to 7.4): each record checked against its
batch and its methodology version, re-quantified in exact integers, and every subject's date and
daily total followed across the whole log.

A worker checks a chunk of records as in format 1 (activities.py) and also, for each (subject,
occurred_on) of the chunk, the records' formula values (section 7.2, which need no state). The
daily cap and PRIVACY need the totals of earlier batches (log order) and earlier chunks (file
order): the main process applies each chunk's groups in chunk order, as an inline run does, so
the outcome is the same for any number of workers. A group whose records all equal their formula
needs only its total: it is valid exactly when the subject's total before it plus that total stays
within the cap (then no record of it had to be clipped; else one was and is not). Any other group
carries its records, stepped through one by one.

A record is canonical when it is exactly
`{"activity_id":ID,"fingerprint":HEX64,"inputs":{...},"occurred_on":DATE,"private_sha256":HEX64,"reduction_g":INT,"subject":SUBJECT}`
in JCS. Every value but `inputs` is escape-free by its pattern, and a valid `inputs` holds only
integers and codes, so one regular expression matches the frame and only `inputs` is parsed.
"""

import re
from typing import NamedTuple

from verifier.activities import ActivityChecker, CarefulChunk, _FileState, clean_columns, clean_outcome, parsed_record
from verifier.canonical import EncodingProblem, parse_canonical
from verifier.schema import HEX64, is_real_date

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
    blob: bytes  # the records joined by newlines (activities.FileSlice on its way to a Dask worker)
    definition: object  # methodologies.Definition of the batch's version


class SubjectDay(NamedTuple):
    """The records of one (subject, occurred_on) in one chunk."""

    subject: int  # keyed digest of the subject
    cap_key: int  # keyed digest of (subject, methodology_id, occurred_on)
    day: str
    first_number: int
    total_g: int
    steps: object  # None (every record at its formula), or ((number, formula_g, reduction_g), ...)


class ChunkResult(NamedTuple):
    count: int
    total_g: int
    subtrees: list
    ids: bytes
    fingerprints: bytes
    undigested: list
    problem: object  # (record number, message) of the first BATCH, or None
    groups: list  # [SubjectDay], in order of first appearance


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
    period_start, period_end, digester, first_number, blob, definition = job
    clean = clean_columns(_CLEAN_RECORD_LINES, blob, period_start, period_end)
    if clean is None:
        return None
    columns, inputs_values, grams = clean
    formula_of_text = {}  # the same inputs recur: each text is judged and quantified once
    groups = {}
    number = first_number
    for inputs_text, inputs, subject, day, reduction_g in zip(columns[2], inputs_values, columns[5], columns[3], grams):
        formula_g = formula_of_text.get(inputs_text)
        if formula_g is None:
            if definition.inputs_problem(inputs) is not None:
                return None
            formula_g = formula_of_text[inputs_text] = definition.formula_g(inputs)
        group = groups.get((subject, day))
        if group is None:
            group = groups[(subject, day)] = (number, [])
        group[1].append((number, formula_g, reduction_g))
        number += 1
    return ChunkResult(*clean_outcome(blob, columns, grams, digester), _subject_days(groups, definition, digester))


def _check_chunk(job):
    """The careful path: record by record, explaining the first problem."""
    period_start, period_end, digester, first_number, blob, definition = job
    records = blob.split(b"\n")
    chunk = CarefulChunk(period_start, period_end)
    groups = {}  # (subject, day) -> (first number, [(number, formula_g, reduction_g), ...])
    for number, match, inputs, reduction_g in chunk.records(records, first_number, _RECORD.fullmatch, record_problem):
        inputs_problem = definition.inputs_problem(inputs)
        if inputs_problem is not None:
            chunk.note(number, f"record on line {number}: {inputs_problem}")
            continue
        key = (match.group(6), match.group(4))
        group = groups.get(key)
        if group is None:
            group = groups[key] = (number, [])
        group[1].append((number, definition.formula_g(inputs), reduction_g))
    return ChunkResult(*chunk.outcome(len(records), digester), _subject_days(groups, definition, digester))


def _subject_days(groups, definition, digester):
    methodology_id = definition.methodology_id
    of_text = digester.of_text
    result = []
    for (subject, day), (first_number, steps) in groups.items():
        total_g = sum(reduction_g for _, _, reduction_g in steps)
        unclipped = all(formula_g == reduction_g for _, formula_g, reduction_g in steps)
        result.append(
            SubjectDay(of_text(subject), of_text(f"{subject}\x00{methodology_id}\x00{day}"), day, first_number, total_g, None if unclipped else tuple(steps))
        )
    return result


def _earliest(finding, number, message):
    """The finding of the lower record number: (number, "line N: message")."""
    if finding is not None and finding[0] <= number:
        return finding
    return (number, f"line {number}: {message}")


class _FileState2(_FileState):
    __slots__ = ("subject_days", "cap_totals", "quantification", "privacy")

    def __init__(self):
        super().__init__()
        self.subject_days = {}  # this file's subjects not seen in earlier batches -> day
        self.cap_totals = {}  # cap key -> grams, earlier batches and this file so far
        self.quantification = None  # first (record number, message)
        self.privacy = None


class ActivityChecker2(ActivityChecker):
    """The format-2 checker: called by replay_v2 with the batch's methodology version and whether
    an earlier batch of its methodology_id was registered unverified (then a record's grams are
    only checked to be at most what section 7.2 gives)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.subject_days = {}  # subject digest -> the one occurred_on of its accepted records
        self.cap_totals = {}  # digest of (subject, methodology_id, occurred_on) -> grams credited
        self._definition = None
        self._relaxed = False

    def __call__(self, leaf, definition, relaxed):
        self._definition = definition
        self._relaxed = relaxed
        return super().__call__(leaf)

    @staticmethod
    def _new_file_state():
        return _FileState2()

    def _submit(self, period, first_number, blob):
        job = RecordJob(period[0], period[1], self.digester, first_number, blob, self._definition)
        return self.runner.submit("records_v2", job)

    def _merge(self, state, first_number, ticket):
        result = self.runner.result(ticket)
        self._merge_result(state, first_number, result)
        cap_g = self._definition.daily_cap_g
        strict = not self._relaxed
        known_days = self.subject_days
        known_totals = self.cap_totals
        for group in result.groups:
            day = state.subject_days.get(group.subject) or known_days.get(group.subject)
            if day is None:
                state.subject_days[group.subject] = group.day
            elif day != group.day:
                state.privacy = _earliest(state.privacy, group.first_number, f"its subject has records on {day} and {group.day}")
            before_g = state.cap_totals.get(group.cap_key)
            if before_g is None:
                before_g = known_totals.get(group.cap_key, 0)
            if group.steps is None:
                if before_g + group.total_g > cap_g:
                    message = f"its subject's records on {group.day} reach {before_g + group.total_g} g, above the daily cap of {cap_g} g"
                    state.quantification = _earliest(state.quantification, group.first_number, message)
                before_g += group.total_g
            else:
                for number, formula_g, reduction_g in group.steps:
                    expected_g = min(formula_g, max(0, cap_g - before_g))
                    if reduction_g != expected_g if strict else reduction_g > expected_g:
                        message = f"reduction_g {reduction_g}, section 7.2 gives {expected_g}"
                        state.quantification = _earliest(state.quantification, number, message)
                    before_g += reduction_g
            state.cap_totals[group.cap_key] = before_g

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
        self.subject_days.update(state.subject_days)
        self.cap_totals.update(state.cap_totals)
