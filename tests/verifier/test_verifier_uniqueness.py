"""Activity ids and fingerprints are unique exactly (uniqueness.py): digest collisions, forced by a
digester of a few bits, are confirmed against the full values and dropped; every real repeat is
kept, with the same report as a run with 64-bit digests, in both formats."""

import json
from array import array

import pytest
from conftest import fingerprint_of, local_dask_cluster, record_v2, rekeyed_vector, subject_of
from test_verifier_activities import PERIOD, add_batch, records

from verifier.bundle import verify_bundle
from verifier.digests import Blake2bDigester
from verifier.reader import InputError
from verifier.report import bundle_report_json
from verifier.uniqueness import PARTITIONS, RepeatJudge, parse_size


class FewBits(Blake2bDigester):
    """Activity ids and fingerprints digested to `bits` bits: almost every pair collides. Only
    pack_texts (the digests of ids and fingerprints) is narrowed; of_text, which replay uses for
    event ids and format 2 for subjects, keeps its 64 bits."""

    def __init__(self, bits):
        super().__init__(b"k" * 32)
        self.bits = bits

    def pack_texts(self, texts):
        wide = array("q")
        wide.frombytes(super().pack_texts(texts))
        return array("q", (1 + (value & ((1 << self.bits) - 1)) for value in wide)).tobytes()


def report_text(result):
    """The --json report without its "stats" (run times and memory, which differ between any two runs)."""
    document = bundle_report_json(result)
    del document["stats"]
    return json.dumps(document, ensure_ascii=False, indent=1)


@pytest.fixture
def run(tmp_path):
    def verify(registry, **options):
        bundle = registry.write(tmp_path / f"run{len(list(tmp_path.iterdir()))}")
        return verify_bundle(bundle.path, bundle.trust_object(), **options)

    return verify


def plant_format_1(world):
    """Batches whose records repeat in every way the spec counts, and records that do not."""
    add_batch(world, "u-01", records("u-01", 40))
    add_batch(world, "u-02", records("u-02", 30, fingerprints=[fingerprint_of(f"f2-{n}") for n in range(29)] + [fingerprint_of("u-01-7")]))
    add_batch(world, "u-03", records("u-03", 20), root="0" * 64)  # BATCH: its ids and fingerprints are not registered
    add_batch(world, "u-04", records("u-03", 20))  # the same records again: valid
    add_batch(world, "u-05", [*records("u-05", 9), *records("u-01", 1, fingerprints=[fingerprint_of("new")])])  # DUPLICATE_ID
    add_batch(world, "u-06", records("u-06", 25, fingerprints=[fingerprint_of(f"s-{n % 24}") for n in range(25)]))  # twice in the file
    add_batch(world, "u-07", records("u-07", 50))


def test_forced_collisions_are_dropped_and_real_repeats_kept_format_1(world, run):
    plant_format_1(world)
    wide = run(world)
    assert [finding.code for finding in wide.violations.listed] == ["DUPLICATE_ACTIVITY", "BATCH", "DUPLICATE_ID", "DUPLICATE_ACTIVITY"]
    for bits in (1, 3, 8):
        narrow = run(world, digester=FewBits(bits))
        assert report_text(narrow) == report_text(wide)
        assert narrow.stats["uniqueness_repeats_confirmed"] == wide.stats["uniqueness_repeats_confirmed"] == 43
        assert narrow.stats["uniqueness_digests_hit"] > 0 and narrow.stats["passes"] == wide.stats["passes"] == 2


def test_forced_collisions_alone_report_nothing(world, run):
    add_batch(world, "u-01", records("u-01", 300))
    add_batch(world, "u-02", records("u-02", 300))
    result = run(world, digester=FewBits(4))
    assert result.valid and result.stats["passes"] == 1 and result.stats["uniqueness_repeats_confirmed"] == 0
    assert result.stats["uniqueness_digests_hit"] == 2 * 16  # every 4-bit digest of both kinds, all collisions


def test_a_repeat_after_a_collision_in_the_same_file_is_the_one_reported(world, run):
    """The first digest hit of the file is a collision; the real repeat is further down."""
    batch = records("u-01", 60, fingerprints=[fingerprint_of(f"c-{n}") for n in range(59)] + [fingerprint_of("c-3")])
    seq = add_batch(world, "u-01", batch)
    wide, narrow = run(world), run(world, digester=FewBits(2))
    assert [(finding.code, finding.seq) for finding in narrow.violations.listed] == [("DUPLICATE_ACTIVITY", seq)]
    assert "line 60:" in narrow.violations.listed[0].message
    assert report_text(narrow) == report_text(wide)


JULY = ("2026-07-01", "2026-07-31")
BUS = "XG-GT-BUS"


def bus(r, batch_id, batch_records, **overrides):
    return r.batch(batch_id, "xiaogan-platform", r.keys["Xiaogan city platform"], BUS, records=batch_records, period=JULY, **overrides)


def bus_records(prefix, day, count, fingerprints=None, ids=None):
    return [
        record_v2((ids or {}).get(n, f"{prefix}-{n}"), subject_of(f"{prefix}-{day}-{n}"), day, {"fare": "adult"}, 212, (fingerprints or {}).get(n))
        for n in range(count)
    ]


def test_forced_collisions_are_dropped_and_real_repeats_kept_format_2(run):
    r = rekeyed_vector()
    bus(r, "v-01", bus_records("v-01", "2026-07-03", 40))
    bus(r, "v-02", bus_records("v-02", "2026-07-04", 30, fingerprints={29: fingerprint_of("v-01-5")}))  # DUPLICATE_ACTIVITY
    bus(r, "v-03", bus_records("v-03", "2026-07-05", 20), count=3)  # BATCH
    bus(r, "v-04", bus_records("v-03", "2026-07-05", 20))  # valid: v-03 registered nothing
    bus(r, "v-05", bus_records("v-05", "2026-07-06", 10, ids={9: "v-01-2"}))  # DUPLICATE_ID
    wide = run(r)
    assert [finding.code for finding in wide.violations.listed] == ["DUPLICATE_ACTIVITY", "BATCH", "DUPLICATE_ID"]
    for bits in (1, 4):
        assert report_text(run(r, digester=FewBits(bits))) == report_text(wide)


def test_the_judge_follows_acceptance_in_log_order():
    groups = {("fingerprint", "x"): {("a", 1), ("b", 2), ("c", 1)}}
    judge = RepeatJudge(groups)
    judge.begin("a")
    judge.observe_chunk(1, 5, [])
    assert judge.first_repeats == {"activity_id": None, "fingerprint": None}
    judge.end(False)  # a rejected batch registers nothing
    judge.begin("b")
    judge.observe_chunk(1, 5, [2])  # line 2 malformed: it has no fingerprint
    assert judge.first_repeats["fingerprint"] is None
    judge.end(True)
    judge.begin("b")
    judge.observe_chunk(1, 5, [])
    judge.end(True)
    judge.begin("c")
    judge.observe_chunk(1, 5, [])
    assert judge.first_repeats["fingerprint"] == 1


@pytest.mark.parametrize(("text", "size"), [("512M", 512 << 20), ("1G", 1 << 30), ("1.5g", 3 << 29), ("64KiB", 64 << 10), ("1000", 1000)])
def test_sizes(text, size):
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "1X", "-1G", "G"])
def test_not_sizes(text):
    with pytest.raises(ValueError):
        parse_size(text)


# -- bounded memory: the same report whether the tables stay in memory or spill -------------------


def plant_across_partitions(world):
    """About 6,000 records in four batches, over several chunks, with real repeats of both kinds
    within a file and across batches (their digests fall in whatever partitions they fall in)."""
    add_batch(world, "p-01", records("p-01", 2500))
    add_batch(world, "p-02", records("p-02", 1500, fingerprints=[fingerprint_of(f"p2-{n}") for n in range(1499)] + [fingerprint_of("p-01-2222")]))
    add_batch(world, "p-03", [*records("p-03", 1200), *records("p-01", 1, fingerprints=[fingerprint_of("p3-new")])])
    add_batch(world, "p-04", records("p-04", 2100, fingerprints=[fingerprint_of(f"p4-{n % 2099}") for n in range(2100)]))
    add_batch(world, "p-05", records("p-05", 700))


def test_spilled_tables_give_the_same_report(world, run, tmp_path):
    plant_across_partitions(world)
    in_memory = run(world, jobs=1)
    assert [finding.code for finding in in_memory.violations.listed] == ["DUPLICATE_ACTIVITY", "DUPLICATE_ID", "DUPLICATE_ACTIVITY"]
    # The workers split the digests by partition whether or not they spill: none is read from disk.
    assert in_memory.stats["uniqueness_spill_bytes_peak"] == 0 and in_memory.stats["uniqueness_partitions"] == PARTITIONS
    assert in_memory.stats["uniqueness_partitions_spilled"] == 0
    spill_dir = tmp_path / "spill"
    spill_dir.mkdir()
    for jobs in (1, 2):
        spilled = run(world, jobs=jobs, min_parallel_bytes=0, memory_limit=16 << 10, spill_dir=str(spill_dir))
        assert report_text(spilled) == report_text(in_memory)
        assert spilled.stats["uniqueness_partitions"] >= 8 and spilled.stats["uniqueness_spill_bytes_peak"] > 0
        assert spilled.stats["uniqueness_partitions_spilled"] >= 2 * PARTITIONS
        assert spilled.stats["workers"] == jobs - 1
        assert list(spill_dir.iterdir()) == []  # removed after the run
    narrow = run(world, jobs=1, memory_limit=16 << 10, digester=FewBits(6))
    assert report_text(narrow) == report_text(in_memory)


def test_the_command_line_spills_under_memory_limit(world, tmp_path, puhui_verify):
    plant_across_partitions(world)
    bundle = world.write(tmp_path / "bundle")
    reports = []
    for options in ([], ["--memory-limit", "64K", "--spill-dir", tmp_path]):
        done = puhui_verify("bundle", bundle.path, "--trust", bundle.trust, "--json", "--jobs", "1", *options)
        assert done.returncode == 1, done.stderr
        document = json.loads(done.stdout)
        reports.append((document.pop("stats"), json.dumps(document)))
        if options:
            assert "spilled" in done.stderr and document["violations"]
    (memory_stats, memory_report), (spilled_stats, spilled_report) = reports
    assert spilled_report == memory_report
    assert memory_stats["uniqueness_spill_bytes_peak"] == 0 < spilled_stats["uniqueness_spill_bytes_peak"]


def test_a_memory_limit_that_is_not_a_size_is_a_usage_error(world, tmp_path, puhui_verify):
    bundle = world.write(tmp_path / "bundle")
    for size in ("lots", "1K"):
        done = puhui_verify("bundle", bundle.path, "--trust", bundle.trust, "--memory-limit", size)
        assert done.returncode == 2 and "--memory-limit" in done.stderr


# -- on a Dask cluster: the same report as a local run -------------------------------------------


@pytest.fixture(scope="module")
def dask_cluster():
    pytest.importorskip("distributed")
    with local_dask_cluster(2) as cluster:
        yield cluster


def test_a_dask_cluster_gives_the_report_of_a_local_run(world, run, dask_cluster, tmp_path, monkeypatch):
    from verifier import file_ranges

    plant_across_partitions(world)
    local = run(world, jobs=1)
    on_dask = run(world, dask_scheduler=dask_cluster.scheduler_address)
    assert report_text(on_dask) == report_text(local)
    # Ranges of about 20 records: most own no chunk, and a worker reads far past its range's end.
    monkeypatch.setattr(file_ranges, "RANGE_BYTES", 4096)
    assert report_text(run(world, dask_scheduler=dask_cluster.scheduler_address)) == report_text(local)
    assert on_dask.stats["workers"] == 2 and on_dask.stats["jobs_done_in_main"] == 0
    assert len(on_dask.stats["peak_rss_workers_kib"]) == 2
    spilled = run(world, dask_scheduler=dask_cluster.scheduler_address, memory_limit=16 << 10, spill_dir=str(tmp_path))
    assert report_text(spilled) == report_text(local) and spilled.stats["uniqueness_partitions"] > 1


def test_a_format_2_log_on_dask(run, dask_cluster):
    r = rekeyed_vector()
    bus(r, "v-01", bus_records("v-01", "2026-07-03", 40))
    bus(r, "v-02", bus_records("v-02", "2026-07-04", 30, fingerprints={29: fingerprint_of("v-01-5")}))
    assert report_text(run(r, dask_scheduler=dask_cluster.scheduler_address)) == report_text(run(r, jobs=1))


def test_workers_share_the_string_hash_only_when_seeded_alike(monkeypatch):
    from verifier.digests import Blake2bDigester, StringHashDigester, digester_for_workers, string_hash_check

    here = string_hash_check()
    monkeypatch.setenv("PYTHONHASHSEED", "12345")
    assert isinstance(digester_for_workers([here, here]), StringHashDigester)
    assert isinstance(digester_for_workers([here, here + 1]), Blake2bDigester)  # one worker started otherwise
    assert isinstance(digester_for_workers([]), Blake2bDigester)
    for seed in ("0", "6640", "random", "", "4294967296", "-5", "seed"):  # no key, Dask's known seed, no seed, or none Python takes
        monkeypatch.setenv("PYTHONHASHSEED", seed)
        assert isinstance(digester_for_workers([here]), Blake2bDigester), seed
    monkeypatch.delenv("PYTHONHASHSEED")
    assert isinstance(digester_for_workers([here]), Blake2bDigester)


def test_workers_started_with_the_verifier_s_seed_use_the_string_hash(world, tmp_path, puhui_verify, dask_cluster, monkeypatch):
    """The auditor starts the workers and puhui-verify with one PYTHONHASHSEED: the string hash on
    the cluster, the report of a local run. Workers started without it (the module's cluster): BLAKE2b, said."""
    pytest.importorskip("distributed")
    import dask
    plant_across_partitions(world)
    bundle = world.write(tmp_path / "bundle")
    local = puhui_verify("bundle", bundle.path, "--trust", bundle.trust, "--json", "--jobs", "1")
    # puhui_verify's process inherits it; Dask's nannies give their workers 6640 unless told this way.
    monkeypatch.setenv("PYTHONHASHSEED", "3141592653")
    with dask.config.set({"distributed.nanny.pre-spawn-environ.PYTHONHASHSEED": "3141592653"}), local_dask_cluster(2) as seeded:
        on_seeded = puhui_verify("bundle", bundle.path, "--trust", bundle.trust, "--json", "--dask", seeded.scheduler_address)
    on_unseeded = puhui_verify("bundle", bundle.path, "--trust", bundle.trust, "--json", "--dask", dask_cluster.scheduler_address)
    reports = []
    for done in (local, on_seeded, on_unseeded):
        assert done.returncode == 1, done.stderr  # plant_across_partitions plants repeats
        document = json.loads(done.stdout)
        reports.append((document.pop("stats"), json.dumps(document)))
    (_, local_report), (seeded_stats, seeded_report), (unseeded_stats, unseeded_report) = reports
    assert seeded_report == local_report == unseeded_report
    assert seeded_stats["digests"] == "string hash" and "BLAKE2b" not in on_seeded.stderr
    assert unseeded_stats["digests"] == "BLAKE2b" and "PRE_SPAWN_ENVIRON=" in on_unseeded.stderr
    assert "workers do not all share" in on_unseeded.stderr  # the verifier had a seed: the workers are the cause
    monkeypatch.setenv("PYTHONHASHSEED", "6640")  # Dask's public seed: the verifier is the cause
    without_seed = puhui_verify("bundle", bundle.path, "--trust", bundle.trust, "--json", "--dask", dask_cluster.scheduler_address)
    assert json.loads(without_seed.stdout)["stats"]["digests"] == "BLAKE2b"
    assert "PYTHONHASHSEED is not set to a seed drawn for the run" in without_seed.stderr


def test_a_worker_that_joins_with_another_secret_stops_the_run_as_an_input_error():
    """A worker started later without the run's seed refuses the string-hash digester; the run
    stops with exit 2 and says what to do, not as an internal error."""
    pytest.importorskip("distributed")
    from verifier.dask_runner import DaskRunner
    from verifier.digests import SecretNotShared

    class Refused:
        def result(self):
            raise SecretNotShared("a worker process does not share the main process's string-hash secret")

    runner = object.__new__(DaskRunner)
    runner._futures = {7: Refused()}
    with pytest.raises(InputError, match="start every worker with the PYTHONHASHSEED puhui-verify was started with"):
        runner.result(7)


def test_an_unreachable_scheduler_is_an_input_error():
    pytest.importorskip("distributed")
    from verifier.dask_runner import DaskRunner

    with pytest.raises(InputError, match="cannot reach the Dask scheduler"):
        DaskRunner("tcp://127.0.0.1:9", connect_timeout_s=1)
