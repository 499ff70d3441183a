"""The quantification commands of `puhui`, run as a person would (real processes, passphrase from the
environment), against a registry directory: register the library, admit a methodology, ingest two
platforms' files, read a personal account and its proof, quantify one act, account a footprint."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from keys import Ed25519Key, save_key
from ledger import merkle
from ledger.registry import Registry
from quant_helpers import EXPO, EXPO_G, LIBRARY, jsonl, metro
from service.actors import Actor, Client
from service.registry_dir import RegistryDir

PASSPHRASE = "quantify cli tests"
PUHUI = [sys.executable, "-c", "from cli.main import main; main()"]
DAY = "2026-01-05"


def puhui(*args: str, ok: bool = True, exit_code: int = 1) -> subprocess.CompletedProcess:
    """Run puhui; when not ok, it must fail with exit_code (1: refused, 2: could not run) in one line."""
    env = dict(os.environ, PUHUI_KEY_PASSPHRASE=PASSPHRASE, COLUMNS="200")
    result = subprocess.run(PUHUI + [str(a) for a in args], capture_output=True, text=True, env=env,
                            stdin=subprocess.DEVNULL, cwd=Path(__file__).resolve().parents[2], timeout=120)
    assert (result.returncode == 0) == ok, result.stderr + result.stdout
    if not ok:
        assert result.returncode == exit_code and "Traceback" not in result.stderr and result.stderr.count("\n") == 1, result.stderr
    return result


@pytest.fixture(scope="module")
def place(tmp_path_factory) -> Path:
    """A format-1 registry directory with two platforms, each with its key file, and the library
    registered: these commands on a format-1 log (a pseudonym's account with --proof, records without
    hub or fingerprint keys, eligibility without reviews); tests/test_cli_format2.py runs format 2's."""
    root = tmp_path_factory.mktemp("quant-cli")
    directory = root / "registry"
    registry = RegistryDir(directory).init("cli.hubei.example/puhui", strength="interactive",
                                           passphrase=PASSPHRASE.encode(), log_format=1)
    admin = Actor(RegistryDir(directory).keyring.load("admin", PASSPHRASE.encode()), "admin")
    client = Client(registry)
    for name in ("wuhan", "grid"):
        key = Ed25519Key.from_label(f"puhui-test/cli-{name}")
        save_key(root / f"{name}.key", key, PASSPHRASE.encode(), role="platform", label=name, strength="interactive")
        client.register_key(admin, Actor(key, name), ["platform"])
        client.open_account(admin, f"{name}-platform", "platform", f"{name} platform", "420100", [Actor(key, name)])
    registry.close()
    registered = puhui("methodologies", directory, "--register")
    assert registered.stdout.count("registered ") == len(LIBRARY.all())
    return directory


def test_methodologies_registered_from_the_library_and_admitted_one_by_one(place):
    listed = json.loads(puhui("methodologies", place, "--json").stdout)
    assert len(listed) == len(LIBRARY.all())
    assert all(e["logged_seq"] is not None and e["matches_log"] is True for e in listed)
    assert {(e["methodology_id"], e["version"]): e["superseded_by"] for e in listed}[("HB-GT-BUS", 1)] == 2
    assert "HB-GT-METRO" in puhui("methodologies", place).stdout
    refused = puhui("eligibility", place, "HB-RS-RECYCLE", "--on", ok=False)
    assert "illustrative factors (g_per_kg)" in refused.stderr
    assert "offset eligible on" in puhui("eligibility", place, "HB-GT-BUS", "--on").stdout
    assert "offset eligible off" in puhui("eligibility", place, "HB-RS-RECYCLE", "--off").stdout
    eligible = {e["methodology_id"]: e["offset_eligible"] for e in json.loads(puhui("methodologies", place, "--json").stdout)}
    assert eligible["HB-GT-BUS"] is True and eligible["HB-RS-RECYCLE"] is False
    assert "HB-NONE' is not registered" in puhui("eligibility", place, "HB-NONE", "--off", ok=False).stderr
    assert "did you mean HB-RS-RECYCLE" in puhui("eligibility", place, "HB-RS-RECYCL", "--off", ok=False).stderr


def test_ingest_two_platforms_then_the_personal_account_and_a_record_proof(place, tmp_path):
    wuhan_file = tmp_path / "wuhan.jsonl"
    wuhan_file.write_bytes(jsonl([metro("w1", "p-alice", f"{DAY}T01:00:00.000000Z"),
                                  metro("w2", "p-alice", f"{DAY}T03:00:00.000000Z", entry="S02", exit="S05")]))
    wuhan = puhui("ingest", place, wuhan_file, "--platform", "wuhan-platform", "--methodology", "HB-GT-METRO",
                  "--platform-key", place.parent / "wuhan.key", "--out", tmp_path / "out-wuhan", "--run-id", "wh-jan")
    assert "2 accepted (0.002 t)" in wuhan.stdout and "batch wh-jan-2026-01: 2 records, 0.002 t, appended at seq" in wuhan.stdout
    assert "0 rejected, 0 g dropped by daily caps" in wuhan.stdout  # nothing, not a 0.000 t that might be rounded
    assert "the batches' bodies, signed and appended below:" in wuhan.stdout
    grid_file = tmp_path / "grid-export.txt"  # CSV whatever the name, with --csv
    grid_file.write_text("activity_id,subject,occurred_at,distance_m,entry_station,exit_station\n"
                         f"g1,p-alice,{DAY}T01:00:00.000000Z,14800,S01,S09\n"
                         f"g2,p-alice,{DAY}T04:00:00.000000Z,15000,S03,S04\n"
                         f"g3,p-alice,{DAY}T05:00:00.000000Z,15000,S04,S03\n")
    grid = puhui("ingest", place, grid_file, "--csv", "--platform", "grid-platform", "--methodology", "HB-GT-METRO",
                 "--platform-key", place.parent / "grid.key", "--out", tmp_path / "out-grid", "--run-id", "grid-jan")
    assert "1 accepted (0.001 t), 2 rejected" in grid.stdout
    rejections = [json.loads(line) for line in (tmp_path / "out-grid" / "rejections.jsonl").read_text().splitlines()]
    assert [(r["line"], r["reason"]) for r in rejections] == [
        (2, "duplicate_fingerprint"), (3, "daily_cap_clipped"), (4, "over_daily_cap")]
    assert "the registry" in rejections[0]["detail"] and rejections[1]["accepted_g"] == 648
    assert (tmp_path / "out-grid" / "batches.jsonl").is_file()
    repeated = puhui("ingest", place, wuhan_file, "--platform", "wuhan-platform", "--methodology", "HB-GT-METRO",
                     "--platform-key", place.parent / "wuhan.key", "--out", tmp_path / "out-repeated")
    assert "0 accepted (0 g), 2 rejected" in repeated.stdout and "appended below" not in repeated.stdout
    assert "no record was accepted, so there is no batch to append" in repeated.stdout
    again = puhui("ingest", place, wuhan_file, "--platform", "wuhan-platform", "--methodology", "HB-GT-METRO",
                  "--platform-key", place.parent / "wuhan.key", "--out", tmp_path / "out-grid", ok=False, exit_code=2)
    assert "not an empty directory" in again.stderr
    refused = puhui("ingest", place, wuhan_file, "--platform", "nowhere-platform", "--methodology", "HB-GT-METRO",
                    "--platform-key", place.parent / "wuhan.key", "--out", tmp_path / "out-nowhere", ok=False)
    assert "account nowhere-platform does not exist" in refused.stderr
    assert not (tmp_path / "out-nowhere").exists()  # refused before a record was read
    puhui("accounts", "open", "steel-co", "--kind", "enterprise", "--name", "Steel Co", "--region", "420100",
          "--controller", place.parent / "wuhan.key", "--dir", place)
    not_a_platform = puhui("ingest", place, wuhan_file, "--platform", "steel-co", "--methodology", "HB-GT-METRO",
                           "--platform-key", place.parent / "wuhan.key", "--out", tmp_path / "out-steel", ok=False)
    assert "account steel-co is of kind enterprise, not platform" in not_a_platform.stderr

    account = json.loads(puhui("account", place, "p-alice", "--json", "--proof", "w2").stdout)
    assert account["total_g"] == 3000
    assert {r["platform"]: r["reduction_g"] for r in account["tables"]["by_platform"]} == {
        "grid-platform": 648, "wuhan-platform": 2352}
    proof = account["proof"]
    record = json.dumps(proof["record"], separators=(",", ":"), sort_keys=True).encode()
    inclusion = proof["inclusion"]
    assert merkle.verify_inclusion(merkle.leaf_hash(record), inclusion["leaf_index"], inclusion["tree_size"],
                                   [bytes.fromhex(h) for h in inclusion["hashes"]], bytes.fromhex(proof["root"]))
    registry = Registry.open(RegistryDir(place).database_url())
    leaf = registry.leaf(proof["batch_seq"])
    registry.close()
    assert leaf.type == "activity.batch" and leaf.body["batch_id"] == "wh-jan-2026-01" and leaf.body["root"] == proof["root"]
    shown = puhui("account", place, "p-alice", "--proof", "w2").stdout
    assert "0.003" in shown and "batch at seq" in shown and "reduction_g" not in shown  # tonnes for people
    # The summary's exact grams beside its rounded tonnes: its rows add up (3000 = 0 issued + 3000 not yet).
    summary = {tuple(line.replace("│", " ").split()) for line in shown.splitlines()}
    assert {("total", "3000", "0.003"), ("issued", "0", "0.000"), ("not", "yet", "issued", "3000", "0.003")} <= summary
    assert "[by_platform]" in puhui("account", place, "p-alice", "--csv").stdout
    assert "no records for this pseudonym" not in shown
    assert "no records for this pseudonym (p-nobody)" in puhui("account", place, "p-nobody").stdout
    assert "has no activity record" in puhui("account", place, "p-bob", "--proof", "w2", ok=False).stderr


def test_a_record_dated_after_the_day_of_the_run_is_rejected_before_any_batch(place, tmp_path):
    """An act that has not happened yet (Beijing time) is rejected as future_record, with its line,
    as an over-cap amount is dropped; the registry would refuse its batch (docs/spec-readings.md)."""
    ahead = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=2)).date().isoformat()
    source = tmp_path / "ahead.jsonl"
    source.write_bytes(jsonl([metro("f1", "p-carol", f"{ahead}T01:00:00.000000Z"),
                              metro("f2", "p-carol", f"{DAY}T09:00:00.000000Z")]))
    ran = puhui("ingest", place, source, "--platform", "wuhan-platform", "--methodology", "HB-GT-METRO",
                "--platform-key", place.parent / "wuhan.key", "--out", tmp_path / "out", "--run-id", "ahead").stdout
    assert "1 accepted" in ran and "1 rejected" in ran and "future_record: 1" in ran
    [rejection] = [json.loads(line) for line in (tmp_path / "out" / "rejections.jsonl").read_text().splitlines()]
    assert (rejection["line"], rejection["reason"], rejection["activity_id"]) == (1, "future_record", "f1")
    assert f"dated {ahead}" in rejection["detail"] and f"ahead-{ahead[:7]}" not in ran  # no batch of that month


def test_quantify_one_act_and_a_footprint_with_its_comparison(tmp_path):
    inputs = json.dumps({"distance_m": 5000, "entry_station": "S01", "exit_station": "S09"})
    answer = json.loads(puhui("quantify", "HB-GT-METRO", "--inputs", inputs, "--subject", "p-alice",
                              "--occurred-at", f"{DAY}T08:00:00.000000Z", "--json").stdout)
    assert answer["reduction_g"] == 392 and len(answer["fingerprint"]) == 64
    csv_text = puhui("quantify", "HB-GT-BUS", "--version", "1", "--inputs", '{"line": "L5"}', "--csv").stdout
    assert "reduction,0.000,t,150 g" in csv_text and "factor g_per_trip,150" in csv_text
    # --inputs not of its form, an unknown methodology: cannot run (2); inputs the methodology refuses: 1.
    assert "--inputs: number 1.5 is not an integer" in puhui(
        "quantify", "HB-GT-METRO", "--inputs", '{"distance_m": 1.5}', ok=False, exit_code=2).stderr
    assert "invalid_input: missing input exit_station" in puhui(
        "quantify", "HB-GT-METRO", "--inputs", '{"distance_m": 1, "entry_station": "S1"}', ok=False).stderr
    assert "no methodology" in puhui("quantify", "HB-NONE", "--inputs", "{}", ok=False, exit_code=2).stderr
    assert "did you mean HB-GT-METRO" in puhui("quantify", "HB-GT-METR", "--inputs", "{}", ok=False, exit_code=2).stderr

    later, earlier = tmp_path / "expo-2026.json", tmp_path / "expo-2025.json"
    later.write_text(json.dumps(EXPO, ensure_ascii=False))
    earlier.write_text(json.dumps({**EXPO, "period_start": "2025-03-01", "period_end": "2025-03-31", "entries": [
        {"site": "hall-a", "month": "2025-03", "source": "electricity", "quantity": 2000}]}, ensure_ascii=False))
    shown = puhui("footprint", later, "--compare", earlier).stdout
    assert "1.002" in shown and "ILLUSTRATIVE" in shown and "emissions_g" not in shown
    data = json.loads(puhui("footprint", later, "--json").stdout)
    assert data["total_g"] == EXPO_G
    csv_text = puhui("footprint", later, "--compare", earlier, "--csv").stdout
    assert "total,all,1001855,1.002" in csv_text and "total,all,1050000,1001855,-48145,-0.048,-4.6%" in csv_text
    broken = tmp_path / "broken.json"
    broken.write_text('{"name": 1.5}')
    assert "broken.json" in puhui("footprint", broken, ok=False, exit_code=2).stderr
    assert "No such file" in puhui("footprint", tmp_path / "missing.json", ok=False, exit_code=2).stderr
