"""The faster parts of ingestion give what the plain ones give: the block reader the same lines as
the bounded line reader, pack/unpack the same prepared items, the batch's folded Merkle tree the
root an independent RFC 9162 computation gives, workers the same bytes as in-process."""

from __future__ import annotations

import hashlib
import io
import json
import random
from pathlib import Path

import pytest

from quantify import prepare
from quantify.activity import rules_for
from quantify.ingest import _OpenBatch, ingest_jsonl
from quantify.prepare import MAX_LINE_BYTES, PreparedChunk, PreparedRecord, pack, prepare_json_lines, unpack


@pytest.mark.parametrize("block", [997, 16_385, 1 << 18])
def test_block_reader_gives_the_lines_of_the_bounded_reader(monkeypatch, block):
    monkeypatch.setattr(prepare, "READ_BLOCK", block)
    rng = random.Random(block)
    for _ in range(60):
        data = b"".join(
            b"x" * rng.choice([0, 1, 5, MAX_LINE_BYTES - 1, MAX_LINE_BYTES, MAX_LINE_BYTES + 1, MAX_LINE_BYTES + 2,
                               40_000]) + rng.choice([b"\n", b"\r\n", b""])
            for _ in range(rng.randint(0, 12)))
        by_blocks = [line for lines in prepare._block_lines(io.BytesIO(data).read) for line in lines]
        assert by_blocks == list(prepare._bounded_lines(io.BytesIO(data).readline))
        assert all(len(line) <= MAX_LINE_BYTES + 1 for line in by_blocks)


def test_pack_and_unpack_give_back_the_prepared_items(metro, make_metro_record):
    lines = [json.dumps(make_metro_record(f"a{i}", subject=f"p{i % 7}", distance_m=i * 37)).encode() + b"\n"
             for i in range(500)]
    lines[10] = b"{broken\n"
    lines[11] = b"\n"
    prepared = prepare_json_lines(rules_for(metro), 1, lines)
    assert prepared.rejections
    assert unpack(pack(prepared)) == prepared
    assert unpack(pack(PreparedChunk.of([]))) == PreparedChunk.of([])
    for few in (lines[:1], lines[1:2], lines[:2]):  # a rejection (0 g), a record, both
        chunk = prepare_json_lines(rules_for(metro), 1, few)
        assert unpack(pack(chunk)) == chunk and len(chunk.lines) + len(chunk.rejections) == len(few)


def test_a_chunk_holds_the_records_prepare_record_gives(metro, make_metro_record):
    rules = rules_for(metro)
    raws = [make_metro_record(f"a{i}", distance_m=i * 400) for i in range(6)]  # a0 quantifies to 0 g
    items = [prepare.prepare_record(rules, line, json.dumps(raw), raw) for line, raw in enumerate(raws, 1)]
    chunk = PreparedChunk.of(items)
    assert [type(item) for item in items] == [prepare.Rejection] + [PreparedRecord] * 5
    assert chunk.rejections == [items[0]]
    assert list(map(PreparedRecord._make, chunk.rows())) == items[1:]
    assert chunk.activity_ids == [item.activity_id for item in items[1:]]


def test_rejections_are_written_in_line_order_among_admission_rejections(tmp_path, metro, make_metro_record):
    lines = [json.dumps(make_metro_record(f"a{i}", subject=f"p{i}", distance_m=1000)).encode() + b"\n"
             for i in range(8)]
    lines[2] = lines[1]  # a duplicate, found when admitted
    lines[3] = b"{broken\n"  # malformed, found when prepared
    lines[5] = lines[4]
    lines[7] = b"\xff\n"
    result = ingest_jsonl(io.BytesIO(b"".join(lines)), platform="p", methodology=metro, run_id="r",
                          out_dir=tmp_path)
    written = [json.loads(line) for line in result.rejections_path.read_text().splitlines()]
    assert [(r["line"], r["reason"]) for r in written] == [
        (3, "duplicate_activity_id"), (4, "malformed"), (6, "duplicate_activity_id"), (8, "malformed")]


@pytest.mark.parametrize("count", [1, 2, 3, 2047, 2048, 2049, 4096, 5000, 6144])
def test_a_batch_folds_its_leaves_into_the_rfc_9162_root(tmp_path, count, merkle_root):
    rng = random.Random(count)
    records = [b"r%d" % i for i in range(count)]
    batch = _OpenBatch("b", "2026-01-01", "2026-01-31", tmp_path / "b.jsonl")
    for i, record in enumerate(records):
        batch.append(record, hashlib.sha256(b"\x00" + record).digest(), 1)
        if rng.random() < 0.002:  # an early flush: leaves that are no aligned subtree
            batch.flush()
        if i in (0, count // 2):
            assert batch.root() == merkle_root(records[:i + 1])
    assert batch.root() == merkle_root(records)
    batch.flush()
    batch.file.close()
    assert Path(batch.path).read_bytes().split(b"\n")[:-1] == records


def test_workers_write_the_same_bytes_across_many_chunks(tmp_path, metro, make_metro_record):
    lines = []
    for i in range(9_000):
        record = make_metro_record(f"w{i}", subject=f"p{i % 50}", distance_m=500 + i % 4000,
                                   occurred_at=f"2026-0{1 + i % 3}-{1 + i % 28:02d}T{i % 24:02d}:{i % 60:02d}:00.000000Z")
        lines.append(json.dumps(record).encode() + b"\n")
    lines[100] = b"not json\n"
    lines[5000] = lines[10]  # a repeated act and id
    runs = {}
    for workers in (0, 2):
        runs[workers] = ingest_jsonl(io.BytesIO(b"".join(lines)), workers=workers, platform="p", methodology=metro,
                                     run_id="r", out_dir=tmp_path / f"w{workers}")
    assert [b.body for b in runs[0].batches] == [b.body for b in runs[2].batches]
    assert len(runs[0].batches) == 3
    for a, b in zip(runs[0].batches, runs[2].batches):
        assert a.path.read_bytes() == b.path.read_bytes()
    assert runs[0].rejections_path.read_bytes() == runs[2].rejections_path.read_bytes()
    assert runs[0].reasons == runs[2].reasons and runs[0].reasons["malformed"] == 1
