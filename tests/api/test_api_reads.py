"""Reads: checkpoint, proofs, log, accounts, registers, receipts, export; the offset-eligibility check."""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from ledger import merkle
from ledger.eligibility import offset_eligibility
from ledger.note import parse_verifier_key, verify_checkpoint
from ledger.receipts import ReceiptInvalid, verify_receipt

PUHUI_VERIFY = Path(sys.executable).parent / "puhui-verify"


def test_checkpoint_is_the_signed_note_and_covers_an_event_within_a_second(api, world):
    log_key = parse_verifier_key(world.registry.trust()["log_key"])
    accepted = world.client.signed(world.mall, "retirement", {"retirement_id": "ret-cp", "account": "mall-co",
                                                              "amount_g": 1, "purpose": "voluntary", "beneficiary": "x"})
    seq = api.post("/v1/events", content=json.dumps(accepted)).json()["seq"]
    deadline = time.monotonic() + 1.0
    while True:
        answer = api.get("/v1/checkpoint")
        assert answer.headers["content-type"].startswith("text/plain")
        checkpoint = verify_checkpoint(answer.text, log_key)
        if checkpoint.size > seq or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    assert checkpoint.size > seq
    hashes = [merkle.leaf_hash(json.dumps(leaf, separators=(",", ":"), ensure_ascii=False, sort_keys=True).encode())
              for leaf in api.get("/v1/log", params={"limit": 1000}).json()["leaves"]]
    assert merkle.root_of_leaf_hashes(hashes[:checkpoint.size]) == checkpoint.root


def test_inclusion_and_consistency_proofs_verify(api, world):
    size = world.registry.size
    leaves = [world.registry.leaf(i).data for i in range(size)]
    root = merkle.root_of_leaf_hashes([merkle.leaf_hash(d) for d in leaves])
    for seq in (0, 7, size - 1):
        proof = api.get("/v1/proofs/inclusion", params={"seq": seq, "tree_size": size}).json()
        assert proof["leaf_index"] == seq and proof["tree_size"] == size
        assert merkle.verify_inclusion(merkle.leaf_hash(leaves[seq]), seq, size, [bytes.fromhex(h) for h in proof["hashes"]], root)
    first = 9
    old_root = merkle.root_of_leaf_hashes([merkle.leaf_hash(d) for d in leaves[:first]])
    proof = api.get("/v1/proofs/consistency", params={"first": first, "second": size}).json()
    assert merkle.verify_consistency(first, size, old_root, root, [bytes.fromhex(h) for h in proof["hashes"]])


@pytest.mark.parametrize("path, params, status", [
    ("/v1/proofs/inclusion", {"seq": 5, "tree_size": 10**6}, 404),
    ("/v1/proofs/inclusion", {"seq": 5, "tree_size": 5}, 422),
    ("/v1/proofs/inclusion", {"seq": "x"}, 422),
    ("/v1/proofs/consistency", {"first": 9, "second": 3}, 422),
    ("/v1/proofs/consistency", {"first": 0, "second": 3}, 422),
    ("/v1/proofs/consistency", {"first": 3, "second": 10**6}, 404),
    ("/v1/log", {"limit": 1001}, 422),
    ("/v1/receipts/100000", {}, 404),
    ("/v1/accounts/nobody", {}, 404),
    ("/v1/accounts/not%20an%20id", {}, 422),
    ("/v1/methodologies/none", {}, 404),
    ("/v1/activities/none", {}, 404),
    ("/v1/retirements", {"purpose": "fun"}, 422),
    ("/v1/nowhere", {}, 404),
])
def test_bad_reads_are_clear_4xx(api, path, params, status):
    answer = api.get(path, params=params)
    assert answer.status_code == status
    assert set(answer.json()) == {"code", "message"}


def test_a_receipt_beyond_the_log_names_the_seq_asked_and_the_last_one(api, world):
    """Trial 6, finding 3: the 404 named seq + 1."""
    size = world.registry.size
    message = api.get(f"/v1/receipts/{size}").json()["message"]
    assert message.startswith(f"event {size} does not exist") and f"the last is seq {size - 1}" in message
    assert api.get(f"/v1/receipts/{size - 1}").status_code == 200


def test_log_pages_are_the_exact_leaves(api, world):
    page = api.get("/v1/log", params={"start": 3, "limit": 4}).json()["leaves"]
    assert [leaf["seq"] for leaf in page] == [3, 4, 5, 6]
    assert [json.dumps(leaf, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode() for leaf in page] == \
           [world.registry.leaf(i).data for i in range(3, 7)]
    assert api.get("/v1/log", params={"start": 10**6}).json() == {"leaves": []}


def test_account_balance_and_serials_by_state_and_by_issuance(api, world):
    account = api.get("/v1/accounts/mall-co").json()
    state = world.registry.state.accounts["mall-co"]
    assert {k: account[k] for k in ("account_id", "kind", "region")} == {"account_id": "mall-co", "kind": "enterprise", "region": "420100"}
    assert (account["active_g"], account["retired_g"], account["cancelled_g"]) == (state.active.size_g, state.retired.size_g, 0)
    assert account["serials"]["active"] == state.active.ranges() and account["serials"]["retired"] == state.retired.ranges()
    by_issuance = api.get("/v1/accounts/mall-co/issuances").json()["issuances"]
    assert {i["issuance_id"] for i in by_issuance} == {"iss-1", "iss-2"}  # tr-3 brought 200 g of iss-1
    assert sum(i["active_g"] for i in by_issuance) == account["active_g"]
    assert sum(i["retired_g"] for i in by_issuance) == account["retired_g"]
    assert next(i for i in by_issuance if i["issuance_id"] == "iss-1")["methodology_id"] == "HB-GT-METRO"


def test_registers_filter_and_paginate(api):
    retirements = api.get("/v1/retirements").json()
    assert [r["retirement_id"] for r in retirements["items"]] == ["ret-1", "ret-2", "ret-3", "ret-4"]
    assert retirements["next_after"] is None
    first = retirements["items"][0]
    assert {k: first[k] for k in ("purpose", "beneficiary", "serials", "used_by")} == {
        "purpose": "ets_offset", "beneficiary": "steel-co", "serials": [[0, 1500]], "used_by": "sur-1"}
    assert first["sources"] == [{"issuance_id": "iss-1", "methodology_id": "HB-GT-METRO", "vintage": 2026,
                                 "region": "420100", "amount_g": 1500, "serials": [[0, 1500]]}]
    walked, after = [], -1
    while after is not None:
        page = api.get("/v1/retirements", params={"limit": 1, "after": after}).json()
        walked += [r["retirement_id"] for r in page["items"]]
        after = page["next_after"]
    assert walked == ["ret-1", "ret-2", "ret-3", "ret-4"]

    def ids(path, key, **params):
        return [item[key] for item in api.get(path, params=params).json()["items"]]
    assert ids("/v1/retirements", "retirement_id", purpose="carbon_neutrality") == ["ret-2"]
    assert ids("/v1/retirements", "retirement_id", account="mall-co", used=False) == ["ret-4"]
    assert ids("/v1/retirements", "retirement_id", methodology_id="HB-GT-METRO") == ["ret-1", "ret-2", "ret-3"]  # ret-2: tr-3's 200 g
    assert ids("/v1/retirements", "retirement_id", vintage=2025, region="420000") == ["ret-2", "ret-4"]
    assert ids("/v1/issuances", "issuance_id", account="mall-co") == ["iss-2"]
    assert ids("/v1/issuances", "issuance_id", vintage=2026, region="420100") == ["iss-1"]
    assert ids("/v1/surrenders", "surrender_id", entity="steel-co", compliance_year=2026) == ["sur-1"]
    assert ids("/v1/surrenders", "surrender_id", compliance_year=2025) == []
    assert ids("/v1/claims", "claim_id", claimant="mall-co") == ["claim-1"]
    assert ids("/v1/methodologies", "methodology_id", offset_eligible=True) == ["HB-GT-METRO"]
    assert ids("/v1/methodologies", "methodology_id", sector="resource_saving") == ["HB-RS-RECYCLE"]
    claim = api.get("/v1/claims").json()["items"][0]
    assert claim["subject"] == {"kind": "event", "name": "Spring fair 2026"} and claim["retired_g"] == 10_000
    methodology = api.get("/v1/methodologies/HB-GT-METRO").json()
    assert methodology["latest_version"] == 1 and methodology["versions"][0]["params"] == {"g_per_km": "78.4", "inputs": {"distance_m": {"type": "integer"}}}


def test_an_unrouted_api_path_is_named_with_where_the_routes_are(api):
    answer = api.get("/v1/retirement/ret-1")  # a typo of /v1/retirements
    assert answer.status_code == 404 and answer.json()["code"] == "UNKNOWN_REF"
    assert answer.json()["message"] == "no route GET '/v1/retirement/ret-1': the API's routes are in /openapi.json and docs/api.md"


def test_receipts_hold_offline(api, world, client, tmp_path):
    trust = world.registry.trust()
    surrender_seq = world.registry.state.surrenders["sur-1"].seq
    receipt = api.get(f"/v1/receipts/{surrender_seq}").json()
    leaf = verify_receipt(receipt, trust, 1)
    assert leaf.type == "offset.surrender" and receipt["signer"] is not None
    genesis = verify_receipt(api.get("/v1/receipts/0").json(), trust, 1)
    assert genesis.type == "registry.genesis"
    tampered = dict(receipt, leaf=receipt["leaf"].replace("sur-1", "sur-9"))
    with pytest.raises(ReceiptInvalid):
        verify_receipt(tampered, trust, 1)
    with pytest.raises(ReceiptInvalid, match="exactly the fields"):
        verify_receipt(dict(receipt, verified_by="the registry"), trust, 1)
    (tmp_path / "receipt.json").write_text(json.dumps(receipt))
    (tmp_path / "trust.json").write_text(json.dumps(trust))
    checked = subprocess.run([str(PUHUI_VERIFY), "receipt", str(tmp_path / "receipt.json"), "--trust", str(tmp_path / "trust.json")],
                             capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_a_receipt_for_an_event_no_checkpoint_covers_yet_signs_one(world, tmp_path):
    from starlette.testclient import TestClient
    from api.app import create_app
    with TestClient(create_app(world.registry, checkpoint_interval_s=3600)) as api:
        event = world.client.signed(world.mall, "retirement", {"retirement_id": "ret-r", "account": "mall-co",
                                                                "amount_g": 1, "purpose": "voluntary", "beneficiary": "x"})
        seq = api.post("/v1/events", content=json.dumps(event)).json()["seq"]
        receipt = api.get(f"/v1/receipts/{seq}").json()
        assert verify_receipt(receipt, world.registry.trust(), 1).seq == seq
        assert receipt["inclusion"]["tree_size"] == seq + 1


def test_export_is_a_bundle_the_verifier_accepts(api, world, tmp_path):
    answer = api.get("/v1/export")
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/x-tar"
    bundle = tmp_path / "bundle"
    with tarfile.open(fileobj=io.BytesIO(answer.content)) as tar:
        tar.extractall(bundle, filter="data")
    assert {p.name for p in bundle.iterdir()} == {"log.jsonl", "checkpoints.jsonl", "manifest.json", "activities"}
    assert (bundle / "activities" / "wh-2026-01.jsonl").exists()
    assert json.loads((bundle / "manifest.json").read_text())["tree_size"] == world.registry.size
    (tmp_path / "trust.json").write_text(json.dumps(world.registry.trust()))
    verified = subprocess.run([str(PUHUI_VERIFY), "bundle", str(bundle), "--trust", str(tmp_path / "trust.json"), "--json"],
                              capture_output=True, text=True, timeout=120)
    assert verified.returncode == 0, verified.stdout[-3000:] + verified.stderr[-3000:]


def test_two_exports_of_one_checkpoint_are_the_same_bytes_and_carry_no_server_details(api, world):
    first, second = api.get("/v1/export"), api.get("/v1/export")
    assert first.status_code == second.status_code == 200
    assert hashlib.sha256(first.content).digest() == hashlib.sha256(second.content).digest()
    with tarfile.open(fileobj=io.BytesIO(first.content)) as tar:
        entries = tar.getmembers()
    assert entries and {(e.mtime, e.uid, e.gid, e.uname, e.gname) for e in entries} == {(0, 0, 0, "", "")}
    assert {e.mode for e in entries if e.isfile()} == {0o644} and {e.mode for e in entries if e.isdir()} == {0o755}


def test_exports_and_eligibility_checks_are_built_outside_the_fronts_process(api, world):
    """Both read the whole log or judge 1,000 ids: in threads of the front they held the event
    loop's interpreter lock, and every honest request waited (bench/bench_api.py's mixed run)."""
    import os
    from served_registry import spawned_children
    before = set(spawned_children(os.getpid()))
    assert api.get("/v1/export").status_code == 200
    exporting = set(spawned_children(os.getpid())) - before
    assert exporting, "the export was built in the front's own process"
    eligibility(api, entity="steel-co", compliance_year=2026, allocation_g=1_000_000, retirements=["ret-1"])
    assert set(spawned_children(os.getpid())) - before - exporting, "the check was judged in the front's own process"


def test_a_query_parameter_a_route_does_not_take_is_refused_not_ignored(api):
    """Trial 13: /v1/retirements?since=2030-01-01 answered every retirement (the API has no such
    filter), where the page /retirements?since=2030-01-01 showed none."""
    refused = api.get("/v1/retirements", params={"since": "2030-01-01", "purpose": "voluntary"})
    assert refused.status_code == 422 and refused.json()["code"] == "SCHEMA"
    assert "no query parameter since" in refused.json()["message"] and "purpose" in refused.json()["message"]
    assert api.get("/v1/retirements", params={"purpose": "voluntary"}).status_code == 200
    assert api.get("/v1/status", params={"x" * 300: "1"}).json()["message"].count("x") <= 80
    assert api.get("/v1/status").status_code == 200


def test_trust_file(api, world):
    assert api.get("/v1/trust").json() == world.registry.trust()


# -- the carbon market's check -------------------------------------------------------------------

def eligibility(api, **query):
    answer = api.post("/v1/offset-eligibility", content=json.dumps(query))
    assert answer.status_code == 200, answer.text
    return answer.json()


def retire(world, retirement_id, account, who, amount_g, purpose="ets_offset"):
    world.client.retire(who, retirement_id, account, amount_g, purpose, account)


def test_eligible_retirements_with_the_remaining_cap(api, world):
    retire(world, "ret-e1", "steel-co", world.steel, 300)
    size = world.registry.size
    answer = eligibility(api, entity="steel-co", compliance_year=2026, allocation_g=1_000_000, retirements=["ret-e1"])
    assert answer["eligible"] is True and answer["refusals"] == []
    assert (answer["cap_g"], answer["surrendered_g"], answer["remaining_cap_g"], answer["requested_g"]) == (100_000, 1_500, 98_500, 300)
    assert answer["retirements"] == [{"retirement_id": "ret-e1", "amount_g": 300, "eligible": True}]
    assert world.registry.size == size  # wrote nothing


def test_every_refusal_has_a_reason(api, world):
    # steel-co holds 500 g of iss-1 (eligible); mall-co passes it 30 g of iss-2 (HB-RS-RECYCLE, not eligible).
    world.client.transfer(world.mall, "tr-e", "mall-co", "steel-co", 30)
    retire(world, "ret-vol", "steel-co", world.steel, 10, purpose="voluntary")
    retire(world, "ret-mixed", "steel-co", world.steel, 520)
    answer = eligibility(api, entity="steel-co", compliance_year=2026, allocation_g=10_000,
                         retirements=["ret-1", "ret-vol", "ret-2", "ret-mixed", "nope"])
    reasons = {r["retirement_id"]: r["code"] for r in answer["refusals"]}
    assert reasons == {"ret-1": "DOUBLE_CLAIM", "ret-vol": "CLAIM_MISMATCH", "ret-2": "DOUBLE_CLAIM",
                       "ret-mixed": "OFFSET_INELIGIBLE", "nope": "UNKNOWN_REF"}
    assert answer["eligible"] is False and all(r["message"] for r in answer["refusals"])
    assert [r["eligible"] for r in answer["retirements"]] == [False] * 5


def test_vintage_region_and_cap(api, world):
    retire(world, "ret-v", "steel-co", world.steel, 100)
    too_late = eligibility(api, entity="steel-co", compliance_year=2030, allocation_g=10**9, retirements=["ret-v"])
    assert [r["code"] for r in too_late["refusals"]] == ["OFFSET_INELIGIBLE"] and "vintage" in too_late["refusals"][0]["message"]
    too_early = eligibility(api, entity="steel-co", compliance_year=2025, allocation_g=10**9, retirements=["ret-v"])
    assert [r["code"] for r in too_early["refusals"]] == ["OFFSET_INELIGIBLE"]
    capped = eligibility(api, entity="steel-co", compliance_year=2026, allocation_g=15_000, retirements=["ret-v"])
    assert [(r["code"], r["retirement_id"]) for r in capped["refusals"]] == [("OFFSET_CAP", None)]
    assert capped["remaining_cap_g"] == 0 and capped["retirements"][0]["eligible"] is True
    world.client.submit(world.root, "registry.rules", {"rules": {"offset_cap_ppm": 100_000, "offset_vintage_years": 3,
                                                                 "offset_regions": ["4202"]}})
    elsewhere = eligibility(api, entity="steel-co", compliance_year=2026, allocation_g=10**9, retirements=["ret-v"])
    assert [r["code"] for r in elsewhere["refusals"]] == ["OFFSET_INELIGIBLE"] and "region" in elsewhere["refusals"][0]["message"]


def test_an_amount_held_not_yet_retired(api, world):
    ok = eligibility(api, entity="steel-co", compliance_year=2026, allocation_g=1_000_000, amount_g=500)
    assert ok["eligible"] is True and ok["requested_g"] == 500 and ok["retirements"] == []
    short = eligibility(api, entity="steel-co", compliance_year=2026, allocation_g=1_000_000, amount_g=501)
    assert [r["code"] for r in short["refusals"]] == ["NOT_HELD"]
    capped = eligibility(api, entity="steel-co", compliance_year=2026, allocation_g=16_000, amount_g=500)
    assert [r["code"] for r in capped["refusals"]] == ["OFFSET_CAP"]
    not_an_entity = eligibility(api, entity="alice", compliance_year=2026, allocation_g=10**9, amount_g=1)
    assert [r["code"] for r in not_an_entity["refusals"]] == ["UNKNOWN_REF"]


def test_the_check_judges_the_committed_state_as_the_writer_holds_it_without_the_writer(api, world):
    """The check runs on the front's State of the committed log, never on the writer's thread:
    with the writer taking no reads at all it still answers, at the committed size it names, and
    its answer is offset_eligibility's on the writer's own State at that size."""
    def no_reads(function):
        raise AssertionError("the offset-eligibility check went to the writer")
    api.app.state.sequencer.read = no_reads
    query = {"entity": "steel-co", "compliance_year": 2026, "allocation_g": 1_000_000,
             "retirements": ["ret-1", "ret-2", "ret-q1", "ret-q2", "nope"]}
    for step in range(3):  # the State follows the log as it grows: a retirement, a transfer, new rules
        if step == 0:
            retire(world, "ret-q1", "steel-co", world.steel, 40)
        elif step == 1:
            world.client.transfer(world.mall, "tr-q", "mall-co", "steel-co", 30)
            retire(world, "ret-q2", "steel-co", world.steel, 60)
        else:
            world.client.submit(world.root, "registry.rules", {"rules": {
                "offset_cap_ppm": 100_000, "offset_vintage_years": 3, "offset_regions": ["4202"]}})
        answer = eligibility(api, **query)
        assert answer.pop("as_of_size") == world.registry.size
        assert answer == offset_eligibility(world.registry.state, query)


@pytest.mark.parametrize("query", [
    {"entity": "steel-co", "compliance_year": 2026, "allocation_g": 1},
    {"entity": "steel-co", "compliance_year": 2026, "allocation_g": 1, "retirements": []},
    {"entity": "steel-co", "compliance_year": 2026, "allocation_g": -1, "amount_g": 1},
    {"entity": "steel-co", "compliance_year": 2026, "allocation_g": 1, "amount_g": 1, "retirements": ["r"]},
    {"entity": "steel co", "compliance_year": 2026, "allocation_g": 1, "amount_g": 1},
])
def test_malformed_eligibility_queries_are_schema(api, query):
    answer = api.post("/v1/offset-eligibility", content=json.dumps(query))
    assert (answer.status_code, answer.json()["code"]) == (422, "SCHEMA")
