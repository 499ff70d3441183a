"""Format 2's reviews (spec section 6: roles validator and expert, the review type, "Reviews"):
issuances and turning offset eligibility on need counting reviews, on both backends; a format-1
log behaves as before. Each refusal leaves the log as it was, and the independent verifier
reports the same code for the same event written into the log by hand."""

from __future__ import annotations

import base64
import copy
import json
from pathlib import Path
from typing import Any

import pytest

from ledger.canonical import jcs
from ledger.errors import Rejected
from ledger.events.reviews import review_quorum
from ledger.export import export_bundle
from ledger.replay import replay
from ledger.state import ReviewTarget, State, root_keys_from
from service.actors import Actor
from service.hubei import HUBEI_RULES
from verifier.bundle import verify_bundle
from verifier.trust import parse_trust
from world import METRO_DEFINITION, World

EVIDENCE = "e8281ba0cff227df12fba39ad99bd46713c35e6dc54327f3ff9d558e2d4a3d55"
OTHER_EVIDENCE = "0d2f1c2a8a2f6f1d54c35e6dc54327f3ff9d558e2d4a3d55e8281ba0cff227df"
METRO = "HB-GT-METRO"


def with_quorum(world: World, issuance: int, eligibility: int) -> None:
    world.client.submit(world.root, "registry.rules", {"rules": {**HUBEI_RULES, "review_quorum": {
        "issuance": issuance, "eligibility": eligibility}}})


@pytest.fixture
def world(database_url):
    w = World(database_url, log_format=2).setup_v2()  # Hubei quorums: issuance 1, eligibility 2
    yield w
    w.registry.close()


def refused(world: World, actor: Actor, event_type: str, body: dict[str, Any], code: str) -> dict[str, Any]:
    """Submit an event the registry must refuse with `code`, writing nothing; the signed event."""
    event = world.client.signed(actor, event_type, body)
    size = world.registry.size
    with pytest.raises(Rejected) as refusal:
        world.registry.append(event)
    assert refusal.value.code == code, refusal.value.message
    assert world.registry.size == size
    return event


def verifier_finds(world: World, event: dict[str, Any], tmp_path: Path, effects: list[list[int]] | None = None) -> list[str]:
    """The codes the verifier reports at the event's seq once it is written by hand after the
    registry's log (its checkpoint then no longer covers the whole log: a finding of seq null)."""
    world.registry.checkpoint()
    bundle = tmp_path / f"bundle-{len(list(tmp_path.iterdir()))}"
    export_bundle(world.registry, bundle)
    seq = world.registry.size
    leaf = {"auth": event["auth"], "body": event["body"], "seq": seq, "time": "2027-01-01T00:00:00.000000Z",
            "type": event["type"]}
    if effects is not None:
        leaf["effects"] = {"serials": effects}
    with open(bundle / "log.jsonl", "ab") as log:
        log.write(jcs(leaf) + b"\n")
    result = verify_bundle(str(bundle), parse_trust(json.dumps(world.registry.trust()).encode()), jobs=1,
                           require_activities=True)
    return [finding.code for finding in result.violations.listed if finding.seq == seq]


def review_body(review_id: str, kind: str, target_id: str, version: int | None = None,
                verdict: str = "approved") -> dict[str, Any]:
    return {"review_id": review_id, "target": {"kind": kind, "id": target_id, "version": version},
            "verdict": verdict, "report_sha256": "ab" * 32}


def issuance_body(issuance_id: str, account: str, amount_g: int, batches: list[str] = (),
                  evidence: str | None = None) -> dict[str, Any]:
    return {"issuance_id": issuance_id, "account": account, "methodology_id": METRO, "vintage": 2026,
            "region": "420100", "amount_g": amount_g, "batches": list(batches), "evidence": evidence}


def next_serials(world: World, amount_g: int) -> list[list[int]]:
    start = world.registry.state.next_serial
    return [[start, start + amount_g]]


def wuhan_batch(world: World, batch_id: str) -> int:
    """A batch of the Wuhan platform; its grams."""
    records = world.records(5)
    world.batch(batch_id, records)
    return sum(r["reduction_g"] for r in records)


# -- roles ---------------------------------------------------------------------------------------

def register_body(new: Actor, roles: list[str]) -> dict[str, Any]:
    return {"key_id": new.key_id, "label": new.label, "roles": roles,
            "public_key": base64.b64encode(bytes(new.signer.public_key)).decode()}


def test_validator_and_expert_are_roles_of_format_2_only(database_url):
    old = World(database_url, log_format=1)
    old.client.register_key(old.root, old.admin, ["admin"])
    for role in ("validator", "expert"):
        refused(old, old.root, "key.register", register_body(old.validator, [role]), "SCHEMA")
    old.registry.close()


@pytest.mark.parametrize("roles", [["validator", "platform"], ["expert", "validator"], ["admin", "expert"]])
def test_validator_or_expert_beside_another_role_is_schema(world, roles):
    refused(world, world.root, "key.register", register_body(world.bob, roles), "SCHEMA")


def test_only_root_grants_or_revokes_admin_validator_and_expert(world, tmp_path):
    for role in ("admin", "validator", "expert"):
        event = refused(world, world.admin, "key.register", register_body(world.bob, [role]), "UNAUTHORIZED")
    assert verifier_finds(world, event, tmp_path) == ["UNAUTHORIZED"]
    for reviewer in (world.validator, world.expert):
        event = refused(world, world.admin, "key.revoke", {"key_id": reviewer.key_id, "reason": "r"}, "UNAUTHORIZED")
    assert verifier_finds(world, event, tmp_path) == ["UNAUTHORIZED"]
    world.client.revoke_key(world.root, world.expert_2.key_id, "left the panel")
    assert world.registry.state.keys[world.expert_2.key_id].revoked


# -- the review type -----------------------------------------------------------------------------

def test_review_is_a_type_of_format_2_only(database_url):
    old = World(database_url, log_format=1).setup()
    refused(old, old.admin, "review", review_body("r-1", "evidence", EVIDENCE), "SCHEMA")
    old.registry.close()


@pytest.mark.parametrize("target", [
    {"kind": "batch", "id": "b-1", "version": 1},
    {"kind": "evidence", "id": "not-hex", "version": None},
    {"kind": "evidence", "id": EVIDENCE, "version": 0},
    {"kind": "methodology", "id": METRO, "version": None},
    {"kind": "methodology", "id": METRO, "version": 0},
    {"kind": "account", "id": "alice", "version": None},
    {"kind": "batch", "id": "b-1"},
    {"kind": "batch", "id": "b-1", "version": None, "note": "x"},
    ["batch", "b-1", None],
], ids=lambda t: json.dumps(t))
def test_a_target_other_than_the_three_forms_is_schema(world, target):
    refused(world, world.validator, "review", {**review_body("r-1", "batch", "b-1"), "target": target}, "SCHEMA")


def test_a_verdict_other_than_approved_or_rejected_is_schema(world):
    refused(world, world.validator, "review", review_body("r-1", "evidence", EVIDENCE, verdict="maybe"), "SCHEMA")


def test_validators_review_batches_and_evidence_experts_methodologies(world, tmp_path):
    wuhan_batch(world, "b-1")
    for signer, kind, target_id, version in ((world.expert, "batch", "b-1", None),
                                             (world.admin, "evidence", EVIDENCE, None),
                                             (world.root, "evidence", EVIDENCE, None),
                                             (world.validator, "methodology", METRO, 1)):
        event = refused(world, signer, "review", review_body("r-1", kind, target_id, version), "UNAUTHORIZED")
    assert verifier_finds(world, event, tmp_path) == ["UNAUTHORIZED"]
    # UNAUTHORIZED comes before references: an expert naming a missing batch
    refused(world, world.expert, "review", review_body("r-1", "batch", "missing"), "UNAUTHORIZED")
    world.client.review(world.validator, "r-1", "batch", "b-1")
    world.client.review(world.validator, "r-2", "evidence", EVIDENCE, "rejected")
    world.client.review(world.expert, "r-3", "methodology", METRO, version=1)
    reviews = world.registry.state.reviews
    assert [(r.signer, r.target, r.approved) for r in reviews.values()] == [
        (world.validator.key_id, ReviewTarget("batch", "b-1", None), True),
        (world.validator.key_id, ReviewTarget("evidence", EVIDENCE, None), False),
        (world.expert.key_id, ReviewTarget("methodology", METRO, 1), True)]


def test_a_review_names_an_accepted_batch_or_a_registered_version(world, tmp_path):
    event = refused(world, world.validator, "review", review_body("r-1", "batch", "missing"), "UNKNOWN_REF")
    assert verifier_finds(world, event, tmp_path) == ["UNKNOWN_REF"]
    for methodology_id, version in ((METRO, 2), ("HB-NONE", 1)):
        event = refused(world, world.expert, "review", review_body("r-1", "methodology", methodology_id, version),
                        "UNKNOWN_REF")
    assert verifier_finds(world, event, tmp_path) == ["UNKNOWN_REF"]
    world.client.review(world.validator, "r-1", "evidence", OTHER_EVIDENCE)  # any hash may be reviewed


def test_a_review_id_is_used_once(world, tmp_path):
    world.client.review(world.validator, "r-1", "evidence", EVIDENCE)
    event = refused(world, world.validator_2, "review", review_body("r-1", "evidence", OTHER_EVIDENCE), "DUPLICATE_ID")
    assert verifier_finds(world, event, tmp_path) == ["DUPLICATE_ID"]


# -- issuance ------------------------------------------------------------------------------------

def test_an_issuance_needs_its_quorum_of_approved_reviews(world, tmp_path):
    body = issuance_body("iss-1", "mall-co", 1_000, evidence=EVIDENCE)
    event = refused(world, world.admin, "issuance", body, "UNREVIEWED")
    assert verifier_finds(world, event, tmp_path, next_serials(world, 1_000)) == ["UNREVIEWED"]
    world.client.review(world.validator, "r-1", "evidence", EVIDENCE)
    world.client.submit(world.admin, "issuance", body)
    grams = wuhan_batch(world, "b-1")
    batch_body = issuance_body("iss-2", "wuhan-platform", grams, ["b-1"])
    refused(world, world.admin, "issuance", batch_body, "UNREVIEWED")
    world.client.review(world.validator, "r-2", "batch", "b-1")
    world.client.submit(world.admin, "issuance", batch_body)
    assert world.registry.state.issuances["iss-2"].methodology_versions == [1]


def test_every_batch_of_an_issuance_is_reviewed(world):
    grams = wuhan_batch(world, "b-1") + wuhan_batch(world, "b-2")
    world.client.review(world.validator, "r-1", "batch", "b-1")
    body = issuance_body("iss-1", "wuhan-platform", grams, ["b-1", "b-2"])
    refused(world, world.admin, "issuance", body, "UNREVIEWED")
    world.client.review(world.validator_2, "r-2", "batch", "b-2")
    world.client.submit(world.admin, "issuance", body)


def test_one_key_counts_once_per_target(world):
    with_quorum(world, issuance=2, eligibility=2)
    world.client.review(world.validator, "r-1", "evidence", EVIDENCE)
    world.client.review(world.validator, "r-2", "evidence", EVIDENCE)
    body = issuance_body("iss-1", "mall-co", 1_000, evidence=EVIDENCE)
    refused(world, world.admin, "issuance", body, "UNREVIEWED")
    world.client.review(world.validator_2, "r-3", "evidence", EVIDENCE)
    world.client.submit(world.admin, "issuance", body)


def test_a_validator_controlling_the_platform_or_the_recipient_does_not_count(world):
    c = world.client
    c.submit(world.admin, "account.controllers", {"account_id": "wuhan-platform",
                                                  "controllers": [world.wuhan.key_id, world.validator.key_id]})
    c.submit(world.admin, "account.controllers", {"account_id": "mall-co",
                                                  "controllers": [world.mall.key_id, world.validator_2.key_id]})
    grams = wuhan_batch(world, "b-1")
    c.review(world.validator, "r-1", "batch", "b-1")       # controls the batch's platform
    c.review(world.validator_2, "r-2", "batch", "b-1")     # controls the recipient below
    refused(world, world.admin, "issuance", issuance_body("iss-1", "mall-co", grams, ["b-1"]), "UNREVIEWED")
    # validator_2 is independent of an issuance to the platform itself
    c.submit(world.admin, "issuance", issuance_body("iss-1", "wuhan-platform", grams, ["b-1"]))
    c.review(world.validator_2, "r-3", "evidence", EVIDENCE)
    refused(world, world.admin, "issuance", issuance_body("iss-2", "mall-co", 500, evidence=EVIDENCE), "UNREVIEWED")
    # control is judged at the issuance: once validator_2 no longer controls mall-co, it counts
    c.submit(world.admin, "account.controllers", {"account_id": "mall-co", "controllers": [world.mall.key_id]})
    c.submit(world.admin, "issuance", issuance_body("iss-2", "mall-co", 500, evidence=EVIDENCE))


def test_a_counting_rejection_blocks_even_from_a_controlling_validator(world, tmp_path):
    c = world.client
    c.submit(world.admin, "account.controllers", {"account_id": "mall-co",
                                                  "controllers": [world.mall.key_id, world.validator_2.key_id]})
    c.review(world.validator, "r-1", "evidence", EVIDENCE)
    c.review(world.validator_2, "r-2", "evidence", EVIDENCE, "rejected")
    body = issuance_body("iss-1", "mall-co", 1_000, evidence=EVIDENCE)
    event = refused(world, world.admin, "issuance", body, "UNREVIEWED")
    assert verifier_finds(world, event, tmp_path, next_serials(world, 1_000)) == ["UNREVIEWED"]
    # a revoked key's reviews count no more, its rejection included
    c.revoke_key(world.root, world.validator_2.key_id, "accreditation withdrawn")
    c.submit(world.admin, "issuance", body)


def test_a_revoked_validators_approval_no_longer_counts(world):
    world.client.review(world.validator, "r-1", "evidence", EVIDENCE)
    world.client.revoke_key(world.root, world.validator.key_id, "accreditation withdrawn")
    refused(world, world.admin, "issuance", issuance_body("iss-1", "mall-co", 1_000, evidence=EVIDENCE), "UNREVIEWED")


def test_an_evidence_hash_backs_one_issuance(world, tmp_path):
    c = world.client
    c.review(world.validator, "r-1", "evidence", EVIDENCE)
    c.submit(world.admin, "issuance", issuance_body("iss-1", "mall-co", 1_000, evidence=EVIDENCE))
    body = issuance_body("iss-2", "alice", 10, evidence=EVIDENCE)
    event = refused(world, world.admin, "issuance", body, "DOUBLE_ISSUANCE")
    assert verifier_finds(world, event, tmp_path, next_serials(world, 10)) == ["DOUBLE_ISSUANCE"]
    assert world.reopen().state.issued_evidence == {EVIDENCE: "iss-1"}
    refused(world, world.admin, "issuance", body, "DOUBLE_ISSUANCE")  # also after a restart


def test_issuance_codes_come_in_table_order(world, tmp_path):
    """ISSUANCE_AMOUNT, then UNREVIEWED, then DOUBLE_ISSUANCE (batches, then the evidence hash)."""
    c = world.client
    grams = wuhan_batch(world, "b-1")
    event = refused(world, world.admin, "issuance", issuance_body("iss-1", "wuhan-platform", grams + 1, ["b-1"]),
                    "ISSUANCE_AMOUNT")
    assert verifier_finds(world, event, tmp_path, next_serials(world, grams + 1)) == ["ISSUANCE_AMOUNT"]
    event = refused(world, world.admin, "issuance", issuance_body("iss-1", "wuhan-platform", grams * 2, ["b-1", "b-1"]),
                    "UNREVIEWED")
    assert verifier_finds(world, event, tmp_path, next_serials(world, grams * 2)) == ["UNREVIEWED"]
    c.review(world.validator, "r-1", "batch", "b-1")
    refused(world, world.admin, "issuance", issuance_body("iss-1", "wuhan-platform", grams * 2, ["b-1", "b-1"]),
            "DOUBLE_ISSUANCE")
    c.review(world.validator, "r-2", "evidence", EVIDENCE)
    c.submit(world.admin, "issuance", issuance_body("iss-1", "mall-co", 1_000, evidence=EVIDENCE))
    c.review(world.validator_2, "r-3", "evidence", EVIDENCE, "rejected")  # after the first issuance
    event = refused(world, world.admin, "issuance", issuance_body("iss-2", "mall-co", 1_000, evidence=EVIDENCE),
                    "UNREVIEWED")
    assert verifier_finds(world, event, tmp_path, next_serials(world, 1_000)) == ["UNREVIEWED"]


def test_a_format_1_issuance_needs_no_review_and_may_reuse_evidence(database_url):
    old = World(database_url, log_format=1).setup()
    for issuance_id in ("iss-1", "iss-2"):
        old.client.issue(old.admin, issuance_id, "mall-co", "HB-RS-RECYCLE", 2025, "420100", 100, evidence=EVIDENCE)
    old.client.set_eligibility(old.admin, "HB-RS-RECYCLE", True)
    assert old.registry.state.methodologies["HB-RS-RECYCLE"].offset_eligible
    old.registry.close()


def test_without_rules_there_is_no_quorum():
    """Before an accepted genesis no rules are in force: issuances and eligibility turned on are
    UNREVIEWED (a registry always starts with its genesis; a verifier may meet a log without one)."""
    for kind in ("issuance", "eligibility"):
        with pytest.raises(Rejected) as refusal:
            review_quorum(State(root_keys={}, log_format=2), kind)
        assert refusal.value.code == "UNREVIEWED"


# -- methodology eligibility ---------------------------------------------------------------------

def eligibility_body(version: int | None, offset_eligible: bool = True, methodology_id: str = METRO) -> dict[str, Any]:
    body: dict[str, Any] = {"methodology_id": methodology_id, "offset_eligible": offset_eligible}
    return body if version is None else {**body, "version": version}


def expert_reviews(world: World, methodology_id: str, version: int, *experts: Actor) -> None:
    for expert in experts:
        world.client.review(expert, f"rv-{methodology_id}-{version}-{expert.label}", "methodology", methodology_id,
                            version=version)


def test_eligibility_names_a_registered_version(world, tmp_path):
    refused(world, world.admin, "methodology.eligibility", eligibility_body(None), "SCHEMA")
    event = refused(world, world.admin, "methodology.eligibility", eligibility_body(2), "UNKNOWN_REF")
    assert verifier_finds(world, event, tmp_path) == ["UNKNOWN_REF"]
    refused(world, world.admin, "methodology.eligibility", eligibility_body(1, methodology_id="HB-NONE"), "UNKNOWN_REF")


def test_a_format_1_eligibility_names_no_version(database_url):
    old = World(database_url, log_format=1).setup()
    refused(old, old.admin, "methodology.eligibility", eligibility_body(1, False), "SCHEMA")
    old.registry.close()


def test_turning_eligibility_on_needs_the_versions_expert_reviews(world, tmp_path):
    state = world.registry.state
    event = refused(world, world.admin, "methodology.eligibility", eligibility_body(1), "UNREVIEWED")
    assert verifier_finds(world, event, tmp_path) == ["UNREVIEWED"]
    expert_reviews(world, METRO, 1, world.expert)
    refused(world, world.admin, "methodology.eligibility", eligibility_body(1), "UNREVIEWED")
    world.client.review(world.validator, "rv-v", "evidence", EVIDENCE)  # a validator reviews no methodology
    expert_reviews(world, METRO, 1, world.expert_2)
    world.client.set_eligibility(world.admin, METRO, True, version=1)
    assert state.offset_eligible(METRO, [1]) and state.methodologies[METRO].offset_eligible
    # turning it off needs nothing; on again needs the reviews still
    world.client.set_eligibility(world.admin, METRO, False, version=1)
    assert not state.offset_eligible(METRO, [1])
    world.client.review(world.expert_2, "rv-no", "methodology", METRO, "rejected", version=1)
    refused(world, world.admin, "methodology.eligibility", eligibility_body(1), "UNREVIEWED")


def test_setting_eligibility_true_again_is_judged_again(world):
    expert_reviews(world, METRO, 1, world.expert, world.expert_2)
    world.client.set_eligibility(world.admin, METRO, True, version=1)
    world.client.revoke_key(world.root, world.expert_2.key_id, "left the panel")
    refused(world, world.admin, "methodology.eligibility", eligibility_body(1), "UNREVIEWED")


def test_eligibility_is_per_version(world):
    c = world.client
    expert_reviews(world, METRO, 1, world.expert, world.expert_2)
    c.set_eligibility(world.admin, METRO, True, version=1)
    c.register_methodology(world.admin, METRO, 2, "Urban rail trips", "green_travel", METRO_DEFINITION, False)
    state = world.registry.state
    assert state.offset_eligible(METRO, [1]) and not state.offset_eligible(METRO, [2])
    assert not state.offset_eligible(METRO, [1, 2]) and not state.methodologies[METRO].offset_eligible
    expert_reviews(world, METRO, 2, world.expert, world.expert_2)
    c.set_eligibility(world.admin, METRO, True, version=2)
    c.set_eligibility(world.admin, METRO, False, version=1)
    assert state.offset_eligible(METRO, [2]) and not state.offset_eligible(METRO, [1])
    assert state.methodologies[METRO].offset_eligible  # the latest version's


def illustrative_definition() -> dict[str, Any]:
    definition = copy.deepcopy(METRO_DEFINITION)
    definition["factors"]["g_per_km"] |= {"source": None, "illustrative": True}
    return definition


def register_body_of(methodology_id: str, version: int, params: dict[str, Any], offset_eligible: bool) -> dict[str, Any]:
    return {"methodology_id": methodology_id, "version": version, "title": "t", "sector": "green_travel",
            "params": params, "offset_eligible": offset_eligible}


def test_an_illustrative_version_is_never_eligible(world, tmp_path):
    c = world.client
    c.register_methodology(world.admin, "HB-EV", 1, "EV charging", "energy_substitution", illustrative_definition(), False)
    refused(world, world.admin, "methodology.eligibility", eligibility_body(1, methodology_id="HB-EV"), "UNREVIEWED")
    expert_reviews(world, "HB-EV", 1, world.expert, world.expert_2)
    event = refused(world, world.admin, "methodology.eligibility", eligibility_body(1, methodology_id="HB-EV"),
                    "OFFSET_INELIGIBLE")
    assert verifier_finds(world, event, tmp_path) == ["OFFSET_INELIGIBLE"]
    c.set_eligibility(world.admin, "HB-EV", False, version=1)  # off is always allowed


def test_registering_a_version_eligible_needs_reviews_it_cannot_have_yet(world, tmp_path):
    event = refused(world, world.admin, "methodology.register", register_body_of(METRO, 2, METRO_DEFINITION, True),
                    "UNREVIEWED")
    assert verifier_finds(world, event, tmp_path) == ["UNREVIEWED"]
    with_quorum(world, issuance=1, eligibility=0)
    refused(world, world.admin, "methodology.register", register_body_of("HB-EV", 1, illustrative_definition(), True),
            "OFFSET_INELIGIBLE")
    world.client.register_methodology(world.admin, METRO, 2, "t", "green_travel", METRO_DEFINITION, True)
    assert world.registry.state.offset_eligible(METRO, [2])


# -- restart, projections and the verifier ---------------------------------------------------------

def reviewed_history(world: World) -> World:
    """Reviews of every kind, approvals and rejections, issuances they allow, eligibility turned on."""
    c = world.client
    grams = wuhan_batch(world, "b-1")
    c.review(world.validator, "r-1", "batch", "b-1")
    c.review(world.validator_2, "r-2", "batch", "b-1", "rejected")
    c.revoke_key(world.root, world.validator_2.key_id, "accreditation withdrawn")
    c.issue(world.admin, "iss-1", "wuhan-platform", METRO, 2026, "420100", grams, ["b-1"])
    c.review(world.validator, "r-3", "evidence", EVIDENCE)
    c.issue(world.admin, "iss-2", "mall-co", METRO, 2026, "420100", 5_000, evidence=EVIDENCE)
    expert_reviews(world, METRO, 1, world.expert, world.expert_2)
    c.set_eligibility(world.admin, METRO, True, version=1)
    c.review(world.expert, "r-4", "methodology", METRO, "rejected", version=1)
    return world


def test_reviews_survive_a_restart_and_equal_a_replay(world):
    reviewed_history(world)
    before = world.registry.state
    assert len(before.reviews) == 6 and len(before.reviews_of[ReviewTarget("methodology", METRO, 1)]) == 3
    reopened = world.reopen()
    assert reopened.check_integrity().ok
    assert reopened.state == before
    registry = world.registry
    replayed = replay((data for _, data in registry.leaf_bytes()), origin=registry.origin,
                      root_keys=root_keys_from(registry.meta["root_keys"]), batch_records=registry.batch_records)
    assert replayed == reopened.state
    # the reviews loaded still count: the rejection r-4 blocks turning eligibility on again
    refused(world, world.admin, "methodology.eligibility", eligibility_body(1), "UNREVIEWED")


def test_the_projection_digest_covers_the_reviews(world):
    from sqlalchemy import text

    from ledger.errors import StorageError
    from ledger.store import Store
    reviewed_history(world)
    world.registry.close()
    store = Store.connect(world.url)
    with store.engine.begin() as conn:
        conn.execute(text("DELETE FROM reviews WHERE review_id = 'r-4'"))
    store.close()
    registry = world.reopen()
    with pytest.raises(StorageError, match="changed, added or removed outside the registry"):
        world.client.review(world.expert, "r-5", "methodology", METRO, version=1)
    assert any("reviews" in problem for problem in registry.check_integrity(full=True).problems)


def test_the_exported_log_with_reviews_is_valid(world, tmp_path):
    reviewed_history(world)
    world.registry.checkpoint()
    bundle = tmp_path / "bundle"
    export_bundle(world.registry, bundle)
    result = verify_bundle(str(bundle), parse_trust(json.dumps(world.registry.trust()).encode()), jobs=1,
                           require_activities=True)
    assert result.log_format == 2 and result.violations.listed == [] and result.warnings.listed == []
