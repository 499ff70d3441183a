"""A hostile client against `puhui serve` (a real process on 127.0.0.1, every wait bounded): what
is decided in the front before the writer sees it, what authenticates before it costs, the limits
and rate limits, and floods of requests nobody signed (docs/operations.md, "Limits")."""

from __future__ import annotations

import base64
import json
import time

import httpx
import pytest

from api.client import RegistryClient
from keys import Ed25519Key
from ledger.registry import sign_event
from served_registry import Cast, Served, init_registry_dir

TIMEOUT_S = 30.0


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    served = Served(init_registry_dir(tmp_path_factory.mktemp("security") / "registry")).start()
    try:
        client = RegistryClient(served.url, trust=served.trust())
        cast = Cast(client)
        cast.register(cast.wuhan, ["platform"])
        cast.open("wuhan-platform", "platform", [cast.wuhan])
        cast.methodology()
        yield served
    finally:
        served.stop()


@pytest.fixture
def http(served):
    with httpx.Client(base_url=served.url, timeout=TIMEOUT_S) as http:
        yield http


def writer_events(http: httpx.Client) -> int:
    """Events the writer has been handed since the server started (accepted or refused)."""
    return http.get("/v1/status").json()["sequencer"]["events"]


def honest_event(served: Served, tag: str) -> dict:
    cast = Cast(RegistryClient(served.url, trust=served.trust()))
    return sign_event(cast.admin.signer, served.trust()["origin"], "account.open", {
        "account_id": f"acct-{tag}", "kind": "compliance_entity", "name": f"acct-{tag}", "region": "420100",
        "controllers": [cast.wuhan.key_id], "platform": None, "request_id": f"req-{tag}"})


# -- finding 1: malformed events are answered in the front --------------------------------------

@pytest.mark.parametrize("bad_type", [{}, [], 7, None, "no.such.type"])
def test_a_malformed_event_is_422_schema_in_the_front(served, http, bad_type):
    event = {**honest_event(served, "x"), "type": bad_type}
    before = writer_events(http)
    answer = http.post("/v1/events", content=json.dumps(event))
    assert answer.status_code == 422 and answer.json()["code"] == "SCHEMA", answer.text
    assert writer_events(http) == before, "a malformed event reached the writer"


def test_a_malformed_event_in_a_batch_is_refused_alone(served, http):
    good = [honest_event(served, f"batch-{i}") for i in range(2)]
    events = [good[0], {**good[0], "type": {}}, {**good[1], "body": []}, good[1]]
    before = writer_events(http)
    answer = http.post("/v1/events:batch", content=json.dumps({"events": events}))
    assert answer.status_code == 200, answer.text
    results = answer.json()["results"]
    assert [r["status"] for r in results] == [201, 422, 422, 201]
    assert [r.get("code") for r in results] == [None, "SCHEMA", "SCHEMA", None]
    assert results[3]["seq"] == results[0]["seq"] + 1
    assert writer_events(http) == before + 2, "only the sound events go to the writer"


# -- finding 4: an upload's signer is checked before its records --------------------------------

def _upload(served: Served, signer, records: int) -> bytes:
    event = sign_event(signer, served.trust()["origin"], "activity.batch", {
        "batch_id": "b-upload", "platform": "wuhan-platform", "methodology_id": "HB-GT-METRO",
        "methodology_version": 1, "period_start": "2026-01-01", "period_end": "2026-01-31", "count": records,
        "total_g": records, "root": "ab" * 32, "request_id": f"up-{records}"})
    line = json.dumps({"activity_id": "a" * 100, "subject": "s" * 100, "occurred_at": "2026-01-02T00:00:00Z",
                       "inputs": {"km": "1"}, "reduction_g": 1, "fingerprint": "ab" * 32}).encode()
    return json.dumps(event).encode() + b"\n" + b"\n".join([line] * records) + b"\n"


@pytest.mark.parametrize("signer_kind", ["unknown", "forged"])
def test_an_upload_nobody_may_sign_is_refused_before_its_records_are_read(served, http, signer_kind):
    stranger = Ed25519Key.from_label("puhui-test/stranger")
    data = _upload(served, stranger, 100_000)  # about 30 MB of records
    if signer_kind == "forged":  # a registered key's id over a signature it did not make
        wuhan = Cast(RegistryClient(served.url, trust=served.trust())).wuhan
        first, rest = data.split(b"\n", 1)
        event = json.loads(first)
        event["auth"]["key"] = wuhan.key_id
        data = json.dumps(event).encode() + b"\n" + rest
    before = writer_events(http)
    answer = http.post("/v1/activity-batches", content=data, headers={"content-type": "application/x-ndjson"})
    assert answer.status_code == 401, answer.text
    assert answer.json()["code"] == ("KEY_UNKNOWN" if signer_kind == "unknown" else "SIGNATURE")
    assert writer_events(http) == before, "an unauthenticated upload reached the writer"
