"""methodology.register and methodology.eligibility: quantification methods, versioned, and
whether the carbon market admits their reductions as offsets."""

from __future__ import annotations

from typing import Any, Sequence

from ledger.definitions import definition
from ledger.errors import Rejected
from ledger.events.base import (
    NOTHING_DECIDED, Body, DirtyRows, EventType, Serials, Verdict, registered_methodology, registered_version,
    require_admin,
)
from ledger.events.reviews import require_eligibility_reviews
from ledger.field_checks import SECTORS, boolean, identifier, integer, json_object, one_of, text
from ledger.state import ActivityIndex, ActivityRecord, Key, Methodology, State


def illustrative(params: Any) -> bool:
    """A version is illustrative when one of its factors is (spec section 7.1): never offset eligible."""
    factors = params.get("factors")
    return isinstance(factors, dict) and any(isinstance(f, dict) and f.get("illustrative") is True
                                             for f in factors.values())


def may_turn_on(state: State, methodology_id: str, version: int, params: Any) -> None:
    """Format 2, an event setting a version's offset_eligible true (even if it already is): its
    eligibility reviews (UNREVIEWED), then no illustrative factor (OFFSET_INELIGIBLE)."""
    require_eligibility_reviews(state, methodology_id, version)
    if illustrative(params):
        raise Rejected("OFFSET_INELIGIBLE", f"methodology {methodology_id} version {version} has an illustrative "
                                            f"factor: never offset eligible")


class MethodologyRegister(EventType):
    name = "methodology.register"
    body_fields = {"methodology_id": identifier, "version": integer(1, 1_000_000), "title": text,
                   "sector": one_of(SECTORS), "params": json_object, "offset_eligible": boolean}
    # format 2: params is a section 7.1 definition, which every record of the version is quantified by
    body_fields_v2 = {**body_fields, "params": definition}

    def authorize(self, state: State, body: Body, key: Key) -> None:
        require_admin(key)

    def check_new_id(self, state: State, body: Body) -> None:
        # The id is the pair (methodology_id, version), and versions come one after another.
        existing = state.methodologies.get(body["methodology_id"])
        latest = existing.latest_version if existing else 0
        if body["version"] <= latest:
            raise Rejected("DUPLICATE_ID", f"methodology {body['methodology_id']} version {body['version']} exists (latest {latest})")
        if body["version"] != latest + 1:
            raise Rejected("UNKNOWN_REF", f"methodology {body['methodology_id']} version {body['version']} skips: the next version is {latest + 1}")

    def judge(self, state: State, body: Body, activities: ActivityIndex, records: Sequence[Any] | None,
              effects: Serials | None) -> Verdict:
        if state.log_format == 2 and body["offset_eligible"]:
            may_turn_on(state, body["methodology_id"], body["version"], body["params"])
        return NOTHING_DECIDED

    def apply(self, state: State, seq: int, body: Body, effects: Serials | None, activities: ActivityIndex,
              records: Sequence[ActivityRecord] | None) -> None:
        methodology = state.methodologies.setdefault(body["methodology_id"], Methodology(body["methodology_id"], {}, False))
        methodology.versions[body["version"]] = {k: body[k] for k in ("title", "sector", "params", "offset_eligible")} | {"seq": seq}
        methodology.offset_eligible = body["offset_eligible"]

    def touched(self, body: Body, dirty: DirtyRows) -> None:
        dirty["methodologies"].add(body["methodology_id"])


class MethodologyEligibility(EventType):
    name = "methodology.eligibility"
    body_fields = {"methodology_id": identifier, "offset_eligible": boolean}
    # format 2: eligibility is per version (a version above any registered one is UNKNOWN_REF, as the spec says)
    body_fields_v2 = {"methodology_id": identifier, "version": integer(1), "offset_eligible": boolean}

    def authorize(self, state: State, body: Body, key: Key) -> None:
        require_admin(key)

    def judge(self, state: State, body: Body, activities: ActivityIndex, records: Sequence[Any] | None,
              effects: Serials | None) -> Verdict:
        if state.log_format != 2:
            registered_methodology(state, body["methodology_id"])
            return NOTHING_DECIDED
        version = registered_version(state, body["methodology_id"], body["version"])
        if body["offset_eligible"]:
            may_turn_on(state, body["methodology_id"], body["version"], version["params"])
        return NOTHING_DECIDED

    def apply(self, state: State, seq: int, body: Body, effects: Serials | None, activities: ActivityIndex,
              records: Sequence[ActivityRecord] | None) -> None:
        methodology = state.methodologies[body["methodology_id"]]
        if state.log_format != 2:
            methodology.offset_eligible = body["offset_eligible"]
            return
        methodology.versions[body["version"]]["offset_eligible"] = body["offset_eligible"]
        # The methodology's own flag (what listings show) follows its latest version in format 2.
        if body["version"] == methodology.latest_version:
            methodology.offset_eligible = body["offset_eligible"]

    def touched(self, body: Body, dirty: DirtyRows) -> None:
        dirty["methodologies"].add(body["methodology_id"])
