"""Latency of every public page of `puhui serve`, against GET /v1/status in the same run, as ratios.

    .venv/bin/python bench/bench_pages.py [--events 1000000] [--requests 200] [--out DIR]

Builds a registry of --events events (cached under DIR/registry-e<N>-s<seed>, reused by the next
run of the same size): accounts (enterprises, compliance entities, platforms), a dozen
methodologies, issuances, transfers, retirements of every purpose, cancellations, neutrality
claims and offset surrenders, signed before they are appended through Registry.append_many in
groups of --group events (as bench/bench_ledger.py appends), over a year of registry time. Then
serves it with `puhui serve` and GETs, one request at a time on a keep-alive connection, each
page in turn (/, the registers, a register's later page and a filtered one, a claim, an account,
a methodology, a serial, a receipt; ids drawn at random) and /v1/status after each page, for
--requests rounds after one round of warm-up. Reports p50 and p99 of each, in ms and as a ratio
to /v1/status's; the goal (issue 13) is every page under 50 ms at p99 on 10^6 events. Output:
DIR/bench_pages.json (default DIR bench/out/, git-ignored). One run, not a pass/fail test.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import platform
import random
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Iterator, NamedTuple

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_api import ORIGIN, PASSPHRASE, bench_key, free_port, start_server  # noqa: E402
from ledger.errors import Rejected  # noqa: E402
from ledger.registry import Registry  # noqa: E402
from ledger.schema import PURPOSES  # noqa: E402
from service.actors import Actor, Client  # noqa: E402
from service.registry_dir import RegistryDir  # noqa: E402

METHODOLOGIES = 12
REGIONS = ("420100", "420200", "420500", "420600", "421000")
SECTORS = ("green_travel", "resource_saving", "other")
SAMPLE_IDS = 200  # ids of each kind drawn for the id pages
REGISTRY_SPAN = dt.timedelta(days=365)  # the registry time the events spread over
EVIDENCE = "ab" * 32
MAX_EVENTS = 10**7
SPENDER_TRIES = 8
# The mix of events, as thresholds on one uniform draw: 4 % issuances, then claims, surrenders and
# cancellations about 1 % each, transfers to 55 %, retirements the rest.
ISSUANCE_SHARE, CLAIM_BELOW, SURRENDER_BELOW, CANCELLATION_BELOW, TRANSFER_BELOW = 0.04, 0.052, 0.064, 0.075, 0.55


class SimulatedClock:
    """Registry time that moves by a fixed step at each group, so that a year of months appears."""

    def __init__(self, start: dt.datetime, step: dt.timedelta):
        self._now, self._step = start, step

    def __call__(self) -> dt.datetime:
        self._now += self._step
        return self._now


class Cast(NamedTuple):
    admin: Actor
    holder: Actor  # controls every account
    ets: Actor


class Accounts(NamedTuple):
    traders: list[str]  # enterprises and platforms: issued to, transfer among themselves, retire
    entities: list[str]  # compliance entities: issued eligible credits only, retire ets_offset, surrender


def build(directory: Path, events: int, group: int, seed: int) -> None:
    """A registry of about `events` events, with a checkpoint over all of them, and samples.json:
    ids of each kind for the id pages."""
    admin = Actor(bench_key("admin"), "admin")
    # Format 1, as bench_ledger: the pages read the same registers in both formats, and this history's
    # bodies (params, evidence issuances without reviews) are format 1's.
    RegistryDir(directory).init(ORIGIN, admin_public_key=admin.signer.public_key, strength="interactive",
                                passphrase=PASSPHRASE.encode(), log_format=1).close()
    registry_dir = RegistryDir(directory)
    groups = max(events // group, 1)
    registry = Registry.open(registry_dir.database_url(), log_signer=registry_dir.keyring.load("log", PASSPHRASE.encode()),
                             clock=SimulatedClock(dt.datetime(2025, 11, 1, tzinfo=dt.timezone.utc), REGISTRY_SPAN / groups))
    client = Client(registry)
    cast = Cast(admin, Actor(bench_key("holder"), "holder"), Actor(bench_key("ets"), "ets"))
    rng = random.Random(seed)
    accounts = _setup(registry, client, cast, max(events // 100, 20))
    rejected: dict[str, int] = {}
    started = time.perf_counter()
    drawn = 0  # events drawn so far: their ids' numbers
    while registry.size < events:
        count = min(group, events - registry.size)
        signed = list(_group(registry, client, cast, accounts, rng, drawn, count))
        drawn += count
        for result in registry.append_many([(event, None) for event in signed]):
            if isinstance(result, Rejected):
                if result.code not in rejected:
                    print(f"  rejected: {result.code}: {result.message}", file=sys.stderr)
                rejected[result.code] = rejected.get(result.code, 0) + 1
        if registry.size // group % 100 == 0:
            print(f"  {registry.size} events, {registry.size / (time.perf_counter() - started):.0f}/s", file=sys.stderr)
    registry.checkpoint()
    state = registry.state
    samples = {
        "claims": rng.sample(sorted(state.claims), min(SAMPLE_IDS, len(state.claims))),
        "accounts": rng.sample(sorted(state.accounts), min(SAMPLE_IDS, len(state.accounts))),
        "methodologies": sorted(state.methodologies),
        "serials": [rng.randrange(state.next_serial) for _ in range(SAMPLE_IDS)],
        "receipts": [rng.randrange(state.size) for _ in range(SAMPLE_IDS)],
        "seqs": [rng.randrange(state.size) for _ in range(SAMPLE_IDS)],
        "size": state.size, "rejected": rejected,
    }
    registry.close()
    (directory / "samples.json").write_text(json.dumps(samples) + "\n")


def _setup(registry: Registry, client: Client, cast: Cast, account_count: int) -> Accounts:
    client.register_key(cast.admin, cast.holder, [])
    client.register_key(cast.admin, cast.ets, ["ets"])
    setup = []
    for m in range(METHODOLOGIES):
        setup.append(client.signed(cast.admin, "methodology.register", {
            "methodology_id": f"HB-M-{m:02}", "version": 1, "title": f"Methodology {m}", "sector": SECTORS[m % 3],
            "params": {"g_per_unit": str(10 + m)}, "offset_eligible": m % 2 == 0}))
    traders, entities = [], []
    for a in range(account_count):
        kind = "compliance_entity" if a % 10 == 0 else "platform" if a % 50 == 1 else "enterprise"
        account_id = f"acct-{a:07}"
        (entities if kind == "compliance_entity" else traders).append(account_id)
        setup.append(client.signed(cast.admin, "account.open", {
            "account_id": account_id, "kind": kind, "name": f"Account {a}", "region": REGIONS[a % len(REGIONS)],
            "controllers": [cast.holder.key_id], "platform": None}))
    for i in range(0, len(setup), 1000):
        registry.append_many([(event, None) for event in setup[i:i + 1000]])
    return Accounts(traders, entities)


def _group(registry: Registry, client: Client, cast: Cast, accounts: Accounts, rng: random.Random, drawn: int,
           count: int) -> Iterator[dict[str, Any]]:
    """`count` signed events drawn against the registry's current balances (a quarter of a
    balance at most, so that the group's own moves never overdraw)."""
    state = registry.state
    spendable = {a: state.accounts[a].active.size_g // 4 for a in (*accounts.traders, *accounts.entities)}
    unused = {"carbon_neutrality": [], "ets_offset": []}
    for retirement_id in rng.sample(sorted(state.retirements), min(len(state.retirements), 200)):
        retirement = state.retirements[retirement_id]
        if retirement.used_by is None and retirement.purpose in unused:
            unused[retirement.purpose].append(retirement)
    for n in range(drawn, drawn + count):
        roll = rng.random()
        source = _spender(accounts, spendable, rng)
        if roll < ISSUANCE_SHARE or source is None:
            to_entity = rng.random() < 0.2
            account = rng.choice(accounts.entities if to_entity else accounts.traders)
            # compliance entities get offset-eligible methodologies (the even ones) only
            methodology = 2 * rng.randrange(METHODOLOGIES // 2) + (0 if to_entity else rng.randrange(2))
            yield client.signed(cast.admin, "issuance", {
                "issuance_id": f"iss-{n}", "account": account, "methodology_id": f"HB-M-{methodology:02}",
                "vintage": 2025 + rng.randrange(2), "region": REGIONS[rng.randrange(len(REGIONS))],
                "amount_g": rng.randrange(10**6, 10**8), "batches": [], "evidence": EVIDENCE})
        elif roll < CLAIM_BELOW and unused["carbon_neutrality"]:
            retirement = unused["carbon_neutrality"].pop()
            yield client.signed(cast.holder, "neutrality.claim", {
                "claim_id": f"claim-{n}", "claimant": retirement.account,
                "subject": {"kind": "event", "name": f"Event {n}"}, "period_start": "2026-01-01",
                "period_end": "2026-01-02", "footprint_g": retirement.amount_g, "retirements": [retirement.retirement_id]})
        elif roll < SURRENDER_BELOW and unused["ets_offset"]:
            retirement = unused["ets_offset"].pop()
            yield client.signed(cast.ets, "offset.surrender", {
                "surrender_id": f"sur-{n}", "entity": retirement.account, "compliance_year": 2026,
                "allocation_g": 10**15, "retirements": [retirement.retirement_id]})
        else:
            amount_g = rng.randrange(1, max(spendable[source] // 50, 2))
            spendable[source] -= amount_g
            if roll < CANCELLATION_BELOW:
                yield client.signed(cast.admin, "cancellation", {
                    "cancellation_id": f"can-{n}", "account": source, "amount_g": amount_g, "reason": "data correction"})
            elif roll < TRANSFER_BELOW and source not in accounts.entities:
                destination = rng.choice(accounts.traders)
                destination = destination if destination != source else accounts.traders[0 if source != accounts.traders[0] else 1]
                yield client.signed(cast.holder, "transfer", {
                    "transfer_id": f"tr-{n}", "from": source, "to": destination, "amount_g": amount_g})
            else:
                purpose = "ets_offset" if source in accounts.entities else rng.choice(
                    [p for p in PURPOSES if p != "ets_offset"])
                yield client.signed(cast.holder, "retirement", {
                    "retirement_id": f"ret-{n}", "account": source, "amount_g": amount_g, "purpose": purpose,
                    "beneficiary": f"beneficiary {n % 997}"})


def _spender(accounts: Accounts, spendable: dict[str, int], rng: random.Random) -> str | None:
    """An account with grams to spend (a trader four times in five), None after a few misses."""
    for _ in range(SPENDER_TRIES):
        account = rng.choice(accounts.traders if rng.random() < 0.8 else accounts.entities)
        if spendable[account] > 0:
            return account
    return None


class Target(NamedTuple):
    name: str  # how the report names it: the path pattern
    paths: list[str]  # one per round, cycled


def targets(samples: dict[str, Any]) -> list[Target]:
    seqs = samples["seqs"]
    return [
        Target("/", ["/"]),
        *(t for name in ("issuances", "retirements", "surrenders", "claims", "methodologies") for t in (
            Target(f"/{name}", [f"/{name}"]),
            Target(f"/{name}?after=N", [f"/{name}?after={seq}" for seq in seqs]))),
        Target("/issuances?methodology_id=M", [f"/issuances?methodology_id={m}" for m in samples["methodologies"]]),
        Target("/retirements?purpose=P", [f"/retirements?purpose={p}" for p in PURPOSES]),
        Target("/claims/{id}", [f"/claims/{c}" for c in samples["claims"]] or ["/claims/none"]),
        Target("/accounts/{id}", [f"/accounts/{a}" for a in samples["accounts"]]),
        Target("/methodologies/{id}", [f"/methodologies/{m}" for m in samples["methodologies"]]),
        Target("/serials/{n}", [f"/serials/{n}" for n in samples["serials"]]),
        Target("/receipts/{seq}", [f"/receipts/{s}" for s in samples["receipts"]]),
    ]


STATUS = "/v1/status"


def measure(port: int, pages: list[Target], rounds: int) -> dict[str, Any]:
    """GET each page then /v1/status, `rounds` times after one round of warm-up."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    latencies: dict[str, list[float]] = {t.name: [] for t in [*pages, Target(STATUS, [STATUS])]}
    failures: dict[str, dict[str, int]] = {}

    def get(name: str, path: str, record: bool) -> None:
        started = time.perf_counter()
        connection.request("GET", path)
        response = connection.getresponse()
        response.read()
        elapsed = time.perf_counter() - started
        if response.status != 200:
            by_status = failures.setdefault(name, {})
            by_status[str(response.status)] = by_status.get(str(response.status), 0) + 1
        if record:
            latencies[name].append(elapsed)
    for r in range(rounds + 1):
        for page in pages:
            get(page.name, page.paths[r % len(page.paths)], r > 0)
            get(STATUS, STATUS, r > 0)
    connection.close()
    status = _percentiles(latencies[STATUS])
    report = {}
    for name, values in latencies.items():
        p = _percentiles(values)
        report[name] = {**p, "p50_ratio": round(p["p50_ms"] / status["p50_ms"], 2),
                        "p99_ratio": round(p["p99_ms"] / status["p99_ms"], 2), "under_50_ms_p99": p["p99_ms"] < 50}
    return {"pages": report, "failures": failures}


def _percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {"p50_ms": round(statistics.median(ordered) * 1000, 2),
            "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000, 2), "samples": len(ordered)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=200, help="rounds over every page (after one of warm-up)")
    parser.add_argument("--group", type=int, default=1000, help="events per append_many when building")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "out")
    args = parser.parse_args()
    if not 100 <= args.events <= MAX_EVENTS or not 1 <= args.requests <= 100_000 or not 1 <= args.group <= 10_000:
        parser.error(f"--events from 100 to {MAX_EVENTS}, --requests from 1 to 100000, --group from 1 to 10000")
    directory = args.out / f"registry-e{args.events}-s{args.seed}"
    built_s = None
    if not (directory / "samples.json").exists():
        shutil.rmtree(directory, ignore_errors=True)
        directory.parent.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        build(directory, args.events, args.group, args.seed)
        built_s = round(time.perf_counter() - started, 1)
    samples = json.loads((directory / "samples.json").read_text())
    port = free_port()
    server = start_server(directory, port, args.out / f"bench_pages-server-e{args.events}.log", start_timeout_s=900)
    try:
        result = measure(port, targets(samples), args.requests)
    finally:
        server.terminate()
        server.wait(60)
    report = {"events": samples["size"], "rejected_when_built": samples["rejected"], "built_s": built_s,
              "requests_per_page": args.requests, "machine": platform.platform(), **result}
    (args.out / "bench_pages.json").write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
