"""Format-2 records (spec 7.3, 7.4; quantify.private): the spec's example record byte for byte, the
fast path giving what the full path gives, and ingestion's openings, batches by occurred_on and
daily caps per daily pseudonym."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import random

import pytest
import rfc8785

from quantify.account import BatchActivities, opening_index, pseudonymous_account
from quantify.activity import rules_for
from quantify.ingest import Ingestor, MemoryDailyTotals, ingest_csv, ingest_jsonl
from quantify.methodology import Methodology
from quantify.prepare import prepare_csv_rows, prepare_json_lines, read_csv
from quantify.prepared import PreparedChunk
from quantify.private import SALT_BYTES, SchemeKeys, daily_pseudonym, daily_pseudonyms, private_records_for
from test_quantify_fastpath import csv_text, edge_lines, mutate, valid_record, writings

# Spec 7.2's example: hub key 0x00..0x1f, fingerprint key 0x20..0x3f, person p-0001.
EXAMPLE_KEYS = SchemeKeys(bytes(range(32)), bytes(range(32, 64)))
EXAMPLE_RAW = {"activity_id": "wh-0000123", "subject": "p-0001", "occurred_at": "2026-03-02T00:31:05.000000Z",
               "inputs": {"distance_m": 12345, "entry_station": "L2-07", "exit_station": "L4-12"}}
EXAMPLE_RECORD = (b'{"activity_id":"wh-0000123","fingerprint":"ea6f4f2512b6d397bcacee941eade6af9c7c08a7243523875893304a4'
                  b'eddb545","inputs":{"distance_m":12345},"occurred_on":"2026-03-02","private_sha256":"80d8bb1e84326'
                  b'1fcb7037d2d5cae9347a09f7bac6cf87bf255981ae01bc18c1c","reduction_g":967,"subject":"e5cbd441b92be'
                  b'fd2e02c5052b2090815"}')
EXAMPLE_OPENING = (b'{"fields":{"entry_station":"L2-07","exit_station":"L4-12","occurred_at":"2026-03-02T00:31:05.0000'
                   b'00Z"},"salt":"AAECAwQFBgcICQoLDA0ODw=="}')
KEYS = SchemeKeys(hashlib.sha256(b"test hub").digest(), hashlib.sha256(b"test fingerprint").digest())


def marked(m: Methodology, public=lambda field: field.kind != "code") -> Methodology:
    """m with `public` marked on its inputs (spec 7.1): by default quantities and enums public,
    codes (stations, devices) not."""
    return dataclasses.replace(m, inputs=tuple(dataclasses.replace(f, public=public(f)) for f in m.inputs))


def metro_v2(library) -> Methodology:
    return marked(library.get("HB-GT-METRO"))


def without_salt(data: bytes, opening: bytes) -> bytes:
    """A format-2 record with its salt-dependent commitment blanked."""
    return data.replace(hashlib.sha256(opening).hexdigest().encode(), b"0" * 64)


def test_the_spec_example_record_and_opening_exactly_with_the_example_salt(library):
    private = private_records_for(rules_for(metro_v2(library)), EXAMPLE_KEYS)
    prepared = private.prepare(1, EXAMPLE_RAW["activity_id"], EXAMPLE_RAW["subject"], EXAMPLE_RAW["occurred_at"],
                               EXAMPLE_RAW["inputs"], 967, salt="AAECAwQFBgcICQoLDA0ODw==")
    assert prepared.data == EXAMPLE_RECORD and prepared.opening == EXAMPLE_OPENING
    assert daily_pseudonym(EXAMPLE_KEYS.hub_key, "p-0001", "2026-03-02") == "e5cbd441b92befd2e02c5052b2090815"


@pytest.mark.parametrize("fast_path", [True, False])
def test_ingestion_writes_the_spec_example_record_but_for_its_fresh_salt(library, tmp_path, fast_path):
    """Through ingestion (fast or full path): the record is the example's byte for byte except
    private_sha256, which is the SHA-256 of the opening kept beside it, salted afresh."""
    line = json.dumps(EXAMPLE_RAW) if fast_path else " " + json.dumps(EXAMPLE_RAW)  # a blank first: full path
    result = ingest_jsonl([line], platform="wuhan-platform", methodology=metro_v2(library), run_id="wh",
                          out_dir=tmp_path, scheme_keys=EXAMPLE_KEYS)
    (batch,) = result.batches
    record, opening = batch.path.read_bytes(), batch.openings_path.read_bytes()
    assert record.endswith(b"\n") and opening.endswith(b"\n") and record.count(b"\n") == opening.count(b"\n") == 1
    record, opening = record[:-1], opening[:-1]
    assert without_salt(record, opening) == without_salt(EXAMPLE_RECORD, EXAMPLE_OPENING)
    assert json.loads(record)["private_sha256"] == hashlib.sha256(opening).hexdigest()
    parsed = json.loads(opening)
    assert rfc8785.dumps(parsed) == opening and parsed["fields"] == json.loads(EXAMPLE_OPENING)["fields"]
    assert len(base64.b64decode(parsed["salt"], validate=True)) == SALT_BYTES >= 16
    assert batch.openings_path == tmp_path / "openings" / "wh-2026-03.jsonl"
    assert batch.body["period_start"] == "2026-03-01" and result.credited_g == {
        ("e5cbd441b92befd2e02c5052b2090815", "2026-03-02"): 967}


def salts_fixed(chunk: PreparedChunk) -> PreparedChunk:
    """The chunk with every opening's salt replaced by one fixed salt, and its record's commitment,
    bytes and leaf hash with it; first checking each record commits to its own opening."""
    fixed = PreparedChunk(*(list(column) for column in chunk))
    for i, (data, opening) in enumerate(zip(chunk.data, chunk.openings, strict=True)):
        record, parsed = json.loads(data), json.loads(opening)
        assert record["private_sha256"] == hashlib.sha256(opening).hexdigest()
        assert len(base64.b64decode(parsed["salt"], validate=True)) >= 16
        new_opening = rfc8785.dumps({**parsed, "salt": base64.b64encode(b"\x01" * 16).decode()})
        new_data = rfc8785.dumps({**record, "private_sha256": hashlib.sha256(new_opening).hexdigest()})
        assert data == rfc8785.dumps(record)
        fixed.openings[i], fixed.data[i] = new_opening, new_data
        fixed.leaves[i] = hashlib.sha256(b"\x00" + new_data).digest()
    return fixed


PUBLIC_CHOICES = {
    "quantities and enums": lambda field: field.kind != "code",
    "everything": lambda field: True,
    "nothing": lambda field: False,
}


@pytest.mark.parametrize("choice", sorted(PUBLIC_CHOICES))
@pytest.mark.parametrize("key", ["HB-GT-METRO", "HB-GT-BUS", "HB-GT-WALK", "HB-RS-RECYCLE", "HB-ES-ROOFPV"])
def test_fast_and_full_paths_give_the_same_format_2_records(library, key, choice):
    """JSON Lines and CSV, valid, edge and mutated lines: the same records and rejections whichever
    path, salts aside (each record commits to its own opening, and salts never repeat)."""
    m = marked(library.get(key), PUBLIC_CHOICES[choice])
    rules = rules_for(m)
    private = private_records_for(rules, KEYS)
    rng = random.Random(f"{key}-{choice}")
    records = [valid_record(m, rng, i) for i in range(60)]
    valid = [line for record in records for line in writings(record, rng)]
    lines = valid + edge_lines(m, rng) + [mutate(rng.choice(valid), rng) for _ in range(600)]
    fast = prepare_json_lines(rules, 1, lines, private=private)
    full = prepare_json_lines(rules, 1, lines, fast_path=False, private=private)
    assert salts_fixed(fast) == salts_fixed(full) and len(fast.lines) > 300 and fast.rejections
    assert len(set(fast.openings)) == len(fast.openings)
    header = ["activity_id", "subject", "occurred_at", *(f.name for f in m.inputs)]
    layout, chunks = read_csv(csv_text(m, records, rng, header).splitlines(keepends=True), m)
    (_, _, rows), = chunks
    assert salts_fixed(prepare_csv_rows(rules, layout, rows, private=private)) == salts_fixed(
        prepare_csv_rows(rules, layout, rows, fast_path=False, private=private))
    for data in fast.data[:50]:  # only the public inputs, a pseudonym, a date
        record = json.loads(data)
        assert set(record["inputs"]) == {f.name for f in m.inputs if f.public} & set(record["inputs"])
        assert len(record["subject"]) == 32 and "occurred_at" not in record


def test_a_person_has_one_pseudonym_a_beijing_date_and_batches_go_by_that_date(library, tmp_path):
    """16:00Z is midnight in Beijing: a ride at 2026-01-31T16:30Z is on 1 February, so in February's
    batch (format 2 checks occurred_on against the period), under February's pseudonym."""
    raw = [{**EXAMPLE_RAW, "activity_id": f"a-{i}", "occurred_at": at,
            "inputs": {**EXAMPLE_RAW["inputs"], "entry_station": f"S{i}"}}
           for i, at in enumerate(["2026-01-31T08:00:00.000000Z", "2026-01-31T16:30:00.000000Z",
                                   "2026-02-01T15:59:59.000000Z"])]
    result = ingest_jsonl([json.dumps(r) for r in raw], platform="wuhan-platform", methodology=metro_v2(library),
                          run_id="wh", out_dir=tmp_path, scheme_keys=KEYS)
    january, february = result.batches
    assert (january.body["period_start"], february.body["period_start"]) == ("2026-01-01", "2026-02-01")
    subjects = [json.loads(line)["subject"] for batch in result.batches for line in batch.path.read_bytes().splitlines()]
    assert subjects == [daily_pseudonym(KEYS.hub_key, "p-0001", day) for day in ("2026-01-31", "2026-02-01",
                                                                                   "2026-02-01")]
    assert subjects[0] != subjects[1] and "p-0001" not in (tmp_path / "activities").joinpath(
        "wh-2026-02.jsonl").read_text()


def test_a_rejection_after_preparation_shows_the_record_not_a_raw_line(library, tmp_path, read_lines):
    """A repeated activity_id is refused after its record was prepared: the rejection shows that
    record (pseudonym, public inputs) as "record", never labelled "raw" as if it were the line read,
    and holds neither the person's identifier nor a private input."""
    repeat = {**EXAMPLE_RAW, "inputs": {**EXAMPLE_RAW["inputs"], "entry_station": "L9-99"}}
    lines = [json.dumps(EXAMPLE_RAW), json.dumps(repeat), "not json"]
    result = ingest_jsonl(lines, platform="wuhan-platform", methodology=metro_v2(library), run_id="wh",
                          out_dir=tmp_path, scheme_keys=KEYS)
    repeated, malformed = read_lines(result.rejections_path)
    assert repeated["reason"] == "duplicate_activity_id" and "raw" not in repeated
    shown = json.loads(repeated["record"])
    assert shown["subject"] == daily_pseudonym(KEYS.hub_key, "p-0001", "2026-03-02")
    assert "p-0001" not in repeated["record"] and "L9-99" not in repeated["record"]
    assert malformed["reason"] == "malformed" and malformed["raw"] == "not json" and "record" not in malformed


def test_the_daily_cap_runs_per_pseudonym_methodology_and_date_across_runs(library, tmp_path):
    """HB-GT-METRO caps at 3000 g a person a day: after a run credited 2000 g, the next run's ride
    of 1176 g is clipped to 1000 g, and its record rebuilt with its commitment unchanged."""
    methodology, totals = metro_v2(library), MemoryDailyTotals()
    rides = [{**EXAMPLE_RAW, "activity_id": f"r-{i}", "inputs": {"distance_m": 15_000 if i else 25_511,
                                                                   "entry_station": f"S{i}", "exit_station": "S9"}}
             for i in range(2)]
    first = ingest_jsonl([json.dumps(rides[0])], platform="wuhan-platform", methodology=methodology, run_id="one",
                         out_dir=tmp_path / "one", scheme_keys=KEYS, daily_totals=totals)
    assert first.accepted_g == 2000
    totals.add_run(first)
    second = ingest_jsonl([json.dumps(rides[1])], platform="wuhan-platform", methodology=methodology, run_id="two",
                          out_dir=tmp_path / "two", scheme_keys=KEYS, daily_totals=totals)
    (batch,) = second.batches
    record, opening = batch.path.read_bytes()[:-1], batch.openings_path.read_bytes()[:-1]
    assert second.reasons["daily_cap_clipped"] == 1 and json.loads(record)["reduction_g"] == 1000
    assert json.loads(record)["private_sha256"] == hashlib.sha256(opening).hexdigest()
    assert rfc8785.dumps(json.loads(record)) == record and batch.body["total_g"] == 1000


def test_csv_ingestion_writes_openings_line_for_line(library, tmp_path):
    m = metro_v2(library)
    rows = ["activity_id,subject,occurred_at,distance_m,entry_station,exit_station\n"] + [
        f"c-{i},p-{i % 3},2026-03-0{1 + i % 2}T08:0{i}:00.000000Z,{5000 + i},S{i},S9\n" for i in range(6)]
    result = ingest_csv(rows, platform="wuhan-platform", methodology=m, run_id="c", out_dir=tmp_path,
                        scheme_keys=KEYS)
    (batch,) = result.batches
    records, openings = batch.path.read_bytes().splitlines(), batch.openings_path.read_bytes().splitlines()
    assert len(records) == len(openings) == 6
    for record, opening in zip(records, openings):
        assert json.loads(record)["private_sha256"] == hashlib.sha256(opening).hexdigest()


def test_the_scheme_keys_are_two_distinct_secrets_never_shown():
    with pytest.raises(ValueError):
        SchemeKeys(bytes(32), bytes(32))
    with pytest.raises(ValueError):
        SchemeKeys(bytes(16), bytes(range(32)))
    assert bytes(range(32)).hex() not in repr(EXAMPLE_KEYS) and "\\x00" not in repr(EXAMPLE_KEYS)


def test_an_ingestor_without_keys_writes_format_1_and_no_openings(library, tmp_path):
    with Ingestor(platform="wuhan-platform", methodology=metro_v2(library), run_id="f1", out_dir=tmp_path) as run:
        run.add(1, EXAMPLE_RAW, EXAMPLE_RAW)
        result = run.finish()
    (batch,) = result.batches
    assert batch.openings_path is None and not (tmp_path / "openings").exists()
    assert json.loads(batch.path.read_bytes())["subject"] == "p-0001"


def test_a_persons_account_over_daily_pseudonyms_checks_the_openings_it_is_given(library, tmp_path):
    raw = [{**EXAMPLE_RAW, "activity_id": f"a-{i}", "occurred_at": f"2026-03-0{1 + i}T08:00:00.000000Z",
            "inputs": {**EXAMPLE_RAW["inputs"], "entry_station": f"S{i}"}} for i in range(3)]
    result = ingest_jsonl([json.dumps(r) for r in raw], platform="wuhan-platform", methodology=metro_v2(library),
                          run_id="wh", out_dir=tmp_path, scheme_keys=KEYS)
    (batch,) = result.batches
    records = batch.path.read_bytes().splitlines()
    openings = batch.openings_path.read_bytes().splitlines()
    derived = daily_pseudonyms(KEYS.hub_key, "p-0001", "2026-03-01", "2026-03-02")  # not the 3rd
    assert [d.day for d in derived] == ["2026-03-01", "2026-03-02"]
    given = opening_index([openings[0], openings[2]])  # the 2nd record's opening not given
    report = pseudonymous_account("p-0001", [d.subject for d in derived], [BatchActivities(batch.body, records)],
                                  {}, given)
    rows = [dict(zip(report.tables["records"].columns, row)) for row in report.tables["records"].rows]
    assert [(r["activity_id"], r["occurred_at"], r["opening"]) for r in rows] == [
        ("a-0", "2026-03-01T08:00:00.000000Z", "checked"), ("a-1", "", "no opening given for it")]
    assert report.data["total_g"] == 2 * 967 and report.data["subjects"] == [d.subject for d in derived]
    assert report.title.endswith("(2 daily pseudonyms)")
    wrong = pseudonymous_account("p-0001", [derived[0].subject], [BatchActivities(batch.body, records)], {},
                                 {json.loads(records[0])["private_sha256"]: openings[1]})
    assert dict(zip(wrong.tables["records"].columns, wrong.tables["records"].rows[0]))["opening"] == \
        "its SHA-256 is not the record's private_sha256"
    assert wrong.title.endswith("(1 daily pseudonym)")
    with pytest.raises(ValueError):
        daily_pseudonyms(KEYS.hub_key, "p-0001", "2026-03-02", "2026-03-01")
