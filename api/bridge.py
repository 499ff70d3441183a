"""Results from the writer thread into the event loop, one wake-up per burst.

`asyncio.wrap_future` wakes the loop once per future (a write to its self-pipe, from the writer
thread, while it holds the interpreter lock). A group commit resolves its futures together, so
here the first result of a burst schedules one drain that resolves every result queued by then.
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import CancelledError, Future
from typing import Any


class LoopBridge:
    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._done: list[tuple[asyncio.Future, Future]] = []
        self._lock = threading.Lock()

    async def result(self, future: Future) -> Any:
        """Await a concurrent future resolved by another thread."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # one loop per server; a new one in tests that start several
            self._loop = loop
        waiter = loop.create_future()
        future.add_done_callback(lambda done: self._resolved(loop, waiter, done))
        return await waiter

    def _resolved(self, loop: asyncio.AbstractEventLoop, waiter: asyncio.Future, done: Future) -> None:
        with self._lock:
            self._done.append((waiter, done))
            first = len(self._done) == 1
        if first:
            loop.call_soon_threadsafe(self._drain)

    def _drain(self) -> None:
        with self._lock:
            done, self._done = self._done, []
        for waiter, future in done:
            if waiter.done():
                continue  # the request was cancelled (its client went away)
            try:
                waiter.set_result(future.result())
            except CancelledError:
                waiter.cancel()
            except BaseException as exc:  # noqa: BLE001 - handed to the awaiting request
                waiter.set_exception(exc)
