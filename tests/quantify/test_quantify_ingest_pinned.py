"""Ingestion's output pinned byte for byte: a fixed input of five methodologies in format 1 and 2,
JSON Lines and CSV, with the salts drawn from a fixed stream instead of os.urandom; every file a
run writes (batches, openings, rejections, batch bodies) and what it credited, hashed into one
digest per methodology. The digests were taken with the code before the format-2 speed-up of
issue 10: a faster hot path (quantify.fastpath, quantify.ingest) must not move a single byte. They
were re-taken once, when a rejection decided after preparation (repeats, future dates, the daily
cap) came to show its prepared record as "record" instead of "raw": with that key mapped back to
"raw", the new code gave the old digests, so nothing else moved.

The input covers what the hot paths decide: lines of the fast path's writings and of the full
path's, optional inputs absent, malformed lines, unknown inputs, zero reductions, repeated
activity ids and acts, daily caps reached and clipped, Beijing dates past a UTC month's end, and
more than one chunk (quantify.prepare.CHUNK_RECORDS).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from pathlib import Path
from typing import Any

import pytest

from quantify.ingest import IngestResult, ingest_csv, ingest_jsonl
from quantify.methodology import Methodology
from quantify.prepare import CHUNK_RECORDS
from quantify.private import SchemeKeys

KEYS = SchemeKeys(hashlib.sha256(b"pinned hub").digest(), hashlib.sha256(b"pinned fingerprint").digest())
LINES = CHUNK_RECORDS + CHUNK_RECORDS // 2
# sha256 over every file of the runs (format 1 and 2, JSON Lines and CSV), by methodology.
PINNED = {
    "HB-GT-METRO": "60ceebbd2f56bb76a636a58f6d6bb2a722bd3834559b5355202f0f6b9c19382a",
    "HB-GT-CYCLE": "57a5d4d6a5528cca355fe7ac4a1b8bc5ab7a966e3a2f0dc1ac7050bdf520d33d",
    "HB-GT-WALK": "715b48ed4c0c285a13721596fb478fbaf54e2437073e4fdae927917895a9a52e",
    "HB-RS-RECYCLE": "de694b7d5209b836cdbc3d42d6c14805f062f589b9c5b8392f47857a860127d0",
    "HB-GT-BUS": "7a79d9a0d4a34cd2ffb87991a843ecdd7c9971aabef9805fe2214be9f9047c84",
}


class FixedRandom:
    """os.urandom's stand-in: the SHA-256 counter stream, the same bytes in the same order however
    many are asked for at once."""

    def __init__(self) -> None:
        self.counter = 0
        self.pending = b""

    def __call__(self, n: int) -> bytes:
        while len(self.pending) < n:
            self.pending += hashlib.sha256(self.counter.to_bytes(8, "big")).digest()
            self.counter += 1
        taken, self.pending = self.pending[:n], self.pending[n:]
        return taken


def raw_record(m: Methodology, i: int) -> dict[str, Any]:
    """The i-th raw record: acts repeat (every 37th a second report of the one before), people
    recur within a day (caps fill up), times cross UTC and Beijing midnights and a month's end."""
    act = i - 1 if i % 37 == 36 else i
    day = 20 + act % 15  # January 20 to February 3
    month, day = (1, day) if day <= 31 else (2, day - 31)
    inputs: dict[str, Any] = {}
    for n, field in enumerate(m.inputs):
        if not field.required and (act + n) % 3 == 0:
            continue
        if field.kind == "integer":
            inputs[field.name] = (act * 7919 + n * 104_729) % min(field.maximum or 10**6, 40_000) // (1 + act % 5)
        elif field.kind == "enum":
            inputs[field.name] = field.values[(act + n) % len(field.values)]
        else:
            inputs[field.name] = f"C{(act * (n + 3)) % 40:02d}.{n}"
    return {"activity_id": f"wh-{i:06d}" if i % 101 != 100 else f"wh-{i - 7:06d}",
            "subject": f"p-{act % 53:04x}",
            "occurred_at": f"2026-{month:02d}-{day:02d}T{act % 24:02d}:{act * 7 % 60:02d}:{act % 60:02d}.000000Z",
            "inputs": inputs}


def json_line(record: dict[str, Any], i: int) -> str:
    """The record written one of the ways platforms write it, or spoiled."""
    if i % 89 == 0:
        return json.dumps(record)[:-3]  # cut short: malformed
    if i % 83 == 0:
        return json.dumps({**record, "inputs": {**record["inputs"], "unknown": 1}})
    if i % 7 == 0:
        return json.dumps(record)  # ", " and ": "
    if i % 11 == 0:
        return json.dumps(record, sort_keys=True, separators=(",", ":"))
    if i % 13 == 0:
        return " " + json.dumps(record, separators=(",", ":"))  # a blank first: the full path
    if i % 17 == 0:
        return json.dumps(record, separators=(",", ":"), indent=None, ensure_ascii=False).replace(":", ": ", 1)
    return json.dumps(record, separators=(",", ":"))


def csv_text(m: Methodology, records: list[dict[str, Any]]) -> str:
    names = [f.name for f in m.inputs]
    rows = [",".join(["activity_id", "subject", "occurred_at", *reversed(names)])]
    for r in records:
        rows.append(",".join([r["activity_id"], r["subject"], r["occurred_at"],
                              *(str(r["inputs"].get(name, "")) for name in reversed(names))]))
    return "\n".join(rows) + "\n"


def run_digest(out_dir: Path, result: IngestResult) -> bytes:
    """Every file of a run, by path, and what it credited and rejected."""
    digest = hashlib.sha256()
    for path in sorted(p for p in out_dir.rglob("*") if p.is_file()):
        digest.update(f"{path.relative_to(out_dir)}\n".encode() + path.read_bytes())
    digest.update(repr((sorted(result.credited_g.items()), sorted(result.reasons.items()),
                        result.dropped_by_cap_g, result.lines)).encode())
    return digest.digest()


def pinned_digest(m: Methodology, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setattr(os, "urandom", FixedRandom())
    records = [raw_record(m, i) for i in range(LINES)]
    lines = [json_line(record, i) for i, record in enumerate(records)]
    digest = hashlib.sha256()
    for keys in (None, KEYS):
        options = dict(platform="wuhan-platform", methodology=m, run_id="pin", scheme_keys=keys)
        out = tmp_path / f"jsonl-{keys is not None}"
        result = ingest_jsonl([line.encode() + b"\n" for line in lines], out_dir=out, **options)
        digest.update(run_digest(out, result))
        out = tmp_path / f"csv-{keys is not None}"
        result = ingest_csv(io.StringIO(csv_text(m, records), newline=""), out_dir=out, period="day", **options)
        digest.update(run_digest(out, result))
    return digest.hexdigest()


@pytest.mark.parametrize("key", sorted(PINNED))
def test_ingestion_writes_the_pinned_bytes(library, tmp_path, monkeypatch, key):
    assert pinned_digest(library.get(key), tmp_path, monkeypatch) == PINNED[key]
