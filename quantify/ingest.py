"""Ingestion at platform scale: raw records in, batches and a rejection file out.

Per record, in file order: check against the methodology's schema, quantify, fingerprint
(`quantify.prepare`, parallel when asked), then drop duplicates (activity id or act, within the
run and against the registry), apply the daily cap per subject and Beijing day across platforms,
and append the record's exact JCS bytes to the batch of its (platform, methodology version,
period). Every record not counted in full gets a line in `rejections.jsonl` with its line number
and a reason code: nothing is lost silently.

Output directory:
- `activities/<batch_id>.jsonl`: the records of each batch, one per line, in root order
  (the bundle layout of spec section 8);
- `rejections.jsonl`: one JSON object per rejected record or clipped amount;
- `batches.jsonl`: the unsigned `activity.batch` bodies (without request_id), for the platform
  to sign;
- format 2 (with the scheme's keys, quantify.private): `openings/<batch_id>.jsonl`, the opening
  of each record of the batch, line for line. The platform keeps them (spec 7.4): they are never
  uploaded with the batch, exported or published.

A format-2 run applies the daily cap per (daily pseudonym, methodology_id, date): a pseudonym
belongs to one person and one Beijing date by construction, and its records go to the batch of
that date's period (format 2 checks occurred_on against the period, format 1 the UTC date).

Memory: each open batch keeps a write buffer and the O(log n) right edge of its Merkle tree,
never its records; the run keeps one activity id and one fingerprint per accepted record
(duplicates are found against them) and one total per subject and day.
"""

from __future__ import annotations

import calendar
import json
import sys
from collections import Counter, deque
from dataclasses import dataclass, field
from hashlib import sha256
from pathlib import Path
from typing import IO, Any, Callable, Container, Iterable, Protocol

from ledger.merkle import Frontier, leaf_hash

from quantify.activity import IDENTIFIER, beijing_day, record_bytes, rules_for
from quantify.methodology import Methodology
from quantify.prepare import (
    IngestError,
    PreparedChunk,
    prepare_chunks,
    prepare_record,
    read_csv,
    read_json_chunks,
)
from quantify.private import PrivateRecords, SchemeKeys, private_records_for, record_bytes_v2
from quantify.report import Report, Table, format_tonnes

__all__ = [
    "REASONS", "BatchResult", "DailyTotals", "IngestError", "IngestResult", "Ingestor", "MemoryDailyTotals",
    "ingest_csv", "ingest_file", "ingest_jsonl",
]

# Reason codes of the rejection file, in the order records are checked.
REASONS = {
    "malformed": "not a JSON object (or a CSV row of the wrong width), not UTF-8, duplicate keys, or too long",
    "invalid_record": "activity_id, subject or occurred_at missing or malformed, or unknown top-level fields",
    "invalid_input": "inputs that do not match the methodology's input schema",
    "zero_reduction": "the act quantifies to 0 g",
    "future_record": "dated after the day of the run (Beijing time): an act that has not happened yet",
    "duplicate_activity_id": "an activity_id already seen in this run or in the registry",
    "duplicate_fingerprint": "the same real-world act, already counted in this run or in the registry",
    "over_daily_cap": "the subject's daily cap for this methodology was already reached",
    "daily_cap_clipped": "accepted, but only the part under the daily cap (the rest is dropped_g)",
}
PERIODS = ("month", "day")

MAX_RAW_IN_REJECTION = 2_000  # characters of the offending line (or record) kept for the platform to fix it
MAX_RUN_ID_CHARS = 100  # leaves room for "-YYYY-MM-DD.NNNN" within a 128-character batch id
DEFAULT_MAX_BATCH_RECORDS = 1_000_000
DEFAULT_MAX_OPEN_BATCHES = 32
DEFAULT_MAX_LINES = 20_000_000
_WRITE_BUFFER_RECORDS = 2_048
_AFTER_EVERY_LINE = sys.maxsize


class DailyTotals(Protocol):
    def credited_g(self, subject: str, methodology_id: str, day: str) -> int:
        """Grams already credited to subject under methodology_id on that Beijing day, on any
        platform (committed batches)."""
        ...


class MemoryDailyTotals:
    """DailyTotals in a dict; the registry supplies a persistent one."""

    def __init__(self) -> None:
        self._grams: dict[tuple[str, str, str], int] = {}

    def credited_g(self, subject: str, methodology_id: str, day: str) -> int:
        return self._grams.get((subject, methodology_id, day), 0)

    def add(self, subject: str, methodology_id: str, day: str, grams: int) -> None:
        if grams < 0:
            raise ValueError("credited grams are never negative")
        key = (subject, methodology_id, day)
        self._grams[key] = self._grams.get(key, 0) + grams

    def add_run(self, result: IngestResult) -> None:
        """Take in what a run credited (once its batches are committed)."""
        for (subject, day), grams in result.credited_g.items():
            self.add(subject, result.methodology_id, day, grams)


@dataclass(frozen=True)
class BatchResult:
    batch_id: str
    path: Path
    body: dict[str, Any]  # activity.batch without request_id
    openings_path: Path | None = None  # format 2: the records' openings, line for line


@dataclass
class IngestResult:
    platform: str
    methodology_id: str
    methodology_version: int
    lines: int = 0
    reasons: Counter = field(default_factory=Counter)  # reason code -> records
    dropped_by_cap_g: int = 0
    batches: list[BatchResult] = field(default_factory=list)
    rejections_path: Path | None = None
    batches_path: Path | None = None
    # (subject, Beijing day) -> grams this run credited: for DailyTotals once committed.
    credited_g: dict[tuple[str, str], int] = field(default_factory=dict)

    @property
    def accepted(self) -> int:
        return sum(b.body["count"] for b in self.batches)

    @property
    def accepted_g(self) -> int:
        return sum(b.body["total_g"] for b in self.batches)

    @property
    def rejected(self) -> int:
        """Records not in any batch (a clipped record is in a batch)."""
        return sum(n for reason, n in self.reasons.items() if reason != "daily_cap_clipped")

    def report(self) -> Report:
        rows = [(reason, self.reasons.get(reason, 0), REASONS[reason]) for reason in REASONS]
        batch_rows = [
            (b.batch_id, b.body["period_start"], b.body["period_end"], b.body["count"], b.body["total_g"],
             format_tonnes(b.body["total_g"]), b.body["root"])
            for b in self.batches
        ]
        return Report(
            title=f"Ingestion of {self.platform} records under {self.methodology_id} v{self.methodology_version}",
            tables={
                "summary": Table(("item", "value"), [
                    ("lines", self.lines), ("accepted", self.accepted), ("rejected", self.rejected),
                    ("accepted_g", self.accepted_g), ("accepted_t", format_tonnes(self.accepted_g)),
                    ("dropped_by_cap_g", self.dropped_by_cap_g),
                ]),
                "reasons": Table(("reason", "records", "meaning"), rows),
                "batches": Table(("batch_id", "period_start", "period_end", "count", "total_g", "total_t", "root"),
                                 batch_rows),
            },
            data={"platform": self.platform, "methodology_id": self.methodology_id,
                  "methodology_version": self.methodology_version},
        )


class _OpenBatch:
    """A batch being written: its file, a write buffer, the leaf hashes not yet folded into its
    Merkle tree and the right edge of that tree."""

    __slots__ = ("batch_id", "period_start", "period_end", "path", "file", "buffer", "leaves", "size", "tree",
                 "total_g", "openings_path", "openings_file", "openings")

    def __init__(self, batch_id: str, period_start: str, period_end: str, path: Path,
                 openings_path: Path | None = None):
        self.batch_id = batch_id
        self.period_start = period_start
        self.period_end = period_end
        self.path = path
        self.file = open(path, "xb")  # never overwrite a batch file
        self.openings_path = openings_path
        self.openings_file = None if openings_path is None else open(openings_path, "xb")
        self.openings: list[bytes] = []  # format 2: openings not yet written, one per buffered record
        self.buffer: list[bytes] = []  # record bytes not yet written
        self.leaves: list[bytes] = []  # their leaf hashes, not yet in the tree
        self.size = 0  # records appended
        self.tree = Frontier()  # the right edge of the tree of size - len(leaves) records
        self.total_g = 0

    def append(self, data: bytes, leaf: bytes, reduction_g: int, opening: bytes = b"") -> None:
        """Add one record: its line to the buffer (its opening too, in format 2), its leaf hash to
        the tree (RFC 9162). (Ingestor.admit does the same inline.)"""
        self.buffer.append(data)
        if self.openings_file is not None:
            self.openings.append(opening)
        self.leaves.append(leaf)
        self.size += 1
        self.total_g += reduction_g
        if len(self.buffer) >= _WRITE_BUFFER_RECORDS:
            self.flush()

    def root(self) -> bytes:
        self._fold()
        return self.tree.root()

    def flush(self) -> None:
        self._fold()
        if self.buffer:
            self.buffer.append(b"")  # the last record's newline
            self.file.write(b"\n".join(self.buffer))
            self.buffer.clear()
        if self.openings:
            self.openings.append(b"")
            self.openings_file.write(b"\n".join(self.openings))
            self.openings.clear()

    def close(self) -> None:
        self.file.close()
        if self.openings_file is not None:
            self.openings_file.close()

    def _fold(self) -> None:
        """Take the pending leaves into the tree, a level at a time (Frontier.extend): a flush
        folds a full write buffer, cheaper than one append per record."""
        if self.leaves:
            self.tree.extend(self.leaves)
            self.leaves.clear()  # in place: Ingestor.admit holds the list
        assert self.tree.size == self.size


def _period(dated: str, period: str) -> tuple[str, str, str]:
    """(key, period_start, period_end) of the date a record's batch period is checked against
    (format 1: the UTC date of occurred_at; format 2: occurred_on)."""
    if period == "day":
        date = dated[:10]
        return date, date, date
    month = dated[:7]
    last = calendar.monthrange(int(month[:4]), int(month[5:7]))[1]
    return month, f"{month}-01", f"{month}-{last:02d}"


class Ingestor:
    """One ingestion run. Feed it records with add() (or the ingest_* helpers), then finish()."""

    def __init__(
        self,
        *,
        platform: str,
        methodology: Methodology,
        run_id: str,
        out_dir: Path | str,
        daily_totals: DailyTotals | None = None,
        seen_fingerprints: Container[str] = frozenset(),
        seen_activity_ids: Container[str] = frozenset(),
        period: str = "month",
        max_batch_records: int = DEFAULT_MAX_BATCH_RECORDS,
        max_open_batches: int = DEFAULT_MAX_OPEN_BATCHES,
        max_lines: int = DEFAULT_MAX_LINES,
        scheme_keys: SchemeKeys | None = None,
        latest_day: str | None = None,
    ):
        """scheme_keys given: format-2 records (quantify.private) and their openings; else format 1.
        latest_day: the last Beijing date a record may be dated (the day of the run, against a log);
        None takes any."""
        if not isinstance(platform, str) or not IDENTIFIER.fullmatch(platform):
            raise IngestError(f"platform {platform!r} is not an identifier")
        if not isinstance(run_id, str) or not IDENTIFIER.fullmatch(run_id) or len(run_id) > MAX_RUN_ID_CHARS:
            raise IngestError(f"run_id must be an identifier of at most {MAX_RUN_ID_CHARS} characters")
        if period not in PERIODS:
            raise IngestError(f"period must be one of {', '.join(PERIODS)}")
        if not 1 <= max_batch_records <= 10**9 or not 1 <= max_open_batches <= 1024:
            raise IngestError("max_batch_records and max_open_batches must be positive and bounded")
        self.methodology = methodology
        self.rules = rules_for(methodology)
        self.platform = platform
        self.run_id = run_id
        self.period = period
        self.max_batch_records = max_batch_records
        self.max_open_batches = max_open_batches
        self.max_lines = max_lines
        self.daily_totals = daily_totals if daily_totals is not None else MemoryDailyTotals()
        self.seen_fingerprints = seen_fingerprints
        self.seen_activity_ids = seen_activity_ids
        self.latest_day = latest_day
        self.scheme_keys = scheme_keys

        self.out_dir = Path(out_dir)
        self.activities_dir = self.out_dir / "activities"
        self.activities_dir.mkdir(parents=True, exist_ok=True)
        self.openings_dir = None if scheme_keys is None else self.out_dir / "openings"
        if self.openings_dir is not None:
            self.openings_dir.mkdir(mode=0o700, exist_ok=True)  # what the records keep private
        self.result = IngestResult(platform, methodology.methodology_id, methodology.version,
                                   rejections_path=self.out_dir / "rejections.jsonl",
                                   batches_path=self.out_dir / "batches.jsonl")
        self._rejections: IO[str] = open(self.result.rejections_path, "x", encoding="utf-8")
        self._open: dict[str, _OpenBatch] = {}  # period key -> open batch, oldest first
        self._parts: Counter = Counter()  # period key -> batches opened
        self._activity_ids: set[str] = set()
        self._fingerprint_lines: dict[str, int] = {}
        # (subject, Beijing day) -> grams credited, before and by the run; and the grams before the
        # run where there were any (what the run credited is the difference). Ints, not a tuple or
        # list a key: nothing to build a record, and nothing the garbage collector tracks (its full
        # passes over a run of millions of records walk none of them).
        self._day_used_g: dict[tuple[str, str], int] = {}
        self._day_before_g: dict[tuple[str, str], int] = {}
        self._finished = False

    # --- the per-record path --------------------------------------------------------------

    def reject(self, line: int, raw: Any, reason: str, detail: str, activity_id: str | None = None,
               **extra: Any) -> None:
        """A line refused before it became a record: shown as read ("raw"), for the platform to fix it."""
        text = raw.rstrip("\r\n") if isinstance(raw, str) else json.dumps(raw, ensure_ascii=False)
        self._write_rejection(line, reason, detail, activity_id, extra, "raw", text)

    def reject_record(self, line: int, record: bytes, reason: str, detail: str, activity_id: str,
                      **extra: Any) -> None:
        """A record refused after it was prepared (a repeat, a future date, the daily cap): shown as
        the record it would have logged ("record"), which in format 2 holds pseudonyms, not the line."""
        self._write_rejection(line, reason, detail, activity_id, extra, "record", record.decode())

    def _write_rejection(self, line: int, reason: str, detail: str, activity_id: str | None,
                         extra: dict[str, Any], shown_as: str, text: str) -> None:
        entry = {"line": line, "reason": reason, "detail": detail, "activity_id": activity_id, **extra,
                 shown_as: text[:MAX_RAW_IN_REJECTION]}
        if len(text) > MAX_RAW_IN_REJECTION:
            entry[f"{shown_as}_truncated"] = True
        line = json.dumps(entry, ensure_ascii=False)
        try:
            line.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate from a JSON escape (in an id or input name): keep it escaped
            line = json.dumps(entry)
        self._rejections.write(line + "\n")
        self.result.reasons[reason] += 1

    def lines_read(self, last_line: int) -> None:
        """Note how far the input has been read; refuses to go past max_lines."""
        self.result.lines = last_line
        if last_line > self.max_lines:
            raise IngestError(f"more than {self.max_lines} lines in one run: split the file")

    def add(self, line: int, raw: Any, record: Any) -> None:
        """Take one parsed record (raw is the line or row, kept for the rejection file)."""
        self.lines_read(max(line, self.result.lines))
        self.admit(PreparedChunk.of([prepare_record(self.rules, line, raw, record, self._private())]))

    def _private(self) -> PrivateRecords | None:
        return None if self.scheme_keys is None else private_records_for(self.rules, self.scheme_keys)

    def admit(self, chunk: PreparedChunk) -> None:
        """Take a chunk's prepared records in file order: duplicates, daily cap, batches; and its
        rejections, each written in its place in line order.

        The hot path of ingestion: everything it touches per record is a local.
        """
        reject, reject_record = self.reject, self.reject_record
        unwritten = deque(chunk.rejections)

        def write_rejections_before(line: int) -> int:
            """Write the chunk's rejections of lines before `line`; the line of the next one."""
            while unwritten and unwritten[0].line < line:
                rejection = unwritten.popleft()
                reject(rejection.line, rejection.raw, rejection.reason, rejection.detail, rejection.activity_id)
            return unwritten[0].line if unwritten else _AFTER_EVERY_LINE

        next_rejected = write_rejections_before(0)
        activity_ids = self._activity_ids
        seen_activity_ids = self.seen_activity_ids
        fingerprint_lines = self._fingerprint_lines
        seen_fingerprints = self.seen_fingerprints
        day_used_g, day_before_g = self._day_used_g, self._day_before_g
        cap_g = self.methodology.daily_cap_g
        methodology_id = self.methodology.methodology_id
        daily_totals = self.daily_totals
        key_chars = 10 if self.period == "day" else 7
        max_batch_records = self.max_batch_records
        write_buffer_records = _WRITE_BUFFER_RECORDS
        private = self.scheme_keys is not None  # format 2: batches by occurred_on, openings kept
        latest_day = self.latest_day or "9999-12-31"
        batch_key, batch, buffer, openings, leaves = None, None, None, None, None
        for (line, activity_id, subject, occurred_at, fingerprint, reduction_g, inputs_jcs, data, leaf,
             opening) in chunk.rows():
            if line > next_rejected:
                next_rejected = write_rejections_before(line)
            day = beijing_day(occurred_at)
            if day > latest_day:
                reject_record(line, data, "future_record", f"dated {day}, after the day of this run, {latest_day} "
                       f"(Beijing time)", activity_id)
                continue
            if activity_id in activity_ids or activity_id in seen_activity_ids:
                reject_record(line, data, "duplicate_activity_id", "activity_id already used", activity_id)
                continue
            first_line = fingerprint_lines.get(fingerprint)
            if first_line is not None or fingerprint in seen_fingerprints:
                where = f"line {first_line} of this run" if first_line is not None else "the registry"
                reject_record(line, data, "duplicate_fingerprint", f"the same act is already counted in {where}",
                       activity_id, fingerprint=fingerprint)
                continue

            key = (subject, day)
            used_g = day_used_g.get(key)  # credited before the run and by it
            if used_g is None:
                used_g = day_used_g[key] = daily_totals.credited_g(subject, methodology_id, day)
                if used_g:
                    day_before_g[key] = used_g
            room_g = cap_g - used_g
            if reduction_g > room_g:
                if room_g <= 0:
                    reject_record(line, data, "over_daily_cap",
                           f"{subject} already has {used_g} g of the {cap_g} g cap on {day}",
                           activity_id, quantified_g=reduction_g, dropped_g=reduction_g)
                    continue
                reject_record(line, data, "daily_cap_clipped", f"only {room_g} g left under the {cap_g} g cap on {day}",
                       activity_id, quantified_g=reduction_g, accepted_g=room_g, dropped_g=reduction_g - room_g)
                self.result.dropped_by_cap_g += reduction_g - room_g
                reduction_g = room_g
                if private:
                    data = record_bytes_v2(activity_id, fingerprint, inputs_jcs, day, sha256(opening).hexdigest(),
                                           reduction_g, subject)
                else:
                    data = record_bytes(activity_id, fingerprint, inputs_jcs, occurred_at, reduction_g, subject)
                leaf = leaf_hash(data)
            day_used_g[key] = used_g + reduction_g

            activity_ids.add(activity_id)
            fingerprint_lines[fingerprint] = line
            dated = day if private else occurred_at  # what the batch period is checked against
            if dated[:key_chars] != batch_key:
                batch_key = dated[:key_chars]
                batch = self._batch_for(dated)
                buffer, openings, leaves = batch.buffer, batch.openings, batch.leaves
            # batch.append, inlined
            buffer.append(data)
            if private:
                openings.append(opening)
            leaves.append(leaf)
            batch.size += 1
            batch.total_g += reduction_g
            if len(buffer) >= write_buffer_records:
                batch.flush()
            if batch.size >= max_batch_records:
                self._close(batch)
                batch_key = None
        write_rejections_before(_AFTER_EVERY_LINE)

    # --- batches --------------------------------------------------------------------------

    def _batch_for(self, dated: str) -> _OpenBatch:
        """The open batch for a record dated so (format 1: its occurred_at; format 2: occurred_on)."""
        key = dated[:10] if self.period == "day" else dated[:7]
        batch = self._open.get(key)
        if batch is not None:
            return batch
        if len(self._open) >= self.max_open_batches:
            self._close(next(iter(self._open.values())))  # the oldest; its period gets a new part
        key, period_start, period_end = _period(dated, self.period)
        self._parts[key] += 1
        part = self._parts[key]
        batch_id = f"{self.run_id}-{key}" if part == 1 else f"{self.run_id}-{key}.{part}"
        batch = _OpenBatch(batch_id, period_start, period_end, self.activities_dir / f"{batch_id}.jsonl",
                           None if self.openings_dir is None else self.openings_dir / f"{batch_id}.jsonl")
        self._open[key] = batch
        return batch

    def _close(self, batch: _OpenBatch) -> None:
        batch.flush()
        batch.close()
        key = batch.period_start[:7] if self.period == "month" else batch.period_start
        del self._open[key]
        body = {
            "batch_id": batch.batch_id,
            "platform": self.platform,
            "methodology_id": self.methodology.methodology_id,
            "methodology_version": self.methodology.version,
            "period_start": batch.period_start,
            "period_end": batch.period_end,
            "count": batch.size,
            "total_g": batch.total_g,
            "root": batch.root().hex(),
        }
        self.result.batches.append(BatchResult(batch.batch_id, batch.path, body, batch.openings_path))

    def finish(self) -> IngestResult:
        """Close every batch and write batches.jsonl; batches are listed by period, parts in order."""
        if not self._finished:
            self._finished = True
            for batch in list(self._open.values()):
                self._close(batch)
            self.result.batches.sort(key=lambda b: b.body["period_start"])  # stable: parts stay in order
            before_g = self._day_before_g
            self.result.credited_g = {key: used_g - before_g.get(key, 0) for key, used_g in self._day_used_g.items()
                                      if used_g != before_g.get(key, 0)}
            self._rejections.close()
            with open(self.result.batches_path, "x", encoding="utf-8") as out:
                for batch in self.result.batches:
                    out.write(json.dumps(batch.body, sort_keys=True, separators=(",", ":")) + "\n")
        return self.result

    def abandon(self) -> None:
        """Close files after a failure; what was written stays for inspection, unsigned."""
        for batch in list(self._open.values()):
            batch.close()
        self._open.clear()
        self._rejections.close()
        self._finished = True

    def __enter__(self) -> Ingestor:
        return self

    def __exit__(self, exc_type: Any, *_: Any) -> None:
        if exc_type is not None:
            self.abandon()


# --- readers ----------------------------------------------------------------------------------


def ingest_jsonl(lines: Iterable[bytes | str] | IO[bytes], *, workers: int = 0,
                 before_admit: Callable[[PreparedChunk], None] | None = None, **options: Any) -> IngestResult:
    """Ingest JSON Lines: an open binary file (lines bounded as read) or any iterable of lines.
    Options are Ingestor's; workers > 0 prepares records in that many processes (0: in-process);
    before_admit(prepared) is called with each prepared chunk before it is admitted (the log's
    look-ups in service/ingestion.py)."""
    with Ingestor(**options) as ingestor:
        chunks = read_json_chunks(lines)
        return _ingest_chunks(ingestor, chunks, None, workers, before_admit)


def ingest_csv(lines: Iterable[str], *, workers: int = 0,
               before_admit: Callable[[PreparedChunk], None] | None = None, **options: Any) -> IngestResult:
    """Ingest CSV text (open with newline=""): a header row of activity_id, subject, occurred_at
    and input names, then one record per row. Line numbers are the file's physical lines."""
    layout, chunks = read_csv(lines, options["methodology"])
    with Ingestor(**options) as ingestor:
        ingestor.lines_read(1)  # the header
        return _ingest_chunks(ingestor, chunks, layout, workers, before_admit)


def _ingest_chunks(ingestor: Ingestor, chunks: Iterable[Any], layout: Any, workers: int,
                   before_admit: Callable[[PreparedChunk], None] | None) -> IngestResult:
    for last_line, prepared in prepare_chunks(chunks, ingestor.methodology, layout, workers, ingestor.scheme_keys):
        ingestor.lines_read(last_line)
        if before_admit is not None:
            before_admit(prepared)
        ingestor.admit(prepared)
    return ingestor.finish()


def ingest_file(path: Path | str, **options: Any) -> IngestResult:
    """Ingest a .jsonl or .csv file (by suffix)."""
    path = Path(path)
    if path.suffix == ".jsonl":
        with open(path, "rb") as stream:
            return ingest_jsonl(stream, **options)
    if path.suffix == ".csv":
        with open(path, encoding="utf-8", newline="") as stream:
            return ingest_csv(stream, **options)
    raise IngestError(f"{path.name}: expected a .jsonl or .csv file")
