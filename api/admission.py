"""What the HTTP front decides before the writer sees a submission: its shape (SCHEMA), a key the
writer cannot know by its turn (KEY_UNKNOWN, Signers), and for an activity upload its signer in
full (KEY_UNKNOWN, KEY_REVOKED, SIGNATURE) before a single record is parsed, forged
signatures in bulk (SignatureScreen), then its records by every rule that needs no state (ledger.events.activities.check_file: parsing,
shapes, inputs, count, total, period, root). So a malformed or unsigned request, or a file that
does not match its batch, costs the writer nothing: such a file reaches the writer as its code
alone, and a sound one as records already parsed, for the rules that need the log. The writer
checks the event again (ledger.registry.Registry), and its word is final."""

from __future__ import annotations

import asyncio
import collections
import functools
import logging
import random
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, NamedTuple, Sequence

from sqlalchemy.exc import SQLAlchemyError

from api.bodies import upload_records
from api.errors import UNAVAILABLE, ApiError
from api.processes import SpawnedProcesses
from ledger.canonical import check_value
from ledger.errors import Rejected, StorageError
from ledger.events.activities import CheckedFile, check_file, readable_records, settle_early
from ledger.events.keys import KeyRegister, KeyRevoke
from ledger.queries import Queries
from ledger.registry import LogReader
from ledger.rules import unknown_key, verify_signer
from ledger.schema import check_submission
from ledger.state import Key, root_keys_from
from ledger.store import Store

MAX_FILE_CHECKS = 2  # processes judging large uploads at once
INLINE_FILE_BYTES = 64 << 10  # smaller files are judged on the event loop

KEY_EVENT_TYPES = frozenset((KeyRegister.name, KeyRevoke.name))  # the events that change which keys sign
SUSPECT_KEY_S = 600.0        # a key one of whose signatures failed has every event checked here this long
MAX_SUSPECT_KEYS = 10_000    # suspects remembered (the oldest suspicion goes first)
MAX_SAMPLED_KEYS = 16        # keys of one batch whose signature is sampled
MAX_CACHED_KEYS = 10_000     # registered keys remembered between key events
SIGNATURE_CHECK_THREADS = 2  # for whole requests' checks; Ed25519 verification releases the interpreter lock

log = logging.getLogger(__name__)


def schema_refusal(event: Any, log_format: int) -> Rejected | None:
    """Why this submission cannot be an event (SCHEMA or ENCODING), or None: the body-only checks."""
    try:
        check_value(event)
        check_submission(event, log_format)
    except Rejected as rejection:
        return rejection
    except Exception as exc:  # noqa: BLE001 - a fault of ours; the writer would refuse it alone too
        log.exception("a submission could not be checked; it is refused (SCHEMA)")
        return Rejected("SCHEMA", f"this event could not be checked ({type(exc).__name__}); it was refused and "
                                  f"nothing was written: sending it again unchanged cannot succeed")
    return None


class Signers:
    """The signing keys as the front knows them: root keys from the trust anchors, the ids of the
    registered keys as committed, and the keys that key events forwarded and not yet answered
    name (`pending`). Every write reaches the writer through this front, so a key registered by
    its turn is committed (re-read when the log grew since the last look: one indexed read of the
    keys registered since, about 120 us, at most once per group committed) or pending. Only a key in neither is refused here (KEY_UNKNOWN, the
    writer's very answer: a key is never unregistered, so no earlier event of it can be resent);
    whatever is uncertain goes to the writer, whose word is final.

    Revoked keys and signatures are left to the writer for single events: a resend of an event
    signed before its key's revocation is a resend (200), which only a scan of the log could tell
    here (no index on signer and request_id), and verifying every honest event's signature twice
    would cost the front about 50 us an event. An upload's signer is authenticated in full
    (authenticate): uploads are few and large."""

    def __init__(self, log_reader: LogReader, queries: Queries, committed_size: Callable[[], int]):
        self._root_keys = root_keys_from(log_reader.meta["root_keys"])
        self._origin = log_reader.origin
        self._log_format = log_reader.log_format
        self._queries = queries
        self._committed_size = committed_size
        self._looked_at_size = committed_size()  # every key registered below it is in _registered
        self._registered = set(queries.registered_key_ids())
        self._pending: collections.Counter[str] = collections.Counter()
        self._settled_since_look = False
        # Key events admitted and not yet handed to the writer, by the key they name.
        self._unsubmitted: dict[str, list[asyncio.Future[None]]] = {}
        # Registered keys as read, kept until a key event settles (key_generation counts those):
        # every key.revoke passes through admit and settle, so a key kept here is as committed.
        self._keys: dict[str, Key] = {}
        self.key_generation = 0

    def unknown_key(self, event: Any) -> Rejected | None:
        """KEY_UNKNOWN for a submission (that schema_refusal passed) whose key the writer cannot
        know by its turn, else None."""
        key_id = event["auth"]["key"]
        if key_id in self._root_keys or key_id in self._registered or key_id in self._pending:
            return None
        size = self._committed_size()
        if size != self._looked_at_size or self._settled_since_look:  # one read per group committed since
            try:
                self._registered.update(self._queries.registered_key_ids(self._looked_at_size))
            except (SQLAlchemyError, StorageError):
                return None  # unsure: the writer judges it
            self._looked_at_size, self._settled_since_look = size, False
            if key_id in self._registered:
                return None
        return unknown_key(key_id)

    def authenticate(self, event: Any) -> Key | None:
        """The signer of an upload that schema_refusal passed: known, active, signature valid
        (read from the database: a key revoked a moment ago stops at once); None when a key event
        forwarded and not yet answered names it (the writer judges it)."""
        event_type, body, auth = check_submission(event, self._log_format)
        if auth["key"] in self._pending:
            return None
        key = self._root_keys.get(auth["key"]) or self._queries.registered_key(auth["key"])
        return verify_signer(key, self._origin, event_type, body, auth, self._log_format)

    def admit(self, events: Sequence[Any], refusals: list[Rejected | None], admitted: "Admitted") -> None:
        """Fill in each event's refusal here (unknown_key) in `refusals` (all None on the way in).
        A key event that passes marks pending the key it names, for the events after it (a batch
        may register a key and use it); one refused marks nothing (trial 11: a key.revoke of an
        unknown signer naming key X let 999 events of X through to the writer). Each key marked is
        appended to `admitted.named`, for settle once the events' outcome is known, even if this
        raises midway. The writer must see an event after the key events admitted before it that
        name its signer: their submissions not yet made go to `admitted.waits`, and this request's
        own key events to `admitted.own`, for submitted() to signal."""
        assert len(events) == len(refusals), "one refusal slot per event"
        loop = asyncio.get_running_loop()
        for place, event in enumerate(events):
            refusal = refusals[place] = self.unknown_key(event)
            if refusal is not None:
                continue
            for earlier in self._unsubmitted.get(event["auth"]["key"], ()):
                if all(earlier is not own.done for own in admitted.own) and earlier not in admitted.waits:
                    admitted.waits.append(earlier)
            if event["type"] in KEY_EVENT_TYPES:
                key_id = event["body"]["key_id"]
                self._pending[key_id] += 1
                admitted.named.append(key_id)
                submission = Submission(key_id, loop.create_future())
                self._unsubmitted.setdefault(key_id, []).append(submission.done)
                admitted.own.append(submission)

    def submitted(self, admitted: "Admitted") -> None:
        """The request's events went to the writer (or never will): the requests admitted after
        it that wait on its key events go on."""
        for submission in admitted.own:
            if not submission.done.done():
                submission.done.set_result(None)
            waiting = self._unsubmitted.get(submission.key_id)
            if waiting is not None:
                waiting.remove(submission.done)
                if not waiting:
                    del self._unsubmitted[submission.key_id]

    def pending_elsewhere(self, key_id: str, admitted: "Admitted") -> bool:
        """A key event of another request, forwarded and not yet answered, names this key."""
        return self._pending[key_id] > admitted.named.count(key_id) if key_id in self._pending else False

    def settle(self, named: list[str]) -> None:
        """The key events that named these keys are answered (or lost): what they did is
        committed, to be read at the next unknown key."""
        for key_id in named:
            self._pending[key_id] -= 1
            if not self._pending[key_id]:
                del self._pending[key_id]
        if named:
            self._settled_since_look = True  # look again, whatever the size says
            self._keys.clear()
            self.key_generation += 1

    def is_committed(self, key_id: str) -> bool:
        """A root key, or a key registered as last looked at."""
        return key_id in self._root_keys or key_id in self._registered

    def cached_key(self, key_id: str) -> Key | None:
        """A root key, or a registered key as read since the last key event settled, else None."""
        return self._root_keys.get(key_id) or self._keys.get(key_id)

    def read_key(self, key_id: str) -> Key | None:
        """A registered key as committed, read from the database (any thread)."""
        return self._queries.registered_key(key_id)

    def keep_keys(self, keys: dict[str, Key], generation: int) -> None:
        """Keys read by read_key while key_generation was `generation`: kept unless a key event
        settled since (it may have revoked one of them)."""
        if generation != self.key_generation:
            return
        if len(self._keys) + len(keys) > MAX_CACHED_KEYS:
            self._keys.clear()
        self._keys.update(keys)

    @property
    def origin(self) -> str:
        return self._origin

    @property
    def log_format(self) -> int | None:
        return self._log_format


class Submission(NamedTuple):
    """A key event admitted and not yet handed to the writer: the key it names, and the future
    set once it is (or never will be)."""
    key_id: str
    done: "asyncio.Future[None]"


@dataclass(slots=True)
class Admitted:
    """What Signers.admit decided for one request beside its refusals."""
    named: list[str] = field(default_factory=list)  # keys its key events marked pending
    waits: list["asyncio.Future[None]"] = field(default_factory=list)  # earlier key events it must follow
    own: list[Submission] = field(default_factory=list)  # its key events'


class _KeyCheck(NamedTuple):
    """One key's events of a request, by their places in it, to be checked all or by one sample."""
    key_id: str
    places: list[int]
    every_event: bool


@dataclass(slots=True)
class _Screened:
    """What the check threads found: refusals by place, keys that failed a sample, keys read, and
    the places whose signature was checked."""
    refusals: dict[int, Rejected]
    forging_keys: set[str]
    keys_read: dict[str, Key]
    checked: set[int]


class SignatureScreen:
    """Signatures checked in the front, so that a flood of events naming a registered key over
    forged signatures costs the writer nothing (trial 11: one address sending 14 batches of 1,000
    stalled every client's writes 2 to 4 s, the writer verifying them). Checking every signature
    here as well as in the writer would cost the front about 50 us an honest event, so only:
    every event of a suspect key (one whose signature failed lately, here or in the writer), and
    in a batch one event drawn at random per key, whose failure makes its key suspect and has
    the rest of its events checked here. A forgery refused here gets the writer's very answer
    (rules.verify_signer): the writer's resend check compares the whole signed event, so a bad
    signature can never pass as a resend there. Keys that a key event in flight names (of another
    request, or a genuine one of the request), unknown keys and revoked keys are left to the
    writer, which answers KEY_REVOKED before it looks at a signature and 200 to the resend of an
    event signed before its key's revocation. The checks run in threads of their own, off the
    event loop, after Signers.admit: a request admitted later that depends on this one's key
    events waits for its submission (Admitted.waits), so the writer's order is the admission's. The sender of a forgery pays for it as for
    one the writer refused (api/limits.py: a SIGNATURE refusal is charged to its address)."""

    def __init__(self, signers: Signers):
        self._signers = signers
        self._suspects: collections.OrderedDict[str, float] = collections.OrderedDict()  # key id: until
        self._threads = ThreadPoolExecutor(SIGNATURE_CHECK_THREADS, thread_name_prefix="signature-check")
        # Samples (one signature a key) have a thread of their own: an honest batch's sample never
        # waits behind the checks of a suspect key's batches of forgeries.
        self._sampling_thread = ThreadPoolExecutor(1, thread_name_prefix="signature-sample")

    def suspect(self, key_id: str) -> None:
        """A signature claiming key_id failed: its events are checked here for SUSPECT_KEY_S."""
        self._suspects[key_id] = time.monotonic() + SUSPECT_KEY_S
        self._suspects.move_to_end(key_id)
        if len(self._suspects) > MAX_SUSPECT_KEYS:
            self._suspects.popitem(last=False)

    def is_suspect(self, key_id: str, now: float) -> bool:
        until = self._suspects.get(key_id)
        if until is None:
            return False
        if until < now:
            del self._suspects[key_id]
            return False
        return True

    async def screen(self, events: Sequence[Any], refusals: list[Rejected | None], admitted: Admitted, *,
                     sample: bool) -> None:
        """Fill in SIGNATURE for each forged event found among those Signers.admit passed (None in
        `refusals`); `sample` for a batch (one event per key, MAX_SAMPLED_KEYS keys). The request's
        key events are checked first, all of them: a key that a genuine one names, or that a key
        event of another request in flight names, is left to the writer (it may be registered or
        revoked by the event's turn); one that only a forged one names is not (a forged key.revoke
        of X would otherwise let a batch of forged events of X through)."""
        assert len(events) == len(refusals), "one refusal slot per event"
        if self._signers.log_format is None:
            return  # before the genesis: the writer judges every signature
        now = time.monotonic()
        places_by_key: dict[str, list[int]] = {}
        key_events: list[int] = []
        for place, (event, refusal) in enumerate(zip(events, refusals)):
            if refusal is None:
                places_by_key.setdefault(event["auth"]["key"], []).append(place)
                if event["type"] in KEY_EVENT_TYPES:
                    key_events.append(place)
        screened = [key_id for key_id in places_by_key
                    if self._signers.is_committed(key_id) and not self._signers.pending_elsewhere(key_id, admitted)]
        checks = [_KeyCheck(key_id, places_by_key[key_id], True) for key_id in screened if self.is_suspect(key_id, now)]
        if sample:
            unsampled = [key_id for key_id in screened if not self.is_suspect(key_id, now)]
            for key_id in random.sample(unsampled, min(len(unsampled), MAX_SAMPLED_KEYS)):
                checks.append(_KeyCheck(key_id, places_by_key[key_id], False))
        key_event_places = set(key_events)
        key_event_checks = [_KeyCheck(key_id, places, True) for key_id in screened
                            if (places := [p for p in places_by_key[key_id] if p in key_event_places])]
        if not checks and not key_event_checks:
            return
        keys = {check.key_id: self._signers.cached_key(check.key_id) for check in checks + key_event_checks}
        generation = self._signers.key_generation
        loop = asyncio.get_running_loop()
        whole = bool(key_event_checks) or any(check.every_event for check in checks)
        found = await loop.run_in_executor(self._threads if whole else self._sampling_thread, self._checked,
                                           events, key_events, key_event_checks, checks, keys, whole)
        if found.forging_keys and not whole:  # a sample failed: the rest of its key's events, with the whole checks
            rest = [_KeyCheck(check.key_id, check.places, True) for check in checks if check.key_id in found.forging_keys]
            keys.update(found.keys_read)
            more = await loop.run_in_executor(self._threads, self._checked, events, [], [], rest, keys, True,
                                              found.checked)
            found.refusals.update(more.refusals)
        self._signers.keep_keys(found.keys_read, generation)
        for key_id in found.forging_keys:
            self.suspect(key_id)
        for place, refusal in found.refusals.items():
            assert refusals[place] is None, "only events admitted are screened"
            refusals[place] = refusal

    def _checked(self, events: Sequence[Any], key_events: list[int], key_event_checks: list[_KeyCheck],
                 checks: list[_KeyCheck], keys: dict[str, Key | None], whole: bool,
                 checked: set[int] | None = None) -> _Screened:
        """In a check thread: the key events' signatures, then those of `checks` but for the keys
        that a genuine key event of the request names; keys missing from `keys` are read. Unless
        `whole`, a failed sample is not followed by its key's other events (the caller has them
        checked in the other threads); `checked`: places whose signature is checked already."""
        found = _Screened({}, set(), {}, set(checked or ()))
        for check in key_event_checks:
            self._check(check, events, keys, found, whole)
        named_by_genuine = {events[place]["body"]["key_id"] for place in key_events if place not in found.refusals}
        for check in checks:
            if check.key_id not in named_by_genuine:
                self._check(check, events, keys, found, whole)
        return found

    def _check(self, check: _KeyCheck, events: Sequence[Any], keys: dict[str, Key | None], found: _Screened,
               whole: bool) -> None:
        key = keys[check.key_id] or found.keys_read.get(check.key_id)
        if key is None:
            key = self._signers.read_key(check.key_id)
            if key is None:
                return  # a fault, or a race with the look at the registered keys: the writer judges it
            found.keys_read[check.key_id] = key
        if key.revoked:
            return
        places = [place for place in check.places if place not in found.checked]
        if not places:
            return
        if check.every_event:
            if self._forged(key, events, places, found):
                found.forging_keys.add(check.key_id)
            return
        drawn = random.choice(places)
        if self._forged(key, events, [drawn], found):
            found.forging_keys.add(check.key_id)
            if whole:
                self._forged(key, events, [place for place in places if place != drawn], found)

    def _forged(self, key: Key, events: Sequence[Any], places: list[int], found: _Screened) -> bool:
        """Whether any of these events' signatures fails; each that does gets its refusal."""
        origin, log_format = self._signers.origin, self._signers.log_format
        assert log_format is not None
        any_forged = False
        for place in places:
            event = events[place]
            found.checked.add(place)
            try:
                verify_signer(key, origin, event["type"], event["body"], event["auth"], log_format)
            except Rejected as refusal:
                assert refusal.code == "SIGNATURE", "an active key: only its signature can fail"
                found.refusals[place] = refusal
                any_forged = True
        return any_forged

    def close(self) -> None:
        self._threads.shutdown(wait=True, cancel_futures=True)
        self._sampling_thread.shutdown(wait=True, cancel_futures=True)


class RecordChecks:
    """An activity upload's records judged by the rules that need no state, against its methodology
    version as committed (a version's params never change once registered). A large file is judged
    in a process of its own (spawned at the first one, MAX_FILE_CHECKS at most), so that neither
    the writer nor the front's interpreter lock waits on its lines: only its verdict comes back."""

    def __init__(self, queries: Queries, log_format: int):
        self._queries = queries
        self._log_format = log_format
        self._database_url = queries.store.engine.url.render_as_string(hide_password=False)
        self._processes = SpawnedProcesses(MAX_FILE_CHECKS, "judging an upload's records")

    async def check(self, event: Any, data: bytes, records_at: int) -> CheckedFile:
        """The record lines of `data` (from `records_at`) of an upload whose event schema_refusal and
        Signers.authenticate passed."""
        body = event["body"]
        methodology_id, version = body["methodology_id"], body["methodology_version"]
        params = self._queries.methodology_params(methodology_id, version)
        if params is None:  # the writer says so first if it still is not registered by its turn
            return CheckedFile.refused(body, Rejected(
                "UNKNOWN_REF", f"methodology {methodology_id} version {version} is not registered"))
        try:
            if len(data) - records_at <= INLINE_FILE_BYTES:
                return settle_early(_file_of(body, self._log_format, params, data, records_at),
                                    self._queries.known_activity_ids)
            return await self._processes.run(functools.partial(
                _judged_in_check_process, self._database_url, body, self._log_format, params, data, records_at))
        except (SQLAlchemyError, StorageError) as exc:
            raise ApiError(503, UNAVAILABLE, f"the committed log could not be read ({type(exc).__name__}); "
                                             f"send it again") from None
        except ApiError:
            raise
        except Exception as exc:  # noqa: BLE001 - a fault of ours that this file triggers: it alone is refused
            log.exception("an upload's records could not be checked; it is refused (SCHEMA)")
            return CheckedFile.refused(body, Rejected("SCHEMA", f"these records could not be checked "
                                                                f"({type(exc).__name__}); nothing was written: "
                                                                f"sending them again unchanged cannot succeed"))

    def close(self) -> None:
        self._processes.close()


def _file_of(body: dict[str, Any], log_format: int, params: Any, data: bytes, records_at: int) -> CheckedFile:
    return check_file(body, log_format, params, readable_records(upload_records(data, records_at)))


# A check process's own reader of the committed log, opened at its first file.
_check_process_queries: dict[str, Queries] = {}


def _judged_in_check_process(database_url: str, body: dict[str, Any], log_format: int, params: Any, data: bytes,
                             records_at: int) -> CheckedFile:
    """In a check process: the file judged, and refused at once if it can be (settle_early)."""
    queries = _check_process_queries.get(database_url)
    if queries is None:
        queries = _check_process_queries[database_url] = Queries(Store.connect(database_url))
    return settle_early(_file_of(body, log_format, params, data, records_at), queries.known_activity_ids)

