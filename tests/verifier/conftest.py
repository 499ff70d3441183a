"""Fixtures for the verifier's tests: a small registry written by hand (signed with test keys from
fixed seeds), bundles written from it, and RFC 9162 proofs to build receipts.

The builder signs whatever it is told: tests make valid histories, then add or alter events to
break exactly one rule. It never imports ledger/: the verifier must pass on bytes built from the
spec alone (the ledger's own export is tested against the verifier by the ledger's tests)."""

import base64
import json
import os
import subprocess
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from hashlib import sha256

import nacl.signing
import pytest
from spec_paths import SPEC

from verifier.bundle import verify_bundle
from verifier.canonical import jcs
from verifier.leaves import event_message
from verifier.merkle import leaf_hash, root_of
from verifier.notes import COSIGNATURE, ED25519, checkpoint_body, cosigned_message, format_signature_line, format_verifier_key, note_key_hash
from verifier.signatures import key_id_of
from verifier.trust import parse_trust

ORIGIN = "registry.test.example/puhui"
WITNESS_NAME = "witness.test.example/w1"
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VECTORS_V2 = str(SPEC / "vectors-v2")  # beside spec_paths.VECTORS


class TestKey:
    """An Ed25519 key derived from a public label: for tests only."""

    __test__ = False

    def __init__(self, label):
        self.label = label
        self.signing_key = nacl.signing.SigningKey(sha256(b"puhui-verifier-test/" + label.encode()).digest())
        self.public_key = bytes(self.signing_key.verify_key)
        self.key_id = key_id_of(self.public_key)
        self.public_b64 = base64.b64encode(self.public_key).decode()

    def sign(self, message):
        return self.signing_key.sign(message).signature


def b64(data):
    return base64.b64encode(data).decode()


def signed_note(body_text, key, name, witnesses=(), timestamp=1767225600):
    body = body_text.encode()
    lines = format_signature_line(name, note_key_hash(name, ED25519, key.public_key) + key.sign(body))
    for witness_name, witness in witnesses:
        signature = witness.sign(cosigned_message(timestamp, body))
        raw = note_key_hash(witness_name, COSIGNATURE, witness.public_key) + timestamp.to_bytes(8, "big") + signature
        lines += format_signature_line(witness_name, raw)
    return body_text + "\n" + lines


def record_bytes(activity_id, fingerprint, occurred_at, reduction_g, inputs=None, subject="p-0001"):
    return jcs(
        {
            "activity_id": activity_id,
            "fingerprint": fingerprint,
            "inputs": inputs if inputs is not None else {"distance_m": 1000, "mode": "metro"},
            "occurred_at": occurred_at,
            "reduction_g": reduction_g,
            "subject": subject,
        }
    )


def _reduction(record):
    try:
        return int(json.loads(record)["reduction_g"])
    except (ValueError, KeyError, TypeError):
        return 0


def fingerprint_of(label):
    return sha256(label.encode()).hexdigest()


@dataclass
class Bundle:
    path: str
    trust: str

    def trust_object(self):
        with open(self.trust, "rb") as handle:
            return parse_trust(handle.read())


class Registry:
    """A log built event by event. Each helper signs a valid event (unless told otherwise) and keeps
    a simple model of holdings, so that effects can be computed for the next events."""

    def __init__(self, origin=ORIGIN, log_format=1):
        self.origin = origin
        self.log_format = log_format
        self.day = "2026-04-01"  # the date of the events' times
        self.root = TestKey("root")
        self.log_key = TestKey("log")
        self.witness = TestKey("witness")
        self.keys = {}
        self.leaves = []
        self.raw_lines = {}  # seq -> bytes written instead of the leaf's JCS
        self.activity_files = {}  # batch_id -> file bytes
        self.holdings = {}  # account -> sorted [[start, end], ...]
        self.next_serial = 0
        self.requests = 0
        self.seconds = 0

    # -- raw events --------------------------------------------------------------------------

    def next_time(self):
        self.seconds += 1
        return f"{self.day}T{self.seconds // 3600:02d}:{self.seconds // 60 % 60:02d}:{self.seconds % 60:02d}.000000Z"

    def event(self, event_type, body, signer, effects=None, request_id=None):
        body = dict(body)
        if "request_id" not in body:
            self.requests += 1
            body["request_id"] = request_id or f"req-{self.requests:06d}"
        leaf = {
            "auth": {"key": signer.key_id, "sig": b64(signer.sign(event_message(self.origin, event_type, body, self.log_format)))},
            "body": body,
            "seq": len(self.leaves),
            "time": self.next_time(),
            "type": event_type,
        }
        if effects is not None:
            leaf["effects"] = {"serials": [list(pair) for pair in effects]}
        self.leaves.append(leaf)
        return leaf["seq"]

    def resign(self, seq, signer):
        leaf = self.leaves[seq]
        leaf["auth"] = {"key": signer.key_id, "sig": b64(signer.sign(event_message(self.origin, leaf["type"], leaf["body"], self.log_format)))}

    def line(self, seq):
        return self.raw_lines.get(seq, jcs(self.leaves[seq]))

    def leaf_hashes(self):
        return [leaf_hash(self.line(seq)) for seq in range(len(self.leaves))]

    # -- the registry's vocabulary -------------------------------------------------------------

    @property
    def admin(self):
        return self.keys["admin"]

    def genesis(self, rules=None):
        rules = rules or {"offset_cap_ppm": 100_000, "offset_regions": ["42"], "offset_vintage_years": 3}
        return self.event("registry.genesis", {"origin": self.origin, "name": "test registry", "rules": rules}, self.root)

    def key(self, label, roles=(), by=None):
        key = TestKey(label)
        signer = by or (self.keys.get("admin") if "admin" not in roles else self.root) or self.root
        self.event(
            "key.register",
            {"key_id": key.key_id, "public_key": key.public_b64, "roles": list(roles), "label": label},
            signer,
        )
        self.keys[label] = key
        return key

    def account(self, account_id, kind, controller, region="420100", platform=None, by=None):
        self.holdings.setdefault(account_id, [])
        body = {
            "account_id": account_id,
            "kind": kind,
            "name": account_id,
            "region": region,
            "controllers": [controller.key_id],
            "platform": platform,
        }
        return self.event("account.open", body, by or self.admin)

    def methodology(self, methodology_id, eligible=True, version=1, sector="green_travel"):
        body = {
            "methodology_id": methodology_id,
            "version": version,
            "title": methodology_id,
            "sector": sector,
            "params": {"g_per_km": "0.5703"},
            "offset_eligible": eligible,
        }
        return self.event("methodology.register", body, self.admin)

    def batch(self, batch_id, platform, signer, methodology_id, records=None, period=("2026-01-01", "2026-01-31"), write_file=True, **overrides):
        """An activity batch; records default to three fresh ones inside the period."""
        if records is None:
            records = [
                record_bytes(f"{batch_id}-{n}", fingerprint_of(f"{batch_id}-{n}"), f"{period[0]}T08:0{n}:00.000000Z", 100 + n)
                for n in range(3)
            ]
        if write_file:
            self.activity_files[batch_id] = b"".join(record + b"\n" for record in records)
        body = {
            "batch_id": batch_id,
            "platform": platform,
            "methodology_id": methodology_id,
            "methodology_version": 1,
            "period_start": period[0],
            "period_end": period[1],
            "count": len(records),
            "total_g": sum(_reduction(record) for record in records),
            "root": root_of([leaf_hash(record) for record in records]).hex(),
        }
        body.update(overrides)
        return self.event("activity.batch", body, signer)

    def batch_total(self, batch_id):
        return sum(_reduction(line) for line in self.activity_files[batch_id].splitlines())

    def issue(self, issuance_id, account, amount_g=None, batches=(), methodology_id="HB-GT-METRO", vintage=2026, region="420100", evidence=None, effects=None, by=None):
        if amount_g is None:
            amount_g = sum(self.batch_total(batch_id) for batch_id in batches)
        if effects is None:
            effects = [[self.next_serial, self.next_serial + amount_g]]
            self.next_serial += amount_g
            self._give(account, effects)
        body = {
            "issuance_id": issuance_id,
            "account": account,
            "methodology_id": methodology_id,
            "vintage": vintage,
            "region": region,
            "amount_g": amount_g,
            "batches": list(batches),
            "evidence": evidence,
        }
        return self.event("issuance", body, by or self.admin, effects=effects)

    def _take(self, account, amount_g):
        """The account's lowest serials adding up to amount_g (removed from the model)."""
        taken, held, need = [], self.holdings[account], amount_g
        while need and held:
            start, end = held[0]
            step = min(need, end - start)
            taken.append([start, start + step])
            need -= step
            if start + step == end:
                held.pop(0)
            else:
                held[0] = [start + step, end]
        return taken

    def _give(self, account, ranges):
        held = self.holdings.setdefault(account, [])
        for start, end in ranges:
            held.append([start, end])
        held.sort()
        merged = []
        for start, end in held:
            if merged and merged[-1][1] == start:
                merged[-1][1] = end
            else:
                merged.append([start, end])
        self.holdings[account] = merged

    def transfer(self, transfer_id, sender, recipient, amount_g, signer, effects=None):
        if effects is None:
            effects = self._take(sender, amount_g)
            self._give(recipient, effects)
        body = {"transfer_id": transfer_id, "from": sender, "to": recipient, "amount_g": amount_g}
        return self.event("transfer", body, signer, effects=effects)

    def retire(self, retirement_id, account, amount_g, purpose, signer, effects=None, beneficiary="beneficiary"):
        if effects is None:
            effects = self._take(account, amount_g)
        body = {"retirement_id": retirement_id, "account": account, "amount_g": amount_g, "purpose": purpose, "beneficiary": beneficiary}
        return self.event("retirement", body, signer, effects=effects)

    def cancel(self, cancellation_id, account, amount_g, effects=None, by=None):
        if effects is None:
            effects = self._take(account, amount_g)
        body = {"cancellation_id": cancellation_id, "account": account, "amount_g": amount_g, "reason": "correction"}
        return self.event("cancellation", body, by or self.admin, effects=effects)

    def surrender(self, surrender_id, entity, retirements, allocation_g=1_000_000, year=2026, signer=None):
        body = {
            "surrender_id": surrender_id,
            "entity": entity,
            "compliance_year": year,
            "allocation_g": allocation_g,
            "retirements": list(retirements),
        }
        return self.event("offset.surrender", body, signer or self.keys["ets"])

    def claim(self, claim_id, claimant, retirements, footprint_g, signer):
        body = {
            "claim_id": claim_id,
            "claimant": claimant,
            "subject": {"kind": "event", "name": "spring fair"},
            "period_start": "2026-03-01",
            "period_end": "2026-03-03",
            "footprint_g": footprint_g,
            "retirements": list(retirements),
        }
        return self.event("neutrality.claim", body, signer)

    # -- writing a bundle ----------------------------------------------------------------------

    def checkpoint_note(self, tree_size, root=None, key=None, witnesses=()):
        if root is None:
            root = root_of(self.leaf_hashes()[:tree_size])
        return signed_note(checkpoint_body(self.origin, tree_size, root), key or self.log_key, self.origin, witnesses)

    def trust_document(self, witness_quorum=None):
        document = {
            "origin": self.origin,
            "log_key": format_verifier_key(self.origin, ED25519, self.log_key.public_key),
            "root_keys": [self.root.public_b64],
        }
        if witness_quorum is not None:
            document["witnesses"] = [format_verifier_key(WITNESS_NAME, COSIGNATURE, self.witness.public_key)]
            document["witness_quorum"] = witness_quorum
        return document

    def write(self, directory, checkpoint_sizes=None, notes=None, witness_quorum=None, cosign=True):
        """Write bundle/ and trust.json under directory; checkpoints at the given sizes (default:
        the whole log), or exactly the given note texts."""
        directory = str(directory)
        bundle = os.path.join(directory, "bundle")
        os.makedirs(os.path.join(bundle, "activities"), exist_ok=True)
        with open(os.path.join(bundle, "log.jsonl"), "wb") as handle:
            for seq in range(len(self.leaves)):
                handle.write(self.line(seq) + b"\n")
        if notes is None:
            witnesses = ((WITNESS_NAME, self.witness),) if witness_quorum and cosign else ()
            sizes = [len(self.leaves)] if checkpoint_sizes is None else checkpoint_sizes
            notes = [self.checkpoint_note(size, witnesses=witnesses) for size in sizes]
        with open(os.path.join(bundle, "checkpoints.jsonl"), "w") as handle:
            for note in notes:
                handle.write(json.dumps({"note": note}) + "\n")
        for batch_id, content in self.activity_files.items():
            with open(os.path.join(bundle, "activities", batch_id + ".jsonl"), "wb") as handle:
                handle.write(content)
        manifest = {"format": f"puhui-bundle/{self.log_format}", "origin": self.origin, "tree_size": len(self.leaves), "root": root_of(self.leaf_hashes()).hex()}
        with open(os.path.join(bundle, "manifest.json"), "w") as handle:
            json.dump(manifest, handle)
        trust = os.path.join(directory, "trust.json")
        with open(trust, "w") as handle:
            json.dump(self.trust_document(witness_quorum), handle)
        return Bundle(bundle, trust)


def build_world(registry):
    """A valid history touching every event type, like the spec's valid vector:
    keys, accounts, two methodologies, two batches, three issuances, transfers, retirements,
    a surrender, a neutrality claim and a cancellation."""
    r = registry
    r.genesis()
    r.key("admin", ["admin"], by=r.root)
    platform_key = r.key("platform", ["platform"])
    r.key("ets", ["ets"])
    steel_key = r.key("steel")
    mall_key = r.key("mall")
    alice_key = r.key("alice")
    r.account("wuhan-platform", "platform", platform_key, region="420100")
    r.account("steel-co", "compliance_entity", steel_key, region="420200")
    r.account("mall-co", "enterprise", mall_key)
    r.account("alice", "individual", alice_key, platform="wuhan-platform", by=platform_key)
    r.methodology("HB-GT-METRO", eligible=True)
    r.methodology("HB-RS-RECYCLE", eligible=False, sector="resource_saving")
    r.batch("wh-01", "wuhan-platform", platform_key, "HB-GT-METRO")
    r.batch("wh-02", "wuhan-platform", platform_key, "HB-RS-RECYCLE", period=("2026-02-01", "2026-02-28"))
    r.issue("iss-1", "wuhan-platform", batches=["wh-01"])
    r.issue("iss-2", "wuhan-platform", batches=["wh-02"], methodology_id="HB-RS-RECYCLE")
    r.issue("iss-3", "mall-co", amount_g=30_000, evidence=sha256(b"verification report").hexdigest(), vintage=2025)
    r.transfer("tr-1", "wuhan-platform", "steel-co", 200, platform_key)
    r.transfer("tr-2", "wuhan-platform", "alice", 50, platform_key)
    r.transfer("tr-3", "alice", "mall-co", 20, alice_key)
    r.retire("ret-1", "steel-co", 150, "ets_offset", steel_key)
    r.surrender("sur-1", "steel-co", ["ret-1"])
    r.retire("ret-2", "mall-co", 10_000, "carbon_neutrality", mall_key)
    r.claim("claim-1", "mall-co", ["ret-2"], 9_500, mall_key)
    r.cancel("can-1", "wuhan-platform", 10)
    r.retire("ret-3", "alice", 10, "voluntary", alice_key)
    return r


@contextmanager
def local_dask_cluster(workers, **options):
    """A Dask LocalCluster of single-threaded worker processes. Its nannies set PYTHONHASHSEED in
    this process's environment as they spawn the workers (6640, Dask's default, unless options say
    otherwise); it is put back, so that no later test's verifier takes a seed it never had."""
    import distributed

    before = os.environ.get("PYTHONHASHSEED")
    try:
        with distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                                      memory_limit="1GiB", **options) as cluster:
            yield cluster
    finally:
        if before is None:
            os.environ.pop("PYTHONHASHSEED", None)
        else:
            os.environ["PYTHONHASHSEED"] = before


@pytest.fixture
def registry():
    return Registry()


@pytest.fixture
def world():
    return build_world(Registry())


@pytest.fixture
def verify(tmp_path):
    """verify(registry, **write_options) -> BundleResult, run in-process (no workers)."""

    def run(registry, require_activities=False, jobs=1, **write_options):
        bundle = registry.write(tmp_path / f"run{len(os.listdir(tmp_path))}", **write_options)
        return verify_bundle(bundle.path, bundle.trust_object(), require_activities=require_activities, jobs=jobs)

    return run


def found(result):
    """[(code, seq), ...] of a BundleResult's violations."""
    return [(finding.code, finding.seq) for finding in result.violations.listed]


@pytest.fixture
def codes():
    return found


@pytest.fixture
def puhui_verify():
    """Run the installed command line: puhui_verify(*args) -> CompletedProcess (text)."""

    def run(*args, timeout=120):
        return subprocess.run(
            [sys.executable, "-m", "verifier.cli", *map(str, args)],
            capture_output=True,
            text=True,
            cwd=REPO,
            timeout=timeout,
        )

    return run


# -- RFC 9162 proofs (section 2.1.3.1 and 2.1.4.1), to build receipts and consistency proofs --


def _split(n):
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def inclusion_proof(hashes, index):
    if len(hashes) <= 1:
        return []
    k = _split(len(hashes))
    if index < k:
        return inclusion_proof(hashes[:k], index) + [root_of(hashes[k:])]
    return inclusion_proof(hashes[k:], index - k) + [root_of(hashes[:k])]


def consistency_proof(hashes, first):
    def subproof(m, items, complete):
        n = len(items)
        if m == n:
            return [] if complete else [root_of(items)]
        k = _split(n)
        if m <= k:
            return subproof(m, items[:k], complete) + [root_of(items[k:])]
        return subproof(m - k, items[k:], False) + [root_of(items[:k])]

    return subproof(first, hashes, True)


@pytest.fixture
def proofs():
    class Proofs:
        inclusion = staticmethod(inclusion_proof)
        consistency = staticmethod(consistency_proof)

    return Proofs


def rekeyed_vector(case="valid"):
    """The format-2 vector `case` as a Registry to alter: every key replaced by a TestKey of its
    label and every event signed again (the vectors' README does not say how their keys derive
    from their labels). Keys are in `keys` by label; new events follow the vector's last one."""
    directory = os.path.join(VECTORS_V2, case)
    with open(os.path.join(directory, "trust.json")) as handle:
        trust = json.load(handle)
    r = Registry(origin=trust["origin"], log_format=2)
    r.day = "2026-07-02"
    signers = {key_id_of(base64.b64decode(trust["root_keys"][0])): r.root}
    with open(os.path.join(directory, "bundle", "log.jsonl"), "rb") as handle:
        r.leaves = [json.loads(line) for line in handle]
    for leaf in r.leaves:
        body = leaf["body"]
        leaf["auth"]["key"] = signers[leaf["auth"]["key"]].key_id
        if leaf["type"] == "key.register":
            key = r.keys[body["label"]] = TestKey(body["label"])
            signers[body["key_id"]] = key
            body["key_id"], body["public_key"] = key.key_id, key.public_b64
        if "controllers" in body:
            body["controllers"] = [signers[key_id].key_id for key_id in body["controllers"]]
        if leaf["type"] == "issuance":
            r.next_serial = leaf["effects"]["serials"][-1][1]
    by_key_id = {key.key_id: key for key in [r.root, *r.keys.values()]}
    for seq, leaf in enumerate(r.leaves):
        r.resign(seq, by_key_id[leaf["auth"]["key"]])
    r.keys["admin"] = r.keys["registry operator"]
    activities = os.path.join(directory, "bundle", "activities")
    for name in sorted(os.listdir(activities)):
        with open(os.path.join(activities, name), "rb") as handle:
            r.activity_files[name[: -len(".jsonl")]] = handle.read()
    return r


def record_v2(activity_id, subject, occurred_on, inputs, reduction_g, fingerprint=None):
    """A format-2 record (spec section 7.3); fingerprint and commitment are opaque test values."""
    return jcs(
        {
            "activity_id": activity_id,
            "fingerprint": fingerprint or fingerprint_of(activity_id),
            "inputs": inputs,
            "occurred_on": occurred_on,
            "private_sha256": sha256(b"opening of " + activity_id.encode()).hexdigest(),
            "reduction_g": reduction_g,
            "subject": subject,
        }
    )


def subject_of(label):
    """A daily pseudonym (32 hex digits) for tests."""
    return sha256(label.encode()).hexdigest()[:32]


@pytest.fixture
def vector_v2():
    return rekeyed_vector()
