"""registry.genesis and registry.rules: the scheme's origin and the rules in force, root-signed."""

from __future__ import annotations

from typing import Sequence

from ledger.errors import Rejected
from ledger.events.base import Body, EventType, Serials, require_root
from ledger.field_checks import origin, rules, text
from ledger.state import ActivityIndex, ActivityRecord, Key, State


class Genesis(EventType):
    name = "registry.genesis"
    body_fields = {"origin": origin, "name": text, "rules": rules}

    def authorize(self, state: State, body: Body, key: Key) -> None:
        if state.size != 0:
            raise Rejected("UNAUTHORIZED", "registry.genesis is allowed at seq 0 only")
        require_root(key)

    def apply(self, state: State, seq: int, body: Body, effects: Serials | None, activities: ActivityIndex,
              records: Sequence[ActivityRecord] | None) -> None:
        state.origin, state.rules = body["origin"], body["rules"]


class RulesUpdate(EventType):
    name = "registry.rules"
    body_fields = {"rules": rules}

    def authorize(self, state: State, body: Body, key: Key) -> None:
        require_root(key)

    def apply(self, state: State, seq: int, body: Body, effects: Serials | None, activities: ActivityIndex,
              records: Sequence[ActivityRecord] | None) -> None:
        state.rules = body["rules"]
