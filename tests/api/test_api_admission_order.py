"""The front's admission keeps the writer's order where it matters: SignatureScreen awaits its
threads between admitting a request and submitting it, so an event whose signer a key event
admitted before it registers must still reach the writer after that key event; and a key that
only a forged key event names is not left out of the screen (docs/operations.md)."""

from __future__ import annotations

import base64
import json
import random
import threading
import time

import pytest

from api.admission import SignatureScreen
from api.errors import STATUS_BY_CODE
from keys import Ed25519Key
from ledger.errors import Rejected
from ledger.registry import sign_event
from world import World

ORDER_DELAY_S = 0.5


def _register(world, key: Ed25519Key, tag: str) -> dict:
    return sign_event(world.admin.signer, world.registry.origin, "key.register", {
        "key_id": key.key_id, "public_key": base64.b64encode(key.public_key).decode(), "roles": ["platform"],
        "label": tag, "request_id": f"reg-{tag}"}, log_format=1)


def _retirement(world, signer, tag: str) -> dict:
    return sign_event(signer, world.registry.origin, "retirement", {
        "retirement_id": f"r-{tag}", "account": "no-such-account", "amount_g": 1, "purpose": "voluntary",
        "beneficiary": "b", "request_id": f"q-{tag}"}, log_format=1)


def test_an_event_of_a_key_registered_by_a_batch_being_screened_waits_for_it(api, world, monkeypatch):
    checked = SignatureScreen._checked

    def slowly_checked(self, *arguments):
        time.sleep(ORDER_DELAY_S)  # the batch is admitted, and held in its screen
        return checked(self, *arguments)
    monkeypatch.setattr(SignatureScreen, "_checked", slowly_checked)
    new = Ed25519Key.from_label("puhui-test/order-new")
    batch = [_register(world, new, "order"), _retirement(world, world.admin.signer, "order-admin")]
    answers = {}

    def post_batch() -> None:
        answers["batch"] = api.post("/v1/events:batch", content=json.dumps({"events": batch}))
    sending = threading.Thread(target=post_batch)
    sending.start()
    time.sleep(ORDER_DELAY_S / 3)
    single = api.post("/v1/events", content=json.dumps(_retirement(world, new, "order-new")))
    sending.join(30)
    assert [r["status"] for r in answers["batch"].json()["results"]] == [201, 403], answers["batch"].text
    assert (single.status_code, single.json()["code"]) == (403, "UNAUTHORIZED"), single.text  # judged: the key signs


def test_a_forged_key_event_does_not_open_the_screen_to_the_key_it_names(api, world):
    """A batch of a forged key.revoke naming key X, then forged events of X: the revoke marks X
    pending (its signer is registered), but being forged it must not exempt X's events from the
    screen: none of them reaches the writer."""
    stranger = Ed25519Key.from_label("puhui-test/forger")
    revoke = sign_event(stranger, world.registry.origin, "key.revoke",
                        {"key_id": world.wuhan.key_id, "reason": "x", "request_id": "forged-revoke"}, log_format=1)
    revoke["auth"]["key"] = world.admin.key_id
    forged = [_retirement(world, stranger, f"forged-x-{n}") for n in range(50)]
    for event in forged:
        event["auth"]["key"] = world.wuhan.key_id
    before = api.get("/v1/status").json()["sequencer"]["events"]
    answer = api.post("/v1/events:batch", content=json.dumps({"events": [revoke, *forged]}))
    assert {(r["status"], r["code"]) for r in answer.json()["results"]} == {(401, "SIGNATURE")}, answer.text
    assert api.get("/v1/status").json()["sequencer"]["events"] == before, "a forged event reached the writer"


def _mixed_batch(world, rng, round_: int) -> list[dict]:
    """Genuine and forged events of several keys, a key registered and used, a forged revoke,
    an unknown key, a resend: in a random order, each at most once."""
    stranger, new = Ed25519Key.from_label("puhui-test/mix-stranger"), Ed25519Key.from_label(f"puhui-test/mix-new-{round_}")
    origin = world.registry.origin

    def forged(key_id: str, tag: str) -> dict:
        event = _retirement(world, stranger, tag)
        event["auth"]["key"] = key_id
        return event
    revoke = sign_event(stranger, origin, "key.revoke", {"key_id": world.wuhan.key_id, "reason": "x",
                                                         "request_id": f"mix-revoke-{round_}"}, log_format=1)
    revoke["auth"]["key"] = world.admin.key_id
    pool = [_retirement(world, world.wuhan.signer, f"mix-w-{round_}-{n}") for n in range(3)]
    pool += [_retirement(world, world.admin.signer, f"mix-a-{round_}-{n}") for n in range(2)]
    pool += [forged(world.wuhan.key_id, f"mix-fw-{round_}-{n}") for n in range(3)]
    pool += [forged(world.admin.key_id, f"mix-fa-{round_}-{n}") for n in range(2)]
    pool += [revoke, _retirement(world, stranger, f"mix-unknown-{round_}")]
    register = _register(world, new, f"mix-{round_}")
    used = _retirement(world, new, f"mix-new-{round_}")
    rng.shuffle(pool)
    at = rng.randrange(len(pool) + 1)
    events = pool[:at] + [register] + pool[at:rng.randrange(at, len(pool) + 1)] + [used]
    return events + [rng.choice(events)]  # and one resent


@pytest.mark.parametrize("seed", range(3))
def test_the_fronts_answers_to_a_mixed_batch_are_the_writers(api, world, tmp_path, seed):
    """The front refuses some events itself (unknown keys, forged signatures, sampled or of a
    suspect key); each of its answers must be the very one the writer gives, which a second
    registry with the same history, fed the same events directly, tells."""
    rng = random.Random(seed)
    alone = World(f"sqlite:///{tmp_path / 'alone.sqlite3'}").setup().history()
    try:
        assert alone.registry.size == world.registry.size  # the same history (its request ids are random)
        codes: set[str | None] = set()
        for round_ in range(4):
            events = _mixed_batch(world, rng, round_)
            front = api.post("/v1/events:batch", content=json.dumps({"events": events})).json()["results"]
            writer = alone.registry.append_many([(event, None) for event in events])
            expected = [{"status": STATUS_BY_CODE[w.code], "code": w.code, "message": w.message}
                        if isinstance(w, Rejected) else {"status": 200 if w.duplicate else 201, "seq": w.seq}
                        for w in writer]
            assert [{k: r.get(k) for k in e} for r, e in zip(front, expected)] == expected, (seed, round_)
            codes |= {r.get("code") for r in front}
        assert codes >= {"SIGNATURE", "KEY_UNKNOWN", "UNAUTHORIZED", None}, codes  # each kind of answer was met
    finally:
        alone.registry.close()


def test_batches_of_malformed_events_are_charged_to_their_address(api, world):
    """Trial 11: batches of 1,000 events with "type": {} were answered 200 and cost nothing, 526,000
    refusals in 12 s from two addresses. Each malformed event is charged to the address as waste:
    within a few batches the address may not write (429), before its body is read."""
    malformed = [{**_retirement(world, world.admin.signer, f"malformed-{n}"), "type": {}} for n in range(1000)]
    body = json.dumps({"events": malformed})
    statuses = [api.post("/v1/events:batch", content=body).status_code for _ in range(8)]
    assert statuses[0] == 200 and 429 in statuses, statuses
