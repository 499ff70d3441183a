"""The rate limits' arithmetic (api/limits.py), without a server: a key that sends events the
rules refuse loses its budget REFUSED_EVENT_COST times as fast as one whose events are accepted."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from api.errors import ApiError
from api.limits import DEAREST_UNITS, EXPENSIVE_READ_UNITS, REFUSED_EVENT_COST, Guard, Limits, RateLimits


def limits(**given: float) -> RateLimits:
    """Slow limits (key_events_per_s=1, key_burst_events=1,000, and `given`): nothing refills within a test."""
    async def make() -> RateLimits:  # its semaphore wants a running loop on older Pythons
        return RateLimits(Limits(**{"key_events_per_s": 1.0, "key_burst_events": 1_000, **given}))
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


# (KEY_UNKNOWN is wasted too, but a registered key is never answered so; an unknown one has no bucket.)
@pytest.mark.parametrize("wasted", ["duplicate", "SIGNATURE", "ENCODING", "SCHEMA"])
def test_replays_and_forgeries_naming_a_key_cost_their_sender_not_the_key(wasted: str):
    rates = limits(budget_units_per_s=1.0)
    rates.learn("platform", None)                       # the platform's key has signed: its own bucket
    replayer_refused = None
    for _ in range(100):                                 # a replayer resends its public events, 100 at a time
        try:
            charge = rates.charge_writes({"platform": 100}, "10.6.6.6")
        except ApiError as error:
            replayer_refused = error
            break
        for _ in range(100):
            rates.learn("platform", None if wasted == "duplicate" else wasted,
                        duplicate=wasted == "duplicate", charge=charge)
    assert replayer_refused is not None and replayer_refused.status == 429, "the replayer slows itself down"
    assert "by this address" in replayer_refused.message
    rates.charge_writes({"platform": 1_000}, "10.0.0.1")  # the platform's own bucket is whole
    with pytest.raises(ApiError):
        rates.charge_writes({"platform": 1}, "10.0.0.1")  # ... and was spent by the platform alone


def test_forgeries_from_many_addresses_together_stay_within_the_budget():
    """Each address's share bounds its own waste; 100 addresses forging a registered key's
    signatures spend the global budget too, two units a forgery (two verifications), so that
    unauthenticated work is refused once they have spent it, however many they are."""
    rates = limits(budget_units_per_s=1.0)
    rates.learn("platform", None)
    rates.charge_work(0, "10.0.0.1")  # an address with nothing spent is not refused
    for n in range(100):
        charge = rates.charge_writes({"platform": 40}, f"10.6.6.{n}")
        for _ in range(40):
            rates.learn("platform", "SIGNATURE", charge=charge)
    # 100 addresses x 40 forgeries x 2 units = 8,000: the budget's burst is spent
    with pytest.raises(ApiError) as spent:  # an address that spent nothing draws on the reserve, then none is left
        rates.charge_work(EXPENSIVE_READ_UNITS // 2, "10.7.7.7")
        rates.charge_work(EXPENSIVE_READ_UNITS * 2, "10.7.7.7")
    assert spent.value.status == 429 and "by all clients" in spent.value.message, spent.value.message


def test_while_waste_has_the_budget_in_debt_only_addresses_with_accepted_events_write():
    """Trial 11: 8 addresses resending a platform's public events, each within its share, stalled
    the writer for every client. Once their waste has the budget in debt, an address with no
    accepted event lately may not write; the platform's address, whose events are accepted, may."""
    rates = limits(budget_units_per_s=1.0)
    rates.learn("platform", None)
    platform = rates.charge_writes({"platform": 1}, "10.0.0.1")
    rates.learn("platform", None, charge=platform)  # accepted: 10.0.0.1 is proven
    rates.charge_writes({"platform": 1}, "10.9.9.9")  # an address never seen, before any waste: it writes
    for n in range(9):  # resends from 9 addresses, 950 each: within each share, 8,550 units in all
        charge = rates.charge_writes({"platform": 950}, f"10.6.6.{n}")
        for _ in range(950):
            rates.learn("platform", None, duplicate=True, charge=charge)
    with pytest.raises(ApiError) as refused:
        rates.charge_writes({"platform": 1}, "10.9.9.8")
    assert refused.value.status == 429 and "no event accepted lately" in refused.value.message
    rates.charge_writes({"platform": 1}, "10.0.0.1")  # the platform goes on


def test_a_replayer_of_a_platforms_public_events_over_http_slows_itself_not_the_platform(world):
    import json
    from starlette.testclient import TestClient
    from api.app import create_app

    def retirement(retirement_id: str) -> dict:
        return world.client.signed(world.mall, "retirement", {
            "retirement_id": retirement_id, "account": "mall-co", "amount_g": 1, "purpose": "voluntary",
            "beneficiary": "p-1"})

    app = create_app(world.registry, checkpoint_interval_s=0.05, limits=Limits(
        key_events_per_s=1.0, key_burst_events=1_000, budget_units_per_s=1.0, budget_burst_units=DEAREST_UNITS))
    with TestClient(app, client=("10.0.0.1", 1)) as platform:
        replayer = TestClient(app, client=("10.6.6.6", 1))  # the same app: its lifespan is the platform's
        public = retirement("replayed")
        assert platform.post("/v1/events", content=json.dumps(public)).status_code == 201
        statuses = []
        for _ in range(5):
            answer = replayer.post("/v1/events:batch", content=json.dumps({"events": [public] * 999}))
            statuses.append(answer.status_code)
            if answer.status_code == 429:
                assert "spent by this address" in answer.json()["message"], answer.text
                break
            assert {r["status"] for r in answer.json()["results"]} == {200}
        assert statuses[-1] == 429 and len(statuses) > 1, statuses
        assert platform.post("/v1/events", content=json.dumps(retirement("fresh"))).status_code == 201


def test_an_honest_resend_after_a_timeout_is_charged_to_its_address_which_has_room():
    rates = limits(budget_units_per_s=1.0)
    rates.learn("platform", None)
    first = rates.charge_writes({"platform": 400}, "10.0.0.1")
    for _ in range(400):
        rates.learn("platform", None, charge=first)      # accepted, but the answer was lost
    resend = rates.charge_writes({"platform": 400}, "10.0.0.1")
    for _ in range(400):
        rates.learn("platform", None, duplicate=True, charge=resend)
    rates.charge_writes({"platform": 600}, "10.0.0.1")  # the resend cost the key nothing ...
    with pytest.raises(ApiError):
        rates.charge_writes({"platform": 1}, "10.0.0.1")


def test_one_address_cannot_spend_the_budget_an_export_needs_and_refusals_say_whose_it_was():
    rates = limits(budget_units_per_s=1.0, budget_burst_units=4_000)
    flooded = 0
    with pytest.raises(ApiError) as limited:
        for _ in range(10):                               # events by keys nobody registered, 1 unit each
            rates.charge_writes({f"unregistered-{flooded + i}": 1 for i in range(500)}, "10.6.6.6")
            flooded += 500
    assert flooded <= max(DEAREST_UNITS, 2_000) and "spent by this address" in limited.value.message
    rates.charge_work(EXPENSIVE_READ_UNITS, "10.0.0.1")  # another address's export is served
    rates.charge_work(EXPENSIVE_READ_UNITS, "10.7.7.7")
    rates.charge_work(EXPENSIVE_READ_UNITS, "10.0.0.2")  # the budget is spent: from the reserve (below)
    rates.charge_work(EXPENSIVE_READ_UNITS, "10.0.0.3")
    with pytest.raises(ApiError) as limited:
        rates.charge_work(EXPENSIVE_READ_UNITS, "10.0.0.4")
    assert "spent by all clients" in limited.value.message and "export" not in limited.value.message


def test_addresses_that_keep_spending_cannot_starve_one_that_has_not(monkeypatch):
    """Trial 11: three addresses looping on exports (1,000 units each) drained the global budget
    together, each within its share, and an honest export got 429 every time. An address whose own
    share is full (it has not spent lately) draws on a reserve the spenders cannot reach; an
    address refused for the budget keeps its share spent, so looping keeps it from the reserve."""
    import api.limits as limits_module
    rates = limits(budget_units_per_s=2_000.0, budget_burst_units=8_000)
    now = [time.monotonic()]  # then moved by hand: 0.1 s a step
    monkeypatch.setattr(limits_module.time, "monotonic", lambda: now[0])
    spenders = [f"10.6.6.{n}" for n in range(1, 7)]  # the trial's three, and three more
    served = {source: 0 for source in [*spenders, "10.0.0.9"]}
    honest_refused = 0
    # 20 s in steps of 0.1 s: each spender asks again as soon as its Retry-After allows (so it
    # takes the budget as it refills), the honest one every 2 s.
    next_ask = {source: 0.0 for source in spenders}
    for tick in range(200):
        now[0] += 0.1
        for source in spenders:
            if now[0] < next_ask[source]:
                continue
            try:
                rates.charge_work(EXPENSIVE_READ_UNITS, source)
                served[source] += 1
            except ApiError as refused:
                next_ask[source] = now[0] + refused.retry_after_s
        if tick % 20 == 19:
            try:
                rates.charge_work(EXPENSIVE_READ_UNITS, "10.0.0.9")
                served["10.0.0.9"] += 1
            except ApiError:
                honest_refused += 1
    monkeypatch.undo()
    assert served["10.0.0.9"] == 10 and honest_refused == 0, served
    assert sum(served[s] for s in spenders) <= (8_000 + 2_000 * 20) / EXPENSIVE_READ_UNITS  # no more than the budget


@pytest.mark.parametrize("method, path", [("GET", "/v1/export"), ("POST", "/v1/offset-eligibility"),
                                          ("POST", "/v1/ingestions")])
def test_expensive_requests_beyond_the_budget_are_refused_before_the_framework_or_their_body(world, monkeypatch,
                                                                                             method, path):
    """A client that ignores Retry-After and keeps asking costs the front one short answer a
    request: no routing, no handler, not a byte of its body read."""
    from fastapi import FastAPI
    from starlette.testclient import TestClient
    from api.app import create_app

    app = create_app(world.registry, checkpoint_interval_s=0.05, limits=Limits(budget_units_per_s=0.001))
    with TestClient(app) as http:
        with pytest.raises(ApiError):  # spend the address's share of the budget
            for _ in range(Limits().budget_burst_units + 1):
                app.state.rate_limits.charge_work(1, "10.0.0.1")
        framework_calls: list[str] = []

        async def framework(self, scope, receive, send) -> None:
            framework_calls.append(scope["path"])
            raise AssertionError("the framework saw a request beyond the budget")
        monkeypatch.setattr(FastAPI, "__call__", framework)
        body_reads: list[int] = []

        async def receive() -> dict:
            body_reads.append(1)
            return {"type": "http.request", "body": b"{}", "more_body": False}
        sent: list[dict] = []

        async def send(message: dict) -> None:
            sent.append(message)
        scope = {"type": "http", "method": method, "path": path, "query_string": b"", "client": ("10.0.0.1", 1),
                 "headers": [(b"content-length", b"100000")] if method == "POST" else []}
        asyncio.run(app(scope, receive, send))
    assert sent[0]["status"] == 429 and any(name == b"retry-after" for name, _ in sent[0]["headers"]), sent
    assert framework_calls == [] and body_reads == []


def test_a_check_larger_than_any_honest_one_is_charged_what_a_bucket_holds_and_one_past_the_limit_is_413(world):
    """Trial 11: a valid 300 KB check (three ids, padded) from an address that had spent nothing got
    429 for ever, its price (1 unit a 64 bytes) beyond any bucket's burst; a declared 2 MiB got 429
    with a Retry-After of half a minute instead of 413."""
    from starlette.testclient import TestClient
    from api.app import create_app

    body = json.dumps({"entity": "steel-co", "compliance_year": 2026, "allocation_g": 1,
                       "retirements": ["ret-1", "ret-2", "ret-3"]}).encode()
    padded = body[:-1] + b" " * 300_000 + b"}"
    app = create_app(world.registry, checkpoint_interval_s=0.05)
    with TestClient(app) as http:
        answer = http.post("/v1/offset-eligibility", content=padded, headers={"content-type": "application/json"})
        assert answer.status_code != 429, answer.text
        too_large = http.post("/v1/offset-eligibility", content=b" " * (2 << 20))
        assert too_large.status_code == 413, too_large.text


def test_an_addresss_share_of_the_budget_is_configured_within_the_budget():
    assert Limits.from_env({"PUHUI_SOURCE_BUDGET_SHARE": "0.25"}).source_budget_share == 0.25
    with pytest.raises(ValueError):
        Limits(source_budget_share=1.5)


def _answer_through_guard(guard_limits: Limits, statuses: list[int | tuple[str, int]], method: str = "POST") -> list[float]:
    """Answer one POST (or `method`) request with each status through one Guard (from 10.0.0.1, or
    from the address given with it); the seconds each answer was held back (asyncio.sleep is
    recorded, not slept)."""
    from api.limits import Guard
    slept: list[float] = []

    async def run() -> None:
        real_sleep = asyncio.sleep

        async def recorded_sleep(delay_s: float) -> None:
            slept.append(delay_s)
            await real_sleep(0)

        async def app(scope, receive, send) -> None:
            await send({"type": "http.response.start", "status": scope["status_to_send"], "headers": []})
            await send({"type": "http.response.body", "body": b""})

        guard = Guard(app, guard_limits)
        asyncio.sleep = recorded_sleep  # type: ignore[assignment]
        try:
            for item in statuses:
                source, status = item if isinstance(item, tuple) else ("10.0.0.1", item)
                before = len(slept)
                sent: list[dict] = []

                async def receive() -> dict:
                    return {"type": "http.request", "body": b"", "more_body": False}

                async def send(message: dict) -> None:
                    sent.append(message)
                await guard({"type": "http", "method": method, "client": (source, 1), "status_to_send": status},
                            receive, send)
                assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
                if len(slept) == before:
                    slept.append(0.0)
        finally:
            asyncio.sleep = real_sleep  # type: ignore[assignment]
    asyncio.run(run())
    return slept


def test_refusals_beyond_an_addresss_burst_are_answered_late_and_accepted_requests_never():
    slow = Limits(refusals_per_s=10.0, refusal_burst=5, max_refusal_delay_s=0.5)
    delays = _answer_through_guard(slow, [422] * 5 + [201] * 3 + [422, 429, 401] + [201, 200])
    assert delays[:5] == [0.0] * 5, "the burst is answered at once"
    assert delays[5:8] == [0.0] * 3, "accepted requests are never held back"
    late = delays[8:11]
    assert all(0 < d <= 0.5 for d in late) and late == sorted(late), late
    assert delays[11:] == [0.0, 0.0]
    many = _answer_through_guard(slow, [422] * 40)
    assert max(many) == 0.5, "a refusal waits at most max_refusal_delay_s"


def test_one_addresss_refusals_do_not_slow_another_address():
    slow = Limits(refusals_per_s=10.0, refusal_burst=2, max_refusal_delay_s=0.5)
    delays = _answer_through_guard(slow, [422] * 4 + [("10.0.0.2", 422), ("10.0.0.2", 422), 422])
    assert delays[2] > 0 and delays[4:6] == [0.0, 0.0] and delays[6] > 0, delays


def test_refused_reads_are_not_slowed_but_rate_limited_ones_are():
    slow = Limits(refusals_per_s=10.0, refusal_burst=2, max_refusal_delay_s=0.5)
    assert _answer_through_guard(slow, [404, 422] * 5, method="GET") == [0.0] * 10
    delays = _answer_through_guard(slow, [429] * 4, method="GET")
    assert delays[:2] == [0.0, 0.0] and all(d > 0 for d in delays[2:]), delays


# -- half-sent bodies: they cost their sender, not the other clients behind its address ---------

def _guarded_requests(guard_limits: Limits, bodies: list[bool], *, hold_s: float = 0.2) -> list[int | str]:
    """Requests from one address through one Guard, started 10 ms apart: True sends its body at
    once and its app holds it for hold_s; False never sends the rest of its body. Each request's
    status, in order (the Guard's 429 included), or for a 408 why: "evicted", "slow" or "late"."""
    from api.limits import Guard

    async def run() -> list[int]:
        async def app(scope, receive, send) -> None:
            while (await receive()).get("more_body"):
                pass
            await asyncio.sleep(hold_s)
            await send({"type": "http.response.start", "status": 201, "headers": []})
            await send({"type": "http.response.body", "body": b""})

        async def failing_app(scope, receive, send) -> None:
            try:
                await app(scope, receive, send)
            except ApiError as error:
                why = ("evicted" if "gave way" in error.message else "slow" if "slower" in error.message
                       else "late")
                await send({"type": "http.response.start", "status": error.status, "headers": [], "why": why})

        guard = Guard(failing_app, guard_limits)

        async def request(whole: bool) -> int | str:
            statuses: list[int | str] = []

            async def receive() -> dict:
                if whole:
                    return {"type": "http.request", "body": b"{}", "more_body": False}
                await asyncio.sleep(3600)  # the rest of the body never comes
                raise AssertionError("unreachable")

            async def send(message: dict) -> None:
                if message["type"] == "http.response.start":
                    statuses.append(message.get("why", message["status"]))
            await guard({"type": "http", "method": "POST", "client": ("10.0.0.1", 1),
                         "headers": [(b"content-length", b"1000")]}, receive, send)
            return statuses[0]

        tasks = []
        for whole in bodies:
            tasks.append(asyncio.create_task(request(whole)))
            await asyncio.sleep(0.01)
        return list(await asyncio.wait_for(asyncio.gather(*tasks), 20))
    return asyncio.run(run())


def test_a_request_takes_the_place_of_the_oldest_half_sent_body_from_its_address():
    limits = Limits(max_requests_per_source=4, body_timeout_s=60.0, body_grace_s=1.0)
    statuses = _guarded_requests(limits, [False] * 4 + [True] * 3)
    # Each honest request evicts the oldest half-sent body; the last one is ended by the minimum rate.
    assert statuses == ["evicted"] * 3 + ["slow"] + [201] * 3, statuses


def test_requests_whose_body_is_whole_are_bounded_per_address():
    limits = Limits(max_requests_per_source=4, body_timeout_s=60.0, body_grace_s=60.0)
    statuses = _guarded_requests(limits, [True] * 6, hold_s=0.5)
    assert statuses == [201] * 4 + [429] * 2, statuses


@pytest.mark.parametrize("path, accept, content_type", [
    ("/retirements", b"text/html,application/xhtml+xml,*/*;q=0.8", "text/html; charset=utf-8"),  # a browser
    ("/retirements", b"*/*", "application/json"),  # a script: the API's problem document
    ("/v1/retirements", b"text/html", "application/json")])  # the API answers JSON whatever is accepted
def test_a_refusal_is_a_page_to_a_browser_on_a_page_and_json_elsewhere(path, accept, content_type):
    """Trial 13: a reader flooded out of /retirements (more than 256 requests in flight from its
    address) saw the raw JSON problem document."""
    async def run() -> list[dict]:
        held = asyncio.Event()

        async def slow_app(scope, receive, send) -> None:
            await held.wait()

        guard = Guard(slow_app, Limits(max_requests_per_source=1))
        scope = {"type": "http", "method": "GET", "path": path, "client": ("10.0.0.1", 1), "headers": [(b"accept", accept)]}
        sent: list[dict] = []

        async def receive() -> dict:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict) -> None:
            sent.append(message)
        first = asyncio.create_task(guard(scope, receive, send))
        await asyncio.sleep(0.01)
        await guard(scope, receive, send)  # the second in flight: refused at once
        held.set()
        await first
        return sent
    start, body = asyncio.run(run())
    headers = dict(start["headers"])
    assert start["status"] == 429 and headers[b"content-type"].decode() == content_type and b"retry-after" in headers
    if content_type.startswith("text/html"):
        assert body["body"].startswith(b"<!doctype html>") and b"RATE_LIMITED" in body["body"]
    else:
        assert json.loads(body["body"])["code"] == "RATE_LIMITED"


def test_a_body_slower_than_the_minimum_rate_after_the_grace_is_408():
    limits = Limits(body_timeout_s=60.0, body_grace_s=0.3, min_body_bytes_per_s=1_000)
    assert _guarded_requests(Limits(body_timeout_s=0.3), [False]) == ["late"]
    started = time.monotonic()
    assert _guarded_requests(limits, [False]) == ["slow"]
    assert 0.3 <= time.monotonic() - started < 10


def test_an_export_is_priced_by_the_log_it_reads_so_a_flood_of_them_keeps_to_its_share(world):
    """A flat price let an address have an export a second (the budget's 1,000 units a second
    share) whatever the log's size: at 10^6 events, 2 s of CPU each. Priced by the log's size,
    an export of 10^6 events is paid at once by an address that spent nothing (its bucket grows to
    hold it), and the next waits for as many units."""
    from starlette.testclient import TestClient
    from api.app import create_app

    app = create_app(world.registry, checkpoint_interval_s=0.05)
    with TestClient(app, client=("10.0.0.1", 1)) as http:
        price = app.prices[("GET", "/v1/export")]
        assert price({}) == EXPENSIVE_READ_UNITS  # the world's log is short
        sequencer = app.state.sequencer
        held, sequencer.committed_size = sequencer.committed_size, 10**6
        try:
            assert price({}) == 20_000
            first = http.get("/v1/export")
            assert first.status_code == 200, first.text
            again = http.get("/v1/export")
            assert again.status_code == 429 and "by this address" in again.json()["message"], again.text
            assert int(again.headers["retry-after"]) >= 15  # 20,000 units at the address's 1,000 a second
        finally:
            sequencer.committed_size = held


def test_a_bucket_grows_to_hold_the_dearest_request_full_only_if_it_was_full():
    rates = limits()
    rates.charge_work(20_000, "10.0.0.1")               # an address that spent nothing: paid at once
    rates.charge_work(20_000, "10.0.0.2")               # another: from the reserve, grown to hold it
    with pytest.raises(ApiError) as limited:
        rates.charge_work(20_000, "10.0.0.3")           # the budget and the reserve hold no third one yet
    assert "spent by all clients" in limited.value.message
    assert limited.value.retry_after_s >= 9              # 20,000 units at the budget's 2,000 a second


def test_a_chunked_body_read_past_its_limit_is_charged_to_its_address(world):
    """Trial 11: a chunked body (no length to refuse it by) read to 1 MiB and answered 413 cost
    its sender nothing of the budget; now its reading is charged to the address's share."""
    from starlette.testclient import TestClient
    from api.app import create_app

    def chunked(size_bytes: int):
        for _ in range(size_bytes // 65_536 + 1):
            yield b" " * 65_536

    check = json.dumps({"entity": "steel-co", "compliance_year": 2026, "allocation_g": 1, "retirements": ["ret-1"]})
    app = create_app(world.registry, checkpoint_interval_s=0.05, limits=Limits(
        budget_units_per_s=1.0, budget_burst_units=DEAREST_UNITS))
    with TestClient(app, client=("10.6.6.6", 1)) as flooder:
        too_large = flooder.post("/v1/offset-eligibility", content=chunked(1 << 20))
        assert too_large.status_code == 413, too_large.text
        after = flooder.post("/v1/offset-eligibility", content=check)
        assert after.status_code == 429 and "by this address" in after.json()["message"], after.text
        other = TestClient(app, client=("10.0.0.1", 1))  # the same app: another address is served
        assert other.post("/v1/offset-eligibility", content=check).status_code == 200
