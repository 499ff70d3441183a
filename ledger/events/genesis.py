"""registry.genesis and registry.rules: the scheme's origin and the rules in force, root-signed."""

from __future__ import annotations

from typing import Any, Sequence

from ledger.errors import Rejected
from ledger.events.base import Body, EventType, Serials, require_root
from ledger.field_checks import format_2, origin, rules, rules_v2, text
from ledger.state import ActivityIndex, ActivityRecord, Key, State


class Genesis(EventType):
    name = "registry.genesis"
    body_fields = {"origin": origin, "name": text, "rules": rules}
    body_fields_v2 = {"origin": origin, "name": text, "rules": rules_v2, "format": format_2}

    def body_format(self, log_format: int, body: Any) -> int:
        # The genesis fixes the log's format (spec "Formats"): with `format` its body is format 2's.
        return 2 if isinstance(body, dict) and "format" in body else 1

    def authorize(self, state: State, body: Body, key: Key) -> None:
        if state.size != 0:
            raise Rejected("UNAUTHORIZED", "registry.genesis is allowed at seq 0 only")
        require_root(key)

    def apply(self, state: State, seq: int, body: Body, effects: Serials | None, activities: ActivityIndex,
              records: Sequence[ActivityRecord] | None) -> None:
        state.origin, state.rules = body["origin"], body["rules"]
        state.log_format = self.body_format(1, body)


class RulesUpdate(EventType):
    name = "registry.rules"
    body_fields = {"rules": rules}
    body_fields_v2 = {"rules": rules_v2}

    def authorize(self, state: State, body: Body, key: Key) -> None:
        require_root(key)

    def apply(self, state: State, seq: int, body: Body, effects: Serials | None, activities: ActivityIndex,
              records: Sequence[ActivityRecord] | None) -> None:
        state.rules = body["rules"]
