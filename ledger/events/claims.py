"""offset.surrender and neutrality.claim: retirements used once, by the carbon market as offsets
against an allocation or by a claimant against a carbon footprint."""

from __future__ import annotations

from typing import Any, Sequence

from ledger.errors import Rejected
from ledger.events.base import (
    NOTHING_DECIDED, Body, DirtyRows, EventType, NewId, Serials, Verdict, check_period, controller_of, controls, existing_account,
    is_admin, unauthorized,
)
from ledger.field_checks import SUBJECT_KINDS, date, fields, identifier, integer, list_of, one_of, text, year
from ledger.state import ActivityIndex, ActivityRecord, Claim, Key, Retirement, State, Surrender


def retirements_for_use(state: State, body: Body, purpose: str, account_id: str) -> list[Retirement]:
    """The retirements a surrender or claim lists, each existing, unused, listed once, of this
    purpose and retired from this account (UNKNOWN_REF, DOUBLE_CLAIM, CLAIM_MISMATCH, in that order)."""
    retirements = []
    for retirement_id in body["retirements"]:
        retirement = state.retirements.get(retirement_id)
        if retirement is None:
            raise Rejected("UNKNOWN_REF", f"retirement {retirement_id} does not exist")
        retirements.append(retirement)
    if len(set(body["retirements"])) != len(body["retirements"]):
        raise Rejected("DOUBLE_CLAIM", "the same retirement is listed twice")
    for retirement in retirements:
        if retirement.used_by is not None:
            raise Rejected("DOUBLE_CLAIM", f"retirement {retirement.retirement_id} was already used by {retirement.used_by}")
    for retirement in retirements:
        if retirement.purpose != purpose:
            raise Rejected("CLAIM_MISMATCH", f"retirement {retirement.retirement_id} has purpose {retirement.purpose}, not {purpose}")
        if retirement.account != account_id:
            raise Rejected("CLAIM_MISMATCH", f"retirement {retirement.retirement_id} was retired from {retirement.account}, not {account_id}")
    return retirements


def offset_refusal(state: State, serials: Serials, compliance_year: int | None) -> str | None:
    """Why the rules in force exclude these serials as offsets (serial eligibility, spec section 6),
    or None: methodology, vintage and region, through the issuance that holds each serial. With
    compliance_year None (format 2: an ets_offset retirement) vintage waits for the surrender."""
    rules = state.rules
    if rules is None:
        return "no rules are in force (no accepted genesis)"
    for start, end in serials:
        for issuance in state.issuances_over(start, end):
            if not state.offset_eligible(issuance.methodology_id, issuance.methodology_versions):
                return f"methodology {issuance.methodology_id} (issuance {issuance.issuance_id}) is not offset-eligible"
            if compliance_year is not None and not (issuance.vintage <= compliance_year
                                                    and compliance_year - issuance.vintage <= rules["offset_vintage_years"]):
                return (f"vintage {issuance.vintage} (issuance {issuance.issuance_id}) is outside the {rules['offset_vintage_years']}-year "
                        f"window for compliance year {compliance_year}")
            if not any(issuance.region.startswith(prefix) for prefix in rules["offset_regions"]):
                return f"region {issuance.region} (issuance {issuance.issuance_id}) is not in the offset regions {rules['offset_regions']}"
    return None


def offset_cap_g(state: State, allocation_g: int) -> int:
    assert state.rules is not None
    return allocation_g * state.rules["offset_cap_ppm"] // 1_000_000


def _mark_used(state: State, retirement_ids: Sequence[str], used_by: str) -> None:
    for retirement_id in retirement_ids:
        state.retirements[retirement_id].used_by = used_by


class OffsetSurrender(EventType):
    name = "offset.surrender"
    body_fields = {"surrender_id": identifier, "entity": identifier, "compliance_year": year,
                   "allocation_g": integer(0), "retirements": list_of(identifier, min_items=1)}
    new_id = NewId("surrender_id", "surrenders", "surrender")

    def authorize(self, state: State, body: Body, key: Key) -> None:
        if key.is_root or "ets" not in key.roles:
            raise unauthorized(key, "a key with the ets role (the carbon market)")

    def judge(self, state: State, body: Body, activities: ActivityIndex, records: Sequence[Any] | None,
              effects: Serials | None) -> Verdict:
        existing_account(state, body["entity"], "entity", "compliance_entity")
        retirements = retirements_for_use(state, body, "ets_offset", body["entity"])
        for retirement in retirements:
            refusal = offset_refusal(state, retirement.serials, body["compliance_year"])
            if refusal:
                raise Rejected("OFFSET_INELIGIBLE", f"retirement {retirement.retirement_id}: {refusal}")
        amount_g = sum(r.amount_g for r in retirements)
        used_g = state.offsets_g.get((body["entity"], body["compliance_year"]), 0)
        cap_g = offset_cap_g(state, body["allocation_g"])
        if used_g + amount_g > cap_g:
            raise Rejected("OFFSET_CAP", f"{body['entity']} would offset {used_g + amount_g} g for {body['compliance_year']}, "
                                         f"above its cap of {cap_g} g ({state.rules['offset_cap_ppm']} ppm of {body['allocation_g']} g)")
        return NOTHING_DECIDED

    def apply(self, state: State, seq: int, body: Body, effects: Serials | None, activities: ActivityIndex,
              records: Sequence[ActivityRecord] | None) -> None:
        amount_g = sum(state.retirements[r].amount_g for r in body["retirements"])
        _mark_used(state, body["retirements"], body["surrender_id"])
        key = (body["entity"], body["compliance_year"])
        state.offsets_g[key] = state.offsets_g.get(key, 0) + amount_g
        state.surrenders[body["surrender_id"]] = Surrender(body["surrender_id"], seq, body["entity"], body["compliance_year"],
                                                           body["allocation_g"], amount_g, list(body["retirements"]))

    def touched(self, body: Body, dirty: DirtyRows) -> None:
        dirty["surrenders"].add(body["surrender_id"])
        dirty["retirements"].update(body["retirements"])


class NeutralityClaim(EventType):
    name = "neutrality.claim"
    body_fields = {"claim_id": identifier, "claimant": identifier,
                   "subject": fields({"kind": one_of(SUBJECT_KINDS), "name": text}),
                   "period_start": date, "period_end": date, "footprint_g": integer(1),
                   "retirements": list_of(identifier, min_items=1)}
    new_id = NewId("claim_id", "claims", "claim")

    def check_across_fields(self, body: Body) -> None:
        check_period(body)

    def authorize(self, state: State, body: Body, key: Key) -> None:
        if not (is_admin(key) or controls(state, key, body["claimant"])):
            raise unauthorized(key, f"an admin key or {controller_of(state, body['claimant'])}")

    def judge(self, state: State, body: Body, activities: ActivityIndex, records: Sequence[Any] | None,
              effects: Serials | None) -> Verdict:
        existing_account(state, body["claimant"], "claimant")
        retirements = retirements_for_use(state, body, "carbon_neutrality", body["claimant"])
        retired_g = sum(r.amount_g for r in retirements)
        if retired_g < body["footprint_g"]:
            raise Rejected("NEUTRALITY_SHORT", f"retirements add up to {retired_g} g, short of the footprint {body['footprint_g']} g")
        return NOTHING_DECIDED

    def apply(self, state: State, seq: int, body: Body, effects: Serials | None, activities: ActivityIndex,
              records: Sequence[ActivityRecord] | None) -> None:
        retired_g = sum(state.retirements[r].amount_g for r in body["retirements"])
        _mark_used(state, body["retirements"], body["claim_id"])
        state.claims[body["claim_id"]] = Claim(body["claim_id"], seq, body["claimant"], body["subject"]["kind"],
                                               body["subject"]["name"], body["period_start"], body["period_end"],
                                               body["footprint_g"], retired_g, list(body["retirements"]))

    def touched(self, body: Body, dirty: DirtyRows) -> None:
        dirty["claims"].add(body["claim_id"])
        dirty["retirements"].update(body["retirements"])
