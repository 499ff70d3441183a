"""The writer in its own process: `puhui serve` runs the HTTP front (uvicorn + FastAPI) in its own
process and the Registry, the Sequencer (group commit) and the checkpointer in a child process,
each with its own interpreter lock.

They talk over one multiprocessing pipe. The front sends ("jobs", [job, ...]): every job its event
loop queued in one turn, in one write. A job is one of
  ("w", id, items)      events to append as one job (never split across groups)
  ("r", id, function)   a read-only function of the committed State (module-level, so it pickles)
  ("c", id)             sign a checkpoint of everything committed (unless one covers it)
  ("s", id)             the sequencer's counters
and ("stop",) ends it: the writer commits what it was sent, signs a last checkpoint and exits.
The writer answers ("hello", committed_size) once open, then ("done", committed_size, [(id, ok,
value), ...]) after each group: its results in one write. committed_size is read after the group
committed, so the front knows the log holds an event before it answers it.

The writer process has one thread: it takes every job the pipe holds, runs one group of the
Sequencer (`Sequencer.step`: what arrived while the previous group committed, up to 2,000
events, one `Registry.append_many`, one transaction), sends its results, and again; between
groups it runs the State reads and signs checkpoints (every 0.5 s when the tree grew, and on
demand). Nothing is answered before its commit. It exits when the front goes away: the pipe's
end (EOF) stops it gracefully, and PR_SET_PDEATHSIG kills it at once if the front is killed, so
no orphan holds the database (the PostgreSQL writer lock goes with its session).
"""

from __future__ import annotations

import asyncio
import ctypes
import gc
import itertools
import logging
import multiprocessing
import pickle
import signal
import threading
from concurrent.futures import Future
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Callable, Sequence

from ledger.errors import StorageError
from ledger.registry import Registry
from ledger.sequencer import (
    DEFAULT_CHECKPOINT_INTERVAL_S, DEFAULT_MAX_QUEUED_EVENTS, MAX_JOB_EVENTS, Overloaded, Sequencer,
)
from ledger.state import State

log = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: the pipe's EOF still ends the writer
        pass


def _picklable(exc: BaseException) -> BaseException:
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:  # noqa: BLE001
        return RuntimeError(f"{type(exc).__name__}: {exc}")


# -- the writer process ----------------------------------------------------------------------------

class _Outbox:
    """Results settled by the sequencer, sent to the front in one message per group."""

    def __init__(self, conn: Connection, sequencer: Sequencer):
        self._conn, self._sequencer = conn, sequencer
        self._results: list[tuple[int, bool, Any]] = []
        self.open = True

    def settle(self, job_id: int, future: Future) -> None:
        try:
            entry = (job_id, True, future.result())
        except BaseException as exc:  # noqa: BLE001 - handed to the front
            entry = (job_id, False, _picklable(exc))
        self._results.append(entry)

    def put(self, entry: tuple[int, bool, Any]) -> None:
        self._results.append(entry)

    def send(self) -> None:
        results, self._results = self._results, []
        if results and self.open:
            try:
                self._conn.send(("done", self._sequencer.committed_size, results))
            except (OSError, ValueError):
                self.open = False  # the front is gone


def writer_main(conn: Connection, directory: str, database_url: str | None, passphrase: bytes,
                checkpoint_interval_s: float) -> None:
    """The child process: open the registry with its log key, then run the sequencer on this one
    thread, taking jobs from the pipe between groups."""
    _die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a terminal's Ctrl-C reaches the front, which stops us
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: writer: %(message)s")
    from service.registry_dir import RegistryDir

    try:
        registry = RegistryDir(Path(directory)).open(with_log_key=True, database_url=database_url,
                                                     passphrase=passphrase)
    except BaseException as exc:  # noqa: BLE001
        conn.send(("failed", f"{type(exc).__name__}: {exc}"))
        return
    try:
        # Not started: this thread drives it (step). Its queue bound is the front's job.
        sequencer = Sequencer(registry, checkpoint_interval_s=checkpoint_interval_s, max_queued_events=1 << 62)
        gc.freeze()  # the State just loaded is long-lived: keep full collections from rescanning it
        outbox = _Outbox(conn, sequencer)
        conn.send(("hello", sequencer.committed_size))
        _serve(conn, sequencer, outbox)
        sequencer.finish()
        outbox.send()
    finally:
        registry.close()


def _serve(conn: Connection, sequencer: Sequencer, outbox: _Outbox) -> None:
    """Group commit on one thread: take every job the pipe holds, run one group (what arrived
    while the previous one committed), send its results, again."""
    while True:
        try:
            if conn.poll(sequencer.idle_wait_s()):
                while True:
                    message = conn.recv()
                    if message[0] == "stop":
                        return
                    for job in message[1]:
                        _start(job, sequencer, outbox)
                    if not conn.poll(0):
                        break
        except (EOFError, OSError):
            return  # the front is gone
        sequencer.step()
        outbox.send()

def _start(job: tuple[Any, ...], sequencer: Sequencer, outbox: _Outbox) -> None:
    kind, job_id = job[0], job[1]
    try:
        if kind == "w":
            future = sequencer.submit_many(job[2])
        elif kind == "r":
            future = sequencer.read(job[2])
        elif kind == "c":
            future = sequencer.checkpoint()
        else:
            future = sequencer.status()
    except BaseException as exc:  # noqa: BLE001 - a bad job
        outbox.put((job_id, False, _picklable(exc)))
        return
    future.add_done_callback(lambda done, job_id=job_id: outbox.settle(job_id, done))


# -- the front's side ------------------------------------------------------------------------------

class RemoteSequencer:
    """The Sequencer's interface (submit_many, read, checkpoint, stop, committed_size) over the pipe
    to the writer process. Futures are concurrent.futures ones, resolved by a receiving thread."""

    def __init__(self, process: multiprocessing.process.BaseProcess, conn: Connection, committed_size: int, *,
                 max_queued_events: int = DEFAULT_MAX_QUEUED_EVENTS):
        self._process, self._conn = process, conn
        self._max_queued_events = max_queued_events
        self._pending: dict[int, tuple[Future, int]] = {}
        self._ids = itertools.count()
        self._lock = threading.Lock()
        self._queued_events = 0
        self._stopping = False
        self._gone = False
        self._outgoing: list[tuple[Any, ...]] = []
        self._send_lock = threading.Lock()
        self.committed_size = committed_size
        self._receiver = threading.Thread(target=self._receive, name="puhui-front-receiver", daemon=True)
        self._receiver.start()

    @classmethod
    def spawn(cls, directory: Path, *, database_url: str | None, passphrase: bytes,
              checkpoint_interval_s: float = DEFAULT_CHECKPOINT_INTERVAL_S,
              max_queued_events: int = DEFAULT_MAX_QUEUED_EVENTS, timeout_s: float = 300.0) -> "RemoteSequencer":
        context = multiprocessing.get_context("spawn")
        front, back = context.Pipe(duplex=True)
        process = context.Process(target=writer_main, name="puhui-writer", daemon=True,
                                  args=(back, str(directory), database_url, passphrase, checkpoint_interval_s))
        process.start()
        back.close()
        if not front.poll(timeout_s):
            process.kill()
            raise StorageError(f"the writer process did not open the registry within {timeout_s} s")
        try:
            message = front.recv()
        except EOFError:
            process.join(5)
            raise StorageError(f"the writer process exited with {process.exitcode}") from None
        if message[0] != "hello":
            process.join(5)
            raise StorageError(f"the writer process could not open the registry: {message[1]}")
        return cls(process, front, message[1], max_queued_events=max_queued_events)

    # -- the Sequencer's interface ---------------------------------------------------------------

    def start(self) -> "RemoteSequencer":
        return self

    def submit(self, event: Any, records: Sequence[Any] | None = None) -> Future:
        return self.submit_many([(event, records)])

    def submit_many(self, items: Sequence[tuple[Any, Sequence[Any] | None]]) -> Future:
        if not 1 <= len(items) <= MAX_JOB_EVENTS:
            raise ValueError(f"a job holds 1 to {MAX_JOB_EVENTS} events")
        return self._send("w", len(items), list(items))

    def read(self, function: Callable[[State], Any]) -> Future:
        """function must pickle: a module-level function, or a functools.partial of one."""
        return self._send("r", 0, function)

    def checkpoint(self) -> Future:
        return self._send("c", 0)

    def status(self) -> Future:
        return self._send("s", 0)

    @property
    def queued_events(self) -> int:
        return self._queued_events

    @property
    def running(self) -> bool:
        return not self._gone and self._process.is_alive()

    def stop(self, timeout_s: float = 30.0) -> None:
        """The writer finishes what it was sent, signs a last checkpoint and exits."""
        self._flush()
        with self._send_lock:
            with self._lock:
                self._stopping = True
                gone = self._gone
            if not gone:
                try:
                    self._conn.send(("stop",))
                except (OSError, ValueError):
                    pass
        self._receiver.join(timeout_s)
        self._process.join(timeout_s)
        if self._process.is_alive():
            self._process.kill()
            self._process.join(5)

    # -- the pipe --------------------------------------------------------------------------------

    def _send(self, kind: str, events: int, *payload: Any) -> Future:
        """Queue one job for the writer. Jobs queued in one turn of the event loop go in one pipe
        write, at the end of the turn; from any other thread, at once."""
        future: Future = Future()
        future.set_running_or_notify_cancel()
        try:
            loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        with self._lock:
            if self._stopping or self._gone:
                raise Overloaded("the registry is shutting down")
            if events and self._queued_events + events > self._max_queued_events:
                raise Overloaded(f"{self._queued_events} events are waiting to be sequenced; try again shortly")
            job_id = next(self._ids)
            self._pending[job_id] = (future, events)
            self._queued_events += events
            self._outgoing.append((kind, job_id, *payload))
            first = len(self._outgoing) == 1
        if loop is None:
            self._flush()
        elif first:
            loop.call_soon(self._flush)
        return future

    def _flush(self) -> None:
        # Sent outside the state lock: a large job may wait for the writer to drain the pipe, and
        # the receiving thread must still settle results meanwhile (or both ends would wait).
        with self._send_lock:
            with self._lock:
                jobs, self._outgoing = self._outgoing, []
                if not jobs or self._gone:
                    return
            try:
                self._conn.send(("jobs", jobs))
                return
            except Exception as exc:  # noqa: BLE001 - a job that does not pickle, or a closed pipe
                failure: BaseException = exc
            # Send them one by one: only the jobs that cannot go fail.
            for job in jobs:
                try:
                    self._conn.send(("jobs", [job]))
                    continue
                except Exception as exc:  # noqa: BLE001
                    failure = exc
                with self._lock:
                    entry = self._pending.pop(job[1], None)
                    if entry is not None:
                        self._queued_events -= entry[1]
                if entry is not None:
                    entry[0].set_exception(failure)

    def _receive(self) -> None:
        while True:
            try:
                message = self._conn.recv()
            except (EOFError, OSError):
                break
            if message[0] != "done":
                continue
            _, committed_size, results = message
            # Before any answer: a client that got seq N may ask for its receipt at once.
            self.committed_size = committed_size
            settled = []
            with self._lock:
                for job_id, ok, value in results:
                    future, events = self._pending.pop(job_id)
                    self._queued_events -= events
                    settled.append((future, ok, value))
            for future, ok, value in settled:
                if ok:
                    future.set_result(value)
                else:
                    future.set_exception(value)
        with self._lock:
            self._gone = True
            pending, self._pending = self._pending, {}
            self._queued_events = 0
        if pending and not self._stopping:
            log.error("the writer process is gone; %d jobs get 503", len(pending))
        for future, _ in pending.values():
            future.set_exception(StorageError("the writer process is gone"))


class CommittedRegistry(Registry):
    """The front's Registry: reads of the committed database only, sized by the writer's committed
    size. It loads no State, holds no log key and never writes; checkpoints are the writer's."""

    def __init__(self, store: Any, sequencer: RemoteSequencer):
        self._sequencer = sequencer
        super().__init__(store)

    def _load(self) -> None:
        pass  # the State is the writer's

    @property
    def size(self) -> int:  # type: ignore[override]
        return self._sequencer.committed_size

    def checkpoint(self, witnesses: Sequence[Any] = ()) -> str:
        return self._sequencer.checkpoint().result(60)

    def append_many(self, items: Any) -> Any:
        raise StorageError("the front does not write: submit through its sequencer")
