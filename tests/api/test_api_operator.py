"""A careless operator against `puhui serve` (a real process on 127.0.0.1, every wait bounded):
what serve checks before it starts, which passphrase it reads and what its writer inherits, and a
CLI write while the server holds the log."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import httpx

from service.client import RegistryClient
from served_registry import PASSPHRASE, REPO, SERVED_ORIGIN, VENV_BIN, Cast, Served, alive, children, init_registry_dir
from service.registry_dir import RegistryDir

PUHUI = str(VENV_BIN / "puhui")


def bare_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if "PASSPHRASE" not in k}


def puhui(*args: str, env: dict[str, str], timeout_s: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([PUHUI, *args], cwd=REPO, env=env, stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, timeout=timeout_s)


def test_serve_refuses_a_directory_that_is_no_registry_before_asking_anything(tmp_path):
    (tmp_path / "empty").mkdir()
    started = time.monotonic()
    result = puhui("serve", "--dir", str(tmp_path / "empty"), "--port", "1", env=bare_env(), timeout_s=30)
    assert result.returncode == 2, result.stderr
    assert "holds no registry" in result.stderr + result.stdout
    assert "passphrase" not in (result.stderr + result.stdout).lower()
    assert time.monotonic() - started < 20


def test_serve_needs_only_the_log_key_passphrase_and_its_writer_inherits_none(tmp_path):
    directory = init_registry_dir(tmp_path / "registry")
    passphrase_file = tmp_path / "log-passphrase"
    passphrase_file.write_text(PASSPHRASE + "\n")
    served = Served(directory).start(env={"PUHUI_LOG_KEY_PASSPHRASE_FILE": str(passphrase_file),
                                          "PUHUI_ADMIN_KEY_PASSPHRASE": "not needed by serve"})
    try:
        writers = [pid for pid in children(served.process.pid) if alive(pid)]
        assert writers
        for pid in writers:
            environ = Path(f"/proc/{pid}/environ").read_bytes()
            assert b"PASSPHRASE" not in environ, "a child of the server inherited a passphrase variable"
        client = RegistryClient(served.url, trust=served.trust())
        Cast(client).register(Cast(client).wuhan, ["platform"])  # the writer signs and commits
        log = served.log.read_text()
        assert log.count("root.key is on this server") == 1
    finally:
        served.stop()


def test_no_root_key_warning_when_the_root_key_is_offline(tmp_path):
    directory = init_registry_dir(tmp_path / "registry")
    (directory / "keys" / "root.key").rename(tmp_path / "root.key")
    served = Served(directory).start()
    try:
        assert "root.key" not in served.log.read_text()
    finally:
        served.stop()


def test_a_cli_write_while_the_server_runs_is_refused_naming_the_server(tmp_path):
    directory = tmp_path / "registry"
    # Format 1: the bodies below are format 1's (the writer lock is the same in both formats).
    RegistryDir(directory).init(SERVED_ORIGIN, strength="interactive", passphrase=PASSPHRASE.encode(),
                                log_format=1).close()
    served = Served(directory).start()
    try:
        client = RegistryClient(served.url, trust=served.trust())
        admin = RegistryDir(directory).admin_key(PASSPHRASE.encode())

        def register(methodology_id: str) -> None:
            client.submit(admin, "methodology.register", {
                "methodology_id": methodology_id, "version": 1, "title": methodology_id, "sector": "green_travel",
                "params": {"g_per_km": "78.4"}, "offset_eligible": True}, prove=False)

        register("HB-GT-METRO")
        started = time.monotonic()
        result = puhui("eligibility", str(directory), "HB-GT-METRO", "--off",
                       env=dict(os.environ, PUHUI_KEY_PASSPHRASE=PASSPHRASE), timeout_s=60)
        assert time.monotonic() - started < 15
        assert result.returncode != 0
        message = result.stderr + result.stdout
        assert "another writer holds this log" in message and str(served.process.pid) in message, message
        # Without a passphrase in the environment the server is named first, not the passphrase
        # (trial 11: "no passphrase for the log key", as if the passphrase were the trouble).
        unset = {name: value for name, value in os.environ.items() if "PASSPHRASE" not in name}
        result = puhui("eligibility", str(directory), "HB-GT-METRO", "--off", env=unset, timeout_s=60)
        message = result.stderr + result.stdout
        assert result.returncode != 0 and "another writer holds this log" in message, message
        exported = puhui("export", str(directory), "--out", str(tmp_path / "bundle"),
                         env=dict(os.environ, PUHUI_KEY_PASSPHRASE=PASSPHRASE), timeout_s=60)
        assert exported.returncode == 2 and "GET /v1/export" in exported.stderr, exported.stderr
        assert not (tmp_path / "bundle").exists()
        # The server is unharmed: it writes, and exports with 200.
        register("HB-GT-BUS")
        assert httpx.get(served.url + "/v1/export", timeout=60).status_code == 200
        assert client.checkpoint().size == RegistryDir(directory).open(with_log_key=False).size
    finally:
        served.stop()


def test_a_restore_while_the_server_runs_is_refused_even_before_its_first_write(tmp_path):
    """The served writer holds the writer lock from its start: a restore cannot swap the database
    under an idle server, which would then go on writing to the replaced file and lose
    acknowledged events."""
    directory = tmp_path / "registry"
    # Format 1: the body below is format 1's (the writer lock is the same in both formats).
    RegistryDir(directory).init(SERVED_ORIGIN, strength="interactive", passphrase=PASSPHRASE.encode(),
                                log_format=1).close()
    env = dict(os.environ, PUHUI_KEY_PASSPHRASE=PASSPHRASE)
    assert puhui("backup", str(directory), "--out", str(tmp_path / "copy.backup"), env=env).returncode == 0
    served = Served(directory).start()  # nothing written since it started
    try:
        restored = puhui("restore", str(directory), str(tmp_path / "copy.backup"), env=env)
        assert restored.returncode == 2 and "another writer holds this log" in restored.stderr, restored.stderr
        client = RegistryClient(served.url, trust=served.trust())
        admin = RegistryDir(directory).admin_key(PASSPHRASE.encode())
        done = client.submit(admin, "methodology.register", {
            "methodology_id": "HB-GT-METRO", "version": 1, "title": "metro", "sector": "green_travel",
            "params": {"g_per_km": "78.4"}, "offset_eligible": True})
    finally:
        served.stop()
    registry = RegistryDir(directory).open(with_log_key=False)
    assert registry.size == done.seq + 1  # the acknowledged event is in the database the server used
    registry.close()
