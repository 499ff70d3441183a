"""One operation of an operator, from the command line: look at the log through its target
(cli.target), say so and sign nothing when the operation holds already, else sign it with the key
file given and deliver it.

What the log holds and the event could not change (a key id registered with other roles, an
account open with other fields) is refused here with the code the registry would give, before
anything is signed.
"""

from __future__ import annotations

import unicodedata
from typing import Any, NamedTuple

from cli.target import Delivered, LoggedAccount, SignerKey, Target
from cli.terminal import console
from ledger.errors import Rejected
from ledger.events import TYPES
from ledger.schema import ID_FIELD

# The operations of cli.credits: each introduces an id, and a repeat with the same fields holds.
CREDIT_TYPES = ("issuance", "transfer", "retirement", "cancellation", "offset.surrender", "neutrality.claim")


class Operation(NamedTuple):
    """What a command asks, as its outcome line says it: done once it is in the log, to_do while it is
    only signed into a --sign-only file."""
    done: str
    to_do: str


class Held(NamedTuple):
    """The operation holds in the log already: nothing was signed."""
    message: str


def nfc(text: str) -> str:
    # The registry takes strings in Unicode NFC only; a name typed on another system may not be.
    return unicodedata.normalize("NFC", text)


def print_outcome(target: Target, operation: Operation, outcome: Delivered | Held) -> None:
    """One line on stdout: what was done and where it went, what is signed and waits to be submitted,
    or what held already."""
    if isinstance(outcome, Held):
        console.print(f"{outcome.message}: nothing written")
    elif outcome.seq is None:
        console.print(f"{target.done(outcome)}: {operation.to_do}")
    else:
        console.print(f"{operation.done} {target.done(outcome)}")


def send(target: Target, signer: SignerKey, event_type: str, body: dict[str, Any]) -> Delivered | Held:
    """Held if the log holds what the event asks for already, else the signed event delivered."""
    held = already_holds(target, event_type, body)
    if held is not None:
        return Held(held)
    return target.deliver(target.sign(signer.key(), event_type, body))


def _roles(roles: frozenset[str] | list[str]) -> str:
    return f"roles {', '.join(sorted(roles))}" if roles else "no role"


def already_holds(target: Target, event_type: str, body: dict[str, Any]) -> str | None:
    """What holds already, as a line for a person; None when the event would change the log (or the
    target cannot read it: --sign-only alone)."""
    if not target.readable:
        return None
    if event_type == "key.register":
        key_id = body["key_id"]
        key = target.key(key_id)
        if key is None:
            return None
        if not key.revoked and key.roles == frozenset(body["roles"]):
            return f"key {key_id} is registered already with {_roles(key.roles)}"
        was = "was registered, then revoked" if key.revoked else f"is registered with {_roles(key.roles)}"
        raise Rejected("DUPLICATE_ID", f"key {key_id} {was}; a key id is registered once: make a new key "
                                       f"(`puhui keys new`) for {_roles(body['roles'])}")
    if event_type == "key.revoke":
        key = target.key(body["key_id"])
        return None if key is None or not key.revoked else f"key {body['key_id']} is revoked already"
    if event_type == "account.open":
        account = target.account(body["account_id"])
        if account is None:
            return None
        wanted = LoggedAccount(body["account_id"], body["kind"], body["name"], body["region"], body["platform"],
                               frozenset(body["controllers"]))
        if account == wanted:
            return f"account {account.account_id} is open already with these controllers"
        raise Rejected("DUPLICATE_ID", f"account {account.account_id} is open already, otherwise: {account.kind} "
                                       f"{account.name!r}, region {account.region}, platform {account.platform}, "
                                       f"controllers {', '.join(sorted(account.controllers))}; `puhui accounts "
                                       f"controllers` changes who controls it")
    if event_type == "account.controllers":
        account = target.account(body["account_id"])
        if account is not None and account.controllers == frozenset(body["controllers"]):
            return f"account {account.account_id} has these controllers already"
        return None
    if event_type == "methodology.register":
        methodology = target.methodology(body["methodology_id"])
        if methodology is not None and body["version"] in methodology.versions:
            return f"methodology {body['methodology_id']} v{body['version']} is registered already"
        return None
    if event_type == "methodology.eligibility":
        methodology = target.methodology(body["methodology_id"])
        if methodology is None:
            return None
        if "version" in body:  # format 2: the version's own eligibility
            version = methodology.versions.get(body["version"])
            in_force, named = (None if version is None else version["offset_eligible"]), f" v{body['version']}"
        else:
            in_force, named = methodology.offset_eligible, ""
        if in_force == body["offset_eligible"]:
            return f"{body['methodology_id']}{named}: offset eligible {'on' if in_force else 'off'} already"
        return None
    if event_type in CREDIT_TYPES:
        return _introduced_already(target, event_type, body)
    if event_type == "review":
        target_of = body["target"]
        for review in target.reviews(target_of["kind"], target_of["id"], target_of["version"]):
            if review.review_id == body["review_id"] and review.approved == (body["verdict"] == "approved"):
                return f"review {review.review_id} of this target is in the log already (seq {review.seq})"
        return None
    if event_type == "account.hold" and body["held"] and body["case_id"] in target.open_cases(body["account_id"]):
        return f"case {body['case_id']} is open on account {body['account_id']} already"
    return None


def _introduced_already(target: Target, event_type: str, body: dict[str, Any]) -> str | None:
    """The event that introduced this id, when its fields are these (a submitted event's own
    request_id aside); DUPLICATE_ID when they are others."""
    event_id, noun = body[ID_FIELD[event_type]], TYPES[event_type].new_id.noun
    logged = target.logged(event_type, event_id)
    if logged is None:
        return None
    asked = {k: v for k, v in body.items() if k != "request_id"}
    logged = {k: v for k, v in logged.items() if k != "request_id"}
    if logged == asked:
        return f"{noun} {event_id} is in the log already with these fields"
    differing = ", ".join(f"{k} {logged.get(k)!r}" for k in sorted(asked.keys() | logged.keys())
                          if asked.get(k) != logged.get(k))
    raise Rejected("DUPLICATE_ID", f"{noun} {event_id} is in the log already, otherwise ({differing}): an id is "
                                   f"used once, choose another")
