"""Read-only queries over what is committed: the projection tables, the log and activity records.

Every answer comes from the database, so it shows only what is durable, and readers never wait
for the writer. Lists are filtered and paginated by seq: a page holds at most `limit` items and
scans at most MAX_SCAN_ROWS rows, and `next_after` tells where the next page starts (None when
the list is exhausted). Filters on indexed columns run in SQL; the others in Python over the scan.
"""

from __future__ import annotations

import bisect
import json
import threading
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Mapping, NamedTuple, Sequence

from sqlalchemy import ColumnElement, Table, func, select, text
from sqlalchemy.engine import Connection, Row

from ledger import batch_blocks, eligibility_index, merkle, page_indexes, register_totals, serial_index
from ledger.errors import StorageError
from ledger.events.reviews import REVIEWER_ROLES
from ledger.leaf import stored_log_format
from ledger.projections import key_from_row
from ledger.register_totals import RegisterTotals
from ledger.state import Key, ReviewTarget
from ledger.store import (
    Store, accounts_projection, activities, batches_projection, claims_projection, events, holds_projection,
    issuances_projection, keys_projection, methodologies_projection, retirements_projection, reviews_projection,
    surrenders_projection,
)

MAX_PAGE_ITEMS = 1_000
MAX_SCAN_ROWS = 20_000
_SCAN_CHUNK = 500
_UNFILLED = ("the register totals, the serial index and the batches' block hashes are not filled yet: the "
             "registry's writer fills them from the log when it first starts (`puhui serve`, or any write)")
_IN_CHUNK = 500  # ids per SQL IN (...)


@dataclass(frozen=True)
class Page:
    items: list[dict[str, Any]]
    next_after: int | None

    def as_json(self) -> dict[str, Any]:
        return {"items": self.items, "next_after": self.next_after}


@dataclass(frozen=True)
class LoggedRecord:
    """An activity record in the activities index: its batch, its leaf index there, its exact bytes."""
    batch_id: str
    position: int
    record: bytes


@dataclass(frozen=True)
class LoggedBatch:
    """A batch as the batches projection holds it, with the seq of the issuance it backs."""
    body: dict[str, Any]  # the activity.batch body fields, its seq and issuance_id (None until issued)
    issuance_seq: int | None  # None until issued


@dataclass(frozen=True)
class IssuanceSpan:
    issuance_id: str
    methodology_id: str
    vintage: int
    region: str
    start: int
    end: int


class IssuanceIndex:
    """Issuances by serial range, cached: issuances never change, and arrive in serial order."""

    def __init__(self) -> None:
        self._starts: list[int] = []
        self._spans: list[IssuanceSpan] = []
        self._last_seq = -1
        self._lock = threading.Lock()

    def refresh(self, conn: Connection) -> None:
        with self._lock:
            rows = conn.execute(select(issuances_projection.c.seq, issuances_projection.c.data)
                                .where(issuances_projection.c.seq > self._last_seq)
                                .order_by(issuances_projection.c.seq)).all()
            for row in rows:
                d = json.loads(row.data)
                self._spans.append(IssuanceSpan(d["issuance_id"], d["methodology_id"], d["vintage"], d["region"],
                                                d["start"], d["end"]))
                self._starts.append(d["start"])
                self._last_seq = row.seq

    def split(self, start: int, end: int) -> Iterator[tuple[IssuanceSpan, int, int]]:
        """[start, end) cut at issuance boundaries: (issuance, piece start, piece end)."""
        i = max(bisect.bisect_right(self._starts, start) - 1, 0)
        while i < len(self._spans) and self._spans[i].start < end:
            span = self._spans[i]
            low, high = max(start, span.start), min(end, span.end)
            if low < high:
                yield span, low, high
            i += 1


def _sources(index: IssuanceIndex, ranges: list[list[int]]) -> list[dict[str, Any]]:
    """Which issuances the serials come from: methodology, vintage and region of each part."""
    by_issuance: dict[str, dict[str, Any]] = {}
    for start, end in ranges:
        for span, low, high in index.split(start, end):
            entry = by_issuance.setdefault(span.issuance_id, {
                "issuance_id": span.issuance_id, "methodology_id": span.methodology_id, "vintage": span.vintage,
                "region": span.region, "amount_g": 0, "serials": []})
            entry["serials"].append([low, high])
            entry["amount_g"] += high - low
    return list(by_issuance.values())


class ReviewStatus(NamedTuple):
    """A review target's status against review_quorum (format 2, spec section 6 "Reviews"), as of
    now: the distinct keys whose approval counts, the quorum, and whether a counting key rejected it."""
    approved: int
    quorum: int
    rejected: bool

    def as_json(self) -> dict[str, Any]:
        return {"approved": self.approved, "quorum": self.quorum, "rejected": self.rejected}


class SignerVerdict(NamedTuple):
    """One key's verdict on a target (a key that both approved and rejected it has two)."""
    signer: str
    approved: bool


@dataclass(frozen=True)
class TargetReviewers:
    """Who counts for one target now: the keys holding its reviewer role, active, and the keys
    whose approvals do not count (a batch's platform controllers)."""
    counting: frozenset[str]
    not_independent: frozenset[str]

    def counts(self, signer: str, approved: bool) -> bool:
        return signer in self.counting and not (approved and signer in self.not_independent)

    def status(self, verdicts: Iterable[SignerVerdict], quorum: int) -> ReviewStatus:
        verdicts = list(verdicts)
        approving = {v.signer for v in verdicts if v.approved and self.counts(v.signer, True)}
        return ReviewStatus(len(approving), quorum, any(not v.approved and self.counts(v.signer, False) for v in verdicts))


def _repeat_of(first_seq: int, seq: int) -> int | None:
    """The seq of a key's earlier review of the same verdict, which alone counts; None for the first."""
    return None if seq == first_seq else first_seq


_RULE_TYPES = ("registry.genesis", "registry.rules")
_QUORUM_KIND = {"batch": "issuance", "evidence": "issuance", "methodology": "eligibility"}


@dataclass(frozen=True)
class SerialHolding:
    """Where one serial is: the issuance it comes from, the account holding it in which state, and
    the event that put it there (its issuance, or the transfer, retirement or cancellation)."""
    serial: int
    issuance: IssuanceSpan
    account: str
    state: str  # active, retired or cancelled
    seq: int
    event_ref: str  # that event's id (issuance_id, transfer_id, retirement_id, cancellation_id)


class Queries:
    def __init__(self, store: Store):
        self.store = store
        self._issuances = IssuanceIndex()
        self._page_indexes_exist = False
        self._log_format: int | None = None
        self._rules: dict[str, Any] | None = None
        self._rules_read_to = 0  # the log size up to which the rules in force are known
        self._rules_lock = threading.Lock()

    def log_format(self) -> int:
        """The log's format, from its genesis (never changes once written)."""
        if self._log_format is None:
            with self.store.engine.connect() as conn:
                genesis = self.store.leaf(conn, 0)
            if genesis is None:
                return 1
            self._log_format = stored_log_format(genesis)
        return self._log_format

    def rules(self) -> dict[str, Any] | None:
        """The rules in force: the latest registry.genesis or registry.rules event's. Kept, and
        looked for only among the events committed since the last call."""
        with self._rules_lock, self.store.engine.connect() as conn:
            size = self.store.size(conn)
            if size > self._rules_read_to:
                seq = conn.execute(select(events.c.seq).where(events.c.seq >= self._rules_read_to,
                                                              events.c.type.in_(_RULE_TYPES))
                                   .order_by(events.c.seq.desc()).limit(1)).scalar()
                if seq is not None:
                    self._rules = json.loads(self.store.leaf(conn, seq))["body"]["rules"]
                self._rules_read_to = size
            return self._rules

    def _quorum(self, target_kind: str) -> int:
        rules = self.rules()
        return 0 if rules is None else rules["review_quorum"][_QUORUM_KIND[target_kind]]

    # -- the log ---------------------------------------------------------------------------------

    def leaves(self, start: int, limit: int) -> list[bytes]:
        with self.store.engine.connect() as conn:
            return [data for _, data in self.store.leaves(conn, start, start + limit)]

    def introduced_by(self, event_type: str, event_id: str) -> dict[str, Any] | None:
        """The body of the event of this type that introduced this id (its `ref`), or None. The ref
        column has no index: a caller asks only for an id its state says is in use."""
        with self.store.engine.connect() as conn:
            leaf = conn.execute(select(events.c.leaf).where(events.c.type == event_type, events.c.ref == event_id)
                                .limit(1)).scalar()
        return None if leaf is None else json.loads(leaf)["body"]

    def event_time(self, seq: int) -> str | None:
        """The registry time of the event at seq (None if not committed)."""
        with self.store.engine.connect() as conn:
            return conn.execute(select(events.c.time).where(events.c.seq == seq)).scalar()

    def first_seq_at(self, time: str) -> int:
        """The first seq whose registry time is at or after `time` (a spec time or a prefix of one,
        such as a date: fixed-width UTC texts order as their instants), or the log's size if none.
        The log's times never decrease (spec section 2): a binary search over seq, O(log size) key
        lookups."""
        with self.store.engine.connect() as conn:
            low, high = 0, self.store.size(conn)
            while low < high:
                middle = (low + high) // 2
                if conn.execute(select(events.c.time).where(events.c.seq == middle)).scalar_one() < time:
                    low = middle + 1
                else:
                    high = middle
        return low

    def key_register_seq(self, key_id: str) -> int | None:
        """The seq of the key.register event of a registered key (None for root or unknown keys)."""
        with self.store.engine.connect() as conn:
            return conn.execute(select(keys_projection.c.seq).where(keys_projection.c.key_id == key_id)).scalar()

    def registered_key_ids(self, since_seq: int = 0) -> list[str]:
        """The ids of the keys registered at seq `since_seq` or later, as committed (a key's row
        keeps the seq of its key.register; revocations do not move it)."""
        with self.store.engine.connect() as conn:
            return list(conn.execute(select(keys_projection.c.key_id).where(keys_projection.c.seq >= since_seq)).scalars())

    def registered_key(self, key_id: str) -> Key | None:
        """A registered key as committed (root keys are in the trust file, not here)."""
        with self.store.engine.connect() as conn:
            row = conn.execute(select(keys_projection).where(keys_projection.c.key_id == key_id)).first()
        if row is None:
            return None
        return key_from_row(row.key_id, row.seq, json.loads(row.data))

    def methodology_params(self, methodology_id: str, version: int) -> dict[str, Any] | None:
        """A registered methodology version's params as committed (a version's params never change
        once registered), or None when that version is not registered."""
        with self.store.engine.connect() as conn:
            data = conn.execute(select(methodologies_projection.c.data)
                                .where(methodologies_projection.c.methodology_id == methodology_id)).scalar()
        found = None if data is None else json.loads(data)["versions"].get(str(version))
        return None if found is None else found["params"]

    def known_activity_ids(self, activity_ids: list[str]) -> set[str]:
        """Those of these activity ids that the committed log holds."""
        with self.store.engine.connect() as conn:
            return self.store.existing(conn, "activity_id", activity_ids)

    # -- accounts --------------------------------------------------------------------------------

    def account(self, account_id: str) -> dict[str, Any] | None:
        with self.store.engine.connect() as conn:
            row = conn.execute(select(accounts_projection).where(accounts_projection.c.account_id == account_id)).first()
        if row is None:
            return None
        d = json.loads(row.data)
        answer = {"account_id": row.account_id, "kind": row.kind, "name": d["name"], "region": row.region,
                  "platform": d["platform"], "controllers": d["controllers"], "seq": row.seq,
                  "active_g": row.active_g, "retired_g": row.retired_g, "cancelled_g": row.cancelled_g,
                  "serials": {"active": d["active"], "retired": d["retired"], "cancelled": d["cancelled"]}}
        if self.log_format() == 2:
            answer["held"] = [case["case_id"] for case in self._cases(account_id) if case["open"]]
        return answer

    def holds(self, account_id: str) -> dict[str, Any] | None:
        """An account's cases (format 2, account.hold), open and closed, each with its hold events
        in log order; None for an unknown account."""
        with self.store.engine.connect() as conn:
            known = conn.execute(select(accounts_projection.c.seq)
                                 .where(accounts_projection.c.account_id == account_id)).first()
        if known is None:
            return None
        cases = self._cases(account_id)
        return {"account_id": account_id, "held": any(case["open"] for case in cases), "cases": cases}

    def _cases(self, account_id: str) -> list[dict[str, Any]]:
        """The account's cases by the seq that first opened them; a case is open after a held
        event and until a release. An admin writes every hold: an account has few."""
        t = holds_projection
        cases: dict[str, dict[str, Any]] = {}
        with self.store.engine.connect() as conn:
            rows = conn.execute(select(t.c.seq, t.c.data, events.c.time).join(events, events.c.seq == t.c.seq)
                                .where(t.c.account_id == account_id).order_by(t.c.seq)).all()
        for row in rows:
            d = json.loads(row.data)
            case = cases.setdefault(d["case_id"], {"case_id": d["case_id"], "open": False, "holds": []})
            case["open"] = d["held"]
            case["holds"].append({"hold_id": d["hold_id"], "seq": row.seq, "time": row.time, "held": d["held"],
                                  "reason": d["reason"]})
        return list(cases.values())

    def account_by_issuance(self, account_id: str) -> dict[str, Any] | None:
        """The account's serials split by the issuance they come from, per state."""
        with self.store.engine.connect() as conn:
            row = conn.execute(select(accounts_projection.c.data).where(accounts_projection.c.account_id == account_id)).first()
            if row is None:
                return None
            self._issuances.refresh(conn)  # after the account: covers every issuance its serials come from
        d = json.loads(row.data)
        by_issuance: dict[str, dict[str, Any]] = {}
        for state in ("active", "retired", "cancelled"):
            for source in _sources(self._issuances, d[state]):
                entry = by_issuance.setdefault(source["issuance_id"], {
                    **{k: source[k] for k in ("issuance_id", "methodology_id", "vintage", "region")},
                    "active_g": 0, "retired_g": 0, "cancelled_g": 0,
                    "serials": {"active": [], "retired": [], "cancelled": []}})
                entry[f"{state}_g"] += source["amount_g"]
                entry["serials"][state] = source["serials"]
        return {"account_id": account_id, "issuances": list(by_issuance.values())}

    def serial(self, serial: int) -> SerialHolding | None:
        """The issuance of a serial and its holder, or None for a serial not issued: from the serial
        index (ledger.serial_index), a few reads by primary key whatever the number of accounts."""
        with self.store.engine.connect() as conn:
            self._check_page_indexes(conn)
            found = serial_index.lookup(conn, serial)
            if found is None:
                return None
            refs = dict(conn.execute(select(events.c.seq, events.c.ref)
                                     .where(events.c.seq.in_({found.seq, found.issuance_seq}))).all())
            data = conn.execute(select(issuances_projection.c.data).where(
                issuances_projection.c.issuance_id == refs[found.issuance_seq])).scalar_one()
        d = json.loads(data)
        issuance = IssuanceSpan(d["issuance_id"], d["methodology_id"], d["vintage"], d["region"], d["start"], d["end"])
        return SerialHolding(serial, issuance, found.account, found.state, found.seq, refs[found.seq])

    # -- aggregates ------------------------------------------------------------------------------

    def totals(self) -> RegisterTotals:
        """Issued (by methodology), active, retired (by purpose) and cancelled grams and the flow by
        month, of the committed log: the register_totals rows each commit moves, read in one statement."""
        with self.store.engine.connect() as conn:
            self._check_page_indexes(conn)
            totals = register_totals.totals_from_rows(register_totals.stored_rows(conn))
        if totals is None:
            raise StorageError(_UNFILLED)
        return totals

    def _check_page_indexes(self, conn: Connection) -> None:
        """A database from before the page indexes has none until its writer first starts."""
        if not self._page_indexes_exist:
            if not page_indexes.tables_exist(conn):
                raise StorageError(_UNFILLED)
            self._page_indexes_exist = True

    # -- lists -----------------------------------------------------------------------------------

    def issuances(self, *, account: str | None = None, methodology_id: str | None = None, vintage: int | None = None,
                  region: str | None = None, after: int = -1, limit: int = 100) -> Page:
        t = issuances_projection
        return self._scan(t, [t.c.account == account] if account else [], _matching(
            methodology_id=methodology_id, vintage=vintage, region=region), after, limit)

    def retirements(self, *, account: str | None = None, purpose: str | None = None, methodology_id: str | None = None,
                    vintage: int | None = None, region: str | None = None, used: bool | None = None,
                    after: int = -1, limit: int = 100) -> Page:
        """The public disclosure list: purpose, beneficiary, serials, and where the serials come from."""
        t = retirements_projection
        where = [c for c in (t.c.account == account if account else None,
                             t.c.purpose == purpose if purpose else None) if c is not None]
        source_matches = _matching(methodology_id=methodology_id, vintage=vintage, region=region)

        def wanted(d: dict[str, Any]) -> bool:
            if used is not None and (d["used_by"] is not None) != used:
                return False
            by_source = methodology_id is not None or vintage is not None or region is not None
            return not by_source or any(source_matches(s) for s in d["sources"])
        page = self._scan(t, where, wanted, after, limit, refresh_issuances=True,
                          prepare=lambda _, d: {**d, "sources": _sources(self._issuances, d["serials"])})
        if self.log_format() == 2:  # the issuances the retirement chose (null: any), from its event's body
            with self.store.engine.connect() as conn:
                bodies = _bodies_at(conn, [item["seq"] for item in page.items])
            for item in page.items:
                item["issuances"] = bodies[item["seq"]]["issuances"]
        return page

    def surrenders(self, *, entity: str | None = None, compliance_year: int | None = None,
                   after: int = -1, limit: int = 100) -> Page:
        t = surrenders_projection
        return self._scan(t, [t.c.entity == entity] if entity else [], _matching(compliance_year=compliance_year),
                          after, limit)

    def claims(self, *, claimant: str | None = None, after: int = -1, limit: int = 100) -> Page:
        t = claims_projection
        return self._scan(t, [t.c.claimant == claimant] if claimant else [], _matching(), after, limit,
                          prepare=lambda _, d: _claim_json(d))

    def methodologies(self, *, sector: str | None = None, offset_eligible: bool | None = None,
                      after: int = -1, limit: int = 100) -> Page:
        def wanted(d: dict[str, Any]) -> bool:
            return (sector is None or d["versions"][-1]["sector"] == sector) and (
                offset_eligible is None or d["offset_eligible"] == offset_eligible)
        page = self._scan(methodologies_projection, [], wanted, after, limit, prepare=_methodology_json)
        for item in page.items:
            self._with_eligibility_reviews(item)
        return page

    def methodology_ids(self) -> list[str]:
        """Every registered methodology's id (for naming the close ones to a mistyped id)."""
        with self.store.engine.connect() as conn:
            return list(conn.execute(select(methodologies_projection.c.methodology_id)).scalars())

    def methodology(self, methodology_id: str) -> dict[str, Any] | None:
        item = self._one(methodologies_projection, methodology_id, _methodology_json)
        return None if item is None else self._with_eligibility_reviews(item)

    def _with_eligibility_reviews(self, item: dict[str, Any]) -> dict[str, Any]:
        """Format 2: each version of a methodology (as its list shows it) with the status of its
        eligibility reviews, the experts' (spec section 6)."""
        if self.log_format() != 2:
            return item
        t = reviews_projection
        quorum = self._quorum("methodology")
        with self.store.engine.connect() as conn:
            rows = conn.execute(select(t.c.target_version, t.c.signer, t.c.approved)
                                .where(t.c.target_id == item["methodology_id"], t.c.target_kind == "methodology")
                                .group_by(t.c.target_version, t.c.signer, t.c.approved)).all()
            reviewers = _reviewers(conn, {row.signer for row in rows}, "expert", frozenset())
        for version in item["versions"]:
            verdicts = [SignerVerdict(row.signer, bool(row.approved)) for row in rows
                        if row.target_version == version["version"]]
            version["eligibility_reviews"] = reviewers.status(verdicts, quorum).as_json()
        return item

    def eligibility_history(self, methodology_id: str) -> list[eligibility_index.EligibilityChange]:
        """The events that set a methodology's offset eligibility, in log order: each version's
        methodology.register and every methodology.eligibility, from their index
        (ledger.eligibility_index), one indexed read."""
        with self.store.engine.connect() as conn:
            self._check_page_indexes(conn)
            return eligibility_index.history(conn, methodology_id)

    # -- reviews and batches (format 2) ----------------------------------------------------------

    def reviews(self, target: ReviewTarget, *, after: int = -1, limit: int = 100) -> dict[str, Any] | None:
        """Every review of one target by seq (a page of them) with whether each counts now, and the
        target's status against review_quorum; None for a batch or methodology version not in the
        log (any hash may be reviewed as evidence).

        Counting now: the key holds the reviewer role and is active; a batch's approvals do not
        count from a controller of its platform account. The issuance's recipient is known only at
        the issuance, which judges its controllers' approvals then."""
        limit = max(1, min(limit, MAX_PAGE_ITEMS))
        t = reviews_projection
        where = [t.c.target_kind == target.kind, t.c.target_id == target.id,
                 t.c.target_version == target.version if target.version is not None else t.c.target_version.is_(None)]
        quorum = self._quorum(target.kind)
        with self.store.engine.connect() as conn:
            not_independent = self._not_independent(conn, target)
            if not_independent is None:
                return None
            # one key counts once per target (spec section 6): its first review of a verdict
            first_seq = {(row.signer, bool(row.approved)): row.first_seq for row in conn.execute(
                select(t.c.signer, t.c.approved, func.min(t.c.seq).label("first_seq"))
                .where(*where).group_by(t.c.signer, t.c.approved))}
            verdicts = [SignerVerdict(signer, approved) for signer, approved in first_seq]
            reviewers = _reviewers(conn, {v.signer for v in verdicts}, REVIEWER_ROLES[target.kind], not_independent)
            rows = conn.execute(select(t.c.review_id, t.c.seq, t.c.signer, t.c.approved, events.c.time, events.c.leaf)
                                .join(events, events.c.seq == t.c.seq).where(*where, t.c.seq > after)
                                .order_by(t.c.seq).limit(limit + 1)).all()
        items = [{"review_id": row.review_id, "seq": row.seq, "time": row.time, "signer": row.signer,
                  "verdict": "approved" if row.approved else "rejected",
                  "report_sha256": json.loads(row.leaf)["body"]["report_sha256"],
                  "counts": reviewers.counts(row.signer, bool(row.approved)) and row.seq == first_seq[row.signer, bool(row.approved)],
                  "repeat_of": _repeat_of(first_seq[row.signer, bool(row.approved)], row.seq)} for row in rows[:limit]]
        return {"target": target._asdict(), "status": reviewers.status(verdicts, quorum).as_json(), "items": items,
                "next_after": items[-1]["seq"] if len(rows) > limit else None}

    def _not_independent(self, conn: Connection, target: ReviewTarget) -> frozenset[str] | None:
        """The keys whose approval of this target does not count (a batch's platform controllers),
        or None when the target is not in the log."""
        if target.kind == "batch":
            batch = _batch_bodies(conn, [target.id]).get(target.id)
            if batch is None:
                return None
            platform = conn.execute(select(accounts_projection.c.data)
                                    .where(accounts_projection.c.account_id == batch["platform"])).scalar_one()
            return frozenset(json.loads(platform)["controllers"])
        if target.kind == "methodology":
            row = conn.execute(select(methodologies_projection.c.data)
                               .where(methodologies_projection.c.methodology_id == target.id)).scalar()
            if row is None or str(target.version) not in json.loads(row)["versions"]:
                return None
        return frozenset()

    def batch(self, batch_id: str) -> dict[str, Any] | None:
        """An activity batch: its body's fields, seq and time, the issuance it backs (null until
        issued); in format 2 also the status of its issuance reviews (as `reviews` judges it)."""
        item = self._one(batches_projection, batch_id, lambda _, d: d)
        if item is None:
            return None
        item["issued"] = item["issuance_id"] is not None
        if self.log_format() == 2:
            reviews = self.reviews(ReviewTarget("batch", batch_id, None), limit=1)
            assert reviews is not None, batch_id  # batches are never removed
            item["reviews"] = reviews["status"]
        return item

    def bodies_at(self, seqs: Iterable[int]) -> dict[int, dict[str, Any]]:
        """The bodies of the committed events at these seqs (a field that no projection keeps,
        such as an issuance's batches), by seq; one key lookup each."""
        wanted = sorted(set(seqs))
        found: dict[int, dict[str, Any]] = {}
        with self.store.engine.connect() as conn:
            for i in range(0, len(wanted), _IN_CHUNK):
                found.update((row.seq, json.loads(row.leaf)["body"]) for row in conn.execute(
                    select(events.c.seq, events.c.leaf).where(events.c.seq.in_(wanted[i:i + _IN_CHUNK]))))
        return found

    def reviews_of(self, targets: Iterable[ReviewTarget]) -> dict[ReviewTarget, list[dict[str, Any]]]:
        """Every review of each of these batch or evidence targets, by seq: review_id, seq, signer,
        verdict (one query for a page of issuances; `reviews` judges whether each counts)."""
        t = reviews_projection
        wanted = {(target.kind, target.id) for target in targets if target.version is None}
        found: dict[ReviewTarget, list[dict[str, Any]]] = {ReviewTarget(kind, id_, None): [] for kind, id_ in wanted}
        ids = sorted({id_ for _, id_ in wanted})
        with self.store.engine.connect() as conn:
            for i in range(0, len(ids), _IN_CHUNK):
                for row in conn.execute(select(t.c.target_kind, t.c.target_id, t.c.review_id, t.c.seq, t.c.signer,
                                               t.c.approved)
                                        .where(t.c.target_id.in_(ids[i:i + _IN_CHUNK]), t.c.target_version.is_(None))
                                        .order_by(t.c.seq)):
                    reviews = found.get(ReviewTarget(row.target_kind, row.target_id, None))
                    if reviews is not None:
                        reviews.append({"review_id": row.review_id, "seq": row.seq, "signer": row.signer,
                                        "verdict": "approved" if row.approved else "rejected"})
        return found

    def holds_register(self, *, account: str | None = None, held: bool | None = None, after: int = -1,
                       limit: int = 100) -> Page:
        """Every account.hold (format 2) in log order: hold_id, account_id, case_id, held, reason."""
        t = holds_projection
        return self._scan(t, [t.c.account_id == account] if account else [], _matching(held=held), after, limit)

    def claim(self, claim_id: str) -> dict[str, Any] | None:
        """One claim as the claims list shows it: its body's fields, seq and the time of its event."""
        return self._one(claims_projection, claim_id, lambda _, d: _claim_json(d))

    def retirements_by_id(self, retirement_ids: list[str]) -> list[dict[str, Any]]:
        """These retirements in this order (unknown ids left out), as the retirements list shows them."""
        t = retirements_projection
        found: dict[str, dict[str, Any]] = {}
        with self.store.engine.connect() as conn:
            for i in range(0, len(retirement_ids), _IN_CHUNK):
                found.update((row.retirement_id, {**json.loads(row.data), "seq": row.seq, "time": row.time})
                             for row in conn.execute(select(t.c.retirement_id, t.c.seq, t.c.data, events.c.time)
                                                     .join(events, events.c.seq == t.c.seq)
                                                     .where(t.c.retirement_id.in_(retirement_ids[i:i + _IN_CHUNK]))))
            self._issuances.refresh(conn)  # after the rows: covers every issuance their serials come from
        return [{**found[r], "sources": _sources(self._issuances, found[r]["serials"])}
                for r in retirement_ids if r in found]

    def retirement_seqs(self, retirement_ids: Iterable[str]) -> dict[str, int]:
        """The seq of each logged retirement among these ids (unknown ids are left out)."""
        t = retirements_projection
        with self.store.engine.connect() as conn:
            return _by_key(conn, t, retirement_ids, t.c.seq)

    def _one(self, table: Table, key: str, prepare: Callable[[str, dict[str, Any]], dict[str, Any]]) -> dict[str, Any] | None:
        """One row of a projection by its key, as its list shows it: prepared, with seq and its event's time."""
        column = table.primary_key.columns.values()[0]
        with self.store.engine.connect() as conn:
            row = conn.execute(select(table.c.seq, table.c.data, events.c.time).join(events, events.c.seq == table.c.seq)
                               .where(column == key)).first()
        if row is None:
            return None
        return {**prepare(key, json.loads(row.data)), "seq": row.seq, "time": row.time}

    def _scan(self, table: Table, where: list[ColumnElement[bool]], wanted: Callable[[dict[str, Any]], bool],
              after: int, limit: int, *, refresh_issuances: bool = False,
              prepare: Callable[[str, dict[str, Any]], dict[str, Any]] | None = None) -> Page:
        limit = max(1, min(limit, MAX_PAGE_ITEMS))
        key = table.primary_key.columns.values()[0]
        items: list[dict[str, Any]] = []
        cursor, scanned = after, 0
        # The first chunk is what an unfiltered page needs (one more, to know whether it ended);
        # each next one twice as large, for filters that match few rows.
        chunk = min(limit + 1, _SCAN_CHUNK)
        with self.store.engine.connect() as conn:
            while scanned < MAX_SCAN_ROWS:
                rows = conn.execute(select(key, table.c.seq, table.c.data, events.c.time)
                                    .join(events, events.c.seq == table.c.seq)
                                    .where(*where, table.c.seq > cursor).order_by(table.c.seq).limit(chunk)).all()
                if refresh_issuances:
                    self._issuances.refresh(conn)  # after the rows: covers every issuance they refer to
                for row in rows:
                    cursor, scanned = row.seq, scanned + 1
                    d = json.loads(row.data)
                    d = prepare(row[0], d) if prepare else d
                    if wanted(d):
                        items.append({**d, "seq": row.seq, "time": row.time})
                        if len(items) == limit:
                            return Page(items, cursor)
                if len(rows) < chunk:
                    return Page(items, None)
                chunk = min(2 * chunk, _SCAN_CHUNK)
        return Page(items, cursor)

    # -- activity records ------------------------------------------------------------------------

    def activity_proof(self, activity_id: str) -> dict[str, Any] | None:
        """An activity record and its RFC 9162 inclusion proof in its batch's root (spec section 7),
        from the batch's block hashes and the record's block (ledger.batch_blocks): at most 256
        records read and hashed, however large the batch."""
        with self.store.engine.connect() as conn:
            row = _activity_row(conn, activity_id)
            if row is None:
                return None
            self._check_page_indexes(conn)
            batch = _batch_bodies(conn, [row.batch_id])[row.batch_id]
            record = bytes(row.record)
            proof = batch_blocks.read_inclusion_proof(conn, row.batch_id, row.position, batch["count"], record,
                                                      bytes.fromhex(batch["root"]))
        return {"activity_id": activity_id, "batch_id": row.batch_id, "batch_seq": batch["seq"],
                "batch_root": batch["root"], "record": record.decode("utf-8"),
                "inclusion": merkle.inclusion_json(proof.position, proof.size, proof.hashes)}

    def batch_inclusion_proofs(self, batch: Mapping[str, Any], records: Sequence[batch_blocks.PositionedRecord]
                               ) -> list[batch_blocks.InclusionProof]:
        """The inclusion proofs of these records of a logged batch (its body: batch_id, count,
        root), by batch_blocks.read_inclusion_proofs: each checked against the root."""
        with self.store.engine.connect() as conn:
            self._check_page_indexes(conn)
            return batch_blocks.read_inclusion_proofs(conn, batch["batch_id"], batch["count"],
                                                      bytes.fromhex(batch["root"]), records)

    def activities_of(self, subject: str, *, after: str = "", limit: int = 100) -> dict[str, Any]:
        """The activity ids recorded for one pseudonymous subject, by activity_id."""
        limit = max(1, min(limit, MAX_PAGE_ITEMS))
        with self.store.engine.connect() as conn:
            rows = conn.execute(select(activities.c.activity_id, activities.c.batch_id, activities.c.occurred_at,
                                       activities.c.reduction_g)
                                .where(activities.c.subject == subject, activities.c.activity_id > after)
                                .order_by(activities.c.activity_id).limit(limit)).all()
        items = [{"activity_id": r.activity_id, "batch_id": r.batch_id, "occurred_at": r.occurred_at,
                  "reduction_g": r.reduction_g} for r in rows]
        return {"items": items, "next_after": items[-1]["activity_id"] if len(items) == limit else None}

    def activity_record(self, activity_id: str) -> LoggedRecord | None:
        """A logged activity record: its batch, its leaf index in that batch and its exact bytes."""
        with self.store.engine.connect() as conn:
            row = _activity_row(conn, activity_id)
        return None if row is None else LoggedRecord(row.batch_id, row.position, bytes(row.record))

    def subject_records(self, subject: str, *, limit: int) -> list[LoggedRecord]:
        """At most `limit` activity records of one pseudonymous subject, by batch_id then leaf index:
        read from the activities index, never whole batches."""
        return self.subjects_records([subject], limit=limit)

    def subjects_records(self, subjects: Sequence[str], *, limit: int) -> list[LoggedRecord]:
        """At most `limit` activity records of these subjects (a person's daily pseudonyms), by
        subject, batch_id then leaf index: one statement over the activities index for every
        _IN_CHUNK subjects, never whole batches."""
        wanted, found = sorted(set(subjects)), []
        with self.store.engine.connect() as conn:
            for i in range(0, len(wanted), _IN_CHUNK):
                found += conn.execute(select(activities.c.batch_id, activities.c.position, activities.c.record)
                                      .where(activities.c.subject.in_(wanted[i:i + _IN_CHUNK]))
                                      .order_by(activities.c.subject, activities.c.batch_id, activities.c.position)
                                      .limit(limit - len(found))).all()
                if len(found) >= limit:
                    break
        return [LoggedRecord(row.batch_id, row.position, bytes(row.record)) for row in found]

    def batch_records(self, batch_id: str) -> list[bytes]:
        """Every record of a batch, exact bytes in root order (empty for an unknown batch)."""
        with self.store.engine.connect() as conn:
            return list(self.store.batch_records(conn, batch_id))

    def batches_by_id(self, batch_ids: Iterable[str]) -> dict[str, LoggedBatch]:
        """The logged batches among these ids (unknown ids are left out), each with the seq of the
        issuance it backs."""
        with self.store.engine.connect() as conn:
            bodies = _batch_bodies(conn, batch_ids)
            issuance_seqs = _by_key(conn, issuances_projection, (b["issuance_id"] for b in bodies.values()
                                                                 if b.get("issuance_id")), issuances_projection.c.seq)
        return {batch_id: LoggedBatch(body, issuance_seqs.get(body.get("issuance_id")))
                for batch_id, body in bodies.items()}


class LoggedCredit(NamedTuple):
    """One logged record's grams for its subject at its time (ActivityLookups.chunk)."""
    subject: str
    occurred_at: str
    reduction_g: int


class CreditsAsked(NamedTuple):
    """The logged records of these subjects under a methodology that occurred in [start, end) (spec
    times); start and end None: whenever (format 2: a daily pseudonym has one date by construction)."""
    subjects: list[str]
    methodology_id: str
    start: str | None
    end: str | None


class LoggedInChunk(NamedTuple):
    """What the log already holds for a chunk of records about to be ingested."""
    activity_ids: list[str]  # the chunk's activity ids that are logged
    fingerprints: list[str]  # the chunk's fingerprints that are logged
    credits: list[LoggedCredit]  # as asked (CreditsAsked), or none


class ActivityLookups:
    """Many values looked up in the activities table at once, for ingestion: one query per question,
    each over the table's indexes (the primary key, the unique fingerprint, subject + methodology +
    time), with the values as one parameter (a JSON array that SQLite reads with json_each, a text
    array in PostgreSQL)."""

    def __init__(self, store: Store):
        self._store = store
        if store.dialect == "sqlite":
            values, self._encode = "(SELECT value FROM json_each(:values))", _json_array
        else:
            values, self._encode = "(SELECT unnest(CAST(:values AS text[])))", list
        self._ids_sql = text(f"SELECT activity_id FROM activities WHERE activity_id IN {values}")
        self._fingerprints_sql = text(f"SELECT fingerprint FROM activities WHERE fingerprint IN {values}")
        self._subject_credits_sql = text(
            f"SELECT subject, occurred_at, reduction_g FROM activities WHERE subject IN {values}"
            " AND methodology_id = :methodology_id")
        self._credits_sql = text(f"{self._subject_credits_sql.text} AND occurred_at >= :start AND occurred_at < :end")

    def chunk(self, activity_ids: list[str], fingerprints: list[str], asked: CreditsAsked | None) -> LoggedInChunk:
        """Which of these activity ids and fingerprints are logged, and the credits asked (if any).
        Identifiers, pseudonyms and hex only: _json_array does not escape."""
        encode = self._encode
        with self._store.engine.connect() as conn:
            ids = list(conn.execute(self._ids_sql, {"values": encode(activity_ids)}).scalars())
            found = list(conn.execute(self._fingerprints_sql, {"values": encode(fingerprints)}).scalars())
            credits = [] if asked is None else [LoggedCredit._make(row) for row in conn.execute(
                self._subject_credits_sql if asked.start is None else self._credits_sql, {
                    "values": encode(asked.subjects), "methodology_id": asked.methodology_id, "start": asked.start,
                    "end": asked.end})]
        return LoggedInChunk(ids, found, credits)


def _json_array(values: list[str]) -> str:
    """A JSON array of checked identifiers, pseudonyms or hex: none needs an escape."""
    return '["' + '","'.join(values) + '"]' if values else "[]"


def _reviewers(conn: Connection, signers: set[str], role: str, not_independent: frozenset[str]) -> TargetReviewers:
    """Which of these signers' reviews count now: registered keys holding `role`, not revoked."""
    keys = [key_from_row(row.key_id, row.seq, json.loads(row.data)) for row in conn.execute(
        select(keys_projection).where(keys_projection.c.key_id.in_(sorted(signers))))] if signers else []
    return TargetReviewers(frozenset(k.key_id for k in keys if role in k.roles and not k.revoked), not_independent)


def _bodies_at(conn: Connection, seqs: list[int]) -> dict[int, dict[str, Any]]:
    """The bodies of the events at these seqs (committed ones), from their leaves."""
    found: dict[int, dict[str, Any]] = {}
    for i in range(0, len(seqs), _IN_CHUNK):
        found.update((seq, json.loads(leaf)["body"]) for seq, leaf in conn.execute(
            select(events.c.seq, events.c.leaf).where(events.c.seq.in_(seqs[i:i + _IN_CHUNK]))))
    return found


def _activity_row(conn: Connection, activity_id: str) -> Row[Any] | None:
    """batch_id, position and record of one activity record, or None."""
    return conn.execute(select(activities.c.batch_id, activities.c.position, activities.c.record)
                        .where(activities.c.activity_id == activity_id)).first()


def _batch_bodies(conn: Connection, batch_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    """The batches projection's rows by batch_id: the activity.batch body fields, its seq and issuance_id."""
    return {batch_id: json.loads(data)
            for batch_id, data in _by_key(conn, batches_projection, batch_ids, batches_projection.c.data).items()}


def _by_key(conn: Connection, table: Table, keys: Iterable[str], column: ColumnElement[Any]) -> dict[str, Any]:
    """column by key, for the rows of a projection whose keys are among these (unknown keys are left out)."""
    key_column = table.primary_key.columns.values()[0]
    wanted, found = sorted(set(keys)), {}
    for i in range(0, len(wanted), _IN_CHUNK):
        found.update(conn.execute(select(key_column, column).where(key_column.in_(wanted[i:i + _IN_CHUNK]))).all())
    return found


def _matching(**wanted: Any) -> Callable[[dict[str, Any]], bool]:
    """Equality on the given fields; region matches as a prefix (420000 Hubei holds 420100 Wuhan)."""
    filters = {k: v for k, v in wanted.items() if v is not None}

    def match(d: dict[str, Any]) -> bool:
        for name, value in filters.items():
            if name == "region":
                if not d["region"].startswith(value.rstrip("0") or value):
                    return False
            elif d[name] != value:
                return False
        return True
    return match


def _claim_json(d: dict[str, Any]) -> dict[str, Any]:
    subject = {"kind": d.pop("subject_kind"), "name": d.pop("subject_name")}
    return {**d, "subject": subject}


def _methodology_json(methodology_id: str, d: dict[str, Any]) -> dict[str, Any]:
    versions = [{"version": int(v), **body} for v, body in sorted(d["versions"].items(), key=lambda item: int(item[0]))]
    return {"methodology_id": methodology_id, "offset_eligible": d["offset_eligible"],
            "latest_version": versions[-1]["version"], "versions": versions}
