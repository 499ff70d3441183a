"""The writer in its own process: `puhui serve` runs the HTTP front (uvicorn + FastAPI) in its own
process and the Registry, the Sequencer (group commit) and the checkpointer in a child process,
each with its own interpreter lock.

One write's path: the front's handler calls RemoteSequencer.submit_many, which queues a WriteJob;
the jobs queued in one turn of the front's event loop go down the pipe in one write (a list of
jobs). The writer process's one thread takes every job the pipe holds into the Sequencer's queue
and runs one group (`Sequencer.step`: what arrived while the previous group committed, up to
2,000 events, one `Registry.append_many`, one transaction); only the Sequencer decides what a
group holds. Then it answers Done(committed_size, [JobResult, ...]) in one write; the front's
receiving thread settles each job's future, and the event loop wakes once per burst
(api/bridge.py). committed_size is read after the group committed, so the front knows the log
holds an event before it answers it. Besides WriteJob the front sends ReadJob (a read-only
function of the committed State, module-level so that it pickles), CheckpointJob, StatusJob, and
Stop: the writer commits what it was sent, signs a last checkpoint and exits. Once open it says
Hello(committed_size), or Failed(reason).

Between groups the writer runs the State reads and signs checkpoints (every 0.5 s when the tree
grew, and on demand). Nothing is answered before its commit. It exits when the front goes away:
the pipe's end (EOF) stops it gracefully, and PR_SET_PDEATHSIG kills it at once if the front is
killed, so no orphan holds the database (the PostgreSQL writer lock goes with its session).
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import logging
import multiprocessing
import pickle
import signal
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Callable, Self, Sequence

from api.processes import die_with_parent
from ledger.errors import StorageError
from ledger.sequencer import (
    DEFAULT_CHECKPOINT_INTERVAL_S, DEFAULT_MAX_QUEUED_EVENTS, InFlightLost, Item, Outcome, Overloaded, Sequencer,
    SequencerLike, check_job,
)
from ledger.state import State

log = logging.getLogger(__name__)



# -- what crosses the pipe -------------------------------------------------------------------------

@dataclass(slots=True)
class WriteJob:
    """Events to append as one job (never split across groups)."""
    job_id: int
    items: list[Item]

    def __reduce__(self) -> tuple[type, tuple[Any, ...]]:  # by its fields: a third cheaper to pickle, once a job
        return WriteJob, (self.job_id, self.items)


@dataclass(slots=True)
class ReadJob:
    """A read-only function of the committed State (module-level, so that it pickles)."""
    job_id: int
    function: Callable[[State], Any]


@dataclass(slots=True)
class CheckpointJob:
    """Sign a checkpoint of everything committed (unless one covers it)."""
    job_id: int


@dataclass(slots=True)
class StatusJob:
    """The sequencer's counters."""
    job_id: int


Job = WriteJob | ReadJob | CheckpointJob | StatusJob


@dataclass(slots=True)
class Stop:
    """Commit what was sent, sign a last checkpoint, exit."""


@dataclass(slots=True)
class Hello:
    """The writer opened the registry: the log's size."""
    committed_size: int


@dataclass(slots=True)
class Failed:
    """The writer could not open the registry."""
    reason: str


@dataclass(slots=True)
class JobResult:
    """One job's answer."""
    job_id: int
    value: Any
    error: BaseException | None = None  # when set, the job failed and value is None

    def __reduce__(self) -> tuple[type, tuple[Any, ...]]:  # as WriteJob's
        return JobResult, (self.job_id, self.value, self.error)


@dataclass(slots=True)
class Done:
    """A group's answers, after its commit."""
    committed_size: int  # read after the group committed
    results: list[JobResult]


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
        self._results: list[JobResult] = []
        self.open = True

    def settle(self, job_id: int, future: Future) -> None:
        try:
            self._results.append(JobResult(job_id, future.result()))
        except BaseException as exc:  # noqa: BLE001 - handed to the front
            self.refuse(job_id, exc)

    def refuse(self, job_id: int, exc: BaseException) -> None:
        """A job that failed, or could not even start."""
        self._results.append(JobResult(job_id, None, _picklable(exc)))

    def send(self) -> None:
        results, self._results = self._results, []
        if results and self.open:
            try:
                self._conn.send(Done(self._sequencer.committed_size, results))
            except (OSError, ValueError):
                self.open = False  # the front is gone


def writer_main(conn: Connection, directory: str, database_url: str | None, passphrase: bytes,
                checkpoint_interval_s: float) -> None:
    """The child process: open the registry with its log key, then run the sequencer on this one
    thread, taking jobs from the pipe between groups."""
    die_with_parent()  # not Linux: the pipe's EOF still ends the writer
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a terminal's Ctrl-C reaches the front, which stops us
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: writer: %(message)s")
    from service.registry_dir import RegistryDir

    try:
        registry = RegistryDir(Path(directory)).open(with_log_key=True, database_url=database_url,
                                                     passphrase=passphrase)
        try:
            registry.become_writer()  # the lock from the start: a restore or a CLI write waits for us, not we for it
        except BaseException:
            registry.close()
            raise
    except BaseException as exc:  # noqa: BLE001
        conn.send(Failed(f"{type(exc).__name__}: {exc}"))
        return
    try:
        # Not started: this thread drives it (step). Its queue bound is the front's job.
        sequencer = Sequencer(registry, checkpoint_interval_s=checkpoint_interval_s, max_queued_events=1 << 62)
        gc.freeze()  # the State just loaded is long-lived: keep full collections from rescanning it
        outbox = _Outbox(conn, sequencer)
        conn.send(Hello(sequencer.committed_size))
        _serve(conn, sequencer, outbox)
        sequencer.finish()
        outbox.send()
    finally:
        registry.close()


def _serve(conn: Connection, sequencer: Sequencer, outbox: _Outbox) -> None:
    """Group commit on one thread: hand every job the pipe holds to the sequencer, let it run one
    group (what arrived while the previous one committed), send its results, again."""
    while True:
        try:
            if conn.poll(sequencer.idle_wait_s()):
                while True:
                    message: list[Job] | Stop = conn.recv()
                    if isinstance(message, Stop):
                        return
                    for job in message:
                        _start(job, sequencer, outbox)
                    if not conn.poll(0):
                        break
        except (EOFError, OSError):
            return  # the front is gone
        sequencer.step()
        outbox.send()


def _start(job: Job, sequencer: Sequencer, outbox: _Outbox) -> None:
    future: Future
    try:
        if isinstance(job, WriteJob):
            future = sequencer.submit_many(job.items)
        elif isinstance(job, ReadJob):
            future = sequencer.read(job.function)
        elif isinstance(job, CheckpointJob):
            future = sequencer.checkpoint()
        else:
            future = sequencer.status()
    except BaseException as exc:  # noqa: BLE001 - a bad job
        outbox.refuse(job.job_id, exc)
        return
    future.add_done_callback(lambda done, job_id=job.job_id: outbox.settle(job_id, done))


# -- the front's side ------------------------------------------------------------------------------

RESTART_DELAYS_S = (0.5, 1.0, 2.0, 4.0, 8.0)  # one restart attempt after each; then the front gives up
DEFAULT_ANSWER_TIMEOUT_S = 60.0  # the longest group seen (a refused 60 MiB upload) takes about 13 s


@dataclass(slots=True)
class WriterSpec:
    """What starting the writer process takes, kept by the front so that it can start it again:
    the passphrase stays in the front's memory (never in an environment or on a command line)."""
    directory: Path
    database_url: str | None
    passphrase: bytes = field(repr=False)
    checkpoint_interval_s: float = DEFAULT_CHECKPOINT_INTERVAL_S
    timeout_s: float = 300.0  # to open the registry: load the rows, run the start check
    answer_timeout_s: float = DEFAULT_ANSWER_TIMEOUT_S  # with work waiting, the longest silence of a live writer


@dataclass(slots=True)
class _Writer:
    process: multiprocessing.process.BaseProcess
    conn: Connection
    committed_size: int


def start_writer(spec: WriterSpec) -> _Writer:
    """Start the writer process and wait until it has opened the registry (or failed to)."""
    context = multiprocessing.get_context("spawn")
    front, back = context.Pipe(duplex=True)
    process = context.Process(target=writer_main, name="puhui-writer", daemon=True,
                              args=(back, str(spec.directory), spec.database_url, spec.passphrase,
                                    spec.checkpoint_interval_s))
    process.start()
    back.close()
    if not front.poll(spec.timeout_s):
        process.kill()
        process.join(5)
        raise StorageError(f"the writer process did not open the registry within {spec.timeout_s} s")
    try:
        message: Hello | Failed = front.recv()
    except EOFError:
        process.join(5)
        raise StorageError(f"the writer process exited with {process.exitcode}") from None
    if isinstance(message, Failed):
        process.join(5)
        raise StorageError(f"the writer process could not open the registry: {message.reason}")
    return _Writer(process, front, message.committed_size)


@dataclass(slots=True)
class _Pending:
    future: Future
    events: int


class RemoteSequencer(SequencerLike):
    """SequencerLike over the pipe to the writer process. Futures are concurrent.futures ones,
    resolved by a receiving thread.

    If the writer dies, the receiving thread fails the jobs in flight (InFlightLost: each may or
    may not have been committed), refuses new ones (Overloaded, 503) and starts the writer again,
    after each delay of RESTART_DELAYS_S; if every attempt fails it calls `on_lost` (the server
    then exits non-zero, for a supervisor to act). A writer that does not answer for
    `answer_timeout_s` while jobs wait (stopped, hung) is killed by the watchdog thread, and so
    dies as above; an idle writer is asked its status every second or so, so that one stopped or
    hung while no one writes dies as above too, before the next write.

    Jobs go down the pipe from a sending thread, never from the event loop: a writer that stops
    reading fills the pipe, and the loop must still answer reads and refuse writes meanwhile."""

    def __init__(self, writer: _Writer, spec: WriterSpec | None = None, *,
                 max_queued_events: int = DEFAULT_MAX_QUEUED_EVENTS, on_lost: Callable[[], None] = lambda: None):
        self._writer, self._spec = writer, spec
        self._max_queued_events = max_queued_events
        self._on_lost = on_lost
        self._pending: dict[int, _Pending] = {}
        self._ids = itertools.count()
        self._lock = threading.Lock()
        self._queued_events = 0
        self._stopping = threading.Event()
        self._restarting = False
        self._gone = False
        self.lost = False  # the writer died and could not be started again
        self._outgoing: list[Job] = []
        self._send_lock = threading.Lock()
        self._flush_due = threading.Event()
        self._heard_at = time.monotonic()  # the writer's last answer, or when work began to wait for one
        self.committed_size = writer.committed_size
        self._receiver = threading.Thread(target=self._receive, name="puhui-front-receiver", daemon=True)
        self._receiver.start()
        self._sender = threading.Thread(target=self._send_when_due, name="puhui-front-sender", daemon=True)
        self._sender.start()
        if spec is not None:
            threading.Thread(target=self._watch, args=(spec.answer_timeout_s,), name="puhui-front-watchdog",
                             daemon=True).start()

    @classmethod
    def spawn(cls, directory: Path, *, database_url: str | None, passphrase: bytes,
              checkpoint_interval_s: float = DEFAULT_CHECKPOINT_INTERVAL_S,
              max_queued_events: int = DEFAULT_MAX_QUEUED_EVENTS, timeout_s: float = 300.0,
              answer_timeout_s: float = DEFAULT_ANSWER_TIMEOUT_S,
              on_lost: Callable[[], None] = lambda: None) -> "RemoteSequencer":
        spec = WriterSpec(directory, database_url, passphrase, checkpoint_interval_s, timeout_s, answer_timeout_s)
        return cls(start_writer(spec), spec, max_queued_events=max_queued_events, on_lost=on_lost)

    # -- SequencerLike ---------------------------------------------------------------------------

    def start(self) -> Self:
        return self

    def submit_many(self, items: Sequence[Item]) -> "Future[list[Outcome]]":
        check_job(items)
        return self._send(len(items), WriteJob, list(items))

    def read(self, function: Callable[[State], Any]) -> Future:
        """function must pickle: a module-level function, or a functools.partial of one."""
        return self._send(0, ReadJob, function)

    def checkpoint(self) -> "Future[str]":
        return self._send(0, CheckpointJob)

    def status(self) -> "Future[dict[str, Any]]":
        return self._send(0, StatusJob)

    @property
    def queued_events(self) -> int:
        return self._queued_events

    @property
    def running(self) -> bool:
        return not self._gone and not self._restarting and self._writer.process.is_alive()


    def stop(self, timeout_s: float = 30.0) -> None:
        self._flush()
        with self._send_lock:
            with self._lock:
                self._stopping.set()
                idle = self._gone or self._restarting
            if not idle:
                try:
                    self._writer.conn.send(Stop())
                except (OSError, ValueError):
                    pass
        self._flush_due.set()  # the sending thread sees _stopping and ends
        self._receiver.join(timeout_s)
        process = self._writer.process
        process.join(timeout_s)
        if process.is_alive():
            process.kill()
            process.join(5)

    # -- the pipe --------------------------------------------------------------------------------

    def _send(self, events: int, job_type: Callable[..., Job], *payload: Any) -> Future:
        """Queue one job for the writer. Jobs queued in one turn of the event loop go in one pipe
        write, due at the end of the turn (the writer's Sequencer decides the groups); from any
        other thread, due at once."""
        future: Future = Future()
        future.set_running_or_notify_cancel()
        try:
            loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        with self._lock:
            if self._stopping.is_set() or self._gone:
                raise Overloaded("the registry is shutting down")
            if self._restarting:
                raise Overloaded("the writer process is restarting; try again shortly")
            if events and self._queued_events + events > self._max_queued_events:
                raise Overloaded(f"{self._queued_events} events are waiting to be sequenced; try again shortly")
            job_id = next(self._ids)
            if not self._pending:
                self._heard_at = time.monotonic()  # the writer's silence counts from now
            self._pending[job_id] = _Pending(future, events)
            self._queued_events += events
            self._outgoing.append(job_type(job_id, *payload))
            first = len(self._outgoing) == 1
        if loop is None:
            self._flush_due.set()
        elif first:
            loop.call_soon(self._flush_due.set)
        return future

    def _send_when_due(self) -> None:
        """The sending thread: each time jobs are due, down the pipe they go."""
        while True:
            self._flush_due.wait()
            self._flush_due.clear()
            if self._stopping.is_set():
                return  # stop() sends what is left itself, then Stop
            self._flush()

    def _watch(self, answer_timeout_s: float) -> None:
        """The watchdog thread: kill a writer that has not answered for answer_timeout_s while
        jobs wait for it; the receiving thread then sees it die and starts another. A writer that
        dies closes the pipe, which the receiving thread sees at once; one that is stopped or hung
        says nothing, so an idle writer is asked its status each tick (a job waiting like any
        other): one that fails while no one writes is replaced before a write has to wait for it."""
        tick_s = min(1.0, answer_timeout_s / 4)
        while not self._stopping.wait(tick_s):
            with self._lock:
                running = not (self._restarting or self._gone)
                waiting = len(self._pending) if running else 0
                silent_s = time.monotonic() - self._heard_at
                process = self._writer.process
            if running and not waiting:
                if silent_s >= tick_s:
                    self._ask_status()
                continue
            if waiting and silent_s > answer_timeout_s:
                log.error("the writer process (pid %s) has not answered for %.0f s while %d jobs wait (stopped or "
                          "hung): killing it", process.pid, silent_s, waiting)
                process.kill()
                with self._lock:
                    self._heard_at = time.monotonic()  # one kill per silence: its death is the receiver's to see

    def _ask_status(self) -> None:
        """The watchdog's question to an idle writer; only its answering in time matters."""
        try:
            self.status()
        except Overloaded:
            pass  # stopping or restarting meanwhile: nothing to ask

    def _flush(self) -> None:
        # Sent outside the state lock: a large job may wait for the writer to drain the pipe, and
        # the receiving thread must still settle results meanwhile (or both ends would wait).
        with self._send_lock:
            with self._lock:
                jobs, self._outgoing = self._outgoing, []
                if not jobs or self._gone or self._restarting:
                    return  # the jobs were failed with the writer that died
                conn = self._writer.conn
            try:
                conn.send(jobs)
                return
            except Exception as exc:  # noqa: BLE001 - a job that does not pickle, or a closed pipe
                failure: BaseException = exc
            # Send them one by one: only the jobs that cannot go fail.
            for job in jobs:
                try:
                    conn.send([job])
                    continue
                except Exception as exc:  # noqa: BLE001
                    failure = exc
                with self._lock:
                    pending = self._pending.pop(job.job_id, None)
                    if pending is not None:
                        self._queued_events -= pending.events
                if pending is not None:
                    pending.future.set_exception(failure)

    def _receive(self) -> None:
        while True:
            self._settle_answers(self._writer.conn)
            if self._stopping.is_set() or not self._writer_died():
                break
            if not self._restart():
                break

    def _settle_answers(self, conn: Connection) -> None:
        """Settle each group's answers as they come, until the writer's end of the pipe closes."""
        while True:
            try:
                message: Done = conn.recv()
            except (EOFError, OSError):
                return
            # Before any answer: a client that got seq N may ask for its receipt at once.
            self.committed_size = message.committed_size
            settled = []
            with self._lock:
                self._heard_at = time.monotonic()
                for result in message.results:
                    pending = self._pending.pop(result.job_id)
                    self._queued_events -= pending.events
                    settled.append((pending.future, result))
            for future, result in settled:
                if result.error is None:
                    future.set_result(result.value)
                else:
                    future.set_exception(result.error)

    def _writer_died(self) -> bool:
        """The pipe closed without a Stop: fail what was in flight. True when a restart should follow."""
        with self._lock:
            stopping = self._stopping.is_set()
            if stopping or self._spec is None:
                self._gone = True
            else:
                self._restarting = True
            lost, self._pending = self._pending, {}
            self._outgoing = []
            self._queued_events = 0
        if not stopping:
            process = self._writer.process
            process.join(5)
            log.error("the writer process (pid %s) died with exit code %s; %d jobs in flight get 503%s",
                      process.pid, process.exitcode, len(lost), "" if self._spec is None else "; restarting it")
        for pending in lost.values():
            pending.future.set_exception(InFlightLost(
                "the writer process died (or stopped answering and was killed) while this was in flight: it may "
                "or may not have been committed; "
                "send the very same request again (an event already in the log is answered 200 with its seq)"))
        return not stopping and self._spec is not None

    def _restart(self) -> bool:
        assert self._spec is not None
        for attempt, delay_s in enumerate(RESTART_DELAYS_S, start=1):
            if self._stopping.wait(delay_s):
                break
            try:
                writer = start_writer(self._spec)
            except Exception as exc:  # noqa: BLE001 - logged; the next attempt, or give up
                log.error("restarting the writer process failed (attempt %d of %d): %s", attempt,
                          len(RESTART_DELAYS_S), exc)
                continue
            with self._send_lock, self._lock:
                self._writer = writer
                self.committed_size = writer.committed_size
                self._heard_at = time.monotonic()
                self._restarting = False
                if self._stopping.is_set():  # stop() came while we restarted: it sent nothing, we end it
                    writer.conn.send(Stop())
            log.warning("the writer process restarted (pid %s) at log size %d", writer.process.pid,
                        writer.committed_size)
            return True
        with self._lock:
            self._gone, self._restarting = True, False
        if not self._stopping.is_set():
            self.lost = True
            log.critical("the writer process could not be restarted after %d attempts: the server stops",
                         len(RESTART_DELAYS_S))
            self._on_lost()
        return False
