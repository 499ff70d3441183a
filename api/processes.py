"""Processes of the front's own for work that would hold its interpreter lock for long: an
upload's records, an offset-eligibility check, an export. A thread of the front doing such work
takes the lock from the event loop for up to 5 ms at a time (sys.getswitchinterval) as often as
the loop lets go of it, so every honest request behind it waited: in a process of its own the work
runs beside the loop, on another core when there is one, and only its answer comes back.

The processes are spawned (nothing of the front's state, sockets or keys is inherited) at the
first call, and each keeps what it loads between calls (a reader of the committed log, a State).
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import multiprocessing
import multiprocessing.context
import os
import signal
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Callable, TypeVar

from api.errors import UNAVAILABLE, ApiError
from ledger.registry import LogReader

T = TypeVar("T")

log = logging.getLogger(__name__)


class SpawnedProcesses:
    """At most `count` processes doing `what`, started at the first call; a call whose processes
    died (killed, out of memory) is made once more in new ones."""

    def __init__(self, count: int, what: str):
        self._count, self._what = count, what
        self._pool: ProcessPoolExecutor | None = None

    async def run(self, function: Callable[..., T], *args: Any) -> T:
        """function(*args) in one of the processes (both must pickle: module-level functions)."""
        for _ in (1, 2):
            if self._pool is None:
                self._pool = ProcessPoolExecutor(self._count, initializer=_start_in_the_background,
                                                 mp_context=_BackgroundContext())
            try:
                return await asyncio.get_running_loop().run_in_executor(self._pool, function, *args)
            except BrokenProcessPool:
                log.error("a process %s died; new ones are started", self._what)
                self._pool = None
        raise ApiError(503, UNAVAILABLE, f"the processes {self._what} died twice; send it again")

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)


def database_url_of(reader: LogReader) -> str:
    """What a spawned process opens the reader's database by (with its password, if any)."""
    return reader.store.engine.url.render_as_string(hide_password=False)


# How much lower the processes' CPU priority is than the front's: when the cores are busy, the
# front's loop and the writer, which every write and every cheap read waits on, run first, and the
# long work (an export, a 1,000-id check, a 64 MiB upload), which a hostile client can ask for as
# often as its budget lets it, takes the CPU left over.
BACKGROUND_NICENESS = 10
MAX_NICENESS = 19


class _BackgroundProcess(multiprocessing.context.SpawnProcess):
    """A spawned process lowered by its parent the moment it exists: lowered by itself (in the
    pool's initializer) it first spent ~0.4 s importing at the front's priority, every time a pool
    was started again after a death."""

    def start(self) -> None:
        super().start()
        assert self.pid is not None
        niceness = min(os.getpriority(os.PRIO_PROCESS, 0) + BACKGROUND_NICENESS, MAX_NICENESS)
        os.setpriority(os.PRIO_PROCESS, self.pid, niceness)


class _BackgroundContext(multiprocessing.context.SpawnContext):
    Process = _BackgroundProcess


def _start_in_the_background() -> None:
    die_with_parent()  # trial 11: after a kill -9 of the front, its export processes lived on for ever
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a terminal's Ctrl-C reaches the front, which stops us


PR_SET_PDEATHSIG = 1  # linux/prctl.h


def die_with_parent() -> None:
    """Be killed (SIGKILL) when the process that started this one dies, however it dies: a front
    killed by kill -9 leaves no writer or worker behind holding the registry or memory. Linux only
    (elsewhere a no-op: the writer's pipe still ends it on EOF)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        return
    parent = multiprocessing.parent_process()
    if parent is not None and os.getppid() != parent.pid:  # it died before the request: no signal will come
        os._exit(1)
