"""The front's admission keeps the writer's order where it matters: SignatureScreen awaits its
threads between admitting a request and submitting it, so an event whose signer a key event
admitted before it registers must still reach the writer after that key event; and a key that
only a forged key event names is not left out of the screen (docs/operations.md)."""

from __future__ import annotations

import base64
import json
import threading
import time

from api.admission import SignatureScreen
from keys import Ed25519Key
from ledger.registry import sign_event

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
