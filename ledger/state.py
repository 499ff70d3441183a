"""The registry's state: everything the rules need to judge the next event.

State is a projection of the log. The rules (ledger/rules.py, each type's in ledger/events/)
read it and `apply` is the only thing that changes it. Activity fingerprints are not held here: there can be billions, so the
rules ask an ActivityIndex (memory for replays, the database for the registry).
"""

from __future__ import annotations

import base64
import bisect
from dataclasses import dataclass, field
from typing import Any, Iterable, NamedTuple, Protocol

from nacl.signing import VerifyKey

from ledger.field_checks import key_id_of
from ledger.serials import SerialSet


@dataclass
class Key:
    key_id: str
    public_key: bytes
    roles: frozenset[str]
    label: str
    seq: int = -1  # the key.register event; -1 for root keys, which the trust file carries
    is_root: bool = False
    revoked: bool = False
    verify_key: VerifyKey = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.verify_key = VerifyKey(self.public_key)


def root_keys_from(encoded: Iterable[str]) -> dict[str, Key]:
    """The root keys (base64 public keys, as in the trust file), by key id."""
    keys = {}
    for text in encoded:
        public_key = base64.b64decode(text)
        keys[key_id_of(public_key)] = Key(key_id_of(public_key), public_key, frozenset(), "root key", is_root=True)
    return keys


@dataclass
class Account:
    account_id: str
    kind: str
    name: str
    region: str
    platform: str | None
    controllers: tuple[str, ...]
    seq: int = -1
    active: SerialSet = field(default_factory=SerialSet)
    retired: SerialSet = field(default_factory=SerialSet)
    cancelled: SerialSet = field(default_factory=SerialSet)


@dataclass
class Methodology:
    methodology_id: str
    versions: dict[int, dict[str, Any]]
    offset_eligible: bool

    @property
    def latest_version(self) -> int:
        return max(self.versions)


@dataclass
class Batch:
    batch_id: str
    platform: str
    methodology_id: str
    methodology_version: int
    period_start: str
    period_end: str
    count: int
    total_g: int
    root: str
    seq: int
    issuance_id: str | None = None


@dataclass
class Issuance:
    issuance_id: str
    seq: int
    account: str
    methodology_id: str
    vintage: int
    region: str
    amount_g: int
    start: int
    end: int
    # The methodology versions behind it (its batches' versions; for an evidence issuance the latest
    # version at the issuance): format 2 judges offset eligibility per version (spec section 6).
    methodology_versions: list[int] = field(default_factory=list)
    evidence: str | None = None  # the SHA-256 of its verification report, for an issuance without batches


class ReviewTarget(NamedTuple):
    """What a review judges (spec section 6, format 2): ("batch", batch_id, None), ("evidence",
    report hash, None) or ("methodology", methodology_id, version)."""
    kind: str
    id: str
    version: int | None


@dataclass
class Review:
    """An accepted review (format 2): one validator's or expert's verdict on a target."""
    review_id: str
    seq: int
    signer: str             # the key_id that signed it
    target_kind: str
    target_id: str
    target_version: int | None
    approved: bool          # verdict approved; else rejected

    @property
    def target(self) -> ReviewTarget:
        return ReviewTarget(self.target_kind, self.target_id, self.target_version)


@dataclass
class Retirement:
    retirement_id: str
    seq: int
    account: str
    amount_g: int
    purpose: str
    beneficiary: str
    serials: list[list[int]]
    used_by: str | None = None


@dataclass
class Surrender:
    surrender_id: str
    seq: int
    entity: str
    compliance_year: int
    allocation_g: int
    amount_g: int
    retirements: list[str]


@dataclass
class Claim:
    claim_id: str
    seq: int
    claimant: str
    subject_kind: str
    subject_name: str
    period_start: str
    period_end: str
    footprint_g: int
    retired_g: int
    retirements: list[str]


@dataclass
class Hold:
    """One accepted account.hold (format 2): it opens (held) or closes the case (account_id, case_id)."""
    hold_id: str
    seq: int
    account_id: str
    case_id: str
    held: bool
    reason: str


class SubjectDay(NamedTuple):
    """A format-2 subject's one date in the log, and what its records of one methodology_id (any
    version) credited on it: section 7.2's total_before and section 7.3's PRIVACY start from these."""
    occurred_on: str
    credited_g: int


class ActivityIndex(Protocol):
    """Which activity ids and fingerprints the log already holds; in format 2 also each subject's
    date and the grams credited to it per methodology_id on that date."""

    def known_activity_ids(self, activity_ids: list[str]) -> set[str]: ...

    def known_fingerprints(self, fingerprints: list[str]) -> set[str]: ...

    def subject_days(self, subjects: list[str], methodology_id: str) -> dict[str, SubjectDay]:
        """The logged format-2 subjects among these, each with its date and the grams of
        methodology_id credited to it on that date (0 if none)."""
        ...

    def add(self, batch_id: str, methodology_id: str, records: list["ActivityRecord"]) -> None: ...


@dataclass(frozen=True)
class ActivityRecord:
    activity_id: str
    fingerprint: str
    occurred_at: str | None  # format 1; None in format 2, whose records say only their date
    reduction_g: int
    subject: str
    data: bytes  # the exact JCS bytes, as in the batch's activity file
    occurred_on: str | None = None  # format 2: the record's (Beijing) date


class MemoryActivityIndex:
    def __init__(self) -> None:
        self.activity_ids: set[str] = set()
        self.fingerprints: set[str] = set()
        self.subject_dates: dict[str, str] = {}  # format 2: subject -> its one occurred_on
        self.credited_g: dict[tuple[str, str], int] = {}  # format 2: (subject, methodology_id) -> grams on that date

    def known_activity_ids(self, activity_ids: list[str]) -> set[str]:
        return self.activity_ids.intersection(activity_ids)

    def known_fingerprints(self, fingerprints: list[str]) -> set[str]:
        return self.fingerprints.intersection(fingerprints)

    def subject_days(self, subjects: list[str], methodology_id: str) -> dict[str, SubjectDay]:
        dates, credited = self.subject_dates, self.credited_g
        return {subject: SubjectDay(dates[subject], credited.get((subject, methodology_id), 0))
                for subject in subjects if subject in dates}

    def add(self, batch_id: str, methodology_id: str, records: list[ActivityRecord]) -> None:
        self.activity_ids.update(r.activity_id for r in records)
        self.fingerprints.update(r.fingerprint for r in records)
        if records and records[0].occurred_on is not None:
            add_subject_days(self.subject_dates, self.credited_g, methodology_id, records)


def add_subject_days(dates: dict[str, str], credited_g: dict[tuple[str, str], int], methodology_id: str,
                     records: list[ActivityRecord]) -> None:
    """Take an accepted format-2 batch's records into each subject's date and credited grams (a
    subject has one date: PRIVACY refused any batch that gave it a second)."""
    for r in records:
        assert r.occurred_on is not None, r.activity_id
        dates[r.subject] = r.occurred_on
        key = (r.subject, methodology_id)
        credited_g[key] = credited_g.get(key, 0) + r.reduction_g


@dataclass
class State:
    root_keys: dict[str, Key]
    origin: str | None = None
    log_format: int | None = None  # 1 or 2, set by the genesis (spec "Formats"); None before it
    rules: dict[str, Any] | None = None
    size: int = 0
    last_time: str | None = None
    next_serial: int = 0
    keys: dict[str, Key] = field(default_factory=dict)
    accounts: dict[str, Account] = field(default_factory=dict)
    methodologies: dict[str, Methodology] = field(default_factory=dict)
    batches: dict[str, Batch] = field(default_factory=dict)
    issuances: dict[str, Issuance] = field(default_factory=dict)
    issuance_starts: list[int] = field(default_factory=list)
    issuance_order: list[str] = field(default_factory=list)
    transfers: set[str] = field(default_factory=set)
    retirements: dict[str, Retirement] = field(default_factory=dict)
    cancellations: set[str] = field(default_factory=set)
    surrenders: dict[str, Surrender] = field(default_factory=dict)
    claims: dict[str, Claim] = field(default_factory=dict)
    offsets_g: dict[tuple[str, int], int] = field(default_factory=dict)
    requests: dict[tuple[str, str], int] = field(default_factory=dict)
    # What all accounts hold, kept by the types that move grams (ledger/events/credits.py): the registry's conservation
    # check after each group is then O(1) rather than a sum over every account.
    active_g: int = 0
    retired_g: int = 0
    cancelled_g: int = 0
    # Holds (format 2, ledger/events/accounts.py AccountHold): every accepted account.hold by hold_id,
    # and the cases open on each account (only accounts with one): such an account is held (FROZEN).
    holds: dict[str, Hold] = field(default_factory=dict)
    open_cases: dict[str, set[str]] = field(default_factory=dict)

    def record_hold(self, hold: Hold) -> None:
        """Open or close the hold's case (accepted, or loaded in log order)."""
        self.holds[hold.hold_id] = hold
        if hold.held:
            self.open_cases.setdefault(hold.account_id, set()).add(hold.case_id)
            return
        cases = self.open_cases[hold.account_id]
        cases.discard(hold.case_id)
        if not cases:
            del self.open_cases[hold.account_id]
    # Reviews (format 2; ledger/events/reviews.py): every accepted review by review_id, the ones of
    # each target in log order, and the evidence hashes already backing an issuance (-> its id).
    reviews: dict[str, Review] = field(default_factory=dict)
    reviews_of: dict[ReviewTarget, list[Review]] = field(default_factory=dict)
    issued_evidence: dict[str, str] = field(default_factory=dict)

    def offset_eligible(self, methodology_id: str, versions: Iterable[int]) -> bool:
        """The methodology part of serial eligibility (spec section 6): in format 1 the methodology's
        flag; in format 2 every version behind the serial is eligible, each by its own flag."""
        methodology = self.methodologies[methodology_id]
        if self.log_format != 2:
            return methodology.offset_eligible
        versions = list(versions)
        assert versions, f"an issuance of {methodology_id} names the versions behind it"
        return all(methodology.versions[v]["offset_eligible"] for v in versions)

    def signer(self, key_id: str) -> Key | None:
        return self.root_keys.get(key_id) or self.keys.get(key_id)

    def issuances_over(self, start: int, end: int) -> Iterable[Issuance]:
        """The issuances whose serial ranges meet [start, end)."""
        i = bisect.bisect_right(self.issuance_starts, start) - 1
        while 0 <= i < len(self.issuance_order):
            issuance = self.issuances[self.issuance_order[i]]
            if issuance.start >= end:
                return
            if issuance.end > start:
                yield issuance
            i += 1

    def add_issuance(self, issuance: Issuance) -> None:
        assert issuance.start == self.next_serial
        self.issuances[issuance.issuance_id] = issuance
        self.issuance_starts.append(issuance.start)
        self.issuance_order.append(issuance.issuance_id)
        self.next_serial = issuance.end
        if issuance.evidence is not None:
            self.issued_evidence.setdefault(issuance.evidence, issuance.issuance_id)

    def add_review(self, review: Review) -> None:
        self.reviews[review.review_id] = review
        self.reviews_of.setdefault(review.target, []).append(review)

    def count_held_g(self) -> None:
        """Set the running totals from the accounts (for a State loaded rather than applied)."""
        totals = self.totals_g()
        self.active_g, self.retired_g, self.cancelled_g = totals["active_g"], totals["retired_g"], totals["cancelled_g"]

    def grams_conserved(self) -> bool:
        return self.next_serial == self.active_g + self.retired_g + self.cancelled_g

    def totals_g(self) -> dict[str, int]:
        """Issued, active, retired and cancelled grams: issued always equals the other three.
        Summed over the accounts (O(accounts)), not taken from the running totals."""
        active = sum(a.active.size_g for a in self.accounts.values())
        retired = sum(a.retired.size_g for a in self.accounts.values())
        cancelled = sum(a.cancelled.size_g for a in self.accounts.values())
        return {"issued_g": self.next_serial, "active_g": active, "retired_g": retired, "cancelled_g": cancelled}
