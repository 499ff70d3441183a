"""The command line: every conformance vector of spec/vectors, and bad input as exit 2 with a message."""

import glob
import json
import os
import subprocess
import sys

import pytest
from conftest import ED25519, REPO, VECTORS_V2, format_verifier_key
from spec_paths import VECTORS

from verifier.bundle import verify_bundle
from verifier.reader import MAX_LEAF_BYTES
from verifier.trust import load_trust

CASES = sorted(os.path.basename(os.path.dirname(path)) for path in glob.glob(os.path.join(VECTORS, "*", "expected.json")))
CASES_V2 = sorted(os.path.basename(os.path.dirname(path)) for path in glob.glob(os.path.join(VECTORS_V2, "*", "expected.json")))


def test_all_vectors_are_found():
    assert len(CASES) >= 9


@pytest.mark.parametrize("case", CASES)
def test_vector_through_the_command_line(case, puhui_verify):
    directory = os.path.join(VECTORS, case)
    expected = json.load(open(os.path.join(directory, "expected.json")))
    done = puhui_verify("bundle", os.path.join(directory, "bundle"), "--trust", os.path.join(directory, "trust.json"), "--json")
    report = json.loads(done.stdout)
    found = {violation["code"] for violation in report["violations"]}
    if expected["valid"]:
        assert done.returncode == 0 and report["violations"] == [] and report["valid"], report["violations"]
    else:
        assert done.returncode == 1 and not report["valid"]
        assert found & set(expected["any_of_codes"]), report["violations"]
    for violation in report["violations"]:
        assert set(violation) == {"code", "seq", "message"}
        assert violation["seq"] is None or isinstance(violation["seq"], int)


@pytest.mark.parametrize("case", CASES)
def test_vector_with_worker_processes(case):
    """The parallel path (signatures and records in workers) gives the same findings."""
    directory = os.path.join(VECTORS, case)
    trust = load_trust(os.path.join(directory, "trust.json"))
    inline = verify_bundle(os.path.join(directory, "bundle"), trust, jobs=1)
    parallel = verify_bundle(os.path.join(directory, "bundle"), trust, jobs=2, min_parallel_bytes=0)
    assert parallel.stats["workers"] == 1  # and the main process
    assert parallel.violations.listed == inline.violations.listed
    assert parallel.root == inline.root


def test_human_report(puhui_verify):
    directory = os.path.join(VECTORS, "double-surrender")
    done = puhui_verify("bundle", os.path.join(directory, "bundle"), "--trust", os.path.join(directory, "trust.json"))
    assert done.returncode == 1
    assert "DOUBLE_CLAIM" in done.stdout and "Retired by purpose" in done.stdout and "tonnes" in done.stdout


def test_valid_vector_human_report(puhui_verify):
    directory = os.path.join(VECTORS, "valid")
    done = puhui_verify("bundle", os.path.join(directory, "bundle"), "--trust", os.path.join(directory, "trust.json"), "--jobs", "2")
    assert done.returncode == 0 and "VALID" in done.stdout


def test_a_trust_file_of_another_registry_is_named_as_the_likely_cause_before_the_report(puhui_verify, tmp_path):
    directory = os.path.join(VECTORS, "valid")
    trust = json.load(open(os.path.join(directory, "trust.json")))
    other_root = "2Rb0dPxHk1z/yMKcd7sV0YpnYlCyBBvO2vR7bPjhkCk="  # a key that signed nothing here
    (tmp_path / "other.json").write_text(json.dumps({**trust, "root_keys": [other_root]}))
    done = puhui_verify("bundle", os.path.join(directory, "bundle"), "--trust", tmp_path / "other.json", "--json")
    assert done.returncode == 1 and "KEY_UNKNOWN" in done.stdout
    [note] = done.stderr.splitlines()
    assert "none of the trust file's root keys" in note and "trust file is probably wrong" in note
    right = puhui_verify("bundle", os.path.join(directory, "bundle"), "--trust", os.path.join(directory, "trust.json"))
    assert right.returncode == 0 and "note:" not in right.stderr

def test_with_another_registrys_trust_file_the_report_names_the_logs_own_origin(world, tmp_path, puhui_verify):
    """Trial 6, finding 16: the header named the trust file's origin as the log's, under a note
    saying the log is another one."""
    bundle = world.write(tmp_path / "ours")
    other = "other.example/puhui"
    (tmp_path / "other.json").write_text(json.dumps({
        **world.trust_document(), "origin": other, "log_key": format_verifier_key(other, ED25519, world.log_key.public_key)}))
    done = puhui_verify("bundle", bundle.path, "--trust", tmp_path / "other.json")
    assert done.returncode == 1 and world.origin in done.stderr
    report_text = " ".join(done.stdout.split())  # lines wrapped at 80 columns
    assert report_text.startswith(f"Puhui log {world.origin} (its genesis's origin; the trust file's is {other})"), report_text
    report = json.loads(puhui_verify("bundle", bundle.path, "--trust", tmp_path / "other.json", "--json").stdout)
    assert (report["origin"], report["log_origin"]) == (other, world.origin)
    right = puhui_verify("bundle", bundle.path, "--trust", bundle.trust)
    assert " ".join(right.stdout.split()).startswith(f"Puhui log {world.origin} (format 1)"), right.stdout


@pytest.mark.parametrize("as_json", [False, True], ids=["human", "json"])
@pytest.mark.parametrize("case, verdict", [("valid", 0), ("double-surrender", 1)])
def test_a_reader_that_stops_early_leaves_the_verdict_as_the_exit_status(case, verdict, as_json):
    """Trial 6, finding 4: `puhui-verify bundle ... | head -1` exited 1 ("a violation") on a valid
    bundle, from rich's broken-pipe handling. A real pipe, its reading end closed before the
    verifier writes a byte: every write fails, and the status is still the verdict."""
    directory = os.path.join(VECTORS, case)
    command = [sys.executable, "-m", "verifier.cli", "bundle", os.path.join(directory, "bundle"),
               "--trust", os.path.join(directory, "trust.json"), *(["--json"] if as_json else [])]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO)
    process.stdout.close()  # the reader goes away at once
    stderr = process.stderr.read().decode()
    assert process.wait(timeout=120) == verdict, stderr
    assert "Traceback" not in stderr and "Exception ignored" not in stderr, stderr


def test_a_reader_that_stops_after_a_line_leaves_the_verdict_as_the_exit_status(tmp_path):
    """The same through a shell pipeline, as an auditor's script writes it (pipefail: the
    verifier's status, not head's)."""
    directory = os.path.join(VECTORS, "valid")
    command = (f"{sys.executable} -m verifier.cli bundle {directory}/bundle --trust {directory}/trust.json "
               "| head -1")
    done = subprocess.run(["bash", "-o", "pipefail", "-c", command], capture_output=True, text=True, cwd=REPO,
                          env={**os.environ, "COLUMNS": "80"}, timeout=120)
    assert done.returncode == 0 and done.stdout.startswith("Puhui log"), done.stdout + done.stderr


# -- bad input: exit 2, one clear line, no traceback ------------------------------------------------


def assert_cannot_run(done, *words):
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    assert done.stdout == ""
    for word in words:
        assert word in done.stderr, done.stderr


@pytest.fixture
def good(world, tmp_path):
    return world.write(tmp_path / "good")


def test_missing_bundle(good, puhui_verify, tmp_path):
    assert_cannot_run(puhui_verify("bundle", tmp_path / "nope", "--trust", good.trust), "does not exist")


def test_bundle_is_a_file(good, puhui_verify):
    assert_cannot_run(puhui_verify("bundle", good.trust, "--trust", good.trust), "not a directory")


def test_bundle_without_log(good, puhui_verify):
    os.remove(os.path.join(good.path, "log.jsonl"))
    assert_cannot_run(puhui_verify("bundle", good.path, "--trust", good.trust), "log.jsonl")


def test_missing_trust_file(good, puhui_verify, tmp_path):
    assert_cannot_run(puhui_verify("bundle", good.path, "--trust", tmp_path / "none.json"), "trust file", "does not exist")


@pytest.mark.parametrize(
    "change, words",
    [
        (lambda t: t.update(log_key=t["log_key"][:-4] + "AAAA"), ("log_key",)),
        (lambda t: t.update(log_key="nonsense"), ("log_key",)),
        (lambda t: t.update(root_keys=["AAAA"]), ("root_keys",)),
        (lambda t: t.update(root_keys=[]), ("root_keys",)),
        (lambda t: t.update(witness_quorum=1), ("witness_quorum",)),
        (lambda t: t.update(witnesses=["x+00000000+AAAA"], witness_quorum=0), ("witnesses",)),
        (lambda t: t.update(witness_quorom=1), ("unknown",)),
        (lambda t: t.update(origin=""), ("origin",)),
        (lambda t: t.update(log_key=t["log_key"].replace("registry.test", "registry.other")), ("log_key",)),
    ],
)
def test_bad_trust_file(good, puhui_verify, change, words):
    trust = json.load(open(good.trust))
    change(trust)
    with open(good.trust, "w") as handle:
        json.dump(trust, handle)
    assert_cannot_run(puhui_verify("bundle", good.path, "--trust", good.trust), "trust file", *words)


def test_trust_file_not_json(good, puhui_verify):
    with open(good.trust, "w") as handle:
        handle.write("{")
    assert_cannot_run(puhui_verify("bundle", good.path, "--trust", good.trust), "not JSON")


def test_truncated_last_line(good, puhui_verify):
    log = os.path.join(good.path, "log.jsonl")
    data = open(log, "rb").read()
    with open(log, "wb") as handle:
        handle.write(data[:-40])
    assert_cannot_run(puhui_verify("bundle", good.path, "--trust", good.trust), "truncated")


def test_one_gigabyte_line(good, puhui_verify):
    """A sparse 1 GiB log without a newline: refused after reading just past the line limit."""
    log = os.path.join(good.path, "log.jsonl")
    with open(log, "wb") as handle:
        handle.truncate(1 << 30)
    assert_cannot_run(puhui_verify("bundle", good.path, "--trust", good.trust), "longer than the limit", str(MAX_LEAF_BYTES))


def test_huge_activity_record(world, tmp_path, puhui_verify):
    world.batch("wh-09", "wuhan-platform", world.keys["platform"], "HB-GT-METRO")
    bundle = world.write(tmp_path)
    with open(os.path.join(bundle.path, "activities", "wh-09.jsonl"), "wb") as handle:
        handle.truncate(64 << 20)
    assert_cannot_run(puhui_verify("bundle", bundle.path, "--trust", bundle.trust), "activity file", "longer than the limit")


def test_log_is_a_directory(good, puhui_verify):
    log = os.path.join(good.path, "log.jsonl")
    os.remove(log)
    os.mkdir(log)
    assert_cannot_run(puhui_verify("bundle", good.path, "--trust", good.trust), "log.jsonl")


def test_unreadable_log(good, puhui_verify):
    if os.geteuid() == 0:
        pytest.skip("root reads files whatever their mode")
    os.chmod(os.path.join(good.path, "log.jsonl"), 0)
    assert_cannot_run(puhui_verify("bundle", good.path, "--trust", good.trust), "cannot be read")


@pytest.mark.parametrize(
    "args",
    [
        (),
        ("bundle",),
        ("bundle", "x"),
        ("bundle", "x", "--trust", "t", "--jobs", "0"),
        ("bundle", "x", "--trust", "t", "--jobs", "many"),
        ("frobnicate",),
        ("consistency", "a", "b", "--trust", "t"),
    ],
)
def test_usage_errors(puhui_verify, args):
    done = puhui_verify(*args)
    assert done.returncode == 2 and "usage" in done.stderr and "Traceback" not in done.stderr


def test_missing_receipt_file(good, puhui_verify, tmp_path):
    assert_cannot_run(puhui_verify("receipt", tmp_path / "none.json", "--trust", good.trust), "receipt", "does not exist")


def test_all_format_2_vectors_are_found():
    assert len(CASES_V2) >= 6


def vector_report(puhui_verify, directory):
    """(exit status, JSON report) of `bundle --json` on a vector directory."""
    bundle, trust = (os.path.join(directory, name) for name in ("bundle", "trust.json"))
    done = puhui_verify("bundle", bundle, "--trust", trust, "--json")
    return done.returncode, json.loads(done.stdout)


@pytest.mark.parametrize("case", CASES_V2)
def test_format_2_vector_through_the_command_line(case, puhui_verify):
    """Each format-2 vector: its verdict, one of its codes, at exactly its violating seqs."""
    expected = json.load(open(os.path.join(VECTORS_V2, case, "expected.json")))
    status, report = vector_report(puhui_verify, os.path.join(VECTORS_V2, case))
    violations = report["violations"]
    assert (report["format"], report["log_format"], report["valid"]) == ("puhui-verify-report/2", 2, expected["valid"])
    assert status == (0 if expected["valid"] else 1) and sum(report["violation_counts"].values()) == len(violations)
    if not expected["valid"]:
        assert {violation["code"] for violation in violations} & set(expected["any_of_codes"]), violations
        event_seqs = sorted({violation["seq"] for violation in violations if violation["seq"] is not None})
        assert event_seqs == sorted(expected["violating_seqs"]), violations


@pytest.mark.parametrize("case", CASES_V2)
def test_format_2_vector_with_worker_processes(case):
    bundle, trust = os.path.join(VECTORS_V2, case, "bundle"), load_trust(os.path.join(VECTORS_V2, case, "trust.json"))
    inline, parallel = verify_bundle(bundle, trust, jobs=1), verify_bundle(bundle, trust, jobs=2, min_parallel_bytes=0)
    assert (parallel.stats["workers"], parallel.violations.listed, parallel.root) == (1, inline.violations.listed, inline.root)


def test_format_1_vectors_report_log_format_1(puhui_verify):
    status, report = vector_report(puhui_verify, os.path.join(VECTORS, "valid"))
    assert (status, report["format"], report["log_format"], report["valid"]) == (0, "puhui-verify-report/2", 1, True)


@pytest.mark.parametrize("directory", [os.path.join(VECTORS, case) for case in CASES] + [os.path.join(VECTORS_V2, case) for case in CASES_V2])
def test_human_report_fits_80_columns_when_piped(directory, puhui_verify, monkeypatch):
    """The report a person reads from a pipe or a saved file wraps at 80 columns, cutting no cell."""
    from rich.cells import cell_len

    monkeypatch.delenv("COLUMNS", raising=False)
    done = puhui_verify("bundle", os.path.join(directory, "bundle"), "--trust", os.path.join(directory, "trust.json"))
    assert done.returncode in (0, 1), done.stderr
    assert "VALID" in done.stdout
    for line in done.stdout.splitlines():
        assert cell_len(line) <= 80, f"{cell_len(line)} columns: {line!r}"
    assert "…" not in done.stdout, done.stdout
