"""The sequencer: many submitters, one writer thread, group commit, and the periodic checkpointer.

SequencerLike is what the HTTP face (api/app.py) hands its work to: this module's Sequencer in
the same process, or api.writer.RemoteSequencer in front of the writer process. Either way one
request's path ends here: its job goes into one queue; the writer thread takes whatever has
queued up while the previous group was committing (the one place that decides groups) and passes
all of it to `Registry.append_many` as one transaction (one fsync). The group's outcomes must be
one per event, and every job of it settled, before the turn ends; no submitter's future is
resolved before the commit returns, so nothing is acknowledged before it is durable, and events
that arrive together share the cost.

The same thread signs checkpoints (every `checkpoint_interval_s` when the tree grew, and on
demand) and runs read-only functions against the State between groups, when the State equals
what is committed. So the registry is touched by one thread only and needs no lock of ours.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol, Self, Sequence, TypeVar

from ledger.errors import InvariantBroken, Rejected
from ledger.events.activities import CheckedFile
from ledger.registry import Appended, Registry
from ledger.state import State

log = logging.getLogger(__name__)

T = TypeVar("T")
Outcome = Appended | Rejected
# A signed event and, for an activity batch, its records (or the CheckedFile the HTTP front made of them)
Item = tuple[Any, Sequence[Any] | CheckedFile | None]

DEFAULT_MAX_GROUP_EVENTS = 2_000      # one transaction; the registry allows up to 10,000
DEFAULT_MAX_QUEUED_EVENTS = 50_000    # beyond this, submitters are told to come back later
DEFAULT_CHECKPOINT_INTERVAL_S = 0.5
MAX_JOB_EVENTS = DEFAULT_MAX_GROUP_EVENTS


class Overloaded(Exception):
    """The queue is full (or the sequencer stopped): nothing was written; try again later."""


class InFlightLost(Exception):
    """The writer died with this job in flight: it may or may not have been committed. A resend of
    the very same events is safe (an event already in the log is answered with its seq)."""


class SequencerLike(Protocol):
    """A single writer's queue as its submitters see it. Every future settles once its work is
    committed (or refused); `committed_size` is the log's size as of the last commit."""

    committed_size: int

    @property
    def queued_events(self) -> int: ...

    @property
    def running(self) -> bool: ...

    def start(self) -> Self: ...

    def stop(self, timeout_s: float = 30.0) -> None:
        """Finish what was submitted, sign a last checkpoint, and end."""

    def submit_many(self, items: Sequence[Item]) -> "Future[list[Outcome]]":
        """Events applied in this order, contiguously, in one transaction; one outcome each."""

    def read(self, function: Callable[[State], T]) -> "Future[T]":
        """Run a read-only function on the committed State, between two groups."""

    def checkpoint(self) -> "Future[str]":
        """Sign a checkpoint of everything committed now (unless one covers it); resolves to the note."""

    def status(self) -> "Future[dict[str, Any]]":
        """The counters, as GET /v1/status shows them."""

    def submit(self, event: Any, records: Sequence[Any] | None = None) -> "Future[list[Outcome]]":
        """One event (with an activity batch's records); resolves to [Appended or Rejected]."""
        return self.submit_many([(event, records)])


def check_job(items: Sequence[Item]) -> None:
    if not 1 <= len(items) <= MAX_JOB_EVENTS:
        raise ValueError(f"a job holds 1 to {MAX_JOB_EVENTS} events")


@dataclass
class _Write:
    items: list[Item]
    future: Future  # resolves to list[Outcome], one per item, in order


@dataclass
class _Read:
    function: Callable[[State], Any]
    future: Future


@dataclass
class _Checkpoint:
    future: Future  # resolves to the latest signed note


@dataclass
class _Group:
    writes: list[_Write] = field(default_factory=list)
    reads: list[_Read] = field(default_factory=list)
    checkpoints: list[_Checkpoint] = field(default_factory=list)
    events: int = 0

    def settled(self) -> bool:
        return all(job.future.done() for jobs in (self.writes, self.reads, self.checkpoints) for job in jobs)


@dataclass
class SequencerStats:
    """Counters of the writer thread: how well group commit groups (read them from any thread)."""
    groups: int = 0
    events: int = 0
    writing_s: float = 0.0       # inside append_many: judging, committing, fsync
    checkpoints: int = 0         # signed; an export of a log its latest checkpoint covers signs none
    checkpointing_s: float = 0.0

    def as_json(self) -> dict[str, Any]:
        return {"groups": self.groups, "events": self.events, "writing_s": round(self.writing_s, 3),
                "mean_group_events": round(self.events / self.groups, 1) if self.groups else 0.0,
                "checkpoints": self.checkpoints, "checkpointing_s": round(self.checkpointing_s, 3)}


class Sequencer(SequencerLike):
    """The in-process SequencerLike: a writer thread of its own (start), or driven by its caller (step)."""

    def __init__(self, registry: Registry, *, max_group_events: int = DEFAULT_MAX_GROUP_EVENTS,
                 max_queued_events: int = DEFAULT_MAX_QUEUED_EVENTS,
                 checkpoint_interval_s: float = DEFAULT_CHECKPOINT_INTERVAL_S, witnesses: Sequence[Any] = ()):
        if max_group_events < MAX_JOB_EVENTS:
            raise ValueError(f"a group must hold at least one whole job of {MAX_JOB_EVENTS} events")
        self.registry = registry
        self._max_group_events = max_group_events
        self._max_queued_events = max_queued_events
        self._checkpoint_interval_s = checkpoint_interval_s
        self._witnesses = list(witnesses)
        self._queue: collections.deque[_Write | _Read | _Checkpoint] = collections.deque()
        self._queued_events = 0
        self._cond = threading.Condition()
        self._stopping = False
        self._thread: threading.Thread | None = None
        # Committed size: what readers may ask proofs for. Written by the writer thread only.
        self.committed_size = registry.size
        self.stats = SequencerStats()
        self._checkpointed_size = self.registry.latest_checkpoint_size()
        self._last_checkpoint_at = float("-inf")  # a log that outgrew its latest checkpoint gets one at once

    # -- submitting (any thread) -----------------------------------------------------------------

    def submit_many(self, items: Sequence[Item]) -> "Future[list[Outcome]]":
        check_job(items)
        future: Future = Future()
        self._enqueue(_Write(list(items), future), len(items))
        return future

    def read(self, function: Callable[[State], T]) -> "Future[T]":
        future: Future = Future()
        self._enqueue(_Read(function, future), 0)
        return future

    def checkpoint(self) -> "Future[str]":
        future: Future = Future()
        self._enqueue(_Checkpoint(future), 0)
        return future

    def status(self) -> "Future[dict[str, Any]]":
        """Resolved at once: the counters are this process's."""
        future: Future = Future()
        future.set_result({"committed_size": self.committed_size, "queued_events": self.queued_events,
                           "sequencer": self.stats.as_json()})
        return future

    def _enqueue(self, job: _Write | _Read | _Checkpoint, events: int) -> None:
        with self._cond:
            if self._stopping:
                raise Overloaded("the registry is shutting down")
            if events and self._queued_events + events > self._max_queued_events:
                raise Overloaded(f"{self._queued_events} events are waiting to be sequenced; try again shortly")
            self._queue.append(job)
            self._queued_events += events
            self._cond.notify()

    # -- life cycle ------------------------------------------------------------------------------

    def start(self) -> Self:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="puhui-sequencer", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout_s: float = 30.0) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None

    @property
    def queued_events(self) -> int:
        return self._queued_events

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # -- the writer thread -----------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            group = self._take()
            if group is None:
                break
            self._turn(group)
        self._sign_checkpoint([])

    def _turn(self, group: _Group) -> None:
        self._write(group.writes)
        for job in group.reads:
            _settle(job.future, lambda job=job: job.function(self.registry.state))
        due = time.monotonic() - self._last_checkpoint_at >= self._checkpoint_interval_s
        if group.checkpoints or due:
            self._sign_checkpoint(group.checkpoints)
        # The writer process answers a group once its turn is over: by then every job must be settled.
        if not group.settled():
            raise InvariantBroken("a job of the group was left unsettled")

    # -- driven from the caller's own thread (the writer process of api/writer.py) ---------------

    def step(self) -> bool:
        """Without the writer thread: run one group of what is queued (or a checkpoint now due) on
        the calling thread, without waiting. False when there was nothing to do."""
        group = self._take(wait=False)
        if group is None:
            return False
        self._turn(group)
        return True

    def idle_wait_s(self) -> float | None:
        """How long a caller driving `step` may wait for work: 0 when jobs are queued, None when
        no checkpoint is pending, else the time until one is due."""
        if self._queue:
            return 0.0
        return self._checkpoint_wait_s()

    def _checkpoint_wait_s(self) -> float | None:
        """Seconds until a checkpoint is due (0 when it is), None when none is pending."""
        if self.committed_size <= self._checkpointed_size:
            return None
        return max(0.0, self._checkpoint_interval_s - (time.monotonic() - self._last_checkpoint_at))

    def finish(self) -> None:
        """Without the writer thread: run everything queued, then sign a last checkpoint."""
        while self.step():
            pass
        self._sign_checkpoint([])

    def _take(self, wait: bool = True) -> _Group | None:
        """Wait for work (or the next checkpoint), then take all queued jobs up to one group's size."""
        group = _Group()
        with self._cond:
            while not self._queue:
                if self._stopping:
                    return None
                wait_s = self._checkpoint_wait_s()
                if wait_s == 0:
                    return group  # nothing queued, but a checkpoint is due
                if not wait:
                    return None
                self._cond.wait(wait_s)
            while self._queue:
                job = self._queue[0]
                if isinstance(job, _Write):
                    if group.events and group.events + len(job.items) > self._max_group_events:
                        break
                    self._queued_events -= len(job.items)
                self._queue.popleft()
                # A job whose submitter gave up before we took it is dropped: nothing was written.
                # Once running, its future can no longer be cancelled, so its result always lands.
                if not job.future.set_running_or_notify_cancel():
                    continue
                if isinstance(job, _Write):
                    group.writes.append(job)
                    group.events += len(job.items)
                elif isinstance(job, _Read):
                    group.reads.append(job)
                else:
                    group.checkpoints.append(job)
        return group

    def _write(self, writes: list[_Write]) -> None:
        if not writes:
            return
        items = [item for job in writes for item in job.items]
        started = time.perf_counter()
        try:
            outcomes = self.registry.append_many(items)
            if len(outcomes) != len(items):
                raise InvariantBroken(f"{len(outcomes)} outcomes for a group of {len(items)} events")
        except BaseException as exc:
            # Nothing of this group is acknowledged: its commit failed (the registry reloaded from
            # the database, so none of it is durable) or its outcomes cannot be told apart.
            log.exception("group commit of %d events failed", len(items))
            self.committed_size = self.registry.size
            for job in writes:
                job.future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        self.committed_size = self.registry.size
        self.stats.groups += 1
        self.stats.events += len(items)
        self.stats.writing_s += time.perf_counter() - started
        position = 0
        for job in writes:
            job.future.set_result(outcomes[position:position + len(job.items)])
            position += len(job.items)

    def _sign_checkpoint(self, waiters: list[_Checkpoint]) -> None:
        self._last_checkpoint_at = time.monotonic()
        if self.committed_size <= self._checkpointed_size and not waiters:
            return
        started = time.perf_counter()
        signs = self.committed_size > self._checkpointed_size  # else the latest covers it: it is the answer
        try:
            note = self.registry.checkpoint(self._witnesses)
        except Exception as exc:
            log.exception("signing a checkpoint failed")
            for waiter in waiters:
                waiter.future.set_exception(exc)
            return
        self._checkpointed_size = self.committed_size
        if signs:
            self.stats.checkpoints += 1
            self.stats.checkpointing_s += time.perf_counter() - started
        for waiter in waiters:
            waiter.future.set_result(note)


def _settle(future: Future, compute: Callable[[], Any]) -> None:
    try:
        future.set_result(compute())
    except Exception as exc:
        future.set_exception(exc)
