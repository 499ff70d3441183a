"""What an event type of spec section 6 is, and the checks several types share.

One `EventType` per type holds everything the registry knows about it: the fields of its body,
who may sign it, what it needs of the state (its judgement), what it changes (its application)
and which projection rows it touches. ledger/rules.py, ledger/schema.py and ledger/projections.py
dispatch on the type once and call these; they run the checks common to every type around them,
in the order of the spec section 9 table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple, Sequence

from ledger.errors import Rejected
from ledger.field_checks import Check, fail, fields, request_id
from ledger.state import Account, ActivityIndex, ActivityRecord, Key, State

Body = dict[str, Any]
Serials = list[list[int]]           # merged half-open [start, end] ranges
DirtyRows = dict[str, set[str]]     # projection table -> ids of the entities to rewrite


class NewId(NamedTuple):
    """The id an event introduces, unique among the ids of its kind (DUPLICATE_ID)."""
    field: str      # the body field that holds it
    table: str      # the State attribute (dict or set) of the ids used so far
    noun: str       # how messages name it


@dataclass(frozen=True, slots=True)
class Verdict:
    effects: Serials | None                 # the serials the event creates or takes
    records: list[ActivityRecord] | None    # an activity batch's parsed records
    block_hashes: list[bytes] | None = None  # and their block hashes (ledger.batch_blocks), hashed with its root


NOTHING_DECIDED = Verdict(None, None)  # the verdict of a type whose judgement chooses nothing


class EventType:
    """One event type, a singleton in events.TYPES. Subclasses set `name` and `body_fields` and
    define `authorize` and `apply`; the other steps default to none (no body rule across fields,
    no new id unless `new_id` names one, no judgement beyond authorization, no projection row)."""

    name: ClassVar[str]
    body_fields: ClassVar[dict[str, Check]]   # the fields of its own, in the order they are checked (format 1)
    body_fields_v2: ClassVar[dict[str, Check] | None] = None  # its fields in a format-2 log, where they differ
    formats: ClassVar[tuple[int, ...]] = (1, 2)  # the log formats it exists in (format 2's own types: (2,))
    new_id: ClassVar[NewId | None] = None
    has_effects: ClassVar[bool] = False       # its leaf carries `effects` (serials)

    def __init__(self) -> None:
        # request_id is last, as every body carries one and its check comes after the type's own.
        own_v2 = self.body_fields if self.body_fields_v2 is None else self.body_fields_v2
        self.bodies: dict[int, dict[str, Check]] = {1: {**self.body_fields, "request_id": request_id},
                                                     2: {**own_v2, "request_id": request_id}}
        self.field_checks: dict[int, Check] = {log_format: fields(body) for log_format, body in self.bodies.items()}

    def body_format(self, log_format: int, body: Any) -> int:
        """The format whose fields `body` must have: the log's (a genesis overrides this: it sets the format)."""
        return log_format

    def check_fields(self, log_format: int, body: Any) -> None:
        """SCHEMA unless `body` has exactly this type's fields for the log's format, each valid."""
        self.field_checks[self.body_format(log_format, body)]("", body)

    def check_across_fields(self, body: Body) -> None:
        """The body rules that need more than one field (SCHEMA), after each field passed."""

    def authorize(self, state: State, body: Body, key: Key) -> None:
        """UNAUTHORIZED unless `key` may sign this body now."""
        raise NotImplementedError(self.name)

    def check_new_id(self, state: State, body: Body) -> None:
        """DUPLICATE_ID unless the id named by `new_id` is new (a type whose id is more than a key
        of one State table overrides this)."""
        new_id = self.new_id
        if new_id is not None and body[new_id.field] in getattr(state, new_id.table):
            raise Rejected("DUPLICATE_ID", f"{new_id.noun} id {body[new_id.field]} is already used")

    def judge(self, state: State, body: Body, activities: ActivityIndex, records: Sequence[Any] | None,
              effects: Serials | None) -> Verdict:
        """Every rule after authorization, REPLAY and the new id; reads the state, never writes it.
        With `effects` given (replaying a leaf), they are checked instead of chosen."""
        return NOTHING_DECIDED

    def apply(self, state: State, seq: int, body: Body, effects: Serials | None, activities: ActivityIndex,
              records: Sequence[ActivityRecord] | None) -> None:
        """Change the state by this accepted event (rules.apply then records its request id)."""
        raise NotImplementedError(self.name)

    def apply_signed(self, state: State, seq: int, signer: str, body: Body, effects: Serials | None,
                     activities: ActivityIndex, records: Sequence[ActivityRecord] | None) -> None:
        """apply, given the key_id that signed the event: a type whose change records its signer
        (a review counts per key) overrides this instead of apply."""
        self.apply(state, seq, body, effects, activities, records)

    def touched(self, body: Body, dirty: DirtyRows) -> None:
        """Add the projection rows this accepted event changes."""


def check_period(body: Body) -> None:
    """SCHEMA (a body rule across fields): a period (a batch's, a claim's) does not end before it starts."""
    if body["period_start"] > body["period_end"]:
        fail("period_start", "must not be after period_end")


# -- who may sign --------------------------------------------------------------------------------

def is_admin(key: Key) -> bool:
    return not key.is_root and "admin" in key.roles


def controls(state: State, key: Key, account_id: str) -> bool:
    account = state.accounts.get(account_id)
    return account is not None and key.key_id in account.controllers


def controller_of(state: State, account_id: str) -> str:
    """Who signs for an account, as an UNAUTHORIZED message names it: a missing account has no
    controller (the spec's code stays UNAUTHORIZED, judged before references), and the message
    says it is missing, so that a mistyped id is not taken for a wrong key."""
    if account_id in state.accounts:
        return f"a controller of {account_id}"
    return f"a controller of {account_id}, and no account {account_id} exists: check the account's id"


def unauthorized(key: Key, need: str) -> Rejected:
    return Rejected("UNAUTHORIZED", f"key {key.key_id} ({key.label}) may not sign this: it needs {need}")


def require_root(key: Key) -> None:
    if not key.is_root:
        raise unauthorized(key, "a root key")


def require_admin(key: Key) -> None:
    if not is_admin(key):
        raise unauthorized(key, "an admin key")


# -- references ----------------------------------------------------------------------------------

def existing_account(state: State, account_id: str, role: str, kind: str | None = None) -> Account:
    account = state.accounts.get(account_id)
    if account is None:
        raise Rejected("UNKNOWN_REF", f"{role} account {account_id} does not exist")
    if kind is not None and account.kind != kind:
        raise Rejected("UNKNOWN_REF", f"{role} account {account_id} is of kind {account.kind}, not {kind}")
    return account


def active_keys(state: State, key_ids: Sequence[str]) -> None:
    for key_id in key_ids:
        key = state.keys.get(key_id)
        if key is None or key.revoked:
            raise Rejected("UNKNOWN_REF", f"controller {key_id} is not an active registered key")


def registered_methodology(state: State, methodology_id: str) -> None:
    if methodology_id not in state.methodologies:
        raise Rejected("UNKNOWN_REF", f"methodology {methodology_id} is not registered")


def registered_version(state: State, methodology_id: str, version: int) -> dict[str, Any]:
    """UNKNOWN_REF unless this version of the methodology is registered; the version's state."""
    methodology = state.methodologies.get(methodology_id)
    if methodology is None or version not in methodology.versions:
        raise Rejected("UNKNOWN_REF", f"methodology {methodology_id} version {version} is not registered")
    return methodology.versions[version]
