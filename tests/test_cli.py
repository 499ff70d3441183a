"""The `puhui` command, run as a person would: a real process, passphrase from the environment."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from cli.demo import REJECTED_BATCH
from keys import Ed25519Key, KeyRing
from service.registry_dir import RegistryDir

PUHUI = [sys.executable, "-c", "from cli.main import main; main()"]
REPO = Path(__file__).resolve().parents[1]
DEMO_CITIZEN = "p-6e2a345f000a"  # the person id of the demo's first raw record, which the README names


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
    # registry.json holds the database URL, with a PostgreSQL password in it (trial 11: it was 0644)
    assert oct((place / "registry.json").stat().st_mode & 0o777) == "0o600"
    trust = json.loads((place / "trust.json").read_text())
    assert trust["origin"] == "test.hubei.example/puhui"
    assert trust["root_keys"] == [base64.b64encode(ring.public("root")[1]).decode()]
    assert trust["log_key"].startswith("test.hubei.example/puhui+")
    status = json.loads(puhui("status", str(place), "--json").stdout)
    assert status["size"] == 2 and status["checkpoint"]["size"] == 2
    again = puhui("init", str(place), "--origin", "x.example/p", check=False)
    assert again.returncode == 2 and "already holds a registry" in again.stderr and "Traceback" not in again.stderr


def test_init_with_an_offline_admin_key(tmp_path):
    admin = Ed25519Key.from_label("puhui-test/offline-admin")
    place = tmp_path / "reg"
    puhui("init", str(place), "--origin", "test.hubei.example/puhui", "--key-strength", "interactive",
          "--admin-public-key", admin.public_key_b64)
    assert KeyRing(place / "keys").names() == ["log", "root"]
    from ledger.registry import Registry
    registry = Registry.open(RegistryDir(place).database_url())
    assert registry.state.keys[admin.key_id].roles == frozenset({"admin"})
    registry.close()
    bad = puhui("init", str(tmp_path / "other"), "--origin", "x.example/p", "--admin-public-key", "not base64!", check=False)
    assert bad.returncode == 2 and "base64" in bad.stderr


def test_without_a_passphrase_and_without_a_terminal_it_says_what_to_do(tmp_path):
    result = puhui("init", str(tmp_path / "reg"), "--origin", "x.example/p", passphrase=None, check=False)
    assert result.returncode == 2 and "PUHUI_KEY_PASSPHRASE" in result.stderr and "Traceback" not in result.stderr


def test_a_wrong_passphrase_is_refused(tmp_path):
    place = tmp_path / "reg"
    puhui("init", str(place), "--origin", "test.hubei.example/puhui", "--key-strength", "interactive")
    result = puhui("export", str(place), "--out", str(tmp_path / "b"), passphrase="wrong", check=False)
    assert result.returncode == 2 and "passphrase" in result.stderr.lower() and "Traceback" not in result.stderr


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
    assert exists.returncode == 2 and "Traceback" not in exists.stderr
    # Public pages show every account id and beneficiary: an individual's is a pseudonym, never a name.
    events = [json.loads(line) for line in log_lines[:-1]]
    individuals = {e["body"]["account_id"] for e in events if e["type"] == "account.open" and e["body"]["kind"] == "individual"}
    assert len(individuals) == 4 and all(re.fullmatch(r"c-[0-9a-f]{12}", account) for account in individuals)
    assert not re.search(r"\b(alice|bob|chen|dong)\b", b"".join(log_lines).decode(), re.I)
    # The batch its validation body rejected: a citizen's account says so and keeps its grams apart.
    rejected = json.loads((bundle / "activities" / f"{REJECTED_BATCH}.jsonl").read_text().splitlines()[0])
    account = json.loads(puhui("account", str(place), rejected["subject"], "--json").stdout)
    assert account["rejected_g"] >= rejected["reduction_g"] > 0 and account["total_g"] + account["rejected_g"] == sum(
        r["reduction_g"] for r in account["tables"]["records"])
    assert {b["batch_id"]: b["rejected_by"] for b in account["tables"]["batches"]}[REJECTED_BATCH] == f"rev-{REJECTED_BATCH}"
    said = " ".join(out.split())  # as the terminal wrapped it
    assert f"person id {DEMO_CITIZEN} at the identity hub" in said and f"puhui pseudonyms {DEMO_CITIZEN}" in said
    assert f"person id at\nthe identity hub is `{DEMO_CITIZEN}`" in (REPO / "README.md").read_text()  # as the README says


def test_status_of_a_directory_without_a_registry(tmp_path):
    result = puhui("status", str(tmp_path), check=False)
    assert result.returncode == 2 and "puhui init" in result.stderr


def test_a_bad_origin_is_one_line_exit_2_and_leaves_nothing_behind(tmp_path):
    place = tmp_path / "reg"
    for origin in ("bad origin", "", "a+b", "a" * 242):
        result = puhui("init", str(place), "--origin", origin, check=False)
        assert result.returncode == 2 and result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
        assert "--origin" in result.stderr and not place.exists()
    puhui("init", str(place), "--origin", "test.hubei.example/puhui", "--key-strength", "interactive")


def test_an_init_that_fails_midway_removes_what_it_made(tmp_path):
    place = tmp_path / "reg"
    result = puhui("init", str(place), "--origin", "x.example/p", "--key-strength", "interactive",
                   "--database-url", f"sqlite:///{tmp_path / 'no-such-dir' / 'db.sqlite3'}", check=False)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert not place.exists()
    (tmp_path / "empty").mkdir()  # an empty directory the operator made stays, empty
    result = puhui("init", str(tmp_path / "empty"), "--origin", "x.example/p", "--key-strength", "interactive",
                   "--database-url", f"sqlite:///{tmp_path / 'no-such-dir' / 'db.sqlite3'}", check=False)
    assert result.returncode == 2 and list((tmp_path / "empty").iterdir()) == []


@pytest.mark.parametrize("url, said", [("mysql://a/b", "unsupported database mysql"), ("nonsense", "not a database URL")])
def test_an_init_on_another_database_says_so_in_one_line(tmp_path, url, said):
    """Trial 11: a MySQL URL printed a traceback (its driver's import failed inside create_engine)."""
    result = puhui("init", str(tmp_path / "reg"), "--origin", "x.example/p", "--key-strength", "interactive",
                   "--database-url", url, check=False)
    assert result.returncode == 2 and said in result.stderr and "Traceback" not in result.stderr, result.stderr
    assert not (tmp_path / "reg").exists()


def test_new_keys_need_a_passphrase_of_twelve_characters_except_in_the_demo(tmp_path):
    result = puhui("init", str(tmp_path / "reg"), "--origin", "x.example/p", passphrase="demo only", check=False)
    assert result.returncode == 2 and "shorter than 12" in result.stderr and not (tmp_path / "reg").exists()
    puhui("demo", str(tmp_path / "demo"), "--records-per-batch", "5", "--key-strength", "interactive",
          passphrase="demo only")


def test_the_root_key_can_be_written_outside_the_server_directory(tmp_path):
    place, offline = tmp_path / "reg", tmp_path / "usb" / "root.key"
    offline.parent.mkdir()
    out = puhui("init", str(place), "--origin", "x.example/p", "--key-strength", "interactive",
                "--root-key-out", str(offline)).stdout
    assert "offline" in out and str(offline) in out
    assert KeyRing(place / "keys").names() == ["admin", "log"]
    from keys import read_key_info
    info = read_key_info(offline)
    assert info.role == "root" and oct(offline.stat().st_mode & 0o777) == "0o600"
    assert json.loads((place / "trust.json").read_text())["root_keys"] == [base64.b64encode(info.public_key).decode()]
    again = puhui("init", str(tmp_path / "reg2"), "--origin", "x.example/p", "--root-key-out", str(offline), check=False)
    assert again.returncode == 2 and "never overwritten" in again.stderr and not (tmp_path / "reg2").exists()


def test_export_and_status_say_what_is_wrong_in_one_line_and_write_nothing(tmp_path):
    place = tmp_path / "reg"
    puhui("init", str(place), "--origin", "x.example/p", "--key-strength", "interactive")
    (tmp_path / "taken").mkdir()
    taken = puhui("export", str(place), "--out", str(tmp_path / "taken"), check=False)
    assert taken.returncode == 2 and taken.stderr.count("\n") == 1 and "exists" in taken.stderr
    missing = puhui("export", str(tmp_path / "nowhere"), "--out", str(tmp_path / "b"), check=False)
    assert missing.returncode == 2 and "holds no registry" in missing.stderr and "key" not in missing.stderr
    (tmp_path / "empty").mkdir()
    status = puhui("status", str(tmp_path / "empty"), check=False)
    assert status.returncode == 2 and list((tmp_path / "empty").iterdir()) == []
    served = puhui("serve", "--dir", str(tmp_path / "nowhere"), "--port", "1", check=False)
    assert served.returncode == 2 and "holds no registry" in served.stderr and "key file" not in served.stderr


def test_check_backup_and_restore_from_the_command_line(tmp_path):
    place = tmp_path / "reg"
    puhui("demo", str(place), "--records-per-batch", "5", "--key-strength", "interactive")
    assert "match a replay of the log" in puhui("check", str(place)).stdout
    assert "projections: match the log" in puhui("status", str(place)).stdout
    assert "backed up" in puhui("backup", str(place), "--out", str(tmp_path / "one.backup")).stdout
    before = json.loads(puhui("status", str(place), "--json").stdout)
    puhui("eligibility", str(place), "HB-GT-BUS", "--off")  # one more event and a checkpoint
    from ledger.registry import Registry
    registry = Registry.open(RegistryDir(place).database_url())
    published = tmp_path / "published.note"  # as a witness or a client's receipt holds it
    published.write_text(registry.latest_checkpoint())
    registry.close()
    older = puhui("restore", str(place), str(tmp_path / "one.backup"), "--checkpoint", str(published), check=False)
    assert older.returncode == 1 and "was published" in older.stderr
    puhui("backup", str(place), "--out", str(tmp_path / "two.backup"))
    restored = puhui("restore", str(place), str(tmp_path / "two.backup"), "--checkpoint", str(published)).stdout
    assert f"restored {before['size'] + 1} events" in restored
    from sqlalchemy import create_engine, text
    engine = create_engine(RegistryDir(place).database_url())
    with engine.begin() as conn:
        conn.execute(text("UPDATE accounts SET active_g = active_g + 1 WHERE kind = 'platform'"))
    engine.dispose()
    checked = puhui("check", str(place), check=False)
    assert checked.returncode == 1 and "gram columns" in checked.stderr
    status = puhui("status", str(place), check=False)
    assert status.returncode == 1 and "DO NOT match" in status.stderr  # a monitor's script sees it


def test_restore_refuses_at_once_a_missing_backup_and_a_checkpoint_that_is_no_file(tmp_path):
    """Trial 11: `--checkpoint FIFO` hung for ever; a missing backup exited 1 (refused), not 2."""
    place = tmp_path / "reg"
    puhui("init", str(place), "--origin", "x.example/p", "--key-strength", "interactive")
    missing = puhui("restore", str(place), str(tmp_path / "nope.backup"), check=False)
    assert missing.returncode == 2 and "no such backup file" in missing.stderr
    puhui("backup", str(place), "--out", str(tmp_path / "one.backup"))
    fifo = tmp_path / "checkpoint.fifo"
    os.mkfifo(fifo)
    started = time.monotonic()
    refused = puhui("restore", str(place), str(tmp_path / "one.backup"), "--checkpoint", str(fifo), check=False)
    assert refused.returncode == 2 and "not a regular file" in refused.stderr and time.monotonic() - started < 60
    garbage = tmp_path / "garbage.note"  # trial 11: exited 1, as if the backup were refused
    garbage.write_text("not a signed note\n")
    refused = puhui("restore", str(place), str(tmp_path / "one.backup"), "--checkpoint", str(garbage), check=False)
    assert refused.returncode == 2 and "not a checkpoint this registry's log key signed" in refused.stderr, refused.stderr


def test_check_names_a_batch_block_hash_edited_with_its_digest(tmp_path):
    """An activity's proof reads its batch's block hashes: one forged along with the projection
    digest no longer folds to its batch's root, so `puhui status` says so (exit 1), and `puhui
    check` names the block."""
    place = tmp_path / "reg"
    puhui("demo", str(place), "--records-per-batch", "5", "--key-strength", "interactive")
    from ledger.projections import ProjectionDigest, load_state
    from ledger.registry import Registry
    from ledger.store import Store
    registry = Registry.open(RegistryDir(place).database_url())
    root_keys, size = registry.state.root_keys, registry.size
    registry.close()
    store = Store.connect(RegistryDir(place).database_url())
    with store.engine.begin() as conn:
        batch_id = conn.execute(text("SELECT MIN(batch_id) FROM batch_blocks")).scalar()
        conn.execute(text("UPDATE batch_blocks SET hash = zeroblob(32) WHERE batch_id = :b"), {"b": batch_id})
        digest = ProjectionDigest()
        load_state(store, conn, root_keys, store.read_meta(), digest=digest)
        store.write_projection_digest(conn, size, digest.hex())
    store.close()
    status = puhui("status", str(place), check=False)
    assert status.returncode == 1 and f"batch {batch_id} do not fold to its root" in status.stderr
    checked = puhui("check", str(place), check=False)
    assert checked.returncode == 1
    assert f"- batch blocks: batch {batch_id} block 0: stored hash {'00' * 32}, its records hash to " in checked.stderr


def test_a_moved_registry_directory_takes_its_database_along(tmp_path):
    puhui("init", str(tmp_path / "reg"), "--origin", "x.example/p", "--key-strength", "interactive")
    assert json.loads((tmp_path / "reg" / "registry.json").read_text())["database_url"] == "sqlite:///registry.sqlite3"
    (tmp_path / "reg").rename(tmp_path / "moved")
    status = json.loads(puhui("status", str(tmp_path / "moved"), "--json").stdout)
    assert status["size"] == 2 and not (tmp_path / "reg").exists()
