"""A hostile client against `puhui serve` (a real process on 127.0.0.1, every wait bounded): what
is decided in the front before the writer sees it, what authenticates before it costs, the limits
and rate limits, and floods of requests nobody signed (docs/operations.md, "Limits")."""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import threading
import time

import httpx
import pytest

from service.client import RegistryClient
from api.limits import DEAREST_UNITS
from keys import Ed25519Key
from ledger.registry import sign_event
from served_registry import Cast, Served, init_registry_dir, spawned_children

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
        "controllers": [cast.wuhan.key_id], "platform": None, "request_id": f"req-{tag}"}, log_format=1)


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
    nul = {**good[1], "body": {**good[1]["body"], "request_id": "a\u0000b"}}
    events = [good[0], {**good[0], "type": {}}, {**good[1], "body": []}, nul, good[1]]
    before = writer_events(http)
    answer = http.post("/v1/events:batch", content=json.dumps({"events": events}))
    assert answer.status_code == 200, answer.text
    results = answer.json()["results"]
    assert [r["status"] for r in results] == [201, 422, 422, 422, 201]
    assert [r.get("code") for r in results] == [None, "SCHEMA", "SCHEMA", "SCHEMA", None]
    assert "U+0000" in results[3]["message"]
    assert results[4]["seq"] == results[0]["seq"] + 1
    assert writer_events(http) == before + 2, "only the sound events go to the writer"


# -- findings 5 and 8: what can never succeed is 422, never "send it again" --------------------

def test_a_nul_request_id_and_a_huge_integer_are_422_schema(served, http):
    event = honest_event(served, "nul")
    nul = {**event, "body": {**event["body"], "request_id": "a\u0000b"}}
    huge = json.dumps(event).replace('"region": "420100"', '"region": ' + "9" * 5000).encode()
    for body in (json.dumps(nul).encode(), huge):
        answer = http.post("/v1/events", content=body)
        assert (answer.status_code, answer.json()["code"]) == (422, "SCHEMA"), answer.text[:300]
    upload = _upload(served, Cast(RegistryClient(served.url, trust=served.trust())).wuhan.signer, 2)
    answer = http.post("/v1/activity-batches", content=upload.replace(b'"reduction_g": 1', b'"reduction_g": ' + b"9" * 5000, 1),
                       headers={"content-type": "application/x-ndjson"})
    assert answer.status_code == 422 and answer.json()["code"] in ("SCHEMA", "BATCH"), answer.text[:300]


# -- finding 4: an upload's signer is checked before its records --------------------------------

def _upload(served: Served, signer, records: int) -> bytes:
    event = sign_event(signer, served.trust()["origin"], "activity.batch", {
        "batch_id": "b-upload", "platform": "wuhan-platform", "methodology_id": "HB-GT-METRO",
        "methodology_version": 1, "period_start": "2026-01-01", "period_end": "2026-01-31", "count": records,
        "total_g": records, "root": "ab" * 32, "request_id": f"up-{records}"}, log_format=1)
    line = json.dumps({"activity_id": "a" * 100, "subject": "s" * 100, "occurred_at": "2026-01-02T00:00:00Z",
                       "inputs": {"km": "1"}, "reduction_g": 1, "fingerprint": "ab" * 32}).encode()
    return json.dumps(event).encode() + b"\n" + b"\n".join([line] * records) + b"\n"


def test_an_unreadable_record_line_is_batch_only_after_the_events_own_rules(served, http):
    """The admin key is registered, so it authenticates, but it is no platform key controlling the
    platform account: the event's UNAUTHORIZED comes before its file's BATCH (spec section 7.3:
    the file is checked after every other rule of its event)."""
    cast = Cast(RegistryClient(served.url, trust=served.trust()))
    event_line, *records = _upload(served, cast.admin.signer, 3).splitlines()
    upload = b"\n".join([event_line, records[0], b"{not json", records[2]]) + b"\n"
    answer = http.post("/v1/activity-batches", content=upload, headers={"content-type": "application/x-ndjson"})
    assert (answer.status_code, answer.json()["code"]) == (403, "UNAUTHORIZED"), answer.text[:300]


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


# -- finding 4: events of keys the writer cannot know are answered in the front -----------------

def _register(served: Served, key: Ed25519Key, label: str, tag: str) -> dict:
    admin = Cast(RegistryClient(served.url, trust=served.trust())).admin
    return sign_event(admin.signer, served.trust()["origin"], "key.register", {
        "key_id": key.key_id, "public_key": base64.b64encode(key.public_key).decode(), "roles": ["platform"],
        "label": label, "request_id": f"reg-{tag}"}, log_format=1)


def _answers(http: httpx.Client, events: list[dict]) -> list[tuple[int, str, str]]:
    """Each event's answer alone and in one batch: (status, code, message)."""
    alone = [http.post("/v1/events", content=json.dumps(event)) for event in events]
    batch = http.post("/v1/events:batch", content=json.dumps({"events": events}))
    assert batch.status_code == 200, batch.text
    return ([(a.status_code, a.json().get("code"), a.json().get("message")) for a in alone]
            + [(r["status"], r.get("code"), r.get("message")) for r in batch.json()["results"]])


def test_unknown_revoked_and_forged_keys_get_the_writers_answers(served, http):
    """The answers the writer gives (before the front refused any key): unknown key, revoked key,
    a registered key's id over a signature it did not make; alone and in a batch."""
    origin = served.trust()["origin"]
    stranger = Ed25519Key.from_label("puhui-test/answers-stranger")
    revoked = Ed25519Key.from_label("puhui-test/answers-revoked")
    client = RegistryClient(served.url, trust=served.trust())
    client.submit_signed(_register(served, revoked, "answers-revoked", "answers"), prove=False)
    client.submit(Cast(client).admin.signer, "key.revoke", {"key_id": revoked.key_id, "reason": "test"}, prove=False)
    wuhan = Cast(client).wuhan
    unknown_event, revoked_event, forged = (_retirements(signer, origin, f"answers-{n}", 1)[0]
                                            for n, signer in enumerate((stranger, revoked, stranger)))
    forged["auth"]["key"] = wuhan.key_id
    message = (f"the signature does not verify with key {wuhan.key_id} over 'puhui-event/v1' + JCS of this body, "
               f"type and origin {origin} (format 1)")
    expected = [(401, "KEY_UNKNOWN", f"key {stranger.key_id} is neither a root key nor a registered key"),
                (401, "KEY_REVOKED", f"key {revoked.key_id} (answers-revoked) was revoked and signs nothing after that"),
                (401, "SIGNATURE", message)]
    assert _answers(http, [unknown_event, revoked_event, forged]) == expected * 2


def _forged(key_id: str, origin: str, tag: str, count: int) -> list[dict]:
    """Events naming key_id over signatures another key made."""
    events = _retirements(Ed25519Key.from_label(f"puhui-test/forger-{tag}"), origin, tag, count)
    for event in events:
        event["auth"]["key"] = key_id
    return events


def test_forged_signatures_of_a_registered_key_do_not_reach_the_writer(served, http):
    """Trial 11, finding (2): batches of 1,000 events naming a registered key over signatures it
    did not make went to the writer, which spent 2 to 4 s verifying them while every client's
    writes waited. A batch's sample finds the forgery, and its key's events are checked in the
    front from then on, alone or in batches, with the writer's answer; the key's own events still
    go to the writer."""
    origin = served.trust()["origin"]
    client = RegistryClient(served.url, trust=served.trust())
    key = Ed25519Key.from_label("puhui-test/forged-batch")
    client.submit_signed(_register(served, key, "forged-batch", "forged-batch"), prove=False)
    message = (f"the signature does not verify with key {key.key_id} over 'puhui-event/v1' + JCS of this body, "
               f"type and origin {origin} (format 1)")
    before = writer_events(http)
    answer = http.post("/v1/events:batch", content=json.dumps({"events": _forged(key.key_id, origin, "fb", 1000)}))
    assert answer.status_code == 200, answer.text
    assert {(r["status"], r["code"], r["message"]) for r in answer.json()["results"]} == {(401, "SIGNATURE", message)}
    assert writer_events(http) == before, "a batch of forged signatures reached the writer"
    # From now on the key is suspect: a batch mixing its own events and forgeries sends only its
    # own on, and a forgery alone is answered here too.
    own = _retirements(key, origin, "fb-own", 3)
    mixed = [own[0], *_forged(key.key_id, origin, "fb-mixed", 2), own[1], own[2]]
    answer = http.post("/v1/events:batch", content=json.dumps({"events": mixed}))
    assert [(r["status"], r["code"]) for r in answer.json()["results"]] == [
        (403, "UNAUTHORIZED"), (401, "SIGNATURE"), (401, "SIGNATURE"), (403, "UNAUTHORIZED"), (403, "UNAUTHORIZED")]
    assert writer_events(http) == before + 3, "only the key's own events go to the writer"
    alone = http.post("/v1/events", content=json.dumps(_forged(key.key_id, origin, "fb-alone", 1)[0]))
    assert (alone.status_code, alone.json()["code"], alone.json()["message"]) == (401, "SIGNATURE", message)
    assert writer_events(http) == before + 3, "a forgery of a suspect key reached the writer"


def test_events_of_unknown_keys_do_not_reach_the_writer(served, http):
    origin = served.trust()["origin"]
    events = [_retirements(Ed25519Key.from_label(f"puhui-test/unknown-{n}"), origin, f"unknown-{n}", 1)[0]
              for n in range(3)]
    before = writer_events(http)
    assert {code for _, code, _ in _answers(http, events)} == {"KEY_UNKNOWN"}
    assert writer_events(http) == before, "an event of a key nobody registered reached the writer"


def test_a_key_event_refused_in_the_front_marks_no_key_pending(served, http):
    """Trial 11: a key.revoke signed by an unknown key (refused here) named key X; the events of X
    after it in the batch then reached the writer, each a signature check there."""
    origin = served.trust()["origin"]
    stranger, named = Ed25519Key.from_label("puhui-test/revoker"), Ed25519Key.from_label("puhui-test/named")
    revoke = sign_event(stranger, origin, "key.revoke", {"key_id": named.key_id, "reason": "x", "request_id": "rv-1"},
                        log_format=1)
    events = [revoke, *_retirements(named, origin, "named", 20)]
    before = writer_events(http)
    answer = http.post("/v1/events:batch", content=json.dumps({"events": events}))
    assert {r.get("code") for r in answer.json()["results"]} == {"KEY_UNKNOWN"}, answer.text
    assert writer_events(http) == before, "events of a key only a refused key event named reached the writer"


def test_a_key_registered_in_a_batch_signs_its_next_events(served, http):
    origin = served.trust()["origin"]
    new = Ed25519Key.from_label("puhui-test/batch-registered")
    events = [_retirements(new, origin, "before-registered", 1)[0], _register(served, new, "batch-registered", "batch"),
              _retirements(new, origin, "registered-in-batch", 1)[0]]
    answer = http.post("/v1/events:batch", content=json.dumps({"events": events}))
    assert [(r["status"], r.get("code")) for r in answer.json()["results"]] == [
        (401, "KEY_UNKNOWN"), (201, None), (403, "UNAUTHORIZED")], answer.text  # judged: the key signs


def test_an_event_of_a_key_whose_registration_is_in_flight_goes_to_the_writer(served):
    """A client registers a key and, without waiting for the answer, sends an event that key
    signed, on another connection. The writer is stopped (SIGSTOP) while both reach the front, so
    the registration is surely not committed when the event comes: the front must not refuse the
    event (KEY_UNKNOWN) but pass it on, and the writer judges it after the registration."""
    origin = served.trust()["origin"]
    new = Ed25519Key.from_label("puhui-test/in-flight")
    answers: dict[str, httpx.Response] = {}

    def post(name: str, event: dict) -> None:
        with httpx.Client(base_url=served.url, timeout=TIMEOUT_S) as http:
            answers[name] = http.post("/v1/events", content=json.dumps(event))

    register = threading.Thread(target=post, args=("register", _register(served, new, "in-flight", "in-flight")))
    signed = threading.Thread(target=post, args=("signed", _retirements(new, origin, "in-flight", 1)[0]))
    stopped = spawned_children(served.process.pid)  # the writer (and any worker process of the front)
    for pid in stopped:
        os.kill(pid, signal.SIGSTOP)
    try:
        register.start()
        time.sleep(2.0)  # read by the front and passed on to the stopped writer, even on busy cores
        signed.start()
        time.sleep(1.0)
        assert not answers, f"answered while the writer was stopped: {answers}"
    finally:
        for pid in stopped:
            os.kill(pid, signal.SIGCONT)
        register.join(TIMEOUT_S)
        signed.join(TIMEOUT_S)
    assert answers["register"].status_code == 201, answers["register"].text
    assert (answers["signed"].status_code, answers["signed"].json()["code"]) == (403, "UNAUTHORIZED"), \
        answers["signed"].text  # judged by the rules: the key signs


# -- trial 11 (13): a declared body type that is not the path's -----------------------------------

@pytest.mark.parametrize("path, content_type", [
    ("/v1/events", "text/plain"), ("/v1/events:batch", "application/x-www-form-urlencoded"),
    ("/v1/offset-eligibility", "multipart/form-data; boundary=x"), ("/v1/activity-batches", "text/plain"),
    ("/v1/claims/claim-none/page", "text/plain;charset=UTF-8"), ("/v1/events", "application/x-ndjson")])
def test_a_post_declaring_a_type_its_path_does_not_take_is_415(served, http, path, content_type):
    """A page elsewhere can make a browser post text/plain or a form to the API without asking
    the server first (no CORS preflight): such a post is refused before its body is read."""
    event = honest_event(served, f"typed-{path}-{content_type}")
    before = writer_events(http)
    answer = http.post(path, content=json.dumps(event), headers={"content-type": content_type})
    assert (answer.status_code, answer.json()["code"]) == (415, "SCHEMA"), answer.text
    assert "send no Content-Type" in answer.json()["message"]
    assert writer_events(http) == before


def test_json_with_a_charset_or_no_declared_type_is_taken(served, http):
    for n, headers in enumerate(({"content-type": "Application/JSON; charset=utf-8"}, {}, {"content-type": ""})):
        answer = http.post("/v1/events", content=json.dumps(honest_event(served, f"typed-ok-{n}")), headers=headers)
        assert answer.status_code == 201, answer.text


# -- finding 8: a body that is no inventory -----------------------------------------------------

def test_a_claim_page_asked_with_a_null_inventory_is_422(http):
    answer = http.post("/v1/claims/claim-none/page", content=b"null")
    assert (answer.status_code, answer.json()["code"]) == (422, "SCHEMA"), answer.text


# -- finding 9: timeouts, concurrency per source, rate limits -----------------------------------

TIGHT = {"PUHUI_KEY_PASSPHRASE": "puhui api tests", "PUHUI_HEADER_TIMEOUT_S": "1", "PUHUI_BODY_TIMEOUT_S": "1",
         "PUHUI_MAX_REQUESTS_PER_SOURCE": "6", "PUHUI_KEY_EVENTS_PER_S": "1", "PUHUI_KEY_BURST_EVENTS": "1000",
         "PUHUI_BUDGET_UNITS_PER_S": "1", "PUHUI_BUDGET_BURST_UNITS": str(DEAREST_UNITS)}


@pytest.fixture(scope="module")
def tight(tmp_path_factory):
    """A server with small limits, so that a test reaches each in a moment."""
    served = Served(init_registry_dir(tmp_path_factory.mktemp("tight") / "registry")).start(env=TIGHT)
    try:
        cast = Cast(RegistryClient(served.url, trust=served.trust()))
        cast.register(cast.wuhan, ["platform"])
        yield served
    finally:
        served.stop()


def _closed_by_server(sock: socket.socket, within_s: float) -> bool:
    sock.settimeout(within_s)
    try:
        while sock.recv(4096):
            pass
        return True
    except (TimeoutError, socket.timeout):
        return False
    except ConnectionResetError:
        return True


def test_half_sent_headers_and_silent_connections_are_closed(tight):
    sockets = []
    for i in range(20):
        sock = socket.create_connection(("127.0.0.1", tight.port), timeout=5)
        if i % 2:
            sock.sendall(b"POST /v1/events HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        sockets.append(sock)
    started = time.monotonic()
    try:
        assert all(_closed_by_server(sock, 10) for sock in sockets)
        assert time.monotonic() - started < 8
    finally:
        for sock in sockets:
            sock.close()


def _read_answer(sock: socket.socket) -> bytes:
    answer = b""
    while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
        chunk = sock.recv(4096)
        if not chunk:
            break
        answer += chunk
    return answer


def test_a_body_that_does_not_arrive_in_time_is_408(tight):
    with socket.create_connection(("127.0.0.1", tight.port), timeout=10) as sock:
        sock.sendall(b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 1000\r\n\r\n{\"type\": ")
        answer = _read_answer(sock)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408"), answer
    assert b"connection: close" in head.lower()
    assert json.loads(body)["code"] == "TIMEOUT"


def test_a_request_beyond_an_addresss_limit_takes_the_place_of_its_oldest_half_sent_body(tight):
    # Requests in flight from one address are bounded (6 here; tests/api/test_api_limits.py shows
    # the 429 for requests whose bodies are whole); a half-sent body gives its place away.
    held = []
    try:
        for _ in range(6):  # each holds its request open until its body times out (1 s)
            sock = socket.create_connection(("127.0.0.1", tight.port), timeout=10)
            sock.sendall(b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{")
            held.append(sock)
        time.sleep(0.3)
        answer = httpx.get(tight.url + "/v1/trust", timeout=10)
        assert answer.status_code == 200, answer.text
        evicted = _read_answer(held[0])
        assert evicted.startswith(b"HTTP/1.1 408") and b"gave way" in evicted, evicted
    finally:
        for sock in held:
            sock.close()


NAT = {"PUHUI_KEY_PASSPHRASE": "puhui api tests", "PUHUI_MAX_REQUESTS_PER_SOURCE": "16",
       "PUHUI_BODY_TIMEOUT_S": "120", "PUHUI_BODY_GRACE_S": "60"}


def test_half_sent_bodies_from_an_address_do_not_hold_its_honest_clients(tmp_path):
    """Behind one NAT address, a client holding many half-sent bodies while honest clients write:
    each honest write is served long before the half-sent bodies' deadlines (60 s of grace, 120 s
    in all), and the half-sent ones are the requests that pay (408)."""
    served = Served(init_registry_dir(tmp_path / "registry")).start(env=NAT)
    held: list[socket.socket] = []
    try:
        cast = Cast(RegistryClient(served.url, trust=served.trust()))
        cast.register(cast.wuhan, ["platform"])
        for _ in range(64):
            sock = socket.create_connection(("127.0.0.1", served.port), timeout=10)
            sock.sendall(b"POST /v1/events:batch HTTP/1.1\r\nHost: x\r\nContent-Length: 60000000\r\n\r\n{")
            held.append(sock)
        time.sleep(0.5)
        started = time.monotonic()
        with httpx.Client(base_url=served.url, timeout=TIMEOUT_S) as http:
            honest = [http.post("/v1/events", content=json.dumps(honest_event(served, f"nat-{i}"))).status_code
                      for i in range(20)]
        assert honest == [201] * 20
        assert time.monotonic() - started < 30, "the honest writes waited for the half-sent bodies"
        evicted = _read_answer(held[0])
        assert evicted.startswith(b"HTTP/1.1 408") and b"gave way" in evicted, evicted
    finally:
        for sock in held:
            sock.close()
        served.stop()


def _retirements(signer, origin: str, tag: str, count: int) -> list[dict]:
    return [sign_event(signer, origin, "retirement", {
        "retirement_id": f"r-{tag}-{i}", "account": "no-such-account", "amount_g": 1, "purpose": "voluntary",
        "beneficiary": "b", "request_id": f"q-{tag}-{i}"}, log_format=1) for i in range(count)]


def test_writes_are_rate_limited_per_signing_key_not_per_address(tight):
    cast = Cast(RegistryClient(tight.url, trust=tight.trust()))
    origin = tight.trust()["origin"]
    with httpx.Client(base_url=tight.url, timeout=TIMEOUT_S) as http:
        # The admin key has signed (the cast's setup): its own bucket, 1,000 events at once.
        burst = http.post("/v1/events:batch", content=json.dumps({"events": _retirements(cast.admin.signer, origin, "a", 1000)}))
        assert burst.status_code == 200, burst.text
        assert {r["code"] for r in burst.json()["results"]} == {"UNAUTHORIZED"}  # judged: the key signs
        over = http.post("/v1/events", content=json.dumps(_retirements(cast.admin.signer, origin, "b", 1)[0]))
        assert over.status_code == 429 and over.json()["code"] == "RATE_LIMITED", over.text
        assert int(over.headers["retry-after"]) >= 1
        # Another key from the same address is not held back.
        other = http.post("/v1/events", content=json.dumps(_retirements(cast.wuhan.signer, origin, "c", 1)[0]))
        assert other.status_code in (403, 409), other.text


def test_unsigned_floods_and_expensive_reads_spend_a_global_budget(tight):
    origin = tight.trust()["origin"]
    with httpx.Client(base_url=tight.url, timeout=TIMEOUT_S) as http:
        statuses = []
        for n in range(DEAREST_UNITS // 500 + 1):  # keys nobody registered: unauthenticated work, 1 unit an event
            stranger = Ed25519Key.from_label(f"puhui-test/flood-{n}")
            answer = http.post("/v1/events:batch", content=json.dumps({"events": _retirements(stranger, origin, f"f{n}", 500)}))
            statuses.append(answer.status_code)
            if answer.status_code == 200:
                assert {r["code"] for r in answer.json()["results"]} == {"KEY_UNKNOWN"}
        assert statuses[:-1] == [200] * (DEAREST_UNITS // 500) and statuses[-1] == 429, statuses
        check = {"entity": "e", "compliance_year": 2026, "allocation_g": 1, "retirements": [f"r{i}" for i in range(1000)]}
        answer = http.post("/v1/offset-eligibility", content=json.dumps(check))
        assert answer.status_code == 429 and int(answer.headers["retry-after"]) >= 1, answer.text


def test_no_redirect_points_at_a_foreign_host(served, http):
    for path in ("/v1/trust/", "/v1/accounts/x/", "/v1/checkpoint/", "/v1/log/"):
        answer = http.get(path, headers={"Host": "evil.example"}, follow_redirects=False)
        assert not answer.is_redirect, (path, answer.headers)
        assert "evil.example" not in answer.headers.get("location", "")


def test_honest_writes_go_through_a_flood_nobody_signed(served):
    """Malformed events and events of unknown keys from 4 threads while an honest client writes:
    every honest event is accepted, and nothing is answered 5xx."""
    origin = served.trust()["origin"]
    stop = threading.Event()
    flood_statuses: list[int] = []

    def flood(n: int) -> None:
        stranger = Ed25519Key.from_label(f"puhui-test/flooder-{n}")
        with httpx.Client(base_url=served.url, timeout=TIMEOUT_S) as http:
            i = 0
            while not stop.is_set():
                [event] = _retirements(stranger, origin, f"flood{n}-{i}", 1)
                body = {**event, "type": {}} if i % 2 else event
                flood_statuses.append(http.post("/v1/events", content=json.dumps(body)).status_code)
                i += 1

    flooders = [threading.Thread(target=flood, args=(n,)) for n in range(4)]
    for thread in flooders:
        thread.start()
    try:
        with httpx.Client(base_url=served.url, timeout=TIMEOUT_S) as http:
            honest = [http.post("/v1/events", content=json.dumps(honest_event(served, f"honest-{i}"))).status_code
                      for i in range(50)]
    finally:
        stop.set()
        for thread in flooders:
            thread.join(TIMEOUT_S)
    assert honest == [201] * 50
    assert flood_statuses and set(flood_statuses) <= {401, 422, 429}, set(flood_statuses)
