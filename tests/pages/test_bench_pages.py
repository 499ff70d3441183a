"""bench/bench_pages.py runs end to end on a small registry (a smoke test, not a measurement)."""

import json
import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PAGES = ("/", "/issuances", "/retirements", "/surrenders", "/claims", "/claims/{id}", "/accounts/{id}",
         "/methodologies", "/methodologies/{id}", "/serials/{n}", "/receipts/{seq}")


def test_the_pages_bench_measures_every_page_against_the_status(tmp_path):
    command = [sys.executable, os.path.join(REPO, "bench", "bench_pages.py"), "--events", "2000", "--requests", "3",
               "--out", str(tmp_path)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=dict(os.environ, PYTHONPATH=REPO))
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["events"] == 2000 and report["rejected_when_built"] == {}
    assert set(PAGES) <= set(report["pages"]) and "/v1/status" in report["pages"]
    # a registry this small has no claim yet: its claim page is the 404 page, every other answer a 200
    assert set(report["failures"]) <= {"/claims/{id}"}
    for page in report["pages"].values():
        assert page["samples"] == 3 or page["samples"] == 3 * (len(report["pages"]) - 1)
        assert page["p50_ms"] > 0 and page["p50_ratio"] > 0
    assert os.path.exists(os.path.join(str(tmp_path), "registry-e2000-s1", "samples.json"))  # cached for the next run
