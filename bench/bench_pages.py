"""Latency of every public page of `puhui serve`, against GET /v1/status in the same run, as ratios.

    .venv/bin/python bench/bench_pages.py [--events 1000000] [--log-format 2] [--requests 200] [--out DIR]

Builds a registry of --events events (cached under DIR/registry-f<format>-e<N>-s<seed>, reused by
the next run of the same format and size): accounts (enterprises, compliance entities, platforms),
a dozen methodologies, issuances, transfers, retirements of every purpose, cancellations,
neutrality claims and offset surrenders, signed before they are appended through
Registry.append_many in groups of --group events (as bench/bench_ledger.py appends), over a year
of registry time. Format 2 (the default: only it has /holds and citizens for /me) adds what its
pages show: the twelve shipped methodologies, each eligible one after two experts' reviews, some
turned off again; issuances from evidence each after a validator's review; holds opened and
released on accounts (which then spend nothing while held); and each month a batch of the
month's metro rides of --events/200 citizens (format-2 records: daily pseudonyms, openings),
reviewed and issued to a platform. Then serves it with `puhui serve` and requests, one at a time
on a keep-alive connection, each page in turn (/, the registers, a register's later page and a
filtered one, a claim, an account, a methodology, a serial, a receipt; ids drawn at random; in
format 2 also /holds and /me, POSTed a real citizen's daily pseudonyms for a month (one asking in
five a person without rides) or one of their rides' id and opening) and /v1/status after each
page, for --requests rounds after one round of warm-up. Reports p50 and p99 of each, in ms and as a ratio
to /v1/status's; the goal (issue 13) is every page under 50 ms at p99 on 10^6 events. Output:
DIR/bench_pages-f<format>.json (default DIR bench/out/, git-ignored). One run, not a pass/fail test.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import hashlib
import http.client
import json
import platform
import random
import shutil
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import urlencode
from typing import Any, Callable, NamedTuple

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_api import ORIGIN, PASSPHRASE, bench_key, free_port, start_server  # noqa: E402
from bench_ingest import BENCH_KEYS  # noqa: E402
from ledger.definitions import compile_definition  # noqa: E402
from ledger.errors import Rejected  # noqa: E402
from ledger.events.activities import batch_commitment  # noqa: E402
from ledger.registry import Registry  # noqa: E402
from ledger.schema import PURPOSES  # noqa: E402
from quantify.activity import RecordRules  # noqa: E402
from quantify.methodology import load_shipped, register_body  # noqa: E402
from quantify.private import SALT_BYTES, daily_pseudonyms, private_records_for  # noqa: E402
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
# The mix of events, as thresholds on one uniform draw: format 2's holds 0.3 %, 4 % issuances (in
# format 2 each after its evidence's review), then claims, surrenders and cancellations about 1 %
# each, transfers to 55 %, retirements the rest.
HOLD_BELOW, ISSUANCE_SHARE, CLAIM_BELOW, SURRENDER_BELOW, CANCELLATION_BELOW, TRANSFER_BELOW = (
    0.003, 0.04, 0.052, 0.064, 0.075, 0.55)
RELEASE_SHARE = 1 / 3  # of the holds drawn: the release of an open case
# Format 2's citizens: one for every CITIZEN_EVENTS events (5,000 at 10^6), each riding the metro on
# 0 to MOST_RIDE_DAYS days a month (RIDE_DAYS_A_YEAR on average): 1.5 records a month for every
# hundred events, batched monthly. /me asks with a month's pseudonyms; one asking in MISS_EVERY is
# a person without rides.
RIDE_METHODOLOGY = "HB-GT-METRO"
CITIZEN_EVENTS = 200
MOST_RIDE_DAYS = 6
RIDE_DAYS_A_YEAR = 12 * MOST_RIDE_DAYS // 2
MISS_EVERY = 5


class SimulatedClock:
    """Registry time that moves by a fixed step at each group, so that a year of months appears."""

    def __init__(self, start: dt.datetime, step: dt.timedelta):
        self._now, self._step = start, step

    def __call__(self) -> dt.datetime:
        self._now += self._step
        return self._now

    @property
    def next_time(self) -> dt.datetime:
        """The time the next group will be sequenced at."""
        return self._now + self._step


class Cast(NamedTuple):
    admin: Actor
    holder: Actor  # controls every account; in format 2 also the platforms' key, which reports batches
    ets: Actor
    validator: Actor  # format 2: reviews evidence and batches
    experts: tuple[Actor, Actor]  # format 2: review methodology versions


class Accounts(NamedTuple):
    traders: list[str]  # enterprises and platforms: issued to, transfer among themselves, retire
    entities: list[str]  # compliance entities: issued eligible credits only, retire ets_offset, surrender
    platforms: list[str]  # among the traders: format 2's batches are reported by and issued to them
    offset_methodologies: list[str]  # eligible for ets_offset: the only ones issued to compliance entities
    other_methodologies: list[str]


class Ride(NamedTuple):
    """A citizen's sampled ride, for /me: its record's id and the opening the platform gave them."""
    activity_id: str
    opening: str


class Rides:
    """Format 2's citizens and their metro rides: each month, each citizen rides on a few days
    (one ride a day, so the daily cap never clips), written as format-2 records the way a platform
    writes them (quantify.private: daily pseudonyms, keyed fingerprints, openings)."""

    def __init__(self, citizens: int, rng: random.Random):
        methodology = load_shipped().get(RIDE_METHODOLOGY)
        self.definition = compile_definition(RIDE_METHODOLOGY, methodology.version, register_body(methodology)["params"])
        self.version = methodology.version
        self.records = private_records_for(RecordRules(methodology), BENCH_KEYS)
        self.citizens = [f"citizen-{c:07}" for c in range(citizens)]
        self.rng = rng
        self.count = 0
        self.sampled: list[Ride] = []  # about SAMPLE_IDS rides over the year, with their openings
        self.sample_every = 1
        self.months: list[dt.date] = []  # the first days of the months ridden

    def month(self, first_day: dt.date) -> list[dict[str, Any]]:
        """The records of every citizen's rides in the month of first_day, in a random order."""
        days = _next_month(first_day) - first_day
        self.months.append(first_day)
        records = []
        for person in self.citizens:
            for day in self.rng.sample(range(days.days), self.rng.randrange(MOST_RIDE_DAYS + 1)):
                inputs = {"distance_m": self.rng.randrange(1_000, 30_000), "entry_station": f"S{self.rng.randrange(180):03d}",
                          "exit_station": f"S{self.rng.randrange(180):03d}"}
                # 01:00 to 12:59 UTC: the same Beijing date
                occurred_at = (f"{first_day + dt.timedelta(days=day)}T{1 + self.rng.randrange(12):02d}:"
                               f"{self.rng.randrange(60):02d}:00.000000Z")
                salt = base64.b64encode(self.rng.randbytes(SALT_BYTES)).decode()
                prepared = self.records.prepare(0, f"ride-{self.count}", person, occurred_at, inputs,
                                                self.definition.reduction_g(inputs, 0), salt)
                if self.count % self.sample_every == 0:
                    self.sampled.append(Ride(prepared.activity_id, prepared.opening.decode()))
                self.count += 1
                records.append(json.loads(prepared.data))
        self.rng.shuffle(records)
        return records


class History:
    """What a build appends, drawn against the registry's current balances."""

    def __init__(self, registry: Registry, clock: SimulatedClock, cast: Cast, root: Actor | None, citizens: int,
                 rng: random.Random):
        self.registry, self.clock, self.cast, self.root, self.rng = registry, clock, cast, root, rng
        self.client = Client(registry)
        self.format2 = registry.log_format == 2
        self.rides = Rides(citizens, rng) if self.format2 else None
        self.batched_month = clock.next_time.date().replace(day=1)  # rides are batched once their month is over
        self.accounts = Accounts([], [], [], [], [])
        self.open_cases: dict[str, set[str]] = {}  # format 2: as the group being drawn leaves them
        self.pending_records: dict[str, list[dict[str, Any]]] = {}  # of the batch in the group being drawn

    def setup(self, account_count: int) -> None:
        """Keys, methodologies (format 2: their reviews and eligibility) and accounts."""
        cast, client = self.cast, self.client
        setup = [client.signed(cast.admin, "key.register", _key_body(cast.holder, ["platform"] if self.format2 else [])),
                 client.signed(cast.admin, "key.register", _key_body(cast.ets, ["ets"]))]
        if self.format2:
            assert self.root is not None
            setup += [client.signed(self.root, "key.register", _key_body(actor, [role]))
                      for actor, role in ((cast.validator, "validator"), (cast.experts[0], "expert"),
                                          (cast.experts[1], "expert"))]
            setup += self._shipped_methodologies()
        else:
            for m in range(METHODOLOGIES):
                (self.accounts.offset_methodologies if m % 2 == 0 else self.accounts.other_methodologies).append(f"HB-M-{m:02}")
                setup.append(client.signed(cast.admin, "methodology.register", {
                    "methodology_id": f"HB-M-{m:02}", "version": 1, "title": f"Methodology {m}", "sector": SECTORS[m % 3],
                    "params": {"g_per_unit": str(10 + m)}, "offset_eligible": m % 2 == 0}))
        for a in range(account_count):
            kind = "compliance_entity" if a % 10 == 0 else "platform" if a % 50 == 1 else "enterprise"
            account_id = f"acct-{a:07}"
            (self.accounts.entities if kind == "compliance_entity" else self.accounts.traders).append(account_id)
            if kind == "platform":
                self.accounts.platforms.append(account_id)
            setup.append(client.signed(cast.admin, "account.open", {
                "account_id": account_id, "kind": kind, "name": f"Account {a}", "region": REGIONS[a % len(REGIONS)],
                "controllers": [cast.holder.key_id], "platform": None}))
        for i in range(0, len(setup), 1000):
            _append(self.registry, setup[i:i + 1000], {})

    def _shipped_methodologies(self) -> list[dict[str, Any]]:
        """Every shipped methodology version, registered not offset eligible; of those without an
        illustrative factor (which never are), every other one's latest version made eligible after
        two experts' reviews, and the others' made eligible and turned off again (eligibility history)."""
        cast, client = self.cast, self.client
        events = []
        shipped = load_shipped()
        candidates = 0
        for methodology_id in sorted({m.methodology_id for m in shipped.all()}):
            versions = [register_body(v) for v in shipped.versions(methodology_id)]
            events += [client.signed(cast.admin, "methodology.register", {**body, "offset_eligible": False})
                       for body in versions]
            latest = versions[-1]
            if any(factor["illustrative"] for factor in latest["params"]["factors"].values()):
                self.accounts.other_methodologies.append(methodology_id)
                continue
            events += [client.signed(expert, "review", {
                "review_id": f"rev-{methodology_id}-{latest['version']}-{e}", "verdict": "approved",
                "report_sha256": hashlib.sha256(f"{methodology_id} {e}".encode()).hexdigest(),
                "target": {"kind": "methodology", "id": methodology_id, "version": latest["version"]}})
                for e, expert in enumerate(cast.experts)]
            eligible = candidates % 2 == 0
            candidates += 1
            for offset_eligible in (True,) if eligible else (True, False):
                events.append(client.signed(cast.admin, "methodology.eligibility", {
                    "methodology_id": methodology_id, "offset_eligible": offset_eligible, "version": latest["version"]}))
            (self.accounts.offset_methodologies if eligible else self.accounts.other_methodologies).append(methodology_id)
        return events

    def group(self, drawn: int, count: int) -> list[dict[str, Any]]:
        """`count` signed events (fewer if the month's batch does not fit), drawn against the current
        balances (a quarter of a balance at most, so that the group's own moves never overdraw)."""
        state = self.registry.state
        accounts = self.accounts
        spendable = {a: 0 if a in state.open_cases else state.accounts[a].active.size_g // 4
                     for a in (*accounts.traders, *accounts.entities)}
        unused: dict[str, list[Any]] = {"carbon_neutrality": [], "ets_offset": []}
        for retirement_id in self.rng.sample(sorted(state.retirements), min(len(state.retirements), 200)):
            retirement = state.retirements[retirement_id]
            if retirement.used_by is None and retirement.purpose in unused:
                unused[retirement.purpose].append(retirement)
        self.open_cases = {account: set(cases) for account, cases in state.open_cases.items()}
        signed = self._month_batch() if self.format2 and count >= 3 else []
        while len(signed) < count:
            signed += self._event(drawn + len(signed), count - len(signed), spendable, unused)
        return signed

    def _event(self, n: int, room: int, spendable: dict[str, int], unused: dict[str, list[Any]]) -> list[dict[str, Any]]:
        """One event, or two (format 2: an evidence issuance after its review) if there is room."""
        cast, client, rng, accounts = self.cast, self.client, self.rng, self.accounts
        roll = rng.random()
        source = _spender(accounts, spendable, rng)
        if self.format2 and roll < HOLD_BELOW:
            return [self._hold(n, spendable)]
        if (roll < ISSUANCE_SHARE or source is None) and (not self.format2 or room >= 2):
            to_entity = rng.random() < 0.2
            account = rng.choice(accounts.entities if to_entity else accounts.traders)
            methodologies = accounts.offset_methodologies + ([] if to_entity else accounts.other_methodologies)
            evidence = hashlib.sha256(f"evidence {n}".encode()).hexdigest() if self.format2 else EVIDENCE
            issuance = client.signed(cast.admin, "issuance", {
                "issuance_id": f"iss-{n}", "account": account, "methodology_id": rng.choice(methodologies),
                "vintage": 2025 + rng.randrange(2), "region": REGIONS[rng.randrange(len(REGIONS))],
                "amount_g": rng.randrange(10**6, 10**8), "batches": [], "evidence": evidence})
            return [self._review(f"rev-{n}", "evidence", evidence), issuance] if self.format2 else [issuance]
        if source is None:  # no room for a review and its issuance: an open hold released, or opened
            return [self._hold(n, spendable)]
        if roll < CLAIM_BELOW and unused["carbon_neutrality"]:
            retirement = unused["carbon_neutrality"].pop()
            return [client.signed(cast.holder, "neutrality.claim", {
                "claim_id": f"claim-{n}", "claimant": retirement.account,
                "subject": {"kind": "event", "name": f"Event {n}"}, "period_start": "2026-01-01",
                "period_end": "2026-01-02", "footprint_g": retirement.amount_g, "retirements": [retirement.retirement_id]})]
        if roll < SURRENDER_BELOW and unused["ets_offset"]:
            retirement = unused["ets_offset"].pop()
            return [client.signed(cast.ets, "offset.surrender", {
                "surrender_id": f"sur-{n}", "entity": retirement.account, "compliance_year": 2026,
                "allocation_g": 10**15, "retirements": [retirement.retirement_id]})]
        amount_g = rng.randrange(1, max(spendable[source] // 50, 2))
        spendable[source] -= amount_g
        if roll < CANCELLATION_BELOW:
            return [client.signed(cast.admin, "cancellation", self._spending({
                "cancellation_id": f"can-{n}", "account": source, "amount_g": amount_g, "reason": "data correction"}))]
        if roll < TRANSFER_BELOW and source not in accounts.entities:
            destination = rng.choice(accounts.traders)
            destination = destination if destination != source else accounts.traders[0 if source != accounts.traders[0] else 1]
            return [client.signed(cast.holder, "transfer", self._spending({
                "transfer_id": f"tr-{n}", "from": source, "to": destination, "amount_g": amount_g}))]
        purpose = "ets_offset" if source in accounts.entities else rng.choice([p for p in PURPOSES if p != "ets_offset"])
        return [client.signed(cast.holder, "retirement", self._spending({
            "retirement_id": f"ret-{n}", "account": source, "amount_g": amount_g, "purpose": purpose,
            "beneficiary": f"beneficiary {n % 997}"}))]

    def _spending(self, body: dict[str, Any]) -> dict[str, Any]:
        """Format 2's spends name the issuances they take from: any (null)."""
        return {**body, "issuances": None} if self.format2 else body

    def _review(self, review_id: str, kind: str, target_id: str) -> dict[str, Any]:
        return self.client.signed(self.cast.validator, "review", {
            "review_id": review_id, "verdict": "approved", "report_sha256": hashlib.sha256(review_id.encode()).hexdigest(),
            "target": {"kind": kind, "id": target_id, "version": None}})

    def _hold(self, n: int, spendable: dict[str, int]) -> dict[str, Any]:
        """Release an open case one time in three (if any is open), else open one on a trader,
        which spends nothing more in this group."""
        open_cases = self.open_cases
        if open_cases and self.rng.random() < RELEASE_SHARE:
            account = self.rng.choice(sorted(open_cases))
            case_id, held_now, reason = min(open_cases[account]), False, "the order was lifted"
            open_cases[account].discard(case_id)
            if not open_cases[account]:
                del open_cases[account]
        else:
            account, case_id, held_now, reason = self.rng.choice(self.accounts.traders), f"case-{n}", True, "a court order"
            open_cases.setdefault(account, set()).add(case_id)
            spendable[account] = 0
        return self.client.signed(self.cast.admin, "account.hold", {
            "hold_id": f"hold-{n}", "account_id": account, "held": held_now, "case_id": case_id, "reason": reason})

    def _month_batch(self) -> list[dict[str, Any]]:
        """Once the next group's time is in a new month: the last month's rides as a batch reported
        by a platform, a validator's review of it and its issuance to that platform."""
        month = self.clock.next_time.date().replace(day=1)
        if month == self.batched_month:
            return []
        assert self.rides is not None
        ridden, self.batched_month = self.batched_month, month
        records = self.rides.month(ridden)
        if not records:
            return []
        batch_id, platform = f"rides-{ridden:%Y-%m}", self.rng.choice(self.accounts.platforms)
        last_day = _next_month(ridden) - dt.timedelta(days=1)
        body = {"batch_id": batch_id, "platform": platform, "methodology_id": RIDE_METHODOLOGY,
                "methodology_version": self.rides.version, "period_start": ridden.isoformat(),
                "period_end": last_day.isoformat(), **batch_commitment(records)}
        self.pending_records[batch_id] = records
        return [self.client.signed(self.cast.holder, "activity.batch", body), self._review(f"rev-{batch_id}", "batch", batch_id),
                self.client.signed(self.cast.admin, "issuance", {
                    "issuance_id": f"iss-{batch_id}", "account": platform, "methodology_id": RIDE_METHODOLOGY,
                    "vintage": ridden.year,
                    "region": self.registry.state.accounts[platform].region, "amount_g": body["total_g"], "batches": [batch_id],
                    "evidence": None})]

    def records_of(self, event: dict[str, Any]) -> list[dict[str, Any]] | None:
        if event["type"] != "activity.batch":
            return None
        return self.pending_records.pop(event["body"]["batch_id"])


def _next_month(day: dt.date) -> dt.date:
    return (day.replace(day=28) + dt.timedelta(days=4)).replace(day=1)


def _key_body(actor: Actor, roles: list[str]) -> dict[str, Any]:
    return {"key_id": actor.key_id, "label": actor.label, "roles": roles,
            "public_key": base64.b64encode(bytes(actor.signer.public_key)).decode()}


def _append(registry: Registry, signed: list[dict[str, Any]], rejected: dict[str, int],
            records_of: Callable[[dict[str, Any]], Any] = lambda event: None) -> None:
    for result in registry.append_many([(event, records_of(event)) for event in signed]):
        if isinstance(result, Rejected):
            if result.code not in rejected:
                print(f"  rejected: {result.code}: {result.message}", file=sys.stderr)
            rejected[result.code] = rejected.get(result.code, 0) + 1


def build(directory: Path, events: int, group: int, seed: int, log_format: int) -> None:
    """A registry of about `events` events, with a checkpoint over all of them, and samples.json:
    ids of each kind for the id pages (format 2: and citizens' pseudonyms and openings for /me)."""
    admin = Actor(bench_key("admin"), "admin")
    RegistryDir(directory).init(ORIGIN, admin_public_key=admin.signer.public_key, strength="interactive",
                                passphrase=PASSPHRASE.encode(), log_format=log_format).close()
    registry_dir = RegistryDir(directory)
    groups = max(events // group, 1)
    clock = SimulatedClock(dt.datetime(2025, 11, 1, tzinfo=dt.timezone.utc), REGISTRY_SPAN / groups)
    registry = Registry.open(registry_dir.database_url(), log_signer=registry_dir.keyring.load("log", PASSPHRASE.encode()),
                             clock=clock)
    cast = Cast(admin, Actor(bench_key("holder"), "holder"), Actor(bench_key("ets"), "ets"),
                Actor(bench_key("validator"), "validator"), (Actor(bench_key("expert-1"), "expert-1"),
                                                             Actor(bench_key("expert-2"), "expert-2")))
    rng = random.Random(seed)
    root = Actor(registry_dir.keyring.load("root", PASSPHRASE.encode()), "root") if log_format == 2 else None
    history = History(registry, clock, cast, root, max(events // CITIZEN_EVENTS, 5), rng)
    if history.rides is not None:
        history.rides.sample_every = max(events // CITIZEN_EVENTS * RIDE_DAYS_A_YEAR // SAMPLE_IDS, 1)
    history.setup(max(events // 100, 20))
    rejected: dict[str, int] = {}
    started = time.perf_counter()
    drawn = 0  # events drawn so far: their ids' numbers
    while registry.size < events:
        count = min(group, events - registry.size)
        signed = history.group(drawn, count)
        drawn += len(signed)
        _append(registry, signed, rejected, history.records_of)
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
        "size": state.size, "log_format": log_format, "rejected": rejected,
    }
    if log_format == 2:
        assert history.rides is not None
        samples |= {"held_accounts": sorted(state.open_cases)[:SAMPLE_IDS],
                    "citizen_months": _citizen_months(history.rides, rng),
                    "rides": [ride._asdict() for ride in history.rides.sampled[:SAMPLE_IDS]],
                    "rides_logged": history.rides.count}
    registry.close()
    (directory / "samples.json").write_text(json.dumps(samples) + "\n")


def _citizen_months(rides: Rides, rng: random.Random) -> list[list[str]]:
    """A month's daily pseudonyms of citizens, as each would enter them on /me: of a real citizen,
    one asking in MISS_EVERY of a person with no rides, the months among those batched."""
    asked = []
    for n in range(SAMPLE_IDS):
        person = f"nobody-{n}" if n % MISS_EVERY == 0 else rng.choice(rides.citizens)
        first = rng.choice(rides.months or [dt.date(2025, 11, 1)])
        last = _next_month(first) - dt.timedelta(days=1)
        asked.append([p.subject for p in daily_pseudonyms(BENCH_KEYS.hub_key, person, first.isoformat(), last.isoformat())])
    return asked


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
    forms: list[dict[str, str]] | None = None  # POSTed, one per round, cycled (None: a GET)
    # Requested with every form before the rounds: /me's openings reach every batch of rides, whose
    # first proof reads and hashes the whole batch (kept in memory for the next, ledger.queries).
    warm_every_form: bool = False


def targets(samples: dict[str, Any]) -> list[Target]:
    seqs = samples["seqs"]
    format2 = []
    if samples.get("log_format", 1) == 2:
        format2 = [
            Target("/holds", ["/holds"]), Target("/holds?after=N", [f"/holds?after={seq}" for seq in seqs]),
            Target("/holds?account=A", [f"/holds?account={a}" for a in samples["held_accounts"]] or ["/holds"]),
            Target("/accounts/{held}", [f"/accounts/{a}" for a in samples["held_accounts"]] or ["/accounts/none"]),
            Target("/me", ["/me"]),
            Target("POST /me pseudonyms", ["/me"], [{"pseudonyms": " ".join(month)} for month in samples["citizen_months"]]),
            Target("POST /me opening", ["/me"], [{"activity_id": ride["activity_id"], "opening": ride["opening"]}
                                                 for ride in samples["rides"]], warm_every_form=True),
        ]
    return [*format2,
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
    """Request each page then GET /v1/status, `rounds` times after one round of warm-up (and every
    form of a warm_every_form target: its latencies are reported apart, as warm_up)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    latencies: dict[str, list[float]] = {t.name: [] for t in [*pages, Target(STATUS, [STATUS])]}
    failures: dict[str, dict[str, int]] = {}

    def get(name: str, path: str, record: bool, form: dict[str, str] | None = None) -> None:
        started = time.perf_counter()
        if form is None:
            connection.request("GET", path)
        else:
            connection.request("POST", path, urlencode(form), {"content-type": "application/x-www-form-urlencoded"})
        response = connection.getresponse()
        response.read()
        elapsed = time.perf_counter() - started
        if response.status != 200:
            by_status = failures.setdefault(name, {})
            by_status[str(response.status)] = by_status.get(str(response.status), 0) + 1
        if record:
            latencies[name].append(elapsed)
    warm_up: dict[str, list[float]] = {}
    for page in (page for page in pages if page.warm_every_form):
        for form in page.forms or []:
            started = time.perf_counter()
            get(page.name, page.paths[0], False, form)
            warm_up.setdefault(page.name, []).append(time.perf_counter() - started)
    for r in range(rounds + 1):
        for page in pages:
            get(page.name, page.paths[r % len(page.paths)], r > 0, page.forms[r % len(page.forms)] if page.forms else None)
            get(STATUS, STATUS, r > 0)
    connection.close()
    status = _percentiles(latencies[STATUS])
    report = {}
    for name, values in latencies.items():
        p = _percentiles(values)
        report[name] = {**p, "p50_ratio": round(p["p50_ms"] / status["p50_ms"], 2),
                        "p99_ratio": round(p["p99_ms"] / status["p99_ms"], 2), "under_50_ms_p99": p["p99_ms"] < 50}
    return {"pages": report, "failures": failures,
            "warm_up": {name: {**_percentiles(values), "max_ms": round(max(values) * 1000, 2),
                               "over_50_ms": sum(value > 0.05 for value in values),
                               # which of them, in the order sent (0: the server's first request of its kind)
                               "over_50_ms_at": [i for i, value in enumerate(values) if value > 0.05]}
                        for name, values in warm_up.items()}}


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
    parser.add_argument("--log-format", type=int, choices=(1, 2), default=2,
                        help="the registry's log format (2: every page, /holds and /me among them)")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "out")
    args = parser.parse_args()
    if not 100 <= args.events <= MAX_EVENTS or not 1 <= args.requests <= 100_000 or not 1 <= args.group <= 10_000:
        parser.error(f"--events from 100 to {MAX_EVENTS}, --requests from 1 to 100000, --group from 1 to 10000")
    directory = args.out / f"registry-f{args.log_format}-e{args.events}-s{args.seed}"
    built_s = None
    if not (directory / "samples.json").exists():
        shutil.rmtree(directory, ignore_errors=True)
        directory.parent.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        build(directory, args.events, args.group, args.seed, args.log_format)
        built_s = round(time.perf_counter() - started, 1)
    samples = json.loads((directory / "samples.json").read_text())
    port = free_port()
    server = start_server(directory, port, args.out / f"bench_pages-server-f{args.log_format}-e{args.events}.log",
                          start_timeout_s=900)
    try:
        result = measure(port, targets(samples), args.requests)
    finally:
        server.terminate()
        server.wait(60)
    report = {"events": samples["size"], "log_format": args.log_format, "rides": samples.get("rides_logged", 0),
              "rejected_when_built": samples["rejected"], "built_s": built_s,
              "requests_per_page": args.requests, "machine": platform.platform(), **result}
    (args.out / f"bench_pages-f{args.log_format}.json").write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
