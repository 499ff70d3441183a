"""activity.batch: a platform's records of low-carbon acts (spec section 7), committed to by
count, total and Merkle root, and the house rules that keep personal data out of them."""

from __future__ import annotations

from typing import Any, Sequence

from ledger.canonical import jcs
from ledger.errors import Rejected
from ledger.events.base import Body, DirtyRows, EventType, NewId, Serials, Verdict, check_period, unauthorized
from ledger.field_checks import HEX64, IDENT, TIME, date, hex64, identifier, integer
from ledger.merkle import leaf_hash, root_of_leaf_hashes
from ledger.state import ActivityIndex, ActivityRecord, Batch, Key, State

RECORD_FIELDS = frozenset(("activity_id", "fingerprint", "inputs", "occurred_at", "reduction_g", "subject"))
MAX_BATCH_RECORDS = 1_000_000


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
    ActivityBatch.judge checks them)."""
    return {"count": len(records), "total_g": sum(r["reduction_g"] for r in records),
            "root": root_of_leaf_hashes([leaf_hash(jcs(r)) for r in records]).hex()}


def _check_activities(body: Body, records: Sequence[ActivityRecord], index: ActivityIndex) -> None:
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


class ActivityBatch(EventType):
    name = "activity.batch"
    body_fields = {"batch_id": identifier, "platform": identifier, "methodology_id": identifier,
                   "methodology_version": integer(1, 1_000_000), "period_start": date, "period_end": date,
                   "count": integer(1), "total_g": integer(0), "root": hex64}
    new_id = NewId("batch_id", "batches", "batch")

    def check_across_fields(self, body: Body) -> None:
        check_period(body)

    def authorize(self, state: State, body: Body, key: Key) -> None:
        platform = state.accounts.get(body["platform"])
        if not ("platform" in key.roles and platform is not None and platform.kind == "platform"
                and key.key_id in platform.controllers):
            raise unauthorized(key, f"a platform key controlling platform account {body['platform']}")

    def judge(self, state: State, body: Body, activities: ActivityIndex, records: Sequence[Any] | None,
              effects: Serials | None) -> Verdict:
        """`records` are the batch's records as parsed JSON objects (or already parsed ones)."""
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
        return Verdict(None, parsed)

    def apply(self, state: State, seq: int, body: Body, effects: Serials | None, activities: ActivityIndex,
              records: Sequence[ActivityRecord] | None) -> None:
        state.batches[body["batch_id"]] = Batch(body["batch_id"], body["platform"], body["methodology_id"],
                                                body["methodology_version"], body["period_start"], body["period_end"],
                                                body["count"], body["total_g"], body["root"], seq)
        activities.add(body["batch_id"], body["methodology_id"], list(records or ()))

    def touched(self, body: Body, dirty: DirtyRows) -> None:
        dirty["batches"].add(body["batch_id"])
