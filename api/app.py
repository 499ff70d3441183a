"""The registry's HTTP face: routing, strict parsing, error mapping. No rule lives here.

One write's path: RegistryApp hands POST /v1/events (and the other write paths) straight to its
handler, which parses the body and submits it to a SequencerLike (ledger.sequencer: the
in-process Sequencer, or api.writer.RemoteSequencer in front of the writer process); the handler
awaits the job's future (api.bridge.settled) and answers once the group holding it is durable.
Reads come from the committed log (a ledger.registry.LogReader sized by the sequencer's committed
size, and ledger.queries), or run on the committed State between two groups (totals); the
offset-eligibility dry run runs on the front's own State of the committed log
(api.committed_state), off the writer; it and exports (api.exports) run in processes of the
front's own (api.processes), off the event loop's interpreter lock. Every refusal is
{"code", "message"}.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import logging
import shutil
import weakref
from concurrent.futures import Future
from contextlib import asynccontextmanager
from typing import Annotated, Any, Awaitable, Callable, Literal, NamedTuple, Sequence

from fastapi import Depends, FastAPI, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import FileResponse, PlainTextResponse
from fastapi.routing import APIRoute
from pydantic.json_schema import models_json_schema
from starlette.background import BackgroundTask
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Message, Receive, Scope, Send

from api import models, pages, quantification
from api.models import IDENT
from api.bridge import checkpoint_covering, settled
from api.committed_state import CommittedStateProcess, eligibility_as_of
from api.exports import MAX_CONCURRENT_EXPORTS, Exports
from api.limits import (EXPENSIVE_READ_UNITS, MALFORMED_EVENT_UNITS, NOSNIFF, Guard, Limits, RateLimits, body_units,
                        export_units, send_problem, source_of)
from api.openapi import json_body, ok, refused
from api.admission import Admitted, RecordChecks, Signers, SignatureScreen, schema_refusal
from api.bodies import (
    MAX_ACTIVITY_UPLOAD_BYTES, MAX_EVENT_BATCH_BYTES, MAX_EVENT_BYTES, declared_length, event_batch,
    media_type_refusal, parse_json, read_body, read_json, upload_event,
)
from api.errors import (
    STATUS_BY_CODE, UNAVAILABLE, ApiError, answer_headers, json_bytes, json_response, not_found, problem,
    rejected_problem, rejected_response,
)
from ledger import merkle
from ledger.eligibility import check_request
from ledger.errors import Rejected, StorageError
from ledger.events.activities import CheckedFile
from ledger.field_checks import HEX64
from ledger.queries import MAX_PAGE_ITEMS, Queries
from ledger.receipts import build_receipt
from ledger.registry import LogReader, Registry
from ledger.schema import PURPOSES, SECTORS
from ledger.sequencer import (
    DEFAULT_CHECKPOINT_INTERVAL_S, InFlightLost, Item, Outcome, Overloaded, Sequencer, SequencerLike,
)
from ledger.state import ReviewTarget, State
from quantify.private import SchemeKeys

log = logging.getLogger(__name__)


MAX_INT = models.MAX_SAFE_INT
MAX_LOG_PAGE = 1_000

SeqParam = Annotated[int, Query(ge=0, le=MAX_INT)]
AfterParam = Annotated[int, Query(ge=-1, le=MAX_INT, description="seq cursor: the page starts after it")]
LimitParam = Annotated[int, Query(ge=1, le=MAX_PAGE_ITEMS)]
IdParam = Annotated[str | None, Query(pattern=IDENT)]
RegionParam = Annotated[str | None, Query(pattern=r"^[0-9]{6}$", description="matches the division and its subdivisions")]
YearParam = Annotated[int | None, Query(ge=1900, le=9999)]


WRITE_PROBLEMS = refused(401, 403, 409, 413, 422, 503)
READ_PROBLEMS = refused(422)

class Answer(NamedTuple):
    """A write path's answer: an HTTP status, its JSON body, and for 429 how long to wait."""
    status: int
    body: bytes
    retry_after_s: int | None = None

    def headers(self) -> dict[str, str]:
        return answer_headers(self.status, self.retry_after_s)


Write = Callable[[Scope, Receive], Awaitable[Answer]]
# What a request costs of the budget for expensive work (api/limits.py), known from its method,
# path and headers alone; None: not known before its body is read.
Price = Callable[[Scope], int | None]


class RegistryApp(FastAPI):
    """FastAPI, except that the write paths, which carry the load, skip the framework's per-request
    machinery (middleware, routing, dependency solving): the very handlers of their routes, called
    straight from ASGI, at about twice the events per second. The routes stay, for the OpenAPI
    document and for whoever calls them through the router. Every request passes the Guard first
    (api/limits.py: requests in flight per client address, the body's deadline); a request of
    `prices` is then charged to the budget for expensive work, and refused (429) before the
    framework sees it or a byte of its body is read: a client that ignores Retry-After and keeps
    asking for exports costs the front one short answer a request."""

    write_paths: dict[str, Write]
    prices: dict[tuple[str, str], Price]
    rate_limits: RateLimits
    guard: Guard

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.guard(scope, receive, send)

    async def dispatch(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            refusal = media_type_refusal(scope)
            if refusal is not None:
                await send_problem(send, refusal, scope)
                return
            if scope["method"] == "POST" and scope["path"] in self.write_paths:
                # Charged once read, but refused before its body is read and parsed (a batch of
                # 1,000 forged events cost the front 15 ms a refusal) if its address may not write.
                try:
                    self.rate_limits.admit_write(source_of(scope))
                except ApiError as error:
                    await send_problem(send, error, scope)
                    return
            price = self.prices.get((scope["method"], scope["path"]))
            units = None if price is None else price(scope)
            if units is not None:
                try:
                    self.rate_limits.charge_work(units, source_of(scope))
                except ApiError as error:
                    await send_problem(send, error, scope)
                    return
        if scope["type"] == "http" and scope["method"] == "POST":
            write = self.write_paths.get(scope["path"])
            if write is not None:
                try:
                    answer = await write(scope, receive)
                except ConnectionAbortedError:
                    return  # the client is gone: there is no one to answer
                headers = [(b"content-type", b"application/json"), (b"content-length", str(len(answer.body)).encode()),
                           NOSNIFF]
                headers += [(name.lower().encode(), value.encode()) for name, value in answer.headers().items()]
                await send({"type": "http.response.start", "status": answer.status, "headers": headers})
                await send({"type": "http.response.body", "body": answer.body})
                return
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return

        async def send_nosniff(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), NOSNIFF]
            await send(message)

        await super().__call__(scope, receive, send_nosniff)


def _answering(write: Write) -> Write:
    """A write handler whose refusals are answers (status, {"code", "message"}) rather than exceptions."""
    async def answered(scope: Scope, receive: Receive) -> Answer:
        try:
            return await write(scope, receive)
        except ApiError as exc:
            return Answer(exc.status, json_bytes({"code": exc.code, "message": exc.message}), exc.retry_after_s)
        except Rejected as exc:
            return Answer(STATUS_BY_CODE[exc.code], json_bytes(rejected_problem(exc)))
    return answered


def _answer_response(answer: Answer) -> Response:
    return Response(answer.body, status_code=answer.status, media_type="application/json", headers=answer.headers())


def create_app(registry: LogReader, *, checkpoint_interval_s: float = DEFAULT_CHECKPOINT_INTERVAL_S,
               witnesses: Sequence[Any] = (), sequencer: SequencerLike | None = None,
               limits: Limits = Limits(), scheme_keys: SchemeKeys | None = None) -> FastAPI:
    """The ASGI app over one open log: reads from `registry`, writes through `sequencer`, by default
    an in-process Sequencer over `registry`, which must then be the Registry itself. Starts its
    sequencer; stopping the app stops it. `limits`: api/limits.py. `scheme_keys`: the hub and
    fingerprint keys POST /v1/ingestions builds a format-2 log's records with (none: it refuses)."""
    if sequencer is None:
        if not isinstance(registry, Registry):
            raise TypeError("without a sequencer the app writes through its log: give it the Registry")
        sequencer = Sequencer(registry, checkpoint_interval_s=checkpoint_interval_s, witnesses=witnesses)
    sequencer.start()
    queries = Queries(registry.store)
    signers = Signers(registry, queries, lambda: sequencer.committed_size)
    signature_screen = SignatureScreen(signers)
    record_checks = RecordChecks(queries, registry.log_format)
    export_slots = asyncio.Semaphore(MAX_CONCURRENT_EXPORTS)
    committed_state = CommittedStateProcess(registry)
    exports = Exports(registry)

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        yield
        await asyncio.to_thread(committed_state.close)
        await asyncio.to_thread(exports.close)
        await asyncio.to_thread(record_checks.close)
        await asyncio.to_thread(signature_screen.close)
        await asyncio.to_thread(sequencer.stop)

    # No redirect from /v1/x/ to /v1/x: Starlette builds its target from the request's Host header.
    # No /docs nor /redoc: FastAPI's load their scripts and fonts from CDNs, and the pages use no
    # external network (issue 13); /openapi.json stays.
    app = RegistryApp(title="Puhui registry", version="1",
                      description="The HTTP face of the Puhui registry (puhui-log-v1). See docs/api.md.",
                      lifespan=lifespan, redirect_slashes=False, docs_url=None, redoc_url=None,
                      dependencies=[Depends(_refuse_unknown_query)])
    rate_limits = app.rate_limits = RateLimits(limits)
    app.guard = Guard(app.dispatch, limits, rate_limits)
    app.prices = {("GET", "/v1/export"): lambda _: export_units(sequencer.committed_size),
                  ("POST", "/v1/ingestions"): lambda _: EXPENSIVE_READ_UNITS,
                  ("POST", "/v1/offset-eligibility"): _eligibility_price}
    app.state.registry, app.state.sequencer, app.state.queries = registry, sequencer, queries
    app.state.rate_limits, app.state.record_checks = rate_limits, record_checks
    _install_error_handlers(app)

    def _submitted(items: list[Item]) -> "Future[list[Outcome]]":
        try:
            return sequencer.submit_many(items)
        except Overloaded as exc:
            raise ApiError(503, UNAVAILABLE, str(exc)) from None

    async def _settled(future: "Future[list[Outcome]]") -> list[Outcome]:
        try:
            return await settled(future)
        except InFlightLost as exc:
            raise ApiError(503, UNAVAILABLE, str(exc)) from None
        except Exception as exc:  # the group's commit failed: nothing of it is durable
            raise ApiError(503, UNAVAILABLE, f"not committed ({type(exc).__name__}); send it again") from None

    async def submit_signed(scope: Scope, events: list[Any], records: CheckedFile | None = None) -> list[Outcome]:
        """Events that passed schema_refusal, charged to their keys' rate limits; those whose key
        the writer cannot know (Signers) or whose signature is found forged (SignatureScreen) are
        answered here, the others by the writer. What they
        are answered teaches the limits which keys sign, and who pays for resends and forgeries."""
        charge = rate_limits.charge_writes(collections.Counter(event["auth"]["key"] for event in events),
                                           source_of(scope))
        refusals: list[Rejected | None] = [None] * len(events)
        admitted = Admitted()
        named = admitted.named
        try:
            signers.admit(events, refusals, admitted)
            await signature_screen.screen(events, refusals, admitted, sample=len(events) > 1)
            if admitted.waits:  # key events admitted before, naming these events' signers, go first
                await asyncio.wait(admitted.waits)
            sound = [(event, records) for event, refusal in zip(events, refusals) if refusal is None]
            future = _submitted(sound) if sound else None
        except BaseException:
            signers.settle(named)
            raise
        finally:
            signers.submitted(admitted)
        if future is None:
            signers.settle(named)
        else:  # settled when the writer answers, even if this request is given up meanwhile
            loop = asyncio.get_running_loop()
            future.add_done_callback(lambda _: _call_soon(loop, signers.settle, named))
        judged = iter(await _settled(future) if future is not None else ())
        outcomes = [refusal if refusal is not None else next(judged) for refusal in refusals]
        for event, outcome in zip(events, outcomes):
            rejected = isinstance(outcome, Rejected)
            if rejected and outcome.code == "SIGNATURE":
                signature_screen.suspect(event["auth"]["key"])
            rate_limits.learn(event["auth"]["key"], outcome.code if rejected else None,
                              duplicate=not rejected and outcome.duplicate, charge=charge)
        return outcomes

    async def on_state(function: Callable[[State], Any]) -> Any:
        return await settled(sequencer.read(function))

    def committed(size: int, what: str) -> None:
        """404 unless the log's first `size` leaves are committed; `what` names what was asked for."""
        held = sequencer.committed_size
        if size > held:
            raise ApiError(404, "UNKNOWN_REF", f"{what} does not exist: the log holds {held} leaves"
                           + (f", the last is seq {held - 1}" if held else ""))

    # -- writes ----------------------------------------------------------------------------------

    @_answering
    async def write_event(scope: Scope, receive: Receive) -> Answer:
        # Its strings are checked once, with the rest of its shape (schema_refusal), not also in the
        # parse: under a flood that walk was the front's largest cost.
        event = await read_json(scope, receive, MAX_EVENT_BYTES, check_strings=False)
        refusal = schema_refusal(event, registry.log_format)
        if refusal is not None:
            raise refusal
        [outcome] = await submit_signed(scope, [event])
        return _outcome_answer(outcome)

    @_answering
    async def write_event_batch(scope: Scope, receive: Receive) -> Answer:
        # Each event's strings are checked with the rest of it (schema_refusal): a U+0000 in one
        # event refuses that event alone. Malformed events are answered here; only the others go
        # to the writer, in their order.
        events = event_batch(await read_json(scope, receive, MAX_EVENT_BATCH_BYTES, check_strings=False))
        refusals = [schema_refusal(event, registry.log_format) for event in events]
        sound = [event for event, refusal in zip(events, refusals) if refusal is None]
        if len(sound) < len(events):  # anyone can send these: its address pays (trial 11: 526,000 in 12 s)
            rate_limits.charge_wasted(MALFORMED_EVENT_UNITS * (len(events) - len(sound)), source_of(scope))
        judged = iter(await submit_signed(scope, sound) if sound else ())
        outcomes = [refusal if refusal is not None else next(judged) for refusal in refusals]
        return Answer(200, json_bytes({"results": [_outcome_json(o) for o in outcomes]}))

    @_answering
    async def write_activity_batch(scope: Scope, receive: Receive) -> Answer:
        data = await read_body(scope, receive, MAX_ACTIVITY_UPLOAD_BYTES)
        event, records_at = upload_event(data)
        refusal = schema_refusal(event, registry.log_format)
        if refusal is not None:
            raise refusal
        signers.authenticate(event)  # before a single record is parsed: an unknown key costs one read
        # The records' rules that need no state, off the writer: it gets the file parsed, or only its code.
        checked = await record_checks.check(event, data, records_at)
        [outcome] = await submit_signed(scope, [event], checked)
        return _outcome_answer(outcome)

    app.write_paths = {"/v1/events": write_event, "/v1/events:batch": write_event_batch,
                       "/v1/activity-batches": write_activity_batch}

    @app.post("/v1/events", status_code=201, tags=["events"], openapi_extra=json_body("SignedEvent"),
              responses={**ok(models.EventAccepted, 201), **ok(models.EventAccepted, 200), **WRITE_PROBLEMS})
    async def post_event(request: Request) -> Response:
        """Submit one signed event (spec section 2). 201 once committed; 200 for a resend of the very same event."""
        return _answer_response(await write_event(request.scope, request.receive))

    @app.post("/v1/events:batch", tags=["events"], openapi_extra=json_body("EventBatch"),
              responses={**ok(models.EventBatchResults), **refused(413, 422, 503)})
    async def post_event_batch(request: Request) -> Response:
        """Up to 1,000 signed events, applied in order, each accepted or rejected on its own."""
        return _answer_response(await write_event_batch(request.scope, request.receive))

    @app.post("/v1/activity-batches", status_code=201, tags=["events"],
              openapi_extra={"requestBody": {"required": True, "content": {"application/x-ndjson": {"schema": {
                  "type": "string", "description": "line 1: the signed activity.batch event; then one activity "
                                                   "record (spec section 7) per line, in root order"}}}}},
              responses={**ok(models.EventAccepted, 201), **ok(models.EventAccepted, 200), **WRITE_PROBLEMS})
    async def post_activity_batch(request: Request) -> Response:
        """An activity.batch event with its records; the registry recomputes root, count, total and checks fingerprints."""
        return _answer_response(await write_activity_batch(request.scope, request.receive))

    # -- the log and its proofs ------------------------------------------------------------------

    @app.get("/v1/checkpoint", tags=["log"], response_class=PlainTextResponse,
             responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}},
                              "description": "the latest signed note (spec section 5)"}, **refused(404)})
    def get_checkpoint() -> Response:
        note = registry.latest_checkpoint()
        if note is None:
            raise ApiError(404, "NO_CHECKPOINT", "no checkpoint has been signed yet")
        return PlainTextResponse(note)

    @app.get("/v1/trust", tags=["log"], responses=ok(models.Trust))
    def get_trust() -> Response:
        """The trust file (spec section 8). Obtain it out of band as well: an auditor trusts nothing served here."""
        return json_response(registry.trust())

    @app.get("/v1/proofs/inclusion", tags=["log"], responses={**ok(models.InclusionProof), **refused(404, 422)})
    def get_inclusion(seq: SeqParam, tree_size: Annotated[int | None, Query(ge=1, le=MAX_INT, description=(
            "default: the latest checkpoint's size"))] = None) -> Response:
        size = tree_size if tree_size is not None else _checkpoint_size(registry)
        committed(size, f"tree size {size}")
        if seq >= size:
            raise ApiError(422, "SCHEMA", f"seq {seq} is not below tree_size {size}")
        return json_response(merkle.inclusion_json(seq, size, registry.inclusion_proof(seq, size)))

    @app.get("/v1/proofs/consistency", tags=["log"], responses={**ok(models.ConsistencyProof), **refused(404, 422)})
    def get_consistency(first: Annotated[int, Query(ge=1, le=MAX_INT)],
                        second: Annotated[int, Query(ge=1, le=MAX_INT)]) -> Response:
        if first > second:
            raise ApiError(422, "SCHEMA", f"first {first} is above second {second}")
        committed(second, f"tree size {second}")
        return json_response(merkle.consistency_json(first, second, registry.consistency_proof(first, second)))

    @app.get("/v1/log", tags=["log"], responses={**ok(models.LogPage), **READ_PROBLEMS})
    def get_log(start: SeqParam = 0, limit: Annotated[int, Query(ge=1, le=MAX_LOG_PAGE)] = 100) -> Response:
        """Leaves from seq `start` (spec section 3), at most `limit`, only committed ones."""
        leaves = queries.leaves(start, limit)
        return Response(b'{"leaves":[' + b",".join(leaves) + b"]}", media_type="application/json")

    @app.get("/v1/receipts/{seq}", tags=["log"], responses={**ok(models.Receipt), **refused(404, 422, 503)})
    async def get_receipt(seq: Annotated[int, Path(ge=0, le=MAX_INT)]) -> Response:
        """Leaf + inclusion proof + checkpoint (docs/receipt.md); signs a checkpoint first if none covers seq."""
        committed(seq + 1, f"event {seq}")
        note = await checkpoint_covering(registry, sequencer, seq)
        return json_response(await asyncio.to_thread(build_receipt, registry, queries, seq, note))

    @app.get("/v1/export", tags=["log"], responses={200: {"content": {"application/x-tar": {"schema": {
        "type": "string", "format": "binary"}}}, "description": "a bundle (spec section 8) as a tar archive"},
        **refused(503)})
    async def get_export(request: Request) -> Response:
        """Sign a checkpoint of everything committed, then stream the bundle: log.jsonl, checkpoints.jsonl,
        activities/, manifest.json at the archive's top level."""
        # Charged in RegistryApp.dispatch (app.prices).
        async with export_slots:
            await settled(sequencer.checkpoint())
            archive = await exports.archive()
        return FileResponse(archive, media_type="application/x-tar", filename="puhui-bundle.tar",
                            background=BackgroundTask(shutil.rmtree, archive.parent, True))

    # -- accounts and the registers --------------------------------------------------------------

    @app.get("/v1/accounts/{account_id}", tags=["registers"], responses={**ok(models.Account), **refused(404, 422)})
    def get_account(account_id: Annotated[str, Path(pattern=IDENT)]) -> Response:
        """Balance and serial ranges by state."""
        return json_response(_found(queries.account(account_id), f"account {account_id}"))

    @app.get("/v1/accounts/{account_id}/issuances", tags=["registers"],
             responses={**ok(models.AccountIssuances), **refused(404, 422)})
    def get_account_issuances(account_id: Annotated[str, Path(pattern=IDENT)]) -> Response:
        """The account's serials by the issuance they come from (methodology, vintage, region) and by state."""
        return json_response(_found(queries.account_by_issuance(account_id), f"account {account_id}"))

    if registry.log_format == 2:
        @app.get("/v1/accounts/{account_id}/holds", tags=["registers"],
                 responses={**ok(models.AccountHolds), **refused(404, 422)})
        def get_account_holds(account_id: Annotated[str, Path(pattern=IDENT)]) -> Response:
            """The account's cases (account.hold), open and closed, with their hold events."""
            return json_response(_found(queries.holds(account_id), f"account {account_id}"))

        @app.get("/v1/reviews", tags=["registers"], responses={**ok(models.Reviews), **refused(404, 422)})
        def get_reviews(kind: Literal["batch", "evidence", "methodology"],
                        id: Annotated[str, Query(pattern=IDENT, description="batch_id, evidence hash or methodology_id")],
                        version: Annotated[int | None, Query(ge=1, le=MAX_INT, description=(
                            "the methodology version: for methodology targets only"))] = None,
                        after: AfterParam = -1, limit: LimitParam = 100) -> Response:
            """Every review of one target (spec section 6, Reviews), whether each counts now, and the
            target's status against review_quorum."""
            return json_response(_found(queries.reviews(_review_target(kind, id, version), after=after, limit=limit),
                                        f"{kind} {id}" + (f" version {version}" if version is not None else "")))

    @app.get("/v1/batches/{batch_id}", tags=["registers"], responses={**ok(models.Batch), **refused(404, 422)})
    def get_batch(batch_id: Annotated[str, Path(pattern=IDENT)]) -> Response:
        """An activity batch as logged: whether it is issued, and in format 2 its review status."""
        return json_response(_found(queries.batch(batch_id), f"activity batch {batch_id}"))

    @app.get("/v1/issuances", tags=["registers"], responses={**ok(models.IssuancePage), **READ_PROBLEMS})
    def get_issuances(account: IdParam = None, methodology_id: IdParam = None, vintage: YearParam = None,
                      region: RegionParam = None, after: AfterParam = -1, limit: LimitParam = 100) -> Response:
        return json_response(queries.issuances(account=account, methodology_id=methodology_id, vintage=vintage,
                                               region=region, after=after, limit=limit).as_json())

    @app.get("/v1/retirements", tags=["registers"], responses={**ok(models.RetirementPage), **READ_PROBLEMS})
    def get_retirements(account: IdParam = None, purpose: Literal[PURPOSES] | None = None,  # type: ignore[valid-type]
                        methodology_id: IdParam = None, vintage: YearParam = None, region: RegionParam = None,
                        used: bool | None = None, after: AfterParam = -1, limit: LimitParam = 100) -> Response:
        """The public disclosure list: purpose, beneficiary, serials, and the methodology, vintage and region they come from."""
        return json_response(queries.retirements(account=account, purpose=purpose, methodology_id=methodology_id,
                                                 vintage=vintage, region=region, used=used, after=after,
                                                 limit=limit).as_json())

    @app.get("/v1/surrenders", tags=["registers"], responses={**ok(models.SurrenderPage), **READ_PROBLEMS})
    def get_surrenders(entity: IdParam = None, compliance_year: YearParam = None, after: AfterParam = -1,
                       limit: LimitParam = 100) -> Response:
        return json_response(queries.surrenders(entity=entity, compliance_year=compliance_year, after=after,
                                                limit=limit).as_json())

    @app.get("/v1/claims", tags=["registers"], responses={**ok(models.ClaimPage), **READ_PROBLEMS})
    def get_claims(claimant: IdParam = None, after: AfterParam = -1, limit: LimitParam = 100) -> Response:
        return json_response(queries.claims(claimant=claimant, after=after, limit=limit).as_json())

    @app.get("/v1/methodologies", tags=["registers"], responses={**ok(models.MethodologyPage), **READ_PROBLEMS})
    def get_methodologies(sector: Literal[SECTORS] | None = None,  # type: ignore[valid-type]
                          offset_eligible: bool | None = None, after: AfterParam = -1,
                          limit: LimitParam = 100) -> Response:
        page = queries.methodologies(sector=sector, offset_eligible=offset_eligible, after=after, limit=limit).as_json()
        return json_response({**page, "items": [quantification.methodology_in_force(m) for m in page["items"]]})

    @app.get("/v1/methodologies/{methodology_id}", tags=["registers"],
             responses={**ok(models.Methodology), **refused(404, 422)})
    def get_methodology(methodology_id: Annotated[str, Path(pattern=IDENT)]) -> Response:
        return json_response(quantification.methodology_in_force(
            _found(queries.methodology(methodology_id), f"methodology {methodology_id}")))

    @app.get("/v1/activities/{activity_id}", tags=["registers"],
             responses={**ok(models.ActivityProof), **refused(404, 422)})
    def get_activity(activity_id: Annotated[str, Path(pattern=IDENT)]) -> Response:
        """A citizen's check that their act is counted: the record and its inclusion proof in its batch's root."""
        return json_response(_found(queries.activity_proof(activity_id), f"activity {activity_id}"))

    @app.get("/v1/activities", tags=["registers"], responses={**ok(models.ActivityPage), **READ_PROBLEMS})
    def get_activities(subject: Annotated[str, Query(min_length=1, max_length=128, description="a pseudonym")],
                       after: Annotated[str, Query(max_length=128)] = "", limit: LimitParam = 100) -> Response:
        """The activities recorded for one pseudonymous subject (no personal data is held)."""
        return json_response(queries.activities_of(subject, after=after, limit=limit))

    @app.get("/v1/totals", tags=["registers"], responses=ok(models.Totals))
    async def get_totals() -> Response:
        """Grams issued, active, retired and cancelled: issued = active + retired + cancelled."""
        return json_response(await on_state(_totals))

    @app.get("/v1/status", tags=["log"], responses=ok(models.Status))
    async def get_status() -> Response:
        """What the sequencer has done since the server started: for operators and benchmarks."""
        return json_response(await settled(sequencer.status()))

    # -- the carbon market's check ---------------------------------------------------------------

    @app.post("/v1/offset-eligibility", tags=["carbon market"],
              openapi_extra=json_body("EligibilityByRetirements", "EligibilityByAmount"),
              responses={**ok(models.Eligibility), **refused(413, 422, 503)})
    async def post_offset_eligibility(request: Request) -> Response:
        """Would an offset.surrender pass every rule of spec section 6 at the committed size `as_of_size`? Writes nothing."""
        # Charged by its size before it is read when it says its size (RegistryApp.dispatch), else now.
        data = await read_body(request.scope, request.receive, MAX_EVENT_BYTES)
        if _eligibility_price(request.scope) is None:
            rate_limits.charge_work(body_units(len(data)), source_of(request.scope))
        query = check_request(await parse_json(data), registry.log_format)
        async with rate_limits.eligibility_slots:  # they run one at a time, in the committed State's process
            return json_response(await committed_state.judge(functools.partial(eligibility_as_of, query)))

    quantification.install(app, scheme_keys)  # quantify, explanations, accounts, ingestion, footprints, claim pages
    pages.install(app)  # the public pages at /, server-rendered HTML (not in the OpenAPI document)
    app.openapi = lambda: _openapi(app, registry.log_format)  # type: ignore[method-assign]
    return app


# -- helpers -------------------------------------------------------------------------------------

# Reads of the writer's State: module-level, so that they pickle to a writer in another process.

def _totals(state: State) -> dict[str, Any]:
    return {"size": state.size, **state.totals_g()}


def _eligibility_price(scope: Scope) -> int | None:
    """A check's price from its declared length; a body beyond the limit is not priced: its read
    answers 413."""
    declared = declared_length(scope)
    return None if declared is None or declared > MAX_EVENT_BYTES else body_units(declared)


def _call_soon(loop: asyncio.AbstractEventLoop, function: Callable[..., None], *args: Any) -> None:
    """`function(*args)` on the loop's thread, from any thread; nothing once the loop is closed."""
    try:
        loop.call_soon_threadsafe(function, *args)
    except RuntimeError:
        pass


def _outcome_json(outcome: Outcome) -> dict[str, Any]:
    if isinstance(outcome, Rejected):
        return {"status": STATUS_BY_CODE[outcome.code], **rejected_problem(outcome)}
    return {"status": 200 if outcome.duplicate else 201, **outcome.as_json()}


def _outcome_answer(outcome: Outcome) -> Answer:
    answer = _outcome_json(outcome)
    return Answer(answer.pop("status"), json_bytes(answer))


def _found(value: Any, what: str) -> Any:
    if value is None:
        raise not_found(what)
    return value


def _review_target(kind: str, target_id: str, version: int | None) -> ReviewTarget:
    """A review target of spec section 6's three forms, else SCHEMA."""
    if kind == "evidence" and not HEX64.fullmatch(target_id):
        raise ApiError(422, "SCHEMA", "an evidence target's id is a SHA-256 in lowercase hex")
    if kind == "methodology" and version is None:
        raise ApiError(422, "SCHEMA", "experts review one version of a methodology: give it as ?version=N")
    if kind != "methodology" and version is not None:
        raise ApiError(422, "SCHEMA", f"a {kind} target has no version: leave out ?version=")
    return ReviewTarget(kind, target_id, version)


def _checkpoint_size(registry: LogReader) -> int:
    size = registry.latest_checkpoint_size()
    if size == 0:
        raise ApiError(404, "NO_CHECKPOINT", "no checkpoint has been signed yet")
    return size


MAX_NAMED_PARAMS = 5  # unknown query parameters a refusal names, each cut to MAX_SHOWN_CHARS
MAX_SHOWN_CHARS = 80


def _query_names(route: APIRoute) -> frozenset[str]:
    """The query parameters a route takes, its dependencies' included."""
    known = _QUERY_NAMES.get(route.endpoint)
    if known is None:
        known = _QUERY_NAMES[route.endpoint] = _query_params_of(route)
    return known


# By route endpoint (each app's closures: a route is not hashable), weakly: apps come and go in a process.
_QUERY_NAMES: "weakref.WeakKeyDictionary[Callable[..., Any], frozenset[str]]" = weakref.WeakKeyDictionary()


def _query_params_of(route: APIRoute) -> frozenset[str]:
    names: set[str] = set()
    pending = [route.dependant]
    while pending:
        dependant = pending.pop()
        names.update(param.alias for param in dependant.query_params)
        pending.extend(dependant.dependencies)
    return frozenset(names)


def _refuse_unknown_query(request: Request) -> None:
    """An API route refuses a query parameter it does not take, as the pages do: ignored, a filter
    mistyped or not offered (trial 13: /v1/retirements?since=2030-01-01 answered every row, where
    the page showed none) reads as if it had applied."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute) or not request.url.path.startswith("/v1/"):
        return
    known = _query_names(route)
    unknown = sorted(set(request.query_params) - known)
    if unknown:
        named = ", ".join(name[:MAX_SHOWN_CHARS] for name in unknown[:MAX_NAMED_PARAMS])
        raise Rejected("SCHEMA", f"{route.path} takes no query parameter {named} (it takes: "
                                 f"{', '.join(sorted(known)) or 'none'})")


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError) -> Response:
        return problem(exc.status, exc.code, exc.message, exc.retry_after_s)

    @app.exception_handler(Rejected)
    async def rejected(_: Request, exc: Rejected) -> Response:
        return rejected_response(exc)

    @app.exception_handler(StorageError)
    async def stored_data_failed(_: Request, exc: StorageError) -> Response:
        # A read whose stored rows fail a check (a forged block hash, ledger.batch_blocks): the
        # refusal is said, never a proof that could be wrong, and never a bare 500.
        log.error("a read refused: %s", exc)
        return problem(503, UNAVAILABLE, f"the registry's stored data failed a check ({exc}); its operator must "
                                         f"run `puhui check DIR`")

    @app.exception_handler(Overloaded)
    async def overloaded(_: Request, exc: Overloaded) -> Response:
        return problem(503, UNAVAILABLE, str(exc))

    @app.exception_handler(ConnectionAbortedError)
    async def client_gone(_: Request, exc: ConnectionAbortedError) -> Response:
        return problem(400, "SCHEMA", str(exc))  # to no one: the client went away mid-body

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> Response:
        details = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', '')}" for e in exc.errors()[:5])
        return problem(422, "SCHEMA", details or "invalid request")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        code = "UNKNOWN_REF" if exc.status_code == 404 else "SCHEMA"
        detail = str(exc.detail)
        if exc.status_code == 404 and detail == "Not Found":  # the router's: no route has this path
            detail = (f"no route {request.method} {request.url.path[:200]!r}: the API's routes are in "
                      f"/openapi.json and docs/api.md")
        response = problem(exc.status_code, code, detail)
        for name, value in (exc.headers or {}).items():
            response.headers[name] = value
        return response


def _openapi(app: FastAPI, log_format: int) -> dict[str, Any]:
    if app.openapi_schema is None:
        schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        _, definitions = models_json_schema([(m, "validation") for m in models.DOCUMENT_ONLY_MODELS],
                                            ref_template="#/components/schemas/{model}")
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components.update(definitions["$defs"])
        components["SignedEvent"] = models.signed_event_schema(log_format)
        if log_format == 1:  # a format-1 retirement chooses no issuances, nor does its dry run
            del components["EligibilityByAmount"]["properties"]["issuances"]
        # The Guard's refusals (api/limits.py) can meet any request: too many in flight from one
        # address, or a rate limit (429); a body that came too slowly (408).
        for operations in schema["paths"].values():
            for method, operation in operations.items():
                operation["responses"].update({str(status): response for status, response in
                                               refused(429, *((408,) if method == "post" else ())).items()})
        app.openapi_schema = schema
    return app.openapi_schema
