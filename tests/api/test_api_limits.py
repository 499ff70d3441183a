"""The rate limits' arithmetic (api/limits.py), without a server: a key that sends events the
rules refuse loses its budget REFUSED_EVENT_COST times as fast as one whose events are accepted."""

from __future__ import annotations

import asyncio

import pytest

from api.errors import ApiError
from api.limits import REFUSED_EVENT_COST, Limits, RateLimits


def limits() -> RateLimits:
    async def make() -> RateLimits:  # its semaphore wants a running loop on older Pythons
        return RateLimits(Limits(key_events_per_s=1.0, key_burst_events=1_000))
    return asyncio.run(make())


def test_refused_events_drain_a_keys_bucket_faster_than_accepted_ones():
    honest, refused = limits(), limits()
    for bucket, code in ((honest, None), (refused, "UNAUTHORIZED")):
        bucket.learn("k", None)                  # the key has signed: its own bucket
        bucket.charge_writes({"k": 100})
        for _ in range(100):
            bucket.learn("k", code)
    honest.charge_writes({"k": 800})            # 100 + 800 of 1,000: accepted events cost one each
    with pytest.raises(ApiError) as limited:
        refused.charge_writes({"k": 100})        # 100 + 100 * (REFUSED_EVENT_COST - 1) spent already
    assert limited.value.status == 429 and limited.value.code == "RATE_LIMITED"
    assert REFUSED_EVENT_COST > 1
