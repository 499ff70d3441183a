"""A registry directory served by `puhui serve` as a real process on 127.0.0.1, and a cast of keys
and accounts created through the API: what the process-level tests (concurrency, restart) share."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from format2_records import METRO_PARAMS
from keys import Ed25519Key, load_key
from service.client import RegistryClient
from service.actors import Actor
from service.registry_dir import RegistryDir
from world import actor

PASSPHRASE = "puhui api tests"
SERVED_ORIGIN = "served.hubei.example/puhui"
REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


def spawned_children(pid: int) -> list[int]:
    """The live children of `pid` that run a function multiprocessing spawned (a writer, a check
    process), not multiprocessing's resource tracker."""
    return [child for child in children(pid) if alive(child)
            and b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes()]


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


class Served:
    """`puhui serve` on a registry directory, on 127.0.0.1; killed and restarted at will."""

    def __init__(self, directory: Path, database_url: str | None = None):
        self.directory = directory
        self.database_url = database_url
        self.port = free_port()
        self.process: subprocess.Popen | None = None
        self.log = directory.parent / "server.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 60.0, env: dict[str, str] | None = None) -> "Served":
        """env: the server's passphrase variables (default: PUHUI_KEY_PASSPHRASE)."""
        command = [str(VENV_BIN / "puhui"), "serve", "--dir", str(self.directory), "--host", "127.0.0.1",
                   "--port", str(self.port)]
        if self.database_url:
            command += ["--database-url", self.database_url]
        env = dict(os.environ, **(env if env is not None else {"PUHUI_KEY_PASSPHRASE": PASSPHRASE}))
        self.process = subprocess.Popen(command, cwd=REPO, env=env, stdin=subprocess.DEVNULL,
                                        stdout=open(self.log, "ab"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"puhui serve exited with {self.process.returncode}:\n{self.log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/v1/checkpoint", timeout=1.0).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.kill()
        raise RuntimeError(f"puhui serve did not answer within {timeout_s} s:\n{self.log.read_text()[-3000:]}")

    def kill(self) -> None:
        """SIGKILL: no shutdown, no last commit; what was acknowledged must survive anyway."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)
        self.process = None

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()
        self.process = None

    def trust(self) -> dict[str, Any]:
        return json.loads((self.directory / "trust.json").read_text())


def init_registry_dir(path: Path, database_url: str | None = None, log_format: int = 1) -> Path:
    """A registry directory whose first admin is the World's test admin key. Format 1 unless asked:
    Cast and these suites' bodies are format 1's (what they test, the server's concurrency, faults,
    limits and pages, is the same in both formats; tests/test_cli_format2.py serves format 2)."""
    registry = RegistryDir(path).init(SERVED_ORIGIN, admin_public_key=actor("admin").signer.public_key,
                                      database_url=database_url, strength="interactive",
                                      passphrase=PASSPHRASE.encode(), log_format=log_format)
    registry.close()
    return path


def root_signer(directory: Path) -> Ed25519Key:
    """The root key `init_registry_dir` wrote (format 2's reviewers are granted by root alone)."""
    return load_key(directory / "keys" / "root.key", PASSPHRASE.encode())


class Cast:
    """Keys and accounts for tests against a served registry, created through the API. In a
    format-2 registry a methodology is a section 7.1 definition, made eligible by two experts'
    reviews, and an issuance is reviewed by a validator first (grant_reviewers, once)."""

    def __init__(self, client: RegistryClient):
        self.client = client
        self.admin, self.wuhan, self.ets = actor("admin"), actor("wuhan"), actor("ets")
        self.validator, self.experts = actor("validator"), (actor("expert"), actor("expert-2"))

    def grant_reviewers(self, root: Ed25519Key) -> None:
        """Format 2: the validator and the two experts, granted by root (spec section 6)."""
        for holder, role in ((self.validator, "validator"), *((expert, "expert") for expert in self.experts)):
            self.register(holder, [role], by=root)

    def review(self, reviewer: Actor, kind: str, target_id: str, version: int | None = None) -> None:
        self.client.review(reviewer.signer, f"rev-{kind}-{reviewer.label}-{target_id}"[:128], kind, target_id,
                           verdict="approved", report_sha256=hashlib.sha256(target_id.encode()).hexdigest(),
                           version=version, prove=False)

    def register(self, holder: Actor, roles: list[str], by: Ed25519Key | None = None) -> None:
        self.client.submit(by or self.admin.signer, "key.register", {
            "key_id": holder.key_id, "public_key": base64.b64encode(holder.signer.public_key).decode(),
            "roles": roles, "label": holder.label}, prove=False)

    def open(self, account_id: str, kind: str, controllers: list[Actor], region: str = "420100") -> None:
        self.client.submit(self.admin.signer, "account.open", {
            "account_id": account_id, "kind": kind, "name": account_id, "region": region,
            "controllers": [c.key_id for c in controllers], "platform": None}, prove=False)

    def methodology(self, methodology_id: str = "HB-GT-METRO", eligible: bool = True) -> None:
        format_2 = self.client.log_format == 2
        self.client.submit(self.admin.signer, "methodology.register", {
            "methodology_id": methodology_id, "version": 1, "title": methodology_id, "sector": "green_travel",
            "params": METRO_PARAMS if format_2 else {"g_per_km": "78.4"},
            "offset_eligible": eligible and not format_2}, prove=False)
        if format_2 and eligible:
            for expert in self.experts:
                self.review(expert, "methodology", methodology_id, version=1)
            self.client.submit(self.admin.signer, "methodology.eligibility", {
                "methodology_id": methodology_id, "version": 1, "offset_eligible": True}, prove=False)

    def issue(self, issuance_id: str, account: str, amount_g: int, methodology_id: str = "HB-GT-METRO",
              vintage: int = 2026, batches: tuple[str, ...] = ()) -> None:
        evidence = None if batches else "ab" * 32
        if self.client.log_format == 2:
            for target in batches or (evidence,):
                self.review(self.validator, "batch" if batches else "evidence", target)
        self.client.submit(self.admin.signer, "issuance", {
            "issuance_id": issuance_id, "account": account, "methodology_id": methodology_id, "vintage": vintage,
            "region": "420100", "amount_g": amount_g, "batches": list(batches), "evidence": evidence}, prove=False)
