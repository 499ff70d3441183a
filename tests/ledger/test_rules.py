"""Every rule of spec section 6 refuses what it must, with the spec's code, and writes nothing."""

from __future__ import annotations

import base64
import itertools
import shutil

import pytest

from ledger.eligibility import check_request
from ledger.errors import Rejected
from ledger.rules import batch_commitment
from ledger.schema import check_body, check_submission
from world import World, actor

ELIGIBLE_ISSUANCE = "iss-1"  # metro, vintage 2026, region 420100
RETIREMENT = {"retirement_id": "r", "account": "mall-co", "amount_g": 1, "purpose": "voluntary", "beneficiary": "x",
              "request_id": "q"}


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    """One history, copied per test: building it once keeps the suite fast."""
    path = tmp_path_factory.mktemp("rules") / "template.sqlite3"
    w = World(f"sqlite:///{path}").setup().history()
    w.registry.close()
    return path


@pytest.fixture
def world(template, tmp_path):
    path = tmp_path / "registry.sqlite3"
    shutil.copy(template, path)
    w = World.__new__(World)
    fresh = World(f"sqlite:///{tmp_path / 'unused.sqlite3'}")  # the same actors and keys
    fresh.registry.close()
    w.__dict__.update(fresh.__dict__)
    w.url = f"sqlite:///{path}"
    w._activity = itertools.count(10_000)  # past the template's activity ids
    w.reopen()
    yield w
    w.registry.close()


def rejected(world: World, code: str, fn) -> Rejected:
    size = world.registry.size
    with pytest.raises(Rejected) as info:
        fn()
    assert info.value.code == code, info.value
    assert world.registry.size == size
    return info.value


def test_schema(world):
    c, w = world.client, world
    for body in ({"retirement_id": "r", "account": "mall-co", "amount_g": 1.5, "purpose": "voluntary", "beneficiary": "x"},
                 {"retirement_id": "r", "account": "mall-co", "amount_g": 2**53, "purpose": "voluntary", "beneficiary": "x"},
                 {"retirement_id": "r", "account": "mall-co", "amount_g": 0, "purpose": "voluntary", "beneficiary": "x"},
                 {"retirement_id": "r", "account": "mall-co", "amount_g": 1, "purpose": "fun", "beneficiary": "x"},
                 {"retirement_id": "r", "account": "mall-co", "amount_g": 1, "purpose": "voluntary", "beneficiary": "Cafe\u0301"},
                 {"retirement_id": "r", "account": "mall-co", "amount_g": 1, "purpose": "voluntary"},
                 {"retirement_id": "r", "account": "mall-co", "amount_g": True, "purpose": "voluntary", "beneficiary": "x"},
                 {"retirement_id": "r/../", "account": "mall-co", "amount_g": 1, "purpose": "voluntary", "beneficiary": "x"},
                 {"retirement_id": "r", "account": "mall-co", "amount_g": 1, "purpose": "voluntary", "beneficiary": "x", "extra": 1}):
        rejected(w, "SCHEMA", lambda: c.submit(w.mall, "retirement", body))
    rejected(w, "SCHEMA", lambda: w.registry.append({"type": "minting", "body": {}, "auth": {"key": w.mall.key_id, "sig": ""}}))
    rejected(w, "SCHEMA", lambda: c.transfer(w.mall, "t", "mall-co", "mall-co", 1))
    impostor = actor("impostor")
    body = {"key_id": w.bob.key_id, "label": "x", "roles": [], "public_key": base64.b64encode(impostor.signer.public_key).decode()}
    rejected(w, "SCHEMA", lambda: c.submit(w.admin, "key.register", body))


@pytest.mark.parametrize("body, log_format, message", [
    ({**RETIREMENT, "evil": 1}, 1, "the body: unknown field(s) evil"),
    (RETIREMENT, 2, "the body: missing field(s) issuances"),
    ([], 1, "the body: must be a JSON object"),
    ({**RETIREMENT, "amount_g": 0}, 1, "amount_g: "),  # a field's own path is unchanged
])
def test_a_schema_message_names_the_body_when_it_is_the_body_at_fault(body, log_format, message):
    """Trial 6, finding 17: "SCHEMA: : unknown field(s) evil", an empty field path."""
    with pytest.raises(Rejected) as info:
        check_body("retirement", body, log_format)
    assert info.value.code == "SCHEMA" and info.value.message.startswith(message), info.value.message


@pytest.mark.parametrize("event, message", [
    ({"type": "retirement", "body": {}, "auth": {}, "note": "x"}, "event: must have exactly type, body, auth (unknown field(s) note)"),
    ({"type": "retirement", "body": {}}, "event: must have exactly type, body, auth (missing field(s) auth)"),
])
def test_an_event_of_the_wrong_shape_names_only_what_is_wrong(event, message):
    """Trial 6's notes: "(missing [], unknown ['note'])"."""
    with pytest.raises(Rejected) as info:
        check_submission(event, 2)
    assert info.value.code == "SCHEMA" and info.value.message == message, info.value.message


def test_an_eligibility_request_names_the_body_too():
    with pytest.raises(Rejected) as info:
        check_request({"entity": "steel-co", "compliance_year": 2026, "allocation_g": 1, "retirements": ["r"],
                       "evil": 1}, 1)
    assert info.value.message == "the body: unknown field(s) evil"


def test_duplicate_json_keys_and_floats_are_refused_by_the_strict_parser():
    from ledger.canonical import parse_strict
    for text in ('{"a": 1, "a": 2}', '{"a": 1.0}', '{"a": 1e3}', '{"a": NaN}', '{"a": 9007199254740992}', '{"a": "\\ud800"}'):
        with pytest.raises(Rejected) as info:
            parse_strict(text)
        assert info.value.code == "SCHEMA"


def test_signature_key_unknown_and_revoked(world):
    c, w = world.client, world
    event = c.signed(w.mall, "retirement", {"retirement_id": "r", "account": "mall-co", "amount_g": 1, "purpose": "voluntary", "beneficiary": "x"})
    event["body"]["amount_g"] = 2
    rejected(w, "SIGNATURE", lambda: w.registry.append(event))
    rejected(w, "KEY_UNKNOWN", lambda: c.retire(actor("stranger"), "r", "mall-co", 1, "voluntary", "x"))
    c.revoke_key(w.admin, w.bob.key_id, "lost phone")
    rejected(w, "KEY_REVOKED", lambda: c.transfer(w.bob, "t", "bob", "alice", 1))
    rejected(w, "UNKNOWN_REF", lambda: c.revoke_key(w.admin, w.bob.key_id, "again"))


def test_a_signature_for_another_registry_does_not_verify(world):
    from ledger.registry import sign_event
    body = {"retirement_id": "r", "account": "mall-co", "amount_g": 1, "purpose": "voluntary", "beneficiary": "x", "request_id": "q"}
    event = sign_event(world.mall.signer, "test.other.example/puhui", "retirement", body, log_format=1)
    rejected(world, "SIGNATURE", lambda: world.registry.append(event))


def test_unauthorized(world):
    c, w = world.client, world
    rejected(w, "UNAUTHORIZED", lambda: c.transfer(w.mall, "t", "steel-co", "mall-co", 1))
    missing = rejected(w, "UNAUTHORIZED", lambda: c.transfer(w.mall, "t", "nowhere", "mall-co", 1))
    assert "a controller of nowhere, and no account nowhere exists" in missing.message  # not a wrong key
    assert "no account" not in rejected(w, "UNAUTHORIZED", lambda: c.retire(w.mall, "r", "steel-co", 1, "voluntary",
                                                                             "x")).message
    assert "no account nobody exists" in rejected(w, "UNAUTHORIZED", lambda: c.retire(w.mall, "r", "nobody", 1,
                                                                                      "voluntary", "x")).message
    rejected(w, "UNAUTHORIZED", lambda: c.issue(w.wuhan, "i", "wuhan-platform", "HB-GT-METRO", 2026, "420100", 1, evidence="0" * 64))
    rejected(w, "UNAUTHORIZED", lambda: c.register_key(w.admin, actor("new-admin"), ["admin"]))
    rejected(w, "UNAUTHORIZED", lambda: c.open_account(w.wuhan, "co", "enterprise", "Co", "420100", [w.mall], platform="wuhan-platform"))
    rejected(w, "UNAUTHORIZED", lambda: c.open_account(w.grid, "p", "individual", "p", "420100", [w.bob], platform="wuhan-platform"))
    rejected(w, "UNAUTHORIZED", lambda: c.open_account(w.root, "co", "enterprise", "Co", "420100", [w.mall]))
    rejected(w, "UNAUTHORIZED", lambda: c.surrender(w.admin, "s", "steel-co", 2026, 10**6, ["ret-1"]))
    rejected(w, "UNAUTHORIZED", lambda: c.revoke_key(w.admin, w.admin.key_id, "coup"))
    rejected(w, "UNAUTHORIZED", lambda: c.batch(w.grid, "b-grid", "wuhan-platform", "HB-GT-METRO", 1, "2026-01-01", "2026-01-31", w.records(1)))
    genesis = {"origin": "x", "name": "again", "rules": {"offset_cap_ppm": 1, "offset_vintage_years": 1, "offset_regions": []}}
    rejected(w, "UNAUTHORIZED", lambda: c.submit(w.root, "registry.genesis", genesis))


def test_replay_and_duplicate_ids(world):
    c, w = world.client, world
    first = c.signed(w.mall, "retirement", {"retirement_id": "r-a", "account": "mall-co", "amount_g": 1, "purpose": "voluntary", "beneficiary": "x", "request_id": "same"})
    w.registry.append(first)
    rejected(w, "REPLAY", lambda: c.submit(w.mall, "retirement", {"retirement_id": "r-b", "account": "mall-co", "amount_g": 1, "purpose": "voluntary", "beneficiary": "x", "request_id": "same"}))
    rejected(w, "DUPLICATE_ID", lambda: c.retire(w.mall, "ret-2", "mall-co", 1, "voluntary", "x"))
    rejected(w, "DUPLICATE_ID", lambda: c.open_account(w.admin, "alice", "individual", "x", "420100", [w.bob]))
    rejected(w, "DUPLICATE_ID", lambda: c.register_key(w.admin, w.bob, []))
    rejected(w, "DUPLICATE_ID", lambda: c.register_methodology(w.admin, "HB-GT-METRO", 1, "again", "green_travel", {}, True))
    rejected(w, "UNKNOWN_REF", lambda: c.register_methodology(w.admin, "HB-GT-METRO", 3, "skips", "green_travel", {}, True))
    rejected(w, "DUPLICATE_ID", lambda: w.batch("wh-2026-01", w.records(1)))


def test_unknown_references(world):
    c, w = world.client, world
    rejected(w, "UNKNOWN_REF", lambda: c.transfer(w.mall, "t", "mall-co", "nobody", 1))
    rejected(w, "UNKNOWN_REF", lambda: c.issue(w.admin, "i", "nobody", "HB-GT-METRO", 2026, "420100", 1, evidence="0" * 64))
    rejected(w, "UNKNOWN_REF", lambda: c.issue(w.admin, "i", "mall-co", "HB-NOPE", 2026, "420100", 1, evidence="0" * 64))
    rejected(w, "UNKNOWN_REF", lambda: c.issue(w.admin, "i", "mall-co", "HB-GT-METRO", 2026, "420100", 1, ["no-batch"]))
    rejected(w, "UNKNOWN_REF", lambda: c.open_account(w.admin, "x", "enterprise", "X", "420100", [actor("stranger")]))
    rejected(w, "UNKNOWN_REF", lambda: c.open_account(w.admin, "x", "individual", "X", "420100", [w.bob], platform="mall-co"))
    rejected(w, "UNKNOWN_REF", lambda: c.surrender(w.ets, "s", "mall-co", 2026, 10**6, ["ret-1"]))
    rejected(w, "UNKNOWN_REF", lambda: c.surrender(w.ets, "s", "steel-co", 2026, 10**6, ["ret-404"]))
    rejected(w, "UNKNOWN_REF", lambda: c.set_eligibility(w.admin, "HB-NOPE", True))
    rejected(w, "UNKNOWN_REF", lambda: c.batch(w.wuhan, "b", "wuhan-platform", "HB-GT-METRO", 2, "2026-01-01", "2026-01-31", w.records(1)))


def test_serials_not_held_double_spend_and_recycling(world):
    c, w = world.client, world
    rejected(w, "NOT_HELD", lambda: c.transfer(w.alice, "t", "alice", "bob", 10**6))
    rejected(w, "NOT_HELD", lambda: c.retire(w.steel, "r", "steel-co", 501, "ets_offset", "steel"))
    c.retire(w.steel, "r-all", "steel-co", 500, "voluntary", "steel")
    rejected(w, "NOT_HELD", lambda: c.transfer(w.steel, "t", "steel-co", "mall-co", 1))  # retired serials never move


def test_given_effects_are_checked_when_replaying(world):
    """A replayed leaf carries its serials: recycled, unmerged or wrong-sized ones are refused."""
    from ledger.rules import judge
    from ledger.state import MemoryActivityIndex
    state, w = world.registry.state, world
    body = {"retirement_id": "r", "account": "steel-co", "amount_g": 10, "purpose": "voluntary", "beneficiary": "x", "request_id": "q"}
    key = state.keys[w.steel.key_id]
    for serials, code in (([[0, 10]], "NOT_HELD"), ([[1500, 1505], [1505, 1510]], "NOT_HELD"), ([[1500, 1509]], "NOT_HELD")):
        with pytest.raises(Rejected) as info:
            judge(state, "retirement", body, key, activities=MemoryActivityIndex(), effects=serials)
        assert info.value.code == code
    issuance = {"issuance_id": "i", "account": "mall-co", "methodology_id": "HB-GT-METRO", "vintage": 2026, "region": "420100",
                "amount_g": 5, "batches": [], "evidence": "0" * 64, "request_id": "q"}
    with pytest.raises(Rejected) as info:
        judge(state, "issuance", issuance, state.keys[w.admin.key_id], activities=MemoryActivityIndex(),
              effects=[[0, 5]])
    assert info.value.code == "SERIALS"


def test_issuance_amount_and_double_issuance(world):
    c, w = world.client, world
    records = w.records(5)
    w.batch("wh-b", records)
    total = sum(r["reduction_g"] for r in records)
    issue = lambda **kw: c.issue(w.admin, "i-x", **({"account": "mall-co", "methodology_id": "HB-GT-METRO", "vintage": 2026,
                                                     "region": "420100", "amount_g": total, "batches": ["wh-b"]} | kw))
    rejected(w, "ISSUANCE_AMOUNT", lambda: issue(amount_g=total + 1))
    rejected(w, "ISSUANCE_AMOUNT", lambda: issue(methodology_id="HB-RS-RECYCLE"))
    rejected(w, "ISSUANCE_AMOUNT", lambda: issue(vintage=2025))
    rejected(w, "ISSUANCE_AMOUNT", lambda: issue(region="420500"))
    rejected(w, "ISSUANCE_AMOUNT", lambda: issue(evidence="0" * 64))
    rejected(w, "ISSUANCE_AMOUNT", lambda: issue(batches=[]))
    used_total = w.registry.state.batches["wh-2026-01"].total_g
    rejected(w, "DOUBLE_ISSUANCE", lambda: issue(batches=["wh-2026-01"], amount_g=used_total))
    issue()


def test_batch_and_duplicate_activity(world):
    c, w = world.client, world
    records = w.records(3)
    body = lambda **kw: {"batch_id": "b-x", "platform": "wuhan-platform", "methodology_id": "HB-GT-METRO", "methodology_version": 1,
                         "period_start": "2026-01-01", "period_end": "2026-01-31"} | batch_commitment(records) | kw
    rejected(w, "BATCH", lambda: c.submit(w.wuhan, "activity.batch", body(count=4), records))
    rejected(w, "BATCH", lambda: c.submit(w.wuhan, "activity.batch", body(total_g=1), records))
    rejected(w, "BATCH", lambda: c.submit(w.wuhan, "activity.batch", body(root="0" * 64), records))
    rejected(w, "BATCH", lambda: c.submit(w.wuhan, "activity.batch", body(period_start="2026-02-01", period_end="2026-02-28"), records))
    rejected(w, "BATCH", lambda: c.submit(w.wuhan, "activity.batch", body(), None))
    rejected(w, "BATCH", lambda: c.submit(w.wuhan, "activity.batch", body(), [dict(records[0], reduction_g=-1)] + records[1:]))
    # The same bus ride reported by another platform: same fingerprint, different activity id.
    copy = [dict(records[0], activity_id=records[0]["activity_id"] + "-grid")]
    w.batch("b-ok", records)
    rejected(w, "DUPLICATE_ACTIVITY", lambda: w.batch("b-grid", copy, platform="grid-platform"))
    twice = w.records(2)
    twice[1] = dict(twice[1], fingerprint=twice[0]["fingerprint"])
    rejected(w, "DUPLICATE_ACTIVITY", lambda: w.batch("b-twice", twice))
    rejected(w, "DUPLICATE_ID", lambda: w.batch("b-again", [dict(records[0], fingerprint="f" * 64)]))


def test_a_record_dated_after_the_batch_event_is_refused_by_a_house_rule(world):
    """The registry's clock reads 2026-05-01 (Beijing time): an act of 2026-05-02 has not happened
    yet (docs/spec-readings.md), an act of the day itself has."""
    c, w = world.client, world
    body = lambda records: {"batch_id": "b-may", "platform": "wuhan-platform", "methodology_id": "HB-GT-METRO",
                            "methodology_version": 1, "period_start": "2026-05-01",
                            "period_end": "2026-05-31"} | batch_commitment(records)
    ahead = w.records(2, day="2026-05-02")
    refused = rejected(w, "BATCH", lambda: c.submit(w.wuhan, "activity.batch", body(ahead), ahead))
    assert "dated 2026-05-02, after the batch's own date 2026-05-01" in refused.message
    today = w.records(2, day="2026-05-01")
    c.submit(w.wuhan, "activity.batch", body(today), today)


def test_personal_data_is_kept_out_of_the_log_by_house_rules(world):
    """A platform cannot publish a name, a phone or an ID number for ever: subjects and individual
    account names are pseudonyms of the identifier form, and records carry only declared inputs."""
    c, w = world.client, world
    records = w.records(2)
    body = {"batch_id": "b-pii", "platform": "wuhan-platform", "methodology_id": "HB-GT-METRO", "methodology_version": 1,
            "period_start": "2026-01-01", "period_end": "2026-01-31"}

    def posted(changed: list[dict]):
        return lambda: c.submit(w.wuhan, "activity.batch", body | batch_commitment(changed), changed)
    named = [dict(records[0], subject="张三 13800138000")] + records[1:]
    assert "pseudonym" in rejected(w, "BATCH", posted(named)).message
    phone = [dict(records[0], inputs={**records[0]["inputs"], "phone": "13800138000"})] + records[1:]
    assert "phone" in rejected(w, "BATCH", posted(phone)).message
    refused = rejected(w, "SCHEMA", lambda: c.open_account(w.wuhan, "p-new", "individual", "王小明 420106199001011234",
                                                          "420100", [w.bob], platform="wuhan-platform"))
    assert "pseudonym" in refused.message
    c.open_account(w.wuhan, "p-new", "individual", "p-5feceb66ffc8", "420100", [w.bob], platform="wuhan-platform")
    c.open_account(w.admin, "hubei-steel", "enterprise", "湖北钢铁有限公司", "420100", [w.mall])  # a company's name is public
    c.submit(w.wuhan, "activity.batch", body | batch_commitment(records), records)


def test_surrender_and_claim_rules(world):
    c, w = world.client, world
    rejected(w, "DOUBLE_CLAIM", lambda: c.surrender(w.ets, "s", "steel-co", 2026, 10**6, ["ret-1"]))
    rejected(w, "DOUBLE_CLAIM", lambda: c.claim(w.mall, "cl", "mall-co", "event", "x", "2026-01-01", "2026-01-02", 1, ["ret-2"]))
    c.transfer(w.wuhan, "tr-s", "wuhan-platform", "steel-co", 1_000)
    c.retire(w.steel, "ret-s1", "steel-co", 100, "ets_offset", "steel-co")
    rejected(w, "DOUBLE_CLAIM", lambda: c.surrender(w.ets, "s", "steel-co", 2026, 10**6, ["ret-s1", "ret-s1"]))
    rejected(w, "CLAIM_MISMATCH", lambda: c.surrender(w.ets, "s", "steel-co", 2026, 10**6, ["ret-3"]))
    rejected(w, "CLAIM_MISMATCH", lambda: c.claim(w.steel, "cl", "steel-co", "event", "x", "2026-01-01", "2026-01-02", 1, ["ret-s1"]))
    # Vintage window: 2026 credits may not offset 2025, nor 2030 (3-year window).
    rejected(w, "OFFSET_INELIGIBLE", lambda: c.surrender(w.ets, "s", "steel-co", 2025, 10**6, ["ret-s1"]))
    rejected(w, "OFFSET_INELIGIBLE", lambda: c.surrender(w.ets, "s", "steel-co", 2030, 10**6, ["ret-s1"]))
    c.set_eligibility(w.admin, "HB-GT-METRO", False)
    rejected(w, "OFFSET_INELIGIBLE", lambda: c.surrender(w.ets, "s", "steel-co", 2026, 10**6, ["ret-s1"]))
    c.set_eligibility(w.admin, "HB-GT-METRO", True)
    # Cap: 10% of allocation; 1,500 g already surrendered for 2026 by steel-co.
    rejected(w, "OFFSET_CAP", lambda: c.surrender(w.ets, "s", "steel-co", 2026, 15_999, ["ret-s1"]))
    c.surrender(w.ets, "s", "steel-co", 2026, 16_000, ["ret-s1"])
    c.retire(w.mall, "ret-n", "mall-co", 100, "carbon_neutrality", "x")
    rejected(w, "NEUTRALITY_SHORT", lambda: c.claim(w.mall, "cl", "mall-co", "product", "x", "2026-01-01", "2026-01-02", 101, ["ret-n"]))
    c.claim(w.mall, "cl", "mall-co", "product", "x", "2026-01-01", "2026-01-02", 100, ["ret-n"])


def test_offset_regions_rule(world):
    c, w = world.client, world
    c.submit(w.root, "registry.rules", {"rules": {"offset_cap_ppm": 100_000, "offset_vintage_years": 3, "offset_regions": ["4201"]}})
    c.issue(w.admin, "i-yc", "steel-co", "HB-GT-METRO", 2026, "420500", 1_000, evidence="1" * 64)
    serials_before = w.registry.state.accounts["steel-co"].active.ranges()
    c.retire(w.steel, "ret-r", "steel-co", 1_500, "ets_offset", "steel-co")  # 500 g from Wuhan, 1,000 g from Yichang
    assert serials_before
    rejected(w, "OFFSET_INELIGIBLE", lambda: c.surrender(w.ets, "s", "steel-co", 2026, 10**8, ["ret-r"]))
