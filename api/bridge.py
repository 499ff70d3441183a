"""The event loop's side of a sequencer: the one way async code awaits its futures.

A sequencer's futures are settled by another thread (its writer thread, or the receiving thread
of api.writer.RemoteSequencer). `asyncio.wrap_future` would wake the loop once per future (a
write to its self-pipe, while that thread holds the interpreter lock); a group commit settles its
futures together, so here the first result of a burst schedules one drain that hands the loop
every result settled by then. The drain forwards what is already there: it holds nothing back.
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import CancelledError, Future
from typing import TypeVar

from ledger.registry import LogReader
from ledger.sequencer import SequencerLike

T = TypeVar("T")

_lock = threading.Lock()
# Per event loop, the results settled since its last drain (an entry lives from a burst's first
# result to its drain, so the mapping stays as small as the number of loops awaiting at once).
_settled: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future, Future]]] = {}


async def settled(future: "Future[T]") -> T:
    """The result of a sequencer's future, awaited without blocking the loop."""
    loop = asyncio.get_running_loop()
    waiter: asyncio.Future = loop.create_future()
    future.add_done_callback(lambda done: _resolved(loop, waiter, done))
    return await waiter


async def checkpoint_covering(log: LogReader, sequencer: SequencerLike, seq: int) -> str:
    """The latest signed checkpoint if it covers leaf `seq`, else a new one signed now."""
    note = await asyncio.to_thread(log.checkpoint_covering, seq)
    return note if note is not None else await settled(sequencer.checkpoint())


def _resolved(loop: asyncio.AbstractEventLoop, waiter: asyncio.Future, done: Future) -> None:
    with _lock:
        burst = _settled.get(loop)
        first = burst is None
        if burst is None:
            burst = _settled[loop] = []
        burst.append((waiter, done))
    if first:
        try:
            loop.call_soon_threadsafe(_drain, loop)
        except RuntimeError:  # the loop closed: no one awaits these any more
            with _lock:
                _settled.pop(loop, None)


def _drain(loop: asyncio.AbstractEventLoop) -> None:
    with _lock:
        burst = _settled.pop(loop, [])
    for waiter, future in burst:
        if waiter.done():
            continue  # the request was cancelled (its client went away)
        try:
            waiter.set_result(future.result())
        except CancelledError:
            waiter.cancel()
        except BaseException as exc:  # noqa: BLE001 - handed to the awaiting request
            waiter.set_exception(exc)
