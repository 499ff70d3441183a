"""Benchmark of `puhui-verify bundle` against what the same machine does at best.

    .venv/bin/python bench/bench_verify.py                      # format 2, 10^6 events, 10^7 records
    .venv/bin/python bench/bench_verify.py --events 20000 --records 200000   # a quick run
    .venv/bin/python bench/bench_verify.py --log-format 1       # the format-1 bundle of before

In one run it
1. generates (once; cached under bench/out/, one cache per format) a valid bundle of signed events
   and activity records, deterministic from --seed: keys, accounts, batches with their activity
   files, issuances, then transfers, retirements, surrenders and neutrality claims in a fixed
   cycle. In format 2 (the default) also the review quorum, the shipped HB-GT-METRO v1 reviewed by
   two experts before it is made offset eligible, a validator's review of every batch and evidence
   before its issuance, records as spec sections 7.2 to 7.4 say, and `issuances` on the spends;
2. measures the raw rates of this machine: Ed25519 verifications alone (PyNaCl, on all cores)
   and parsing plus hashing of activity records alone (json.loads + SHA-256, one core and all),
   on format-1 records whatever the bundle's format (for a format-2 bundle, the rate on its own
   records is printed too);
3. runs `puhui-verify bundle --json` on the bundle and reports events/s and records/s as ratios
   of those raw rates, and the peak memory (sampled over the verifier and its workers).

On a machine shared with other guests, a busy moment slows any one measurement by up to a quarter.
So every rate is taken at the machine's best, the same way for both sides: the raw rates are
measured before, between and after the verifier's runs and the highest kept, and each verifier
run is made --repeat times (default 2) and the fastest kept. All runs are listed in the result.

Events/s is the events over the wall time of a run on the log alone (the same bundle without its
activities directory: the batches are then only warned about); records/s is the records over the
extra wall time the full bundle takes. (The verifier's own `activity_seconds` is not used: while
it reads an activity file, its workers are still checking the signatures of the chunks sent before,
so that time holds event work too.)
"""

import argparse
import base64
import bisect
import hmac
import json
import multiprocessing
import os
import resource
import subprocess
import sys
import time
from hashlib import sha256
from typing import NamedTuple

import nacl.bindings
import nacl.signing

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from verifier.canonical import jcs  # noqa: E402
from verifier.leaves import event_message  # noqa: E402
from verifier.merkle import MerkleAccumulator, leaf_hash  # noqa: E402
from verifier.notes import ED25519, checkpoint_body, format_signature_line, format_verifier_key, note_key_hash  # noqa: E402
from verifier.signatures import key_id_of  # noqa: E402

from ledger.definitions import compile_definition  # noqa: E402
from quantify.methodology import load_shipped, register_body  # noqa: E402

ORIGIN = "registry.bench.example/puhui"
ENTERPRISES = 1000
COMPLIANCE_ENTITIES = 100
RECORDS_PER_BATCH = 100_000
EVENTS_PER_CHECKPOINT = 100_000
SIGN_CHUNK = 5_000


def signing_key(seed, label):
    return nacl.signing.SigningKey(sha256(f"puhui-bench/{seed}/{label}".encode()).digest())


# -- generation: activity files (one process per batch) ---------------------------------------------


def write_activity_file(job):
    """Write one batch's records; return its count, total and Merkle root."""
    path, seed, batch_id, month, count = job
    merkle = MerkleAccumulator()
    total_g = 0
    lines = []
    with open(path, "wb") as handle:
        for n in range(count):
            reduction_g = 10 + n % 21
            total_g += reduction_g
            fingerprint = sha256(f"{seed}/{batch_id}/{n}".encode()).hexdigest()
            line = (
                f'{{"activity_id":"{batch_id}-{n:07d}","fingerprint":"{fingerprint}",'
                f'"inputs":{{"distance_m":{1000 + n % 5000},"mode":"metro"}},'
                f'"occurred_at":"2026-{month:02d}-{1 + n % 28:02d}T08:{n // 60 % 60:02d}:{n % 60:02d}.000000Z",'
                f'"reduction_g":{reduction_g},"subject":"p-{n % 100_000:06d}"}}'
            ).encode()
            merkle.append(leaf_hash(line))
            lines.append(line)
            if len(lines) == 10_000:
                handle.write(b"\n".join(lines) + b"\n")
                lines = []
        if lines:
            handle.write(b"\n".join(lines) + b"\n")
    return batch_id, count, total_g, merkle.root().hex()


# -- generation: format-2 activity files (spec sections 7.2 to 7.4) --------------------------------
#
# Records of HB-GT-METRO v1 as the shipped library defines it, made the way section 7.4 recommends:
# daily pseudonyms from a hub key, fingerprints keyed by the scheme's secret, only the public input
# (distance_m) in the record, the stations and the minute committed in private_sha256, and
# reduction_g by section 7.2 with the daily cap. Each day, a batch's people take 1 to 4 trips at
# distinct hours, written in order of time (everyone's first trip, then everyone's second...), so a
# person's records of a day are spread over the file as a platform's would be. The people of each
# batch are its own (no subject is in two batches), so each batch is generated alone in a process;
# salts come from the seed, not from a random source, so that the bundle is the same every time.

METHODOLOGY_ID = "HB-GT-METRO"
DAYS_PER_BATCH = 28  # a batch's period is the 1st to the 28th of its month, as in format 1
MOST_TRIPS_PER_DAY = 4
BYTES_PER_TRIP = 6
FINGERPRINT_PREFIX = b"puhui-fingerprint/v2\n"


class Metro(NamedTuple):
    register_body: dict  # the shipped version's methodology.register body (without request_id)
    definition: object  # ledger.definitions.Definition: reduction_g of section 7.2


_METRO = []


def metro():
    """HB-GT-METRO v1 of the shipped library, checked to have the inputs the records below carry."""
    if not _METRO:
        body = register_body(load_shipped().get(METHODOLOGY_ID, 1))
        params = body["params"]
        public = {name for name, spec in params["inputs"].items() if spec["public"]}
        if public != {"distance_m"} or set(params["inputs"]) != {"distance_m", "entry_station", "exit_station"}:
            sys.exit(f"the shipped {METHODOLOGY_ID} v1 no longer has the inputs this bench writes")
        _METRO.append(Metro(body, compile_definition(METHODOLOGY_ID, 1, params)))
    return _METRO[0]


class SchemeKeys(NamedTuple):
    hub: bytes  # the identity hub's key: daily pseudonyms
    fingerprint: bytes  # the scheme-wide fingerprint secret


def scheme_keys(seed):
    return SchemeKeys(sha256(f"puhui-bench/{seed}/hub-key".encode()).digest(), sha256(f"puhui-bench/{seed}/fingerprint-key".encode()).digest())


class Trip(NamedTuple):
    occurred_at: str  # UTC, at Beijing hours 08 to 19, so that its Beijing date is the UTC date
    distance_m: int
    entry_station: str
    exit_station: str


def day_trips(seed, batch_id, day, person):
    """One person's metro trips of one day, at distinct hours, drawn from the seed."""
    draw = sha256(f"{seed}/{batch_id}/{day}/{person}".encode()).digest()
    trips = []
    for n in range(1 + draw[0] % MOST_TRIPS_PER_DAY):
        b = draw[1 + BYTES_PER_TRIP * n : 1 + BYTES_PER_TRIP * (n + 1)]
        utc_hour = 3 * n + b[0] % 3  # Beijing 08:00 + 3n .. 10:59 + 3n
        trips.append(
            Trip(
                f"{day}T{utc_hour:02d}:{b[1] % 60:02d}:{b[2] % 60:02d}.000000Z",
                1000 + int.from_bytes(b[3:5], "big") % 20_000,
                f"L{1 + b[5] % 8}-{b[4] % 30:02d}",
                f"L{1 + b[3] % 8}-{b[5] // 8 % 30:02d}",
            )
        )
    return trips


class Credit(NamedTuple):
    subject: str
    trip: Trip
    reduction_g: int


def day_credits(seed, batch_id, day, quota, definition, hub_key):
    """The day's `quota` records in file order (by trip round), each credited by section 7.2: a
    record that finds no room under the daily cap is dropped, as the spec says a platform should."""
    rounds = [[] for _ in range(MOST_TRIPS_PER_DAY)]
    person = 0
    while quota:
        subject = hmac.digest(hub_key, f"{batch_id}-p{person}|{day}".encode(), "sha256")[:16].hex()
        credited_g = 0
        for n, trip in enumerate(day_trips(seed, batch_id, day, person)):
            reduction_g = definition.reduction_g({"distance_m": trip.distance_m}, credited_g)
            if reduction_g == 0 or quota == 0:
                break
            credited_g += reduction_g
            quota -= 1
            rounds[n].append(Credit(subject, trip, reduction_g))
        person += 1
    return [credit for trips in rounds for credit in trips]


def record_line(activity_id, credit, day, seed, fingerprint_key):
    """A record's JCS bytes (the key order and spelling of JCS, written directly)."""
    subject, trip, reduction_g = credit
    salt = base64.b64encode(sha256(f"{seed}/salt/{activity_id}".encode()).digest()[:16]).decode()
    opening = f'{{"fields":{{"entry_station":"{trip.entry_station}","exit_station":"{trip.exit_station}","occurred_at":"{trip.occurred_at}"}},"salt":"{salt}"}}'
    act = f'{{"fields":{{"entry_station":"{trip.entry_station}","exit_station":"{trip.exit_station}"}},"methodology_id":"{METHODOLOGY_ID}","subject":"{subject}","time":"{trip.occurred_at[:16]}Z"}}'
    fingerprint = hmac.digest(fingerprint_key, FINGERPRINT_PREFIX + act.encode(), "sha256").hex()
    return (
        f'{{"activity_id":"{activity_id}","fingerprint":"{fingerprint}","inputs":{{"distance_m":{trip.distance_m}}},'
        f'"occurred_on":"{day}","private_sha256":"{sha256(opening.encode()).hexdigest()}","reduction_g":{reduction_g},"subject":"{subject}"}}'
    ).encode()


def write_activity_file_v2(job):
    """Write one format-2 batch's records; return its count, total and Merkle root."""
    path, seed, batch_id, month, count = job
    definition = metro().definition
    keys = scheme_keys(seed)
    merkle = MerkleAccumulator()
    total_g = 0
    number = 0
    with open(path, "wb") as handle:
        for index in range(DAYS_PER_BATCH):
            day = f"2026-{month:02d}-{index + 1:02d}"
            quota = count * (index + 1) // DAYS_PER_BATCH - count * index // DAYS_PER_BATCH
            lines = []
            for credit in day_credits(seed, batch_id, day, quota, definition, keys.hub):
                line = record_line(f"{batch_id}-{number:07d}", credit, day, seed, keys.fingerprint)
                number += 1
                total_g += credit.reduction_g
                merkle.append(leaf_hash(line))
                lines.append(line)
            if lines:
                handle.write(b"\n".join(lines) + b"\n")
    return batch_id, count, total_g, merkle.root().hex()


# -- generation: events (signed in a process pool, written in order) ----------------------------------


_KEYS = {}


def sign_events(job):
    """Sign and serialize a chunk of events: [(seq, time, type, body, effects, signer label)]."""
    seed, log_format, events = job
    lines = []
    for seq, when, event_type, body, effects, label in events:
        key = _KEYS.get(label)
        if key is None:
            key = _KEYS[label] = signing_key(seed, label)
        signature = key.sign(event_message(ORIGIN, event_type, body, log_format)).signature
        leaf = {
            "auth": {"key": key_id_of(bytes(key.verify_key)), "sig": base64.b64encode(signature).decode()},
            "body": body,
            "seq": seq,
            "time": when,
            "type": event_type,
        }
        if effects is not None:
            leaf["effects"] = {"serials": effects}
        lines.append(jcs(leaf))
    return b"\n".join(lines) + b"\n"


class EventPlan:
    """The events of the bench log, built in order with a simple model of holdings."""

    def __init__(self, seed, log_format):
        self.seed = seed
        self.log_format = log_format
        self.events = []
        self.seq = 0
        self.next_serial = 0
        self.holdings = {}  # account -> list of [start, end], lowest first
        self.issuance_starts = []  # the first serial of each issuance, in order (they only grow)
        self.issuance_ids = []

    def issuances_of(self, ranges):
        """The ids of the issuances whose ranges hold these serials, in issuance order (format 2's
        `issuances` of a spend: the serials taken are the lowest held, so also the lowest held of
        those issuances)."""
        indexes = set()
        for start, end in ranges:
            first = bisect.bisect_right(self.issuance_starts, start) - 1
            indexes.update(range(first, bisect.bisect_right(self.issuance_starts, end - 1)))
        return [self.issuance_ids[index] for index in sorted(indexes)]

    def public_b64(self, label):
        return base64.b64encode(bytes(signing_key(self.seed, label).verify_key)).decode()

    def key_id(self, label):
        return key_id_of(bytes(signing_key(self.seed, label).verify_key))

    def add(self, event_type, body, label, effects=None):
        body["request_id"] = f"r{self.seq}"
        when = f"2026-04-{1 + self.seq // 86_400_000_000 % 28:02d}T{self.seq // 3_600_000_000 % 24:02d}:{self.seq // 60_000_000 % 60:02d}:{self.seq // 1_000_000 % 60:02d}.{self.seq % 1_000_000:06d}Z"
        self.events.append((self.seq, when, event_type, body, effects, label))
        self.seq += 1

    def take(self, account, amount_g):
        taken, held = [], self.holdings[account]
        while amount_g:
            start, end = held[0]
            step = min(amount_g, end - start)
            taken.append([start, start + step])
            amount_g -= step
            if start + step == end:
                held.pop(0)
            else:
                held[0][0] = start + step
        return taken

    def give(self, account, ranges):
        held = self.holdings.setdefault(account, [])
        for start, end in ranges:
            if held and held[-1][1] == start:
                held[-1][1] = end
            else:
                held.append([start, end])
                held.sort()

    def held_g(self, account):
        return sum(end - start for start, end in self.holdings.get(account, []))


REVIEW_QUORUM = {"issuance": 1, "eligibility": 2}  # Hubei's, as `puhui init` writes them
EXPERTS = ("expert-1", "expert-2")


def setup_events(plan):
    rules = {"offset_cap_ppm": 100_000, "offset_regions": ["42"], "offset_vintage_years": 3}
    if plan.log_format == 1:
        plan.add("registry.genesis", {"origin": ORIGIN, "name": "bench registry", "rules": rules}, "root")
    else:
        plan.add("registry.genesis", {"origin": ORIGIN, "name": "bench registry", "rules": {**rules, "review_quorum": REVIEW_QUORUM}, "format": 2}, "root")
    plan.add("key.register", {"key_id": plan.key_id("admin"), "public_key": plan.public_b64("admin"), "roles": ["admin"], "label": "admin"}, "root")
    if plan.log_format == 2:  # only root grants the reviewing roles
        for label, role in [("validator", "validator")] + [(expert, "expert") for expert in EXPERTS]:
            plan.add("key.register", {"key_id": plan.key_id(label), "public_key": plan.public_b64(label), "roles": [role], "label": label}, "root")
    for label, roles in [("platform", ["platform"]), ("ets", ["ets"])] + [(f"ent-{n:04d}", []) for n in range(ENTERPRISES)] + [(f"ce-{n:03d}", []) for n in range(COMPLIANCE_ENTITIES)]:
        plan.add("key.register", {"key_id": plan.key_id(label), "public_key": plan.public_b64(label), "roles": roles, "label": label}, "admin")
    accounts = [("wuhan-platform", "platform", "platform")]
    accounts += [(f"ent-{n:04d}", "enterprise", f"ent-{n:04d}") for n in range(ENTERPRISES)]
    accounts += [(f"ce-{n:03d}", "compliance_entity", f"ce-{n:03d}") for n in range(COMPLIANCE_ENTITIES)]
    for account_id, kind, controller in accounts:
        plan.holdings[account_id] = []
        plan.add("account.open", {"account_id": account_id, "kind": kind, "name": account_id, "region": "420100", "controllers": [plan.key_id(controller)], "platform": None}, "admin")
    if plan.log_format == 1:
        plan.add("methodology.register", {"methodology_id": "HB-GT-METRO", "version": 1, "title": "Urban rail trips", "sector": "green_travel", "params": {"g_per_km": "0.0784"}, "offset_eligible": True}, "admin")
        return
    # Registered not eligible, reviewed by the expert panel, then admitted to offsets (spec 6).
    plan.add("methodology.register", {**metro().register_body, "offset_eligible": False}, "admin")
    for expert in EXPERTS:
        review(plan, f"rv-{METHODOLOGY_ID}-1-{expert}", {"kind": "methodology", "id": METHODOLOGY_ID, "version": 1}, expert)
    plan.add("methodology.eligibility", {"methodology_id": METHODOLOGY_ID, "version": 1, "offset_eligible": True}, "admin")


def review(plan, review_id, target, label="validator"):
    plan.add("review", {"review_id": review_id, "target": {"version": None, **target}, "verdict": "approved", "report_sha256": sha256(review_id.encode()).hexdigest()}, label)


def batch_events(plan, batch):
    batch_id, count, total_g, root, month = batch
    last_day = 28
    plan.add("activity.batch", {"batch_id": batch_id, "platform": "wuhan-platform", "methodology_id": "HB-GT-METRO", "methodology_version": 1, "period_start": f"2026-{month:02d}-01", "period_end": f"2026-{month:02d}-{last_day}", "count": count, "total_g": total_g, "root": root}, "platform")
    if plan.log_format == 2:
        review(plan, f"rv-{batch_id}", {"kind": "batch", "id": batch_id})
    issue(plan, f"iss-{batch_id}", total_g, [batch_id])


def issue(plan, issuance_id, amount_g, batches):
    effects = [[plan.next_serial, plan.next_serial + amount_g]]
    plan.issuance_starts.append(plan.next_serial)
    plan.issuance_ids.append(issuance_id)
    plan.next_serial += amount_g
    plan.give("wuhan-platform", effects)
    evidence = None if batches else sha256(issuance_id.encode()).hexdigest()
    if evidence is not None and plan.log_format == 2:
        review(plan, f"rv-{issuance_id}", {"kind": "evidence", "id": evidence})
    body = {"issuance_id": issuance_id, "account": "wuhan-platform", "methodology_id": "HB-GT-METRO", "vintage": 2026, "region": "420100", "amount_g": amount_g, "batches": batches, "evidence": evidence}
    plan.add("issuance", body, "admin", effects)


CYCLE_OUTFLOW_G = 1_500  # grams the platform gives out per cycle of eight events


def cycle_events(plan, n):
    ent_a, ent_b = f"ent-{n % ENTERPRISES:04d}", f"ent-{(n * 7 + 1) % ENTERPRISES:04d}"
    if ent_a == ent_b:
        ent_b = f"ent-{(n + 1) % ENTERPRISES:04d}"
    entity = f"ce-{n % COMPLIANCE_ENTITIES:03d}"

    def chosen(body, effects, choose):
        """Format 2's `issuances` of a spend: the sources named (choose), or null for any."""
        if plan.log_format == 2:
            body["issuances"] = plan.issuances_of(effects) if choose else None
        return body

    def transfer(sender, recipient, amount_g, label, choose=False):
        effects = plan.take(sender, amount_g)
        plan.give(recipient, effects)
        plan.add("transfer", chosen({"transfer_id": f"tr-{plan.seq}", "from": sender, "to": recipient, "amount_g": amount_g}, effects, choose), label, effects)

    def retire(account, amount_g, purpose, choose=False):
        retirement_id = f"ret-{plan.seq}"
        effects = plan.take(account, amount_g)
        plan.add("retirement", chosen({"retirement_id": retirement_id, "account": account, "amount_g": amount_g, "purpose": purpose, "beneficiary": account}, effects, choose), account, effects)
        return retirement_id

    transfer("wuhan-platform", ent_a, 1_000, "platform", choose=True)
    transfer(ent_a, ent_b, 300, ent_a)
    retire(ent_b, 100, "voluntary")
    neutral = retire(ent_a, 200, "carbon_neutrality")
    plan.add("neutrality.claim", {"claim_id": f"claim-{plan.seq}", "claimant": ent_a, "subject": {"kind": "organization", "name": ent_a}, "period_start": "2026-01-01", "period_end": "2026-03-31", "footprint_g": 200, "retirements": [neutral]}, ent_a)
    transfer("wuhan-platform", entity, 500, "platform")
    offset = retire(entity, 400, "ets_offset", choose=True)
    plan.add("offset.surrender", {"surrender_id": f"sur-{plan.seq}", "entity": entity, "compliance_year": 2026, "allocation_g": 10**12, "retirements": [offset]}, "ets")


def generate_bundle(directory, events, records, seed, jobs, log_format=1):
    """Write the bench bundle (a log of format 1 or 2) and its trust file; returns the trust file's path."""
    os.makedirs(os.path.join(directory, "activities"), exist_ok=True)
    batch_count = max(1, -(-records // RECORDS_PER_BATCH))
    batch_jobs = []
    for index in range(batch_count):
        count = min(RECORDS_PER_BATCH, records - index * RECORDS_PER_BATCH)
        batch_id = f"b{index:05d}"
        batch_jobs.append((os.path.join(directory, "activities", batch_id + ".jsonl"), seed, batch_id, 1 + index % 12, count))
    with multiprocessing.get_context("fork").Pool(jobs) as pool:
        months = {job[2]: job[3] for job in batch_jobs}
        write = write_activity_file if log_format == 1 else write_activity_file_v2
        batches = [(batch_id, count, total_g, root, months[batch_id]) for batch_id, count, total_g, root in pool.imap(write, batch_jobs)]

        plan = EventPlan(seed, log_format)
        log_key = signing_key(seed, "log")
        merkle = MerkleAccumulator()
        notes = []
        with open(os.path.join(directory, "log.jsonl"), "wb") as log:

            def flush():
                """Sign what is planned so far (in the pool), write it, and forget it."""
                chunks = [(seed, log_format, plan.events[start : start + SIGN_CHUNK]) for start in range(0, len(plan.events), SIGN_CHUNK)]
                for block in pool.imap(sign_events, chunks):
                    log.write(block)
                    for line in block.split(b"\n")[:-1]:
                        merkle.append(leaf_hash(line))
                        if merkle.size % EVENTS_PER_CHECKPOINT == 0:
                            notes.append(checkpoint_note(log_key, merkle.size, merkle.root()))
                plan.events.clear()

            setup_events(plan)
            cycles = 0
            pending_batches = list(batches)
            while plan.seq < events:
                # Spread the batches over the log; top up the platform when it runs low.
                due = len(batches) - len(pending_batches) < len(batches) * plan.seq / events
                if pending_batches and (due or plan.held_g("wuhan-platform") < CYCLE_OUTFLOW_G):
                    batch_events(plan, pending_batches.pop(0))
                elif plan.held_g("wuhan-platform") < CYCLE_OUTFLOW_G:
                    issue(plan, f"iss-evidence-{plan.seq}", 10 * CYCLE_OUTFLOW_G, [])
                cycle_events(plan, cycles)
                cycles += 1
                if len(plan.events) >= 10 * SIGN_CHUNK:
                    flush()
            for batch in pending_batches:
                batch_events(plan, batch)
            flush()
    if merkle.size % EVENTS_PER_CHECKPOINT:
        notes.append(checkpoint_note(log_key, merkle.size, merkle.root()))
    with open(os.path.join(directory, "checkpoints.jsonl"), "w") as handle:
        for note in notes:
            handle.write(json.dumps({"note": note}) + "\n")
    with open(os.path.join(directory, "manifest.json"), "w") as handle:
        json.dump({"format": f"puhui-bundle/{log_format}", "origin": ORIGIN, "tree_size": merkle.size, "root": merkle.root().hex()}, handle)
    trust_path = os.path.join(directory, "trust.json")
    with open(trust_path, "w") as handle:
        json.dump(
            {
                "origin": ORIGIN,
                "log_key": format_verifier_key(ORIGIN, ED25519, bytes(log_key.verify_key)),
                "root_keys": [base64.b64encode(bytes(signing_key(seed, "root").verify_key)).decode()],
            },
            handle,
        )
    return trust_path


def checkpoint_note(log_key, size, root):
    body = checkpoint_body(ORIGIN, size, root)
    signature = log_key.sign(body.encode()).signature
    return body + "\n" + format_signature_line(ORIGIN, note_key_hash(ORIGIN, ED25519, bytes(log_key.verify_key)) + signature)


# -- raw rates of this machine ----------------------------------------------------------------------

_SAMPLE = []


def _verify_share(bounds):
    start, end = bounds
    started = time.process_time()
    for public_key, signed in _SAMPLE[start:end]:
        nacl.bindings.crypto_sign_open(signed, public_key)
    return end - start, time.process_time() - started


def _parse_hash_share(bounds):
    start, end = bounds
    started = time.process_time()
    for line in _SAMPLE[start:end]:
        json.loads(line)
        sha256(b"\x00" + line).digest()
    return end - start, time.process_time() - started


CPU_PER_ITEM = {}  # work -> the least CPU seconds per item seen (load barely changes it)


def _rate_on_processes(work, count, processes):
    """Items per second doing `work` over _SAMPLE split across processes (the pool already up)."""
    shares = [(count * n // processes, count * (n + 1) // processes) for n in range(processes)]
    with multiprocessing.get_context("fork").Pool(processes) as pool:
        pool.map(work, [(0, 1)] * processes)  # warm up
        started = time.perf_counter()
        results = pool.map(work, shares)
        elapsed = time.perf_counter() - started
    done = sum(items for items, _ in results)
    cpu = sum(seconds for _, seconds in results) / done
    CPU_PER_ITEM[work.__name__] = min(cpu, CPU_PER_ITEM.get(work.__name__, cpu))
    return done / elapsed


def raw_verify_rate(jobs, count=40_000):
    key = nacl.signing.SigningKey(sha256(b"raw-rate").digest())
    public_key = bytes(key.verify_key)
    _SAMPLE[:] = [(public_key, bytes(key.sign(sha256(str(n).encode()).digest() * 11))) for n in range(count)]
    return _rate_on_processes(_verify_share, count, jobs)


def raw_parse_hash_rates(activity_file, jobs, count=400_000):
    with open(activity_file, "rb") as handle:
        lines = handle.read(count * 400).split(b"\n")[:-1]  # whole lines only
    _SAMPLE[:] = (lines * (count // len(lines) + 1))[:count]
    single = _rate_on_processes(_parse_hash_share, count, 1)
    return single, _rate_on_processes(_parse_hash_share, count, jobs)


# -- the verifier run -----------------------------------------------------------------------------


def tree_rss_kib(pid):
    """Resident memory of a process and its children (from /proc), in KiB."""
    total = 0
    pids = [pid]
    try:
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                with open(f"/proc/{entry}/stat") as handle:
                    if int(handle.read().rsplit(")", 1)[1].split()[1]) == pid:
                        pids.append(int(entry))
    except OSError:
        pass
    for member in pids:
        try:
            with open(f"/proc/{member}/status") as handle:
                for line in handle:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


CPU_OF_RUN = {}  # bundle -> the least CPU seconds of the verifier and its workers over its runs


def run_verifier(bundle, trust, jobs):
    command = [sys.executable, "-m", "verifier.cli", "bundle", bundle, "--trust", trust, "--json", "--jobs", str(jobs)]
    started = time.perf_counter()
    usage_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    peak_kib = 0
    while process.poll() is None:
        peak_kib = max(peak_kib, tree_rss_kib(process.pid))
        time.sleep(0.2)
    wall = time.perf_counter() - started
    usage_after = resource.getrusage(resource.RUSAGE_CHILDREN)  # the verifier and its workers
    cpu_seconds = sum(getattr(usage_after, name) - getattr(usage_before, name) for name in ("ru_utime", "ru_stime"))
    CPU_OF_RUN[bundle] = min(cpu_seconds, CPU_OF_RUN.get(bundle, cpu_seconds))
    stdout, stderr = process.communicate()
    if process.returncode != 0:
        sys.exit(f"puhui-verify exited {process.returncode} on the bench bundle:\n{stderr.decode()[-2000:]}{stdout.decode()[:2000]}")
    return json.loads(stdout), wall, peak_kib


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--records", type=int, default=10_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--log-format", type=int, choices=(1, 2), default=2, help="the bundle's log format (default 2)")
    parser.add_argument("--jobs", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--out", default=os.path.join(REPO, "bench", "out"))
    parser.add_argument("--repeat", type=int, default=2, help="runs of the verifier on each bundle; the fastest is kept (default 2)")
    arguments = parser.parse_args()
    if not 1_000 <= arguments.events <= 10**8 or not 1 <= arguments.records <= 10**9:
        parser.error("--events must be 1000..10^8 and --records 1..10^9")
    if not 1 <= arguments.repeat <= 10:
        parser.error("--repeat must be 1..10")

    sizes = f"{'' if arguments.log_format == 1 else 'f2-'}e{arguments.events}-r{arguments.records}-s{arguments.seed}"
    bundle = os.path.join(arguments.out, f"bundle-{sizes}")
    trust = os.path.join(bundle, "trust.json")
    if not os.path.exists(os.path.join(bundle, "complete")):
        print(f"generating {bundle} ...", file=sys.stderr)
        started = time.perf_counter()
        generate_bundle(bundle, arguments.events, arguments.records, arguments.seed, arguments.jobs, arguments.log_format)
        open(os.path.join(bundle, "complete"), "w").close()
        print(f"generated in {time.perf_counter() - started:.0f} s", file=sys.stderr)

    # Events are timed on the log alone: a directory holding only the log and the checkpoints.
    log_only = bundle + "-log-only"
    os.makedirs(log_only, exist_ok=True)
    for name in ("log.jsonl", "checkpoints.jsonl"):
        if not os.path.exists(os.path.join(log_only, name)):
            os.symlink(os.path.join(bundle, name), os.path.join(log_only, name))

    # The raw parse-and-hash rate is the same for both formats: measured on format-1 records (the
    # issue's "the same raw rate as today"). For a format-2 bundle they are the first batch of the
    # format-1 bundle of the same seed, written beside it; the rate on its own (longer) records is
    # reported too, for information.
    sample_file = os.path.join(bundle, "activities", "b00000.jsonl")
    if arguments.log_format == 2:
        own_sample_file, sample_file = sample_file, os.path.join(bundle, "format1-sample.jsonl")
        if not os.path.exists(sample_file):
            write_activity_file((sample_file, arguments.seed, "b00000", 1, min(arguments.records, RECORDS_PER_BATCH)))
    load_before = os.getloadavg()[0]
    # Raw rates before, between and after the two verifier runs, the best of each kept: on a shared
    # machine a busy moment lowers a rate, and the honest comparison is with the machine at its best.
    verify_rates, parse_rates, own_parse_rates = [], [], []

    def measure_raw():
        verify_rates.append(raw_verify_rate(arguments.jobs))
        parse_rates.append(raw_parse_hash_rates(sample_file, arguments.jobs))
        if arguments.log_format == 2:
            own_parse_rates.append(raw_parse_hash_rates(own_sample_file, arguments.jobs)[1])

    # The verifier is held to the same rule: each of its two runs is made --repeat times, the raw
    # rates measured before, between and after them, and the fastest of each kept.
    log_runs, full_runs = [], []
    measure_raw()
    for _ in range(arguments.repeat):
        log_runs.append(run_verifier(log_only, trust, arguments.jobs))
        measure_raw()
        full_runs.append(run_verifier(bundle, trust, arguments.jobs))
        measure_raw()
    log_report, log_wall, _ = min(log_runs, key=lambda run: run[1])
    report, wall, _ = min(full_runs, key=lambda run: run[1])
    log_peak_kib = max(run[2] for run in log_runs)
    sampled_peak_kib = max(run[2] for run in full_runs)
    verify_rate = max(verify_rates)
    parse_single = max(single for single, _ in parse_rates)
    parse_all = max(every for _, every in parse_rates)
    load_after = os.getloadavg()[0]
    stats = report["stats"]
    if log_report["violations"] or log_report["tree_size"] != report["tree_size"]:
        sys.exit("the log-only run did not verify the same log")
    events_per_s = stats["events"] / log_wall
    records_per_s = stats["activity_records"] / (wall - log_wall)
    result = {
        "command": " ".join(["bench/bench_verify.py", f"--log-format {arguments.log_format}", f"--events {arguments.events}", f"--records {arguments.records}", f"--seed {arguments.seed}", f"--jobs {arguments.jobs}", f"--repeat {arguments.repeat}"]),
        "log_format": report["log_format"],
        "cores": arguments.jobs,
        "valid": report["valid"],
        "events": stats["events"],
        "activity_records": stats["activity_records"],
        "wall_s": round(wall, 1),
        "wall_log_only_s": round(log_wall, 1),
        "wall_runs_log_only_then_full_s": [[round(run[1], 1) for run in log_runs], [round(run[1], 1) for run in full_runs]],
        "activity_s": round(wall - log_wall, 1),
        "events_per_s": round(events_per_s),
        "raw_parallel_verify_per_s": round(verify_rate),
        "raw_parallel_verify_samples": [round(rate) for rate in verify_rates],
        "events_ratio": round(events_per_s / verify_rate, 3),
        "records_per_s": round(records_per_s),
        "raw_parse_hash_per_s_one_core": round(parse_single),
        "raw_parse_hash_per_s_all_cores": round(parse_all),
        "raw_parse_hash_samples_one_all": [[round(single), round(every)] for single, every in parse_rates],
        "records_ratio_one_core": round(records_per_s / parse_single, 3),
        **({"raw_parse_hash_per_s_all_cores_own_records": round(max(own_parse_rates))} if own_parse_rates else {}),
        "records_ratio_all_cores": round(records_per_s / parse_all, 3),
        # CPU time per item, which load on a shared machine barely changes: with the cores to
        # itself, the wall ratios above would approach these (the raw loops are all CPU).
        "cpu_us_per_event": round(CPU_OF_RUN[log_only] / stats["events"] * 1e6, 1),
        "raw_cpu_us_per_verify": round(CPU_PER_ITEM["_verify_share"] * 1e6, 1),
        "events_cpu_ratio": round(CPU_PER_ITEM["_verify_share"] * stats["events"] / CPU_OF_RUN[log_only], 3),
        "cpu_us_per_record": round((CPU_OF_RUN[bundle] - CPU_OF_RUN[log_only]) / stats["activity_records"] * 1e6, 2),
        "raw_cpu_us_per_parse_hash": round(CPU_PER_ITEM["_parse_hash_share"] * 1e6, 2),
        "records_cpu_ratio": round(CPU_PER_ITEM["_parse_hash_share"] * stats["activity_records"] / (CPU_OF_RUN[bundle] - CPU_OF_RUN[log_only]), 3),
        "peak_rss_sampled_mib": round(max(sampled_peak_kib, log_peak_kib) / 1024),
        "peak_rss_main_mib": round(stats["peak_rss_main_kib"] / 1024),
        "peak_rss_workers_mib": [round(kib / 1024) for kib in stats["peak_rss_workers_kib"]],
        "load_average_before_after": [load_before, load_after],
    }
    print(json.dumps(result, indent=1))
    with open(os.path.join(arguments.out, f"result-{sizes}.json"), "w") as handle:
        json.dump(result, handle, indent=1)


if __name__ == "__main__":
    main()
