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
from quantify.activity import PreparedRecord, rules_for
from quantify.ingest import _OpenBatch, ingest_jsonl
from quantify.prepare import MAX_LINE_BYTES, pack, prepare_json_lines, unpack


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
    assert any(type(item) is prepare.Rejection for item in prepared)
    assert unpack(pack(prepared)) == prepared
    assert [type(item) for item in unpack(pack(prepared))] == [type(item) for item in prepared]
    assert {type(item) for item in prepared} == {prepare.Rejection, PreparedRecord}
    assert unpack(pack([])) == []
    assert unpack(pack(prepared[:1])) == prepared[:1]


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
