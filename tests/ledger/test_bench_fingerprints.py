"""bench/bench_fingerprints.py runs end to end on a small index (a smoke test, not a measurement):
its probes find exactly the rows the fill stored, and the report holds every size it promised."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.postgresql
@pytest.mark.parametrize("variant, options", [
    ("btree", ["--uniqueness", "btree"]), ("hash", ["--uniqueness", "hash"]),
    ("partitioned7000", ["--layout", "partitioned", "--partition-rows", "7000"]),
    ("partitioned7000-deferred", ["--layout", "partitioned", "--partition-rows", "7000", "--deferred-indexes"])])
def test_the_fingerprint_bench_grows_the_index_and_probes_each_size(fresh_postgres_url, tmp_path, variant, options):
    command = [sys.executable, str(REPO / "bench" / "bench_fingerprints.py"), "--rows", "25000", "--chunk", "10000",
               "--probe-records", "400", "--database-url", fresh_postgres_url, "--out", str(tmp_path), *options]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)
    assert [p["rows_stored"] for p in report["probes"]] == [10_000, 25_000]
    assert sum(chunk["rows"] for chunk in report["fill"]) == 25_000
    assert all(p["lookup_records_per_s"] > 0 and p["lookup_new_records_per_s"] > 0 and p["insert_records_per_s"] > 0
               for p in report["probes"])
    assert report["probes"][1]["table_and_indexes_mib"] > report["probes"][0]["table_and_indexes_mib"]
    assert json.loads((tmp_path / f"bench_fingerprints-{variant}-r25000.json").read_text()) == report | {"command": report["command"]}
    if variant.startswith("partitioned"):  # 4 partitions of 7,000 row numbers; every stored row's digests loaded or noted
        assert report["partitions"] == 4 and report["digests_mib"] > 0 and report["digests_loaded_rows_per_s"] > 0
        assert [chunk["rows"] for chunk in report["fill"]] == [7_000, 3_000, 4_000, 7_000, 4_000]
        # Indexes built as each partition opens, or (deferred) as the next one does, over all its rows:
        # the probe at 10,000 wrote 400 rows into partition 1, the one at 25,000 into partition 3.
        expected_closes = [(0, 0), (1, 0), (2, 0), (3, 0)] if variant == "partitioned7000" else [(0, 7_000), (1, 7_400), (2, 7_000)]
        assert [(close["partition"], close["rows"]) for close in report["closes"]] == expected_closes
