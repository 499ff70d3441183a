"""The rules of spec section 6: state + event -> effects, or a Rejected carrying the spec's code.

`authenticate` and `judge` only read the state; `apply` is the one place that changes it. The
registry judges before it sequences; a replay of the log judges each leaf with its recorded
effects, so both paths run the very same rules. Each type's own rules are in ledger/events/;
here are the checks every type shares, run around them in the order of spec section 9.
"""

from __future__ import annotations

import base64
from typing import Any, Sequence

from nacl.exceptions import BadSignatureError

from ledger.canonical import jcs
from ledger.errors import Rejected
from ledger.events import TYPES
from ledger.events.activities import CheckedFile, batch_commitment  # noqa: F401  (batch_commitment re-exported: clients build batches with it)
from ledger.events.base import Serials, Verdict
from ledger.state import ActivityIndex, ActivityRecord, Key, State

# Spec section 2: the prefix stops an event signed for a format-1 log being replayed into format 2.
EVENT_DOMAINS = {1: b"puhui-event/v1\n", 2: b"puhui-event/v2\n"}


def signing_message(origin: str, event_type: str, body: dict[str, Any], log_format: int) -> bytes:
    return EVENT_DOMAINS[log_format] + _signed_part(origin, event_type, body)


def _signed_part(origin: str, event_type: str, body: dict[str, Any]) -> bytes:
    """What an event's signature covers after its format's domain prefix (spec section 2)."""
    return jcs({"body": body, "origin": origin, "type": event_type})


def event_format(state: State, event_type: str, body: dict[str, Any]) -> int:
    """The format an event is signed and judged in: the log's, or for the genesis the one it sets."""
    if state.log_format is not None:
        return state.log_format
    return TYPES[event_type].body_format(1, body)


def authenticate(state: State, origin: str, event_type: str, body: dict[str, Any], auth: dict[str, str]) -> Key:
    """The signing key, known and active, whose signature verifies (KEY_UNKNOWN, KEY_REVOKED, SIGNATURE)."""
    return verify_signer(state.signer(auth["key"]), origin, event_type, body, auth,
                         event_format(state, event_type, body))


def unknown_key(key_id: str) -> Rejected:
    """KEY_UNKNOWN: the writer's, and the HTTP front's for a key it knows the writer cannot know."""
    return Rejected("KEY_UNKNOWN", f"key {key_id} is neither a root key nor a registered key")


def verify_signer(key: Key | None, origin: str, event_type: str, body: dict[str, Any], auth: dict[str, str],
                  log_format: int) -> Key:
    """authenticate, given the key auth names as found (None: unknown); also the HTTP front's early
    check of an upload, with the key read from the committed database."""
    if key is None:
        raise unknown_key(auth["key"])
    if key.revoked:
        raise Rejected("KEY_REVOKED", f"key {key.key_id} ({key.label}) was revoked and signs nothing after that")
    signature = base64.b64decode(auth["sig"])
    signed = _signed_part(origin, event_type, body)  # once, for this format's prefix and the others' (the refusal's)
    try:
        key.verify_key.verify(EVENT_DOMAINS[log_format] + signed, signature)
    except BadSignatureError:
        raise Rejected("SIGNATURE", _signature_problem(key, origin, signed, log_format, signature)) from None
    return key


def _signature_problem(key: Key, origin: str, signed: bytes, log_format: int, signature: bytes) -> str:
    """Why a signature fails, naming the likeliest slip: a client signing for the other format
    (its domain prefix), else the message a signature must cover (`signed`: its part after the prefix)."""
    expected = EVENT_DOMAINS[log_format].decode().strip()
    for other_format, domain in EVENT_DOMAINS.items():
        if other_format == log_format:
            continue
        try:
            key.verify_key.verify(domain + signed, signature)
        except BadSignatureError:
            continue
        return (f"the signature of key {key.key_id} is over the format-{other_format} message ({domain.decode().strip()!r}"
                f" prefix), but this log is format {log_format}: sign {expected!r} + JCS of body, origin and type")
    return (f"the signature does not verify with key {key.key_id} over {expected!r} + JCS of this body, type and "
            f"origin {origin} (format {log_format})")


def judge(state: State, event_type: str, body: dict[str, Any], key: Key, *,
          activities: ActivityIndex, records: Sequence[Any] | CheckedFile | None = None,
          effects: Serials | None = None) -> Verdict:
    """Check every rule after authentication: UNAUTHORIZED, REPLAY, DUPLICATE_ID, then the type's own.

    `records` are an activity batch's records as parsed JSON objects, or the CheckedFile the HTTP
    front made of them (ledger.events.activities). With `effects` given
    (replaying a leaf), they are checked instead of chosen.
    """
    event = TYPES[event_type]
    if state.size == 0 and event_type != "registry.genesis":
        raise Rejected("UNAUTHORIZED", "seq 0 must be registry.genesis")
    event.authorize(state, body, key)
    if (key.key_id, body["request_id"]) in state.requests:
        raise Rejected("REPLAY", f"key {key.key_id} already used request_id {body['request_id']!r}")
    event.check_new_id(state, body)
    return event.judge(state, body, activities, records, effects)


def apply(state: State, seq: int, time: str, event_type: str, body: dict[str, Any], signer: str,
          effects: Serials | None, *, activities: ActivityIndex,
          records: Sequence[ActivityRecord] | None = None) -> None:
    """Change the state by one accepted event. The caller has judged it."""
    assert seq == state.size, (seq, state.size)
    TYPES[event_type].apply_signed(state, seq, signer, body, effects, activities, records)
    state.requests[(signer, body["request_id"])] = seq
    state.size = seq + 1
    state.last_time = time
