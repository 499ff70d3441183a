"""What the HTTP front decides before the writer sees a submission: its shape (SCHEMA), a key the
writer cannot know by its turn (KEY_UNKNOWN, Signers), and for an activity upload its signer in
full (KEY_UNKNOWN, KEY_REVOKED, SIGNATURE) before a single record is parsed,
then its records by every rule that needs no state (ledger.events.activities.check_file: parsing,
shapes, inputs, count, total, period, root). So a malformed or unsigned request, or a file that
does not match its batch, costs the writer nothing: such a file reaches the writer as its code
alone, and a sound one as records already parsed, for the rules that need the log. The writer
checks the event again (ledger.registry.Registry), and its word is final."""

from __future__ import annotations

import collections
import functools
import logging
from typing import Any, Callable, Sequence

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

    def admit(self, events: Sequence[Any], named: list[str]) -> list[Rejected | None]:
        """Each event's refusal here (unknown_key) or None, in their order. A key event that passes
        marks pending the key it names, for the events after it (a batch may register a key and
        use it); one refused here marks nothing (trial 11: a key.revoke of an unknown signer naming
        key X let 999 events of X through to the writer). Each key marked is appended to `named`,
        for settle once the events' outcome is known, even if this raises midway."""
        refusals: list[Rejected | None] = []
        for event in events:
            refusal = self.unknown_key(event)
            refusals.append(refusal)
            if refusal is None and event["type"] in KEY_EVENT_TYPES:
                key_id = event["body"]["key_id"]
                self._pending[key_id] += 1
                named.append(key_id)
        return refusals

    def settle(self, named: list[str]) -> None:
        """The key events that named these keys are answered (or lost): what they did is
        committed, to be read at the next unknown key."""
        for key_id in named:
            self._pending[key_id] -= 1
            if not self._pending[key_id]:
                del self._pending[key_id]
        if named:
            self._settled_since_look = True  # look again, whatever the size says


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

