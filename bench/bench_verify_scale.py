"""Benchmark of `puhui-verify bundle` at a province's scale: in memory, spilling, and on Dask.

    .venv/bin/python bench/bench_verify_scale.py --records 10000000     # 10^7 (the default)
    .venv/bin/python bench/bench_verify_scale.py --records 100000000    # 10^8: generation takes hours
    .venv/bin/python bench/bench_verify_scale.py --records 100000 --memory-limit 1M --forced-spill-limit 256K   # quick

In one run it
1. generates (once; cached under --out, as bench_verify.py does) a valid format-1 bundle of
   --records activity records in batches of 100,000 and --events events, deterministic from --seed
   (with --log-format 2, bench_verify.py's format-2 bundle, whose raw rate is then measured on its
   own records);
2. measures the raw rate of this machine: parsing and hashing activity records alone (json.loads
   + SHA-256) on --jobs processes;
3. runs `puhui-verify bundle --json` five ways and reports records/s (records over the run's wall
   time) and peak memory (the verifier and its workers, sampled) for each, as a ratio of the raw
   rate: in memory (the default limit), in memory with the Dask run's digest (BLAKE2b: see
   below), spilling under --memory-limit (default 1G, the issue's
   run: at 10^7 records its 200 MB of digests stay under the quarter of it that is kept in memory,
   so it does not spill), spilling under --forced-spill-limit (default 512M: the digests pass its
   quarter and every partition is searched from disk), and with --dask on a LocalCluster of
   --dask-workers single-threaded worker processes started here (started before the run's clock,
   as a local run's worker processes are not: they are forked inside it, in milliseconds).
The Dask run's workers are not forked, so they share the verifier's string-hash secret only as
an auditor would arrange it (verifier/digests.py, docs/scale.md): the verifier and the workers are
started with one PYTHONHASHSEED drawn here for the run (the workers through Dask's
distributed.nanny.pre-spawn-environ). Without it every activity id and fingerprint would be
digested with keyed BLAKE2b (about 0.75 us a record more, a tenth of a local run's work); the run
reports which digest it used. `dask_over_local` is the issue's goal, against the local run as an
auditor runs it; `dask_over_local_same_digest` compares it with a local run forced to BLAKE2b
(PYTHONHASHSEED=0), as the Dask runs before session 11 were.
The cluster's workers are started without Dask's MALLOC_TRIM_THRESHOLD_=65536 (docs/scale.md asks
the same of an auditor's workers): it also fixes glibc's mmap threshold at 128 KiB, so that every
block read and every chunk's text is a fresh mapping whose pages are faulted in again (measured:
a third of a second of system time per worker per 5*10^5 records).
A spilling run reports its limit, whether it spilled, the most disk it used at once, the partitions
searched and how many of those were read from disk, and its peak memory against the limit, both
as the sum of resident sets (RSS, which counts the pages a forked worker shares with the verifier
twice) and of proportional sets (PSS, each shared page split among its sharers).
It prints one JSON document. The issue's goals: the spilling run at least 0.7 of the in-memory
run's rate, with peak memory under the limit; the Dask run at least 0.8 of the local run.
"""

import argparse
import json
import os
import secrets
import subprocess
import sys
import time
from typing import NamedTuple

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "bench"))
sys.path.insert(0, REPO)

from bench_verify import generate_bundle, raw_parse_hash_rates, tree_rss_kib  # noqa: E402

from verifier.digests import MAX_HASH_SEED, PUBLIC_HASH_SEEDS  # noqa: E402
from verifier.uniqueness import parse_size  # noqa: E402

SAMPLE_INTERVAL_S = 0.1
# Dask's setting of the environment its nannies start workers with (None: not set).
WORKER_MALLOC_TRIM = "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_"
WORKER_HASH_SEED = "distributed.nanny.pre-spawn-environ.PYTHONHASHSEED"


def drawn_hash_seed():
    """A PYTHONHASHSEED for the run, drawn as an auditor draws it: 1..2^32-1, not a seed everyone knows."""
    while (seed := 1 + secrets.randbelow(MAX_HASH_SEED)) in PUBLIC_HASH_SEEDS:
        pass
    return str(seed)


def cached_bundle(out, events, records, seed, jobs, log_format=1):
    """The bundle's directory and trust file, generated unless a complete one is cached."""
    bundle = os.path.join(out, f"bundle-{'f2-' if log_format == 2 else ''}e{events}-r{records}-s{seed}")
    trust = os.path.join(bundle, "trust.json")
    if not os.path.exists(os.path.join(bundle, "complete")):
        print(f"generating {bundle} ...", file=sys.stderr)
        started = time.perf_counter()
        generate_bundle(bundle, events, records, seed, jobs, log_format)
        with open(os.path.join(bundle, "complete"), "w") as handle:
            handle.write(f"{time.perf_counter() - started:.0f} s\n")
    return bundle, trust


def tree_pss_kib(pid):
    """Proportional set size of a process and its children (/proc/PID/smaps_rollup), in KiB."""
    total = 0
    for member in (pid, *child_pids(pid)):
        try:
            with open(f"/proc/{member}/smaps_rollup") as handle:
                total += sum(int(line.split()[1]) for line in handle if line.startswith("Pss:"))
        except OSError:
            pass
    return total


def child_pids(pid):
    children = []
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/stat") as handle:
                if entry.isdigit() and int(handle.read().rsplit(")", 1)[1].split()[1]) == pid:
                    children.append(int(entry))
        except OSError:
            pass
    return children


class Run(NamedTuple):
    report: dict
    wall_s: float
    peak_rss_kib: int  # the most the verifier and its children held at once, summed RSS
    peak_pss_kib: object  # the same, summed PSS (None for a Dask run: its workers are not the verifier's)


def run(bundle, trust, options, **extra_environment):
    """One `puhui-verify bundle --json` run (Run), its memory sampled every SAMPLE_INTERVAL_S."""
    command = [sys.executable, "-m", "verifier.cli", "bundle", bundle, "--trust", trust, "--json", *options]
    environment = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""), **extra_environment)
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=environment)
    peak_rss_kib = peak_pss_kib = 0
    while process.poll() is None:
        peak_rss_kib = max(peak_rss_kib, tree_rss_kib(process.pid))
        peak_pss_kib = max(peak_pss_kib, tree_pss_kib(process.pid))
        time.sleep(SAMPLE_INTERVAL_S)
    wall = time.perf_counter() - started
    stdout, stderr = process.communicate()
    if process.returncode != 0:
        sys.exit(f"puhui-verify exited {process.returncode}:\n{stderr.decode()[-2000:]}{stdout.decode()[:2000]}")
    return Run(json.loads(stdout), wall, peak_rss_kib, peak_pss_kib)


def summary(name, done, records, raw_rate, limit_bytes=None):
    stats = done.report["stats"]
    rate = records / done.wall_s
    result = {
        "run": name,
        "records_per_s": round(rate),
        "ratio_to_raw_parse_hash": round(rate / raw_rate, 3),
        "wall_s": round(done.wall_s, 2),
        "peak_memory_mib": round(done.peak_rss_kib / 1024, 1),
        "spill_bytes_peak": stats["uniqueness_spill_bytes_peak"],
        "partitions": stats["uniqueness_partitions"],
        "partitions_spilled": stats["uniqueness_partitions_spilled"],
        "workers": stats["workers"],
        "passes": stats["passes"],
    }
    if "subjects_generations_forgotten" in stats and done.report.get("log_format") == 2:
        result["subjects_generations_forgotten"] = stats["subjects_generations_forgotten"]
        result["subjects_stream_spilled"] = stats["subjects_stream_spilled"]
    if done.peak_pss_kib is not None:
        result["peak_pss_mib"] = round(done.peak_pss_kib / 1024, 1)
    if limit_bytes is not None:
        result["memory_limit_mib"] = round(limit_bytes / 2**20, 1)
        result["spilled"] = stats["uniqueness_spill_bytes_peak"] > 0
        result["peak_rss_under_limit"] = done.peak_rss_kib * 1024 <= limit_bytes
        result["peak_pss_under_limit"] = done.peak_pss_kib * 1024 <= limit_bytes
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=10_000_000)
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--jobs", type=int, default=len(os.sched_getaffinity(0)), help="processes of the local runs, and of the raw rate")
    parser.add_argument("--memory-limit", default="1G", help="the spilling run's --memory-limit (default 1G)")
    parser.add_argument("--forced-spill-limit", default="512M", help="the forced spilling run's --memory-limit (default 512M: spills at 10^7 records)")
    parser.add_argument("--dask-workers", type=int, default=2)
    parser.add_argument("--out", default=os.path.join(REPO, "bench", "out"))
    parser.add_argument("--log-format", type=int, choices=(1, 2), default=1, help="the bundle's log format (default 1; 2: bench_verify.py's format-2 bundle, whose subjects the limit bounds too)")
    arguments = parser.parse_args()
    if not 1_000 <= arguments.records <= 10**9 or not 1_000 <= arguments.events <= 10**8:
        parser.error("--records must be 1000..10^9 and --events 1000..10^8")
    if not 1 <= arguments.dask_workers <= 64 or not 1 <= arguments.jobs <= 1024:
        parser.error("--dask-workers must be 1..64 and --jobs 1..1024")
    limit_bytes = parse_size(arguments.memory_limit)
    forced_limit_bytes = parse_size(arguments.forced_spill_limit)

    bundle, trust = cached_bundle(arguments.out, arguments.events, arguments.records, arguments.seed, arguments.jobs, arguments.log_format)
    first_file = os.path.join(bundle, "activities", sorted(os.listdir(os.path.join(bundle, "activities")))[0])
    _, raw_rate = raw_parse_hash_rates(first_file, arguments.jobs, count=min(400_000, arguments.records))
    jobs = ["--jobs", str(arguments.jobs)]
    spill_dir = os.path.join(arguments.out, "spill")
    os.makedirs(spill_dir, exist_ok=True)
    spilling_options = [*jobs, "--spill-dir", spill_dir, "--memory-limit"]
    results = [
        summary("in_memory", run(bundle, trust, jobs), arguments.records, raw_rate),
        # A fixed string-hash secret makes the verifier digest with BLAKE2b (verifier/digests.py), as on Dask.
        summary("in_memory_blake2b", run(bundle, trust, jobs, PYTHONHASHSEED="0"), arguments.records, raw_rate),
        summary("spilling", run(bundle, trust, [*spilling_options, arguments.memory_limit]), arguments.records, raw_rate, limit_bytes),
        summary("spilling_forced", run(bundle, trust, [*spilling_options, arguments.forced_spill_limit]), arguments.records, raw_rate, forced_limit_bytes),
    ]
    import dask
    from distributed import LocalCluster

    seed = drawn_hash_seed()
    with dask.config.set({WORKER_MALLOC_TRIM: None, WORKER_HASH_SEED: seed}), \
            LocalCluster(n_workers=arguments.dask_workers, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        done = run(bundle, trust, ["--dask", cluster.scheduler_address], PYTHONHASHSEED=seed)
        # The cluster's workers are this process's children, not the verifier's: add their peak RSS
        # (their peak PSS is not known).
        done = done._replace(peak_rss_kib=done.peak_rss_kib + sum(done.report["stats"]["peak_rss_workers_kib"]), peak_pss_kib=None)
        on_dask = summary(f"dask_{arguments.dask_workers}_workers", done, arguments.records, raw_rate)
        on_dask["digests"] = done.report["stats"]["digests"]
        on_dask["workers_malloc_trim_threshold"] = sorted({nanny.pre_spawn_env.get("MALLOC_TRIM_THRESHOLD_") for nanny in cluster.workers.values()}, key=str)
        results.append(on_dask)
    in_memory, in_memory_blake2b, spilling, forced, on_dask = results
    document = {
        "log_format": arguments.log_format,
        "records": arguments.records,
        "events": arguments.events,
        "jobs": arguments.jobs,
        "raw_parse_hash_records_per_s": round(raw_rate),
        "runs": results,
        "spilling_over_in_memory": round(spilling["records_per_s"] / in_memory["records_per_s"], 3),
        "spilling_peak_under_limit": spilling["peak_rss_under_limit"],
        "spilling_forced_over_in_memory": round(forced["records_per_s"] / in_memory["records_per_s"], 3),
        "spilling_forced_peak_under_limit": forced["peak_rss_under_limit"],
        "dask_over_local": round(on_dask["records_per_s"] / in_memory["records_per_s"], 3),
        "dask_over_local_same_digest": round(on_dask["records_per_s"] / in_memory_blake2b["records_per_s"], 3),
    }
    print(json.dumps(document, indent=1))


if __name__ == "__main__":
    main()
