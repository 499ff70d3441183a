"""bench/bench_verify.py's format-2 bundle is one `puhui-verify` finds valid, and its records are
re-quantifiable: one gram more in one record is QUANTIFICATION (a smoke test, not a measurement)."""

import json
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "bench"))

import bench_verify  # noqa: E402

EVENTS, RECORDS = 1_000, 3_000


def verify(bundle):
    command = [sys.executable, "-m", "verifier.cli", "bundle", str(bundle), "--trust", str(bundle / "trust.json"), "--json", "--require-activities"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=REPO, env=dict(os.environ, PYTHONPATH=REPO))
    assert done.returncode in (0, 1), done.stderr
    return json.loads(done.stdout)


def test_the_format_2_bundle_is_valid(tmp_path):
    bench_verify.generate_bundle(str(tmp_path), EVENTS, RECORDS, 1, 2, log_format=2)
    report = verify(tmp_path)
    assert report["log_format"] == 2 and report["valid"], report["violations"][:3]
    assert report["stats"]["activity_records"] == RECORDS and report["warnings"] == []
    with open(tmp_path / "activities" / "b00000.jsonl") as handle:
        records = [json.loads(line) for line in handle]
    # The daily cap is reached by some people on some days: re-quantification is exercised.
    assert any(record["reduction_g"] < record["inputs"]["distance_m"] * 784 // 10_000 for record in records)
    assert set(records[0]) == {"activity_id", "fingerprint", "inputs", "occurred_on", "private_sha256", "reduction_g", "subject"}


@pytest.mark.parametrize("grams", [1, -1])
def test_one_gram_more_or_less_in_one_record_is_quantification(tmp_path, monkeypatch, grams):
    """The record is changed before the batch's count, total and root are computed and the log is
    signed, so that the bundle is consistent except for that record's grams."""
    day_credits = bench_verify.day_credits

    def one_gram_off(seed, batch_id, day, *rest):
        credits = day_credits(seed, batch_id, day, *rest)
        if batch_id == "b00000" and day.endswith("-02"):
            credits[5] = credits[5]._replace(reduction_g=credits[5].reduction_g + grams)
        return credits

    monkeypatch.setattr(bench_verify, "day_credits", one_gram_off)  # forked generator processes inherit it
    bench_verify.generate_bundle(str(tmp_path), EVENTS, RECORDS, 1, 2, log_format=2)
    report = verify(tmp_path)
    first = report["violations"][0]
    assert first["code"] == "QUANTIFICATION" and "activities/b00000.jsonl" in first["message"], report["violations"][:3]
    line = RECORDS // bench_verify.DAYS_PER_BATCH + 6  # the sixth record of the second day
    assert f"line {line}:" in first["message"]


def test_format_1_is_still_generated(tmp_path):
    bench_verify.generate_bundle(str(tmp_path), EVENTS, RECORDS, 1, 2)
    report = verify(tmp_path)
    assert report["log_format"] == 1 and report["valid"], report["violations"][:3]
