"""bench/bench_verify_scale.py runs end to end on a small bundle (a smoke test, not a measurement)."""

import json
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_the_scale_bench_reports_its_runs_against_the_raw_rate(tmp_path):
    pytest.importorskip("distributed")
    command = [sys.executable, os.path.join(REPO, "bench", "bench_verify_scale.py"), "--records", "3000", "--events", "1000", "--memory-limit", "64K", "--forced-spill-limit", "64K", "--out", str(tmp_path)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=dict(os.environ, PYTHONPATH=REPO))
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    runs = {run["run"]: run for run in document["runs"]}
    assert set(runs) == {"in_memory", "in_memory_blake2b", "spilling", "spilling_forced", "dask_2_workers"}
    # Dask's work is also measured against a local run with its digest, and its workers are started
    # without Dask's MALLOC_TRIM_THRESHOLD_ (which fixes glibc's mmap threshold: page faults on every read).
    assert 0 < document["dask_over_local_same_digest"] and runs["dask_2_workers"]["workers_malloc_trim_threshold"] == [None]
    # The verifier and the workers are started with one PYTHONHASHSEED, drawn for the run: the string hash on Dask too.
    assert runs["dask_2_workers"]["digests"] == "string hash"
    assert runs["in_memory"]["spill_bytes_peak"] == 0 < runs["spilling"]["spill_bytes_peak"]
    assert runs["spilling"]["partitions"] > 1 and runs["dask_2_workers"]["workers"] == 2
    for name in ("spilling", "spilling_forced"):  # a spilling run says how much it spilled, and its peak against its limit
        assert runs[name]["spilled"] and runs[name]["partitions_spilled"] > 0 and runs[name]["memory_limit_mib"] == 0.1
        assert runs[name]["peak_pss_mib"] > 0 and runs[name]["peak_rss_under_limit"] is False  # 64K: the interpreter alone is more
    assert all(run["records_per_s"] > 0 and 0 < run["ratio_to_raw_parse_hash"] for run in runs.values())
    assert os.path.exists(os.path.join(str(tmp_path), "bundle-e1000-r3000-s1", "complete"))  # cached for the next run


def test_the_scale_bench_runs_a_format_2_bundle(tmp_path):
    pytest.importorskip("distributed")
    command = [sys.executable, os.path.join(REPO, "bench", "bench_verify_scale.py"), "--log-format", "2", "--records", "10000", "--events", "1000", "--memory-limit", "64K", "--forced-spill-limit", "64K", "--out", str(tmp_path)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=dict(os.environ, PYTHONPATH=REPO))
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    runs = {run["run"]: run for run in document["runs"]}
    assert document["log_format"] == 2 and all(run["passes"] == 1 for run in runs.values())  # no subject of the bench comes back
    # One file of 10,000 records is one reading, kept whole: no generation is forgotten, but the
    # stream of its subjects passes its sixteenth of the 64K limit.
    assert all(run["subjects_generations_forgotten"] == 0 for run in runs.values())
    assert runs["in_memory"]["subjects_stream_spilled"] == 0 < runs["spilling"]["subjects_stream_spilled"]
    assert os.path.exists(os.path.join(str(tmp_path), "bundle-f2-e1000-r10000-s1", "complete"))
