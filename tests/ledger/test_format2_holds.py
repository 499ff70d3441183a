"""Format 2's holds, chosen issuances and offsets judged at the retirement (spec section 6:
account.hold; transfer, retirement and cancellation), on both backends: every rule and code, each
refusal leaving the log as it was; holds kept across a restart; the exported log VALID to the
verifier, which reports what the registry refuses with the same code."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from hashlib import sha256
from typing import Any

import pytest
from sqlalchemy import text

from ledger.canonical import jcs
from ledger.eligibility import offset_eligibility
from ledger.errors import Rejected, StorageError
from ledger.events.claims import offset_refusal
from ledger.export import export_bundle
from ledger.replay import replay
from ledger.rules import judge
from ledger.state import MemoryActivityIndex, State, root_keys_from
from ledger.store import Store
from service.actors import Actor
from service.hubei import hubei_rules
from verifier.bundle import verify_bundle
from verifier.trust import parse_trust
from world import World

# XG-GT-BUS v1 of the format-2 vector: a section 7.1 definition, no illustrative factor.
BUS_PARAMS: dict[str, Any] = {
    "daily_cap": {"illustrative": False, "source": "scheme operating rules (test fixture)", "value_g": 1000},
    "description": "Public bus trips",
    "factors": {"g_per_trip": {"illustrative": False, "source": "test fixture", "unit": "g CO2e/trip", "value": "212.5"}},
    "fingerprint": {"fields": ["route"], "time": "minute"},
    "formula": {"expression": "1 * (g_per_trip)", "kind": "per_trip", "quantity_field": None, "quantity_unit": None,
                "rounding": "floor to whole grams, then the daily cap"},
    "inputs": {"fare": {"description": "fare class", "public": True, "required": True, "type": "enum",
                        "values": ["adult", "student", "senior"]},
               "route": {"description": "bus route", "public": False, "required": True, "type": "code"}},
}
ELIGIBLE, PLAIN = "HB-BUS", "HB-PLAIN"  # offset eligible (version 1) / never


def cast(database_url: str) -> World:
    """A format-2 registry with an admin, the carbon market, two holders and two methodologies.
    Review quorums are 0: these tests are about holds and serials, not reviews."""
    world = World(database_url, log_format=2)
    c = world.client
    c.submit(world.root, "registry.rules", {"rules": {**hubei_rules(2), "review_quorum": {"issuance": 0, "eligibility": 0}}})
    c.register_key(world.root, world.admin, ["admin"])
    c.register_key(world.admin, world.ets, ["ets"])
    for holder in (world.steel, world.mall):
        c.register_key(world.admin, holder, [])
    c.open_account(world.admin, "steel-co", "compliance_entity", "Steel works", "420200", [world.steel])
    c.open_account(world.admin, "mall-co", "enterprise", "Mall", "420100", [world.mall])
    c.register_methodology(world.admin, ELIGIBLE, 1, "Bus trips", "green_travel", BUS_PARAMS, True)
    c.register_methodology(world.admin, PLAIN, 1, "Bus trips, not for offsets", "green_travel", BUS_PARAMS, False)
    return world


def issue(world: World, issuance_id: str, account: str, amount_g: int, methodology_id: str = ELIGIBLE,
          region: str = "420100", vintage: int = 2026) -> None:
    """Every issuance of these tests: on a verification report's hash (evidence), no batches."""
    world.client.issue(world.admin, issuance_id, account, methodology_id, vintage, region, amount_g,
                       evidence=sha256(issuance_id.encode()).hexdigest())


def refused(world: World, code: str, submit, *args, **kwargs) -> None:
    """`submit(*args, **kwargs)` is refused with `code`, and the log is unchanged."""
    size = world.registry.size
    with pytest.raises(Rejected) as refusal:
        submit(*args, **kwargs)
    assert refusal.value.code == code, refusal.value.message
    assert world.registry.size == size


def serials_of(world: World, seq: int) -> list[list[int]]:
    return world.registry.leaf(seq).serials


@pytest.fixture
def world(database_url):
    w = cast(database_url)
    yield w
    w.registry.close()


# -- account.hold ----------------------------------------------------------------------------------

def test_a_hold_opens_a_case_and_closes_only_an_open_one(world):
    c, state = world.client, world.registry.state
    refused(world, "UNAUTHORIZED", c.hold, world.steel, "h-0", "steel-co", True, "CASE-1", "court order")
    refused(world, "UNKNOWN_REF", c.hold, world.admin, "h-0", "nobody", True, "CASE-1", "court order")
    refused(world, "UNKNOWN_REF", c.hold, world.admin, "h-0", "steel-co", False, "CASE-1", "never opened")
    c.hold(world.admin, "h-1", "steel-co", True, "CASE-1", "court order")
    refused(world, "DUPLICATE_ID", c.hold, world.admin, "h-1", "mall-co", True, "CASE-9", "same hold id")
    c.hold(world.admin, "h-2", "steel-co", True, "CASE-1", "the same case again: still one case")
    c.hold(world.admin, "h-3", "steel-co", True, "CASE-2", "a second case")
    c.hold(world.admin, "h-4", "mall-co", True, "CASE-1", "another account's case of that id")
    assert state.open_cases == {"steel-co": {"CASE-1", "CASE-2"}, "mall-co": {"CASE-1"}}
    c.hold(world.admin, "h-5", "mall-co", False, "CASE-1", "released")  # steel-co's CASE-1 stays open
    refused(world, "UNKNOWN_REF", c.hold, world.admin, "h-6", "mall-co", False, "CASE-1", "closed already")
    c.hold(world.admin, "h-6", "steel-co", False, "CASE-1", "released")
    assert state.open_cases == {"steel-co": {"CASE-2"}}
    c.hold(world.admin, "h-7", "steel-co", False, "CASE-2", "released")
    assert state.open_cases == {} and sorted(state.holds) == [f"h-{n}" for n in range(1, 8)]
    for malformed in ({"held": 1}, {"case_id": "no spaces"}, {"reason": ""}, {"extra": True}):
        body = {"hold_id": "h-x", "account_id": "steel-co", "held": True, "case_id": "C", "reason": "r", **malformed}
        refused(world, "SCHEMA", c.submit, world.admin, "account.hold", body)


def test_account_hold_is_no_type_of_format_1(database_url):
    world = World(database_url).setup()
    refused(world, "SCHEMA", world.client.hold, world.admin, "h-1", "steel-co", True, "CASE-1", "court order")
    world.registry.close()


def test_a_held_account_sends_nothing_but_still_receives_and_is_cancelled(world):
    c = world.client
    issue(world, "iss-s", "steel-co", 1_000)
    issue(world, "iss-m", "mall-co", 1_000)
    c.hold(world.admin, "h-1", "steel-co", True, "CASE-1", "court order")
    # In the spec's table order: UNAUTHORIZED, then UNKNOWN_REF (to, issuances), then FROZEN before NOT_HELD.
    refused(world, "UNAUTHORIZED", c.transfer, world.mall, "tr-1", "steel-co", "mall-co", 10)
    refused(world, "UNKNOWN_REF", c.transfer, world.steel, "tr-1", "steel-co", "nobody", 10)
    refused(world, "UNKNOWN_REF", c.transfer, world.steel, "tr-1", "steel-co", "mall-co", 10, issuances=["nope"])
    refused(world, "FROZEN", c.transfer, world.steel, "tr-1", "steel-co", "mall-co", 10)
    refused(world, "FROZEN", c.transfer, world.steel, "tr-1", "steel-co", "mall-co", 10**6)
    refused(world, "FROZEN", c.retire, world.steel, "ret-1", "steel-co", 10, "voluntary", "steel-co")
    refused(world, "FROZEN", c.retire, world.steel, "ret-1", "steel-co", 10, "ets_offset", "steel-co", issuances=["iss-s"])
    c.transfer(world.mall, "tr-2", "mall-co", "steel-co", 100)
    issue(world, "iss-s2", "steel-co", 50)
    seq = c.cancel(world.admin, "can-1", "steel-co", 20, "data correction").seq
    assert serials_of(world, seq) == [[0, 20]]
    steel = world.registry.state.accounts["steel-co"]
    assert (steel.active.size_g, steel.cancelled.size_g) == (1_000 + 100 + 50 - 20, 20)
    c.hold(world.admin, "h-2", "steel-co", False, "CASE-1", "released")
    c.transfer(world.steel, "tr-1", "steel-co", "mall-co", 10)
    c.retire(world.steel, "ret-1", "steel-co", 10, "voluntary", "steel-co")


# -- chosen issuances --------------------------------------------------------------------------------

def test_the_serials_are_the_lowest_of_the_chosen_issuances(world):
    c = world.client
    issue(world, "iss-a", "mall-co", 100)   # [0, 100)
    issue(world, "iss-b", "mall-co", 100)   # [100, 200)
    issue(world, "iss-c", "steel-co", 100)  # [200, 300)
    assert serials_of(world, c.transfer(world.mall, "tr-1", "mall-co", "steel-co", 30, issuances=["iss-b"]).seq) == [[100, 130]]
    assert serials_of(world, c.transfer(world.mall, "tr-2", "mall-co", "steel-co", 30).seq) == [[0, 30]]
    both = c.retire(world.mall, "ret-1", "mall-co", 90, "voluntary", "mall-co", issuances=["iss-b", "iss-a"])
    assert serials_of(world, both.seq) == [[30, 100], [130, 150]]
    # steel-co holds [0, 30) and [100, 130) by transfer, [200, 300) of its own: the lowest of iss-a first.
    assert serials_of(world, c.cancel(world.admin, "can-1", "steel-co", 40, "fix", issuances=["iss-c", "iss-a"]).seq) == [[0, 30], [200, 210]]
    # mall-co holds 50 g of iss-b and none of iss-a or iss-c: enough in all, too few in the chosen ones.
    refused(world, "NOT_HELD", c.transfer, world.mall, "tr-3", "mall-co", "steel-co", 51, issuances=["iss-b"])
    refused(world, "NOT_HELD", c.retire, world.mall, "ret-2", "mall-co", 1, "voluntary", "x", issuances=["iss-a", "iss-c"])
    refused(world, "UNKNOWN_REF", c.cancel, world.admin, "can-2", "mall-co", 1, "fix", issuances=["iss-b", "nope"])
    for malformed in ([], ["iss-a", "iss-a"], "iss-a", [1], ["no spaces"]):
        refused(world, "SCHEMA", c.transfer, world.mall, "tr-3", "mall-co", "steel-co", 1, issuances=malformed)
    missing = {"transfer_id": "tr-3", "from": "mall-co", "to": "steel-co", "amount_g": 1}  # a format-1 body
    refused(world, "SCHEMA", c.submit, world.mall, "transfer", missing)
    assert c.transfer(world.mall, "tr-3", "mall-co", "steel-co", 50, issuances=["iss-b"])


def test_format_1_bodies_carry_no_issuances(database_url):
    world = World(database_url).setup()
    world.client.issue(world.admin, "iss-1", "mall-co", "HB-RS-RECYCLE", 2026, "420100", 100,
                       evidence=sha256(b"iss-1").hexdigest())
    refused(world, "SCHEMA", world.client.transfer, world.mall, "tr-1", "mall-co", "steel-co", 1, issuances=["iss-1"])
    refused(world, "SCHEMA", world.client.submit, world.mall, "transfer",
            {"transfer_id": "tr-1", "from": "mall-co", "to": "steel-co", "amount_g": 1, "issuances": None})
    assert "issuances" not in world.registry.leaf(world.client.transfer(world.mall, "tr-1", "mall-co", "steel-co", 1).seq).body
    world.registry.close()


def test_a_replayed_leaf_must_take_exactly_the_lowest_serials(world):
    """The registry picks the lowest; a log whose leaf took others is NOT_HELD on replay (the same
    rules judge effects given)."""
    issue(world, "iss-a", "mall-co", 100)
    issue(world, "iss-b", "mall-co", 100)
    state, mall = world.registry.state, world.registry.state.keys[world.mall.key_id]
    body = {"transfer_id": "tr-1", "from": "mall-co", "to": "steel-co", "amount_g": 10, "issuances": ["iss-b"],
            "request_id": "r-1"}
    judge(state, "transfer", body, mall, activities=MemoryActivityIndex(), effects=[[100, 110]])
    for not_lowest in ([[101, 111]], [[0, 10]], [[150, 160]]):
        with pytest.raises(Rejected) as refusal:
            judge(state, "transfer", body, mall, activities=MemoryActivityIndex(), effects=not_lowest)
        assert refusal.value.code == "NOT_HELD", not_lowest
    with pytest.raises(Rejected) as refusal:
        judge(state, "transfer", {**body, "issuances": None}, mall, activities=MemoryActivityIndex(), effects=[[100, 110]])
    assert refusal.value.code == "NOT_HELD"


# -- offsets ----------------------------------------------------------------------------------------

def test_an_ets_offset_retirement_passes_methodology_and_region_now_vintage_at_the_surrender(world):
    c = world.client
    issue(world, "iss-plain", "steel-co", 100, methodology_id=PLAIN)         # [0, 100)
    issue(world, "iss-far", "steel-co", 100, region="310000")                 # [100, 200)
    issue(world, "iss-old", "steel-co", 100, vintage=2015)                    # [200, 300)
    issue(world, "iss-ok", "steel-co", 100)                                   # [300, 400)
    refused(world, "OFFSET_INELIGIBLE", c.retire, world.steel, "ret-1", "steel-co", 10, "ets_offset", "steel-co")
    refused(world, "OFFSET_INELIGIBLE", c.retire, world.steel, "ret-1", "steel-co", 10, "ets_offset", "steel-co",
            issuances=["iss-far"])
    c.retire(world.steel, "ret-old", "steel-co", 10, "ets_offset", "steel-co", issuances=["iss-old"])
    c.retire(world.steel, "ret-ok", "steel-co", 10, "ets_offset", "steel-co", issuances=["iss-ok"])
    c.retire(world.steel, "ret-vol", "steel-co", 10, "voluntary", "steel-co")  # any serials, for other purposes
    refused(world, "OFFSET_INELIGIBLE", c.surrender, world.ets, "sur-1", "steel-co", 2026, 10**6, ["ret-old"])
    c.surrender(world.ets, "sur-1", "steel-co", 2026, 10**6, ["ret-ok"])
    assert world.registry.leaf(world.registry.size - 1).type == "offset.surrender"


def test_offset_eligibility_is_per_version(world):
    c = world.client
    issue(world, "iss-v1", "steel-co", 100)   # version 1: eligible
    c.register_methodology(world.admin, ELIGIBLE, 2, "Bus trips, revised", "green_travel", BUS_PARAMS, False)
    issue(world, "iss-v2", "steel-co", 100)   # version 2, the latest at its issuance: not eligible
    state = world.registry.state
    assert [state.issuances[i].methodology_versions for i in ("iss-v1", "iss-v2")] == [[1], [2]]
    refused(world, "OFFSET_INELIGIBLE", c.retire, world.steel, "ret-2", "steel-co", 10, "ets_offset", "steel-co",
            issuances=["iss-v2"])
    c.retire(world.steel, "ret-1", "steel-co", 10, "ets_offset", "steel-co", issuances=["iss-v1"])
    # The surrender judges the methodology again, per version, through the same State.offset_eligible:
    # with version 1 turned off since (as methodology.eligibility of version 1 would do), it is refused.
    body = {"surrender_id": "sur-1", "entity": "steel-co", "compliance_year": 2026, "allocation_g": 10**6,
            "retirements": ["ret-1"], "request_id": "r-sur"}
    ets = state.keys[world.ets.key_id]
    judge(state, "offset.surrender", body, ets, activities=MemoryActivityIndex())
    turned_off = copy.deepcopy(state)
    turned_off.methodologies[ELIGIBLE].versions[1]["offset_eligible"] = False
    with pytest.raises(Rejected) as refusal:
        judge(turned_off, "offset.surrender", body, ets, activities=MemoryActivityIndex())
    assert refusal.value.code == "OFFSET_INELIGIBLE" and ELIGIBLE in refusal.value.message
    turned_off.methodologies[ELIGIBLE].offset_eligible = True  # the format-1 flag counts for nothing in format 2
    with pytest.raises(Rejected):
        judge(turned_off, "offset.surrender", body, ets, activities=MemoryActivityIndex())


def test_no_rules_no_offsets():
    """Before an accepted genesis no rules are in force: serials are eligible for no offset."""
    assert offset_refusal(State(root_keys={}, log_format=2), [[0, 1]], None) == "no rules are in force (no accepted genesis)"


# -- the carbon market's dry run -------------------------------------------------------------------

def test_the_dry_run_judges_by_the_format_2_rules(world):
    c = world.client
    issue(world, "iss-plain", "steel-co", 100, methodology_id=PLAIN)  # [0, 100)
    issue(world, "iss-ok", "steel-co", 100)                          # [100, 200)
    c.retire(world.steel, "ret-ok", "steel-co", 10, "ets_offset", "steel-co", issuances=["iss-ok"])
    state = world.registry.state

    def ask(**query):
        return offset_eligibility(state, {"entity": "steel-co", "compliance_year": 2026, "allocation_g": 10**6, **query})

    assert [r["code"] for r in ask(amount_g=10)["refusals"]] == ["OFFSET_INELIGIBLE"]  # the lowest are iss-plain's
    chosen = ask(amount_g=10, issuances=["iss-ok"])
    assert chosen["eligible"] and not chosen["held"]
    assert [r["code"] for r in ask(amount_g=91, issuances=["iss-ok"])["refusals"]] == ["NOT_HELD"]
    assert [r["code"] for r in ask(amount_g=1, issuances=["nope"])["refusals"]] == ["UNKNOWN_REF"]
    c.hold(world.admin, "h-1", "steel-co", True, "CASE-1", "court order")
    held = ask(amount_g=10, issuances=["iss-ok"])
    assert held["held"] and [r["code"] for r in held["refusals"]] == ["FROZEN"]
    # What it retired before the hold it may still surrender.
    assert ask(retirements=["ret-ok"])["eligible"] and ask(retirements=["ret-ok"])["held"]
    with pytest.raises(Rejected) as refusal:
        ask(amount_g=1, issuances=[])
    assert refusal.value.code == "SCHEMA"


# -- restart, replay, export, the verifier ----------------------------------------------------------

def history(world: World) -> None:
    """Holds opened and closed, spends from chosen issuances, an ets_offset retirement surrendered."""
    c = world.client
    issue(world, "iss-a", "mall-co", 500)
    issue(world, "iss-b", "steel-co", 500)
    c.hold(world.admin, "h-1", "steel-co", True, "CASE-1", "court order")
    c.hold(world.admin, "h-2", "mall-co", True, "CASE-1", "court order")
    c.hold(world.admin, "h-3", "mall-co", False, "CASE-1", "released")
    c.transfer(world.mall, "tr-1", "mall-co", "steel-co", 100, issuances=["iss-a"])
    c.cancel(world.admin, "can-1", "steel-co", 5, "data correction", issuances=["iss-b"])
    c.hold(world.admin, "h-4", "steel-co", True, "CASE-2", "second case")
    c.hold(world.admin, "h-5", "steel-co", False, "CASE-1", "released")
    c.hold(world.admin, "h-6", "steel-co", False, "CASE-2", "released")
    c.retire(world.steel, "ret-1", "steel-co", 50, "ets_offset", "steel-co", issuances=["iss-b", "iss-a"])
    c.surrender(world.ets, "sur-1", "steel-co", 2026, 10**6, ["ret-1"])
    c.hold(world.admin, "h-7", "steel-co", True, "CASE-3", "still open at the export")


def replayed(world: World) -> State:
    reg = world.registry
    return replay((data for _, data in reg.leaf_bytes()), origin=reg.origin,
                  root_keys=root_keys_from(reg.meta["root_keys"]), batch_records=reg.batch_records)


def test_a_restart_keeps_the_holds_and_equals_a_replay(world):
    history(world)
    before = world.registry.state
    assert before.open_cases == {"steel-co": {"CASE-3"}} and len(before.holds) == 7
    reopened = world.reopen().state
    assert reopened == before and replayed(world) == reopened
    refused(world, "FROZEN", world.client.transfer, world.steel, "tr-2", "steel-co", "mall-co", 1)
    world.client.hold(world.admin, "h-8", "steel-co", False, "CASE-3", "released")  # the reopened registry writes
    assert world.reopen().state == replayed(world) and world.registry.state.open_cases == {}


def test_a_hold_row_removed_behind_the_registrys_back_is_found_by_the_digest(world):
    history(world)
    world.registry.close()
    store = Store.connect(world.url)
    with store.engine.begin() as conn:  # as an intruder would: steel-co's open case disappears
        conn.execute(text("DELETE FROM holds WHERE hold_id = 'h-7'"))
    store.close()
    registry = world.reopen()
    size = registry.size
    with pytest.raises(StorageError, match="changed, added or removed outside the registry"):
        world.client.transfer(world.steel, "tr-2", "steel-co", "mall-co", 1)
    assert registry.size == size
    report = registry.check_integrity(full=True)
    assert any("open_cases" in problem for problem in report.problems) and any("holds 'h-7'" in problem for problem in report.problems)


def export(world: World, directory) -> tuple[Any, Any]:
    world.registry.checkpoint()
    bundle, trust = directory / "bundle", directory / "trust.json"
    export_bundle(world.registry, bundle)
    trust.write_text(json.dumps(world.registry.trust()))
    return bundle, trust


def test_the_exported_log_is_valid_to_the_verifier(world, tmp_path):
    history(world)
    bundle, trust = export(world, tmp_path)
    result = subprocess.run([sys.executable, "-m", "verifier.cli", "bundle", str(bundle), "--trust", str(trust),
                             "--json", "--require-activities"], capture_output=True, text=True, timeout=120)
    report = json.loads(result.stdout)
    assert result.returncode == 0 and report["log_format"] == 2 and report["valid"], report
    log = [json.loads(line) for line in (bundle / "log.jsonl").read_text().splitlines()]
    assert {"account.hold"} <= {leaf["type"] for leaf in log}
    assert any(leaf["body"].get("issuances") for leaf in log if leaf["type"] == "transfer")


def verifier_codes(world: World, directory, actor: Actor, event_type: str, body: dict[str, Any],
                   serials: list[list[int]] | None) -> list[str]:
    """The codes the verifier reports at the one leaf appended to the registry's exported log: the
    event `actor` signs with `body`, carrying these effects (checkpoint findings have no seq)."""
    bundle, trust = export(world, directory)
    event = world.client.signed(actor, event_type, body)
    leaf = {"auth": event["auth"], "body": event["body"], "seq": world.registry.size,
            "time": world.registry.leaf(world.registry.size - 1).time, "type": event_type}
    if serials is not None:
        leaf["effects"] = {"serials": serials}
    with open(bundle / "log.jsonl", "ab") as log:
        log.write(jcs(leaf) + b"\n")
    result = verify_bundle(str(bundle), parse_trust(trust.read_bytes()), jobs=1)
    return [finding.code for finding in result.violations.listed if finding.seq == leaf["seq"]]


HOLD = {"hold_id": "h-9", "account_id": "steel-co", "held": False, "case_id": "CASE-9", "reason": "never opened"}
SPEND = {"transfer_id": "tr-9", "from": "steel-co", "to": "mall-co", "amount_g": 10, "issuances": None}
OFFSET = {"retirement_id": "ret-9", "account": "steel-co", "amount_g": 10, "purpose": "ets_offset",
          "beneficiary": "steel-co", "issuances": ["iss-plain"]}


@pytest.mark.parametrize("case, code, event_type, body, serials", [
    ("close a case not open", "UNKNOWN_REF", "account.hold", HOLD, None),
    ("hold id used", "DUPLICATE_ID", "account.hold", {**HOLD, "hold_id": "h-1"}, None),
    ("from a held account", "FROZEN", "transfer", SPEND, [[0, 10]]),
    ("an issuance that is none", "UNKNOWN_REF", "transfer", {**SPEND, "issuances": ["nope"]}, [[0, 10]]),
    ("not the lowest of the chosen", "NOT_HELD", "transfer", {**SPEND, "issuances": ["iss-b"]}, [[0, 10]]),
    ("too few in the chosen", "NOT_HELD", "transfer", {**SPEND, "amount_g": 600, "issuances": ["iss-b"]}, [[0, 600]]),
    ("an ineligible ets_offset retirement", "OFFSET_INELIGIBLE", "retirement", OFFSET, [[1000, 1010]]),
])
def test_the_verifier_reports_what_the_registry_refuses(world, tmp_path, case, code, event_type, body, serials):
    issue(world, "iss-b", "steel-co", 500)                         # [0, 500)
    issue(world, "iss-a", "steel-co", 500)                         # [500, 1000)
    issue(world, "iss-plain", "steel-co", 100, methodology_id=PLAIN)  # [1000, 1100)
    world.client.hold(world.admin, "h-1", "mall-co", True, "CASE-1", "court order")
    signer = world.admin if event_type == "account.hold" else world.steel
    if code == "FROZEN":
        world.client.hold(world.admin, "h-2", "steel-co", True, "CASE-1", "court order")
    if case == "not the lowest of the chosen":
        body = {**body, "issuances": ["iss-a", "iss-b"]}
        serials = [[500, 510]]  # held and of a chosen issuance, but iss-b's [0, 10) are lower
    else:  # the registry chooses the serials itself: only a leaf written by another can take others
        refused(world, code, world.client.submit, signer, event_type, body)
    state = world.registry.state
    with pytest.raises(Rejected) as replaying:  # a replay of such a leaf: the same rules, effects given
        judge(state, event_type, {**body, "request_id": "r-replayed"}, state.keys[signer.key_id],
              activities=MemoryActivityIndex(), effects=serials)
    assert replaying.value.code == code
    assert verifier_codes(world, tmp_path, signer, event_type, body, serials) == [code]
