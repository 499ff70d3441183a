"""Activity files read by the workers by byte ranges (file_ranges.py, `--dask`): the main process
sends only places in files, and the report is byte for byte a local run's, in both formats, with
any range size, whatever the files' line ends (empty lines, no final newline, an empty file) and
with the local run's message for a line too long to hold."""

import os
import pickle

import pytest
from conftest import local_dask_cluster, record_v2, rekeyed_vector, subject_of
from test_verifier_activities import add_batch, records
from test_verifier_uniqueness import bus, bus_records, plant_across_partitions, report_text, run  # noqa: F401 (run: a fixture)

from verifier import dask_runner, file_ranges
from verifier.digests import Blake2bDigester
from verifier.digests import string_hash_check
from verifier.parallel import JOBS, InlineRunner
from verifier.reader import MAX_RECORD_BYTES, InputError
from verifier.uniqueness import SplitDigests


class InlineCluster(InlineRunner):
    """A DaskRunner's interface with its jobs done here: the range path without a cluster."""

    reads_files = True

    def __init__(self, scheduler_address):
        super().__init__()

    def string_hash_checks(self):
        return [string_hash_check()]  # the jobs run in this process

    def submit(self, kind, payload):
        ticket = self._next_ticket
        self._next_ticket += 1
        self._results[ticket] = dask_runner.run_job(kind, pickle.dumps(payload))  # pickled as DaskRunner sends it
        return ticket

    def disconnect(self):
        pass


@pytest.fixture
def inline_cluster(monkeypatch):
    monkeypatch.setattr(dask_runner, "DaskRunner", InlineCluster)
    return "inline"


@pytest.fixture(scope="module")
def three_workers():
    pytest.importorskip("distributed")
    with local_dask_cluster(3) as cluster:
        yield cluster.scheduler_address


def plant_line_ends(world):
    """Files whose line ends a reader of byte ranges could get wrong."""
    add_batch(world, "e-01", records("e-01", 2048))  # exactly one chunk
    add_batch(world, "e-02", records("e-02", 2049))  # a chunk and one record
    add_batch(world, "e-03", records("e-03", 30))
    world.activity_files["e-03"] = world.activity_files["e-03"][:-1]  # no final newline: BATCH
    add_batch(world, "e-04", records("e-04", 30))
    world.activity_files["e-04"] = world.activity_files["e-04"].replace(b"\n", b"\n\n", 1)  # an empty line: BATCH
    add_batch(world, "e-05", records("e-05", 3))
    world.activity_files["e-05"] = b""  # an empty file: BATCH (count)
    add_batch(world, "e-06", [*records("e-06", 2500), *records("e-01", 1)])  # DUPLICATE_ID across files, past a chunk


@pytest.mark.parametrize("range_bytes", [64, 3000, 1 << 20])
@pytest.mark.parametrize("chunk_records", [2, 2048])
def test_ranges_give_the_report_of_a_local_run(world, run, inline_cluster, monkeypatch, range_bytes, chunk_records):  # noqa: F811
    plant_line_ends(world)
    local = run(world, jobs=1)
    assert [finding.code for finding in local.violations.listed] == ["BATCH", "BATCH", "BATCH", "DUPLICATE_ID"]
    monkeypatch.setattr(file_ranges, "RANGE_BYTES", range_bytes)
    monkeypatch.setattr(file_ranges, "CHUNK_RECORDS", chunk_records)  # format 1's report does not depend on it
    ranged = run(world, dask_scheduler=inline_cluster)
    assert report_text(ranged) == report_text(local)
    assert ranged.stats["activity_records"] == local.stats["activity_records"]


@pytest.mark.parametrize("range_bytes", [100, 1 << 22])
def test_a_line_too_long_stops_the_run_as_locally(world, tmp_path, inline_cluster, monkeypatch, range_bytes):
    from verifier.bundle import verify_bundle

    add_batch(world, "l-01", records("l-01", 5))
    lines = world.activity_files["l-01"].split(b"\n")
    lines[3] = b"x" * (MAX_RECORD_BYTES + 1)
    world.activity_files["l-01"] = b"\n".join(lines)
    bundle = world.write(tmp_path / "bundle")
    with pytest.raises(InputError) as local:
        verify_bundle(bundle.path, bundle.trust_object(), jobs=1)
    monkeypatch.setattr(file_ranges, "RANGE_BYTES", range_bytes)
    with pytest.raises(InputError) as ranged:
        verify_bundle(bundle.path, bundle.trust_object(), dask_scheduler=inline_cluster)
    assert str(ranged.value) == str(local.value) and "line 4 is longer than the limit" in str(local.value)


def test_range_jobs_give_the_local_chunks(tmp_path, monkeypatch):
    """Every range's chunks, in order, are the chunks a local run cuts, with the same results."""
    path = str(tmp_path / "records.jsonl")
    lines = [records(f"r{n}", 1)[0] if n % 7 else b"" for n in range(700)]  # every seventh line empty, no final newline
    with open(path, "wb") as handle:
        handle.write(b"\n".join(lines))
    chunk_job = ("2026-03-01", "2026-03-31", Blake2bDigester(b"k" * 32), None, None)
    # The local run's job: the chunk's digests split by partition on the worker (uniqueness.split_digests).
    expected = [(first, JOBS["records"]((*chunk_job[:3], first, b"\n".join(lines[first - 1 : first + 63])))) for first in range(1, 701, 64)]
    assert all(isinstance(result[3], SplitDigests) for _, result in expected)
    monkeypatch.setattr(file_ranges, "CHUNK_RECORDS", 64)
    checker = file_ranges.RangeChecker(None, InlineCluster(None), None, None, None)
    for range_bytes in (500, 4096, 1 << 20):
        monkeypatch.setattr(file_ranges, "RANGE_BYTES", range_bytes)
        jobs = checker._range_jobs(path, os.path.getsize(path), file_ranges.ChunkTemplate("records", chunk_job))
        assert len(jobs) > 1 or range_bytes == 1 << 20
        results = [file_ranges.check_range(job) for job in jobs]
        assert [tuple(outcome) for result in results for outcome in result.chunks] == expected
        assert [result.unterminated for result in results] == [False] * (len(jobs) - 1) + [True]


def test_a_range_is_big_enough_to_pay_for_its_task():
    """A Dask task costs milliseconds of CPU (scheduler, client, the worker's event loop): a file of
    10^5 records of 270 bytes goes to 2 workers as 2 ranges (1 % of their work), not 8 (5 %)."""
    size = 100_000 * 270
    assert -(-size // file_ranges._range_bytes(size, 2)) == 2
    assert -(-size // file_ranges._range_bytes(size, 128)) == 128  # every worker still gets a part


def test_a_file_s_newlines_are_counted_by_several_workers():
    """Ranges of 16 MiB are counted one a task (else, with RANGES_PER_COUNT of them a count, one
    worker would count a whole 10^5-record file while the others wait); small ranges a few a task."""
    size = 100_000 * 270
    for workers, counts in ((2, 2), (128, 32)):
        range_bytes = file_ranges._range_bytes(size, workers)
        assert -(-size // file_ranges._stretch_bytes(range_bytes)) == counts


def test_a_cluster_of_three_gives_the_report_of_a_local_run(world, run, three_workers, monkeypatch):  # noqa: F811
    plant_across_partitions(world)  # repeats of ids and fingerprints across files and within them
    plant_line_ends(world)
    local = run(world, jobs=1)
    monkeypatch.setattr(file_ranges, "RANGE_BYTES", 20_000)
    on_dask = run(world, dask_scheduler=three_workers)
    assert report_text(on_dask) == report_text(local)
    assert on_dask.stats["workers"] == 3 and on_dask.stats["jobs_done_in_main"] == 0


def test_format_2_groups_across_a_chunk_boundary_as_locally(run, three_workers):  # noqa: F811
    """A subject's trips of one day on both sides of line 2048, over the daily cap: format 2 follows
    subject-days chunk by chunk, so the ranges give out the local run's chunks, not bigger ones."""
    r = rekeyed_vector()
    trips = bus_records("w-01", "2026-07-03", 2100)
    regular = subject_of("w-01-regular")
    for line in (2040, 2045, 2050, 2060, 2070):  # 5 trips of 212 g: 1,060 g, above the cap of 1,000 g
        trips[line - 1] = record_v2(f"w-01-r{line}", regular, "2026-07-03", {"fare": "adult"}, 212)
    bus(r, "w-01", trips)
    local = run(r, jobs=1)
    assert [finding.code for finding in local.violations.listed] == ["QUANTIFICATION"]
    # Reported in the second chunk: line 2070, the first trip the cap clips (one chunk of 16,384
    # records, as the cluster's jobs were before, once said line 2040, the subject's first trip).
    assert int(local.violations.listed[0].message.split(" line ")[1].split(":")[0]) > 2048
    assert report_text(run(r, dask_scheduler=three_workers)) == report_text(local)
