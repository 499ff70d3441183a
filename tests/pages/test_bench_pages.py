"""bench/bench_pages.py runs end to end on small registries of both formats (a smoke test, not a
measurement); format 2's build gives /me the pseudonyms and openings of real citizens' rides."""

import json
import os
import subprocess
import sys

from ledger.queries import Queries
from ledger.store import Store
from quantify.account import opening_problem
from service.registry_dir import RegistryDir

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PAGES = ("/", "/issuances", "/retirements", "/surrenders", "/claims", "/claims/{id}", "/accounts/{id}",
         "/methodologies", "/methodologies/{id}", "/serials/{n}", "/receipts/{seq}")
FORMAT_2_PAGES = ("/holds", "/holds?after=N", "/holds?account=A", "/accounts/{held}", "/me", "POST /me pseudonyms",
                  "POST /me opening")


def run_bench(tmp_path, *options):
    command = [sys.executable, os.path.join(REPO, "bench", "bench_pages.py"), "--events", "2000", "--requests", "3",
               "--out", str(tmp_path), *options]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=dict(os.environ, PYTHONPATH=REPO))
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["events"] == 2000 and report["rejected_when_built"] == {}
    for page in report["pages"].values():
        assert page["samples"] == 3 or page["samples"] == 3 * (len(report["pages"]) - 1)
        assert page["p50_ms"] > 0 and page["p50_ratio"] > 0
    return report


def test_the_pages_bench_measures_every_page_against_the_status(tmp_path):
    report = run_bench(tmp_path, "--log-format", "1")
    assert set(PAGES) <= set(report["pages"]) and "/v1/status" in report["pages"]
    assert not set(FORMAT_2_PAGES) & set(report["pages"])
    # a registry this small has no claim yet: its claim page is the 404 page, every other answer a 200
    assert set(report["failures"]) <= {"/claims/{id}"}
    assert os.path.exists(os.path.join(str(tmp_path), "registry-f1-e2000-s1", "samples.json"))  # cached for the next run


def test_the_format_2_build_has_holds_and_citizens_whose_records_me_finds(tmp_path):
    report = run_bench(tmp_path, "--group", "100")  # format 2 is the default; small groups: a year of months
    assert set(PAGES + FORMAT_2_PAGES) <= set(report["pages"]) and report["log_format"] == 2
    assert set(report["failures"]) <= {"/claims/{id}"} and report["rides"] > 0
    directory = tmp_path / "registry-f2-e2000-s1"
    samples = json.loads((directory / "samples.json").read_text())
    assert samples["held_accounts"] and samples["rides"]
    warm = report["warm_up"]["POST /me opening"]
    assert warm["samples"] == len(samples["rides"]) and warm["p99_ms"] <= warm["max_ms"]  # every batch's proofs warm
    assert warm["over_50_ms"] == len(warm["over_50_ms_at"])
    store = Store.connect(RegistryDir(directory).database_url())
    try:
        queries = Queries(store)
        found = [len(queries.subjects_records(month, limit=100)) for month in samples["citizen_months"]]
        # one asking in five is of a person without rides; most citizens ride in the month they ask for
        assert not any(found[::5]) and sum(map(bool, found)) > len(found) // 2
        for ride in samples["rides"]:
            record = json.loads(queries.activity_record(ride["activity_id"]).record)
            assert opening_problem(record, ride["opening"].encode()) is None
        assert {c.type for c in queries.eligibility_history(samples["methodologies"][0])} >= {"methodology.register"}
        assert queries.holds_register(held=True, after=-1, limit=10).items
    finally:
        store.close()
