"""The carbon market's dry run: would an offset.surrender pass every rule of spec section 6?

Nothing here is a rule. The verdict is `rules.judge` run on the surrender the entity would
submit, signed by a stand-in ets key that can never be in the log; the reasons per retirement
come from the same rule functions the registry runs. Nothing is written and the State is not
changed: the amount mode adds its would-be retirement through an overlay.
"""

from __future__ import annotations

import collections
import copy
import secrets
from typing import Any

from ledger.errors import Rejected
from ledger.events.claims import offset_cap_g, offset_refusal, retirements_for_use
from ledger.events.credits import ISSUANCES, retirement_serials, take
from ledger.events.reviews import counted_reviews
from ledger.field_checks import fields, identifier, integer, list_of, year
from ledger.rules import judge
from ledger.schema import check_body
from ledger.state import MemoryActivityIndex, Key, Retirement, ReviewTarget, State

# Not 16 hex characters, so it can be no registered key, root key or request signer.
_DRY_RUN_KEY = Key("eligibility-dry-run", bytes(32), frozenset({"ets"}), "offset-eligibility dry run")
MAX_RETIREMENTS = 1000

_BY_RETIREMENTS = fields({"entity": identifier, "compliance_year": year, "allocation_g": integer(0),
                          "retirements": list_of(identifier, min_items=1, max_items=MAX_RETIREMENTS)})
_AMOUNT_FIELDS = {"entity": identifier, "compliance_year": year, "allocation_g": integer(0), "amount_g": integer(1)}
_BY_AMOUNT = fields(_AMOUNT_FIELDS)
# Format 2: the would-be retirement may choose the issuances it takes from, as a retirement does.
_BY_AMOUNT_CHOSEN = fields({**_AMOUNT_FIELDS, "issuances": ISSUANCES})


# -- the rule functions this module reuses (never rewritten here), by the question asked --------

def retirement_refusal(state: State, retirement_id: str, entity: str, compliance_year: int) -> Rejected | None:
    """Why one retirement may not be surrendered by `entity` for `compliance_year`, or None.

    UNKNOWN_REF, DOUBLE_CLAIM and CLAIM_MISMATCH from the rules' own check of a surrender's
    retirements; OFFSET_INELIGIBLE from `offset_refusal`.
    """
    try:
        [retirement] = retirements_for_use(state, {"retirements": [retirement_id]}, "ets_offset", entity)
    except Rejected as rejection:
        return rejection
    refusal = offset_refusal(state, retirement.serials, compliance_year)
    return None if refusal is None else Rejected("OFFSET_INELIGIBLE", f"retirement {retirement_id}: {refusal}")


def serials_to_retire(state: State, retirement_id: str, entity: str, amount_g: int,
                      issuances: list[str] | None) -> list[list[int]]:
    """The serials an ets_offset retirement of amount_g by `entity` would take, by the retirement's
    own rules: the lowest active ones (format 2: of the chosen issuances, from an account not held,
    offset eligible but for vintage), or the code that would refuse it."""
    return retirement_serials(state, _retirement_body(retirement_id, entity, amount_g, issuances), None)


def _retirement_body(retirement_id: str, entity: str, amount_g: int, issuances: list[str] | None) -> dict[str, Any]:
    return {"retirement_id": retirement_id, "account": entity, "amount_g": amount_g, "purpose": "ets_offset",
            "beneficiary": entity, "issuances": issuances}


# -- the check -----------------------------------------------------------------------------------

def check_request(request: Any, log_format: int) -> dict[str, Any]:
    """A request with either retirements (ids) or amount_g (held, not yet retired; in a format-2 log
    optionally the issuances to take it from); SCHEMA otherwise."""
    if isinstance(request, dict) and "amount_g" in request and "retirements" not in request:
        (_BY_AMOUNT_CHOSEN if log_format == 2 and "issuances" in request else _BY_AMOUNT)("", request)
    else:
        _BY_RETIREMENTS("", request)
    return request


def offset_eligibility(state: State, request: dict[str, Any]) -> dict[str, Any]:
    """Would a surrender pass now? With the remaining cap, whether the entity is held (format 2: it
    may not retire, but may surrender what it retired before), and a reason for each refusal."""
    check_request(request, state.log_format or 1)
    entity, compliance_year, allocation_g = request["entity"], request["compliance_year"], request["allocation_g"]
    surrendered_g = state.offsets_g.get((entity, compliance_year), 0)
    cap_g = offset_cap_g(state, allocation_g)
    refusals: list[dict[str, Any]] = []
    per_retirement: list[dict[str, Any]] = []
    judged_state = state
    judged_serials: list[list[int]] = []  # the serials judged: the retirements' or the would-be one's
    if "retirements" in request:
        retirement_ids = list(request["retirements"])
        for retirement_id in retirement_ids:
            known = state.retirements.get(retirement_id)
            refusal = retirement_refusal(state, retirement_id, entity, compliance_year)
            per_retirement.append({"retirement_id": retirement_id, "amount_g": None if known is None else known.amount_g,
                                   "eligible": refusal is None})
            if refusal is not None:
                refusals.append(_refusal(refusal, retirement_id))
        requested_g = sum(state.retirements[r].amount_g for r in set(retirement_ids) if r in state.retirements)
        judged_serials = [r for i in dict.fromkeys(retirement_ids) if i in state.retirements
                          for r in state.retirements[i].serials]
    else:
        requested_g = request["amount_g"]
        retirement_ids = [f"dry-run-{secrets.token_hex(8)}"]
        if entity in state.accounts:
            try:
                serials = serials_to_retire(state, retirement_ids[0], entity, requested_g, request.get("issuances"))
            except Rejected as rejection:
                refusals.append(_refusal(rejection, None))
                if rejection.code == "OFFSET_INELIGIBLE":  # refused for what its serials are: show their versions
                    judged_serials = take(state, state.accounts[entity], _retirement_body(
                        retirement_ids[0], entity, requested_g, request.get("issuances")), None, held_blocks=True)
                retirement_ids = []  # nothing to judge a surrender of: the retirement's refusal is the answer
            else:
                would_retire = Retirement(retirement_ids[0], state.size, entity, requested_g, "ets_offset", entity, serials)
                judged_serials = serials
                judged_state = copy.copy(state)
                judged_state.retirements = collections.ChainMap({would_retire.retirement_id: would_retire},
                                                                state.retirements)  # type: ignore[assignment]
                refusal = offset_refusal(judged_state, would_retire.serials, compliance_year)
                if refusal is not None:
                    refusals.append(_refusal(Rejected("OFFSET_INELIGIBLE", refusal), None))
    verdict = _judge_surrender(judged_state, entity, compliance_year, allocation_g, retirement_ids) if retirement_ids else None
    if verdict is not None and not any((r["code"], r["message"]) == (verdict.code, verdict.message) for r in refusals):
        refusals.append(_refusal(verdict, None))
    answer = {"eligible": verdict is None and not refusals, "entity": entity, "held": entity in state.open_cases,
              "compliance_year": compliance_year,
              "allocation_g": allocation_g, "offset_cap_ppm": state.rules["offset_cap_ppm"] if state.rules else 0,
              "cap_g": cap_g, "surrendered_g": surrendered_g, "remaining_cap_g": max(cap_g - surrendered_g, 0),
              "requested_g": requested_g, "retirements": per_retirement, "refusals": refusals}
    if state.log_format == 2:
        answer["methodology_versions"] = versions_behind(state, judged_serials)
    return answer


def versions_behind(state: State, serials: list[list[int]]) -> list[dict[str, Any]]:
    """Format 2: the methodology versions behind these serials (their issuances' versions), each
    with its own offset_eligible and the status of its eligibility reviews now (spec section 6)."""
    versions = sorted({(issuance.methodology_id, version) for start, end in serials
                       for issuance in state.issuances_over(start, end) for version in issuance.methodology_versions})
    quorum = state.rules["review_quorum"]["eligibility"] if state.rules else 0
    answers = []
    for methodology_id, version in versions:
        count = counted_reviews(state, ReviewTarget("methodology", methodology_id, version), "expert")
        answers.append({"methodology_id": methodology_id, "version": version,
                        "offset_eligible": state.methodologies[methodology_id].versions[version]["offset_eligible"],
                        "eligibility_reviews": {"approved": count.approving_keys, "quorum": quorum,
                                                "rejected": count.rejected}})
    return answers


def _judge_surrender(state: State, entity: str, compliance_year: int, allocation_g: int,
                     retirement_ids: list[str]) -> Rejected | None:
    body = {"surrender_id": f"dry-run-{secrets.token_hex(8)}", "entity": entity, "compliance_year": compliance_year,
            "allocation_g": allocation_g, "retirements": retirement_ids, "request_id": "offset-eligibility"}
    try:
        check_body("offset.surrender", body, state.log_format or 1)
        judge(state, "offset.surrender", body, _DRY_RUN_KEY, activities=MemoryActivityIndex())
    except Rejected as rejection:
        return rejection
    return None


def _refusal(rejection: Rejected, retirement_id: str | None) -> dict[str, Any]:
    return {"code": rejection.code, "message": rejection.message, "retirement_id": retirement_id}
