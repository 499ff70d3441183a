"""The rules of spec section 6: state + event -> effects, or a Rejected carrying the spec's code.

`authenticate` and `judge` only read the state; `apply` is the one place that changes it. The
registry judges before it sequences; a replay of the log judges each leaf with its recorded
effects, so both paths run the very same rules. Checks follow the order of spec section 9.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any, Sequence

from nacl.exceptions import BadSignatureError

from ledger.canonical import jcs
from ledger.errors import Rejected
from ledger.merkle import leaf_hash, root_of_leaf_hashes
from ledger.field_checks import HEX64, IDENT, TIME
from ledger.serials import is_merged, total
from ledger.state import (
    Account, ActivityIndex, ActivityRecord, Batch, Claim, Issuance, Key, Methodology, Retirement,
    State, Surrender,
)

EVENT_DOMAIN = b"puhui-event/v1\n"
RECORD_FIELDS = frozenset(("activity_id", "fingerprint", "inputs", "occurred_at", "reduction_g", "subject"))
MAX_BATCH_RECORDS = 1_000_000


def signing_message(origin: str, event_type: str, body: dict[str, Any]) -> bytes:
    return EVENT_DOMAIN + jcs({"body": body, "origin": origin, "type": event_type})


def authenticate(state: State, origin: str, event_type: str, body: dict[str, Any], auth: dict[str, str]) -> Key:
    """The signing key, known and active, whose signature verifies (KEY_UNKNOWN, KEY_REVOKED, SIGNATURE)."""
    return verify_signer(state.signer(auth["key"]), origin, event_type, body, auth)


def verify_signer(key: Key | None, origin: str, event_type: str, body: dict[str, Any], auth: dict[str, str]) -> Key:
    """authenticate, given the key auth names as found (None: unknown); also the HTTP front's early
    check of an upload, with the key read from the committed database."""
    if key is None:
        raise Rejected("KEY_UNKNOWN", f"key {auth['key']} is neither a root key nor a registered key")
    if key.revoked:
        raise Rejected("KEY_REVOKED", f"key {key.key_id} ({key.label}) was revoked and signs nothing after that")
    try:
        key.verify_key.verify(signing_message(origin, event_type, body), base64.b64decode(auth["sig"]))
    except BadSignatureError:
        raise Rejected("SIGNATURE", f"the signature does not verify with key {key.key_id} over this body and origin {origin}") from None
    return key


# -- who may sign --------------------------------------------------------------------------------

def _is_admin(key: Key) -> bool:
    return not key.is_root and "admin" in key.roles


def _controls(state: State, key: Key, account_id: str) -> bool:
    account = state.accounts.get(account_id)
    return account is not None and key.key_id in account.controllers


def _unauthorized(key: Key, need: str) -> Rejected:
    return Rejected("UNAUTHORIZED", f"key {key.key_id} ({key.label}) may not sign this: it needs {need}")


def _authorize(state: State, event_type: str, body: dict[str, Any], key: Key) -> None:
    if state.size == 0 and event_type != "registry.genesis":
        raise Rejected("UNAUTHORIZED", "seq 0 must be registry.genesis")
    if event_type == "registry.genesis":
        if state.size != 0:
            raise Rejected("UNAUTHORIZED", "registry.genesis is allowed at seq 0 only")
        if not key.is_root:
            raise _unauthorized(key, "a root key")
    elif event_type == "registry.rules":
        if not key.is_root:
            raise _unauthorized(key, "a root key")
    elif event_type == "key.register":
        granted = set(body["roles"])
        if not (key.is_root or (_is_admin(key) and granted <= {"platform", "ets"})):
            raise _unauthorized(key, "a root key, or an admin key granting only platform or ets roles")
    elif event_type == "key.revoke":
        target = state.keys.get(body["key_id"])
        if not (key.is_root or _is_admin(key)):
            raise _unauthorized(key, "a root or admin key")
        if not key.is_root and target is not None and "admin" in target.roles:
            raise _unauthorized(key, "a root key to revoke an admin key")
    elif event_type == "account.open":
        if _is_admin(key):
            return
        platform = body["platform"]
        ok = (body["kind"] == "individual" and platform is not None and "platform" in key.roles
              and _controls(state, key, platform) and state.accounts[platform].kind == "platform")
        if not ok:
            raise _unauthorized(key, "an admin key, or for an individual account a platform key controlling its platform")
    elif event_type == "account.controllers":
        if not (_is_admin(key) or _controls(state, key, body["account_id"])):
            raise _unauthorized(key, f"an admin key or a controller of {body['account_id']}")
    elif event_type in ("methodology.register", "methodology.eligibility", "issuance", "cancellation"):
        if not _is_admin(key):
            raise _unauthorized(key, "an admin key")
    elif event_type == "activity.batch":
        platform = state.accounts.get(body["platform"])
        if not ("platform" in key.roles and platform is not None and platform.kind == "platform"
                and key.key_id in platform.controllers):
            raise _unauthorized(key, f"a platform key controlling platform account {body['platform']}")
    elif event_type == "transfer":
        if not _controls(state, key, body["from"]):
            raise _unauthorized(key, f"a controller of {body['from']}")
    elif event_type == "retirement":
        if not _controls(state, key, body["account"]):
            raise _unauthorized(key, f"a controller of {body['account']}")
    elif event_type == "offset.surrender":
        if key.is_root or "ets" not in key.roles:
            raise _unauthorized(key, "a key with the ets role (the carbon market)")
    elif event_type == "neutrality.claim":
        if not (_is_admin(key) or _controls(state, key, body["claimant"])):
            raise _unauthorized(key, f"an admin key or a controller of {body['claimant']}")
    else:  # pragma: no cover - schema.check_body knows every type
        raise AssertionError(event_type)


# -- references and ids --------------------------------------------------------------------------

_ID_TABLES = {
    "account.open": ("account_id", "accounts", "account"),
    "activity.batch": ("batch_id", "batches", "batch"),
    "issuance": ("issuance_id", "issuances", "issuance"),
    "transfer": ("transfer_id", "transfers", "transfer"),
    "retirement": ("retirement_id", "retirements", "retirement"),
    "cancellation": ("cancellation_id", "cancellations", "cancellation"),
    "offset.surrender": ("surrender_id", "surrenders", "surrender"),
    "neutrality.claim": ("claim_id", "claims", "claim"),
}


def _check_new_id(state: State, event_type: str, body: dict[str, Any]) -> None:
    if event_type == "key.register":
        if body["key_id"] in state.keys or body["key_id"] in state.root_keys:
            raise Rejected("DUPLICATE_ID", f"key {body['key_id']} is already registered")
        return
    if event_type == "methodology.register":
        existing = state.methodologies.get(body["methodology_id"])
        latest = existing.latest_version if existing else 0
        if body["version"] <= latest:
            raise Rejected("DUPLICATE_ID", f"methodology {body['methodology_id']} version {body['version']} exists (latest {latest})")
        if body["version"] != latest + 1:
            raise Rejected("UNKNOWN_REF", f"methodology {body['methodology_id']} version {body['version']} skips: the next version is {latest + 1}")
        return
    entry = _ID_TABLES.get(event_type)
    if entry:
        field, table, noun = entry
        if body[field] in getattr(state, table):
            raise Rejected("DUPLICATE_ID", f"{noun} id {body[field]} is already used")


def _account(state: State, account_id: str, role: str, kind: str | None = None) -> Account:
    account = state.accounts.get(account_id)
    if account is None:
        raise Rejected("UNKNOWN_REF", f"{role} account {account_id} does not exist")
    if kind is not None and account.kind != kind:
        raise Rejected("UNKNOWN_REF", f"{role} account {account_id} is of kind {account.kind}, not {kind}")
    return account


def _active_keys(state: State, key_ids: Sequence[str]) -> None:
    for key_id in key_ids:
        key = state.keys.get(key_id)
        if key is None or key.revoked:
            raise Rejected("UNKNOWN_REF", f"controller {key_id} is not an active registered key")


# -- serials -------------------------------------------------------------------------------------

def _spend(account: Account, amount_g: int, effects: list[list[int]] | None) -> list[list[int]]:
    """The serials a transfer, retirement or cancellation takes: the lowest active ones, or checks given ones."""
    if effects is None:
        if account.active.size_g < amount_g:
            raise Rejected("NOT_HELD", f"account {account.account_id} holds {account.active.size_g} g active, not {amount_g} g")
        return account.active.lowest(amount_g)
    if not is_merged(effects):
        raise Rejected("NOT_HELD", "effects.serials are not sorted, disjoint and merged")
    if total(effects) != amount_g:
        raise Rejected("NOT_HELD", f"effects.serials add up to {total(effects)} g, not amount_g {amount_g}")
    if not account.active.covers_all(effects):
        raise Rejected("NOT_HELD", f"account {account.account_id} does not hold all of these serials as active")
    return effects


# -- activity records ----------------------------------------------------------------------------

def declared_inputs(params: Any) -> frozenset[str]:
    """The input names a methodology version's params declare (`inputs`, as quantify writes a
    definition); none when its params declare none."""
    inputs = params.get("inputs") if isinstance(params, dict) else None
    return frozenset(inputs) if isinstance(inputs, dict) else frozenset()


def parse_record(record: Any, index: int, allowed_inputs: frozenset[str]) -> ActivityRecord:
    """One activity record (spec section 7), as a dict already parsed strictly. Failures are BATCH.

    Two house rules keep personal data out of the append-only log (a registry may refuse more
    than the spec forbids): the subject is a pseudonym of the identifier form (a name or a phone
    number with spaces, '+' or CJK characters is not), and the inputs are only those the
    methodology version declares."""
    def bad(why: str) -> Rejected:
        return Rejected("BATCH", f"activity record {index}: {why}")
    if not isinstance(record, dict) or set(record) != RECORD_FIELDS:
        raise bad(f"must have exactly the fields {', '.join(sorted(RECORD_FIELDS))}")
    if not isinstance(record["activity_id"], str) or not IDENT.fullmatch(record["activity_id"]):
        raise bad("activity_id is not an identifier")
    if not isinstance(record["fingerprint"], str) or not HEX64.fullmatch(record["fingerprint"]):
        raise bad("fingerprint is not 64 lowercase hex")
    if not isinstance(record["inputs"], dict):
        raise bad("inputs is not an object")
    if not isinstance(record["occurred_at"], str) or not TIME.fullmatch(record["occurred_at"]):
        raise bad("occurred_at is not YYYY-MM-DDTHH:MM:SS.ffffffZ")
    reduction = record["reduction_g"]
    if not isinstance(reduction, int) or isinstance(reduction, bool) or not 0 <= reduction <= 2**53 - 1:
        raise bad("reduction_g is not a non-negative integer")
    if not isinstance(record["subject"], str) or not IDENT.fullmatch(record["subject"]):
        raise bad("subject is not a pseudonym (an identifier ^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$): personal data "
                  "never enters the log")
    undeclared = record["inputs"].keys() - allowed_inputs
    if undeclared:
        raise bad(f"inputs {sorted(undeclared)[:5]} are not inputs its methodology declares: a record carries only "
                  f"those (declared: {sorted(allowed_inputs) or 'none'})")
    return ActivityRecord(record["activity_id"], record["fingerprint"], record["occurred_at"], reduction,
                          record["subject"], jcs(record))


def batch_commitment(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """count, total_g and root of a batch's records, as the platform commits to them (and
    _check_activities checks them)."""
    return {"count": len(records), "total_g": sum(r["reduction_g"] for r in records),
            "root": root_of_leaf_hashes([leaf_hash(jcs(r)) for r in records]).hex()}


def _check_activities(body: dict[str, Any], records: Sequence[ActivityRecord], index: ActivityIndex) -> None:
    ids = [r.activity_id for r in records]
    if len(set(ids)) != len(ids):
        raise Rejected("DUPLICATE_ID", f"batch {body['batch_id']} repeats an activity_id")
    known = index.known_activity_ids(ids)
    if known:
        raise Rejected("DUPLICATE_ID", f"activity_id {sorted(known)[0]} is already in the log")
    if len(records) != body["count"]:
        raise Rejected("BATCH", f"batch holds {len(records)} records, count says {body['count']}")
    total_g = sum(r.reduction_g for r in records)
    if total_g != body["total_g"]:
        raise Rejected("BATCH", f"records add up to {total_g} g, total_g says {body['total_g']}")
    for r in records:
        if not body["period_start"] <= r.occurred_at[:10] <= body["period_end"]:
            raise Rejected("BATCH", f"activity {r.activity_id} occurred on {r.occurred_at[:10]}, outside the batch period")
    root = root_of_leaf_hashes([leaf_hash(r.data) for r in records]).hex()
    if root != body["root"]:
        raise Rejected("BATCH", f"records hash to root {root}, the batch commits to {body['root']}")
    fingerprints = [r.fingerprint for r in records]
    if len(set(fingerprints)) != len(fingerprints):
        raise Rejected("DUPLICATE_ACTIVITY", f"batch {body['batch_id']} reports one real-world act twice (same fingerprint)")
    known = index.known_fingerprints(fingerprints)
    if known:
        raise Rejected("DUPLICATE_ACTIVITY", f"fingerprint {sorted(known)[0]} was already reported (by this or another platform)")


# -- the judgement -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Verdict:
    effects: list[list[int]] | None          # the serials the event creates or takes
    records: list[ActivityRecord] | None     # an activity batch's parsed records


def judge(state: State, event_type: str, body: dict[str, Any], key: Key, *,
          activities: ActivityIndex, records: Sequence[Any] | None = None,
          effects: list[list[int]] | None = None) -> Verdict:
    """Check every rule after authentication.

    `records` are an activity batch's records as parsed JSON objects. With `effects` given
    (replaying a leaf), they are checked instead of chosen.
    """
    _authorize(state, event_type, body, key)
    if (key.key_id, body["request_id"]) in state.requests:
        raise Rejected("REPLAY", f"key {key.key_id} already used request_id {body['request_id']!r}")
    _check_new_id(state, event_type, body)
    if event_type == "activity.batch":
        return Verdict(None, _judge_batch(state, body, activities, records))
    judge_type = _JUDGES.get(event_type)
    return Verdict(judge_type(state, body, activities, records, effects) if judge_type else None, None)


def _judge_key_revoke(state, body, activities, records, effects):
    target = state.keys.get(body["key_id"])
    if target is None or target.revoked:
        raise Rejected("UNKNOWN_REF", f"key {body['key_id']} is not a registered active key")


def _judge_account_open(state, body, activities, records, effects):
    if body["kind"] == "individual" and not IDENT.fullmatch(body["name"]):
        # A house rule (the log is public and append-only): a person's account is named by a pseudonym.
        raise Rejected("SCHEMA", f"an individual account's name is a pseudonym (an identifier), not {body['name'][:40]!r}: "
                                 "personal data never enters the log")
    _active_keys(state, body["controllers"])
    if body["platform"] is not None:
        _account(state, body["platform"], "platform", "platform")


def _judge_account_controllers(state, body, activities, records, effects):
    _account(state, body["account_id"], "the")
    _active_keys(state, body["controllers"])


def _judge_eligibility(state, body, activities, records, effects):
    if body["methodology_id"] not in state.methodologies:
        raise Rejected("UNKNOWN_REF", f"methodology {body['methodology_id']} is not registered")


def _judge_batch(state: State, body: dict[str, Any], activities: ActivityIndex,
                 records: Sequence[Any] | None) -> list[ActivityRecord]:
    methodology = state.methodologies.get(body["methodology_id"])
    if methodology is None or body["methodology_version"] not in methodology.versions:
        raise Rejected("UNKNOWN_REF", f"methodology {body['methodology_id']} version {body['methodology_version']} is not registered")
    if records is None:
        raise Rejected("BATCH", f"batch {body['batch_id']} arrived without its activity records")
    if len(records) > MAX_BATCH_RECORDS:
        raise Rejected("BATCH", f"a batch holds at most {MAX_BATCH_RECORDS} records")
    allowed = declared_inputs(methodology.versions[body["methodology_version"]]["params"])
    parsed = [r if isinstance(r, ActivityRecord) else parse_record(r, i, allowed) for i, r in enumerate(records)]
    _check_activities(body, parsed, activities)
    return parsed


def _judge_issuance(state, body, activities, records, effects):
    _account(state, body["account"], "recipient")
    if body["methodology_id"] not in state.methodologies:
        raise Rejected("UNKNOWN_REF", f"methodology {body['methodology_id']} is not registered")
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
    year = str(body["vintage"])
    for batch in batches:
        if batch.methodology_id != body["methodology_id"]:
            raise Rejected("ISSUANCE_AMOUNT", f"batch {batch.batch_id} is of methodology {batch.methodology_id}")
        if not (batch.period_start[:4] == year and batch.period_end[:4] == year):
            raise Rejected("ISSUANCE_AMOUNT", f"batch {batch.batch_id} period {batch.period_start}..{batch.period_end} is not inside vintage {year}")
        region = state.accounts[batch.platform].region
        if region != body["region"]:
            raise Rejected("ISSUANCE_AMOUNT", f"batch {batch.batch_id} comes from region {region}, not {body['region']}")
    if batches and sum(b.total_g for b in batches) != body["amount_g"]:
        raise Rejected("ISSUANCE_AMOUNT", f"amount_g {body['amount_g']} differs from the batches' total {sum(b.total_g for b in batches)} g")
    if len(set(body["batches"])) != len(body["batches"]):
        raise Rejected("DOUBLE_ISSUANCE", "the same batch is listed twice")
    for batch in batches:
        if batch.issuance_id is not None:
            raise Rejected("DOUBLE_ISSUANCE", f"batch {batch.batch_id} already backs issuance {batch.issuance_id}")
    return expected


def _judge_transfer(state, body, activities, records, effects):
    source = state.accounts[body["from"]]  # authorization proved it exists
    _account(state, body["to"], "recipient")
    return _spend(source, body["amount_g"], effects)


def _judge_retirement(state, body, activities, records, effects):
    return _spend(state.accounts[body["account"]], body["amount_g"], effects)


def _judge_cancellation(state, body, activities, records, effects):
    return _spend(_account(state, body["account"], "the"), body["amount_g"], effects)


def _retirements_for_use(state: State, body: dict[str, Any], purpose: str, account_id: str) -> list[Retirement]:
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


def offset_refusal(state: State, retirement: Retirement, compliance_year: int) -> str | None:
    """Why the rules in force exclude this retirement's serials as offsets, or None."""
    rules = state.rules
    assert rules is not None
    for start, end in retirement.serials:
        for issuance in state.issuances_over(start, end):
            methodology = state.methodologies[issuance.methodology_id]
            if not methodology.offset_eligible:
                return f"methodology {issuance.methodology_id} (issuance {issuance.issuance_id}) is not offset-eligible"
            if not (issuance.vintage <= compliance_year and compliance_year - issuance.vintage <= rules["offset_vintage_years"]):
                return (f"vintage {issuance.vintage} (issuance {issuance.issuance_id}) is outside the {rules['offset_vintage_years']}-year "
                        f"window for compliance year {compliance_year}")
            if not any(issuance.region.startswith(prefix) for prefix in rules["offset_regions"]):
                return f"region {issuance.region} (issuance {issuance.issuance_id}) is not in the offset regions {rules['offset_regions']}"
    return None


def offset_cap_g(state: State, allocation_g: int) -> int:
    assert state.rules is not None
    return allocation_g * state.rules["offset_cap_ppm"] // 1_000_000


def _judge_surrender(state, body, activities, records, effects):
    _account(state, body["entity"], "entity", "compliance_entity")
    retirements = _retirements_for_use(state, body, "ets_offset", body["entity"])
    for retirement in retirements:
        refusal = offset_refusal(state, retirement, body["compliance_year"])
        if refusal:
            raise Rejected("OFFSET_INELIGIBLE", f"retirement {retirement.retirement_id}: {refusal}")
    amount_g = sum(r.amount_g for r in retirements)
    used_g = state.offsets_g.get((body["entity"], body["compliance_year"]), 0)
    cap_g = offset_cap_g(state, body["allocation_g"])
    if used_g + amount_g > cap_g:
        raise Rejected("OFFSET_CAP", f"{body['entity']} would offset {used_g + amount_g} g for {body['compliance_year']}, "
                                     f"above its cap of {cap_g} g ({state.rules['offset_cap_ppm']} ppm of {body['allocation_g']} g)")


def _judge_claim(state, body, activities, records, effects):
    _account(state, body["claimant"], "claimant")
    retirements = _retirements_for_use(state, body, "carbon_neutrality", body["claimant"])
    retired_g = sum(r.amount_g for r in retirements)
    if retired_g < body["footprint_g"]:
        raise Rejected("NEUTRALITY_SHORT", f"retirements add up to {retired_g} g, short of the footprint {body['footprint_g']} g")


_JUDGES = {
    "key.revoke": _judge_key_revoke,
    "account.open": _judge_account_open,
    "account.controllers": _judge_account_controllers,
    "methodology.eligibility": _judge_eligibility,
    "issuance": _judge_issuance,
    "transfer": _judge_transfer,
    "retirement": _judge_retirement,
    "cancellation": _judge_cancellation,
    "offset.surrender": _judge_surrender,
    "neutrality.claim": _judge_claim,
}


# -- applying an accepted event ------------------------------------------------------------------

def apply(state: State, seq: int, time: str, event_type: str, body: dict[str, Any], signer: str,
          effects: list[list[int]] | None, *, activities: ActivityIndex,
          records: Sequence[ActivityRecord] | None = None) -> None:
    """Change the state by one accepted event. The caller has judged it."""
    assert seq == state.size, (seq, state.size)
    if event_type == "registry.genesis":
        state.origin, state.rules = body["origin"], body["rules"]
    elif event_type == "registry.rules":
        state.rules = body["rules"]
    elif event_type == "key.register":
        state.keys[body["key_id"]] = Key(body["key_id"], base64.b64decode(body["public_key"]), frozenset(body["roles"]), body["label"], seq)
    elif event_type == "key.revoke":
        state.keys[body["key_id"]].revoked = True
    elif event_type == "account.open":
        state.accounts[body["account_id"]] = Account(body["account_id"], body["kind"], body["name"], body["region"],
                                                     body["platform"], tuple(body["controllers"]), seq)
    elif event_type == "account.controllers":
        state.accounts[body["account_id"]].controllers = tuple(body["controllers"])
    elif event_type == "methodology.register":
        methodology = state.methodologies.setdefault(body["methodology_id"], Methodology(body["methodology_id"], {}, False))
        methodology.versions[body["version"]] = {k: body[k] for k in ("title", "sector", "params", "offset_eligible")} | {"seq": seq}
        methodology.offset_eligible = body["offset_eligible"]
    elif event_type == "methodology.eligibility":
        state.methodologies[body["methodology_id"]].offset_eligible = body["offset_eligible"]
    elif event_type == "activity.batch":
        state.batches[body["batch_id"]] = Batch(body["batch_id"], body["platform"], body["methodology_id"],
                                                body["methodology_version"], body["period_start"], body["period_end"],
                                                body["count"], body["total_g"], body["root"], seq)
        activities.add(body["batch_id"], body["methodology_id"], list(records or ()))
    elif event_type == "issuance":
        [[start, end]] = effects
        state.add_issuance(Issuance(body["issuance_id"], seq, body["account"], body["methodology_id"], body["vintage"],
                                    body["region"], body["amount_g"], start, end))
        state.accounts[body["account"]].active.add(start, end)
        state.active_g += end - start
        for batch_id in body["batches"]:
            state.batches[batch_id].issuance_id = body["issuance_id"]
    elif event_type in ("transfer", "retirement", "cancellation"):
        holder = state.accounts[body["from"] if event_type == "transfer" else body["account"]]
        for start, end in effects:
            holder.active.remove(start, end)
        if event_type == "transfer":
            destination = state.accounts[body["to"]].active
            state.transfers.add(body["transfer_id"])
        elif event_type == "retirement":
            destination = holder.retired
            state.retirements[body["retirement_id"]] = Retirement(body["retirement_id"], seq, body["account"], body["amount_g"],
                                                                  body["purpose"], body["beneficiary"], effects)
        else:
            destination = holder.cancelled
            state.cancellations.add(body["cancellation_id"])
        for start, end in effects:
            destination.add(start, end)
        if event_type != "transfer":  # a transfer keeps its grams active
            moved_g = total(effects)
            state.active_g -= moved_g
            if event_type == "retirement":
                state.retired_g += moved_g
            else:
                state.cancelled_g += moved_g
    elif event_type == "offset.surrender":
        amount_g = sum(state.retirements[r].amount_g for r in body["retirements"])
        for retirement_id in body["retirements"]:
            state.retirements[retirement_id].used_by = body["surrender_id"]
        key = (body["entity"], body["compliance_year"])
        state.offsets_g[key] = state.offsets_g.get(key, 0) + amount_g
        state.surrenders[body["surrender_id"]] = Surrender(body["surrender_id"], seq, body["entity"], body["compliance_year"],
                                                           body["allocation_g"], amount_g, list(body["retirements"]))
    elif event_type == "neutrality.claim":
        retired_g = sum(state.retirements[r].amount_g for r in body["retirements"])
        for retirement_id in body["retirements"]:
            state.retirements[retirement_id].used_by = body["claim_id"]
        state.claims[body["claim_id"]] = Claim(body["claim_id"], seq, body["claimant"], body["subject"]["kind"],
                                               body["subject"]["name"], body["period_start"], body["period_end"],
                                               body["footprint_g"], retired_g, list(body["retirements"]))
    state.requests[(signer, body["request_id"])] = seq
    state.size = seq + 1
    state.last_time = time
