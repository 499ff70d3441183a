"""account.open, account.controllers and account.hold: accounts, their kind and region, who controls
them, and (format 2) the cases that hold them."""

from __future__ import annotations

from typing import Any, Sequence

from ledger.errors import Rejected
from ledger.events.base import (
    NOTHING_DECIDED, Body, DirtyRows, EventType, NewId, Serials, Verdict, active_keys, controller_of, controls, existing_account,
    is_admin, require_admin, unauthorized,
)
from ledger.field_checks import ACCOUNT_KINDS, IDENT, boolean, controllers, identifier, nullable, one_of, region, text
from ledger.state import Account, ActivityIndex, ActivityRecord, Hold, Key, State


class AccountOpen(EventType):
    name = "account.open"
    body_fields = {"account_id": identifier, "kind": one_of(ACCOUNT_KINDS), "name": text, "region": region,
                   "controllers": controllers, "platform": nullable(identifier)}
    new_id = NewId("account_id", "accounts", "account")

    def authorize(self, state: State, body: Body, key: Key) -> None:
        if is_admin(key):
            return
        platform = body["platform"]
        ok = (body["kind"] == "individual" and platform is not None and "platform" in key.roles
              and controls(state, key, platform) and state.accounts[platform].kind == "platform")
        if not ok:
            raise unauthorized(key, "an admin key, or for an individual account a platform key controlling its platform")

    def judge(self, state: State, body: Body, activities: ActivityIndex, records: Sequence[Any] | None,
              effects: Serials | None) -> Verdict:
        if body["kind"] == "individual" and not IDENT.fullmatch(body["name"]):
            # A house rule (the log is public and append-only): a person's account is named by a pseudonym.
            raise Rejected("SCHEMA", f"an individual account's name is a pseudonym (an identifier), not {body['name'][:40]!r}: "
                                     "personal data never enters the log")
        active_keys(state, body["controllers"])
        if body["platform"] is not None:
            existing_account(state, body["platform"], "platform", "platform")
        return NOTHING_DECIDED

    def apply(self, state: State, seq: int, body: Body, effects: Serials | None, activities: ActivityIndex,
              records: Sequence[ActivityRecord] | None) -> None:
        state.accounts[body["account_id"]] = Account(body["account_id"], body["kind"], body["name"], body["region"],
                                                     body["platform"], tuple(body["controllers"]), seq)

    def touched(self, body: Body, dirty: DirtyRows) -> None:
        dirty["accounts"].add(body["account_id"])


class AccountControllers(EventType):
    name = "account.controllers"
    body_fields = {"account_id": identifier, "controllers": controllers}

    def authorize(self, state: State, body: Body, key: Key) -> None:
        if not (is_admin(key) or controls(state, key, body["account_id"])):
            raise unauthorized(key, f"an admin key or {controller_of(state, body['account_id'])}")

    def judge(self, state: State, body: Body, activities: ActivityIndex, records: Sequence[Any] | None,
              effects: Serials | None) -> Verdict:
        existing_account(state, body["account_id"], "the")
        active_keys(state, body["controllers"])
        return NOTHING_DECIDED

    def apply(self, state: State, seq: int, body: Body, effects: Serials | None, activities: ActivityIndex,
              records: Sequence[ActivityRecord] | None) -> None:
        state.accounts[body["account_id"]].controllers = tuple(body["controllers"])

    def touched(self, body: Body, dirty: DirtyRows) -> None:
        dirty["accounts"].add(body["account_id"])


class AccountHold(EventType):
    """A case (account_id, case_id) opened or closed by an admin: an account with an open case is
    held, neither the `from` of a transfer nor the `account` of a retirement (FROZEN, credits.py)."""
    name = "account.hold"
    formats = (2,)
    body_fields = {"hold_id": identifier, "account_id": identifier, "held": boolean, "case_id": identifier,
                   "reason": text}
    new_id = NewId("hold_id", "holds", "hold")

    def authorize(self, state: State, body: Body, key: Key) -> None:
        require_admin(key)

    def judge(self, state: State, body: Body, activities: ActivityIndex, records: Sequence[Any] | None,
              effects: Serials | None) -> Verdict:
        existing_account(state, body["account_id"], "the")
        if not body["held"] and body["case_id"] not in state.open_cases.get(body["account_id"], ()):
            raise Rejected("UNKNOWN_REF", f"account {body['account_id']} has no open case {body['case_id']}")
        return NOTHING_DECIDED

    def apply(self, state: State, seq: int, body: Body, effects: Serials | None, activities: ActivityIndex,
              records: Sequence[ActivityRecord] | None) -> None:
        state.record_hold(Hold(body["hold_id"], seq, body["account_id"], body["case_id"], body["held"], body["reason"]))

    def touched(self, body: Body, dirty: DirtyRows) -> None:
        dirty["holds"].add(body["hold_id"])
