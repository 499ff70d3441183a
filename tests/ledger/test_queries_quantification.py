"""The reads of ledger.queries that quantification answers from (personal accounts, record proofs and
explanations, claim pages), run on every storage backend (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest

from ledger.canonical import jcs
from ledger.queries import LoggedBatch, LoggedRecord, Queries
from ledger.registry import Appended
from world import World


@dataclass
class Logged:
    world: World
    queries: Queries
    january: list[dict]       # the records of batch wh-2026-01, in root order (issued in iss-1)
    february: list[dict]      # the records of batch gr-2026-02, in root order (not issued)
    appended: dict[str, Appended]


@pytest.fixture
def logged(database_url):
    """Two batches, one of them issued; transfers, two neutrality retirements and a claim over them."""
    w = World(database_url).setup()
    c, appended = w.client, {}
    january, february = w.records(26), w.records(13, day="2026-02-03")
    appended["wh-2026-01"] = w.batch("wh-2026-01", january)
    appended["gr-2026-02"] = w.batch("gr-2026-02", february, platform="grid-platform", period=("2026-02-01", "2026-02-28"))
    amount_g = sum(r["reduction_g"] for r in january)
    appended["iss-1"] = c.issue(w.admin, "iss-1", "wuhan-platform", "HB-GT-METRO", 2026, "420100", amount_g, ["wh-2026-01"])
    c.transfer(w.wuhan, "tr-1", "wuhan-platform", "mall-co", 2_000)
    appended["ret-a"] = c.retire(w.mall, "ret-a", "mall-co", 700, "carbon_neutrality", "Spring fair 2026")
    c.retire(w.mall, "ret-v", "mall-co", 100, "voluntary", "mall")
    appended["ret-b"] = c.retire(w.mall, "ret-b", "mall-co", 500, "carbon_neutrality", "Spring fair 2026")
    appended["claim-1"] = c.claim(w.mall, "claim-1", "mall-co", "event", "Spring fair 2026", "2026-03-01",
                                  "2026-03-03", 1_150, ["ret-b", "ret-a"])
    yield Logged(w, Queries(w.registry.store), january, february, appended)
    w.registry.close()


def test_subject_records_are_the_subjects_own_by_batch_then_leaf_index(logged):
    # World.records gives record n the subject p-(n mod 13): p-3 has records 3 and 16 in January
    # (leaf indexes 3 and 16) and record 29 in February (leaf index 29 - 26 = 3).
    rows = logged.queries.subject_records("p-3", limit=100)
    assert rows == [LoggedRecord("gr-2026-02", 3, jcs(logged.february[3])),
                    LoggedRecord("wh-2026-01", 3, jcs(logged.january[3])),
                    LoggedRecord("wh-2026-01", 16, jcs(logged.january[16]))]
    assert all(json.loads(row.record)["subject"] == "p-3" for row in rows)
    assert logged.queries.subject_records("p-3", limit=2) == rows[:2]
    assert logged.queries.subject_records("p-nobody", limit=100) == []


def test_every_subject_record_is_a_logged_record_at_its_leaf(logged):
    for subject in ("p-0", "p-12"):
        for row in logged.queries.subject_records(subject, limit=100):
            assert logged.queries.batch_records(row.batch_id)[row.position] == row.record


def test_activity_record_is_the_record_its_batch_and_leaf_index(logged):
    record = logged.february[5]
    assert logged.queries.activity_record(record["activity_id"]) == LoggedRecord("gr-2026-02", 5, jcs(record))
    assert logged.queries.activity_record("act-nope") is None


def test_activity_record_agrees_with_the_activity_proof(logged):
    record = logged.january[20]
    found, proof = logged.queries.activity_record(record["activity_id"]), logged.queries.activity_proof(record["activity_id"])
    assert (proof["batch_id"], proof["inclusion"]["leaf_index"], proof["record"].encode()) == (
        found.batch_id, found.position, found.record)
    assert proof["batch_seq"] == logged.appended["wh-2026-01"].seq


def test_batch_records_are_every_record_in_root_order(logged):
    assert logged.queries.batch_records("wh-2026-01") == [jcs(r) for r in logged.january]
    assert logged.queries.batch_records("gr-2026-02") == [jcs(r) for r in logged.february]
    assert logged.queries.batch_records("nope") == []


def test_batches_by_id_give_each_body_its_seq_and_its_issuance(logged):
    january, february = logged.appended["wh-2026-01"], logged.appended["gr-2026-02"]
    found = logged.queries.batches_by_id(["gr-2026-02", "wh-2026-01", "nope", "wh-2026-01"])
    assert set(found) == {"wh-2026-01", "gr-2026-02"}
    issued = found["wh-2026-01"]
    assert isinstance(issued, LoggedBatch)
    assert issued.body["seq"] == january.seq and issued.body["issuance_id"] == "iss-1"
    assert issued.issuance_seq == logged.appended["iss-1"].seq > january.seq
    assert issued.body["count"] == 26 and issued.body["total_g"] == sum(r["reduction_g"] for r in logged.january)
    assert issued.body["platform"] == "wuhan-platform" and issued.body["methodology_id"] == "HB-GT-METRO"
    assert issued.body["root"] == logged.world.registry.leaf(january.seq).body["root"]
    pending = found["gr-2026-02"]
    assert pending.body["seq"] == february.seq and pending.body["platform"] == "grid-platform"
    assert pending.body.get("issuance_id") is None and pending.issuance_seq is None
    assert logged.queries.batches_by_id([]) == {}


def test_batches_by_id_reads_many_ids_in_chunks(logged):
    ids = [f"missing-{i}" for i in range(1_200)] + ["wh-2026-01"]
    assert list(logged.queries.batches_by_id(ids)) == ["wh-2026-01"]


def test_claim_has_its_body_its_seq_and_the_time_of_its_event(logged):
    appended = logged.appended["claim-1"]
    claim = logged.queries.claim("claim-1")
    assert claim == {"claim_id": "claim-1", "seq": appended.seq, "time": appended.time, "claimant": "mall-co",
                     "subject": {"kind": "event", "name": "Spring fair 2026"}, "period_start": "2026-03-01",
                     "period_end": "2026-03-03", "footprint_g": 1_150, "retired_g": 1_200,
                     "retirements": ["ret-b", "ret-a"]}
    assert claim["time"] == logged.world.registry.leaf(appended.seq).time
    assert logged.queries.claim("nope") is None


def test_claim_is_the_item_of_the_claims_list(logged):
    [item] = logged.queries.claims(claimant="mall-co").items
    assert logged.queries.claim("claim-1") == item


def test_retirement_seqs_are_the_seqs_of_their_events(logged):
    appended = logged.appended
    assert logged.queries.retirement_seqs(["ret-b", "ret-a", "nope"]) == {
        "ret-a": appended["ret-a"].seq, "ret-b": appended["ret-b"].seq}
    assert appended["ret-a"].seq < appended["ret-b"].seq < appended["claim-1"].seq
    assert logged.queries.retirement_seqs([]) == {}
    listed = {item["retirement_id"]: item["seq"] for item in logged.queries.retirements(account="mall-co").items}
    assert logged.queries.retirement_seqs(listed) == listed
