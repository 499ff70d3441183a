"""Replay of a format-2 log (spec section 6, every rule marked "(format 2)"): the format-1 replay
with reviews, holds, per-version methodologies, chosen issuances and lowest serials.

A format-2 handler replaces the format-1 one of its type where the type's rules differ, and reads
in the order of the section 9 table like every handler. bundle.py picks Replay or Replay2 once per
log, from its first line."""

from typing import NamedTuple

from verifier.methodologies import Definition
from verifier.replay import HANDLERS, ROOT, Batch, Rejected, Replay


class Review(NamedTuple):
    key_id: str
    approved: bool


class Version:
    __slots__ = ("definition", "offset_eligible")

    def __init__(self, definition, offset_eligible):
        self.definition = definition
        self.offset_eligible = offset_eligible


class Methodology2:
    """Every registered version of a methodology, version N at index N - 1."""

    __slots__ = ("versions",)

    def __init__(self):
        self.versions = []

    @property
    def latest_version(self):
        return len(self.versions)


class Batch2(Batch):
    __slots__ = ("methodology_version",)

    def __init__(self, body):
        super().__init__(body)
        self.methodology_version = body["methodology_version"]


class Replay2(Replay):
    ROLES_ONLY_ROOT_GRANTS = frozenset({"admin", "validator", "expert"})

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.used_ids["account.hold"] = set()
        self.used_ids["review"] = set()
        self.reviews = {}  # target: ("batch", id) | ("evidence", hash) | ("methodology", id, version) -> [Review]
        self.open_cases = {}  # account_id -> {case_id}: an account with one is held
        self.issuance_ids = {}  # issuance_id -> index in issuance_starts
        self.issuance_versions = []  # per issuance: the methodology versions behind it
        self.evidence_issued = set()
        self.unverified_methodologies = set()  # methodology ids with a batch registered unverified

    # -- shared checks -------------------------------------------------------------------------

    def _counted_reviews(self, target, role, controlled_accounts=()):
        """(distinct approving keys that count and control none of controlled_accounts, whether a
        counting key rejected): a review counts if its key holds `role` and is active now."""
        approving = set()
        rejected = False
        for review in self.reviews.get(target, ()):
            key = self.keys.get(review.key_id)
            if key is None or not key.active or role not in key.roles:
                continue
            if not review.approved:
                rejected = True
            elif not any(review.key_id in account.controllers for account in controlled_accounts):
                approving.add(review.key_id)
        return len(approving), rejected

    def _quorum(self, kind):
        if self.rules is None:
            raise Rejected("UNREVIEWED", "no rules are in force (no accepted genesis): no review quorum")
        return self.rules["review_quorum"][kind]

    def _reviewed(self, target, role, quorum, what, controlled_accounts=()):
        approving, rejected = self._counted_reviews(target, role, controlled_accounts)
        if rejected:
            raise Rejected("UNREVIEWED", f"{what} has a rejected review")
        if approving < quorum:
            raise Rejected("UNREVIEWED", f"{what} has {approving} counting approved review(s), the quorum is {quorum}")

    def _may_turn_on(self, methodology_id, version, definition):
        """UNREVIEWED, then OFFSET_INELIGIBLE, for an event that sets offset_eligible true."""
        what = f"methodology {methodology_id!r} version {version}"
        self._reviewed(("methodology", methodology_id, version), "expert", self._quorum("eligibility"), what)
        if definition.illustrative:
            raise Rejected("OFFSET_INELIGIBLE", f"{what} has an illustrative factor: never offset eligible")

    def _registered_version(self, methodology_id, version):
        """UNKNOWN_REF unless version of methodology_id is registered; its Version."""
        known = self.methodologies.get(methodology_id)
        if known is None or version > known.latest_version:
            raise Rejected("UNKNOWN_REF", f"methodology {methodology_id!r} version {version} is not registered")
        return known.versions[version - 1]

    def _chosen_windows(self, issuances):
        """UNKNOWN_REF for an id of `issuances` that is no accepted issuance; the sorted serial
        ranges of the chosen issuances, or None when the event chose none."""
        if issuances is None:
            return None
        windows = []
        for issuance_id in issuances:
            index = self.issuance_ids.get(issuance_id)
            if index is None:
                raise Rejected("UNKNOWN_REF", f"issuance {issuance_id!r} does not exist")
            windows.append((self.issuance_starts[index], self.issuance_info[index][0]))
        windows.sort()
        return windows

    def _not_frozen(self, account_id, event_type):
        if self.open_cases.get(account_id):
            cases = sorted(self.open_cases[account_id])
            raise Rejected("FROZEN", f"{event_type} from account {account_id!r}, held by case(s) {cases}")

    def _spendable(self, leaf, account, account_id):
        """Section 6's rules of the serials a transfer, retirement or cancellation spends, after its
        other references: UNKNOWN_REF (issuances), FROZEN (not for a cancellation), NOT_HELD (as in
        format 1, and exactly the lowest of the chosen issuances), OFFSET_INELIGIBLE (ets_offset)."""
        body = leaf.body
        issuances = body["issuances"]
        windows = None if issuances is None else self._chosen_windows(issuances)
        if self.open_cases and leaf.type != "cancellation":  # most logs hold no account: no call
            self._not_frozen(account_id, leaf.type)
        serials, amount_g = leaf.effects["serials"], body["amount_g"]
        if account.holdings.lowest(amount_g, windows) != serials:
            self._held(account, serials, amount_g, account_id)
            chosen = "of the chosen issuances " if windows is not None else ""
            raise Rejected("NOT_HELD", f"effects.serials are not the {amount_g} lowest serials {chosen}that {account_id!r} holds")
        # _held is asked only to explain a refusal: lowest() gives non-empty, sorted, disjoint,
        # merged ranges the account holds, adding up to amount_g (the windows, of distinct
        # issuances, are disjoint), so serials equal to them pass _held.
        if leaf.type == "retirement" and body["purpose"] == "ets_offset":
            self._offset_serials(serials, body["retirement_id"])

    def _offset_serials(self, serials, retirement_id):
        """OFFSET_INELIGIBLE: the methodology and region parts of serial eligibility, judged at an
        ets_offset retirement (vintage and cap wait for the surrender)."""
        if self.rules is None:
            raise Rejected("OFFSET_INELIGIBLE", f"retirement {retirement_id!r}: no rules are in force (no accepted genesis)")
        regions = tuple(self.rules["offset_regions"])
        for index, _ in self._issuances_of(serials):
            _, methodology_id, _, region = self.issuance_info[index]
            if not self._methodology_eligible(index, methodology_id):
                raise Rejected("OFFSET_INELIGIBLE", f"retirement {retirement_id!r}: methodology {methodology_id!r} is not offset eligible")
            if not region.startswith(regions):
                raise Rejected("OFFSET_INELIGIBLE", f"retirement {retirement_id!r}: region {region} is not in {list(regions)}")

    def _methodology_eligible(self, issuance_index, methodology_id):
        versions = self.methodologies[methodology_id].versions
        return all(versions[version - 1].offset_eligible for version in self.issuance_versions[issuance_index])

    # -- event types ---------------------------------------------------------------------------

    def _account_hold(self, leaf, body, signer):
        self._admin_only(signer, "account.hold")
        self._replay_check(leaf)
        commit_id = self._unique_id("account.hold", body["hold_id"])
        account_id, case_id = body["account_id"], body["case_id"]
        self._existing_account(account_id, "the")
        cases = self.open_cases.get(account_id, ())
        if not body["held"] and case_id not in cases:
            raise Rejected("UNKNOWN_REF", f"account {account_id!r} has no open case {case_id!r}")

        def commit():
            commit_id()
            if body["held"]:
                self.open_cases.setdefault(account_id, set()).add(case_id)
            else:
                cases.discard(case_id)
                if not cases:
                    del self.open_cases[account_id]

        return commit

    def _methodology_register(self, leaf, body, signer):
        known = self._new_version(leaf, signer)
        methodology_id, version = body["methodology_id"], body["version"]
        definition = Definition.of(methodology_id, version, body["params"])
        if body["offset_eligible"]:
            self._may_turn_on(methodology_id, version, definition)

        def commit():
            methodology = known if known is not None else self.methodologies.setdefault(methodology_id, Methodology2())
            methodology.versions.append(Version(definition, body["offset_eligible"]))

        return commit

    def _methodology_eligibility(self, leaf, body, signer):
        self._admin_only(signer, "methodology.eligibility")
        self._replay_check(leaf)
        methodology_id, version = body["methodology_id"], body["version"]
        state = self._registered_version(methodology_id, version)
        if body["offset_eligible"]:
            self._may_turn_on(methodology_id, version, state.definition)

        def commit():
            state.offset_eligible = body["offset_eligible"]

        return commit

    def _activity_batch(self, leaf, body, signer):
        methodology = self._batch_references(leaf, body, signer)
        methodology_id, version = body["methodology_id"], body["methodology_version"]
        if version != methodology.latest_version:
            raise Rejected("UNKNOWN_REF", f"methodology {methodology_id!r} version {version} is superseded by version {methodology.latest_version}")
        checker = self.activity_checker
        definition = methodology.versions[version - 1].definition
        outcome = checker(leaf, definition, methodology_id in self.unverified_methodologies) if checker else "missing"
        outcome = self._batch_file(outcome, body)

        def commit():
            if outcome == "missing":
                self.unverified_methodologies.add(methodology_id)
            self._register_batch(leaf, outcome, Batch2(body))

        return commit

    def _review(self, leaf, body, signer):
        target = body["target"]
        kind = target["kind"]
        role = "expert" if kind == "methodology" else "validator"
        if signer is ROOT or role not in signer.roles:
            raise Rejected("UNAUTHORIZED", f"a review of a {kind} needs {'an expert' if role == 'expert' else 'a validator'} key")
        self._replay_check(leaf)
        commit_id = self._unique_id("review", body["review_id"])
        if kind == "batch":
            if target["id"] not in self.batches:
                raise Rejected("UNKNOWN_REF", f"batch {target['id']!r} does not exist")
            key = ("batch", target["id"])
        elif kind == "methodology":
            self._registered_version(target["id"], target["version"])
            key = ("methodology", target["id"], target["version"])
        else:
            key = ("evidence", target["id"])
        review = Review(leaf.key_id, body["verdict"] == "approved")

        def commit():
            commit_id()
            self.reviews.setdefault(key, []).append(review)

        return commit

    def _issuance(self, leaf, body, signer):
        self._admin_only(signer, "issuance")
        self._replay_check(leaf)
        issuance_id = body["issuance_id"]
        if issuance_id in self.issuance_ids:
            raise Rejected("DUPLICATE_ID", f"issuance id {issuance_id!r} was used before")
        account, batches, start = self._issuance_matches(leaf, body)
        quorum = self._quorum("issuance")
        if batches:
            for batch_id, batch in zip(body["batches"], batches):
                controlled = (self.accounts[batch.platform], account)
                self._reviewed(("batch", batch_id), "validator", quorum, f"batch {batch_id!r}", controlled)
        else:
            self._reviewed(("evidence", body["evidence"]), "validator", quorum, f"evidence {body['evidence']}", (account,))
        self._batches_not_issued(body, batches)
        evidence = body["evidence"]
        if evidence is not None and evidence in self.evidence_issued:
            raise Rejected("DOUBLE_ISSUANCE", f"evidence {evidence} already backs an earlier issuance")
        methodology = self.methodologies[body["methodology_id"]]
        versions = tuple(sorted({batch.methodology_version for batch in batches})) if batches else (methodology.latest_version,)

        def commit():
            self.issuance_ids[issuance_id] = len(self.issuance_starts)
            self.issuance_versions.append(versions)
            if evidence is not None:
                self.evidence_issued.add(evidence)
            self._issue(body, account, batches, start)

        return commit


HANDLERS_2 = dict(
    HANDLERS,
    **{
        "account.hold": Replay2._account_hold,
        "methodology.register": Replay2._methodology_register,
        "methodology.eligibility": Replay2._methodology_eligibility,
        "activity.batch": Replay2._activity_batch,
        "review": Replay2._review,
        "issuance": Replay2._issuance,
    },
)
Replay2.handlers = HANDLERS_2
