"""The write path: POST /v1/events, /v1/events:batch, /v1/activity-batches; statuses per spec code."""

from __future__ import annotations

import base64
import json
import unicodedata

import pytest

from api.bodies import MAX_EVENT_BYTES
from service.client import RegistryError
from api.errors import STATUS_BY_CODE
from ledger.canonical import jcs
from ledger.errors import CODES
from ledger.rules import batch_commitment
from world import actor


def post(api, event, path="/v1/events"):
    return api.post(path, content=json.dumps(event).encode(), headers={"content-type": "application/json"})


def retirement(world, retirement_id, amount_g=10, who=None, account="mall-co", purpose="voluntary", **extra):
    return world.client.signed(who or world.mall, "retirement", {
        "retirement_id": retirement_id, "account": account, "amount_g": amount_g, "purpose": purpose,
        "beneficiary": "p-1", **extra})


def test_every_spec_code_has_a_4xx_status():
    assert set(STATUS_BY_CODE) >= set(CODES)
    assert all(400 <= status < 500 for code, status in STATUS_BY_CODE.items() if code in CODES)
    assert STATUS_BY_CODE["SCHEMA"] == 422
    assert {STATUS_BY_CODE[c] for c in ("SIGNATURE", "KEY_UNKNOWN", "KEY_REVOKED")} == {401}
    assert STATUS_BY_CODE["UNAUTHORIZED"] == 403
    assert {STATUS_BY_CODE[c] for c in ("NOT_HELD", "DOUBLE_CLAIM", "DUPLICATE_ID", "REPLAY", "OFFSET_CAP")} == {409}


def test_accepted_then_resent_then_replayed(api, world):
    event = retirement(world, "ret-a")
    first = post(api, event)
    assert first.status_code == 201
    answer = first.json()
    assert set(answer) == {"seq", "leaf_hash", "time", "effects"} and answer["effects"]["serials"]
    again = post(api, event)
    assert again.status_code == 200 and again.json() == answer
    other = world.client.signed(world.mall, "retirement", {**event["body"], "amount_g": 11})
    replay = post(api, other)
    assert replay.status_code == 409 and replay.json()["code"] == "REPLAY"
    assert api.get("/v1/totals").json()["size"] == answer["seq"] + 1


def test_a_transfer_without_effects_has_none_in_its_answer(api, world):
    answer = post(api, world.client.signed(world.admin, "methodology.eligibility",
                                           {"methodology_id": "HB-RS-RECYCLE", "offset_eligible": True}))
    assert answer.status_code == 201 and "effects" not in answer.json()


@pytest.mark.parametrize("case, status, code", [
    ("bad signature", 401, "SIGNATURE"),
    ("unknown key", 401, "KEY_UNKNOWN"),
    ("not a controller", 403, "UNAUTHORIZED"),
    ("more than held", 409, "NOT_HELD"),
    ("id reused", 409, "DUPLICATE_ID"),
    ("extra field", 422, "SCHEMA"),
    ("unknown account", 409, "UNKNOWN_REF"),
])
def test_rejections_carry_the_spec_code_and_status(api, world, case, status, code):
    if case == "bad signature":
        event = retirement(world, "ret-b")
        event["auth"]["sig"] = base64.b64encode(bytes(64)).decode()
    elif case == "unknown key":
        event = retirement(world, "ret-b", who=actor("stranger"))
    elif case == "not a controller":
        event = retirement(world, "ret-b", who=world.alice)
    elif case == "more than held":
        event = retirement(world, "ret-b", amount_g=10**12)
    elif case == "id reused":
        event = retirement(world, "ret-1")
    elif case == "extra field":
        event = retirement(world, "ret-b", colour="green")
    else:
        event = world.client.signed(world.mall, "transfer", {"transfer_id": "tr-x", "from": "mall-co", "to": "nobody",
                                                             "amount_g": 1})
    answer = post(api, event)
    assert answer.status_code == status, answer.text
    assert answer.json()["code"] == code and answer.json()["message"]


def test_revoked_key_double_claim_and_offset_cap(api, world):
    post(api, world.client.signed(world.admin, "key.revoke", {"key_id": world.bob.key_id, "reason": "lost"}))
    revoked = post(api, world.client.signed(world.bob, "retirement", {
        "retirement_id": "ret-bob", "account": "bob", "amount_g": 1, "purpose": "voluntary", "beneficiary": "x"}))
    assert (revoked.status_code, revoked.json()["code"]) == (401, "KEY_REVOKED")
    again = post(api, world.client.signed(world.ets, "offset.surrender", {
        "surrender_id": "sur-2", "entity": "steel-co", "compliance_year": 2026, "allocation_g": 10**9,
        "retirements": ["ret-1"]}))
    assert (again.status_code, again.json()["code"]) == (409, "DOUBLE_CLAIM")
    assert post(api, retirement(world, "ret-s", amount_g=400, who=world.steel, account="steel-co",
                                purpose="ets_offset")).status_code == 201
    capped = post(api, world.client.signed(world.ets, "offset.surrender", {
        "surrender_id": "sur-3", "entity": "steel-co", "compliance_year": 2026, "allocation_g": 15_000,
        "retirements": ["ret-s"]}))
    assert (capped.status_code, capped.json()["code"]) == (409, "OFFSET_CAP")


@pytest.mark.parametrize("raw, fragment", [
    (b'{"type":"retirement","type":"transfer","body":{},"auth":{}}', "duplicate JSON key"),
    (b'{"type":"retirement","body":{"amount_g":1.0},"auth":{}}', "not an integer"),
    (b'{"type":"retirement","body":{"n":9007199254740993},"auth":{}}', "2^53"),
    (b'[1, 2', "not JSON"),
    (b'\xff\xfe', "UTF-8"),
    (b'', "not JSON"),
])
def test_malformed_bodies_are_schema(api, raw, fragment):
    answer = api.post("/v1/events", content=raw)
    assert answer.status_code == 422 and answer.json()["code"] == "SCHEMA"
    assert fragment in answer.json()["message"]


def test_strings_not_in_nfc_are_refused_and_the_client_normalizes(api, world, client):
    decomposed = unicodedata.normalize("NFD", "Café")
    event = retirement(world, "ret-nfd", beneficiary=decomposed)
    answer = post(api, event)
    assert (answer.status_code, answer.json()["code"]) == (422, "SCHEMA") and "NFC" in answer.json()["message"]
    accepted = client.submit(world.mall.signer, "retirement", {**event["body"], "request_id": "nfd-2"})
    leaf = client.get("/v1/log", start=accepted.seq, limit=1)["leaves"][0]
    assert leaf["body"]["beneficiary"] == unicodedata.normalize("NFC", decomposed) != decomposed


def test_bodies_beyond_the_limit_are_413(api):
    answer = api.post("/v1/events", content=b" " * (MAX_EVENT_BYTES + 1))
    assert answer.status_code == 413 and answer.json()["code"] == "SCHEMA"


def test_batch_applies_in_order_each_on_its_own(api, world):
    events = [retirement(world, "ret-c1"), retirement(world, "ret-c1"), retirement(world, "ret-c2", amount_g=10**12),
              retirement(world, "ret-c3")]
    events.append(events[0])  # the very same event again: its original result
    answer = api.post("/v1/events:batch", content=jcs({"events": events}))
    assert answer.status_code == 200
    results = answer.json()["results"]
    assert [r["status"] for r in results] == [201, 409, 409, 201, 200]
    assert [r.get("code") for r in results] == [None, "DUPLICATE_ID", "NOT_HELD", None, None]
    assert results[3]["seq"] == results[0]["seq"] + 1 and results[4]["seq"] == results[0]["seq"]


@pytest.mark.parametrize("document", [{"events": []}, {"events": [{}] * 1001}, {"events": {}}, [], {"events": [], "x": 1}])
def test_malformed_batches_are_refused_whole(api, document):
    answer = api.post("/v1/events:batch", content=jcs(document))
    assert answer.status_code == 422 and answer.json()["code"] == "SCHEMA"


def test_a_batch_holds_malformed_events_as_results(api, world):
    results = api.post("/v1/events:batch", content=jcs({"events": [{"type": "nope"}, retirement(world, "ret-d")]})).json()["results"]
    assert results[0]["status"] == 422 and results[0]["code"] == "SCHEMA"
    assert results[1]["status"] == 201


def batch_upload(world, batch_id, records, *, root=None):
    body = {"batch_id": batch_id, "platform": "wuhan-platform", "methodology_id": "HB-GT-METRO", "methodology_version": 1,
            "period_start": "2026-02-01", "period_end": "2026-02-28", **batch_commitment(records)}
    if root:
        body["root"] = root
    event = world.client.signed(world.wuhan, "activity.batch", body)
    return b"".join(jcs(x) + b"\n" for x in [event, *records])


def test_activity_batches_travel_with_their_records(api, world, client):
    records = world.records(25, day="2026-02-03")
    answer = api.post("/v1/activity-batches", content=batch_upload(world, "wh-2026-02", records))
    assert answer.status_code == 201, answer.text
    proof = api.get(f"/v1/activities/{records[7]['activity_id']}").json()
    from ledger import merkle
    assert proof["batch_seq"] == answer.json()["seq"] and proof["inclusion"]["tree_size"] == 25
    assert proof["record"] == jcs(records[7]).decode()
    assert merkle.verify_inclusion(merkle.leaf_hash(proof["record"].encode()), 7, 25,
                                   [bytes.fromhex(h) for h in proof["inclusion"]["hashes"]], bytes.fromhex(proof["batch_root"]))
    # The batch event itself has a receipt: record -> batch root -> checkpoint.
    assert client.prove(proof["batch_seq"])["leaf"].find(proof["batch_root"]) > 0
    subjects = api.get("/v1/activities", params={"subject": records[7]["subject"]}).json()["items"]
    assert records[7]["activity_id"] in {a["activity_id"] for a in subjects}


def test_activity_batches_that_do_not_match_their_records(api, world):
    records = world.records(5, day="2026-02-03")
    wrong_root = api.post("/v1/activity-batches", content=batch_upload(world, "b-1", records, root="0" * 64))
    assert (wrong_root.status_code, wrong_root.json()["code"]) == (422, "BATCH")
    bad_line = batch_upload(world, "b-2", records).replace(b"\n", b"\n{1.5}\n", 1)
    malformed = api.post("/v1/activity-batches", content=bad_line)
    assert (malformed.status_code, malformed.json()["code"]) == (422, "BATCH") and "line 2" in malformed.json()["message"]
    first = world.records(3, day="2026-02-03", act_prefix="shared")
    assert api.post("/v1/activity-batches", content=batch_upload(world, "b-3", first)).status_code == 201
    seen = [dict(r, activity_id=f"other-{i}") for i, r in enumerate(first)]  # same acts, another id
    twice = api.post("/v1/activity-batches", content=batch_upload(world, "b-4", seen))
    assert (twice.status_code, twice.json()["code"]) == (409, "DUPLICATE_ACTIVITY")
    not_a_batch = api.post("/v1/activity-batches", content=jcs(retirement(world, "ret-e")) + b"\n")
    assert (not_a_batch.status_code, not_a_batch.json()["code"]) == (422, "SCHEMA")


def test_client_reports_refusals(client, world):
    with pytest.raises(RegistryError) as refused:
        client.submit(world.mall.signer, "retirement", {"retirement_id": "ret-1", "account": "mall-co", "amount_g": 1,
                                                        "purpose": "voluntary", "beneficiary": "x"})
    assert (refused.value.status, refused.value.code) == (409, "DUPLICATE_ID")


def test_the_front_checks_an_events_strings_once(api, world, monkeypatch):
    """A single event's strings (U+0000, NFC) are checked once in the front (with the rest of its
    shape, as each event of a batch is) and once by the writer: under a flood the front's time is
    spent once per string, not twice. A U+0000 is still 422 SCHEMA."""
    from ledger import canonical
    checked: list[str] = []
    check_text = canonical.check_text

    def counted(text: str) -> None:
        checked.append(text)
        check_text(text)
    monkeypatch.setattr(canonical, "check_text", counted)
    event = retirement(world, "ret-once")

    def strings(value) -> int:
        if isinstance(value, str):
            return 1
        if isinstance(value, dict):
            return sum(1 + strings(item) for item in value.values())
        return sum(strings(item) for item in value) if isinstance(value, list) else 0
    assert post(api, event).status_code == 201
    assert len(checked) == 2 * strings(event), "front and writer, once each"
    nul = retirement(world, "ret-nul", beneficiary="p\u0000")
    answer = post(api, nul)
    assert (answer.status_code, answer.json()["code"]) == (422, "SCHEMA") and "U+0000" in answer.json()["message"]
