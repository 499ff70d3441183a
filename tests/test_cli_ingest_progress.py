"""`puhui ingest` on a terminal shows a progress bar (records read, records a second, batches
appended); elsewhere it leaves one summary line on stderr at the end (cli.ingest_progress)."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

from cli.ingest_progress import IngestProgress
from cli.main import DEMO_SCHEME_KEYS
from keys import Ed25519Key, save_key
from ledger.units import tonnes
from quantify.ingest import BatchResult, IngestResult

REPO = Path(__file__).resolve().parents[1]
PASSPHRASE = "demo only"
ORIGIN = "registry.hubei.example/puhui"  # the demo's
SUMMARY = re.compile(r"^ingest: (\d+) records read, (\d+) accepted, (\d+) rejected, (\d+) g accepted, "
                     r"(\d+) of (\d+) batches appended, \d+\.\d s$")


def puhui(*args: object, cwd: Path = REPO) -> subprocess.CompletedProcess:
    env = dict(os.environ, PUHUI_KEY_PASSPHRASE=PASSPHRASE, COLUMNS="200")
    result = subprocess.run([sys.executable, "-c", "from cli.main import main; main()", *map(str, args)],
                            capture_output=True, text=True, env=env, cwd=cwd, timeout=300, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr + result.stdout
    return result


def _records(count: int, month: str = "2026-04") -> list[dict]:
    return [{"activity_id": f"progress-{n}", "subject": f"p-progress{n}",
             "occurred_at": f"{month}-{1 + n % 28:02d}T08:00:00.000000Z",
             "inputs": {"distance_m": 1000 + n, "entry_station": "S01", "exit_station": "S02"}} for n in range(count)]


def _result(accepted: int, rejected: int, grams: int) -> IngestResult:
    result = IngestResult("wuhan-platform", "HB-GT-METRO", 1, lines=accepted + rejected)
    result.batches.append(BatchResult("b", Path("b"), {"count": accepted, "total_g": grams}))
    result.reasons["duplicate_activity_id"] = rejected
    return result


def test_on_a_terminal_a_bar_counts_records_and_batches_and_no_summary_line_is_left():
    out = io.StringIO()
    terminal = Console(file=out, force_terminal=True, color_system=None, width=100)
    data = b"".join(json.dumps(r).encode() + b"\n" for r in _records(1000))
    with IngestProgress(terminal, len(data)) as progress:
        assert progress.reader(io.BytesIO(data)).read() == data
        progress.appending(2)
        progress.appended(600)
        progress.appended(400)
    progress.summary(_result(1000, 0, 4000), 2)
    shown = out.getvalue()
    assert "reading" in shown and "1,000 records" in shown and "records/s" in shown
    assert "appending batches" in shown
    assert "ingest:" not in shown


def test_elsewhere_nothing_but_one_summary_line_at_the_end():
    out = io.StringIO()
    clock = iter([100.0, 143.25])
    with IngestProgress(Console(file=out, width=80), 10, clock=lambda: next(clock)) as progress:
        assert progress.reader(io.BytesIO(b'{"a": 1}\n')).read() == b'{"a": 1}\n'
        progress.appending(1)
        progress.appended(1)
    assert out.getvalue() == ""
    progress.summary(_result(499_000, 1000, 12_345_678), 1)
    line, = out.getvalue().splitlines()
    assert line == ("ingest: 500000 records read, 499000 accepted, 1000 rejected, 12345678 g accepted, "
                    "1 of 1 batches appended, 43.2 s")


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    """The demo registry, and the Wuhan platform's demo key in a key file beside it."""
    root = tmp_path_factory.mktemp("ingest-progress")
    puhui("demo", root / "demo-registry", "--records-per-batch", "10", "--key-strength", "interactive")
    save_key(root / "wuhan.key", Ed25519Key.from_label(f"puhui-demo/{ORIGIN}/wuhan"), PASSPHRASE.encode(),
             role="platform", label="wuhan", strength="interactive")
    return root


def scheme_keys(demo: Path) -> list[Path | str]:
    """The demo registry is format 2: ingestion takes the scheme's keys the demo made (cli.main DEMO_SCHEME_KEYS)."""
    keys = demo / "demo-registry" / DEMO_SCHEME_KEYS
    return ["--hub-key", keys / "hub.key", "--fingerprint-key", keys / "fingerprint.key"]


@pytest.mark.parametrize("kind", ["jsonl", "csv"])
def test_ingest_without_a_terminal_ends_with_one_summary_line(demo, tmp_path, kind):
    records = _records(60, "2026-04" if kind == "jsonl" else "2026-05")  # acts of their own: not duplicates
    records.append(dict(records[0]))  # the same activity again: rejected
    source = tmp_path / f"metro.{kind}"
    if kind == "jsonl":
        source.write_text("".join(json.dumps(dict(r, activity_id=f"{kind}-{r['activity_id']}")) + "\n"
                                  for r in records))
    else:
        source.write_text("activity_id,subject,occurred_at,distance_m,entry_station,exit_station\n" + "".join(
            f"{kind}-{r['activity_id']},{r['subject']},{r['occurred_at']},{r['inputs']['distance_m']},S01,S02\n"
            for r in records))
    done = puhui("ingest", demo / "demo-registry", source, "--platform", "wuhan-platform", "--methodology",
                 "HB-GT-METRO", "--platform-key", demo / "wuhan.key", "--out", tmp_path / "out", "--run-id", kind,
                 *scheme_keys(demo))
    summary = SUMMARY.match(done.stderr.splitlines()[-1])
    assert summary is not None, done.stderr
    read, accepted, rejected, grams, appended, batches = map(int, summary.groups())
    assert (read, accepted, rejected) == (61, 60, 1) and appended == batches == 1
    assert grams > 0 and f"{accepted} accepted ({tonnes(grams)} t)" in done.stdout
    assert done.stderr.count("\n") == 1  # the summary alone


def test_a_small_ingestion_shows_its_grams_beside_the_tonnes(demo, tmp_path):
    source = tmp_path / "one.jsonl"
    source.write_text(json.dumps(_records(1, "2026-07")[0]) + "\n")  # 1 km by metro: 78 g
    done = puhui("ingest", demo / "demo-registry", source, "--platform", "wuhan-platform", "--methodology",
                 "HB-GT-METRO", "--platform-key", demo / "wuhan.key", "--out", tmp_path / "out", "--run-id", "one",
                 *scheme_keys(demo))
    assert "1 accepted (0.000 t (78 g))" in done.stdout and "1 records, 0.000 t (78 g), appended at seq" in done.stdout
