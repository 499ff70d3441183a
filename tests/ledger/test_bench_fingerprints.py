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
@pytest.mark.parametrize("uniqueness", ["btree", "hash"])
def test_the_fingerprint_bench_grows_the_index_and_probes_each_size(fresh_postgres_url, tmp_path, uniqueness):
    command = [sys.executable, str(REPO / "bench" / "bench_fingerprints.py"), "--rows", "25000", "--chunk", "10000",
               "--probe-records", "400", "--database-url", fresh_postgres_url, "--out", str(tmp_path), "--uniqueness", uniqueness]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)
    assert [p["rows_stored"] for p in report["probes"]] == [10_000, 25_000]
    assert sum(chunk["rows"] for chunk in report["fill"]) == 25_000
    assert all(p["lookup_records_per_s"] > 0 and p["insert_records_per_s"] > 0 for p in report["probes"])
    assert report["probes"][1]["table_and_indexes_mib"] > report["probes"][0]["table_and_indexes_mib"]
    assert json.loads((tmp_path / f"bench_fingerprints-{uniqueness}-r25000.json").read_text())["uniqueness"] == uniqueness
