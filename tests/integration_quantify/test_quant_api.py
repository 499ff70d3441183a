"""The quantification endpoints against a real registry: quantify, methodologies, ingestion across two
platforms (duplicates and daily caps), the personal account and its proofs, explanations, footprints,
claim pages; and clear 4xx answers for bad input."""

from __future__ import annotations

import json

import pytest

from api import quantification
from ledger import merkle
from ledger.receipts import verify_receipt
from quant_helpers import EVIDENCE, EXPO, EXPO_BY_SCOPE, EXPO_G, LIBRARY, jsonl, metro
from quantify.activity import fingerprint
from service.accounts import logged_record_inclusion
from service.actors import activity_record

DAY = "2026-01-05"


def ingest(api, platform, records, methodology_id="HB-GT-METRO", **params):
    answer = api.post("/v1/ingestions", params={"platform": platform, "methodology_id": methodology_id, **params},
                      content=records if isinstance(records, (bytes, str)) else jsonl(records))
    assert answer.status_code == 200, answer.text
    return answer.json()


def upload(client, signer, answer):
    return [client.upload_activity_batch(signer, b["body"], b["records"]) for b in answer["batches"]]


@pytest.fixture
def two_platforms(api, client, world):
    """Wuhan's platform reports three metro trips; then the grid's platform reports the same act again,
    more trips of the same citizen that day, a malformed line, a repeat within its own file and an id
    already used. Each platform signs its batches and posts them."""
    wuhan = ingest(api, "wuhan-platform", [
        metro("w1", "p-alice", f"{DAY}T01:00:00.000000Z"),                          # 1176 g
        metro("w2", "p-alice", f"{DAY}T03:00:00.000000Z", entry="S02", exit="S05"),  # 1176 g
        metro("w3", "p-bob", f"{DAY}T02:00:00.000000Z", distance_m=5_000),           # 392 g
    ])
    size = world.registry.size
    assert wuhan["accepted"] == 3 and wuhan["accepted_g"] == 2744 and wuhan["rejected"] == 0
    assert world.registry.size == size  # ingestion writes nothing
    [wuhan_batch] = upload(client, world.wuhan.signer, wuhan)
    grid = ingest(api, "grid-platform", [
        metro("g1", "p-alice", f"{DAY}T01:00:00.000000Z", distance_m=14_800),       # w1 again, measured otherwise
        metro("g2", "p-alice", f"{DAY}T04:00:00.000000Z", entry="S03", exit="S04"),  # 1176 g, 648 g left today
        metro("g3", "p-alice", f"{DAY}T05:00:00.000000Z", entry="S04", exit="S03"),  # the cap is reached
        "not json",
        metro("g5", "p-carol", "2026-01-06T01:00:00.000000Z", distance_m=10_000),    # 784 g
        metro("g6", "p-carol", "2026-01-06T01:00:30.000000Z", distance_m=10_000),    # line 5's act, same minute
        metro("w3", "p-dave", "2026-01-06T02:00:00.000000Z"),                          # wuhan's id
    ])
    [grid_batch] = upload(client, world.grid.signer, grid)
    return {"wuhan": wuhan, "grid": grid, "wuhan_seq": wuhan_batch.seq, "grid_seq": grid_batch.seq}


# -- methodologies and quantify -------------------------------------------------------------------

def test_methodologies_show_the_version_in_force_and_every_factor_source(api):
    items = api.get("/v1/methodologies", params={"limit": 100}).json()["items"]
    assert sorted(m["methodology_id"] for m in items) == LIBRARY.ids()
    for item in items:
        assert {"methodology_id", "version", "sector", "title", "params", "offset_eligible"} <= item.keys()
        assert item["version"] == item["latest_version"] == LIBRARY.get(item["methodology_id"]).version
        for factor in item["params"]["factors"].values():
            cited = isinstance(factor["source"], str) and factor["illustrative"] is False
            assert cited or (factor["source"] is None and factor["illustrative"] is True), factor
    bus = api.get("/v1/methodologies/HB-GT-BUS").json()
    assert bus["version"] == 2 and bus["params"]["factors"]["g_per_trip"]["value"] == "212.5"
    assert [v["params"]["factors"]["g_per_trip"]["value"] for v in bus["versions"]] == ["150", "212.5"]


def test_quantify_answers_reduction_fingerprint_and_explanation_and_writes_nothing(api, world):
    size = world.registry.size
    inputs = {"distance_m": 5000, "entry_station": "S01", "exit_station": "S09"}
    answer = api.post("/v1/quantify", json={"methodology_id": "HB-GT-METRO", "inputs": {
        **inputs, "subject": "p-alice", "occurred_at": f"{DAY}T08:00:00.000000Z"}}).json()
    assert answer["reduction_g"] == 392  # 5 km * 78.4 g/km
    assert answer["fingerprint"] == fingerprint(LIBRARY.get("HB-GT-METRO"), "p-alice", f"{DAY}T08:00:00.000000Z", inputs)
    explanation = answer["explanation"]
    assert explanation["substitution"] == "floor(max(0, 5000 / 1000 * 78.4)) = floor(392.0) = 392"
    assert explanation["factors"][0]["source"].startswith("武碳江湖") and explanation["reduction_t"] == "0.000"
    without = api.post("/v1/quantify", json={"methodology_id": "HB-GT-METRO", "inputs": inputs}).json()
    assert without["fingerprint"] is None and without["reduction_g"] == 392
    bus = [api.post("/v1/quantify", json={"methodology_id": "HB-GT-BUS", "inputs": {"line": "L5"}, **v}).json()
           for v in ({"version": 1}, {})]
    assert [b["reduction_g"] for b in bus] == [150, 212]  # v2 supersedes v1; v1 still answers
    assert world.registry.size == size


@pytest.mark.parametrize("body, status, code", [
    ({"methodology_id": "HB-NONE", "inputs": {}}, 404, "UNKNOWN_REF"),
    ({"methodology_id": "HB-GT-BUS", "inputs": {"line": "L5"}, "version": 3}, 404, "UNKNOWN_REF"),
    ({"methodology_id": "HB-GT-METRO", "inputs": {"distance_m": -5, "entry_station": "A", "exit_station": "B"}}, 422, "SCHEMA"),
    ({"methodology_id": "HB-GT-METRO", "inputs": {"distance_m": 5, "entry_station": "A"}}, 422, "SCHEMA"),
    ({"methodology_id": "HB-GT-METRO", "inputs": {"distance_m": 5, "entry_station": "A", "exit_station": "B",
                                                  "subject": "p-a", "occurred_at": "yesterday"}}, 422, "SCHEMA"),
    ({"methodology_id": "HB-GT-METRO", "inputs": []}, 422, "SCHEMA"),
    ({"methodology_id": "HB-GT-METRO"}, 422, "SCHEMA"),
    ({"methodology_id": "HB-GT-METRO", "inputs": {}, "extra": 1}, 422, "SCHEMA"),
    ({"methodology_id": 7, "inputs": {}}, 422, "SCHEMA"),
    ({"methodology_id": "HB-GT-BUS", "inputs": {"line": "L5"}, "version": "1"}, 422, "SCHEMA"),
    ('{"methodology_id": "HB-GT-METRO", "inputs": {"distance_m": 5.5}}', 422, "SCHEMA"),
    ('{"methodology_id": "HB-GT-METRO", "methodology_id": "HB-GT-BUS", "inputs": {}}', 422, "SCHEMA"),
    ("[" * 100, 422, "SCHEMA"),
    ("x" * (70 << 10), 413, "SCHEMA"),
])
def test_quantify_refusals(api, body, status, code):
    answer = api.post("/v1/quantify", content=body if isinstance(body, str) else json.dumps(body))
    assert (answer.status_code, answer.json()["code"]) == (status, code), answer.text
    assert set(answer.json()) == {"code", "message"}


# -- ingestion ------------------------------------------------------------------------------------

def test_cross_platform_duplicates_and_daily_caps_are_dropped_with_a_reason_each(api, world, two_platforms):
    grid = two_platforms["grid"]
    assert grid["lines"] == 7 and grid["accepted"] == 2 and grid["accepted_g"] == 648 + 784
    assert grid["dropped_by_cap_g"] == 528 and grid["rejected"] == 5
    assert {reason: n for reason, n in grid["reasons"].items() if n} == {
        "duplicate_fingerprint": 2, "daily_cap_clipped": 1, "over_daily_cap": 1, "malformed": 1,
        "duplicate_activity_id": 1}
    rejections = {r["line"]: r for r in grid["rejections"]}
    assert rejections[1]["reason"] == "duplicate_fingerprint" and "the registry" in rejections[1]["detail"]
    assert rejections[2] | {"record": None} == {
        "line": 2, "reason": "daily_cap_clipped", "activity_id": "g2", "quantified_g": 1176, "accepted_g": 648,
        "dropped_g": 528, "detail": f"only 648 g left under the 3000 g cap on {DAY}", "record": None}
    assert rejections[3]["reason"] == "over_daily_cap" and rejections[3]["dropped_g"] == 1176
    assert rejections[4]["reason"] == "malformed" and rejections[4]["raw"] == "not json"
    assert rejections[6]["reason"] == "duplicate_fingerprint" and "line 5 of this run" in rejections[6]["detail"]
    assert rejections[7]["reason"] == "duplicate_activity_id"
    [batch] = grid["batches"]
    assert [r["activity_id"] for r in batch["records"]] == ["g2", "g5"]
    assert batch["records"][0]["reduction_g"] == 648 and batch["body"]["total_g"] == 1432
    # Across both platforms, p-alice's day holds exactly the cap.
    account = api.get("/v1/subjects/p-alice/account").json()
    assert account["total_g"] == 3000
    assert {r["platform"]: r["reduction_g"] for r in account["tables"]["by_platform"]} == {
        "grid-platform": 648, "wuhan-platform": 2352}
    # The same file again: everything is already in the log.
    again = ingest(api, "grid-platform", jsonl([metro("g5", "p-carol", "2026-01-06T01:00:00.000000Z")]))
    assert again["accepted"] == 0 and again["reasons"]["duplicate_activity_id"] == 1


def test_csv_ingestion_numbers_rejections_by_line(api):
    body = ("activity_id,subject,occurred_at,distance_m,entry_station,exit_station\n"
            f"c1,p-erin,{DAY}T01:00:00.000000Z,2000,S01,S02\n"
            f"c2,p-erin,{DAY}T02:00:00.000000Z,far,S01,S02\n"
            f"c3,p-erin,{DAY}T03:00:00.000000Z,1000,S02\n")
    answer = ingest(api, "wuhan-platform", body, format="csv", run_id="wh-csv", period="day")
    assert answer["accepted"] == 1 and answer["batches"][0]["body"]["batch_id"] == f"wh-csv-{DAY}"
    assert [(r["line"], r["reason"]) for r in answer["rejections"]] == [(3, "invalid_input"), (4, "malformed")]


@pytest.mark.parametrize("params, body, status, code", [
    ({"platform": "nobody", "methodology_id": "HB-GT-METRO"}, b"", 404, "UNKNOWN_REF"),
    ({"platform": "expo-org", "methodology_id": "HB-GT-METRO"}, b"", 422, "SCHEMA"),
    ({"platform": "wuhan-platform", "methodology_id": "HB-NONE"}, b"", 404, "UNKNOWN_REF"),
    ({"platform": "wuhan-platform", "methodology_id": "HB-GT-METRO", "format": "csv"}, b"who,what\n1,2\n", 422, "SCHEMA"),
    ({"platform": "wuhan-platform", "methodology_id": "HB-GT-METRO", "format": "csv"}, b"\xff\xfe\n", 422, "SCHEMA"),
    ({"platform": "wuhan-platform", "methodology_id": "HB-GT-METRO", "format": "xml"}, b"", 422, "SCHEMA"),
    ({"platform": "wuhan-platform", "methodology_id": "HB-GT-METRO", "run_id": "-bad"}, b"", 422, "SCHEMA"),
    ({"platform": "wuhan-platform"}, b"", 422, "SCHEMA"),
    ({"platform": "wuhan-platform", "methodology_id": "HB-GT-METRO"}, b"\n" * 6, 413, "SCHEMA"),
])
def test_ingestion_refusals(api, monkeypatch, params, body, status, code):
    monkeypatch.setattr(quantification, "MAX_INGESTION_LINES", 5)
    answer = api.post("/v1/ingestions", params=params, content=body)
    assert (answer.status_code, answer.json()["code"]) == (status, code), answer.text


def test_an_ingested_line_that_is_not_json_or_not_utf8_is_a_rejection_not_an_error(api):
    lone_surrogates = [{"activity_id": "\ud800", "subject": "p-x", "occurred_at": f"{DAY}T01:00:00.000000Z", "inputs": {}},
                       {**metro("s2", "p-x", f"{DAY}T01:00:00.000000Z"), "inputs": {"a\udc00": 1}}]
    body = b'\xff\xfe{"a"\n{"activity_id": 1}\n[]\n{"x": 1, "x": 2}\n\n' + jsonl(lone_surrogates)
    answer = ingest(api, "wuhan-platform", body)
    assert [(r["line"], r["reason"]) for r in answer["rejections"]] == [
        (1, "malformed"), (2, "invalid_record"), (3, "malformed"), (4, "malformed"), (6, "invalid_record"),
        (7, "invalid_input")]
    assert answer["rejections"][4]["activity_id"] == "\ud800" and "a\udc00" in answer["rejections"][5]["detail"]
    assert answer["batches"] == []


# -- the personal carbon account --------------------------------------------------------------------

def test_personal_account_records_prove_into_their_batch_whose_seq_is_in_the_log(api, client, world, two_platforms):
    wuhan_batch = two_platforms["wuhan"]["batches"][0]["body"]
    issued = client.submit(world.admin.signer, "issuance", {
        "issuance_id": "iss-wh-jan", "account": "wuhan-platform", "methodology_id": "HB-GT-METRO", "vintage": 2026,
        "region": "420100", "amount_g": wuhan_batch["total_g"], "batches": [wuhan_batch["batch_id"]],
        "evidence": None}, prove=False)
    account = api.get("/v1/subjects/p-alice/account").json()
    assert (account["total_g"], account["issued_g"]) == (3000, 2352)
    assert [(r["day"], r["reduction_t"]) for r in account["tables"]["by_day"]] == [(DAY, "0.003")]
    batches = {r["batch_id"]: r for r in account["tables"]["batches"]}
    assert batches[wuhan_batch["batch_id"]]["batch_seq"] == two_platforms["wuhan_seq"]
    assert (batches[wuhan_batch["batch_id"]]["issuance_id"], batches[wuhan_batch["batch_id"]]["issuance_seq"]) == (
        "iss-wh-jan", issued.seq)
    records = {r["activity_id"]: r for r in account["tables"]["records"]}
    assert set(records) == {"w1", "w2", "g2"} and records["w2"]["leaf_index"] == 1
    for activity_id, row in records.items():
        proof = api.get(f"/v1/activities/{activity_id}").json()
        inclusion = proof["inclusion"]
        assert inclusion["leaf_index"] == row["leaf_index"]
        assert merkle.verify_inclusion(merkle.leaf_hash(proof["record"].encode()), inclusion["leaf_index"],
                                       inclusion["tree_size"], [bytes.fromhex(h) for h in inclusion["hashes"]],
                                       bytes.fromhex(proof["batch_root"]))
        seq = batches[row["batch_id"]]["batch_seq"]
        [leaf] = api.get("/v1/log", params={"start": seq, "limit": 1}).json()["leaves"]
        assert leaf["type"] == "activity.batch" and leaf["body"]["batch_id"] == row["batch_id"]
        assert leaf["body"]["root"] == proof["batch_root"]
        client.prove(seq)  # the batch's leaf is in a checkpoint signed by the log key
        assert logged_record_inclusion(api.app.state.queries, activity_id)["inclusion"] == inclusion
    csv_text = api.get("/v1/subjects/p-alice/account", params={"format": "csv"}).text
    assert "[by_platform]" in csv_text and "wuhan-platform,2352,0.002" in csv_text
    empty = api.get("/v1/subjects/p-nobody/account").json()
    assert empty["total_g"] == 0 and empty["tables"]["records"] == []
    assert api.get("/v1/subjects/not%20a%20pseudonym/account").status_code == 422


# -- explanations -----------------------------------------------------------------------------------

def test_explanations_name_each_factor_source_or_the_illustrative_mark(api, client, world, two_platforms):
    w1 = api.get("/v1/activities/w1/explanation").json()
    assert (w1["reduction_g"], w1["batch_seq"], w1["leaf_index"], w1["capped"]) == (
        1176, two_platforms["wuhan_seq"], 0, None)
    assert [(f["name"], f["value"], f["illustrative"]) for f in w1["factors"]] == [("g_per_km", "78.4", False)]
    assert w1["factors"][0]["source"].startswith("武碳江湖") and w1["inputs"]["distance_m"] == 15_000
    g2 = api.get("/v1/activities/g2/explanation").json()
    assert g2["capped"] == {"recorded_g": 648, "dropped_g": 528, "reason": "daily cap of 3000 g per subject and Beijing day"}
    recycle = ingest(api, "wuhan-platform", [{"activity_id": "r1", "subject": "p-alice", "occurred_at": f"{DAY}T06:00:00.000000Z",
                                              "inputs": {"mass_g": 2500, "station_id": "ST7"}}], methodology_id="HB-RS-RECYCLE")
    upload(client, world.wuhan.signer, recycle)
    r1 = api.get("/v1/activities/r1/explanation").json()
    assert r1["reduction_g"] == 750 and r1["illustrative"] is True  # 2.5 kg * 300 g/kg
    assert r1["factors"][0]["source"] is None and r1["factors"][0]["illustrative"] is True
    assert any("illustrative" in warning for warning in r1["warnings"])
    csv_text = api.get("/v1/activities/r1/explanation", params={"format": "csv"}).text
    assert "factor g_per_kg,300,gCO2e/kg,ILLUSTRATIVE (no published source)" in csv_text
    assert "reduction,0.001,t,750 g" in csv_text
    assert api.get("/v1/activities/none/explanation").json()["code"] == "UNKNOWN_REF"
    assert (w1["issuance_id"], w1["issuance_seq"]) == (None, None)
    wuhan_batch = api.get("/v1/activities/w1/explanation").json()["batch_id"]
    issued = world.client.issue(world.admin, "iss-w", "wuhan-platform", "HB-GT-METRO", 2026, "420100", 2744, [wuhan_batch])
    w1 = api.get("/v1/activities/w1/explanation").json()
    assert (w1["issuance_id"], w1["issuance_seq"]) == ("iss-w", issued.seq)  # what the batch backs


def test_records_without_a_definition_or_off_their_methodology_are_refused_clearly(api, world):
    c = world.client
    c.register_methodology(world.admin, "HB-HAND", 1, "Registered by hand", "other",
                           {"g_per_km": "78.4", "inputs": {"distance_m": {}}}, False)  # declares inputs, no formula
    world.batch("hand-1", [activity_record("h1", "h1", f"{DAY}T01:00:00.000000Z", 100, "p-x", {"distance_m": 1})],
                methodology="HB-HAND")
    refused = api.get("/v1/activities/h1/explanation")
    assert refused.status_code == 404 and "machine-readable" in refused.json()["message"]
    assert api.post("/v1/quantify", json={"methodology_id": "HB-HAND", "inputs": {}}).status_code == 404
    # A platform that skipped ingestion: the ledger checks the batch's commitment, not its quantification.
    record = {**metro("m1", "p-x", f"{DAY}T01:00:00.000000Z"), "fingerprint": "ab" * 32, "reduction_g": 5000}
    world.batch("manual-1", [record])
    mismatch = api.get("/v1/activities/m1/explanation")
    assert (mismatch.status_code, mismatch.json()["code"]) == (409, "BATCH")


# -- footprints and neutrality claims ---------------------------------------------------------------

def test_footprint_by_hand_and_a_comparison(api):
    report = api.post("/v1/footprints", json=EXPO).json()
    assert (report["total_g"], report["total_t"]) == (EXPO_G, "1.002")
    assert report["by_scope"] == EXPO_BY_SCOPE and report["by_site"]["hall-a"] == 794_340
    assert [line["emissions_g"] for line in report["lines"]] == [525_000, 269_340, 200_000, 7_500, 15]
    citations = {row["source"]: row["citation"] for row in report["tables"]["factors"]}
    assert citations["electricity"].startswith("武碳江湖") and citations["meal"] == "ILLUSTRATIVE (no published source)"
    csv_text = api.post("/v1/footprints", params={"format": "csv"}, json=EXPO).text
    assert "total,all,1001855,1.002" in csv_text and "scope,2,525000,0.525" in csv_text
    earlier = {**EXPO, "period_start": "2025-03-01", "period_end": "2025-03-31",
               "entries": [{**e, "month": "2025-03"} for e in EXPO["entries"][:1]] + [
                   {"site": "hall-a", "month": "2025-03", "source": "electricity", "quantity": 1000}]}
    comparison = api.post("/v1/footprints:compare", json={"earlier": earlier, "later": EXPO}).json()
    total = comparison["tables"]["comparison"][0]
    assert (total["earlier_g"], total["later_g"], total["change_g"], total["change_percent"]) == (
        1_050_000, EXPO_G, EXPO_G - 1_050_000, "-4.6%")


@pytest.mark.parametrize("body", [
    {**EXPO, "entries": [{"site": "a", "month": "2026-03", "source": "electricity", "quantity": "1e3"}]},
    {**EXPO, "entries": [{"site": "a", "month": "2026-03", "source": "unicorns", "quantity": 1}]},
    {**EXPO, "entries": [{"site": "a", "month": "2027-03", "source": "electricity", "quantity": 1}]},
    {**EXPO, "entries": []},
    {**EXPO, "kind": "planet"},
    {"name": "x"},
    [],
    '{"name": 1.5}',
])
def test_footprint_refusals(api, body):
    answer = api.post("/v1/footprints", content=body if isinstance(body, str) else json.dumps(body))
    assert (answer.status_code, answer.json()["code"]) == (422, "SCHEMA"), answer.text


def test_claim_page_shows_footprint_retired_serials_and_their_proofs(api, client, world):
    c, admin, organizer = client, world.admin.signer, world.mall.signer
    c.submit(admin, "issuance", {"issuance_id": "iss-expo", "account": "expo-org", "methodology_id": "HB-GT-METRO",
                                 "vintage": 2026, "region": "420100", "amount_g": 2_000_000, "batches": [],
                                 "evidence": EVIDENCE}, prove=False)
    retired = c.submit(organizer, "retirement", {"retirement_id": "ret-expo", "account": "expo-org", "amount_g": 1_100_000,
                                                 "purpose": "carbon_neutrality", "beneficiary": EXPO["name"]}, prove=False)
    claimed = c.submit(organizer, "neutrality.claim", {
        "claim_id": "claim-expo", "claimant": "expo-org", "subject": {"kind": "event", "name": EXPO["name"]},
        "period_start": EXPO["period_start"], "period_end": EXPO["period_end"], "footprint_g": EXPO_G,
        "retirements": ["ret-expo"]}, prove=False)
    trust = world.registry.trust()

    page = api.get("/v1/claims/claim-expo/page").json()
    assert page["claim"]["footprint_g"] == EXPO_G and page["claim"]["seq"] == claimed.seq and page["footprint"] is None
    [retirement] = page["retirements"]
    assert retirement["serials"] == retired.effects["serials"] and retirement["seq"] == retired.seq
    assert retirement["sources"][0]["issuance_id"] == "iss-expo"
    assert verify_receipt(retirement["receipt"], trust, 1).seq == retired.seq
    assert retirement["proof"] == retirement["receipt"]["inclusion"]
    assert verify_receipt(page["receipt"], trust, 1).body["claim_id"] == "claim-expo"
    assert {row["item"]: row["value"] for row in page["tables"]["claim"]}["footprint_t"] == "1.002"

    full = api.post("/v1/claims/claim-expo/page", json=EXPO).json()
    assert full["footprint"]["total_g"] == EXPO_G and full["footprint"]["by_scope"] == EXPO_BY_SCOPE
    assert {row["source"] for row in full["tables"]["factors"]} == {e["source"] for e in EXPO["entries"]}
    csv_text = api.post("/v1/claims/claim-expo/page", params={"format": "csv"}, json=EXPO).text
    assert "[retirements]" in csv_text and "[factors]" in csv_text and f"{retired.effects['serials'][0][0]}," in csv_text

    other = {**EXPO, "entries": EXPO["entries"][:-1]}
    assert api.post("/v1/claims/claim-expo/page", json=other).json()["code"] == "CLAIM_MISMATCH"
    renamed = api.post("/v1/claims/claim-expo/page", json={**EXPO, "name": "another fair"})
    assert (renamed.status_code, renamed.json()["code"]) == (409, "CLAIM_MISMATCH")
    assert api.get("/v1/claims/none/page").status_code == 404
    assert api.post("/v1/claims/claim-expo/page", content=b"{").json()["code"] == "SCHEMA"
    for not_an_inventory in (b"null", b"[]", b'"x"'):  # null once gave the GET's page, 200
        answer = api.post("/v1/claims/claim-expo/page", content=not_an_inventory)
        assert (answer.status_code, answer.json()["code"]) == (422, "SCHEMA"), answer.text
