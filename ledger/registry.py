"""The log as a reader sees it (LogReader) and its single writer (Registry).

LogReader reads what is committed: leaves, tree nodes, proofs, checkpoints, the trust file, up to
a size it is told (the writer's committed size; under `puhui serve`, the writer process's, as the
front learns it). Registry is the one writer of a log: for every submitted event it checks the
body (SCHEMA), authenticates the signer, judges the rules against the in-memory State, builds the
leaf with the next seq and the registry's time, applies it and extends the Merkle frontier. A
group of events then commits in one transaction (events, tree nodes, activity records,
projections) before any of them is acknowledged. Before that transaction it asserts what the
commit must keep true: the frontier is as large as the State, the new seqs extend the committed
log without a gap, and the grams are conserved. If the commit (or an assertion) fails, the State
is reloaded from the database, so memory never runs ahead of what is durable.
"""

from __future__ import annotations

import base64
import datetime as dt
import logging
import threading
from dataclasses import dataclass
from typing import Any, Callable, Iterator, NamedTuple, Sequence

from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError

from keys.signer import Signer
from ledger import merkle
from ledger.batch_blocks import ReplayedBlocks
from ledger.canonical import check_value
from ledger.errors import InvariantBroken, Rejected, StorageError
from ledger.leaf import Leaf, committed_leaf, log_format_of, make_leaf, parse_leaf
from ledger.note import parse_verifier_key, sign_checkpoint, verifier_key
from ledger.integrity import MAX_PROBLEMS, IntegrityReport, check_by_replay, check_loaded, with_problems
from ledger.page_indexes import fill_from_log, totals_fold_problems, update_indexes
from ledger.projections import Changes, ProjectionDigest, load_state
from ledger.register_totals import TotalsChanges
from ledger.replay import replay
from ledger.rules import Verdict, apply, authenticate, judge, signing_message
from ledger.schema import ID_FIELD, check_submission, format_time, key_id_of
from ledger.events.activities import CheckedFile, readable_records, records_after
from ledger.state import ActivityRecord, Key, State, SubjectDay, add_subject_days, root_keys_from
from ledger.store import SCHEMA_VERSION, Store, StoredNodes

MAX_GROUP_EVENTS = 10_000

log = logging.getLogger(__name__)


def sign_event(signer: Signer, origin: str, event_type: str, body: dict[str, Any], *,
               log_format: int) -> dict[str, Any]:
    """A submission signed per spec section 2 for a log of this format: what every client sends."""
    signature = signer.sign(signing_message(origin, event_type, body, log_format))
    return {"type": event_type, "body": body,
            "auth": {"key": key_id_of(signer.public_key), "sig": base64.b64encode(signature).decode()}}


@dataclass(frozen=True)
class Appended:
    """An accepted event, durable once append/append_many returns it."""
    seq: int
    leaf_hash: bytes
    time: str
    effects: dict[str, Any] | None
    leaf: bytes
    duplicate: bool = False  # True when this very event was already in the log: nothing new was written

    def as_json(self) -> dict[str, Any]:
        result: dict[str, Any] = {"seq": self.seq, "leaf_hash": self.leaf_hash.hex(), "time": self.time}
        if self.effects is not None:
            result["effects"] = self.effects
        return result


class _StoredActivities:
    """ActivityIndex over the activities table plus the records judged but not yet committed."""

    def __init__(self, store: Store):
        self._store = store
        self._pending_ids: set[str] = set()
        self._pending_fingerprints: set[str] = set()
        self._pending_dates: dict[str, str] = {}  # format 2, as MemoryActivityIndex
        self._pending_credited_g: dict[tuple[str, str], int] = {}
        self._rows: list[dict[str, Any]] = []

    def known_activity_ids(self, activity_ids: list[str]) -> set[str]:
        return self._known("activity_id", activity_ids, self._pending_ids)

    def known_fingerprints(self, fingerprints: list[str]) -> set[str]:
        return self._known("fingerprint", fingerprints, self._pending_fingerprints)

    def _known(self, column: str, values: list[str], pending: set[str]) -> set[str]:
        with self._store.engine.connect() as conn:
            return pending.intersection(values) | self._store.existing(conn, column, values)

    def subject_days(self, subjects: list[str], methodology_id: str) -> dict[str, SubjectDay]:
        """The committed days (the database) joined with those of the group not yet committed."""
        with self._store.engine.connect() as conn:
            found = {subject: SubjectDay(day, credited_g)
                     for subject, day, credited_g in self._store.subject_days(conn, subjects, methodology_id)}
        if self._pending_dates:
            dates, credited = self._pending_dates, self._pending_credited_g
            for subject in subjects:
                day = dates.get(subject)
                if day is not None:
                    logged_g = found[subject].credited_g if subject in found else 0
                    found[subject] = SubjectDay(day, logged_g + credited.get((subject, methodology_id), 0))
        return found

    def add(self, batch_id: str, methodology_id: str, records: list[ActivityRecord]) -> None:
        first_row = len(self._rows)
        for position, r in enumerate(records):
            self._pending_ids.add(r.activity_id)
            self._pending_fingerprints.add(r.fingerprint)
            self._rows.append({"activity_id": r.activity_id, "fingerprint": r.fingerprint, "batch_id": batch_id,
                               "position": position, "methodology_id": methodology_id, "subject": r.subject, "occurred_at": r.occurred_at,
                               "reduction_g": r.reduction_g, "record": r.data})
        if records and records[0].occurred_on is not None:  # format 2 (a format-1 row leaves occurred_on null)
            for row, r in zip(self._rows[first_row:], records):
                row["occurred_on"] = r.occurred_on
            add_subject_days(self._pending_dates, self._pending_credited_g, methodology_id, records)

    def flush(self, conn: Connection) -> None:
        self._store.insert_activities(conn, self._rows)

    def clear(self) -> None:
        self._pending_ids.clear()
        self._pending_fingerprints.clear()
        self._pending_dates.clear()
        self._pending_credited_g.clear()
        self._rows.clear()


class _Judged(NamedTuple):
    """An event found acceptable, before it is applied."""
    event_type: str
    body: dict[str, Any]
    auth: dict[str, str]
    key: Key
    verdict: Verdict


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class LogReader:
    """The committed log of one database, read-only: leaves, proofs, checkpoints, the trust file.

    Sized by `size_source`, the writer's committed size: a proof is never asked of a tree the
    writer has not committed yet."""

    def __init__(self, store: Store, size_source: Callable[[], int]):
        self.store = store
        self.meta = store.read_meta()
        if "origin" not in self.meta:
            raise StorageError("this database holds no Puhui registry (run `puhui init`)")
        if self.meta.get("schema_version") != SCHEMA_VERSION:
            raise StorageError(f"this database has storage schema {self.meta.get('schema_version')}, this Puhui reads "
                               f"schema {SCHEMA_VERSION}: export it with the Puhui that wrote it")
        self.origin: str = self.meta["origin"]
        self.log_key = parse_verifier_key(self.meta["log_key"])
        self._size_source = size_source
        self._log_format: int | None = None

    def close(self) -> None:
        self.store.close()

    # -- checkpoints -----------------------------------------------------------------------------

    def latest_checkpoint(self) -> str | None:
        latest = self._latest_checkpoint()
        return None if latest is None else latest[2]

    def latest_checkpoint_size(self) -> int:
        """The tree size of the latest signed checkpoint; 0 when none is signed yet."""
        latest = self._latest_checkpoint()
        return 0 if latest is None else latest[0]

    def checkpoint_covering(self, seq: int) -> str | None:
        """The latest signed checkpoint if its tree holds leaf `seq`, else None (one must be signed)."""
        latest = self._latest_checkpoint()
        return None if latest is None or latest[0] <= seq else latest[2]

    def _latest_checkpoint(self) -> tuple[int, bytes, str] | None:
        with self.store.engine.connect() as conn:
            return self.store.latest_checkpoint(conn)

    def checkpoint_notes(self) -> Iterator[str]:
        with self.store.engine.connect() as conn:
            yield from self.store.checkpoint_notes(conn)

    # -- the tree and its leaves -----------------------------------------------------------------

    @property
    def log_format(self) -> int:
        """1 or 2, as the genesis says (spec "Formats"); a log without its genesis yet has none."""
        if self._log_format is None:
            with self.store.engine.connect() as conn:
                genesis = self.store.leaf(conn, 0)
            if genesis is None:
                raise StorageError("this registry has no genesis yet, so no log format")
            self._log_format = log_format_of(genesis)
        return self._log_format

    @property
    def size(self) -> int:
        return self._size_source()

    def root(self, size: int | None = None) -> bytes:
        size = self.size if size is None else size
        self._check_size(size)
        with self.store.engine.connect() as conn:
            return merkle.root(StoredNodes(self.store, conn), size)

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        self._check_size(size)
        with self.store.engine.connect() as conn:
            return merkle.inclusion_proof(StoredNodes(self.store, conn), index, size)

    def consistency_proof(self, first: int, second: int) -> list[bytes]:
        self._check_size(second)
        with self.store.engine.connect() as conn:
            return merkle.consistency_proof(StoredNodes(self.store, conn), first, second)

    def _check_size(self, size: int) -> None:
        if not 0 <= size <= self.size:
            raise ValueError(f"tree size {size} is beyond the log's size {self.size}")

    def leaf(self, seq: int) -> Leaf:
        with self.store.engine.connect() as conn:
            data = self.store.leaf(conn, seq)
        if data is None:
            raise KeyError(seq)
        return parse_leaf(data, self.log_format)

    def leaf_bytes(self, start: int = 0, stop: int | None = None) -> Iterator[tuple[int, bytes]]:
        with self.store.engine.connect() as conn:
            yield from self.store.leaves(conn, start, stop)

    def batch_records(self, batch_id: str) -> Iterator[bytes]:
        with self.store.engine.connect() as conn:
            yield from self.store.batch_records(conn, batch_id)

    def trust(self) -> dict[str, Any]:
        """The trust file of spec section 8, for auditors."""
        trust = {"origin": self.origin, "log_key": self.meta["log_key"], "root_keys": list(self.meta["root_keys"])}
        if self.meta.get("witnesses"):
            trust |= {"witnesses": self.meta["witnesses"], "witness_quorum": self.meta["witness_quorum"]}
        return trust


class Registry(LogReader):
    """The single writer of a log: it holds the State, judges and appends events, signs checkpoints.
    As a LogReader it is sized by what it has committed."""

    writer_lock_timeout_s = 30.0

    def __init__(self, store: Store, *, log_signer: Signer | None = None,
                 clock: Callable[[], dt.datetime] = _utc_now):
        super().__init__(store, self._committed)
        if log_signer is not None and bytes(log_signer.public_key) != self.log_key.public_key:
            raise StorageError("the log key given is not this registry's log key")
        self._log_signer = log_signer
        self._clock = clock
        self._lock = threading.RLock()
        self._is_writer = False
        self._activities = _StoredActivities(store)
        self._resent: dict[int, Leaf] = {}  # a group's committed priors, by seq (_committed_priors)
        self._root_keys = root_keys_from(self.meta["root_keys"])
        self._load()

    # -- life cycle ------------------------------------------------------------------------------

    @classmethod
    def create(cls, url: str, *, log_format: int, origin: str, name: str, rules: dict[str, Any], root_signer: Signer,
               log_public_key: bytes, log_signer: Signer | None = None, witnesses: Sequence[str] = (),
               witness_quorum: int = 0, clock: Callable[[], dt.datetime] = _utc_now) -> "Registry":
        """A new registry of this log format: schema, trust anchors, and the genesis event signed by
        the root key (format 2's rules carry review_quorum)."""
        store = Store.connect(url)
        store.create_schema()
        with store.engine.begin() as conn:
            if store.size(conn) or store.read_meta():
                raise StorageError("this database already holds a registry")
            meta: dict[str, Any] = {"schema_version": SCHEMA_VERSION, "origin": origin, "log_key": verifier_key(origin, bytes(log_public_key)),
                                    "root_keys": [base64.b64encode(bytes(root_signer.public_key)).decode()]}
            if witnesses:
                meta |= {"witnesses": list(witnesses), "witness_quorum": witness_quorum}
            store.write_meta(conn, meta)
        registry = cls(store, log_signer=log_signer, clock=clock)
        body = {"origin": origin, "name": name, "rules": rules, "request_id": "genesis"}
        if log_format == 2:
            body["format"] = 2
        registry.append(sign_event(root_signer, origin, "registry.genesis", body, log_format=log_format))
        return registry

    @classmethod
    def open(cls, url: str, *, log_signer: Signer | None = None,
             clock: Callable[[], dt.datetime] = _utc_now) -> "Registry":
        store = Store.connect(url)
        if not store.has_schema():
            raise StorageError(f"no Puhui registry at {url}")
        return cls(store, log_signer=log_signer, clock=clock)

    def _load(self) -> None:
        self._activities.clear()
        self._digest = ProjectionDigest()
        with self.store.engine.connect() as conn:
            try:
                self.state: State = load_state(self.store, conn, self._root_keys, self.meta, digest=self._digest)
            except (KeyError, TypeError, ValueError, AssertionError) as exc:  # rows edited into nonsense
                raise StorageError(f"the projection rows cannot be read ({type(exc).__name__}: {exc}); "
                                   f"`puhui check DIR` compares them with the log") from None
            self._frontier = merkle.Frontier.from_reader(StoredNodes(self.store, conn), self.state.size)
        self._committed_size = self.state.size
        self.state.rules = self._rules_in_force()

    def check_integrity(self, *, full: bool = False) -> IntegrityReport:
        """The projections against the log (ledger.integrity): conservation and the digest; with
        full, or for a database from before the digest, a replay of the whole log as well."""
        with self.store.engine.connect() as conn:
            report = check_loaded(self.store, conn, self.state, self._digest)
        if full or not report.digest_recorded:
            totals = TotalsChanges()  # the register totals folded from the leaves the replay reads
            blocks = ReplayedBlocks(self.store, MAX_PROBLEMS)  # the batches' block hashes it hashes

            def leaves() -> Iterator[bytes]:
                for _, data in self.leaf_bytes():
                    totals.note(parse_leaf(data, self.log_format))
                    yield data
            try:
                replayed = replay(leaves(), origin=self.origin, root_keys=self._root_keys,
                                  batch_records=self.batch_records, batch_blocks=blocks.compare)
            except Rejected as exc:
                return IntegrityReport(report.size, "replay", (*report.problems, f"the log itself breaks a rule: "
                                       f"{exc.code}: {exc.message}"), report.digest_recorded)
            report = check_by_replay(self.state, replayed, report)
            with self.store.engine.connect() as conn:
                report = with_problems(report, totals_fold_problems(conn, totals) + blocks.problems)
        return report

    def _rules_in_force(self) -> dict[str, Any] | None:
        """The rules of the latest registry.genesis or registry.rules event."""
        with self.store.engine.connect() as conn:
            seq = self.store.last_seq_of_types(conn, ("registry.genesis", "registry.rules"))
            return None if seq is None else parse_leaf(self.store.leaf(conn, seq), self.log_format).body["rules"]


    def _committed(self) -> int:
        return self._committed_size

    # -- writing ---------------------------------------------------------------------------------

    def append(self, event: Any, records: Sequence[Any] | CheckedFile | None = None) -> Appended:
        """Append one signed event; raises Rejected with the spec's code if the rules refuse it."""
        [result] = self.append_many([(event, records)])
        if isinstance(result, Rejected):
            raise result
        return result

    def append_many(self, items: Sequence[tuple[Any, Sequence[Any] | CheckedFile | None]]) -> list[Appended | Rejected]:
        """Judge events in order, then commit the accepted ones in one transaction (group commit)."""
        if len(items) > MAX_GROUP_EVENTS:
            raise ValueError(f"at most {MAX_GROUP_EVENTS} events a group")
        with self._lock:
            self.become_writer()
            results: list[Appended | Rejected] = []
            accepted: list[tuple[Leaf, bytes, str]] = []
            nodes: list[tuple[int, int, bytes]] = []
            changes = Changes()
            time = self._now()  # one moment of sequencing for the whole group
            try:
                self._resent = self._committed_priors(items)
                for event, records in items:
                    try:
                        results.append(self._admit(event, records, time, accepted, nodes, changes))
                    except Rejected as rejection:
                        results.append(rejection)
                if accepted:
                    self._check_group(accepted)
                    self._commit(accepted, nodes, changes)
                    self._committed_size = self.state.size
            except BaseException:
                self._load()  # memory ran ahead of the database: take the database's word
                raise
            finally:
                self._resent = {}
            self._activities.clear()
            return results

    def _committed_priors(self, items: Sequence[tuple[Any, Any]]) -> dict[int, Leaf]:
        """The committed events that the group's events may resend (same signer and request_id),
        read in one query: one read an event cost a resend about 200 us, and 8 addresses resending
        batches of 1,000 public events kept the writer from everyone else (trial 11). Read as
        committed_leaf: the writer checked them before committing them."""
        requests, committed = self.state.requests, self._committed_size
        seqs = set()
        for event, _ in items:
            try:
                prior = requests.get((event["auth"]["key"], event["body"]["request_id"]))
            except (TypeError, KeyError, IndexError):
                continue  # malformed: its shape is judged in its turn
            if prior is not None and prior < committed:
                seqs.add(prior)
        if not seqs:
            return {}
        with self.store.engine.connect() as conn:
            return {seq: committed_leaf(data) for seq, data in self.store.leaves_at(conn, sorted(seqs)).items()}

    def _admit(self, event: Any, records: Sequence[Any] | CheckedFile | None, time: str, accepted: list[tuple[Leaf, bytes, str]],
               nodes: list[tuple[int, int, bytes]], changes: Changes) -> Appended:
        try:
            admitted = self._judged(event, records, accepted)
        except (Rejected, StorageError, SQLAlchemyError):
            raise  # a refusal, or the database failing: the group's concern
        except Exception as exc:  # noqa: BLE001 - a fault of ours that this event's content triggers
            # Nothing has touched the State yet: refuse this event alone, keep the group and the State.
            log.exception("an event could not be judged; it is refused alone (SCHEMA)")
            raise Rejected("SCHEMA", f"this event could not be judged ({type(exc).__name__}); it was refused and "
                                     f"nothing was written: sending it again unchanged cannot succeed") from None
        if isinstance(admitted, Appended):
            return admitted  # a resend of an event already in the log
        event_type, body, auth, key, verdict = admitted
        if event_type == "activity.batch":  # a house rule on new batches only: replay judges by the spec alone
            future = records_after(verdict.records or (), time)
            if future is not None:
                raise future
        state = self.state
        seq = state.size
        leaf = make_leaf(seq, time, event_type, body, auth, verdict.effects)
        digest = merkle.leaf_hash(leaf.data)
        apply(state, seq, time, event_type, body, key.key_id, verdict.effects,
              activities=self._activities, records=verdict.records)
        nodes.extend(self._frontier.append(digest))
        changes.note(leaf, verdict.block_hashes)
        accepted.append((leaf, digest, key.key_id))
        return Appended(seq, digest, time, leaf.effects, leaf.data)

    def _judged(self, event: Any, records: Sequence[Any] | CheckedFile | None,
                accepted: list[tuple[Leaf, bytes, str]]) -> "_Judged | Appended":
        """Everything before the State changes, cheapest first: the submission's own shape, then who
        signed it (key known, active, signature), and only then the records, whose checks cost in
        proportion to their number; then the rules. Reads the State, never writes it."""
        check_value(event)
        state = self.state
        # Before the genesis the log has no format yet: a genesis body says its own (schema.check_body).
        event_type, body, auth = check_submission(event, state.log_format or 1)
        prior = state.requests.get((auth["key"], body["request_id"]))
        if prior is not None:
            original = self._pending_or_stored(prior, accepted)
            if original.submission() == event:
                return Appended(original.seq, merkle.leaf_hash(original.data), original.time, original.effects,
                                original.data, duplicate=True)
        key = authenticate(state, self.origin, event_type, body, auth)
        if records is not None and not isinstance(records, CheckedFile):
            records = readable_records(records)
        verdict = judge(state, event_type, body, key, activities=self._activities, records=records)
        return _Judged(event_type, body, auth, key, verdict)

    def become_writer(self) -> None:
        """Take the database's writer lock, read the log afresh and check the projections against
        it; done before the first write, and again after the lock was lost (a broken lock
        connection takes the lock with it). A long-lived writer (`puhui serve`'s) calls it at
        start, so that no one can replace or write the database under it while it is idle."""
        if self._is_writer and self.store.holds_writer_lock():
            return
        self.store.acquire_writer_lock(self.writer_lock_timeout_s)
        self._load()
        # Never write over projections the log does not back: they would be spent and signed over.
        self.integrity = self.check_integrity()
        if not self.integrity.ok:
            raise StorageError("refusing to write: the projections do not match the log: "
                               + "; ".join(self.integrity.problems) + ". Run `puhui check DIR` (docs/operations.md)")
        if not self.integrity.digest_recorded:  # a database from before the digest, now replayed and found equal
            with self.store.writing() as conn:
                self.store.write_projection_digest(conn, self.state.size, self._digest.hex())
        # A database from before the page indexes (issue 13): filled from the log, once.
        fill_from_log(self.store, self.state.size, self._digest)
        update_indexes(self.store)
        self._is_writer = True

    def _pending_or_stored(self, seq: int, accepted: list[tuple[Leaf, bytes, str]]) -> Leaf:
        if accepted and seq >= accepted[0][0].seq:
            return accepted[seq - accepted[0][0].seq][0]
        return self._resent.get(seq) or self.leaf(seq)

    def _check_group(self, accepted: list[tuple[Leaf, bytes, str]]) -> None:
        """What a commit must keep true, asserted before the group becomes durable (O(1) a group)."""
        state = self.state
        first, last = accepted[0][0].seq, accepted[-1][0].seq
        if not (first == self._committed_size and last == state.size - 1 and len(accepted) == last - first + 1):
            raise InvariantBroken(f"seqs {first}..{last} do not extend the committed log of {self._committed_size} "
                                  f"leaves to {state.size}")
        if self._frontier.size != state.size:
            raise InvariantBroken(f"a frontier of {self._frontier.size} leaves for a log of {state.size}")
        if not state.grams_conserved():
            raise InvariantBroken(f"grams not conserved: {state.next_serial} issued, {state.active_g} active, "
                                  f"{state.retired_g} retired, {state.cancelled_g} cancelled")

    def _commit(self, accepted: list[tuple[Leaf, bytes, str]], nodes: list[tuple[int, int, bytes]],
                changes: Changes) -> None:
        rows = [{"seq": leaf.seq, "type": leaf.type, "signer": signer, "request_id": leaf.body["request_id"],
                 "time": leaf.time, "leaf": leaf.data, "leaf_hash": digest,
                 "ref": leaf.body.get(ID_FIELD.get(leaf.type, ""))} for leaf, digest, signer in accepted]
        with self.store.writing() as conn:
            # A second writer is caught by the seq primary key: its rows and ours cannot both commit.
            self.store.insert_events(conn, rows)
            self.store.insert_nodes(conn, nodes)
            self._activities.flush(conn)
            changes.write(self.store, conn, self.state, self._digest)

    def _now(self) -> str:
        now = format_time(self._clock())
        last = self.state.last_time
        return last if last is not None and now < last else now

    # -- checkpoints -----------------------------------------------------------------------------

    def checkpoint(self, witnesses: Sequence[Any] = ()) -> str:
        """Sign a checkpoint of the current tree, consistent with the last one signed, or fail.

        Each witness (ledger.note.Witness or alike) checks the consistency proof from what it saw
        before and adds its cosignature line.
        """
        if self._log_signer is None:
            raise StorageError("this registry was opened without its log key: it cannot sign checkpoints")
        with self._lock:
            self.become_writer()
            size, root = self.state.size, self._frontier.root()
            with self.store.writing() as conn:
                latest = self.store.latest_checkpoint(conn)
                if latest is not None and latest[0] == size:
                    return latest[2]
                previous_size = 0 if latest is None else latest[0]
                proof = merkle.consistency_proof(StoredNodes(self.store, conn), previous_size, size)
                if latest is not None and not merkle.verify_consistency(previous_size, size, latest[1], root, proof):
                    raise StorageError(f"refusing to sign: the tree at {size} is not consistent with the checkpoint at {previous_size}")
                note = sign_checkpoint(self.origin, size, root, self._log_signer)
                for witness in witnesses:
                    # Each witness proves consistency from what it saw last, not from what we signed last.
                    seen_size, _ = witness.last_seen(self.origin)
                    witness_proof = merkle.consistency_proof(StoredNodes(self.store, conn), seen_size, size)
                    note = witness.cosign_checkpoint(note, witness_proof, self.log_key)
                self.store.add_checkpoint(conn, previous_size, size, root, note)
            return note
