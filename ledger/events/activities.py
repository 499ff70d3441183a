"""activity.batch: a platform's records of low-carbon acts (spec section 7), committed to by
count, total and Merkle root, and the house rules that keep personal data out of them. In format 2
every record is re-quantified by its version's definition under the daily cap (section 7.2) and
each daily pseudonym keeps one date (sections 7.3, 7.4)."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any, Callable, NamedTuple, Sequence

from ledger.batch_blocks import batch_root, block_count, block_hashes
from ledger.canonical import MAX_SAFE_INT, check_value, jcs
from ledger.definitions import Definition, compile_definition
from ledger.errors import Rejected
from ledger.events.base import Body, DirtyRows, EventType, NewId, Serials, Verdict, check_period, unauthorized
from ledger.field_checks import DATE, HEX64, IDENT, TIME, date, hex64, identifier, integer, is_int
from ledger.merkle import leaf_hash, root_of_leaf_hashes
from ledger.state import ActivityIndex, ActivityRecord, Batch, Key, State

RECORD_FIELDS = frozenset(("activity_id", "fingerprint", "inputs", "occurred_at", "reduction_g", "subject"))
MAX_BATCH_RECORDS = 1_000_000


def declared_inputs(params: Any) -> frozenset[str]:
    """The input names a methodology version's params declare (`inputs`, as quantify writes a
    definition); none when its params declare none."""
    inputs = params.get("inputs") if isinstance(params, dict) else None
    return frozenset(inputs) if isinstance(inputs, dict) else frozenset()


class UnreadableRecord(NamedTuple):
    """A record the registry could not take as JSON it stores (not JSON, a number beyond
    ±(2^53-1), a string holding U+0000): BATCH in its turn (spec section 9 and 10.6), after every
    rule of its event and any DUPLICATE_ID of the other records, not before them."""
    reason: str


def parse_record(record: Any, index: int, allowed_inputs: frozenset[str]) -> ActivityRecord:
    """One activity record (spec section 7), as a dict already parsed strictly. Failures are BATCH.

    Two house rules keep personal data out of the append-only log (a registry may refuse more
    than the spec forbids): the subject is a pseudonym of the identifier form (a name or a phone
    number with spaces, '+' or CJK characters is not), and the inputs are only those the
    methodology version declares."""
    def bad(why: str) -> Rejected:
        return Rejected("BATCH", f"activity record {index}: {why}")
    if isinstance(record, UnreadableRecord):
        raise bad(record.reason)
    if not isinstance(record, dict) or set(record) != RECORD_FIELDS:
        raise bad(f"must have exactly the fields {', '.join(sorted(RECORD_FIELDS))}")
    if not isinstance(record["activity_id"], str) or not IDENT.fullmatch(record["activity_id"]):
        raise bad("activity_id is not an identifier")
    if not isinstance(record["fingerprint"], str) or not HEX64.fullmatch(record["fingerprint"]):
        raise bad("fingerprint is not 64 lowercase hex")
    if not isinstance(record["inputs"], dict):
        raise bad("inputs is not an object")
    if not isinstance(record["occurred_at"], str) or not TIME.fullmatch(record["occurred_at"]):
        raise bad("occurred_at is not YYYY-MM-DDTHH:MM:SS.ffffffZ")
    reduction = record["reduction_g"]
    if not isinstance(reduction, int) or isinstance(reduction, bool) or not 0 <= reduction <= 2**53 - 1:
        raise bad("reduction_g is not a non-negative integer")
    if not isinstance(record["subject"], str) or not IDENT.fullmatch(record["subject"]):
        raise bad("subject is not a pseudonym (an identifier ^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$): personal data "
                  "never enters the log")
    undeclared = record["inputs"].keys() - allowed_inputs
    if undeclared:
        raise bad(f"inputs {sorted(undeclared)[:5]} are not inputs its methodology declares: a record carries only "
                  f"those (declared: {sorted(allowed_inputs) or 'none'})")
    return ActivityRecord(record["activity_id"], record["fingerprint"], record["occurred_at"], reduction,
                          record["subject"], jcs(record))


# China Standard Time: UTC+8, no daylight saving.
BEIJING_OFFSET = dt.timedelta(hours=8)


def beijing_date(time: str) -> str:
    """The Beijing date (UTC+8, spec section 1) of a spec TIME."""
    return (dt.datetime.fromisoformat(time[:19]) + BEIJING_OFFSET).date().isoformat()


def records_after(records: Sequence[ActivityRecord], time: str) -> Rejected | None:
    """A registry's house rule (docs/spec-readings.md, "Records dated after their batch"): no record
    of a batch is dated after the Beijing date of the batch event's time, the moment the registry
    sequences it, since the log cannot hold an act that has not happened yet. BATCH, as a record
    the registry refuses; judged after every rule of the spec, so it never hides a spec code."""
    latest = beijing_date(time)
    for index, r in enumerate(records):
        day = r.occurred_on if r.occurred_on is not None else beijing_date(r.occurred_at or "")
        if day > latest:
            return Rejected("BATCH", f"activity record {index} ({r.activity_id}) is dated {day}, after the batch's "
                                     f"own date {latest} (Beijing time): a batch reports acts that have happened")
    return None


def batch_commitment(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """count, total_g and root of a batch's records, as the platform commits to them (and
    ActivityBatch.judge checks them)."""
    return {"count": len(records), "total_g": sum(r["reduction_g"] for r in records),
            "root": root_of_leaf_hashes([leaf_hash(jcs(r)) for r in records]).hex()}


def _file_problem_v1(body: Body, records: Sequence[ActivityRecord]) -> Rejected | None:
    """The first BATCH of a format-1 file whose every record is well-formed before its root:
    count, total, a date outside the period."""
    try:
        _check_count_and_total(body, len(records), records)
        for r in records:
            if not body["period_start"] <= r.occurred_at[:10] <= body["period_end"]:
                raise Rejected("BATCH", f"activity {r.activity_id} occurred on {r.occurred_at[:10]}, outside the "
                                        f"batch period")
    except Rejected as rejection:
        return rejection
    return None


def _repeated_id(body: Body, records: Sequence[ActivityRecord]) -> Rejected | None:
    """DUPLICATE_ID within the file: an activity_id twice."""
    ids = [r.activity_id for r in records]
    if len(set(ids)) != len(ids):
        return Rejected("DUPLICATE_ID", f"batch {body['batch_id']} repeats an activity_id")
    return None


def _logged_id(records: Sequence[ActivityRecord], known_activity_ids: Callable[[list[str]], set[str]]) -> Rejected | None:
    """DUPLICATE_ID across batches: an activity_id the log already holds."""
    known = known_activity_ids([r.activity_id for r in records])
    if known:
        return Rejected("DUPLICATE_ID", f"activity_id {sorted(known)[0]} is already in the log")
    return None


def _check_count_and_total(body: Body, count: int, records: Sequence[ActivityRecord]) -> None:
    if count != body["count"]:
        raise Rejected("BATCH", f"batch holds {count} records, count says {body['count']}")
    total_g = sum(r.reduction_g for r in records)
    if total_g != body["total_g"]:
        raise Rejected("BATCH", f"records add up to {total_g} g, total_g says {body['total_g']}")


def _check_root(body: Body, records: Sequence[ActivityRecord]) -> list[bytes]:
    """The records' block hashes (ledger.batch_blocks), if they hash to the root the body commits
    to: the root is folded from them, so each record is hashed once for both."""
    hashes = block_hashes([leaf_hash(r.data) for r in records])
    root = batch_root(hashes).hex()
    if root != body["root"]:
        raise Rejected("BATCH", f"records hash to root {root}, the batch commits to {body['root']}")
    return hashes


def _check_new_fingerprints(body: Body, records: Sequence[ActivityRecord], index: ActivityIndex) -> None:
    fingerprints = [r.fingerprint for r in records]
    if len(set(fingerprints)) != len(fingerprints):
        raise Rejected("DUPLICATE_ACTIVITY", f"batch {body['batch_id']} reports one real-world act twice (same fingerprint)")
    known = index.known_fingerprints(fingerprints)
    if known:
        raise Rejected("DUPLICATE_ACTIVITY", f"fingerprint {sorted(known)[0]} was already reported (by this or another platform)")


# -- format 2 (spec sections 7.2 to 7.4) ---------------------------------------------------------
# A file that breaks several rules gets the first code of section 7.3's list broken anywhere in it
# (DUPLICATE_ID, BATCH, QUANTIFICATION, PRIVACY, DUPLICATE_ACTIVITY), as a verifier reports it: one
# pass over the records notes each rule's first breach, and the codes are raised in that order after.
# A malformed record is BATCH and, as in the verifier, counts for no other rule.

RECORD_FIELDS_V2 = frozenset(("activity_id", "fingerprint", "inputs", "occurred_on", "private_sha256", "reduction_g",
                              "subject"))
SUBJECT = re.compile(r"[0-9a-f]{32}")  # a daily pseudonym (section 7.4)


class _Quantified(NamedTuple):
    """A well-formed record with valid inputs, as quantification and PRIVACY read it."""
    index: int
    subject: str
    occurred_on: str
    formula_g: int
    reduction_g: int


def _shape_problem_v2(record: Any, real_dates: dict[str, bool]) -> str | None:
    """Why a record is not of section 7.3's format-2 shape (BATCH); `real_dates` remembers each date judged."""
    if type(record) is UnreadableRecord:
        return record.reason
    if type(record) is not dict or record.keys() != RECORD_FIELDS_V2:
        return f"must have exactly the fields {', '.join(sorted(RECORD_FIELDS_V2))}"
    if type(record["activity_id"]) is not str or not IDENT.fullmatch(record["activity_id"]):
        return "activity_id is not an identifier"
    if type(record["fingerprint"]) is not str or not HEX64.fullmatch(record["fingerprint"]):
        return "fingerprint is not 64 lowercase hex"
    if type(record["inputs"]) is not dict:
        return "inputs is not an object"
    day = record["occurred_on"]
    if type(day) is not str or not _is_real_date(day, real_dates):
        return "occurred_on is not a real date YYYY-MM-DD"
    if type(record["private_sha256"]) is not str or not HEX64.fullmatch(record["private_sha256"]):
        return "private_sha256 is not 64 lowercase hex"
    reduction_g = record["reduction_g"]
    if not is_int(reduction_g) or not 0 <= reduction_g <= MAX_SAFE_INT:
        return "reduction_g is not an integer in 0..2^53-1"
    if type(record["subject"]) is not str or not SUBJECT.fullmatch(record["subject"]):
        return "subject is not a daily pseudonym (32 lowercase hex): personal data never enters the log"
    return None


def _is_real_date(text: str, real_dates: dict[str, bool]) -> bool:
    real = real_dates.get(text)
    if real is None:
        real = DATE.fullmatch(text) is not None
        if real:
            try:
                dt.date.fromisoformat(text)
            except ValueError:
                real = False
        real_dates[text] = real
    return real


def check_file_v2(body: Body, definition: Definition, records: Sequence[Any]) -> "CheckedFile":
    """A format-2 file by every rule of section 7.3 that needs no state (one pass, each rule's first
    breach noted): its well-formed records, those with valid inputs quantified by the formula."""
    start, end = body["period_start"], body["period_end"]
    parsed: list[ActivityRecord] = []
    quantified: list[_Quantified] = []
    batch_problem: str | None = None
    real_dates: dict[str, bool] = {}
    for i, record in enumerate(records):
        problem = _shape_problem_v2(record, real_dates)
        if problem is not None:
            batch_problem = batch_problem or f"activity record {i}: {problem}"
            continue
        subject, day, reduction_g = record["subject"], record["occurred_on"], record["reduction_g"]
        parsed.append(ActivityRecord(record["activity_id"], record["fingerprint"], None, reduction_g, subject,
                                     jcs(record), day))
        if batch_problem is None and not start <= day <= end:
            batch_problem = f"activity record {i} occurred on {day}, outside the batch period {start}..{end}"
        inputs = record["inputs"]
        problem = definition.inputs_problem(inputs)
        if problem is not None:
            batch_problem = batch_problem or f"activity record {i}: {problem}"
            continue
        quantified.append(_Quantified(i, subject, day, definition.formula_g(inputs), reduction_g))
    file_problem = None if batch_problem is None else Rejected("BATCH", batch_problem)
    hashes: list[bytes] = []
    if file_problem is None:
        try:
            _check_count_and_total(body, len(records), parsed)
            hashes = _check_root(body, parsed)
        except Rejected as rejection:
            file_problem = rejection
    return CheckedFile(body, parsed, _repeated_id(body, parsed), file_problem, quantified, definition.methodology_id,
                       definition.daily_cap_g, block_hashes=hashes)


def _check_quantities_and_days(methodology_id: str, cap_g: int, quantified: list[_Quantified],
                               index: ActivityIndex) -> None:
    """QUANTIFICATION (section 7.2: each record's formula, clipped by its subject's daily cap after
    what earlier batches and the file's earlier records claim), then PRIVACY (one date a subject)."""
    logged = index.subject_days(list({q.subject for q in quantified}), methodology_id)
    file_days: dict[str, str] = {}  # subjects the log does not hold yet -> their first date in the file
    totals_g: dict[tuple[str, str], int] = {}  # (subject, occurred_on) -> grams credited so far
    quantification: str | None = None
    privacy: str | None = None
    for q in quantified:
        subject, day = q.subject, q.occurred_on
        known = logged.get(subject)
        subject_day = known.occurred_on if known is not None else file_days.setdefault(subject, day)
        if privacy is None and subject_day != day:
            privacy = (f"activity record {q.index}: its subject has records on {subject_day} and {day}: a daily "
                       f"pseudonym names one date (spec 7.4)")
        key = (subject, day)
        before_g = totals_g.get(key)
        if before_g is None:
            before_g = known.credited_g if known is not None and known.occurred_on == day else 0
        expected_g = min(q.formula_g, max(0, cap_g - before_g))
        if quantification is None and q.reduction_g != expected_g:
            quantification = (f"activity record {q.index}: reduction_g {q.reduction_g}, spec 7.2 gives {expected_g} "
                              f"(formula {q.formula_g} g, {before_g} g of the daily cap of {cap_g} g credited before)")
        totals_g[key] = before_g + q.reduction_g
    if quantification is not None:
        raise Rejected("QUANTIFICATION", quantification)
    if privacy is not None:
        raise Rejected("PRIVACY", privacy)


# -- a file judged in two halves ------------------------------------------------------------------
# What needs no state (parsing, shapes, inputs, count, total, period, root, the formula) is judged
# once per file by check_file: under `puhui serve` by the HTTP front, off the writer
# (api/admission.py), which sends the writer this CheckedFile instead of the records. The writer
# then judges only what needs the log (judge_checked): ids and fingerprints already logged, and in
# format 2 the daily caps and dates of subjects already logged.

@dataclass(slots=True)
class CheckedFile:
    """An activity file judged by every rule of section 7.3 that needs no state, against its
    batch's body and its methodology version's params."""
    body: Body  # the activity.batch body it was judged against
    records: list[ActivityRecord]  # its well-formed records, in file order
    repeated_id: Rejected | None  # DUPLICATE_ID: an activity_id twice in the file
    problem: Rejected | None  # the first BATCH the file holds
    quantified: list[_Quantified] = field(default_factory=list)  # format 2: the records with valid inputs
    methodology_id: str = ""  # format 2: whose daily cap they fall under,
    daily_cap_g: int = 0  # and that cap in its version
    # Its code, when nothing the writer holds can change it: the writer then needs no record.
    refusal: Rejected | None = None
    block_hashes: list[bytes] = field(default_factory=list)  # of its records, once their root is checked

    @classmethod
    def refused(cls, body: Body, refusal: Rejected) -> "CheckedFile":
        """A file whose code is decided: no record of it goes on (to the writer)."""
        return cls(body, [], None, None, refusal=refusal)


def readable_records(records: Sequence[Any]) -> list[Any]:
    """Each record as given if the registry can store it (check_value), else an UnreadableRecord
    that the file's rules refuse as BATCH in its turn."""
    readable = []
    for record in records:
        if not isinstance(record, UnreadableRecord):
            try:
                check_value(record)
            except Rejected as exc:
                record = UnreadableRecord(exc.message)
        readable.append(record)
    return readable


def check_file(body: Body, log_format: int, params: Any, records: Sequence[Any]) -> CheckedFile:
    """The rules of section 7.3 that need no state, on records as parsed JSON objects (each passed
    through readable_records), for a batch of this body whose methodology version has these params."""
    if len(records) > MAX_BATCH_RECORDS:
        return CheckedFile.refused(body, Rejected("BATCH", f"a batch holds at most {MAX_BATCH_RECORDS} records"))
    if log_format == 2:  # compiled once a batch: each record then costs a few integer operations
        return check_file_v2(body, compile_definition(body["methodology_id"], body["methodology_version"], params),
                              records)
    allowed = declared_inputs(params)
    parsed: list[ActivityRecord] = []
    malformed: Rejected | None = None  # the first BATCH of a record: after the others' DUPLICATE_ID (7.3's order)
    for i, record in enumerate(records):
        try:
            parsed.append(parse_record(record, i, allowed))
        except Rejected as rejection:
            malformed = malformed or rejection
    problem = malformed or _file_problem_v1(body, parsed)
    hashes: list[bytes] = []
    if problem is None:
        try:
            hashes = _check_root(body, parsed)
        except Rejected as rejection:
            problem = rejection
    return CheckedFile(body, parsed, _repeated_id(body, parsed), problem, block_hashes=hashes)


def settle_early(checked: CheckedFile, known_activity_ids: Callable[[list[str]], set[str]]) -> CheckedFile:
    """The file refused at once when it breaks a rule that needs no state: its code is then
    DUPLICATE_ID if an id repeats or is logged (by `known_activity_ids`, of the committed log: an
    id logged stays logged; one logged after this read comes from a batch concurrent with this
    one, which may as well come after it), else its BATCH. Else the file as it was."""
    if checked.refusal is not None or (checked.repeated_id is None and checked.problem is None):
        return checked
    refusal = checked.repeated_id or _logged_id(checked.records, known_activity_ids) or checked.problem
    assert refusal is not None
    return CheckedFile.refused(checked.body, refusal)


def judge_checked(checked: CheckedFile, index: ActivityIndex) -> list[ActivityRecord]:
    """The file's records if it breaks no rule of section 7.3, judged by what needs the log; else
    Rejected with the first code of that list broken anywhere in it."""
    for refusal in (checked.refusal, checked.repeated_id):
        if refusal is not None:
            raise refusal
    logged = _logged_id(checked.records, index.known_activity_ids)
    if logged is not None:
        raise logged
    if checked.problem is not None:
        raise checked.problem
    if checked.quantified:
        _check_quantities_and_days(checked.methodology_id, checked.daily_cap_g, checked.quantified, index)
    _check_new_fingerprints(checked.body, checked.records, index)
    return checked.records


class ActivityBatch(EventType):
    name = "activity.batch"
    body_fields = {"batch_id": identifier, "platform": identifier, "methodology_id": identifier,
                   "methodology_version": integer(1, 1_000_000), "period_start": date, "period_end": date,
                   "count": integer(1), "total_g": integer(0), "root": hex64}
    new_id = NewId("batch_id", "batches", "batch")

    def check_across_fields(self, body: Body) -> None:
        check_period(body)

    def authorize(self, state: State, body: Body, key: Key) -> None:
        platform = state.accounts.get(body["platform"])
        if not ("platform" in key.roles and platform is not None and platform.kind == "platform"
                and key.key_id in platform.controllers):
            raise unauthorized(key, f"a platform key controlling platform account {body['platform']}")

    def judge(self, state: State, body: Body, activities: ActivityIndex, records: Sequence[Any] | CheckedFile | None,
              effects: Serials | None) -> Verdict:
        """`records` are the batch's records as parsed JSON objects (each through readable_records),
        or the CheckedFile the HTTP front made of them for this very body."""
        methodology_id, version = body["methodology_id"], body["methodology_version"]
        methodology = state.methodologies.get(methodology_id)
        if methodology is None or version not in methodology.versions:
            raise Rejected("UNKNOWN_REF", f"methodology {methodology_id} version {version} is not registered")
        if state.log_format == 2 and version != methodology.latest_version:
            raise Rejected("UNKNOWN_REF", f"methodology {methodology_id} version {version} is superseded by version "
                                          f"{methodology.latest_version}: a format-2 batch quantifies by the latest")
        if records is None:
            raise Rejected("BATCH", f"batch {body['batch_id']} arrived without its activity records")
        if not isinstance(records, CheckedFile):
            records = check_file(body, state.log_format or 1, methodology.versions[version]["params"], records)
        elif records.body != body:
            raise ValueError(f"a file checked for batch {records.body.get('batch_id')!r} came with batch "
                             f"{body['batch_id']!r}")
        judged = judge_checked(records, activities)
        assert len(records.block_hashes) == block_count(len(judged)), body["batch_id"]
        return Verdict(None, judged, records.block_hashes)

    def apply(self, state: State, seq: int, body: Body, effects: Serials | None, activities: ActivityIndex,
              records: Sequence[ActivityRecord] | None) -> None:
        state.batches[body["batch_id"]] = Batch(body["batch_id"], body["platform"], body["methodology_id"],
                                                body["methodology_version"], body["period_start"], body["period_end"],
                                                body["count"], body["total_g"], body["root"], seq)
        activities.add(body["batch_id"], body["methodology_id"], list(records or ()))

    def touched(self, body: Body, dirty: DirtyRows) -> None:
        dirty["batches"].add(body["batch_id"])
