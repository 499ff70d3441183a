"""Many clients at once against `puhui serve` (a real process on 127.0.0.1), and a kill mid-load.

32 clients race to spend, retire and claim the same serials and ids. Afterwards: every gram is
conserved, no serial is held twice, no retirement is used twice, every 200/201 a client saw is in
the log as it was acknowledged, and the exported bundle passes `puhui-verify`. Then the server is
SIGKILLed under load and restarted: no acknowledged event is lost.
"""

from __future__ import annotations

import io
import json
import random
import subprocess
import sys
import tarfile
import threading
import time
from collections import defaultdict
from pathlib import Path

import httpx
import pytest

from service.client import RegistryClient
from served_registry import Cast, Served, init_registry_dir
from ledger import merkle
from ledger.canonical import jcs
from world import actor

CLIENTS = 32
OPERATIONS_PER_CLIENT = 25
TIME_LIMIT_S = 60.0
POOLS = 4
POOL_G = 20_000
PUHUI_VERIFY = Path(sys.executable).parent / "puhui-verify"


def setup_cast(served: Served) -> tuple[RegistryClient, list, list[str]]:
    client = RegistryClient(served.url, trust=served.trust())
    cast = Cast(client)
    holders = [actor(f"holder-{i}") for i in range(CLIENTS)]
    cast.register(cast.ets, ["ets"])
    for holder in holders:
        cast.register(holder, [])
    cast.methodology()
    pools = [f"pool-{p}" for p in range(POOLS)]
    per_pool = CLIENTS // POOLS
    for p, pool in enumerate(pools):
        cast.open(pool, "compliance_entity", holders[p * per_pool:(p + 1) * per_pool])
        cast.issue(f"iss-{p}", pool, POOL_G)
    return client, holders, pools


class Racer(threading.Thread):
    """One client: signs with its holder key (a controller of its pool) and, for surrenders, the ets key."""

    def __init__(self, index: int, served: Served, signer_client: RegistryClient, holder, pools: list[str],
                 shared: dict, deadline: float):
        super().__init__(name=f"racer-{index}")
        self.index, self.url, self.sign = index, served.url, signer_client.sign
        self.holder, self.ets = holder, actor("ets")
        self.pools, self.pool = pools, pools[index // (CLIENTS // POOLS)]
        self.shared, self.deadline = shared, deadline
        self.rng = random.Random(index)
        self.seen: list[tuple[dict, int, dict]] = []   # (event, status, answer)

    def run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=30) as http:
            for n in range(OPERATIONS_PER_CLIENT):
                if time.monotonic() > self.deadline:
                    return
                event = self.next_event(n)
                answer = http.post("/v1/events", content=jcs(event), headers={"content-type": "application/json"})
                self.seen.append((event, answer.status_code, answer.json()))
                if answer.status_code == 201 and event["type"] == "retirement":
                    with self.shared["lock"]:
                        self.shared["retired"][(self.pool, event["body"]["purpose"])].append(event["body"]["retirement_id"])

    def next_event(self, n: int) -> dict:
        if n == 0:
            # All 32 clients open by spending more than all four pools hold together: whatever the
            # interleaving, each such attempt must be refused NOT_HELD, and none drains a pool.
            others = [p for p in self.pools if p != self.pool]
            return self.sign(self.holder.signer, "transfer", {
                "transfer_id": f"tr-{self.index}-{n}", "from": self.pool, "to": others[self.index % len(others)],
                "amount_g": POOL_G * POOLS + 1})
        choice = self.rng.random()
        accepted = [event for event, status, _ in self.seen if status == 201]
        if choice < 0.1 and accepted:
            return self.rng.choice(accepted)  # the very same event again: 200, same seq
        if choice < 0.35:
            others = [p for p in self.pools if p != self.pool]
            return self.sign(self.holder.signer, "transfer", {
                "transfer_id": f"tr-{self.index}-{n}", "from": self.pool, "to": self.rng.choice(others),
                "amount_g": self.rng.randint(500, 3000)})
        if choice < 0.7:
            # Ids from a small shared space: clients of one pool race for the same retirement id.
            purpose = self.rng.choice(["ets_offset", "carbon_neutrality"])
            return self.sign(self.holder.signer, "retirement", {
                "retirement_id": f"ret-{self.pool}-{self.rng.randrange(12)}", "account": self.pool,
                "amount_g": self.rng.randint(200, 2000), "purpose": purpose, "beneficiary": self.pool})
        with self.shared["lock"]:
            offsets = list(self.shared["retired"][(self.pool, "ets_offset")])
            neutral = list(self.shared["retired"][(self.pool, "carbon_neutrality")])
        if choice < 0.85 and offsets:
            return self.sign(self.ets.signer, "offset.surrender", {
                "surrender_id": f"sur-{self.index}-{n}", "entity": self.pool, "compliance_year": 2026,
                "allocation_g": 10**9, "retirements": self.rng.sample(offsets, min(2, len(offsets)))})
        if neutral:
            return self.sign(self.holder.signer, "neutrality.claim", {
                "claim_id": f"claim-{self.index}-{n}", "claimant": self.pool,
                "subject": {"kind": "event", "name": f"event {n}"}, "period_start": "2026-01-01",
                "period_end": "2026-01-31", "footprint_g": 1, "retirements": self.rng.sample(neutral, min(2, len(neutral)))})
        return self.sign(self.holder.signer, "retirement", {
            "retirement_id": f"ret-{self.pool}-{self.rng.randrange(12)}", "account": self.pool, "amount_g": 100,
            "purpose": "carbon_neutrality", "beneficiary": self.pool})


def all_leaves(client: RegistryClient) -> list[dict]:
    return list(client.leaves())


def leaf_bytes(leaf: dict) -> bytes:
    return jcs(leaf)


def check_conservation_and_disjointness(client: RegistryClient, leaves: list[dict]) -> None:
    totals = client.get("/v1/totals")
    assert totals["issued_g"] == totals["active_g"] + totals["retired_g"] + totals["cancelled_g"]
    held: list[tuple[int, int]] = []
    for account_id in {leaf["body"]["account_id"] for leaf in leaves if leaf["type"] == "account.open"}:
        account = client.account(account_id)
        for state in ("active", "retired", "cancelled"):
            held += [tuple(r) for r in account["serials"][state]]
    held.sort()
    assert all(a[1] <= b[0] for a, b in zip(held, held[1:])), "a serial is held twice"
    assert sum(e - s for s, e in held) == totals["issued_g"]
    retired = sorted(tuple(r) for leaf in leaves if leaf["type"] in ("retirement", "cancellation")
                     for r in leaf["effects"]["serials"])
    assert all(a[1] <= b[0] for a, b in zip(retired, retired[1:])), "a serial was retired twice"
    used = [r for leaf in leaves if leaf["type"] in ("offset.surrender", "neutrality.claim") for r in leaf["body"]["retirements"]]
    assert len(used) == len(set(used)), "a retirement was used twice"


def check_acknowledged_in_log(acknowledged: list[tuple[dict, int, dict]], leaves: list[dict]) -> None:
    for event, status, answer in acknowledged:
        leaf = leaves[answer["seq"]]
        assert {"type": leaf["type"], "body": leaf["body"], "auth": leaf["auth"]} == event
        assert merkle.leaf_hash(leaf_bytes(leaf)).hex() == answer["leaf_hash"]
        assert leaf["time"] == answer["time"] and leaf.get("effects") == answer.get("effects")


def verify_export(served: Served, out: Path) -> None:
    archive = httpx.get(f"{served.url}/v1/export", timeout=120)
    assert archive.status_code == 200
    with tarfile.open(fileobj=io.BytesIO(archive.content)) as tar:
        tar.extractall(out / "bundle", filter="data")
    (out / "trust.json").write_text(json.dumps(served.trust()))
    verified = subprocess.run([str(PUHUI_VERIFY), "bundle", str(out / "bundle"), "--trust", str(out / "trust.json"), "--json"],
                              capture_output=True, text=True, timeout=300)
    assert verified.returncode == 0, verified.stdout[-3000:] + verified.stderr[-3000:]


def test_32_clients_race_for_the_same_serials(tmp_path, database_url):
    served = Served(init_registry_dir(tmp_path / "registry", database_url), database_url).start()
    try:
        client, holders, pools = setup_cast(served)
        shared = {"lock": threading.Lock(), "retired": defaultdict(list)}
        deadline = time.monotonic() + TIME_LIMIT_S
        racers = [Racer(i, served, client, holders[i], pools, shared, deadline) for i in range(CLIENTS)]
        for racer in racers:
            racer.start()
        for racer in racers:
            racer.join(TIME_LIMIT_S + 30)
        seen = [s for racer in racers for s in racer.seen]
        statuses = defaultdict(int)
        for _, status, answer in seen:
            statuses[(status, answer.get("code"))] += 1
        assert all(status < 500 for status, _ in statuses), dict(statuses)
        assert statuses[(201, None)] > 100 and statuses[(200, None)] > 0, dict(statuses)
        codes = {code for _, code in statuses}
        assert {"NOT_HELD", "DUPLICATE_ID"} <= codes, dict(statuses)  # the races did happen
        leaves = all_leaves(client)
        check_acknowledged_in_log([s for s in seen if s[1] in (200, 201)], leaves)
        first_answers = {}
        for event, status, answer in seen:
            if status in (200, 201):
                assert first_answers.setdefault(json.dumps(event, sort_keys=True), answer) == answer  # resend: same result
        check_conservation_and_disjointness(client, leaves)
        client.checkpoint()
        verify_export(served, tmp_path)
    finally:
        served.stop()


def test_killing_the_server_mid_load_loses_no_acknowledged_event(tmp_path):
    served = Served(init_registry_dir(tmp_path / "registry")).start()
    try:
        client, holders, pools = setup_cast(served)
        acknowledged: list[tuple[dict, int, dict]] = []
        unanswered: list[dict] = []
        lock = threading.Lock()
        stop_at = time.monotonic() + 30

        def load(index: int) -> None:
            holder, pool = holders[index], pools[index // (CLIENTS // POOLS)]
            with httpx.Client(base_url=served.url, timeout=10) as http:
                for n in range(400):
                    if time.monotonic() > stop_at:
                        return
                    event = client.sign(holder.signer, "retirement", {
                        "retirement_id": f"ret-{index}-{n}", "account": pool, "amount_g": 1, "purpose": "voluntary",
                        "beneficiary": pool})
                    try:
                        answer = http.post("/v1/events", content=jcs(event))
                    except httpx.TransportError:
                        with lock:
                            unanswered.append(event)  # committed or not: the resend will tell
                        return
                    if answer.status_code in (200, 201):
                        with lock:
                            acknowledged.append((event, answer.status_code, answer.json()))

        threads = [threading.Thread(target=load, args=(i,)) for i in range(16)]
        for thread in threads:
            thread.start()
        while len(acknowledged) < 200 and time.monotonic() < stop_at:
            time.sleep(0.01)
        served.kill()
        for thread in threads:
            thread.join(40)
        assert len(acknowledged) >= 200
        served.start()
        leaves = all_leaves(client)
        check_acknowledged_in_log(acknowledged, leaves)
        # An event whose answer was lost is resent: 200 if it had been committed, 201 if not; never twice.
        resent = [client.submit_signed(event, prove=False) for event in unanswered]
        committed = {json.dumps(leaf["body"], sort_keys=True) for leaf in leaves}
        for event, result in zip(unanswered, resent):
            assert result.resent == (json.dumps(event["body"], sort_keys=True) in committed)
        leaves = all_leaves(client)
        check_conservation_and_disjointness(client, leaves)
        verify_export(served, tmp_path)
    finally:
        served.stop()
