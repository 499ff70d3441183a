"""The `puhui` command, run as a person would: a real process, passphrase from the environment."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path


from keys import Ed25519Key, KeyRing

PUHUI = [sys.executable, "-c", "from cli.main import main; main()"]


def puhui(*args: str, passphrase: str | None = "correct horse battery", check: bool = True) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PUHUI_KEY_PASSPHRASE"}
    if passphrase is not None:
        env["PUHUI_KEY_PASSPHRASE"] = passphrase
    result = subprocess.run(PUHUI + list(args), capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL,
                            cwd=Path(__file__).resolve().parents[1], timeout=300)
    if check:
        assert result.returncode == 0, result.stderr + result.stdout
    return result


def test_init_creates_separate_encrypted_keys_a_genesis_and_a_trust_file(tmp_path):
    place = tmp_path / "reg"
    puhui("init", str(place), "--origin", "test.hubei.example/puhui", "--key-strength", "interactive")
    ring = KeyRing(place / "keys")
    assert ring.names() == ["admin", "log", "root"]
    assert len({ring.public(n)[0] for n in ring.names()}) == 3
    for name in ring.names():
        assert b"PRIVATE" not in (place / "keys" / f"{name}.key").read_bytes()
        assert oct((place / "keys" / f"{name}.key").stat().st_mode & 0o777) == "0o600"
    trust = json.loads((place / "trust.json").read_text())
    assert trust["origin"] == "test.hubei.example/puhui"
    assert trust["root_keys"] == [base64.b64encode(ring.public("root")[1]).decode()]
    assert trust["log_key"].startswith("test.hubei.example/puhui+")
    status = json.loads(puhui("status", str(place), "--json").stdout)
    assert status["size"] == 2 and status["checkpoint"]["size"] == 2
    again = puhui("init", str(place), "--origin", "x.example/p", check=False)
    assert again.returncode == 1 and "already holds a registry" in again.stderr and "Traceback" not in again.stderr


def test_init_with_an_offline_admin_key(tmp_path):
    admin = Ed25519Key.from_label("puhui-test/offline-admin")
    place = tmp_path / "reg"
    puhui("init", str(place), "--origin", "test.hubei.example/puhui", "--key-strength", "interactive",
          "--admin-public-key", admin.public_key_b64)
    assert KeyRing(place / "keys").names() == ["log", "root"]
    from ledger.registry import Registry
    registry = Registry.open(json.loads((place / "registry.json").read_text())["database_url"])
    assert registry.state.keys[admin.key_id].roles == frozenset({"admin"})
    registry.close()
    bad = puhui("init", str(tmp_path / "other"), "--origin", "x.example/p", "--admin-public-key", "not base64!", check=False)
    assert bad.returncode == 1 and "base64" in bad.stderr


def test_without_a_passphrase_and_without_a_terminal_it_says_what_to_do(tmp_path):
    result = puhui("init", str(tmp_path / "reg"), "--origin", "x.example/p", passphrase=None, check=False)
    assert result.returncode == 1 and "PUHUI_KEY_PASSPHRASE" in result.stderr and "Traceback" not in result.stderr


def test_a_wrong_passphrase_is_refused(tmp_path):
    place = tmp_path / "reg"
    puhui("init", str(place), "--origin", "test.hubei.example/puhui", "--key-strength", "interactive")
    result = puhui("export", str(place), "--out", str(tmp_path / "b"), passphrase="wrong", check=False)
    assert result.returncode == 1 and "passphrase" in result.stderr.lower() and "Traceback" not in result.stderr


def test_demo_then_export_and_status(tmp_path):
    place, bundle = tmp_path / "reg", tmp_path / "bundle"
    out = puhui("demo", str(place), "--records-per-batch", "40", "--key-strength", "interactive").stdout
    assert "DUPLICATE_ACTIVITY" in out and "DOUBLE_CLAIM" in out  # the demo shows both refusals
    status = json.loads(puhui("status", str(place), "--json").stdout)
    totals = status["totals_g"]
    assert totals["issued_g"] == totals["active_g"] + totals["retired_g"] + totals["cancelled_g"]
    assert set(status["retired_by_purpose_g"]) == {"ets_offset", "carbon_neutrality", "eco_compensation", "voluntary"}
    puhui("export", str(place), "--out", str(bundle))
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["tree_size"] == status["size"]
    log_lines = (bundle / "log.jsonl").read_bytes().split(b"\n")
    assert len(log_lines) == status["size"] + 1 and log_lines[-1] == b""
    batch_ids = [json.loads(line)["body"]["batch_id"] for line in log_lines[:-1] if json.loads(line)["type"] == "activity.batch"]
    assert sorted(p.stem for p in (bundle / "activities").iterdir()) == sorted(batch_ids)
    exists = puhui("export", str(place), "--out", str(bundle), check=False)
    assert exists.returncode == 1 and "Traceback" not in exists.stderr


def test_status_of_a_directory_without_a_registry(tmp_path):
    result = puhui("status", str(tmp_path), check=False)
    assert result.returncode == 1 and "puhui init" in result.stderr
