"""review (format 2): a validation body's verdict on a batch or an evidence hash, a methodology
expert's on a methodology version; and how reviews count for the events that need them (spec
section 6, "Reviews": issuances, and turning offset eligibility on)."""

from __future__ import annotations

from typing import Any, NamedTuple, Sequence

from ledger.errors import Rejected
from ledger.events.base import (
    NOTHING_DECIDED, Body, DirtyRows, EventType, NewId, Serials, Verdict, registered_version, unauthorized,
)
from ledger.field_checks import VERDICTS, fail, hex64, identifier, integer, one_of
from ledger.state import Account, ActivityIndex, ActivityRecord, Batch, Key, Review, ReviewTarget, State

# Who reviews what: a validation body batches and evidence, the methodology panel's experts versions.
REVIEWER_ROLES = {"batch": "validator", "evidence": "validator", "methodology": "expert"}
_TARGET_IDS = {"batch": identifier, "evidence": hex64, "methodology": identifier}
_version = integer(1)


def review_target(field: str, value: Any) -> None:
    """{"kind": "batch", "id": ID, "version": null}, {"kind": "evidence", "id": HEX64, "version":
    null} or {"kind": "methodology", "id": ID, "version": INT >= 1}."""
    if not isinstance(value, dict) or set(value) != {"kind", "id", "version"}:
        fail(field, "must be exactly {kind, id, version}")
    kind = value["kind"]
    if not isinstance(kind, str) or kind not in REVIEWER_ROLES:
        fail(f"{field}.kind", f"must be one of {', '.join(REVIEWER_ROLES)}, got {kind!r:.80}")
    _TARGET_IDS[kind](f"{field}.id", value["id"])
    if kind == "methodology":
        _version(f"{field}.version", value["version"])
    elif value["version"] is not None:
        fail(f"{field}.version", f"must be null for a {kind} target")


def target_of(body: Body) -> ReviewTarget:
    target = body["target"]
    return ReviewTarget(target["kind"], target["id"], target["version"])


class ReviewEvent(EventType):
    name = "review"
    formats = (2,)
    body_fields = {"review_id": identifier, "target": review_target, "verdict": one_of(VERDICTS), "report_sha256": hex64}
    new_id = NewId("review_id", "reviews", "review")

    def authorize(self, state: State, body: Body, key: Key) -> None:
        kind = body["target"]["kind"]
        role = REVIEWER_ROLES[kind]
        if key.is_root or role not in key.roles:
            article = "an" if role[0] in "aeiou" else "a"
            raise unauthorized(key, f"{article} {role} key to review a {kind}")

    def judge(self, state: State, body: Body, activities: ActivityIndex, records: Sequence[Any] | None,
              effects: Serials | None) -> Verdict:
        target = target_of(body)
        if target.kind == "batch" and target.id not in state.batches:
            raise Rejected("UNKNOWN_REF", f"activity batch {target.id} does not exist")
        if target.kind == "methodology":
            registered_version(state, target.id, target.version)
        return NOTHING_DECIDED

    def apply_signed(self, state: State, seq: int, signer: str, body: Body, effects: Serials | None,
                     activities: ActivityIndex, records: Sequence[ActivityRecord] | None) -> None:
        target = target_of(body)
        state.add_review(Review(body["review_id"], seq, signer, target.kind, target.id, target.version,
                                body["verdict"] == "approved"))

    def touched(self, body: Body, dirty: DirtyRows) -> None:
        dirty["reviews"].add(body["review_id"])


# -- how reviews count ---------------------------------------------------------------------------

class ReviewCount(NamedTuple):
    approving_keys: int     # distinct keys whose approval counts
    rejected: bool          # a counting key rejected the target


def counted_reviews(state: State, target: ReviewTarget, role: str, controlled: Sequence[Account] = ()) -> ReviewCount:
    """The reviews of `target` that count now: accepted before, by a key that holds `role` and is
    active. An approval counts once per key, and not from a controller of one of `controlled`; a
    rejection counts from any such key, independent or not."""
    approving: set[str] = set()
    rejected = False
    for review in state.reviews_of.get(target, ()):
        key = state.keys.get(review.signer)
        if key is None or key.revoked or role not in key.roles:
            continue
        if not review.approved:
            rejected = True
        elif not any(review.signer in account.controllers for account in controlled):
            approving.add(review.signer)
    return ReviewCount(len(approving), rejected)


def review_quorum(state: State, kind: str) -> int:
    """The approvals an issuance or an eligibility needs (UNREVIEWED before any rules are in force)."""
    if state.rules is None:
        raise Rejected("UNREVIEWED", "no rules are in force (no accepted genesis): no review quorum")
    return state.rules["review_quorum"][kind]


def require_reviews(state: State, target: ReviewTarget, role: str, quorum: int, what: str,
                    controlled: Sequence[Account] = ()) -> None:
    """UNREVIEWED if a counting review rejected `target`, or fewer than `quorum` keys approved it."""
    count = counted_reviews(state, target, role, controlled)
    if count.rejected:
        raise Rejected("UNREVIEWED", f"{what} has a rejected review")
    if count.approving_keys < quorum:
        raise Rejected("UNREVIEWED", f"{what} has {count.approving_keys} counting approved review(s), the quorum is {quorum}")


def require_issuance_reviews(state: State, body: Body, batches: Sequence[Batch], recipient: Account) -> None:
    """An issuance's reviews: of each batch by validators controlling neither its platform account
    nor the recipient; of the evidence hash (by validators not controlling the recipient) when it
    has no batches."""
    quorum = review_quorum(state, "issuance")
    if batches:
        for batch in batches:
            require_reviews(state, ReviewTarget("batch", batch.batch_id, None), "validator", quorum,
                            f"batch {batch.batch_id}", (state.accounts[batch.platform], recipient))
    else:
        require_reviews(state, ReviewTarget("evidence", body["evidence"], None), "validator", quorum,
                        f"evidence {body['evidence']}", (recipient,))


def require_eligibility_reviews(state: State, methodology_id: str, version: int) -> None:
    """The expert reviews turning offset eligibility of a methodology version on needs."""
    require_reviews(state, ReviewTarget("methodology", methodology_id, version), "expert",
                    review_quorum(state, "eligibility"), f"methodology {methodology_id} version {version}")
