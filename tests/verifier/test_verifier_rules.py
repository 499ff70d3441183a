"""One altered bundle per rule of spec sections 3 and 6: each must be reported with its code at the
seq of the offending event, alone (an event with a violation changes nothing, so nothing after it
is reported by cascade)."""

import json

import pytest
from conftest import TestKey, fingerprint_of, record_bytes

from verifier.canonical import jcs


def only(result, code, seq):
    assert [(f.code, f.seq) for f in result.violations.listed] == [(code, seq)], result.violations.listed


# -- ENCODING, SEQ, TIME ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "mangle",
    [
        pytest.param(lambda line: line[:-1], id="not-json"),
        pytest.param(lambda line: line.replace(b'"seq":', b'"seq": '), id="whitespace"),
        pytest.param(lambda line: b'{"type"' + line[1:].split(b',"type"')[0] + b"}", id="missing-type"),
        pytest.param(lambda line: line[:-1] + b',"extra":1}', id="extra-key"),
        pytest.param(lambda line: line[:-1] + b',"type":"transfer"}', id="duplicate-key"),
        pytest.param(lambda line: line.replace(b'"amount_g":5', b'"amount_g":5.0'), id="float"),
        pytest.param(lambda line: line.replace(b'"amount_g":5', b'"amount_g":9007199254740993'), id="int-beyond-2^53"),
        pytest.param(lambda line: line.replace(b'"tr-9"', b'"tr-\xff"'), id="not-utf8"),
        pytest.param(lambda line: line.replace(b'"tr-9"', b'"tr-\\u0039"'), id="needless-escape"),
        pytest.param(lambda line: line.replace(b'"amount_g":5', b'"amount_g":NaN'), id="nan"),
        pytest.param(lambda line: line.replace(b'{"key":', b'{"sig":"x","key":', 1), id="auth-not-exact"),
        pytest.param(lambda line: line.replace(b'{"auth":{', b'{"auth":{"k":1,', 1), id="auth-extra"),
    ],
)
def test_encoding(world, verify, mangle):
    seq = world.transfer("tr-9", "wuhan-platform", "steel-co", 5, world.keys["platform"])
    world.raw_lines[seq] = mangle(world.line(seq))
    only(verify(world), "ENCODING", seq)


def test_encoding_key_order(world, verify):
    seq = world.transfer("tr-9", "wuhan-platform", "steel-co", 5, world.keys["platform"])
    leaf = world.leaves[seq]
    reordered = {"body": leaf["body"], "auth": leaf["auth"], "effects": leaf["effects"], "seq": seq, "time": leaf["time"], "type": leaf["type"]}
    world.raw_lines[seq] = json.dumps(reordered, separators=(",", ":")).encode()
    only(verify(world), "ENCODING", seq)


def test_seq(world, verify):
    seq = world.transfer("tr-9", "wuhan-platform", "steel-co", 5, world.keys["platform"])
    world.leaves[seq]["seq"] = seq + 1  # seq is not signed: the operator can change it freely
    only(verify(world), "SEQ", seq)


@pytest.mark.parametrize("time", ["2026-03-31T23:59:59.000000Z", "2026-04-01T10:00:00Z", "2026-02-30T10:00:00.000000Z", 17])
def test_time(world, verify, time):
    seq = world.transfer("tr-9", "wuhan-platform", "steel-co", 5, world.keys["platform"])
    world.leaves[seq]["time"] = time
    only(verify(world), "TIME", seq)


def test_time_compares_with_the_previous_leaf(world, verify):
    """A leaf moved later than its successor: only the successor is out of order."""
    first = world.transfer("tr-9", "wuhan-platform", "steel-co", 5, world.keys["platform"])
    second = world.transfer("tr-10", "wuhan-platform", "steel-co", 5, world.keys["platform"])
    world.transfer("tr-11", "wuhan-platform", "steel-co", 5, world.keys["platform"])
    world.leaves[first]["time"] = "2026-04-01T12:00:00.000000Z"  # time is not signed
    only(verify(world), "TIME", second)


# -- SCHEMA --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda body: body.update(amount_g="5"), id="ill-typed"),
        pytest.param(lambda body: body.update(amount_g=0), id="amount-zero"),
        pytest.param(lambda body: body.update(memo="x"), id="extra-field"),
        pytest.param(lambda body: body.pop("transfer_id"), id="missing-field"),
        pytest.param(lambda body: body.update(to="wuhan-platform"), id="to-equals-from"),
        pytest.param(lambda body: body.update(to="no/slash"), id="bad-identifier"),
        pytest.param(lambda body: body.update(request_id=""), id="empty-request-id"),
        pytest.param(lambda body: body.update(amount_g=True), id="bool-is-not-int"),
    ],
)
def test_schema_transfer(world, verify, change):
    seq = world.transfer("tr-9", "wuhan-platform", "steel-co", 5, world.keys["platform"])
    change(world.leaves[seq]["body"])
    world.resign(seq, world.keys["platform"])
    only(verify(world), "SCHEMA", seq)


def test_schema_unknown_type(world, verify):
    seq = world.event("transfer.reverse", {"transfer_id": "tr-1"}, world.admin)
    only(verify(world), "SCHEMA", seq)


def test_effects_missing_or_extra_is_encoding(world, verify):
    """Section 3 puts effects on exactly four types: a leaf without them is not a leaf."""
    seq = world.transfer("tr-9", "wuhan-platform", "steel-co", 5, world.keys["platform"])
    del world.leaves[seq]["effects"]
    seq2 = world.event("methodology.eligibility", {"methodology_id": "HB-GT-METRO", "offset_eligible": True}, world.admin, effects=[[0, 1]])
    result = verify(world)
    assert [(f.code, f.seq) for f in result.violations.listed] == [("ENCODING", seq), ("ENCODING", seq2)]


def test_schema_effects_ill_typed(world, verify):
    seq = world.transfer("tr-9", "wuhan-platform", "steel-co", 5, world.keys["platform"], effects=[["0", 5]])
    only(verify(world), "SCHEMA", seq)


@pytest.mark.parametrize(
    "event_type, body",
    [
        ("key.register", {"key_id": "0" * 16, "public_key": TestKey("x").public_b64, "roles": [], "label": "x"}),
        ("key.register", {"key_id": TestKey("x").key_id, "public_key": TestKey("x").public_b64, "roles": ["ets", "ets"], "label": "x"}),
        ("key.register", {"key_id": TestKey("x").key_id, "public_key": TestKey("x").public_b64, "roles": ["auditor"], "label": "x"}),
        ("account.open", {"account_id": "a", "kind": "bank", "name": "a", "region": "420100", "controllers": [TestKey("x").key_id], "platform": None}),
        ("account.open", {"account_id": "a", "kind": "enterprise", "name": "a", "region": "4201", "controllers": [TestKey("x").key_id], "platform": None}),
        ("account.open", {"account_id": "a", "kind": "enterprise", "name": "a", "region": "420100", "controllers": [], "platform": None}),
        ("methodology.register", {"methodology_id": "m", "version": 1, "title": "t", "sector": "mining", "params": {}, "offset_eligible": True}),
        ("registry.rules", {"rules": {"offset_cap_ppm": 1_000_001, "offset_regions": [], "offset_vintage_years": 1}}),
        ("issuance", {"issuance_id": "i", "account": "mall-co", "methodology_id": "HB-GT-METRO", "vintage": 26, "region": "420100", "amount_g": 1, "batches": [], "evidence": None}),
        ("neutrality.claim", {"claim_id": "c", "claimant": "mall-co", "subject": {"kind": "event", "name": "x"}, "period_start": "2026-03-04", "period_end": "2026-03-03", "footprint_g": 1, "retirements": ["ret-2"]}),
        ("offset.surrender", {"surrender_id": "s", "entity": "steel-co", "compliance_year": 2026, "allocation_g": 1, "retirements": []}),
    ],
)
def test_schema_field_rules(world, verify, event_type, body):
    effects = [[0, 1]] if event_type == "issuance" else None
    seq = world.event(event_type, body, world.admin, effects=effects)
    only(verify(world), "SCHEMA", seq)


def test_schema_genesis_of_another_origin(registry, verify):
    registry.event("registry.genesis", {"origin": "other.example/log", "name": "x", "rules": {"offset_cap_ppm": 0, "offset_regions": [], "offset_vintage_years": 0}}, registry.root)
    only(verify(registry), "SCHEMA", 0)


# -- keys and signatures --------------------------------------------------------------------------


def test_signature_altered_body(world, verify):
    """The operator changes a signed body (here: who receives) without the signer's key."""
    seq = world.transfer("tr-9", "wuhan-platform", "steel-co", 5, world.keys["platform"])
    world.leaves[seq]["body"]["to"] = "mall-co"
    only(verify(world), "SIGNATURE", seq)


def test_signature_of_another_origin(world, verify):
    seq = world.transfer("tr-9", "wuhan-platform", "steel-co", 5, world.keys["platform"])
    world.origin, origin = "registry.other.example/puhui", world.origin
    world.resign(seq, world.keys["platform"])
    world.origin = origin
    only(verify(world), "SIGNATURE", seq)


def test_signature_malformed(world, verify):
    seq = world.transfer("tr-9", "wuhan-platform", "steel-co", 5, world.keys["platform"])
    world.leaves[seq]["auth"]["sig"] = "not base64!"
    only(verify(world), "SIGNATURE", seq)


def test_key_unknown(world, verify):
    seq = world.transfer("tr-9", "wuhan-platform", "steel-co", 5, TestKey("stranger"))
    only(verify(world), "KEY_UNKNOWN", seq)


def test_key_unknown_before_signature(world, verify):
    seq = world.transfer("tr-9", "wuhan-platform", "steel-co", 5, TestKey("stranger"))
    world.leaves[seq]["auth"]["sig"] = world.leaves[0]["auth"]["sig"]
    only(verify(world), "KEY_UNKNOWN", seq)


def test_key_revoked(world, verify):
    world.event("key.revoke", {"key_id": world.keys["alice"].key_id, "reason": "lost phone"}, world.admin)
    seq = world.transfer("tr-9", "alice", "mall-co", 5, world.keys["alice"])
    only(verify(world), "KEY_REVOKED", seq)


def test_signature_checked_with_the_registered_key(world, verify):
    """A key id registered after its first use is not a guess the verifier may trust."""
    intruder = TestKey("intruder")
    seq = world.transfer("tr-9", "wuhan-platform", "steel-co", 5, intruder)
    world.key("intruder", [])
    result = verify(world)
    only(result, "KEY_UNKNOWN", seq)


# -- UNAUTHORIZED -------------------------------------------------------------------------------


def test_unauthorized_transfer_by_non_controller(world, verify):
    seq = world.transfer("tr-9", "wuhan-platform", "steel-co", 5, world.keys["mall"])
    only(verify(world), "UNAUTHORIZED", seq)


def test_unauthorized_transfer_from_missing_account(world, verify):
    seq = world.transfer("tr-9", "ghost", "steel-co", 5, world.keys["mall"], effects=[[0, 5]])
    only(verify(world), "UNAUTHORIZED", seq)


def test_unauthorized_root_signing_an_issuance(world, verify):
    seq = world.issue("iss-9", "mall-co", amount_g=5, evidence="0" * 64, by=world.root)
    only(verify(world), "UNAUTHORIZED", seq)


def test_unauthorized_admin_granting_admin(world, verify):
    world.key("admin2", ["admin"], by=world.admin)
    only(verify(world), "UNAUTHORIZED", len(world.leaves) - 1)


def test_unauthorized_admin_revoking_admin(world, verify):
    seq = world.event("key.revoke", {"key_id": world.admin.key_id, "reason": "coup"}, world.admin)
    only(verify(world), "UNAUTHORIZED", seq)


def test_unauthorized_platform_opening_an_enterprise(world, verify):
    seq = world.account("shop", "enterprise", world.keys["mall"], platform="wuhan-platform", by=world.keys["platform"])
    only(verify(world), "UNAUTHORIZED", seq)


def test_unauthorized_batch_for_another_platform(world, verify):
    other = world.key("grid-key", ["platform"])
    world.account("grid-platform", "platform", other, region="420500")
    seq = world.batch("grid-01", "wuhan-platform", other, "HB-GT-METRO")
    only(verify(world), "UNAUTHORIZED", seq)


def test_unauthorized_surrender_without_ets_role(world, verify):
    world.retire("ret-9", "steel-co", 10, "ets_offset", world.keys["steel"])
    seq = world.surrender("sur-9", "steel-co", ["ret-9"], signer=world.keys["steel"])
    only(verify(world), "UNAUTHORIZED", seq)


def test_unauthorized_genesis_twice(world, verify):
    seq = world.genesis()
    only(verify(world), "UNAUTHORIZED", seq)


def test_unauthorized_seq_zero_not_genesis(registry, verify):
    registry.key("admin", ["admin"], by=registry.root)
    only(verify(registry), "UNAUTHORIZED", 0)


def test_unauthorized_rules_by_admin(world, verify):
    seq = world.event("registry.rules", {"rules": {"offset_cap_ppm": 1_000_000, "offset_regions": [""], "offset_vintage_years": 99}}, world.admin)
    only(verify(world), "UNAUTHORIZED", seq)


# -- REPLAY and DUPLICATE_ID --------------------------------------------------------------------


def test_replay_of_a_signed_request(world, verify):
    """The operator appends a copy of a signed transfer: same signer, same request_id."""
    original = world.leaves[world.transfer("tr-9", "wuhan-platform", "steel-co", 5, world.keys["platform"])]
    copy = json.loads(jcs(original))
    copy["seq"] = len(world.leaves)
    copy["time"] = world.next_time()
    copy["effects"] = {"serials": [[original["effects"]["serials"][0][1], original["effects"]["serials"][0][1] + 5]]}
    world.leaves.append(copy)
    only(verify(world), "REPLAY", copy["seq"])


def test_request_id_is_per_signer(world, verify, codes):
    world.transfer("tr-9", "wuhan-platform", "steel-co", 5, world.keys["platform"])
    world.event("transfer", {"transfer_id": "tr-10", "from": "alice", "to": "mall-co", "amount_g": 5, "request_id": world.leaves[-1]["body"]["request_id"]}, world.keys["alice"], effects=world._take("alice", 5))
    assert codes(verify(world)) == []


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda w: w.account("mall-co", "enterprise", w.keys["mall"]), id="account"),
        pytest.param(lambda w: w.transfer("tr-1", "wuhan-platform", "steel-co", 5, w.keys["platform"]), id="transfer"),
        pytest.param(lambda w: w.retire("ret-1", "mall-co", 5, "voluntary", w.keys["mall"]), id="retirement"),
        pytest.param(lambda w: w.cancel("can-1", "mall-co", 5), id="cancellation"),
        pytest.param(lambda w: w.issue("iss-1", "mall-co", amount_g=5, evidence="1" * 64), id="issuance"),
        pytest.param(lambda w: w.methodology("HB-GT-METRO", version=1), id="methodology-version"),
        pytest.param(lambda w: w.batch("wh-01", "wuhan-platform", w.keys["platform"], "HB-GT-METRO", write_file=False), id="batch"),
        pytest.param(lambda w: w.event("key.register", {"key_id": w.keys["alice"].key_id, "public_key": w.keys["alice"].public_b64, "roles": [], "label": "again"}, w.admin), id="key"),
        pytest.param(lambda w: w.event("key.register", {"key_id": w.root.key_id, "public_key": w.root.public_b64, "roles": [], "label": "root"}, w.root), id="root-key"),
        pytest.param(lambda w: (w.retire("ret-9", "steel-co", 10, "ets_offset", w.keys["steel"]), w.surrender("sur-1", "steel-co", ["ret-9"]))[1], id="surrender"),
        pytest.param(lambda w: (w.retire("ret-9", "mall-co", 10, "carbon_neutrality", w.keys["mall"]), w.claim("claim-1", "mall-co", ["ret-9"], 5, w.keys["mall"]))[1], id="claim"),
    ],
)
def test_duplicate_id(world, verify, make):
    seq = make(world)
    only(verify(world), "DUPLICATE_ID", seq)


# -- UNKNOWN_REF --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda w: w.transfer("tr-9", "wuhan-platform", "ghost", 5, w.keys["platform"]), id="transfer-to"),
        pytest.param(lambda w: w.issue("iss-9", "wuhan-platform", amount_g=5, batches=["ghost-batch"], effects=[[10**6, 10**6 + 5]]), id="issuance-batch"),
        pytest.param(lambda w: w.issue("iss-9", "ghost", amount_g=5, evidence="1" * 64), id="issuance-account"),
        pytest.param(lambda w: w.issue("iss-9", "mall-co", amount_g=5, evidence="1" * 64, methodology_id="HB-NOPE"), id="issuance-methodology"),
        pytest.param(lambda w: w.surrender("sur-9", "steel-co", ["ret-404"]), id="surrender-retirement"),
        pytest.param(lambda w: w.surrender("sur-9", "mall-co", ["ret-1"]), id="surrender-entity-kind"),
        pytest.param(lambda w: w.claim("claim-9", "mall-co", ["ret-404"], 5, w.keys["mall"]), id="claim-retirement"),
        pytest.param(lambda w: w.methodology("HB-GT-METRO", version=3), id="methodology-version-skip"),
        pytest.param(lambda w: w.methodology("HB-NEW", version=2), id="methodology-new-at-2"),
        pytest.param(lambda w: w.event("key.revoke", {"key_id": "0123456789abcdef", "reason": "x"}, w.admin), id="revoke-unknown"),
        pytest.param(lambda w: w.account("bob", "individual", TestKey("bob-unregistered")), id="controller-unregistered"),
        pytest.param(lambda w: w.account("bob", "individual", w.keys["alice"], platform="mall-co"), id="platform-not-a-platform"),
        pytest.param(lambda w: w.batch("wh-09", "wuhan-platform", w.keys["platform"], "HB-NOPE"), id="batch-methodology"),
        pytest.param(lambda w: w.event("methodology.eligibility", {"methodology_id": "HB-NOPE", "offset_eligible": True}, w.admin), id="eligibility"),
    ],
)
def test_unknown_ref(world, verify, make):
    seq = make(world)
    only(verify(world), "UNKNOWN_REF", seq)


def test_revoking_twice_is_unknown_ref(world, verify):
    world.event("key.revoke", {"key_id": world.keys["alice"].key_id, "reason": "lost"}, world.admin)
    seq = world.event("key.revoke", {"key_id": world.keys["alice"].key_id, "reason": "lost"}, world.admin)
    only(verify(world), "UNKNOWN_REF", seq)


# -- serials ------------------------------------------------------------------------------------


@pytest.mark.parametrize("effects", [[[0, 5]], [[10**9, 10**9 + 5]], [[0, 2], [3, 6]], []])
def test_serials_not_the_next_range(world, verify, effects):
    seq = world.issue("iss-9", "mall-co", amount_g=5, evidence="1" * 64, effects=effects)
    only(verify(world), "SERIALS", seq)


def test_recycled_retired_credits(world, verify):
    """Serials retired by steel-co (ret-1) moved again, by steel-co's own key."""
    retired = world.leaves[[leaf["body"].get("retirement_id") for leaf in world.leaves].index("ret-1")]["effects"]["serials"]
    seq = world.transfer("tr-9", "steel-co", "mall-co", 10, world.keys["steel"], effects=[[retired[0][0], retired[0][0] + 10]])
    only(verify(world), "NOT_HELD", seq)


def test_double_spend(world, verify):
    held = [list(pair) for pair in world.holdings["alice"]]
    world.transfer("tr-9", "alice", "mall-co", 10, world.keys["alice"], effects=[[held[0][0], held[0][0] + 10]])
    seq = world.transfer("tr-10", "alice", "steel-co", 10, world.keys["alice"], effects=[[held[0][0], held[0][0] + 10]])
    only(verify(world), "NOT_HELD", seq)


@pytest.mark.parametrize(
    "effects",
    [
        pytest.param(lambda s: [[s + 5, s + 10], [s, s + 5]], id="unsorted"),
        pytest.param(lambda s: [[s, s + 5], [s + 5, s + 10]], id="not-merged"),
        pytest.param(lambda s: [[s, s + 9]], id="sum"),
        pytest.param(lambda s: [[s + 5, s + 5], [s, s + 10]], id="empty-range"),
    ],
)
def test_not_held_shapes(world, verify, effects):
    start = world.holdings["wuhan-platform"][0][0]
    seq = world.transfer("tr-9", "wuhan-platform", "steel-co", 10, world.keys["platform"], effects=effects(start))
    only(verify(world), "NOT_HELD", seq)


def test_cancelled_serials_are_final(world, verify):
    cancelled = world.leaves[[leaf["body"].get("cancellation_id") for leaf in world.leaves].index("can-1")]["effects"]["serials"]
    seq = world.transfer("tr-9", "wuhan-platform", "steel-co", 10, world.keys["platform"], effects=cancelled)
    only(verify(world), "NOT_HELD", seq)


def test_rejected_event_changes_nothing(world, verify):
    """A transfer with a bad signature must not move serials: the next honest transfer of the
    same serials by their real holder is valid."""
    platform = world.keys["platform"]
    bad = world.transfer("tr-9", "wuhan-platform", "steel-co", 10, platform)
    world.leaves[bad]["body"]["to"] = "mall-co"  # signature now broken
    moved = world.leaves[bad]["effects"]["serials"]
    world.transfer("tr-10", "wuhan-platform", "mall-co", 10, platform, effects=moved)
    only(verify(world), "SIGNATURE", bad)


# -- issuance -----------------------------------------------------------------------------------


def test_issuance_amount_not_the_batch_total(world, verify):
    world.batch("wh-03", "wuhan-platform", world.keys["platform"], "HB-GT-METRO", period=("2026-03-01", "2026-03-31"))
    seq = world.issue("iss-9", "wuhan-platform", amount_g=world.batch_total("wh-03") + 1, batches=["wh-03"])
    only(verify(world), "ISSUANCE_AMOUNT", seq)


@pytest.mark.parametrize(
    "options",
    [
        pytest.param({"methodology_id": "HB-RS-RECYCLE"}, id="methodology"),
        pytest.param({"vintage": 2025}, id="vintage"),
        pytest.param({"region": "420500"}, id="region"),
        pytest.param({"evidence": "2" * 64}, id="batches-and-evidence"),
    ],
)
def test_issuance_inconsistent_with_batches(world, verify, options):
    world.batch("wh-03", "wuhan-platform", world.keys["platform"], "HB-GT-METRO", period=("2026-03-01", "2026-03-31"))
    seq = world.issue("iss-9", "wuhan-platform", batches=["wh-03"], **options)
    only(verify(world), "ISSUANCE_AMOUNT", seq)


def test_issuance_without_batches_or_evidence(world, verify):
    seq = world.issue("iss-9", "mall-co", amount_g=5)
    only(verify(world), "ISSUANCE_AMOUNT", seq)


def test_issuance_period_across_years(world, verify):
    world.batch("wh-03", "wuhan-platform", world.keys["platform"], "HB-GT-METRO", period=("2025-12-01", "2026-01-31"))
    seq = world.issue("iss-9", "wuhan-platform", batches=["wh-03"])
    only(verify(world), "ISSUANCE_AMOUNT", seq)


def test_double_issuance_from_one_batch(world, verify):
    seq = world.issue("iss-9", "wuhan-platform", batches=["wh-01"])
    only(verify(world), "DOUBLE_ISSUANCE", seq)


def test_double_issuance_batch_listed_twice(world, verify):
    world.batch("wh-03", "wuhan-platform", world.keys["platform"], "HB-GT-METRO", period=("2026-03-01", "2026-03-31"))
    seq = world.issue("iss-9", "wuhan-platform", batches=["wh-03", "wh-03"])
    only(verify(world), "DOUBLE_ISSUANCE", seq)


# -- surrenders and claims -------------------------------------------------------------------------


def test_double_claim_surrender_twice(world, verify):
    seq = world.surrender("sur-9", "steel-co", ["ret-1"])
    only(verify(world), "DOUBLE_CLAIM", seq)


def test_double_claim_offset_and_neutrality(world, verify):
    """One retirement used as an offset and then for a neutrality claim."""
    seq = world.claim("claim-9", "steel-co", ["ret-1"], 10, world.keys["steel"])
    only(verify(world), "DOUBLE_CLAIM", seq)


def test_a_used_retirement_keeps_its_id(world, verify):
    """ret-1 was surrendered: its id can still not be taken by a new retirement, nor used again."""
    seq = world.retire("ret-1", "steel-co", 10, "ets_offset", world.keys["steel"])
    world.surrender("sur-9", "steel-co", ["ret-1"])
    result = verify(world)
    assert [(f.code, f.seq) for f in result.violations.listed] == [("DUPLICATE_ID", seq), ("DOUBLE_CLAIM", seq + 1)]


def test_double_claim_listed_twice(world, verify):
    world.retire("ret-9", "steel-co", 10, "ets_offset", world.keys["steel"])
    seq = world.surrender("sur-9", "steel-co", ["ret-9", "ret-9"])
    only(verify(world), "DOUBLE_CLAIM", seq)


def test_claim_mismatch_purpose(world, verify):
    world.retire("ret-9", "steel-co", 10, "voluntary", world.keys["steel"])
    seq = world.surrender("sur-9", "steel-co", ["ret-9"])
    only(verify(world), "CLAIM_MISMATCH", seq)


def test_claim_mismatch_account(world, verify):
    world.account("steel-2", "compliance_entity", world.keys["steel"], region="420200")
    world.retire("ret-9", "steel-co", 10, "ets_offset", world.keys["steel"])
    seq = world.surrender("sur-9", "steel-2", ["ret-9"])
    only(verify(world), "CLAIM_MISMATCH", seq)


def test_claim_mismatch_neutrality_from_another_claimant(world, verify):
    world.retire("ret-9", "mall-co", 10, "carbon_neutrality", world.keys["mall"])
    seq = world.claim("claim-9", "alice", ["ret-9"], 5, world.keys["alice"])
    only(verify(world), "CLAIM_MISMATCH", seq)


def _surrender_from(world, issuance_options, rules=None):
    """Issue to steel-co with the given options, retire it as an offset, and surrender it."""
    if rules:
        world.event("registry.rules", {"rules": rules}, world.root)
    world.issue("iss-9", "steel-co", amount_g=1_000, evidence="3" * 64, **issuance_options)
    world.holdings["steel-co"] = [pair for pair in world.holdings["steel-co"] if pair[0] >= world.next_serial - 1_000]
    world.retire("ret-9", "steel-co", 1_000, "ets_offset", world.keys["steel"])
    return world.surrender("sur-9", "steel-co", ["ret-9"])


@pytest.mark.parametrize(
    "options",
    [
        pytest.param({"methodology_id": "HB-RS-RECYCLE"}, id="methodology"),
        pytest.param({"vintage": 2022}, id="vintage-too-old"),
        pytest.param({"vintage": 2027}, id="vintage-after-year"),
        pytest.param({"region": "510100"}, id="region"),
    ],
)
def test_offset_ineligible(world, verify, options):
    seq = _surrender_from(world, options)
    only(verify(world), "OFFSET_INELIGIBLE", seq)


def test_offset_ineligible_after_eligibility_withdrawn(world, verify):
    world.event("methodology.eligibility", {"methodology_id": "HB-GT-METRO", "offset_eligible": False}, world.admin)
    seq = _surrender_from(world, {})
    only(verify(world), "OFFSET_INELIGIBLE", seq)


def test_offset_rules_in_force_at_the_surrender(world, verify, codes):
    """Rules changed by registry.rules apply to the events after it."""
    seq = _surrender_from(world, {"region": "510100"}, rules={"offset_cap_ppm": 100_000, "offset_regions": ["42", "51"], "offset_vintage_years": 3})
    assert codes(verify(world)) == []
    assert seq


def test_offset_cap(world, verify):
    seq = _surrender_from(world, {})
    world.leaves[seq]["body"]["allocation_g"] = 10_000  # cap 1,000 g; 150 g surrendered before
    world.resign(seq, world.keys["ets"])
    only(verify(world), "OFFSET_CAP", seq)


def test_offset_cap_is_per_entity_and_year(world, verify, codes):
    seq = _surrender_from(world, {})
    world.leaves[seq]["body"].update(allocation_g=10_000, compliance_year=2027)
    world.resign(seq, world.keys["ets"])
    assert codes(verify(world)) == []


def test_neutrality_short(world, verify):
    world.retire("ret-9", "mall-co", 100, "carbon_neutrality", world.keys["mall"])
    seq = world.claim("claim-9", "mall-co", ["ret-9"], 101, world.keys["mall"])
    only(verify(world), "NEUTRALITY_SHORT", seq)


def test_neutrality_claim_by_admin(world, verify, codes):
    world.retire("ret-9", "mall-co", 100, "carbon_neutrality", world.keys["mall"])
    world.claim("claim-9", "mall-co", ["ret-9"], 100, world.admin)
    assert codes(verify(world)) == []


# -- a key's life ----------------------------------------------------------------------------------


def test_controllers_change_hands(world, verify):
    world.event("account.controllers", {"account_id": "mall-co", "controllers": [world.keys["alice"].key_id]}, world.keys["mall"])
    seq = world.transfer("tr-9", "mall-co", "alice", 5, world.keys["mall"])
    only(verify(world), "UNAUTHORIZED", seq)


def test_records_helper_is_canonical():
    record = record_bytes("a-1", fingerprint_of("a-1"), "2026-01-01T00:00:00.000000Z", 1)
    assert record == jcs(json.loads(record))


def test_worker_guess_of_a_key_is_rechecked(world, tmp_path):
    """Ahead of replay, workers check each signature with the first key.register seen for its key
    id. Here that registration is refused (signed by a key without the admin role), so the event
    signed by the would-be key is KEY_UNKNOWN although the workers found its signature good; the
    results equal the in-process run."""
    from verifier.bundle import verify_bundle

    intruder = TestKey("intruder")
    refused = world.event("key.register", {"key_id": intruder.key_id, "public_key": intruder.public_b64, "roles": [], "label": "x"}, world.keys["mall"])
    used = world.transfer("tr-9", "wuhan-platform", "steel-co", 5, intruder)
    world.key("intruder", [])
    world.transfer("tr-10", "wuhan-platform", "steel-co", 5, world.keys["platform"])
    bundle = world.write(tmp_path)
    inline = verify_bundle(bundle.path, bundle.trust_object(), jobs=1)
    parallel = verify_bundle(bundle.path, bundle.trust_object(), jobs=2, min_parallel_bytes=0)
    assert [(f.code, f.seq) for f in parallel.violations.listed] == [("UNAUTHORIZED", refused), ("KEY_UNKNOWN", used)]
    assert parallel.violations.listed == inline.violations.listed


def test_progress_is_reported(world, tmp_path):
    from verifier.bundle import verify_bundle

    calls = []
    bundle = world.write(tmp_path)
    verify_bundle(bundle.path, bundle.trust_object(), jobs=1, progress=lambda done, total: calls.append((done, total)))
    assert calls and calls[-1][0] == calls[-1][1] > 0
