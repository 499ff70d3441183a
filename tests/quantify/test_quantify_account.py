"""The personal carbon account over batch files, and inclusion proofs of single records."""

from __future__ import annotations

import json

import pytest
from spec_paths import VECTORS

from ledger.merkle import leaf_hash, verify_inclusion
from quantify.account import BatchActivities, BatchPlace, personal_account, record_inclusion
from quantify.ingest import MemoryDailyTotals, ingest_jsonl


def batches_of(result):
    return [BatchActivities(b.body, b.path.read_bytes().splitlines()) for b in result.batches]


@pytest.fixture
def two_platforms(tmp_path, library, make_metro_record, to_jsonl):
    """Alice rides the metro (platform wh-metro) and buses (platform alipay) over two days."""
    daily = MemoryDailyTotals()
    metro = ingest_jsonl(to_jsonl([
        make_metro_record("m1", occurred_at="2026-01-05T01:00:00.000000Z", distance_m=5000),   # 392 g, 5 Jan
        make_metro_record("m2", occurred_at="2026-01-05T17:00:00.000000Z", distance_m=10000),  # 784 g, 6 Jan Beijing
        make_metro_record("m3", subject="p-bob", occurred_at="2026-01-05T02:00:00.000000Z"),
    ]), platform="wh-metro", run_id="wm", methodology=library.get("HB-GT-METRO"), out_dir=tmp_path / "m",
        daily_totals=daily)
    bus = ingest_jsonl(to_jsonl([
        {"activity_id": f"b{i}", "subject": "p-alice", "occurred_at": f"2026-02-0{i + 1}T03:00:00.000000Z",
         "inputs": {"line": "L5"}} for i in range(3)
    ]), platform="alipay", run_id="ap", methodology=library.get("HB-GT-BUS"), out_dir=tmp_path / "b",
        daily_totals=daily)
    return batches_of(metro) + batches_of(bus)


def test_reductions_by_day_methodology_platform_and_batch(two_platforms):
    places = {"wm-2026-01": BatchPlace(seq=20, issuance_id="iss-1", issuance_seq=25)}
    report = personal_account("p-alice", two_platforms, places)
    data = report.as_json()
    assert data["total_g"] == 392 + 784 + 3 * 212
    assert data["issued_g"] == 392 + 784
    tables = data["tables"]
    assert [(r["day"], r["reduction_g"]) for r in tables["by_day"]] == [
        ("2026-01-05", 392), ("2026-01-06", 784), ("2026-02-01", 212), ("2026-02-02", 212), ("2026-02-03", 212)]
    assert {r["methodology_id"]: r["reduction_g"] for r in tables["by_methodology"]} == {
        "HB-GT-BUS": 636, "HB-GT-METRO": 1176}
    assert {r["platform"]: r["reduction_t"] for r in tables["by_platform"]} == {"alipay": "0.001", "wh-metro": "0.001"}
    batch_rows = {r["batch_id"]: r for r in tables["batches"]}
    assert batch_rows["wm-2026-01"]["issuance_id"] == "iss-1" and batch_rows["wm-2026-01"]["batch_seq"] == 20
    assert batch_rows["ap-2026-02"]["issuance_id"] is None
    assert len(tables["records"]) == 5 and "p-bob" not in json.dumps(tables)
    assert "[by_day]" in report.to_csv()


def test_a_rejected_batch_is_listed_apart_from_what_was_earned(two_platforms):
    """A batch its validation body rejected will never be issued: its grams are shown as rejected,
    with the review, and are in no total (neither earned nor "not yet issued")."""
    places = {"wm-2026-01": BatchPlace(seq=20, issuance_id="iss-1", issuance_seq=25),
              "ap-2026-02": BatchPlace(seq=21, rejected_by="rev-ap")}
    report = personal_account("p-alice", two_platforms, places)
    data = report.as_json()
    assert (data["total_g"], data["issued_g"], data["rejected_g"]) == (392 + 784, 392 + 784, 3 * 212)
    summary = {r["item"]: r["grams"] for r in data["tables"]["summary"]}
    assert summary == {"total": 1176, "issued": 1176, "not yet issued": 0, "rejected": 636}
    assert {r["batch_id"]: r["rejected_by"] for r in data["tables"]["batches"]} == {"wm-2026-01": None, "ap-2026-02": "rev-ap"}
    assert [r["day"] for r in data["tables"]["by_day"]] == ["2026-01-05", "2026-01-06"]
    assert len(data["tables"]["records"]) == 5 and any("rejected" in note for note in report.notes)


def test_a_record_proves_its_place_in_its_batch(two_platforms):
    batch = two_platforms[0]
    found = record_inclusion(batch, "m2", BatchPlace(seq=20, issuance_id="iss-1", issuance_seq=25))
    assert found["record"]["activity_id"] == "m2" and found["batch_seq"] == 20
    proof = found["inclusion"]
    assert proof["tree_size"] == 3 and proof["leaf_index"] == 1
    assert verify_inclusion(leaf_hash(batch.records[1]), 1, 3, [bytes.fromhex(h) for h in proof["hashes"]],
                            bytes.fromhex(batch.body["root"]))
    with pytest.raises(KeyError):
        record_inclusion(batch, "m9")


def test_a_batch_file_that_does_not_match_its_root_is_refused(two_platforms):
    batch = two_platforms[0]
    tampered = BatchActivities(batch.body, [batch.records[0].replace(b'"reduction_g":392', b'"reduction_g":393'),
                                            *batch.records[1:]])
    with pytest.raises(ValueError, match="does not match"):
        record_inclusion(tampered, "m2")


def test_proofs_over_the_published_vector_bundle():
    """Batch files written by another implementation: every record proves into its event's root."""
    bundle = VECTORS / "valid" / "bundle"
    events = [json.loads(line) for line in (bundle / "log.jsonl").read_text().splitlines()]
    checked = 0
    for event in events:
        if event["type"] != "activity.batch":
            continue
        body = event["body"]
        records = (bundle / "activities" / f"{body['batch_id']}.jsonl").read_bytes().splitlines()
        batch = BatchActivities(body, records)
        for record in records[:3] + records[-2:]:
            found = record_inclusion(batch, json.loads(record)["activity_id"], BatchPlace(seq=event["seq"]))
            assert found["batch_seq"] == event["seq"]
            checked += 1
        subject = json.loads(records[0])["subject"]
        assert personal_account(subject, [batch], {}).data["total_g"] >= json.loads(records[0])["reduction_g"]
    assert checked > 0
