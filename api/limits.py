"""The front's limits on what clients may make it do: read timeouts, concurrent requests per
connection source, and token-bucket rates (docs/operations.md, "Limits"; docs/api.md).

- Header timeout: a connection must finish each request's headers within `header_timeout_s` of
  opening or of its request's first byte (HeaderDeadlineProtocol, uvicorn's httptools protocol
  with a timer), else it is closed: half-sent requests cannot hold sockets for ever.
- Body timeout: a request's body must arrive whole within `body_timeout_s`, and after its first
  `body_grace_s` at `min_body_bytes_per_s` on average at least (Guard wraps `receive` with a
  deadline that moves as bytes come); else 408 TIMEOUT and the connection is closed.
- Concurrency: at most `max_requests_per_source` requests in flight from one client address
  (Guard). When they are all in flight, a new request from that address takes the place of the
  oldest one still receiving its body (which gets 408): half-sent bodies cost their sender, not
  the honest clients behind the same NAT address. With none receiving, 429 at once.
- Refusals slow their source down: an address may have `refusals_per_s` requests refused (a 4xx
  answer to a POST, or a 429 to any request), `refusal_burst` at once; beyond, each refusal is answered only after the time its
  tokens take to come back (at most `max_refusal_delay_s`), while the request still counts
  against the address's concurrency. A client that keeps sending what is refused then costs the
  front a few answers a second instead of thousands; an accepted request is never delayed, so
  honest clients behind the same NAT address lose nothing but the speed of their own refusals.
- Writes: a token bucket per signing key (`key_events_per_s`, `key_burst_events`), charged per
  event, not per address: platforms share addresses behind NAT; a refused event costs
  REFUSED_EVENT_COST, so that a key sending refusals slows down first. A key is charged to its own
  bucket once the writer has accepted (or judged by the rules) an event it signed; until then its
  events are unauthenticated work. An event the writer answers as a resend (200) or refuses as
  SIGNATURE, KEY_UNKNOWN, ENCODING or SCHEMA says nothing of who sent it: anyone can replay a key's
  public events, or forge copies naming its key. It is given back to the key and charged to the
  sending address's share of the budget (below) instead, which must not be in debt for the address
  to write: a replayer slows itself down, not the platform whose key it names. It is charged to
  the budget too (down to a debt), a forged signature WASTED_SIGNATURE_UNITS, a malformed event of a
  batch MALFORMED_EVENT_UNITS. While that waste has the budget in debt, only addresses with an event
  accepted within PROVEN_S may write (admit_write): many addresses, each within its share, cannot
  keep the writer busy together.
- A global budget (`budget_units_per_s`, `budget_burst_units`) for unauthenticated and expensive
  work: an event from a key not yet seen to authenticate costs 1 unit, an offset-eligibility check
  1 plus 1 per 64 bytes of its body (at most 1 per retirement id; charged before the body is read),
  an ingestion EXPENSIVE_READ_UNITS, an export by the size of the log it reads (export_units: the
  same CPU a unit, whatever the log's size). Each is charged to the sending address's share too
  (`source_budget_share` of the rate and burst, the burst at least DEAREST_UNITS): one address
  cannot keep the budget below what an export needs for everyone else. A bucket asked for more
  than it holds (an export of a long log) grows to hold it, full if it was full. When the budget
  is spent, an address whose share is full draws on a reserve (RESERVE_SHARE of the budget) that
  addresses which keep asking cannot reach: a request refused for the budget spends their share.
- A body read past its limit (chunked: no length said so before) is answered 413 and its
  reading charged to the source's share (body_units), down to a debt, as wasted events are.
Refusals are 429 RATE_LIMITED with Retry-After (whole seconds until the tokens are there).
The defaults never throttle an honest client at bench/bench_api.py's rates (about 3,000 single
events/s from 32 clients, 7,000 events/s in batches of 1,000).
"""

from __future__ import annotations

import asyncio
import collections
import html
import math
import os
import time
from dataclasses import dataclass, fields
from typing import Any, Mapping

from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from api.errors import ApiError, json_bytes

DEFAULT_HEADER_TIMEOUT_S = 10.0
EXPENSIVE_READ_UNITS = 1_000  # an ingestion, or an export of a short log, in units of the global budget
# An export reads and writes out every event: about 2 us of CPU an event (0.1 s for the ~46,000 of
# bench/bench_api.py --events-per-client 600's hostile-alone probe), so 1 unit a 50 events keeps a
# unit's CPU what the flat price was at that size.
EXPORT_EVENTS_PER_UNIT = 50
ELIGIBILITY_BYTES_PER_UNIT = 64  # an offset-eligibility check: a unit per id of up to 60 characters
MAX_TRACKED_KEYS = 100_000   # buckets and authenticated keys remembered (least recently used go first)
MAX_TRACKED_SOURCES = 100_000  # refusal and budget-share buckets of client addresses remembered (likewise)
MAX_DELAYED_REFUSALS = 10_000  # refusals held back at once, over all addresses; beyond, sent at once
# Refusals that say nothing of whether the key signs: the key is not (or no longer) authenticated.
_UNAUTHENTICATED_CODES = frozenset(("KEY_UNKNOWN", "KEY_REVOKED"))
# Refusals decided before the signature is checked, or of a signature: they teach nothing either way.
_UNJUDGED_CODES = frozenset(("ENCODING", "SCHEMA", "SIGNATURE"))
# Refusals that anyone can provoke naming someone else's key (or resends of its public events):
# the sending address pays for them, not the key.
_WASTED_CODES = _UNJUDGED_CODES | {"KEY_UNKNOWN"}


@dataclass(frozen=True, slots=True)
class Limits:
    """Every limit of the front; `puhui serve` options, else PUHUI_<NAME> variables, else these."""
    header_timeout_s: float = DEFAULT_HEADER_TIMEOUT_S
    body_timeout_s: float = 120.0          # 64 MiB at 0.5 MiB/s
    body_grace_s: float = 10.0             # a body may start slowly ...
    min_body_bytes_per_s: int = 4_096      # ... then must keep this average: 256 slow bodies cost 1 MiB/s
    max_requests_per_source: int = 256
    key_events_per_s: float = 5_000.0      # a key's batches at the benchmark's 7,000 events/s are 4 keys'
    key_burst_events: int = 10_000         # a key may send 10 full batches at once
    budget_units_per_s: float = 2_000.0
    budget_burst_units: int = 8_000        # at least the dearest request (DEAREST_UNITS); an address's
    source_budget_share: float = 0.5       # share of the rate and burst (4,000 units: 4 exports at once)
    max_concurrent_eligibility: int = 2    # checks waiting for the committed State's process (one at a time)
    refusals_per_s: float = 50.0           # 4xx answers a second from one address before they slow down
    refusal_burst: int = 200
    max_refusal_delay_s: float = 1.0
    writer_timeout_s: float = 60.0         # a writer silent this long with work waiting is killed and restarted

    def __post_init__(self) -> None:
        for field in fields(self):
            if not getattr(self, field.name) > 0:
                raise ValueError(f"{field.name} must be above 0, got {getattr(self, field.name)}")
        if self.budget_burst_units < DEAREST_UNITS:
            raise ValueError(f"budget_burst_units must hold the dearest request: {DEAREST_UNITS} units")
        if self.source_budget_share > 1:
            raise ValueError(f"source_budget_share is a share of the budget, at most 1, got {self.source_budget_share}")
        if self.key_burst_events < 1_000:
            raise ValueError("key_burst_events must hold a whole batch: 1,000 events")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ, **given: Any) -> "Limits":
        """Limits from the options given (None: not given), else PUHUI_<NAME>, else the defaults."""
        values: dict[str, Any] = {}
        for field in fields(cls):
            value = given.get(field.name)
            variable = f"PUHUI_{field.name.upper()}"
            if value is None and environ.get(variable):
                kind = float if field.type == "float" else int
                try:
                    value = kind(environ[variable])
                except ValueError:
                    raise ValueError(f"{variable}={environ[variable]!r} is not a number") from None
            if value is not None:
                values[field.name] = value
        return cls(**values)


def eligibility_units(body_bytes: int) -> int:
    return 1 + body_bytes // ELIGIBILITY_BYTES_PER_UNIT


def body_units(body_bytes: int) -> int:
    """A body's units, an offset-eligibility check's price or a body read past its limit: at most
    the dearest honest request's, which every bucket's burst holds (a price beyond it could never
    be paid, and its 429 would promise a wait that never ends)."""
    return min(eligibility_units(body_bytes), DEAREST_UNITS)


def export_units(log_size: int) -> int:
    """An export's price: it grows with the log it reads (20,000 units at 10^6 events)."""
    return max(EXPENSIVE_READ_UNITS, -(-log_size // EXPORT_EVENTS_PER_UNIT))


# An offset-eligibility check's body is at most 1 MiB (api.bodies.MAX_EVENT_BYTES), but 1,000 ids
# of 128 characters: the dearest request an honest client makes.
DEAREST_UNITS = max(EXPENSIVE_READ_UNITS, eligibility_units(1_000 * (128 + 3) + 100))


# A forged signature costs two verifications (the refusal says whether it holds under the other
# format's prefix): two units, where an export's unit is about 100 us of CPU.
WASTED_SIGNATURE_UNITS = 2
# While wasted work has the budget in debt, only addresses with an event accepted this recently write.
PROVEN_S = 300.0
# A malformed event of a batch: refused in the front (its shape checked, about 30 us), charged as waste.
MALFORMED_EVENT_UNITS = 1
REFUSED_EVENT_COST = 10  # tokens a refused event takes from its key's bucket, in all


# The share of the budget's rate and burst kept apart for addresses whose own share is full (they
# have not spent lately): reached only when the budget itself is spent.
RESERVE_SHARE = 0.25


class TokenBucket:
    """`rate_per_s` tokens a second, at most `capacity` saved up."""
    __slots__ = ("rate_per_s", "capacity", "tokens", "updated")

    def __init__(self, rate_per_s: float, capacity: float):
        self.rate_per_s, self.capacity = rate_per_s, capacity
        self.tokens, self.updated = capacity, time.monotonic()

    def take(self, amount: float, now: float) -> float:
        """Take `amount` tokens and return 0, or take none and return the seconds until there are enough."""
        self._refill(now)
        if self.tokens >= amount:
            self.tokens -= amount
            return 0.0
        return (amount - self.tokens) / self.rate_per_s

    def hold(self, amount: float, now: float) -> None:
        """Grow to hold `amount` at once (the dearest request grew with the log); full if it was."""
        if amount > self.capacity:
            self._refill(now)
            if self.tokens >= self.capacity:
                self.tokens = amount
            self.capacity = amount

    def is_full(self, now: float) -> bool:
        self._refill(now)
        return self.tokens >= self.capacity

    def debt_s(self, now: float) -> float:
        """Seconds until a bucket in debt is out of it (0 when it is not in debt)."""
        self._refill(now)
        return max(0.0, -self.tokens / self.rate_per_s)

    def give(self, amount: float, now: float) -> None:
        """Give back `amount` tokens taken, up to a full bucket."""
        self._refill(now)
        self.tokens = min(self.capacity, self.tokens + amount)

    def charge(self, amount: float, now: float) -> None:
        """Take `amount` tokens whatever is left, down to a debt of one full bucket."""
        self._refill(now)
        self.tokens = max(-self.capacity, self.tokens - amount)

    def _refill(self, now: float) -> None:
        if now > self.updated:
            self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate_per_s)
            self.updated = now


def bucket_of(buckets: collections.OrderedDict[str, TokenBucket], name: str, rate_per_s: float, capacity: float,
              max_buckets: int) -> TokenBucket:
    """The bucket of `name`, made full on first use; the least recently used go beyond max_buckets."""
    bucket = buckets.get(name)
    if bucket is None:
        bucket = buckets[name] = TokenBucket(rate_per_s, capacity)
        if len(buckets) > max_buckets:
            buckets.popitem(last=False)
    else:
        buckets.move_to_end(name)
    return bucket


def rate_limited(wait_s: float, what: str) -> ApiError:
    seconds = max(1, math.ceil(wait_s))
    return ApiError(429, "RATE_LIMITED", f"{what}: try again in {seconds} s", retry_after_s=seconds)


@dataclass(frozen=True, slots=True)
class WriteCharge:
    """Where charge_writes charged a request's events, for learn to move what the writer wasted."""
    source: str                # the sending address
    keyed: frozenset[str]      # keys whose events went to their own buckets (the others' to the budget)


class RateLimits:
    """The token buckets: one per signing key, the global budget and each address's share of it.
    One event loop uses them."""

    def __init__(self, limits: Limits):
        self.limits = limits
        self._keys: collections.OrderedDict[str, TokenBucket] = collections.OrderedDict()
        self._authenticated: collections.OrderedDict[str, None] = collections.OrderedDict()
        self._budget = TokenBucket(limits.budget_units_per_s, limits.budget_burst_units)
        self._reserve = TokenBucket(limits.budget_units_per_s * RESERVE_SHARE,
                                    max(DEAREST_UNITS, limits.budget_burst_units * RESERVE_SHARE))
        self._shares: collections.OrderedDict[str, TokenBucket] = collections.OrderedDict()
        # Addresses that sent an event the writer accepted lately (not a resend), by when.
        self._proven: collections.OrderedDict[str, float] = collections.OrderedDict()
        self.eligibility_slots = asyncio.Semaphore(limits.max_concurrent_eligibility)

    def admit_write(self, source: str = "") -> None:
        """RATE_LIMITED for a write from this address, before its body is read, when its share is in
        debt (it sent what was wasted), or when the budget is (wasted work of all addresses
        together went past it) and the address has sent no event the writer accepted within
        PROVEN_S: resends and forgeries from many addresses, each within its share, cannot keep the
        writer or the front busy, while the platforms that write go on."""
        now = time.monotonic()
        self._take_budget(0, source, now)
        debt_s = self._budget.debt_s(now)
        if debt_s and not self._is_proven(source, now):
            raise rate_limited(debt_s, "the budget for wasted work is spent by all clients, and this address has "
                                       "had no event accepted lately")

    def _is_proven(self, source: str, now: float) -> bool:
        accepted_at = self._proven.get(source)
        return accepted_at is not None and now - accepted_at <= PROVEN_S

    def charge_writes(self, events_by_key: Mapping[str, int], source: str = "") -> WriteCharge:
        """Charge each key's events to its bucket (if it has authenticated) or to the budget and the
        source's share of it; all or nothing: RATE_LIMITED when any bucket falls short, or when the
        source may not write (admit_write)."""
        self.admit_write(source)
        now = time.monotonic()
        keyed = frozenset(key for key in events_by_key if key in self._authenticated)
        taken: list[tuple[TokenBucket, int]] = []
        try:
            for key_id in keyed:
                bucket, events = self._bucket(key_id), events_by_key[key_id]
                wait_s = bucket.take(events, now)
                if wait_s:
                    raise rate_limited(wait_s, f"key {key_id:.64} is sending events faster than "
                                               f"{self.limits.key_events_per_s:g} a second")
                taken.append((bucket, events))
            self._take_budget(sum(n for key, n in events_by_key.items() if key not in keyed), source, now)
        except ApiError:
            for bucket, events in taken:
                bucket.give(events, now)
            raise
        return WriteCharge(source, keyed)

    def charge_work(self, units: int, source: str = "") -> None:
        """Charge unauthenticated or expensive work to the budget and the source's share of it."""
        self._take_budget(units, source, time.monotonic())

    def learn(self, key_id: str, code: str | None, *, duplicate: bool = False,
              charge: WriteCharge | None = None) -> None:
        """What the writer's answer to an event signed (by its claim) with key_id teaches: code is
        the refusal's (None when accepted; duplicate when it was a resend), charge what
        charge_writes returned for it."""
        if charge is not None and (duplicate or code in _WASTED_CODES):
            # Anyone can send this: the key gets its token back, the sender pays, and so does the
            # budget for unauthenticated work, which bounds the waste of all addresses together.
            now = time.monotonic()
            units = WASTED_SIGNATURE_UNITS if code == "SIGNATURE" else 1
            if key_id in charge.keyed:
                self._bucket(key_id).give(1, now)
            else:
                units -= 1  # paid up front, as unauthenticated work
            if units:
                self.charge_wasted(units, charge.source)
        if code is None and not duplicate and charge is not None:
            self._proven[charge.source] = time.monotonic()
            self._proven.move_to_end(charge.source)
            if len(self._proven) > MAX_TRACKED_SOURCES:
                self._proven.popitem(last=False)
        if code is None or code not in _UNJUDGED_CODES | _UNAUTHENTICATED_CODES:
            self._authenticated[key_id] = None
            self._authenticated.move_to_end(key_id)
            if len(self._authenticated) > MAX_TRACKED_KEYS:
                self._authenticated.popitem(last=False)
            if code is not None:
                # A refused event cost the writer as much as an accepted one and gave nothing: a key
                # that sends refusals drains its bucket REFUSED_EVENT_COST times as fast.
                self._bucket(key_id).charge(REFUSED_EVENT_COST - 1, time.monotonic())
        elif code in _UNAUTHENTICATED_CODES:
            self._authenticated.pop(key_id, None)

    def charge_wasted(self, units: int, source: str) -> None:
        """Work done for nothing (a body read past its limit, malformed events of a batch), charged
        after the fact to the source's share and to the budget, down to a debt: while its share is
        in debt the address may not write, nor, while the budget is, may any unproven address."""
        now = time.monotonic()
        self._share(source).charge(units, now)
        self._budget.charge(units, now)

    def _take_budget(self, units: int, source: str, now: float) -> None:
        """Take units from the source's share and from the budget (or, for a source whose share was
        full, from the reserve), else RATE_LIMITED: refused by its share, nothing is taken; refused
        for the spent budget, the share keeps what it took. Zero units still find out whether the
        share is in debt."""
        share = self._share(source)
        share.hold(units, now)
        self._budget.hold(units, now)
        spent_nothing_lately = share.is_full(now)
        wait_s = share.take(units, now)
        if wait_s:
            raise rate_limited(wait_s, "the budget for unauthenticated and expensive work is spent by this address")
        if units:
            wait_s = self._budget.take(units, now)
            if wait_s and spent_nothing_lately:
                # Addresses that keep spending drain the budget together (trial 11: three looping on
                # exports starved every other export); one that has not spent lately draws on a
                # reserve they cannot reach while they keep asking.
                self._reserve.hold(units, now)
                wait_s = min(wait_s, self._reserve.take(units, now))
            if wait_s:
                # The share keeps what it took: an address that keeps asking while the budget is
                # spent keeps its share drained, so it is never one that has not spent lately.
                raise rate_limited(wait_s, "the budget for unauthenticated and expensive work is spent by all clients")

    def _bucket(self, key_id: str) -> TokenBucket:
        return bucket_of(self._keys, key_id, self.limits.key_events_per_s, self.limits.key_burst_events,
                         MAX_TRACKED_KEYS)

    def _share(self, source: str) -> TokenBucket:
        limits = self.limits
        return bucket_of(self._shares, source, limits.budget_units_per_s * limits.source_budget_share,
                         max(DEAREST_UNITS, limits.budget_burst_units * limits.source_budget_share),
                         MAX_TRACKED_SOURCES)


class Guard:
    """ASGI wrapper: concurrent requests per client address (a new one takes the place of the
    oldest still receiving its body), a deadline on each request's body, and refusals slowed down
    per address (module docstring)."""

    def __init__(self, app: ASGIApp, limits: Limits, rate_limits: RateLimits | None = None):
        """rate_limits: where a body read past its limit (413) is charged (none: nowhere)."""
        self.app, self.limits, self.rate_limits = app, limits, rate_limits
        self._in_flight: dict[str, int] = {}
        # Per address, its requests in flight that have a body, oldest first (those whose body is
        # whole stay until their request ends, and are passed over).
        self._bodies: dict[str, dict[_Body, None]] = {}
        # Reads answered 404 or 422 (a page's odd filter, an unknown id) cost no more than their
        # answers: only refused writes and work, and rate limits, are slowed.
        self._refusals: collections.OrderedDict[str, TokenBucket] = collections.OrderedDict()
        self._delayed = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        source = source_of(scope)
        in_flight = self._in_flight.get(source, 0)
        if in_flight >= self.limits.max_requests_per_source:
            if not self._evict_oldest_receiving(source):
                error = rate_limited(1, f"more than {self.limits.max_requests_per_source} requests in flight from "
                                        f"{source or 'this client'}")
                await send_problem(send, error, scope)
                return
            in_flight -= 1
        self._in_flight[source] = in_flight + 1
        body = _Body(receive, self.limits, _expects_body(scope))
        if not body.done:
            self._bodies.setdefault(source, {})[body] = None
        try:
            await self.app(scope, body, self._slowing_refusals(source, scope.get("method") == "POST", body, send))
        finally:
            if not body.evicted:  # an evicted request's place was given to the request that evicted it
                left = self._in_flight[source] - 1
                if left:
                    self._in_flight[source] = left
                else:
                    del self._in_flight[source]
            bodies = self._bodies.get(source)
            if bodies is not None:
                bodies.pop(body, None)
                if not bodies:
                    del self._bodies[source]

    def _evict_oldest_receiving(self, source: str) -> bool:
        """End the wait of the address's oldest request still receiving its body (408): its place
        goes to a newer request. False when none is receiving."""
        for body in self._bodies.get(source, ()):
            if not body.done and not body.evicted:
                body.evict()
                return True
        return False

    def _slowing_refusals(self, source: str, is_post: bool, body: "_Body", send: Send) -> Send:
        """`send`, holding a refusal back for as long as the source's refusal tokens take; a body
        read past its limit (chunked: no length said it was too large) is charged as it was read."""
        async def send_slowly(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 413 and self.rate_limits:
                self.rate_limits.charge_wasted(body_units(body.received_bytes), source)
            if message["type"] == "http.response.start" and (
                    message["status"] == 429 or (is_post and 400 <= message["status"] < 500)):
                delay_s = self._refusal_delay_s(source)
                if delay_s > 0 and self._delayed < MAX_DELAYED_REFUSALS:
                    self._delayed += 1
                    try:
                        await asyncio.sleep(delay_s)
                    finally:
                        self._delayed -= 1
            await send(message)
        return send_slowly

    def _refusal_delay_s(self, source: str) -> float:
        bucket = bucket_of(self._refusals, source, self.limits.refusals_per_s, self.limits.refusal_burst,
                           MAX_TRACKED_SOURCES)
        bucket.charge(1, time.monotonic())
        assert bucket.tokens >= -bucket.capacity
        return min(self.limits.max_refusal_delay_s, max(0.0, -bucket.tokens / bucket.rate_per_s))


def source_of(scope: Scope) -> str:
    """The client address a request came from ("" when the server does not say)."""
    client = scope.get("client")
    return client[0] if client else ""


def _expects_body(scope: Scope) -> bool:
    for name, value in scope.get("headers", ()):
        if (name == b"content-length" and value.strip(b"0")) or name == b"transfer-encoding":
            return True
    return False


class _Body:
    """A request's `receive`, by its deadline: the body whole within body_timeout_s and, after
    body_grace_s, arriving at min_body_bytes_per_s on average (the deadline of the next chunk
    moves with each byte that comes); the Guard's eviction ends the wait at once. 408 TIMEOUT."""
    __slots__ = ("_receive", "_limits", "_started", "received_bytes", "_timeout", "done", "evicted")

    def __init__(self, receive: Receive, limits: Limits, expects_body: bool):
        self._receive, self._limits = receive, limits
        self._started = asyncio.get_running_loop().time()
        self.received_bytes = 0
        self._timeout: asyncio.Timeout | None = None
        self.done = not expects_body  # the body is whole (or the client is gone): only a disconnect can come
        self.evicted = False

    async def __call__(self) -> Message:
        if self.done:
            return await self._receive()
        limits = self._limits
        deadline = min(self._started + limits.body_timeout_s,
                       self._started + limits.body_grace_s + self.received_bytes / limits.min_body_bytes_per_s)
        try:
            if self.evicted:
                raise TimeoutError
            async with asyncio.timeout_at(deadline) as self._timeout:
                message = await self._receive()
        except TimeoutError:
            raise self._too_slow() from None
        finally:
            self._timeout = None
        if message["type"] == "http.request":
            self.received_bytes += len(message.get("body", b""))
            self.done = not message.get("more_body", False)
        else:
            self.done = True
        return message

    def evict(self) -> None:
        self.evicted = True
        if self._timeout is not None:
            self._timeout.reschedule(asyncio.get_running_loop().time())

    def _too_slow(self) -> ApiError:
        limits = self._limits
        if self.evicted:
            reason = (f"{limits.max_requests_per_source} requests from this address were in flight, and this "
                      f"one, the oldest still sending its body, gave way to a newer one")
        elif asyncio.get_running_loop().time() >= self._started + limits.body_timeout_s:
            reason = f"the request's body did not arrive within {limits.body_timeout_s:g} s"
        else:
            reason = (f"the request's body came slower than {limits.min_body_bytes_per_s:,} bytes a second "
                      f"after its first {limits.body_grace_s:g} s")
        return ApiError(408, "TIMEOUT", reason)


# On every answer: a browser must not take a CSV download of text anyone can write (a beneficiary),
# or a JSON document, for HTML or a script by sniffing.
NOSNIFF = (b"x-content-type-options", b"nosniff")


async def send_problem(send: Send, error: ApiError, scope: Scope) -> None:
    """The refusal as JSON (the API's problem document), or as a small HTML page to a browser on
    a public page (trial 13: a reader flooded out of /retirements saw raw JSON)."""
    if _wants_a_page(scope):
        body = _problem_page(error)
        content_type = b"text/html; charset=utf-8"
    else:
        body = json_bytes({"code": error.code, "message": error.message})
        content_type = b"application/json"
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode()), NOSNIFF]
    headers += [(name.lower().encode(), value.encode()) for name, value in error.headers().items()]
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _wants_a_page(scope: Scope) -> bool:
    path = scope.get("path", "")
    if path == "/v1" or path.startswith("/v1/"):
        return False
    accept = dict(scope.get("headers", ())).get(b"accept", b"")
    return b"text/html" in accept


def _problem_page(error: ApiError) -> bytes:
    """A refusal in both languages of the pages, with no script, style or link to load."""
    wait = f"{error.retry_after_s} 秒后" if error.retry_after_s else "稍后"
    return (f'<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><meta name="viewport" '
            f'content="width=device-width, initial-scale=1"><title>{error.status} 请求未能处理 · Not served</title></head>'
            f'<body><main><h1>{error.status} 请求未能处理，请{wait}再试</h1>'
            f'<p lang="en">Not served ({html.escape(error.code)}): {html.escape(error.message)}</p>'
            f'<p><a href="/">返回首页 · Home</a></p></main></body></html>').encode()


class HeaderDeadlineProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, closing a connection whose request headers are not complete
    within `header_timeout_s` of the connection opening or of the request's first byte."""

    header_timeout_s = DEFAULT_HEADER_TIMEOUT_S
    _header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:
        super().connection_made(transport)
        self._arm_header_timer()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._header_timer is None:
            self._arm_header_timer()

    def on_headers_complete(self) -> None:
        self._disarm_header_timer()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_timer()
        super().connection_lost(exc)

    def _arm_header_timer(self) -> None:
        self._header_timer = self.loop.call_later(self.header_timeout_s, self._headers_too_slow)

    def _disarm_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if not self.transport.is_closing():
            self.transport.close()


def header_deadline_protocol(timeout_s: float) -> type[HeaderDeadlineProtocol]:
    """The protocol class for uvicorn's `http` option, with this header timeout."""
    return type("HeaderDeadlineProtocol", (HeaderDeadlineProtocol,), {"header_timeout_s": timeout_s})
