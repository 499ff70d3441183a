"""Replay (spec section 6): the registry's state rebuilt event by event, and every rule checked.

An event with a violation is reported once, with the first code of the section 9 table that it
breaks (the signer's key looked up before its signature), and changes nothing; replay goes on.
Where the spec leaves a choice, docs/spec-readings.md decides.
"""

from bisect import bisect_right

from verifier.schema import decode_public_key
from verifier.violations import UNVERIFIED_BATCH

ROOT = "root"  # the signer class of the trust file's root keys
ROOT_TYPES = frozenset({"registry.genesis", "registry.rules", "key.register", "key.revoke"})


class Rejected(Exception):
    """An event breaks a rule: code and message. Raised before any state changes."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code
        self.message = message


class Key:
    __slots__ = ("public_key", "roles", "active")

    def __init__(self, public_key, roles):
        self.public_key = public_key
        self.roles = roles
        self.active = True


class Holdings:
    """The serials an account holds as active: sorted, disjoint, merged half-open ranges."""

    __slots__ = ("starts", "ends")

    def __init__(self):
        self.starts = []
        self.ends = []

    def holds(self, ranges):
        starts, ends = self.starts, self.ends
        for start, end in ranges:
            index = bisect_right(starts, start) - 1
            if index < 0 or ends[index] < end:
                return False
        return True

    def remove(self, ranges):
        """Remove ranges that `holds` accepted."""
        starts, ends = self.starts, self.ends
        for start, end in ranges:
            index = bisect_right(starts, start) - 1
            held_start, held_end = starts[index], ends[index]
            if held_start == start and held_end == end:
                del starts[index], ends[index]
            elif held_start == start:
                starts[index] = end
            elif held_end == end:
                ends[index] = start
            else:
                ends[index] = start
                starts.insert(index + 1, end)
                ends.insert(index + 1, held_end)

    def lowest(self, amount_g, windows=None):
        """The amount_g lowest serials held, as merged [[start, end], ...], counting only those
        inside the sorted, disjoint windows [(start, end), ...] if given; None if too few are held."""
        starts, ends = self.starts, self.ends
        # Most spends take from one range: the first held, or without chosen issuances the first
        # held inside the first window. Then this is what search() gives
        # (tests/verifier/test_verifier_format2_fast_paths.py).
        if windows is None:
            if starts and 0 < amount_g <= ends[0] - starts[0]:
                return [[starts[0], starts[0] + amount_g]]
            windows = ((starts[0], ends[-1]),) if starts else ()
        elif windows and starts and amount_g > 0:
            window_start, window_end = windows[0]
            index = max(bisect_right(starts, window_start) - 1, 0)
            if ends[index] <= window_start:  # the range held before the window ends before it
                index += 1
            if index < len(starts):
                start = max(starts[index], window_start)
                if start + amount_g <= min(ends[index], window_end):
                    return [[start, start + amount_g]]
        return self.search(amount_g, windows)

    def search(self, amount_g, windows):
        """lowest() by walking every range held inside each window in turn."""
        starts, ends = self.starts, self.ends
        taken = []
        need = amount_g
        for window_start, window_end in windows:
            index = max(bisect_right(starts, window_start) - 1, 0)
            while need and index < len(starts) and starts[index] < window_end:
                start, end = max(starts[index], window_start), min(ends[index], window_end)
                if start < end:
                    end = min(end, start + need)
                    need -= end - start
                    if taken and taken[-1][1] == start:
                        taken[-1][1] = end
                    else:
                        taken.append([start, end])
                index += 1
            if not need:
                return taken
        return None

    def add(self, ranges):
        """Add ranges held by no account (serials are unique), merging with neighbours."""
        starts, ends = self.starts, self.ends
        for start, end in ranges:
            index = bisect_right(starts, start)
            joins_previous = index > 0 and ends[index - 1] == start
            joins_next = index < len(starts) and starts[index] == end
            if joins_previous and joins_next:
                ends[index - 1] = ends[index]
                del starts[index], ends[index]
            elif joins_previous:
                ends[index - 1] = end
            elif joins_next:
                starts[index] = start
            else:
                starts.insert(index, start)
                ends.insert(index, end)


class Account:
    __slots__ = ("kind", "region", "controllers", "platform", "holdings")

    def __init__(self, kind, region, controllers, platform):
        self.kind = kind
        self.region = region
        self.controllers = controllers
        self.platform = platform
        self.holdings = Holdings()


class Methodology:
    __slots__ = ("latest_version", "offset_eligible")

    def __init__(self, offset_eligible):
        self.latest_version = 1
        self.offset_eligible = offset_eligible


class Batch:
    __slots__ = ("platform", "methodology_id", "period_start", "period_end", "total_g", "issued")

    def __init__(self, body):
        self.platform = body["platform"]
        self.methodology_id = body["methodology_id"]
        self.period_start = body["period_start"]
        self.period_end = body["period_end"]
        self.total_g = body["total_g"]
        self.issued = False


class Retirement:
    """An unused retirement; a used one is replaced by CLAIMED (see Replay._mark_claimed)."""

    __slots__ = ("account", "purpose", "amount_g", "serials")
    claimed = False

    def __init__(self, account, purpose, amount_g, serials):
        self.account = account
        self.purpose = purpose
        self.amount_g = amount_g
        self.serials = serials


class _Claimed:
    __slots__ = ()
    claimed = True


CLAIMED = _Claimed()


class Totals:
    """Grams per category, for the report (issued, retired by purpose, and so on)."""

    def __init__(self):
        self.issued_g = 0
        self.issued_by_methodology = {}
        self.issued_by_region = {}
        self.retired_g = 0
        self.retired_by_purpose = {}
        self.retired_by_methodology = {}
        self.retired_by_region = {}
        self.cancelled_g = 0
        self.surrendered_g = 0
        self.claimed_g = 0
        self.events_by_type = {}

    def as_json(self):
        return {
            "issued_g": self.issued_g,
            "issued_by_methodology_g": dict(sorted(self.issued_by_methodology.items())),
            "issued_by_region_g": dict(sorted(self.issued_by_region.items())),
            "retired_g": self.retired_g,
            "retired_by_purpose_g": dict(sorted(self.retired_by_purpose.items())),
            "retired_by_methodology_g": dict(sorted(self.retired_by_methodology.items())),
            "retired_by_region_g": dict(sorted(self.retired_by_region.items())),
            "cancelled_g": self.cancelled_g,
            "surrendered_g": self.surrendered_g,
            "claimed_for_neutrality_g": self.claimed_g,
            "events_by_type": dict(sorted(self.events_by_type.items())),
        }


def _add(table, key, amount):
    table[key] = table.get(key, 0) + amount


def serials_problem(serials, amount_g):
    """Why effects.serials are not sorted, disjoint, merged, non-empty ranges adding up to amount_g."""
    previous_end = None
    total = 0
    for start, end in serials:
        if start >= end:
            return f"range [{start}, {end}) is empty"
        if previous_end is not None and start <= previous_end:
            return "ranges are not sorted, disjoint and merged"
        total += end - start
        previous_end = end
    if total != amount_g:
        return f"serials add up to {total} g, not amount_g {amount_g}"
    return None


class Replay:
    """Applies leaves in log order (a format-1 log; replay_v2.Replay2 extends it for format 2).
    `findings` collects violations and warnings.

    activity_checker(batch_leaf) checks the batch's activity file and returns None (it matches,
    and its ids and fingerprints are now known), "missing" (no file), or (code, message)."""

    ROLES_ONLY_ROOT_GRANTS = frozenset({"admin"})  # the roles an admin key neither grants nor revokes

    def __init__(self, trust, digester, findings, warnings, activity_checker=None, require_activities=False):
        self.root_keys = trust.root_keys
        self.findings = findings
        self.warnings = warnings
        self.activity_checker = activity_checker
        self.require_activities = require_activities
        self.rules = None
        self.keys = {}
        self.accounts = {}
        self.methodologies = {}
        self.batches = {}
        self.retirements = {}
        self.next_serial = 0
        self.issuance_starts = []
        self.issuance_info = []  # (end, methodology_id, vintage, region), same order as issuance_starts
        self.surrendered = {}  # (entity, compliance_year) -> grams
        self.digest = digester.of_text  # ints, kept as they are in the sets below
        self.requests = set()  # digests of (signer key id, request_id)
        self.used_ids = {kind: set() for kind in ("issuance", "transfer", "cancellation", "offset.surrender", "neutrality.claim")}
        self.totals = Totals()
        self.events_accepted = 0
        self.batches_unverified = 0

    # -- driving -------------------------------------------------------------------------------

    def apply(self, leaf, verify):
        """verify(public_key, signed) -> bool checks a signature now (when no check was done ahead)."""
        if leaf.problem is not None:
            self.findings.add(leaf.problem[0], leaf.seq, leaf.problem[1])
            return
        self._request_digest = None
        try:
            signer = self._signer(leaf, verify)
            if leaf.seq == 0 and leaf.type != "registry.genesis":
                raise Rejected("UNAUTHORIZED", f"seq 0 must be registry.genesis, not {leaf.type}")
            commit = self.handlers[leaf.type](self, leaf, leaf.body, signer)
        except Rejected as rejected:
            self.findings.add(rejected.code, leaf.seq, rejected.message)
            return
        self.requests.add(self._request_digest)
        commit()
        self.events_accepted += 1
        by_type = self.totals.events_by_type
        by_type[leaf.type] = by_type.get(leaf.type, 0) + 1

    def _signer(self, leaf, verify):
        key_id = leaf.key_id
        public_key = self.root_keys.get(key_id)
        if public_key is not None:
            signer = ROOT
        else:
            signer = self.keys.get(key_id)
            if signer is None:
                raise Rejected("KEY_UNKNOWN", f"signer {key_id} is neither a root key nor a registered key")
            if not signer.active:
                raise Rejected("KEY_REVOKED", f"signer {key_id} was revoked before this event")
            public_key = signer.public_key
        if leaf.signed is None:
            raise Rejected("SIGNATURE", "auth.sig is not base64 of a 64-byte Ed25519 signature")
        if leaf.key_guess == public_key and leaf.verified is not None:
            valid = leaf.verified
        else:
            valid = verify(public_key, leaf.signed)
        if not valid:
            raise Rejected("SIGNATURE", f"the event signature does not verify with key {key_id}")
        return signer

    # -- shared checks, each named for its code --------------------------------------------------

    def _replay_check(self, leaf):
        """REPLAY: remembered at commit, so a rejected event does not burn its request id."""
        digest = self.digest(f"{leaf.key_id}\x00{leaf.body['request_id']}")
        if digest in self.requests:
            raise Rejected("REPLAY", f"signer {leaf.key_id} already used request_id {leaf.body['request_id']!r}")
        self._request_digest = digest

    def _unique_id(self, kind, identifier):
        """DUPLICATE_ID for ids that are only ever checked for uniqueness; returns a commit step."""
        ids = self.used_ids[kind]
        digest = self.digest(identifier)
        if digest in ids:
            raise Rejected("DUPLICATE_ID", f"{kind} id {identifier!r} was used before")
        return lambda: ids.add(digest)

    def _admin_only(self, signer, event_type):
        if signer is ROOT or "admin" not in signer.roles:
            raise Rejected("UNAUTHORIZED", f"{event_type} needs an admin key")

    def _controller_of(self, leaf, signer, account_id, event_type, admin_may=False):
        if admin_may and signer is not ROOT and "admin" in signer.roles:
            return
        account = self.accounts.get(account_id)
        if signer is ROOT or account is None or leaf.key_id not in account.controllers:
            raise Rejected("UNAUTHORIZED", f"{event_type}: signer {leaf.key_id} does not control account {account_id!r}")

    def _existing_account(self, account_id, role):
        account = self.accounts.get(account_id)
        if account is None:
            raise Rejected("UNKNOWN_REF", f"{role} account {account_id!r} does not exist")
        return account

    def _active_keys(self, controllers):
        for key_id in controllers:
            key = self.keys.get(key_id)
            if key is None or not key.active:
                raise Rejected("UNKNOWN_REF", f"controller {key_id} is not an active registered key")

    def _held(self, account, serials, amount_g, account_id):
        problem = serials_problem(serials, amount_g)
        if problem:
            raise Rejected("NOT_HELD", f"effects.serials: {problem}")
        if not account.holdings.holds(serials):
            raise Rejected("NOT_HELD", f"account {account_id!r} does not hold all of these serials as active")

    def _spendable(self, leaf, account, account_id):
        """The checks of the serials a transfer, retirement or cancellation spends (NOT_HELD)."""
        self._held(account, leaf.effects["serials"], leaf.body["amount_g"], account_id)

    def _issuances_of(self, serials):
        """(issuance index, grams) for every issuance the serials come from."""
        starts = self.issuance_starts
        info = self.issuance_info
        for start, end in serials:
            index = bisect_right(starts, start) - 1
            while start < end:
                piece_end = min(end, info[index][0])
                yield index, piece_end - start
                start = piece_end
                index += 1

    # -- event types ---------------------------------------------------------------------------

    def _rules(self, leaf, body, signer):
        """registry.genesis (seq 0 only) and registry.rules: root keys set the rules."""
        if signer is not ROOT or (leaf.type == "registry.genesis" and leaf.seq != 0):
            where = " at seq 0" if leaf.type == "registry.genesis" else ""
            raise Rejected("UNAUTHORIZED", f"{leaf.type} must be signed by a root key{where}")
        self._replay_check(leaf)

        def commit():
            self.rules = body["rules"]

        return commit

    def _key_register(self, leaf, body, signer):
        roles = frozenset(body["roles"])
        if signer is not ROOT:
            if "admin" not in signer.roles:
                raise Rejected("UNAUTHORIZED", "key.register needs a root or admin key")
            granted = self.ROLES_ONLY_ROOT_GRANTS & roles
            if granted:
                raise Rejected("UNAUTHORIZED", f"an admin key cannot grant the {min(granted)} role")
        self._replay_check(leaf)
        key_id = body["key_id"]
        if key_id in self.keys or key_id in self.root_keys:
            raise Rejected("DUPLICATE_ID", f"key {key_id} is already registered or is a root key")
        public_key = decode_public_key(body["public_key"])

        def commit():
            self.keys[key_id] = Key(public_key, roles)

        return commit

    def _key_revoke(self, leaf, body, signer):
        key_id = body["key_id"]
        target = self.keys.get(key_id)
        if signer is not ROOT:
            if "admin" not in signer.roles:
                raise Rejected("UNAUTHORIZED", "key.revoke needs a root or admin key")
            protected = self.ROLES_ONLY_ROOT_GRANTS & target.roles if target is not None else None
            if protected:
                role = min(protected)
                raise Rejected("UNAUTHORIZED", f"an admin key cannot revoke {'an' if role[0] in 'aeiou' else 'a'} {role} key")
        self._replay_check(leaf)
        if target is None or not target.active:
            raise Rejected("UNKNOWN_REF", f"key {key_id} is not a registered, active key")

        def commit():
            target.active = False

        return commit

    def _account_open(self, leaf, body, signer):
        if signer is ROOT:
            raise Rejected("UNAUTHORIZED", "account.open is not signed by root keys")
        if "admin" not in signer.roles:
            platform = self.accounts.get(body["platform"]) if body["platform"] is not None else None
            if not (
                "platform" in signer.roles
                and body["kind"] == "individual"
                and platform is not None
                and platform.kind == "platform"
                and leaf.key_id in platform.controllers
            ):
                raise Rejected(
                    "UNAUTHORIZED",
                    "account.open needs an admin key, or a platform key controlling `platform` for an individual account",
                )
        self._replay_check(leaf)
        account_id = body["account_id"]
        if account_id in self.accounts:
            raise Rejected("DUPLICATE_ID", f"account {account_id!r} already exists")
        self._active_keys(body["controllers"])
        if body["platform"] is not None:
            platform = self.accounts.get(body["platform"])
            if platform is None or platform.kind != "platform":
                raise Rejected("UNKNOWN_REF", f"platform {body['platform']!r} is not an account of kind platform")

        def commit():
            self.accounts[account_id] = Account(body["kind"], body["region"], frozenset(body["controllers"]), body["platform"])

        return commit

    def _account_controllers(self, leaf, body, signer):
        self._controller_of(leaf, signer, body["account_id"], "account.controllers", admin_may=True)
        self._replay_check(leaf)
        account = self._existing_account(body["account_id"], "the")
        self._active_keys(body["controllers"])

        def commit():
            account.controllers = frozenset(body["controllers"])

        return commit

    def _methodology_register(self, leaf, body, signer):
        known = self._new_version(leaf, signer)
        methodology_id, version = body["methodology_id"], body["version"]

        def commit():
            if known is None:
                self.methodologies[methodology_id] = Methodology(body["offset_eligible"])
            else:
                known.latest_version = version
                known.offset_eligible = body["offset_eligible"]

        return commit

    def _new_version(self, leaf, signer):
        """UNAUTHORIZED, REPLAY, then DUPLICATE_ID or UNKNOWN_REF unless the body's version is the
        next of its methodology; the methodology's state, or None for a new methodology."""
        self._admin_only(signer, "methodology.register")
        self._replay_check(leaf)
        methodology_id, version = leaf.body["methodology_id"], leaf.body["version"]
        known = self.methodologies.get(methodology_id)
        latest = known.latest_version if known else 0
        if version <= latest:
            raise Rejected("DUPLICATE_ID", f"methodology {methodology_id!r} version {version} is already registered")
        if version != latest + 1:
            raise Rejected("UNKNOWN_REF", f"methodology {methodology_id!r} version {version - 1} does not exist")
        return known

    def _methodology_eligibility(self, leaf, body, signer):
        self._admin_only(signer, "methodology.eligibility")
        self._replay_check(leaf)
        known = self.methodologies.get(body["methodology_id"])
        if known is None:
            raise Rejected("UNKNOWN_REF", f"methodology {body['methodology_id']!r} does not exist")

        def commit():
            known.offset_eligible = body["offset_eligible"]

        return commit

    def _activity_batch(self, leaf, body, signer):
        self._batch_references(leaf, body, signer)
        # Last, as the activity file's codes (DUPLICATE_ID of an activity, BATCH, DUPLICATE_ACTIVITY)
        # are the last the table checks for a batch; the checker keeps the ids only if all passes.
        outcome = self._batch_file(self.activity_checker(leaf) if self.activity_checker else "missing", body)

        def commit():
            self._register_batch(leaf, outcome, Batch(body))

        return commit

    def _batch_references(self, leaf, body, signer):
        """UNAUTHORIZED, REPLAY, DUPLICATE_ID and UNKNOWN_REF of a batch; its methodology."""
        platform = self.accounts.get(body["platform"])
        if (
            signer is ROOT
            or "platform" not in signer.roles
            or platform is None
            or platform.kind != "platform"
            or leaf.key_id not in platform.controllers
        ):
            raise Rejected("UNAUTHORIZED", f"activity.batch needs a platform key controlling platform {body['platform']!r}")
        self._replay_check(leaf)
        batch_id = body["batch_id"]
        if batch_id in self.batches:
            raise Rejected("DUPLICATE_ID", f"batch {batch_id!r} already exists")
        methodology = self.methodologies.get(body["methodology_id"])
        if methodology is None or not 1 <= body["methodology_version"] <= methodology.latest_version:
            raise Rejected(
                "UNKNOWN_REF",
                f"methodology {body['methodology_id']!r} version {body['methodology_version']} is not registered",
            )
        return methodology

    def _batch_file(self, outcome, body):
        """The activity checker's outcome raised as the batch's violation; else returned."""
        if outcome == "missing":
            if self.require_activities:
                raise Rejected("BATCH", f"activity file activities/{body['batch_id']}.jsonl is absent")
        elif outcome is not None:
            raise Rejected(*outcome)
        return outcome

    def _register_batch(self, leaf, outcome, batch):
        batch_id = leaf.body["batch_id"]
        if outcome == "missing":
            self.batches_unverified += 1
            self.warnings.add(UNVERIFIED_BATCH, leaf.seq, f"activity file activities/{batch_id}.jsonl is absent: batch not verified")
        self.batches[batch_id] = batch

    def _issuance(self, leaf, body, signer):
        self._admin_only(signer, "issuance")
        self._replay_check(leaf)
        commit_id = self._unique_id("issuance", body["issuance_id"])
        account, batches, start = self._issuance_matches(leaf, body)
        self._batches_not_issued(body, batches)

        def commit():
            commit_id()
            self._issue(body, account, batches, start)

        return commit

    def _issuance_matches(self, leaf, body):
        """UNKNOWN_REF, SERIALS and ISSUANCE_AMOUNT of an issuance: (recipient, batches, first serial)."""
        account = self._existing_account(body["account"], "recipient")
        methodology_id = body["methodology_id"]
        if methodology_id not in self.methodologies:
            raise Rejected("UNKNOWN_REF", f"methodology {methodology_id!r} does not exist")
        batches = []
        for batch_id in body["batches"]:
            batch = self.batches.get(batch_id)
            if batch is None:
                raise Rejected("UNKNOWN_REF", f"batch {batch_id!r} does not exist")
            batches.append(batch)
        amount_g = body["amount_g"]
        start = self.next_serial
        if leaf.effects["serials"] != [[start, start + amount_g]]:
            raise Rejected("SERIALS", f"effects.serials must be [[{start}, {start + amount_g}]], the next {amount_g} serials")
        if bool(batches) == (body["evidence"] is not None):
            raise Rejected("ISSUANCE_AMOUNT", "an issuance needs either batches or evidence (a report hash), exactly one")
        vintage = str(body["vintage"])
        for batch_id, batch in zip(body["batches"], batches):
            if batch.methodology_id != methodology_id:
                raise Rejected("ISSUANCE_AMOUNT", f"batch {batch_id!r} is of methodology {batch.methodology_id!r}")
            if batch.period_start[:4] != vintage or batch.period_end[:4] != vintage:
                raise Rejected("ISSUANCE_AMOUNT", f"batch {batch_id!r} period is not inside vintage {vintage}")
            if self.accounts[batch.platform].region != body["region"]:
                raise Rejected("ISSUANCE_AMOUNT", f"batch {batch_id!r} platform region is not {body['region']}")
        batch_total = sum(batch.total_g for batch in batches)
        if batches and batch_total != amount_g:
            raise Rejected("ISSUANCE_AMOUNT", f"amount_g {amount_g} is not the batches' total {batch_total}")
        return account, batches, start

    @staticmethod
    def _batches_not_issued(body, batches):
        """DOUBLE_ISSUANCE for batches."""
        if len(set(body["batches"])) != len(batches):
            raise Rejected("DOUBLE_ISSUANCE", "the same batch is listed twice")
        for batch_id, batch in zip(body["batches"], batches):
            if batch.issued:
                raise Rejected("DOUBLE_ISSUANCE", f"batch {batch_id!r} already backs an earlier issuance")

    def _issue(self, body, account, batches, start):
        """An accepted issuance's effect: new serials for the recipient."""
        amount_g = body["amount_g"]
        methodology_id = body["methodology_id"]
        for batch in batches:
            batch.issued = True
        self.issuance_starts.append(start)
        self.issuance_info.append((start + amount_g, methodology_id, body["vintage"], body["region"]))
        self.next_serial = start + amount_g
        account.holdings.add(((start, start + amount_g),))
        totals = self.totals
        totals.issued_g += amount_g
        _add(totals.issued_by_methodology, methodology_id, amount_g)
        _add(totals.issued_by_region, body["region"], amount_g)

    def _transfer(self, leaf, body, signer):
        self._controller_of(leaf, signer, body["from"], "transfer")
        self._replay_check(leaf)
        commit_id = self._unique_id("transfer", body["transfer_id"])
        sender = self.accounts[body["from"]]
        recipient = self._existing_account(body["to"], "recipient")
        serials = leaf.effects["serials"]
        self._spendable(leaf, sender, body["from"])

        def commit():
            commit_id()
            sender.holdings.remove(serials)
            recipient.holdings.add(serials)

        return commit

    def _retirement(self, leaf, body, signer):
        self._controller_of(leaf, signer, body["account"], "retirement")
        self._replay_check(leaf)
        retirement_id = body["retirement_id"]
        if retirement_id in self.retirements:
            raise Rejected("DUPLICATE_ID", f"retirement {retirement_id!r} already exists")
        account = self.accounts[body["account"]]
        serials = leaf.effects["serials"]
        self._spendable(leaf, account, body["account"])

        def commit():
            self._retire(body, account, serials)

        return commit

    def _retire(self, body, account, serials):
        """An accepted retirement's effect: the serials leave the account for good."""
        account.holdings.remove(serials)
        kept = tuple(map(tuple, serials))  # each a [start, end] pair (schema.py)
        self.retirements[body["retirement_id"]] = Retirement(body["account"], body["purpose"], body["amount_g"], kept)
        totals = self.totals
        totals.retired_g += body["amount_g"]
        _add(totals.retired_by_purpose, body["purpose"], body["amount_g"])
        for index, grams in self._issuances_of(kept):
            _, methodology_id, _, region = self.issuance_info[index]
            _add(totals.retired_by_methodology, methodology_id, grams)
            _add(totals.retired_by_region, region, grams)

    def _cancellation(self, leaf, body, signer):
        self._admin_only(signer, "cancellation")
        self._replay_check(leaf)
        commit_id = self._unique_id("cancellation", body["cancellation_id"])
        account = self._existing_account(body["account"], "the")
        serials = leaf.effects["serials"]
        self._spendable(leaf, account, body["account"])

        def commit():
            commit_id()
            account.holdings.remove(serials)
            self.totals.cancelled_g += body["amount_g"]

        return commit

    def _mark_claimed(self, retirement_ids):
        """A used retirement is only ever asked whether it was used (DOUBLE_CLAIM comes before any
        other check of it), so one shared marker replaces it: a third of the state at 10^6 events
        is retirements, most of them used at once."""
        retirements = self.retirements
        for retirement_id in retirement_ids:
            retirements[retirement_id] = CLAIMED

    def _claimed_retirements(self, body, owner_field, purpose):
        """UNKNOWN_REF, DOUBLE_CLAIM, CLAIM_MISMATCH for the retirements a surrender or claim uses."""
        listed = body["retirements"]
        retirements = []
        for retirement_id in listed:
            retirement = self.retirements.get(retirement_id)
            if retirement is None:
                raise Rejected("UNKNOWN_REF", f"retirement {retirement_id!r} does not exist")
            retirements.append(retirement)
        if len(set(listed)) != len(listed):
            raise Rejected("DOUBLE_CLAIM", "the same retirement is listed twice")
        for retirement_id, retirement in zip(listed, retirements):
            if retirement.claimed:
                raise Rejected("DOUBLE_CLAIM", f"retirement {retirement_id!r} was already used by a surrender or claim")
        for retirement_id, retirement in zip(listed, retirements):
            if retirement.purpose != purpose:
                raise Rejected("CLAIM_MISMATCH", f"retirement {retirement_id!r} has purpose {retirement.purpose}, not {purpose}")
            if retirement.account != body[owner_field]:
                raise Rejected("CLAIM_MISMATCH", f"retirement {retirement_id!r} was retired from {retirement.account!r}, not {body[owner_field]!r}")
        return retirements

    def _methodology_eligible(self, issuance_index, methodology_id):
        """The methodology part of serial eligibility (spec section 6) for an issuance's serials."""
        return self.methodologies[methodology_id].offset_eligible

    def _surrender(self, leaf, body, signer):
        if signer is ROOT or "ets" not in signer.roles:
            raise Rejected("UNAUTHORIZED", "offset.surrender needs an ets key")
        self._replay_check(leaf)
        commit_id = self._unique_id("offset.surrender", body["surrender_id"])
        entity = self.accounts.get(body["entity"])
        if entity is None or entity.kind != "compliance_entity":
            raise Rejected("UNKNOWN_REF", f"entity {body['entity']!r} is not an account of kind compliance_entity")
        retirements = self._claimed_retirements(body, "entity", "ets_offset")
        year = body["compliance_year"]
        rules = self.rules or {"offset_cap_ppm": 0, "offset_vintage_years": 0, "offset_regions": []}
        regions = tuple(rules["offset_regions"])
        for retirement_id, retirement in zip(body["retirements"], retirements):
            for index, _ in self._issuances_of(retirement.serials):
                _, methodology_id, vintage, region = self.issuance_info[index]
                if not self._methodology_eligible(index, methodology_id):
                    raise Rejected("OFFSET_INELIGIBLE", f"retirement {retirement_id!r}: methodology {methodology_id!r} is not offset eligible")
                if not (vintage <= year and year - vintage <= rules["offset_vintage_years"]):
                    raise Rejected("OFFSET_INELIGIBLE", f"retirement {retirement_id!r}: vintage {vintage} is not eligible in {year}")
                if not region.startswith(regions):
                    raise Rejected("OFFSET_INELIGIBLE", f"retirement {retirement_id!r}: region {region} is not in {list(regions)}")
        amount_g = sum(retirement.amount_g for retirement in retirements)
        key = (body["entity"], year)
        already_g = self.surrendered.get(key, 0)
        cap_g = body["allocation_g"] * rules["offset_cap_ppm"] // 1_000_000
        if already_g + amount_g > cap_g:
            raise Rejected("OFFSET_CAP", f"{body['entity']!r} would offset {already_g + amount_g} g in {year}, above its cap of {cap_g} g")

        def commit():
            commit_id()
            self._mark_claimed(body["retirements"])
            self.surrendered[key] = already_g + amount_g
            self.totals.surrendered_g += amount_g

        return commit

    def _claim(self, leaf, body, signer):
        self._controller_of(leaf, signer, body["claimant"], "neutrality.claim", admin_may=True)
        self._replay_check(leaf)
        commit_id = self._unique_id("neutrality.claim", body["claim_id"])
        self._existing_account(body["claimant"], "claimant")
        retirements = self._claimed_retirements(body, "claimant", "carbon_neutrality")
        amount_g = sum(retirement.amount_g for retirement in retirements)
        if amount_g < body["footprint_g"]:
            raise Rejected("NEUTRALITY_SHORT", f"retirements add up to {amount_g} g, less than the footprint {body['footprint_g']} g")

        def commit():
            commit_id()
            self._mark_claimed(body["retirements"])
            self.totals.claimed_g += amount_g

        return commit


# Plain functions, not bound methods kept on the instance: those would make every Replay a
# reference cycle, which only the cyclic collector could free (bundle.py runs with it off).
HANDLERS = {
    "registry.genesis": Replay._rules,
    "registry.rules": Replay._rules,
    "key.register": Replay._key_register,
    "key.revoke": Replay._key_revoke,
    "account.open": Replay._account_open,
    "account.controllers": Replay._account_controllers,
    "methodology.register": Replay._methodology_register,
    "methodology.eligibility": Replay._methodology_eligibility,
    "activity.batch": Replay._activity_batch,
    "issuance": Replay._issuance,
    "transfer": Replay._transfer,
    "retirement": Replay._retirement,
    "cancellation": Replay._cancellation,
    "offset.surrender": Replay._surrender,
    "neutrality.claim": Replay._claim,
}
Replay.handlers = HANDLERS
