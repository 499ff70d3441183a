"""A format-2 log's subjects within --memory-limit (verifier/subjects.py): the table forgets old
generations, and a forgotten subject met again makes the log replayed with it pinned, so that the
report is the one of an unbounded table, with workers or without, with the stream of new subjects
in memory or spilled."""

import json

import pytest
from conftest import found, record_v2, rekeyed_vector, subject_of
from test_verifier_format2 import bus_batch, bus_records
from test_verifier_uniqueness import dask_cluster, report_text, run  # noqa: F401 (dask_cluster, run: fixtures)

from verifier.subjects import KnownSubjects, SubjectStream, at_risk

DAY = "2026-07-03"


def test_known_subjects_keep_each_subjects_day_and_grams_per_methodology():
    """Colliding and negative digests, growth, a second methodology_id of a subject and grams
    beyond 32 bits (kept beside)."""
    known = KnownSubjects(initial_bits=2)
    known.keep({5: "2026-07-03", 9: "2026-07-04"}, {5: 100, 9: 200}, "BUS")
    known.keep({}, {5: 150}, "BUS")
    known.keep({-7: "2026-07-05"}, {-7: 1, 9: 30}, "CYCLE")
    known.keep({13: "2026-07-03"}, {13: 2**33}, "BUS")
    days = [None, None, None, None, "2026-07-09", None]
    assert known.days_and_grams([5, 9, 13, -7, 17, 21], "BUS", days) == [150, 200, 2**33, 0, 0, 0]
    assert days == ["2026-07-03", "2026-07-04", "2026-07-03", "2026-07-05", "2026-07-09", None]
    days = [None] * 3
    assert known.days_and_grams([5, 9, -7], "CYCLE", days) == [0, 30, 1] and days == ["2026-07-03", "2026-07-04", "2026-07-05"]
    assert known.count == 4 and known.generations_forgotten == 0


def lookup(known, subjects, methodology_id="BUS"):
    days = [None] * len(subjects)
    grams = known.days_and_grams(subjects, methodology_id, days)
    return list(zip(days, grams))


def conclude(known, new_days, grams_of, methodology_id="BUS"):
    """A reading concluded and accepted, as ActivityChecker2 feeds KnownSubjects."""
    known.begin_reading(len(grams_of))
    known.keep(new_days, grams_of, methodology_id)
    known.end_reading()


def fill(known, filler, batches):
    for _ in range(batches):
        batch = [next(filler) for _ in range(100)]
        conclude(known, dict.fromkeys(batch, DAY), dict.fromkeys(batch, 1))


def test_generations_forget_the_oldest_subjects_and_keep_those_credited_again():
    known = KnownSubjects(max_bytes=32 << 10)  # generations of 2^10 slots: readings of 716 subjects each
    first = list(range(1, 101))
    conclude(known, dict.fromkeys(first, DAY), dict.fromkeys(first, 10))
    conclude(known, {}, {3: 2**33}, "CYCLE")  # subject 3's CYCLE grams, beside
    conclude(known, {}, {2: 5}, "CYCLE")  # beside too: BUS holds the inline place
    filler = iter(range(1000, 10**6))
    fill(known, filler, 7)  # 700 more: a generation begins with the last, the first 100 are in the previous one
    assert known.generations == 1 and known.generations_forgotten == 0
    assert lookup(known, [1, 2, 3]) == [(DAY, 10)] * 3
    conclude(known, {}, {2: 20, 3: 30})  # credited again while in the previous generation: they move
    fill(known, filler, 8)
    assert known.generations == 2 and known.generations_forgotten == 1
    assert lookup(known, [1, 2, 3]) == [(None, 0), (DAY, 20), (DAY, 30)]
    assert lookup(known, [2, 3], "CYCLE") == [(DAY, 5), (DAY, 2**33)]
    assert known.count <= 2 * 716


def test_a_reading_larger_than_a_generation_is_kept_whole():
    known = KnownSubjects(max_bytes=32 << 10)
    conclude(known, {1: DAY}, {1: 10})
    big = range(1000, 3000)  # 2,000 subjects: past the 716 a generation holds
    conclude(known, dict.fromkeys(big, DAY), dict.fromkeys(big, 1))
    assert known.generations == 1 and lookup(known, [1, 1000, 2999]) == [(DAY, 10), (DAY, 1), (DAY, 1)]


def test_pinned_subjects_are_never_forgotten():
    known = KnownSubjects(max_bytes=32 << 10, pinned={1, 2})
    conclude(known, {1: DAY, 2: "2026-07-04", 3: DAY}, {1: 10, 2: 20, 3: 30})
    fill(known, iter(range(1000, 10**6)), 30)
    conclude(known, {}, {1: 11})
    assert known.generations_forgotten >= 2
    assert lookup(known, [1, 2, 3]) == [(DAY, 11), ("2026-07-04", 20), (None, 0)]


@pytest.mark.parametrize("max_bytes, search_share, spills", [(1 << 20, 1 << 20, False), (64, 200, True), (1 << 20, 200, True)])
def test_the_stream_finds_subjects_written_again_in_memory_or_spilled(tmp_path, max_bytes, search_share, spills):
    from verifier.parallel import InlineRunner

    stream = SubjectStream(max_bytes, lambda: str(tmp_path))
    stream.add([1, 2, 3], 0)
    stream.add([4, 5], 1)
    stream.add([2, 6], 2)  # 2 again, after an accepted reading
    stream.add([5], 3)  # 5 again, after a refused one
    stream.add([7, 2], 4)
    again = stream.written_again(InlineRunner(), search_share)
    assert again == {2: [0, 2, 4], 5: [1, 3]}
    # generations current at each reading's lookups: 2 spans two (0 to 3), 5 one (1 to 2)
    assert at_risk(again, [0, 1, 2, 2, 3]) == {2}
    assert bool(stream.spilled) == spills
    assert sorted(path.name for path in tmp_path.iterdir()) == (["subjects.digests", "subjects.reads"] if spills else [])


def far_returns(r, fillers=6, per_filler=600):
    """A subject credited 848 g of the 1000 g cap and another seen on July 3rd, then `fillers`
    batches of new subjects, then both met again: the first beyond its cap, the second on another
    day. A subject of the last filler is also met again (not forgotten)."""
    capped, trail = subject_of("capped"), subject_of("trail")
    bus_batch(r, "cap-a", bus_records("cap-a", capped, 4))
    bus_batch(r, "trail-a", bus_records("trail-a", trail, 1))
    for batch in range(fillers):
        bus_batch(r, f"fill-{batch}", [record_v2(f"fill-{batch}-{n}", subject_of(f"fill-{batch}-{n}"), DAY, {"fare": "adult"}, 212) for n in range(per_filler)])
    near = subject_of(f"fill-{fillers - 1}-7")
    bus_batch(r, "near", [record_v2("near-0", near, DAY, {"fare": "adult"}, 212)])
    clipped = bus_batch(r, "cap-b", bus_records("cap-b", capped, 1))  # 212 g where 152 g are left
    bus_batch(r, "cap-c", bus_records("cap-c", capped, 1, reduction_g=152))
    elsewhere = bus_batch(r, "trail-b", bus_records("trail-b", trail, 1, day="2026-07-04"))
    return [("QUANTIFICATION", clipped), ("PRIVACY", elsewhere)]


@pytest.mark.parametrize("memory_limit, jobs", [(16 << 10, 1), (16 << 10, 2), (64 << 10, 2)])
def test_subjects_forgotten_under_the_limit_give_the_unbounded_report(run, tmp_path, memory_limit, jobs):
    r = rekeyed_vector()
    expected = far_returns(r)
    unbounded = run(r, jobs=1)
    assert found(unbounded) == expected
    assert unbounded.stats["passes"] == 1 and unbounded.stats["subjects_generations_forgotten"] == 0
    spill_dir = tmp_path / "spill"
    spill_dir.mkdir(exist_ok=True)
    bounded = run(r, jobs=jobs, min_parallel_bytes=0, memory_limit=memory_limit, spill_dir=str(spill_dir))
    assert report_text(bounded) == report_text(unbounded)
    assert bounded.stats["subjects_generations_forgotten"] > 0
    assert bounded.stats["passes"] == 2 and bounded.stats["subjects_pinned"] == 2 and bounded.stats["subjects_at_risk"] == 0
    assert list(spill_dir.iterdir()) == []


def test_subjects_forgotten_on_a_dask_cluster_give_the_unbounded_report(run, dask_cluster, tmp_path):
    r = rekeyed_vector()
    far_returns(r)
    on_dask = run(r, dask_scheduler=dask_cluster.scheduler_address, memory_limit=16 << 10, spill_dir=str(tmp_path))
    assert report_text(on_dask) == report_text(run(r, jobs=1))
    assert on_dask.stats["passes"] == 2 and on_dask.stats["subjects_generations_forgotten"] > 0


def test_a_log_that_fits_is_read_once_even_when_subjects_return(run):
    r = rekeyed_vector()
    expected = far_returns(r, fillers=2, per_filler=100)
    bounded = run(r, jobs=1, memory_limit=16 << 10)
    assert found(bounded) == expected
    assert bounded.stats["passes"] == 1 and bounded.stats["subjects_generations_forgotten"] == 0


def test_the_command_line_says_when_subjects_were_forgotten(tmp_path, puhui_verify):
    r = rekeyed_vector()
    far_returns(r)
    bundle = r.write(tmp_path / "bundle")
    reports = []
    for options in ([], ["--memory-limit", "64K"]):
        done = puhui_verify("bundle", bundle.path, "--trust", bundle.trust, "--json", "--jobs", "1", *options)
        assert done.returncode == 1, done.stderr
        document = json.loads(done.stdout)
        reports.append((document.pop("stats"), json.dumps(document), done.stderr))
    (_, unbounded, quiet), (stats, bounded, noted) = reports
    assert bounded == unbounded and "subjects" not in quiet
    assert stats["passes"] == 2 and stats["subjects_generations_forgotten"] > 0
    assert f"{stats['subjects_generations_forgotten']} generations of them were forgotten; 2 subjects met again across generations were kept apart, so the log was read 2 times" in noted


def test_subjects_that_never_settle_are_held_whole_from_the_third_pass(run, monkeypatch):
    """Pinning shifts which subjects the generations forget, and a verdict it changes shifts which
    are kept: were each pass to find a new subject come back, the third one holds them all."""
    from itertools import count

    from verifier import records_v2

    r = rekeyed_vector()
    expected = far_returns(r)
    fresh = count(1)
    monkeypatch.setattr(records_v2, "at_risk", lambda written_again, generation_at: frozenset({next(fresh)}))
    bounded = run(r, jobs=1, memory_limit=16 << 10)
    assert found(bounded) == expected
    assert bounded.stats["passes"] == 3 and bounded.stats["subjects_held_whole"]
    assert bounded.stats["subjects_generations_forgotten"] == 0 and bounded.stats["subjects_pinned"] == 2
