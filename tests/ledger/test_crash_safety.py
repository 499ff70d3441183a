"""A crash leaves all or nothing: SIGKILL a writer at random points, then check the store."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path


from ledger import merkle
from ledger.note import parse_verifier_key, verify_checkpoint
from ledger.replay import replay
from ledger.state import root_keys_from
from ledger.registry import Registry
from keys import Ed25519Key
from world import World

KILLS = 20
TESTS_DIR = Path(__file__).resolve().parents[1]


def start_writer(url: str, seed: int) -> tuple[subprocess.Popen, list[str]]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(TESTS_DIR), str(TESTS_DIR.parent)]))
    child = subprocess.Popen([sys.executable, str(Path(__file__).with_name("crash_child.py")), url, str(seed)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    lines: list[str] = []

    def read() -> None:
        for line in child.stdout:
            lines.append(line.strip())
    threading.Thread(target=read, daemon=True).start()
    return child, lines


def check_store(url: str, acknowledged: dict[int, str]) -> Registry:
    registry = Registry.open(url, log_signer=Ed25519Key.from_label("puhui-test/log"))
    # Recover as a restarted writer does: take the writer lock (on PostgreSQL the killed writer's
    # session may still be finishing a commit) and reload, then sign a checkpoint, which must be
    # consistent with the last one signed before the crash.
    registry.checkpoint()
    leaves = [data for _, data in registry.leaf_bytes()]
    hashes = [merkle.leaf_hash(data) for data in leaves]
    # Gap-free: leaf_bytes yields seq 0.. in order; the size is their count.
    assert len(leaves) == registry.size
    for seq, leaf_hash in acknowledged.items():
        assert seq < registry.size, f"acknowledged event {seq} lost"
        assert hashes[seq].hex() == leaf_hash, f"acknowledged event {seq} changed"
    assert registry.root() == merkle.root_of_leaf_hashes(hashes)
    latest = registry.latest_checkpoint()
    if latest is not None:
        checkpoint = verify_checkpoint(latest, parse_verifier_key(registry.meta["log_key"]))
        assert checkpoint.size == registry.size
        assert checkpoint.root == merkle.root_of_leaf_hashes(hashes[:checkpoint.size])
    replayed = replay(iter(leaves), origin=registry.origin, root_keys=root_keys_from(registry.meta["root_keys"]),
                      batch_records=registry.batch_records)
    assert replayed == registry.state
    totals = registry.state.totals_g()
    assert totals["issued_g"] == totals["active_g"] + totals["retired_g"] + totals["cancelled_g"]
    return registry


def test_sigkill_at_random_points_loses_nothing_acknowledged(database_url):
    world = World(database_url).setup().history()
    world.client.issue(world.admin, "iss-crash", "mall-co", "HB-GT-METRO", 2026, "420100", 10**9, evidence="2" * 64)
    world.registry.checkpoint()
    world.registry.close()
    rng = random.Random(9162)
    acknowledged: dict[int, str] = {}
    kills_with_progress = 0
    for kill in range(KILLS):
        child, lines = start_writer(database_url, kill)
        deadline = time.monotonic() + 30
        # Wait until the writer is appending, then kill it at a random moment.
        while not lines and time.monotonic() < deadline and child.poll() is None:
            time.sleep(0.01)
        assert child.poll() is None, child.stderr.read()
        time.sleep(rng.uniform(0.0, 0.3))
        child.send_signal(signal.SIGKILL)
        child.wait()
        time.sleep(0.05)  # let the reader thread drain the pipe
        acks = [line.split() for line in list(lines) if line.startswith("ack")]
        kills_with_progress += bool(acks)
        for _, seq, leaf_hash in acks:
            acknowledged[int(seq)] = leaf_hash
        registry = check_store(database_url, acknowledged)
        registry.close()
    assert kills_with_progress == KILLS
    assert len(acknowledged) > KILLS
