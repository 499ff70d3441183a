"""Ingestion: every record accepted into a batch or rejected with a reason, batch roots that an
independent RFC 9162 computation reproduces, daily caps held across platforms."""

from __future__ import annotations

import datetime as dt
import io
import json

import pytest
import rfc8785
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from quantify.ingest import IngestError, Ingestor, MemoryDailyTotals, ingest_csv, ingest_file, ingest_jsonl
from quantify.prepare import MAX_LINE_BYTES

ledger_schema = pytest.importorskip("ledger.schema")


def run_jsonl(tmp_path, records, name="run", **options):
    options.setdefault("platform", "wh-metro")
    options.setdefault("run_id", name)
    return ingest_jsonl(records, out_dir=tmp_path / name, **options)


def rejections(result, read_lines):
    return [(r["line"], r["reason"]) for r in read_lines(result.rejections_path)]


def check_batches(result, merkle_root):
    """Each batch file reproduces its committed count, total and root, and each body is valid."""
    for batch in result.batches:
        lines = batch.path.read_bytes().split(b"\n")
        assert lines[-1] == b""
        records = lines[:-1]
        for data in records:
            assert rfc8785.dumps(json.loads(data)) == data
        body = batch.body
        assert body["count"] == len(records) >= 1
        assert body["total_g"] == sum(json.loads(d)["reduction_g"] for d in records)
        assert body["root"] == merkle_root(records).hex()
        assert all(body["period_start"] <= json.loads(d)["occurred_at"][:10] <= body["period_end"] for d in records)
        ledger_schema.check_body("activity.batch", {**body, "request_id": "r-1"}, 1)
    written = [json.loads(line) for line in result.batches_path.read_text().splitlines()]
    assert written == [b.body for b in result.batches]


def test_jsonl_with_every_kind_of_rejection(tmp_path, metro, make_metro_record, to_jsonl, read_lines, merkle_root):
    r = make_metro_record
    lines = to_jsonl([
        r("a1", distance_m=10000),                                  # 1: 784 g
        r("a2", distance_m=10000, occurred_at="2026-01-05T08:00:40.000000Z"),  # 2: same act, other report
        r("a1", subject="p-bob"),                                   # 3: activity_id reused
        "{not json",                                                # 4
        "[1, 2]",                                                   # 5: not an object
        {**r("a5"), "extra": 1},                                    # 6
        r("a6", distance_m=-5),                                     # 7
        r("a7", distance_m=0, subject="p-carol"),                   # 8: 0 g
        r("a8", occurred_at="2026-02-30T08:00:00.000000Z"),         # 9
        r("a9", distance_m=20000, occurred_at="2026-01-05T09:00:00.000000Z"),  # 10: 1568 g
        r("a10", distance_m=20000, occurred_at="2026-01-05T10:00:00.000000Z"),  # 11: clipped to 648 g
        r("a11", distance_m=1000, occurred_at="2026-01-05T11:00:00.000000Z"),   # 12: cap reached
        '{"activity_id":"a12","activity_id":"a13","subject":"p-dan","occurred_at":"2026-01-05T08:00:00.000000Z",'
        '"inputs":{"distance_m":1,"entry_station":"S1","exit_station":"S2"}}',  # 13: duplicate key
        "",                                                          # 14: blank, skipped
        r("a14", subject="p-erin", occurred_at="2026-02-01T00:00:00.000000Z"),  # 15: February
    ])
    result = run_jsonl(tmp_path, lines, methodology=metro)
    assert result.lines == 15
    assert rejections(result, read_lines) == [
        (2, "duplicate_fingerprint"), (3, "duplicate_activity_id"), (4, "malformed"), (5, "malformed"),
        (6, "invalid_record"), (7, "invalid_input"), (8, "zero_reduction"), (9, "invalid_record"),
        (11, "daily_cap_clipped"), (12, "over_daily_cap"), (13, "malformed"),
    ]
    assert result.accepted == 4 and result.rejected == 10  # the clipped record is in a batch
    assert result.accepted_g == 784 + 1568 + 648 + 392
    assert result.dropped_by_cap_g == 1568 - 648
    clipped = read_lines(result.rejections_path)[8]
    assert clipped["quantified_g"] == 1568 and clipped["accepted_g"] == 648 and clipped["dropped_g"] == 920
    assert "line 1 of this run" in read_lines(result.rejections_path)[0]["detail"]
    assert [b.batch_id for b in result.batches] == ["run-2026-01", "run-2026-02"]
    assert [b.body["period_end"] for b in result.batches] == ["2026-01-31", "2026-02-28"]
    check_batches(result, merkle_root)
    assert result.credited_g[("p-alice", "2026-01-05")] == 3000
    report = result.report()
    assert "daily_cap_clipped,1" in report.to_csv()


def test_csv_gives_the_same_records_as_jsonl(tmp_path, metro, make_metro_record, to_jsonl, merkle_root, read_lines):
    records = [make_metro_record(f"c{i}", subject=f"p{i % 3}", distance_m=1000 + i) for i in range(20)]
    text = "activity_id,subject,occurred_at,distance_m,entry_station,exit_station\n" + "".join(
        f"{r['activity_id']},{r['subject']},{r['occurred_at']},{r['inputs']['distance_m']},"
        f"{r['inputs']['entry_station']},{r['inputs']['exit_station']}\n" for r in records)
    from_csv = ingest_csv(io.StringIO(text, newline=""), platform="p", run_id="csv", methodology=metro,
                          out_dir=tmp_path / "csv")
    from_jsonl = run_jsonl(tmp_path, to_jsonl(records), name="json", methodology=metro, platform="p", run_id="csv")
    assert [b.body for b in from_csv.batches] == [b.body for b in from_jsonl.batches]
    check_batches(from_csv, merkle_root)


def test_csv_rejections_name_physical_lines(tmp_path, metro, read_lines):
    text = ("activity_id,subject,occurred_at,distance_m,entry_station,exit_station\n"
            'c1,p1,2026-01-05T08:00:00.000000Z,1000,S1,"S\n2"\n'     # lines 2-3: quoted newline, bad code
            "c2,p2,2026-01-05T08:00:00.000000Z,abc,S1,S2\n"          # 4: not an integer
            "c3,p3,2026-01-05T08:00:00.000000Z,1000,S1\n"            # 5: too few cells
            "c4,p4,2026-01-05T08:00:00.000000Z,1000,S1,S2\n"         # 6: fine
            "c5,p5,2026-01-05T08:00:00.000000Z,,S1,S2\n")            # 7: required input empty
    result = ingest_csv(io.StringIO(text, newline=""), platform="p", run_id="r", methodology=metro,
                        out_dir=tmp_path / "o")
    assert rejections(result, read_lines) == [(2, "invalid_input"), (4, "invalid_input"), (5, "malformed"),
                                              (7, "invalid_input")]
    assert result.accepted == 1 and result.lines == 7


@pytest.mark.parametrize("header", [
    "activity_id,subject,occurred_at,distance_m,entry_station",                     # missing a required input
    "activity_id,subject,occurred_at,distance_m,entry_station,exit_station,colour",  # unknown column
    "activity_id,subject,distance_m,entry_station,exit_station",                    # no occurred_at
    "",
])
def test_csv_header_that_fits_no_record_stops_the_run(tmp_path, metro, header):
    with pytest.raises(IngestError):
        ingest_csv(io.StringIO(header + "\n" if header else "", newline=""), platform="p", run_id="r",
                   methodology=metro, out_dir=tmp_path / "o")


def test_second_platform_reporting_the_same_acts_is_refused_and_capped(tmp_path, metro, make_metro_record, to_jsonl,
                                                                       read_lines):
    """Platform A's batches are committed; the registry's seen fingerprints and daily totals then
    stop platform B from counting the same rides again or going past the subject's cap."""
    rides = [make_metro_record(f"A{i}", occurred_at=f"2026-01-05T0{i}:00:00.000000Z", distance_m=8000)
             for i in range(5)]  # 627 g each, 3135 g in all: the fifth is clipped to 492 g
    daily = MemoryDailyTotals()
    a = run_jsonl(tmp_path, to_jsonl(rides), name="a", platform="platform-a", methodology=metro, daily_totals=daily)
    assert a.accepted_g == 3000
    seen = {json.loads(line)["fingerprint"] for b in a.batches for line in b.path.read_text().splitlines()}
    daily.add_run(a)

    same_rides = [{**r, "activity_id": "B" + r["activity_id"]} for r in rides]
    new_ride = make_metro_record("B-new", occurred_at="2026-01-05T12:00:00.000000Z", distance_m=8000)
    other_day = make_metro_record("B-next", occurred_at="2026-01-05T17:00:00.000000Z", distance_m=8000)  # Beijing 6th
    b = run_jsonl(tmp_path, to_jsonl(same_rides + [new_ride, other_day]), name="b", platform="platform-b",
                  methodology=metro, daily_totals=daily, seen_fingerprints=seen)
    reasons = [reason for _, reason in rejections(b, read_lines)]
    assert reasons == ["duplicate_fingerprint"] * 5 + ["over_daily_cap"]
    assert "the registry" in read_lines(b.rejections_path)[0]["detail"]
    assert b.accepted == 1 and b.accepted_g == 627
    assert b.credited_g == {("p-alice", "2026-01-06"): 627}


def test_activity_ids_already_in_the_registry_are_refused(tmp_path, metro, make_metro_record, to_jsonl, read_lines):
    result = run_jsonl(tmp_path, to_jsonl([make_metro_record("old-1"), make_metro_record("new-1", subject="p2")]),
                       methodology=metro, seen_activity_ids={"old-1"})
    assert rejections(result, read_lines) == [(1, "duplicate_activity_id")]


SUBJECTS = st.sampled_from(["p1", "p2", "p3"])
HOURS = st.sampled_from(["00", "08", "15", "16", "23"])
RIDE = st.tuples(SUBJECTS, st.integers(4, 6), HOURS, st.integers(0, 59), st.integers(0, 40000),
                 st.sampled_from(["S1", "S2"]))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(platform_a=st.lists(RIDE, max_size=30), platform_b=st.lists(RIDE, max_size=30))
def test_never_above_the_daily_cap_across_platforms(tmp_path_factory, metro, platform_a, platform_b):
    from quantify.activity import beijing_day, quantify

    out = tmp_path_factory.mktemp("cap")
    daily = MemoryDailyTotals()
    seen: set[str] = set()
    credited: dict[tuple[str, str], int] = {}
    for name, rides in (("a", platform_a), ("b", platform_b)):
        records = [{"activity_id": f"{name}{i}", "subject": s, "occurred_at": f"2026-01-0{d}T{h}:{m:02d}:00.000000Z",
                    "inputs": {"distance_m": dist, "entry_station": st_, "exit_station": "S9"}}
                   for i, (s, d, h, m, dist, st_) in enumerate(rides)]
        result = ingest_jsonl([json.dumps(r).encode() for r in records], platform=f"platform-{name}", run_id=name,
                              methodology=metro, out_dir=out / name, daily_totals=daily, seen_fingerprints=seen)
        assert result.accepted + result.rejected == len(records)
        for batch in result.batches:
            for line in batch.path.read_text().splitlines():
                record = json.loads(line)
                assert 0 < record["reduction_g"] <= quantify(metro, record["inputs"])
                key = (record["subject"], beijing_day(record["occurred_at"]))
                credited[key] = credited.get(key, 0) + record["reduction_g"]
                assert record["fingerprint"] not in seen
                seen.add(record["fingerprint"])
        daily.add_run(result)
    assert all(grams <= metro.daily_cap_g for grams in credited.values())


def test_batches_split_at_the_record_limit_and_by_day(tmp_path, metro, make_metro_record, to_jsonl, merkle_root):
    records = [make_metro_record(f"x{i}", subject=f"p{i}", occurred_at=f"2026-01-0{1 + i % 2}T08:00:00.000000Z")
               for i in range(7)]
    result = run_jsonl(tmp_path, to_jsonl(records), methodology=metro, period="day", max_batch_records=2)
    assert [(b.batch_id, b.body["count"]) for b in result.batches] == [
        ("run-2026-01-01", 2), ("run-2026-01-01.2", 2), ("run-2026-01-02", 2), ("run-2026-01-02.2", 1)]
    assert all(b.body["period_start"] == b.body["period_end"] for b in result.batches)
    check_batches(result, merkle_root)


def test_open_batches_are_bounded(tmp_path, metro, make_metro_record, to_jsonl, merkle_root):
    months = ["01", "02", "03", "01"]
    records = [make_metro_record(f"x{i}", subject=f"p{i}", occurred_at=f"2026-{m}-05T08:00:00.000000Z")
               for i, m in enumerate(months)]
    result = run_jsonl(tmp_path, to_jsonl(records), methodology=metro, max_open_batches=2)
    assert sorted(b.batch_id for b in result.batches) == ["run-2026-01", "run-2026-01.2", "run-2026-02",
                                                          "run-2026-03"]
    check_batches(result, merkle_root)


def test_line_limits_and_encodings(tmp_path, metro, make_metro_record, read_lines):
    good = json.dumps(make_metro_record("ok")).encode() + b"\n"
    long_line = b'{"activity_id":"' + b"x" * (MAX_LINE_BYTES + 10) + b'"}\n'
    source = tmp_path / "in.jsonl"
    source.write_bytes(b"\xff\xfe\n" + long_line + b"\n   \n" + good)
    result = ingest_file(source, platform="p", run_id="r", methodology=metro, out_dir=tmp_path / "o")
    found = read_lines(result.rejections_path)
    assert [(r["line"], r["reason"]) for r in found] == [(1, "malformed"), (2, "malformed")]
    assert "not UTF-8" in found[0]["detail"] and "longer than" in found[1]["detail"]
    assert len(found[1]["raw"]) <= 2000 and found[1]["raw_truncated"]
    assert result.accepted == 1 and result.lines == 5


def test_blank_lines_hold_no_record(tmp_path, metro, make_metro_record):
    lines = ["", "  ", json.dumps(make_metro_record("a")), "\r\n"]
    result = run_jsonl(tmp_path, lines, methodology=metro)
    assert result.accepted == 1 and result.rejected == 0 and result.lines == 4


def test_a_run_has_a_line_limit(tmp_path, metro, make_metro_record, to_jsonl):
    with pytest.raises(IngestError, match="split the file"):
        run_jsonl(tmp_path, to_jsonl([make_metro_record(f"x{i}") for i in range(5)]), methodology=metro, max_lines=3)


def test_a_run_never_overwrites_an_earlier_one(tmp_path, metro, make_metro_record, to_jsonl):
    run_jsonl(tmp_path, to_jsonl([make_metro_record("x")]), methodology=metro)
    with pytest.raises(FileExistsError):
        run_jsonl(tmp_path, to_jsonl([make_metro_record("x")]), methodology=metro)


@pytest.mark.parametrize("bad", [
    {"platform": "no spaces"}, {"run_id": "x" * 101}, {"period": "week"}, {"max_batch_records": 0},
])
def test_bad_run_arguments_are_refused(tmp_path, metro, bad):
    options = {"platform": "p", "run_id": "r", "methodology": metro, "out_dir": tmp_path / "o", **bad}
    with pytest.raises(IngestError):
        Ingestor(**options)


@pytest.mark.parametrize("line", [
    '{"activity_id":"a","subject":"p","occurred_at":"2026-01-05T08:00:00.000000Z","inputs":{"distance_m":1,'
    '"entry_station":"S1","exit_station":"S2","distance_m" :9}}',
    '{"activity_id":"a","subject":"p","occurred_at":"2026-01-05T08:00:00.000000Z","subject" : "q","inputs":'
    '{"distance_m":1,"entry_station":"S1","exit_station":"S2"}}',
])
def test_duplicate_keys_are_caught_however_they_are_spaced(tmp_path, metro, line, read_lines):
    result = run_jsonl(tmp_path, [line], methodology=metro)
    assert rejections(result, read_lines) == [(1, "malformed")]


def test_worker_processes_write_the_same_bytes(tmp_path, metro, make_metro_record, to_jsonl):
    records = [make_metro_record(f"w{i}", subject=f"p{i % 7}", occurred_at=f"2026-0{1 + i % 3}-05T08:{i % 60:02d}:00.000000Z",
                                 distance_m=1000 * (i % 13)) for i in range(5000)]
    lines = to_jsonl(records) + [b"{broken\n"]
    in_process = run_jsonl(tmp_path, lines, name="a", methodology=metro)
    in_workers = run_jsonl(tmp_path, lines, name="b", methodology=metro, run_id="a", workers=2)
    assert [b.body for b in in_process.batches] == [b.body for b in in_workers.batches]
    for one, other in zip(in_process.batches, in_workers.batches):
        assert one.path.read_bytes() == other.path.read_bytes()
    assert in_process.rejections_path.read_bytes() == in_workers.rejections_path.read_bytes()


@given(st.dates(min_value=dt.date(1970, 1, 2), max_value=dt.date(9998, 12, 30)))
def test_a_beijing_day_begins_at_its_midnight_in_utc(day):
    from quantify.activity import beijing_day, beijing_midnight_utc
    start = beijing_midnight_utc(day.isoformat())
    assert beijing_day(start) == day.isoformat()
    before = (dt.datetime.strptime(start, "%Y-%m-%dT%H:%M:%S.%fZ") - dt.timedelta(microseconds=1))
    assert beijing_day(f"{before:%Y-%m-%dT%H:%M:%S.%f}Z") == (day - dt.timedelta(days=1)).isoformat()
    assert beijing_midnight_utc(day.isoformat(), days=1) == beijing_midnight_utc((day + dt.timedelta(days=1)).isoformat())
