"""Preparing raw records for ingestion: read, parse, check, quantify, fingerprint, encode.

Everything here needs only the methodology, never the run's state, so it can run in worker
processes; `quantify.ingest` then admits the prepared records in file order (duplicates, daily
caps, batches), which does need the state. With workers=0 it all runs in-process; the output is
byte for byte the same either way.

One record is prepared into a PreparedRecord or a Rejection, a chunk of them into a
PreparedChunk (`quantify.prepared`).
"""

from __future__ import annotations

import csv
import functools
import io
import json
import multiprocessing
import re
from array import array
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import IO, Any, Iterable, Iterator

from ledger.merkle import leaf_hash
from quantify.activity import InvalidActivity, RecordRules, record_bytes, rules_for
from quantify.fastpath import fast_records
from quantify.methodology import Methodology
from quantify.prepared import PreparedChunk, PreparedRecord, Rejection
from quantify.private import PrivateRecords, SchemeKeys, private_records_for

MAX_LINE_BYTES = 16_384
CHUNK_RECORDS = 2_000
_raw_decode = json.JSONDecoder().raw_decode


class IngestError(Exception):
    """The run cannot go on (bad arguments, a CSV header that fits no record, a limit)."""


def prepare_record(rules: RecordRules, line: int, raw: Any, record: Any, private: PrivateRecords | None = None
                   ) -> PreparedRecord | Rejection:
    """A raw record prepared: a format-1 record, or with `private` a format-2 one (its subject the
    person id the daily pseudonym is derived from)."""
    try:
        inputs_jcs = rules.check_record(record)
    except InvalidActivity as exc:
        activity_id = record.get("activity_id") if type(record) is dict else None
        return Rejection(line, exc.code, exc.detail, activity_id if type(activity_id) is str else None, raw)
    activity_id = record["activity_id"]
    inputs = record["inputs"]
    reduction_g = rules.reduction_g(inputs)
    if reduction_g == 0:
        return Rejection(line, "zero_reduction", "the act quantifies to 0 g", activity_id, raw)
    subject = record["subject"]
    occurred_at = record["occurred_at"]
    if private is not None:
        return private.prepare(line, activity_id, subject, occurred_at, inputs, reduction_g)
    fingerprint = rules.fingerprint(subject, occurred_at, inputs)
    data = record_bytes(activity_id, fingerprint, inputs_jcs, occurred_at, reduction_g, subject)
    return PreparedRecord(line, activity_id, subject, occurred_at, fingerprint, reduction_g, inputs_jcs, data,
                          leaf_hash(data), b"")


# --- JSON Lines -------------------------------------------------------------------------------


def _strict_object_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise ValueError("duplicate key in a JSON object")
    return result


def parse_json_line(text: str) -> tuple[Any, str | None]:
    """(value, error) for one line.

    raw_decode skips json.loads's two whitespace scans (a line starting with whitespace takes the
    slow path). Duplicate keys are refused without a strict parse per line: in a record that
    passes the checks, the only ':' besides one per key are the two in occurred_at (identifiers,
    codes and integers hold none), so if it has exactly 6 + len(inputs) colons no key was
    repeated (a repeat adds its colon). Any other line is parsed again strictly; a line the count
    lets through with a repeat fails the checks anyway.
    """
    try:
        value, end = _raw_decode(text)
        if end != len(text) and not text[end:].isspace():
            raise ValueError("extra data after the JSON value")
        if text.count(":") == 6 + len(value["inputs"]):
            return value, None
    except (ValueError, TypeError, KeyError, AttributeError):
        pass  # the slow path below says what is wrong, if anything
    try:
        value = json.loads(text)
        json.loads(text, object_pairs_hook=_strict_object_pairs)
    except ValueError as exc:
        return None, f"not JSON: {exc}"[:300]
    return value, None


def prepare_json_lines(rules: RecordRules, first_line: int, lines: list[bytes | str],
                       fast_path: bool = True, private: PrivateRecords | None = None) -> PreparedChunk:
    """Prepare consecutive lines numbered from first_line; blank lines hold no record. A line of
    the methodology's exact shape takes the fast path (`quantify.fastpath`), any other the full
    path; fast_path=False sends every line through the full path (the tests compare the two).
    With `private`, format-2 records (quantify.private)."""
    full = functools.partial(prepare_json_line, rules, private=private)
    if fast_path:
        return fast_records(rules, private).prepare_lines(first_line, lines, full)
    return PreparedChunk.of(item for item in (full(line, raw) for line, raw in enumerate(lines, first_line))
                            if item is not None)


def prepare_json_line(rules: RecordRules, line: int, raw: bytes | str, private: PrivateRecords | None = None
                      ) -> PreparedRecord | Rejection | None:
    """The full path for one line: the prepared record or why not; None for a blank line."""
    if len(raw) > MAX_LINE_BYTES:
        head = raw[:MAX_LINE_BYTES]
        return Rejection(line, "malformed", f"line longer than {MAX_LINE_BYTES} bytes", None,
                         head.decode("utf-8", "replace") if isinstance(head, bytes) else head)
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError:
            return Rejection(line, "malformed", "not UTF-8", None, raw.decode("utf-8", "replace"))
    record, error = parse_json_line(raw)
    if error is not None:
        if raw.strip():  # a blank line holds no record
            return Rejection(line, "malformed", error, None, raw)
        return None
    return prepare_record(rules, line, raw, record, private)


Chunk = tuple[int, int, list]  # (first line, last line, items)


def read_json_chunks(lines: Iterable[bytes | str] | IO[bytes], chunk: int = CHUNK_RECORDS) -> Iterator[Chunk]:
    """(first line, last line, lines) in chunks. A binary file is read in blocks of READ_BLOCK
    bytes, and no line is held beyond MAX_LINE_BYTES + 1 bytes: the rest of an over-long line is
    read and dropped, and the kept head is rejected as too long."""
    if isinstance(lines, (io.BufferedIOBase, io.RawIOBase)):
        blocks = _block_lines(lines.read)
    else:
        readline = getattr(lines, "readline", None)
        blocks = ([line] for line in (_bounded_lines(readline) if readline is not None else lines))
    batch: list = []
    first = 1
    for block in blocks:
        batch += block
        while len(batch) >= chunk:
            yield first, first + chunk - 1, batch[:chunk]
            del batch[:chunk]
            first += chunk
    if batch:
        yield first, first + len(batch) - 1, batch


def _bounded_lines(readline: Any) -> Iterator[bytes]:
    while True:
        line = readline(MAX_LINE_BYTES + 1)
        if not line:
            return
        if len(line) > MAX_LINE_BYTES and not line.endswith(b"\n"):
            while True:  # drain the over-long line
                rest = readline(MAX_LINE_BYTES)
                if not rest or rest.endswith(b"\n"):
                    break
        yield line


READ_BLOCK = 1 << 18
_LINE = re.compile(rb"[^\n]*\n")


def _block_lines(read: Any) -> Iterator[list[bytes]]:
    """The lines of a binary stream, a block at a time, each with its newline; a line longer
    than MAX_LINE_BYTES + 1 bytes is cut to its first MAX_LINE_BYTES + 1 (as _bounded_lines
    reads them: that many bytes, then the rest dropped)."""
    longest = MAX_LINE_BYTES + 1
    carry = b""  # the start of a line whose newline is not read yet (never above `longest`)
    dropping = False  # inside an over-long line whose head was already given
    while True:
        data = read(READ_BLOCK)
        if not data:
            if carry:
                yield [carry]
            return
        if dropping:
            end = data.find(b"\n")
            if end < 0:
                continue
            data = data[end + 1:]
            dropping = False
        text = carry + data if carry else data
        end = text.rfind(b"\n") + 1
        lines = _LINE.findall(text, 0, end)  # up to the last newline: every match is a whole line
        carry = text[end:]
        if lines and max(map(len, lines)) > longest:
            lines = [line[:longest] if len(line) > longest else line for line in lines]
        if len(carry) >= longest:
            lines.append(carry[:longest])
            carry, dropping = b"", True
        if lines:
            yield lines


# --- CSV --------------------------------------------------------------------------------------

_CSV_INTEGER = re.compile(r"-?[0-9]{1,18}")
CSV_RECORD_COLUMNS = ("activity_id", "subject", "occurred_at")


@dataclass(frozen=True)
class CsvLayout:
    """Where a CSV file's header puts each part of a record."""

    width: int
    activity_id_at: int
    subject_at: int
    occurred_at_at: int
    inputs: tuple[tuple[int, str, bool], ...]  # (column, input name, is integer)

    @classmethod
    def from_header(cls, header: list[str], methodology: Methodology) -> CsvLayout:
        by_name = {f.name: f for f in methodology.inputs}
        unknown = [c for c in header if c not in by_name and c not in CSV_RECORD_COLUMNS]
        missing = [c for c in CSV_RECORD_COLUMNS if c not in header]
        missing += [f.name for f in methodology.inputs if f.required and f.name not in header]
        if unknown or missing or len(set(header)) != len(header):
            raise IngestError(f"CSV header: unknown columns {unknown}, missing columns {missing}, or repeats")
        return cls(len(header), *(header.index(c) for c in CSV_RECORD_COLUMNS),
                   tuple((i, name, by_name[name].kind == "integer") for i, name in enumerate(header) if name in by_name))


def prepare_csv_rows(rules: RecordRules, layout: CsvLayout, rows: list, fast_path: bool = True,
                     private: PrivateRecords | None = None) -> PreparedChunk:
    """Prepare (line, cells) rows; Rejections from the reader pass through. Integer inputs are
    decimal digits; an empty cell is an absent input. A row of the exact shape takes the fast
    path (`quantify.fastpath`); fast_path=False sends every row through the full path. With
    `private`, format-2 records."""
    full = functools.partial(prepare_csv_row, rules, layout, private=private)
    if fast_path:
        return fast_records(rules, private).prepare_rows(rows, layout, full)
    return PreparedChunk.of(full(item) for item in rows)


def prepare_csv_row(rules: RecordRules, layout: CsvLayout, item: tuple[int, list[str]] | Rejection,
                    private: PrivateRecords | None = None) -> PreparedRecord | Rejection:
    """The full path for one CSV item."""
    if type(item) is Rejection:
        return item
    line, row = item
    width = layout.width
    if len(row) != width or sum(map(len, row)) > MAX_LINE_BYTES:
        return Rejection(line, "malformed", f"row has {len(row)} cells for {width} columns, or is too long", None, row)
    inputs: dict[str, Any] = {}
    for i, name, is_integer in layout.inputs:
        cell = row[i]
        if cell:
            inputs[name] = int(cell) if is_integer and _CSV_INTEGER.fullmatch(cell) else cell
    record = {"activity_id": row[layout.activity_id_at], "subject": row[layout.subject_at],
              "occurred_at": row[layout.occurred_at_at], "inputs": inputs}
    return prepare_record(rules, line, row, record, private)


def read_csv(lines: Iterable[str], methodology: Methodology, chunk: int = CHUNK_RECORDS) -> tuple[CsvLayout, Iterator[Chunk]]:
    """The layout from the header, and chunks whose items are (line, cells), or a Rejection for
    an unreadable row. Line numbers are physical lines, so a quoted newline inside
    a cell does not shift the numbers of later rows; a row is named by its first line."""
    reader = csv.reader(lines, strict=True)
    try:
        header = next(reader)
    except StopIteration:
        raise IngestError("empty CSV: no header row") from None
    except csv.Error as exc:
        raise IngestError(f"unreadable CSV header: {exc}") from None
    layout = CsvLayout.from_header(header, methodology)

    def chunks() -> Iterator[Chunk]:
        batch: list = []
        first = reader.line_num + 1
        rows = iter(reader)
        while True:
            line = reader.line_num + 1
            try:
                row = next(rows)
            except StopIteration:
                break
            except csv.Error as exc:
                batch.append(Rejection(line, "malformed", f"unreadable CSV row: {exc}"[:300], None, ""))
            else:
                if row:
                    batch.append((line, row))
            if len(batch) >= chunk:
                yield first, reader.line_num, batch
                first, batch = reader.line_num + 1, []
        if batch:
            yield first, reader.line_num, batch

    return layout, chunks()


# --- in-process or in worker processes --------------------------------------------------------

_worker: dict[str, Any] = {}


def _start_worker(methodology: Methodology, layout: CsvLayout | None, keys: SchemeKeys | None) -> None:
    _worker["rules"] = rules_for(methodology)
    _worker["layout"] = layout
    _worker["private"] = None if keys is None else private_records_for(_worker["rules"], keys)


def _prepare(rules: RecordRules, layout: CsvLayout | None, first_line: int, items: list,
             private: PrivateRecords | None) -> PreparedChunk:
    if layout is None:
        return prepare_json_lines(rules, first_line, items, private=private)
    return prepare_csv_rows(rules, layout, items, private=private)


def _prepare_in_worker(first_line: int, items: list) -> tuple:
    return pack(_prepare(_worker["rules"], _worker["layout"], first_line, items, _worker["private"]))


def pack(chunk: PreparedChunk) -> tuple:
    """A chunk in a form that crosses a process boundary cheaply: each column as one string,
    bytes or array (a few large objects to pickle instead of nine small ones per record), and
    the rejections as they are. unpack() gives the chunk back.

    Newlines join the fields: no checked identifier, code, time, hex or record bytes holds one.
    """
    if not chunk.lines:
        return chunk.rejections, 0
    return (chunk.rejections, len(chunk.lines), array("q", chunk.lines).tobytes(), "\n".join(chunk.activity_ids),
            "\n".join(chunk.subjects), "\n".join(chunk.occurred_ats), "\n".join(chunk.fingerprints),
            array("q", chunk.reductions_g).tobytes(), "\n".join(chunk.inputs_jcs), b"\n".join(chunk.data),
            b"".join(chunk.leaves), b"\n".join(chunk.openings))


def unpack(packed: tuple) -> PreparedChunk:
    """The chunk that pack() was given."""
    rejections, count = packed[0], packed[1]
    if not count:
        return PreparedChunk.of(rejections)
    lines, activity_ids, subjects, times, fingerprints, grams, inputs, data, leaves, openings = packed[2:]
    lines_array, grams_array = array("q"), array("q")
    lines_array.frombytes(lines)
    grams_array.frombytes(grams)
    return PreparedChunk(lines_array.tolist(), activity_ids.split("\n"), subjects.split("\n"), times.split("\n"),
                         fingerprints.split("\n"), grams_array.tolist(), inputs.split("\n"), data.split(b"\n"),
                         [leaves[i:i + 32] for i in range(0, 32 * count, 32)], openings.split(b"\n"), rejections)


def prepare_chunks(
    chunks: Iterable[Chunk], methodology: Methodology, layout: CsvLayout | None, workers: int = 0,
    keys: SchemeKeys | None = None,
) -> Iterator[tuple[int, PreparedChunk]]:
    """(last line, prepared chunk) per chunk, in input order. layout None means JSON Lines; keys
    given means format-2 records (quantify.private).

    workers > 0 spreads the chunks over that many processes (spawned: safe inside a threaded
    server), keeping at most 2 chunks per worker in flight so memory stays bounded; 0 prepares
    in this process.
    """
    if not isinstance(workers, int) or isinstance(workers, bool) or not 0 <= workers <= 64:
        raise IngestError("workers must be an integer in 0..64")
    if workers == 0:
        rules = rules_for(methodology)
        private = None if keys is None else private_records_for(rules, keys)
        for first, last, items in chunks:
            yield last, _prepare(rules, layout, first, items, private)
        return
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_start_worker,
                             initargs=(methodology, layout, keys)) as pool:
        in_flight: deque = deque()
        for first, last, items in chunks:
            in_flight.append((last, pool.submit(_prepare_in_worker, first, items)))
            if len(in_flight) >= 2 * workers:
                last, future = in_flight.popleft()
                yield last, unpack(future.result())
        while in_flight:
            last, future = in_flight.popleft()
            yield last, unpack(future.result())
