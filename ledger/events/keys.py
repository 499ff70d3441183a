"""key.register and key.revoke: the keys that may sign, and their roles."""

from __future__ import annotations

import base64
from typing import Any, Sequence

from ledger.errors import Rejected
from ledger.events.base import (
    NOTHING_DECIDED, Body, DirtyRows, EventType, Serials, Verdict, is_admin, unauthorized,
)
from ledger.field_checks import fail, key_id, key_id_of, key_roles, key_roles_v2, public_key, text
from ledger.state import ActivityIndex, ActivityRecord, Key, State

# The roles only a root key grants or revokes (validator and expert exist in format 2 only).
ROOT_ONLY_ROLES = frozenset({"admin", "validator", "expert"})


class KeyRegister(EventType):
    name = "key.register"
    body_fields = {"key_id": key_id, "public_key": public_key, "roles": key_roles, "label": text}
    body_fields_v2 = {**body_fields, "roles": key_roles_v2}

    def check_across_fields(self, body: Body) -> None:
        derived = key_id_of(base64.b64decode(body["public_key"]))
        if derived != body["key_id"]:
            fail("key_id", f"must be the key id of public_key ({derived})")

    def authorize(self, state: State, body: Body, key: Key) -> None:
        granted = set(body["roles"])
        if not (key.is_root or (is_admin(key) and granted <= {"platform", "ets"})):
            raise unauthorized(key, "a root key, or an admin key granting only platform or ets roles")

    def check_new_id(self, state: State, body: Body) -> None:
        # Root keys come from the trust file, not the log: a key id is new among both.
        if body["key_id"] in state.keys or body["key_id"] in state.root_keys:
            raise Rejected("DUPLICATE_ID", f"key {body['key_id']} is already registered")

    def apply(self, state: State, seq: int, body: Body, effects: Serials | None, activities: ActivityIndex,
              records: Sequence[ActivityRecord] | None) -> None:
        state.keys[body["key_id"]] = Key(body["key_id"], base64.b64decode(body["public_key"]), frozenset(body["roles"]),
                                         body["label"], seq)

    def touched(self, body: Body, dirty: DirtyRows) -> None:
        dirty["keys"].add(body["key_id"])


class KeyRevoke(EventType):
    name = "key.revoke"
    body_fields = {"key_id": key_id, "reason": text}

    def authorize(self, state: State, body: Body, key: Key) -> None:
        target = state.keys.get(body["key_id"])
        if not (key.is_root or is_admin(key)):
            raise unauthorized(key, "a root or admin key")
        protected = ROOT_ONLY_ROLES & target.roles if target is not None else frozenset()
        if not key.is_root and protected:
            raise unauthorized(key, f"a root key to revoke a key with the {min(protected)} role")

    def judge(self, state: State, body: Body, activities: ActivityIndex, records: Sequence[Any] | None,
              effects: Serials | None) -> Verdict:
        target = state.keys.get(body["key_id"])
        if target is None or target.revoked:
            raise Rejected("UNKNOWN_REF", f"key {body['key_id']} is not a registered active key")
        return NOTHING_DECIDED

    def apply(self, state: State, seq: int, body: Body, effects: Serials | None, activities: ActivityIndex,
              records: Sequence[ActivityRecord] | None) -> None:
        state.keys[body["key_id"]].revoked = True

    def touched(self, body: Body, dirty: DirtyRows) -> None:
        dirty["keys"].add(body["key_id"])
