"""issuance, transfer, retirement and cancellation: serials (one per gram) created and moved.

These four carry `effects`: the serials they create or take, chosen by the registry when it
judges and checked against the leaf when a log is replayed.
"""

from __future__ import annotations

from typing import Any, Sequence

from ledger.errors import Rejected
from ledger.events.base import (
    Body, DirtyRows, EventType, NewId, Serials, Verdict, controller_of, controls, existing_account, registered_methodology,
    require_admin, unauthorized,
)
from ledger.events.reviews import require_issuance_reviews
from ledger.field_checks import (
    PURPOSES, amount_g, fail, hex64, identifier, list_of, nullable, one_of, region, text, year,
)
from ledger.events.claims import offset_refusal
from ledger.serials import Range, SerialSet, is_merged, total
from ledger.state import Account, ActivityIndex, ActivityRecord, Issuance, Key, Retirement, State

# Format 2: the issuances a transfer, retirement or cancellation takes its serials from (null: any).
ISSUANCES = nullable(list_of(identifier, min_items=1, unique=True))


def spend(account: Account, amount_g: int, effects: Serials | None, windows: Sequence[Range] | None = None, *,
          exactly_lowest: bool = False) -> Serials:
    """The serials a transfer, retirement or cancellation takes: the lowest active ones (of those
    inside the windows, when given), or checks given ones; with exactly_lowest (format 2) given
    ones must be those lowest ones too (NOT_HELD)."""
    among = "" if windows is None else " of the chosen issuances"
    if effects is None:
        chosen = account.active.lowest(amount_g, windows)
        if chosen is None:
            raise Rejected("NOT_HELD", f"account {account.account_id} holds {account.active.size_g} g active, "
                                       f"not {amount_g} g{among}")
        return chosen
    if not is_merged(effects):
        raise Rejected("NOT_HELD", "effects.serials are not sorted, disjoint and merged")
    if total(effects) != amount_g:
        raise Rejected("NOT_HELD", f"effects.serials add up to {total(effects)} g, not amount_g {amount_g}")
    if not account.active.covers_all(effects):
        raise Rejected("NOT_HELD", f"account {account.account_id} does not hold all of these serials as active")
    if exactly_lowest and account.active.lowest(amount_g, windows) != effects:
        raise Rejected("NOT_HELD", f"effects.serials are not the {amount_g} lowest serials{among} that {account.account_id} holds")
    return effects


# -- format 2: chosen issuances, holds, offsets judged at the retirement (spec section 6) ----------

def chosen_windows(state: State, issuances: Sequence[str] | None) -> list[Range] | None:
    """The serial ranges of the issuances a spend chooses, sorted (None: it chose none); UNKNOWN_REF
    for an id that is no accepted issuance."""
    if issuances is None:
        return None
    windows = []
    for issuance_id in issuances:
        issuance = state.issuances.get(issuance_id)
        if issuance is None:
            raise Rejected("UNKNOWN_REF", f"issuance {issuance_id} does not exist")
        windows.append((issuance.start, issuance.end))
    return sorted(windows)


def take(state: State, account: Account, body: Body, effects: Serials | None, *, held_blocks: bool) -> Serials:
    """The serials a transfer, retirement or cancellation takes from `account`, in the order of the
    spec's table: in format 2 UNKNOWN_REF (issuances), FROZEN (if held_blocks: not for a
    cancellation), then NOT_HELD, the serials being exactly the lowest of the chosen issuances."""
    if state.log_format != 2:
        return spend(account, body["amount_g"], effects)
    windows = chosen_windows(state, body["issuances"])
    cases = state.open_cases.get(account.account_id)
    if held_blocks and cases:
        raise Rejected("FROZEN", f"account {account.account_id} is held by case(s) {', '.join(sorted(cases))}: "
                                 f"nothing leaves it but by an admin's cancellation")
    return spend(account, body["amount_g"], effects, windows, exactly_lowest=True)


def retirement_serials(state: State, body: Body, effects: Serials | None) -> Serials:
    """The serials a retirement takes; in format 2 an ets_offset one's must pass the methodology and
    region parts of serial eligibility now (OFFSET_INELIGIBLE; vintage and cap wait for the surrender)."""
    serials = take(state, state.accounts[body["account"]], body, effects, held_blocks=True)
    if state.log_format == 2 and body["purpose"] == "ets_offset":
        refusal = offset_refusal(state, serials, None)
        if refusal is not None:
            raise Rejected("OFFSET_INELIGIBLE", f"retirement {body['retirement_id']}: {refusal}")
    return serials


def _move(effects: Serials, source: SerialSet, destination: SerialSet) -> None:
    for start, end in effects:
        source.remove(start, end)
    for start, end in effects:
        destination.add(start, end)


class IssuanceEvent(EventType):
    name = "issuance"
    body_fields = {"issuance_id": identifier, "account": identifier, "methodology_id": identifier, "vintage": year,
                   "region": region, "amount_g": amount_g, "batches": list_of(identifier, min_items=0),
                   "evidence": nullable(hex64)}
    new_id = NewId("issuance_id", "issuances", "issuance")
    has_effects = True

    def authorize(self, state: State, body: Body, key: Key) -> None:
        require_admin(key)

    def judge(self, state: State, body: Body, activities: ActivityIndex, records: Sequence[Any] | None,
              effects: Serials | None) -> Verdict:
        recipient = existing_account(state, body["account"], "recipient")
        registered_methodology(state, body["methodology_id"])
        batches = []
        for batch_id in body["batches"]:
            batch = state.batches.get(batch_id)
            if batch is None:
                raise Rejected("UNKNOWN_REF", f"activity batch {batch_id} does not exist")
            batches.append(batch)
        expected = [[state.next_serial, state.next_serial + body["amount_g"]]]
        if effects is not None and effects != expected:
            raise Rejected("SERIALS", f"issuance serials must be {expected}, the next contiguous range")
        if body["batches"] and body["evidence"] is not None:
            raise Rejected("ISSUANCE_AMOUNT", "an issuance from batches carries evidence null")
        if not body["batches"] and body["evidence"] is None:
            raise Rejected("ISSUANCE_AMOUNT", "an issuance needs batches, or evidence: the SHA-256 of a verification report")
        vintage = str(body["vintage"])
        for batch in batches:
            if batch.methodology_id != body["methodology_id"]:
                raise Rejected("ISSUANCE_AMOUNT", f"batch {batch.batch_id} is of methodology {batch.methodology_id}")
            if not (batch.period_start[:4] == vintage and batch.period_end[:4] == vintage):
                raise Rejected("ISSUANCE_AMOUNT", f"batch {batch.batch_id} period {batch.period_start}..{batch.period_end} is not inside vintage {vintage}")
            batch_region = state.accounts[batch.platform].region
            if batch_region != body["region"]:
                raise Rejected("ISSUANCE_AMOUNT", f"batch {batch.batch_id} comes from region {batch_region}, not {body['region']}")
        if batches and sum(b.total_g for b in batches) != body["amount_g"]:
            raise Rejected("ISSUANCE_AMOUNT", f"amount_g {body['amount_g']} differs from the batches' total {sum(b.total_g for b in batches)} g")
        if state.log_format == 2:
            require_issuance_reviews(state, body, batches, recipient)
        if len(set(body["batches"])) != len(body["batches"]):
            raise Rejected("DOUBLE_ISSUANCE", "the same batch is listed twice")
        for batch in batches:
            if batch.issuance_id is not None:
                raise Rejected("DOUBLE_ISSUANCE", f"batch {batch.batch_id} already backs issuance {batch.issuance_id}")
        backed = state.issued_evidence.get(body["evidence"]) if state.log_format == 2 else None
        if backed is not None:
            raise Rejected("DOUBLE_ISSUANCE", f"evidence {body['evidence']} already backs issuance {backed}")
        return Verdict(expected, None)

    def apply(self, state: State, seq: int, body: Body, effects: Serials | None, activities: ActivityIndex,
              records: Sequence[ActivityRecord] | None) -> None:
        [[start, end]] = effects
        if body["batches"]:
            versions = sorted({state.batches[batch_id].methodology_version for batch_id in body["batches"]})
        else:
            versions = [state.methodologies[body["methodology_id"]].latest_version]
        state.add_issuance(Issuance(body["issuance_id"], seq, body["account"], body["methodology_id"], body["vintage"],
                                    body["region"], body["amount_g"], start, end, versions, body["evidence"]))
        state.accounts[body["account"]].active.add(start, end)
        state.active_g += end - start
        for batch_id in body["batches"]:
            state.batches[batch_id].issuance_id = body["issuance_id"]

    def touched(self, body: Body, dirty: DirtyRows) -> None:
        dirty["issuances"].add(body["issuance_id"])
        dirty["accounts"].add(body["account"])
        dirty["batches"].update(body["batches"])


class Transfer(EventType):
    name = "transfer"
    body_fields = {"transfer_id": identifier, "from": identifier, "to": identifier, "amount_g": amount_g}
    body_fields_v2 = {**body_fields, "issuances": ISSUANCES}
    new_id = NewId("transfer_id", "transfers", "transfer")
    has_effects = True

    def check_across_fields(self, body: Body) -> None:
        if body["from"] == body["to"]:
            fail("to", "must differ from `from`")

    def authorize(self, state: State, body: Body, key: Key) -> None:
        if not controls(state, key, body["from"]):
            raise unauthorized(key, controller_of(state, body["from"]))

    def judge(self, state: State, body: Body, activities: ActivityIndex, records: Sequence[Any] | None,
              effects: Serials | None) -> Verdict:
        source = state.accounts[body["from"]]  # authorization proved it exists
        existing_account(state, body["to"], "recipient")
        return Verdict(take(state, source, body, effects, held_blocks=True), None)

    def apply(self, state: State, seq: int, body: Body, effects: Serials | None, activities: ActivityIndex,
              records: Sequence[ActivityRecord] | None) -> None:
        # The grams stay active: the running totals do not move.
        _move(effects, state.accounts[body["from"]].active, state.accounts[body["to"]].active)
        state.transfers.add(body["transfer_id"])

    def touched(self, body: Body, dirty: DirtyRows) -> None:
        dirty["accounts"].update((body["from"], body["to"]))


class RetirementEvent(EventType):
    name = "retirement"
    body_fields = {"retirement_id": identifier, "account": identifier, "amount_g": amount_g,
                   "purpose": one_of(PURPOSES), "beneficiary": text}
    body_fields_v2 = {**body_fields, "issuances": ISSUANCES}
    new_id = NewId("retirement_id", "retirements", "retirement")
    has_effects = True

    def authorize(self, state: State, body: Body, key: Key) -> None:
        if not controls(state, key, body["account"]):
            raise unauthorized(key, controller_of(state, body["account"]))

    def judge(self, state: State, body: Body, activities: ActivityIndex, records: Sequence[Any] | None,
              effects: Serials | None) -> Verdict:
        return Verdict(retirement_serials(state, body, effects), None)

    def apply(self, state: State, seq: int, body: Body, effects: Serials | None, activities: ActivityIndex,
              records: Sequence[ActivityRecord] | None) -> None:
        holder = state.accounts[body["account"]]
        _move(effects, holder.active, holder.retired)
        state.retirements[body["retirement_id"]] = Retirement(body["retirement_id"], seq, body["account"], body["amount_g"],
                                                              body["purpose"], body["beneficiary"], effects)
        moved_g = total(effects)
        state.active_g -= moved_g
        state.retired_g += moved_g

    def touched(self, body: Body, dirty: DirtyRows) -> None:
        dirty["accounts"].add(body["account"])
        dirty["retirements"].add(body["retirement_id"])


class Cancellation(EventType):
    name = "cancellation"
    body_fields = {"cancellation_id": identifier, "account": identifier, "amount_g": amount_g, "reason": text}
    body_fields_v2 = {**body_fields, "issuances": ISSUANCES}
    new_id = NewId("cancellation_id", "cancellations", "cancellation")
    has_effects = True

    def authorize(self, state: State, body: Body, key: Key) -> None:
        require_admin(key)

    def judge(self, state: State, body: Body, activities: ActivityIndex, records: Sequence[Any] | None,
              effects: Serials | None) -> Verdict:
        # An admin's cancellation applies to a held account too (spec section 6, account.hold).
        return Verdict(take(state, existing_account(state, body["account"], "the"), body, effects, held_blocks=False), None)

    def apply(self, state: State, seq: int, body: Body, effects: Serials | None, activities: ActivityIndex,
              records: Sequence[ActivityRecord] | None) -> None:
        holder = state.accounts[body["account"]]
        _move(effects, holder.active, holder.cancelled)
        state.cancellations.add(body["cancellation_id"])
        moved_g = total(effects)
        state.active_g -= moved_g
        state.cancelled_g += moved_g

    def touched(self, body: Body, dirty: DirtyRows) -> None:
        # Its id is in the events table; the grams it took are in the account's row.
        dirty["accounts"].add(body["account"])
