"""Leaves of spec section 3: the exact bytes the tree commits to."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ledger.canonical import jcs, parse_strict
from ledger.errors import Rejected
from ledger.field_checks import fields, key_id, signature
from ledger.schema import TYPES_WITH_EFFECTS, check_body, check_effects, parse_time

_LEAF_KEYS = frozenset(("auth", "body", "seq", "time", "type"))
_AUTH = fields({"key": key_id, "sig": signature})


@dataclass(frozen=True)
class Leaf:
    seq: int
    time: str
    type: str
    body: dict[str, Any]
    auth: dict[str, str]
    effects: dict[str, Any] | None
    data: bytes

    @property
    def serials(self) -> list[list[int]] | None:
        return None if self.effects is None else self.effects["serials"]

    def submission(self) -> dict[str, Any]:
        """The signed event as its actor submitted it."""
        return {"type": self.type, "body": self.body, "auth": self.auth}


def make_leaf(seq: int, time: str, event_type: str, body: dict[str, Any], auth: dict[str, str],
              serials: list[list[int]] | None) -> Leaf:
    value: dict[str, Any] = {"auth": auth, "body": body, "seq": seq, "time": time, "type": event_type}
    effects = None
    if event_type in TYPES_WITH_EFFECTS:
        assert serials is not None
        effects = {"serials": serials}
        value["effects"] = effects
    return Leaf(seq, time, event_type, body, auth, effects, jcs(value))


def log_format_of(genesis: bytes) -> int:
    """A log's format from its first leaf, as spec "Formats" says: 2 if it parses as a JSON object of
    type registry.genesis whose body.format is 2 (whatever else it breaks), else 1."""
    try:
        value = parse_strict(genesis)
    except Rejected:
        return 1
    if not isinstance(value, dict):
        return 1
    body = value.get("body")
    is_v2 = (value.get("type") == "registry.genesis" and isinstance(body, dict)
             and type(body.get("format")) is int and body["format"] == 2)
    return 2 if is_v2 else 1


def stored_log_format(genesis: bytes | None) -> int:
    """The format of a registry's own log from its stored genesis leaf (a log without one has no
    leaf to parse, so 1 is never used for one)."""
    return 1 if genesis is None else log_format_of(genesis)


def committed_leaf(data: bytes) -> Leaf:
    """A leaf this registry's writer committed, read back by a follower of the committed log (the
    front's committed State, api/committed_state.py), which judges nothing by its shape: the
    writer checked every rule before committing it and checks its database against the log when it
    starts, so none of parse_leaf's checks (a ninth of the cost) is repeated for each leaf."""
    value = json.loads(data)
    assert isinstance(value, dict) and isinstance(value["seq"], int), "a committed leaf is a leaf"
    return Leaf(value["seq"], value["time"], value["type"], value["body"], value["auth"], value.get("effects"), data)


def parse_leaf(data: bytes, log_format: int) -> Leaf:
    """A leaf of a log of this format read back from storage or a bundle: canonical bytes, exactly
    the keys of section 3, a body of its type."""
    try:
        value = parse_strict(data)
    except Rejected as exc:
        raise Rejected("ENCODING", exc.message) from None
    if not isinstance(value, dict) or jcs(value) != data:
        raise Rejected("ENCODING", "leaf is not canonical JCS")
    expected = _LEAF_KEYS | ({"effects"} if value.get("type") in TYPES_WITH_EFFECTS else set())
    if set(value) != expected:
        raise Rejected("ENCODING", f"leaf keys are {sorted(value)}, expected {sorted(expected)}")
    if not isinstance(value["seq"], int) or isinstance(value["seq"], bool):
        raise Rejected("ENCODING", "seq is not an integer")
    try:
        parse_time(value["time"])
    except ValueError as exc:
        raise Rejected("TIME", str(exc)) from None
    _AUTH("auth", value["auth"])
    check_body(value["type"], value["body"], log_format)
    if "effects" in value:
        check_effects(value["type"], value["effects"])
    return Leaf(value["seq"], value["time"], value["type"], value["body"], value["auth"], value.get("effects"), data)
