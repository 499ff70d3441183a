"""Ingestion at platform scale: raw records in, batches and a rejection file out.

Per record, in file order: check against the methodology's schema, quantify, fingerprint, drop
duplicates (activity id or act, within the run and against the registry), apply the daily cap
per subject and Beijing day across platforms, then append the record's exact JCS bytes to the
batch of its (platform, methodology version, period). Every record not counted in full gets a
line in `rejections.jsonl` with its line number and a reason code: nothing is lost silently.

Output directory:
- `activities/<batch_id>.jsonl`: the records of each batch, one per line, in root order
  (the bundle layout of spec section 8);
- `rejections.jsonl`: one JSON object per rejected record or clipped amount;
- `batches.jsonl`: the unsigned `activity.batch` bodies (without request_id), for the platform
  to sign.

Memory: each open batch keeps a write buffer and an O(log n) Merkle frontier, never its records;
the run keeps one activity id and one fingerprint per accepted record (duplicates are found
against them) and one total per subject and day.
"""

from __future__ import annotations

import calendar
import csv
import io
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Container, Iterable, Protocol

from ledger.merkle import Frontier, leaf_hash

from quantify.activity import IDENTIFIER, RecordRules, beijing_day, record_bytes, rules_for
from quantify.methodology import Methodology
from quantify.report import Report, Table, format_tonnes

# Reason codes of the rejection file, in the order records are checked.
REASONS = {
    "malformed": "not a JSON object (or a CSV row of the wrong width), not UTF-8, duplicate keys, or too long",
    "invalid_record": "activity_id, subject or occurred_at missing or malformed, or unknown top-level fields",
    "invalid_input": "inputs that do not match the methodology's input schema",
    "duplicate_activity_id": "an activity_id already seen in this run or in the registry",
    "duplicate_fingerprint": "the same real-world act, already counted in this run or in the registry",
    "zero_reduction": "the act quantifies to 0 g",
    "over_daily_cap": "the subject's daily cap for this methodology was already reached",
    "daily_cap_clipped": "accepted, but only the part under the daily cap (the rest is dropped_g)",
}
PERIODS = ("month", "day")

MAX_LINE_BYTES = 16_384
MAX_RAW_IN_REJECTION = 2_000  # characters of the offending line kept for the platform to fix it
MAX_RUN_ID_CHARS = 100  # leaves room for "-YYYY-MM-DD.NNNN" within a 128-character batch id
DEFAULT_MAX_BATCH_RECORDS = 1_000_000
DEFAULT_MAX_OPEN_BATCHES = 32
DEFAULT_MAX_LINES = 20_000_000
_WRITE_BUFFER_RECORDS = 2_048


class IngestError(Exception):
    """The run cannot go on (bad arguments, a CSV header that fits no record, a limit)."""


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


@dataclass
class IngestResult:
    platform: str
    methodology_id: str
    methodology_version: int
    lines: int = 0
    accepted: int = 0
    accepted_g: int = 0
    reasons: Counter = field(default_factory=Counter)  # reason code -> records
    dropped_by_cap_g: int = 0
    batches: list[BatchResult] = field(default_factory=list)
    rejections_path: Path | None = None
    batches_path: Path | None = None
    # (subject, Beijing day) -> grams this run credited: for DailyTotals once committed.
    credited_g: dict[tuple[str, str], int] = field(default_factory=dict)

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
    __slots__ = ("batch_id", "period_start", "period_end", "path", "file", "buffer", "frontier", "total_g")

    def __init__(self, batch_id: str, period_start: str, period_end: str, path: Path):
        self.batch_id = batch_id
        self.period_start = period_start
        self.period_end = period_end
        self.path = path
        self.file = open(path, "xb")  # never overwrite a batch file
        self.buffer: list[bytes] = []
        self.frontier = Frontier()
        self.total_g = 0

    def flush(self) -> None:
        self.file.write(b"".join(self.buffer))
        self.buffer.clear()


def _period(occurred_at: str, period: str) -> tuple[str, str, str]:
    """(key, period_start, period_end) of the UTC date, as the spec checks the batch period."""
    if period == "day":
        date = occurred_at[:10]
        return date, date, date
    month = occurred_at[:7]
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
    ):
        if not isinstance(platform, str) or not IDENTIFIER.fullmatch(platform):
            raise IngestError(f"platform {platform!r} is not an identifier")
        if not isinstance(run_id, str) or not IDENTIFIER.fullmatch(run_id) or len(run_id) > MAX_RUN_ID_CHARS:
            raise IngestError(f"run_id must be an identifier of at most {MAX_RUN_ID_CHARS} characters")
        if period not in PERIODS:
            raise IngestError(f"period must be one of {', '.join(PERIODS)}")
        if not 1 <= max_batch_records <= 10**9 or not 1 <= max_open_batches <= 1024:
            raise IngestError("max_batch_records and max_open_batches must be positive and bounded")
        self.methodology = methodology
        self.rules: RecordRules = rules_for(methodology)
        self.platform = platform
        self.run_id = run_id
        self.period = period
        self.max_batch_records = max_batch_records
        self.max_open_batches = max_open_batches
        self.max_lines = max_lines
        self.daily_totals = daily_totals if daily_totals is not None else MemoryDailyTotals()
        self.seen_fingerprints = seen_fingerprints
        self.seen_activity_ids = seen_activity_ids

        self.out_dir = Path(out_dir)
        self.activities_dir = self.out_dir / "activities"
        self.activities_dir.mkdir(parents=True, exist_ok=True)
        self.result = IngestResult(platform, methodology.methodology_id, methodology.version,
                                   rejections_path=self.out_dir / "rejections.jsonl",
                                   batches_path=self.out_dir / "batches.jsonl")
        self._rejections: IO[str] = open(self.result.rejections_path, "x", encoding="utf-8")
        self._open: dict[str, _OpenBatch] = {}  # period key -> open batch, oldest first
        self._parts: Counter = Counter()  # period key -> batches opened
        self._activity_ids: set[str] = set()
        self._fingerprint_lines: dict[str, int] = {}
        self._base_g: dict[tuple[str, str], int] = {}  # (subject, day) -> credited before the run
        self._finished = False

    # --- the per-record path --------------------------------------------------------------

    def count_line(self) -> int:
        """Number the next input line (1-based); refuses to go past max_lines."""
        self.result.lines += 1
        if self.result.lines > self.max_lines:
            raise IngestError(f"more than {self.max_lines} lines in one run: split the file")
        return self.result.lines

    def reject(self, line: int, raw: Any, reason: str, detail: str, activity_id: Any = None, **extra: Any) -> None:
        text = raw if isinstance(raw, str) else json.dumps(raw, ensure_ascii=False)
        entry = {"line": line, "reason": reason, "detail": detail,
                 "activity_id": activity_id if isinstance(activity_id, str) else None, **extra,
                 "raw": text[:MAX_RAW_IN_REJECTION]}
        if len(text) > MAX_RAW_IN_REJECTION:
            entry["raw_truncated"] = True
        self._rejections.write(json.dumps(entry, ensure_ascii=False) + "\n")
        self.result.reasons[reason] += 1

    def add(self, line: int, raw: Any, record: Any) -> None:
        """Take one parsed record (raw is the line or row, kept for the rejection file)."""
        rules = self.rules
        error = rules.record_error(record)
        if error is not None:
            activity_id = record.get("activity_id") if type(record) is dict else None
            self.reject(line, raw, error[0], error[1], activity_id)
            return
        activity_id = record["activity_id"]
        if activity_id in self._activity_ids or activity_id in self.seen_activity_ids:
            self.reject(line, raw, "duplicate_activity_id", "activity_id already used", activity_id)
            return
        subject = record["subject"]
        occurred_at = record["occurred_at"]
        inputs = record["inputs"]
        fingerprint = rules.fingerprint(subject, occurred_at, inputs)
        first_line = self._fingerprint_lines.get(fingerprint)
        if first_line is not None or fingerprint in self.seen_fingerprints:
            where = f"line {first_line} of this run" if first_line is not None else "the registry"
            self.reject(line, raw, "duplicate_fingerprint", f"the same act is already counted in {where}",
                        activity_id, fingerprint=fingerprint)
            return
        reduction_g = rules.reduction_g(inputs)
        if reduction_g == 0:
            self.reject(line, raw, "zero_reduction", "the act quantifies to 0 g", activity_id)
            return

        day = beijing_day(occurred_at)
        key = (subject, day)
        credited = self.result.credited_g
        base_g = self._base_g.get(key)
        if base_g is None:
            base_g = self._base_g[key] = self.daily_totals.credited_g(subject, self.methodology.methodology_id, day)
        run_g = credited.get(key, 0)
        room_g = self.methodology.daily_cap_g - base_g - run_g
        if room_g <= 0:
            self.reject(line, raw, "over_daily_cap",
                        f"{subject} already has {base_g + run_g} g of the {self.methodology.daily_cap_g} g cap on {day}",
                        activity_id, quantified_g=reduction_g, dropped_g=reduction_g)
            return
        if reduction_g > room_g:
            self.reject(line, raw, "daily_cap_clipped",
                        f"only {room_g} g left under the {self.methodology.daily_cap_g} g cap on {day}",
                        activity_id, quantified_g=reduction_g, accepted_g=room_g, dropped_g=reduction_g - room_g)
            self.result.dropped_by_cap_g += reduction_g - room_g
            reduction_g = room_g
        credited[key] = run_g + reduction_g

        self._activity_ids.add(activity_id)
        self._fingerprint_lines[fingerprint] = line
        data = record_bytes(activity_id, fingerprint, inputs, occurred_at, reduction_g, subject)
        batch = self._batch_for(occurred_at)
        batch.buffer.append(data + b"\n")
        batch.frontier.append(leaf_hash(data))
        batch.total_g += reduction_g
        self.result.accepted += 1
        self.result.accepted_g += reduction_g
        if len(batch.buffer) >= _WRITE_BUFFER_RECORDS:
            batch.flush()
        if batch.frontier.size >= self.max_batch_records:
            self._close(batch)

    # --- batches --------------------------------------------------------------------------

    def _batch_for(self, occurred_at: str) -> _OpenBatch:
        key = occurred_at[:10] if self.period == "day" else occurred_at[:7]
        batch = self._open.get(key)
        if batch is not None:
            return batch
        if len(self._open) >= self.max_open_batches:
            self._close(next(iter(self._open.values())))  # the oldest; its period gets a new part
        key, period_start, period_end = _period(occurred_at, self.period)
        self._parts[key] += 1
        part = self._parts[key]
        batch_id = f"{self.run_id}-{key}" if part == 1 else f"{self.run_id}-{key}.{part}"
        batch = _OpenBatch(batch_id, period_start, period_end, self.activities_dir / f"{batch_id}.jsonl")
        self._open[key] = batch
        return batch

    def _close(self, batch: _OpenBatch) -> None:
        batch.flush()
        batch.file.close()
        key = batch.period_start[:7] if self.period == "month" else batch.period_start
        del self._open[key]
        body = {
            "batch_id": batch.batch_id,
            "platform": self.platform,
            "methodology_id": self.methodology.methodology_id,
            "methodology_version": self.methodology.version,
            "period_start": batch.period_start,
            "period_end": batch.period_end,
            "count": batch.frontier.size,
            "total_g": batch.total_g,
            "root": batch.frontier.root().hex(),
        }
        self.result.batches.append(BatchResult(batch.batch_id, batch.path, body))

    def finish(self) -> IngestResult:
        """Close every batch and write batches.jsonl; the result lists batches in closing order."""
        if not self._finished:
            self._finished = True
            for batch in list(self._open.values()):
                self._close(batch)
            self.result.batches.sort(key=lambda b: (b.body["period_start"], b.batch_id))
            self._rejections.close()
            with open(self.result.batches_path, "x", encoding="utf-8") as out:
                for batch in self.result.batches:
                    out.write(json.dumps(batch.body, sort_keys=True, separators=(",", ":")) + "\n")
        return self.result

    def abandon(self) -> None:
        """Close files after a failure; what was written stays for inspection, unsigned."""
        for batch in list(self._open.values()):
            batch.file.close()
        self._open.clear()
        self._rejections.close()
        self._finished = True

    def __enter__(self) -> Ingestor:
        return self

    def __exit__(self, exc_type: Any, *_: Any) -> None:
        if exc_type is not None:
            self.abandon()


# --- readers ----------------------------------------------------------------------------------


def _strict_object_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise ValueError("duplicate key")
    return result


def _parse_json_line(text: str) -> tuple[Any, str | None]:
    """(value, error). Duplicate keys are refused without paying for a strict parse per line:

    In a valid record every ':' outside a key separator sits in occurred_at (two of them),
    since identifiers and codes hold none. So a line whose ':' count is 6 + len(inputs) has no
    duplicate key (one would add a ':'); any other line is parsed again strictly.
    """
    try:
        value = json.loads(text)
    except ValueError as exc:
        return None, f"not JSON: {exc}"[:300]
    inputs = value.get("inputs") if type(value) is dict else None
    if type(inputs) is not dict or text.count(":") != 6 + len(inputs):
        try:
            json.loads(text, object_pairs_hook=_strict_object_pairs)
        except ValueError:
            return None, "duplicate key in a JSON object"
    return value, None


def ingest_jsonl(lines: Iterable[bytes | str], **options: Any) -> IngestResult:
    """Ingest JSON Lines (an open binary file or any iterable of lines). Options: Ingestor's."""
    with Ingestor(**options) as ingestor:
        for raw in lines:
            number = ingestor.count_line()
            if isinstance(raw, bytes):
                if len(raw) > MAX_LINE_BYTES:
                    ingestor.reject(number, raw[:MAX_RAW_IN_REJECTION].decode("utf-8", "replace"), "malformed",
                                    f"line longer than {MAX_LINE_BYTES} bytes")
                    continue
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError:
                    ingestor.reject(number, raw.decode("utf-8", "replace"), "malformed", "not UTF-8")
                    continue
            else:
                text = raw
                if len(text) > MAX_LINE_BYTES:
                    ingestor.reject(number, text, "malformed", f"line longer than {MAX_LINE_BYTES} bytes")
                    continue
            if not text.strip():
                continue  # a blank line holds no record
            record, error = _parse_json_line(text)
            if error is not None:
                ingestor.reject(number, text.rstrip("\r\n"), "malformed", error)
                continue
            ingestor.add(number, text.rstrip("\r\n"), record)
        return ingestor.finish()


_CSV_INTEGER = re.compile(r"-?[0-9]{1,18}")
_CSV_RECORD_COLUMNS = ("activity_id", "subject", "occurred_at")


def ingest_csv(lines: Iterable[str], **options: Any) -> IngestResult:
    """Ingest CSV text lines: a header row of activity_id, subject, occurred_at and input names,
    then one record per row. Integer inputs are decimal digits; an empty cell is an absent input.
    Line numbers in the rejection file are the CSV's physical lines."""
    methodology: Methodology = options["methodology"]
    reader = csv.reader(lines, strict=True)
    try:
        header = next(reader)
    except StopIteration:
        raise IngestError("empty CSV: no header row") from None
    except csv.Error as exc:
        raise IngestError(f"unreadable CSV header: {exc}") from None
    inputs_by_name = {f.name: f for f in methodology.inputs}
    unknown = [c for c in header if c not in inputs_by_name and c not in _CSV_RECORD_COLUMNS]
    missing = [c for c in _CSV_RECORD_COLUMNS if c not in header]
    missing += [f.name for f in methodology.inputs if f.required and f.name not in header]
    if unknown or missing or len(set(header)) != len(header):
        raise IngestError(f"CSV header: unknown columns {unknown}, missing columns {missing}, or repeats")
    positions = [(i, name, inputs_by_name[name].kind == "integer")
                 for i, name in enumerate(header) if name in inputs_by_name]
    aid_at, subject_at, time_at = (header.index(c) for c in _CSV_RECORD_COLUMNS)
    width = len(header)

    with Ingestor(**options) as ingestor:
        ingestor.count_line()  # the header
        rows = iter(reader)
        while True:
            # Rejections name the row's first physical line; line_num counts physical lines, so
            # a quoted newline inside a cell does not shift the numbers of later rows.
            number = reader.line_num + 1
            try:
                row = next(rows)
            except StopIteration:
                break
            except csv.Error as exc:
                row = None
                error = f"unreadable CSV row: {exc}"[:300]
            while ingestor.result.lines < max(reader.line_num, number):
                ingestor.count_line()
            if row is None:
                ingestor.reject(number, "", "malformed", error)
                continue
            if not row:
                continue
            if len(row) != width or sum(map(len, row)) > MAX_LINE_BYTES:
                ingestor.reject(number, row, "malformed", f"row has {len(row)} cells for {width} columns, or is too long")
                continue
            inputs: dict[str, Any] = {}
            for i, name, is_integer in positions:
                cell = row[i]
                if cell == "":
                    continue
                inputs[name] = int(cell) if is_integer and _CSV_INTEGER.fullmatch(cell) else cell
            record = {"activity_id": row[aid_at], "subject": row[subject_at], "occurred_at": row[time_at],
                      "inputs": inputs}
            ingestor.add(number, row, record)
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
