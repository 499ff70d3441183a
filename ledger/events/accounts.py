"""account.open and account.controllers: accounts, their kind and region, and who controls them."""

from __future__ import annotations

from typing import Any, Sequence

from ledger.errors import Rejected
from ledger.events.base import (
    NOTHING_DECIDED, Body, DirtyRows, EventType, NewId, Serials, Verdict, active_keys, controls, existing_account,
    is_admin, unauthorized,
)
from ledger.field_checks import ACCOUNT_KINDS, IDENT, controllers, identifier, nullable, one_of, region, text
from ledger.state import Account, ActivityIndex, ActivityRecord, Key, State


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
            raise unauthorized(key, f"an admin key or a controller of {body['account_id']}")

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
