"""The quantification endpoints: quantify, explanations, personal accounts, ingestion, footprints,
neutrality claim pages. See docs/api.md, section "Quantification".

Thin over quantify/ and the service floor (service/: the logged methodologies, accounts,
ingestion and claim pages, reading only the committed database). Nothing here writes to the log:
ingestion answers unsigned activity.batch bodies for the platform to sign and post to
/v1/activity-batches. Bodies are read with a size limit and parsed strictly (ledger.canonical);
every refusal is {"code", "message"}; `?format=csv` answers a report as one CSV file.
"""

from __future__ import annotations

import asyncio
import io
import re
import secrets
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path as FilePath
from typing import Annotated, Any, Iterator, Literal

from fastapi import APIRouter, FastAPI, Path, Query, Request, Response
from pydantic import Field

from api.bodies import read_body, read_json
from api.bridge import checkpoint_covering
from api.errors import ApiError, json_bytes, json_response, not_found, refusal_error
from api.models import (
    IDENT, BatchBody, Claim, Hex64, InclusionProof, Int, Range, Receipt, Source, Strict, Time,
)
from api.openapi import json_body, refused
from ledger.errors import Rejected
from ledger.queries import Queries
from ledger.registry import LogReader
from ledger.schema import SECTORS
from ledger.sequencer import SequencerLike
from quantify.activity import IDENTIFIER
from quantify.explain import explanation_report, quantify_request
from quantify.footprint import (
    FOOTPRINT_KINDS, MAX_ENTRIES, MAX_NAME_CHARS, MAX_SITE_CHARS, compare_footprints, emission_factors, footprint,
)
from quantify.ingest import REASONS, BatchResult, IngestResult
from quantify.private import SchemeKeys
from quantify.report import Report, format_tonnes
from service.accounts import explain_logged, pseudonyms_account, subject_account
from service.claims import LoggedClaim, claim_page_report, logged_claim
from service.ingestion import check_platform, check_scheme_keys, ingest_against_log
from service.methodologies import LoggedMethodologies
from service.refusals import REQUEST_ERRORS, refusal

MAX_QUANTIFY_BYTES = 64 << 10
MAX_FOOTPRINT_BYTES = 16 << 20       # an inventory of up to 100,000 entries
MAX_INGESTION_BYTES = 16 << 20
MAX_INGESTION_LINES = 100_000
MAX_CONCURRENT_INGESTIONS = 2
RUN_ID = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"
PSEUDONYM = re.compile(r"[0-9a-f]{32}")

router = APIRouter(tags=["quantification"])

IdPath = Annotated[str, Path(pattern=IDENT)]
Date = Annotated[str, Field(pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")]
FormatParam = Annotated[Literal["json", "csv"], Query(description="csv: the report as one CSV file, a section per table")]


class Context:
    """What the routes use: the registry (reads only), its queries and sequencer, the logged definitions."""

    def __init__(self, registry: LogReader, queries: Queries, sequencer: SequencerLike,
                 scheme_keys: SchemeKeys | None = None):
        self.registry, self.queries, self.sequencer = registry, queries, sequencer
        self.methodologies = LoggedMethodologies(registry.store)
        self.ingestions = asyncio.Semaphore(MAX_CONCURRENT_INGESTIONS)
        self.scheme_keys = scheme_keys  # format 2: what ingestion builds records with (`puhui serve --hub-key ...`)

    async def checkpoint_covering(self, seq: int) -> str:
        return await checkpoint_covering(self.registry, self.sequencer, seq)


def install(app: FastAPI, scheme_keys: SchemeKeys | None = None) -> None:
    """Serve these routes over the app's registry (api.app.create_app calls this)."""
    app.state.quantification = Context(app.state.registry, app.state.queries, app.state.sequencer, scheme_keys)
    app.include_router(router)


def _context(request: Request) -> Context:
    return request.app.state.quantification


def methodology_in_force(item: dict[str, Any]) -> dict[str, Any]:
    """A methodology of /v1/methodologies with the version in force (the latest) at the top: the
    fixed interface {methodology_id, version, sector, title, params, offset_eligible, ...}; every
    version stays under `versions`."""
    latest = item["versions"][-1]
    return {"methodology_id": item["methodology_id"], "version": latest["version"], "title": latest["title"],
            "sector": latest["sector"], "params": latest["params"], **item}


@contextmanager
def _refusals() -> Iterator[None]:
    """The refusals of quantify/ and the service floor (service.refusals) as API answers."""
    try:
        yield
    except REQUEST_ERRORS as exc:
        raise refusal_error(refusal(exc)) from None


def _answer(report: Report, format: str) -> Response:
    if format == "csv":
        return Response(report.to_csv().encode("utf-8"), media_type="text/csv; charset=utf-8")
    return json_response(report.as_json())


# -- OpenAPI: answers and request bodies -----------------------------------------------------------

def _report(model: type, what: str) -> dict[int | str, dict[str, Any]]:
    return {200: {"model": model, "description": f"{what} as JSON (grams beside tonnes), or with format=csv as one "
                                                 "CSV file", "content": {"text/csv": {"schema": {"type": "string"}}}}}


_DATE = {"type": "string", "pattern": r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"}
_INVENTORY = {
    "type": "object", "additionalProperties": False, "title": "Inventory",
    "description": "activity data of a company or an event; quantities in the factor's unit",
    "required": ["name", "kind", "period_start", "period_end", "entries"],
    "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": MAX_NAME_CHARS},
        "kind": {"enum": list(FOOTPRINT_KINDS)},
        "period_start": _DATE, "period_end": _DATE,
        "entries": {"type": "array", "minItems": 1, "maxItems": MAX_ENTRIES, "items": {
            "type": "object", "additionalProperties": False, "required": ["site", "month", "source", "quantity"],
            "properties": {
                "site": {"type": "string", "minLength": 1, "maxLength": MAX_SITE_CHARS},
                "month": {"type": "string", "pattern": r"^[0-9]{4}-(0[1-9]|1[0-2])$"},
                "source": {"enum": sorted(emission_factors())},
                "quantity": {"oneOf": [{"type": "string", "pattern": r"^(0|[1-9][0-9]{0,11})(\.[0-9]{1,6})?$"},
                                       {"type": "integer", "minimum": 0}]},
            }}},
    },
}


# -- answers (for the OpenAPI document; handlers write JSON bytes themselves) ----------------------

Tables = Annotated[dict[str, list[dict[str, Any]]], Field(description="the report's tables by name: rows as objects")]


class ExplanationFormula(Strict):
    kind: str
    expression: str


class ExplanationFactor(Strict):
    name: str
    value: str = Field(description="a decimal string")
    unit: str
    source: str | None = Field(description="the published source; null when illustrative")
    illustrative: bool
    note: str | None = None


class ExplanationQuantity(Strict):
    field: str
    value: Int
    unit: str


class ExplanationCap(Strict):
    recorded_g: Int
    dropped_g: Int
    reason: str


class Explanation(Strict):
    """Formula, factors (each with its source or the illustrative mark), inputs and result."""
    methodology_id: str
    version: Int
    title: str
    sector: Literal[SECTORS]  # type: ignore[valid-type]
    formula: ExplanationFormula
    factors: list[ExplanationFactor]
    inputs: dict[str, Any]
    quantity: ExplanationQuantity | None
    substitution: str
    exact_g: str
    rounding: str
    reduction_g: Int
    reduction_t: str
    daily_cap_g: Int
    illustrative: bool
    warnings: list[str]
    capped: ExplanationCap | None


class QuantifyAnswer(Strict):
    reduction_g: Int
    fingerprint: Hex64 | None = Field(description="null unless inputs carry subject and occurred_at")
    explanation: Explanation


class PrivateInputs(Strict):
    """Format 2: what a record commits to without publishing (spec 7.4)."""
    inputs: list[str] = Field(description="the inputs and time kept in the record's opening")
    private_sha256: Hex64
    note: str


class ActivityExplanation(Explanation):
    """A logged record explained under the methodology version its batch names: in format 1 from all
    its inputs, in format 2 from its public inputs (the others in its opening: `private`)."""
    activity_id: str
    subject: str
    occurred_at: Time | None = Field(None, description="format 1: the act's time")
    occurred_on: Date | None = Field(None, description="format 2: the act's Beijing date")
    private: PrivateInputs | None = Field(None, description="format 2")
    fingerprint: Hex64
    batch_id: str
    batch_seq: Int
    leaf_index: Int
    issuance_id: str | None = Field(description="the issuance the batch backs; null until issued")
    issuance_seq: Int | None


class PersonalAccount(Strict):
    """Tables: summary, by_day (Beijing days), by_methodology, by_platform, batches (with their seq
    and issuance), records (with batch_id and leaf_index: GET /v1/activities/{id} proves one)."""
    title: str
    subject: str
    total_g: Int = Field(description="earned: without rejected_g")
    issued_g: Int
    rejected_g: Int = Field(description="in batches a validation body rejected (format 2), never to be issued")
    tables: Tables
    notes: list[str]


class FootprintLine(Strict):
    site: str
    month: str
    source: str
    scope: Literal[1, 2, 3]
    quantity: str
    unit: str
    g_per_unit: str
    citation: str
    illustrative: bool
    emissions_g: Int


class FootprintData(Strict):
    name: str
    kind: Literal[FOOTPRINT_KINDS]  # type: ignore[valid-type]
    period_start: str
    period_end: str
    total_g: Int
    total_t: str
    by_scope: dict[str, Int]
    by_source: dict[str, Int]
    by_site: dict[str, Int]
    by_month: dict[str, Int]
    lines: list[FootprintLine]
    rounding: str
    illustrative: bool


class FootprintReport(FootprintData):
    """Tables: summary (by scope, source, site, month), lines, factors (each cited)."""
    title: str
    tables: Tables
    notes: list[str]


class FootprintComparison(Strict):
    title: str
    earlier_total_g: Int
    later_total_g: Int
    tables: Tables
    notes: list[str]


class ClaimPageRetirement(Strict):
    retirement_id: str
    amount_g: Int
    serials: list[Range]
    seq: Int
    proof: InclusionProof = Field(description="the retirement's leaf in the tree of the receipt's checkpoint")
    beneficiary: str
    sources: list[Source]
    receipt: Receipt


class ClaimPage(Strict):
    """The public page of a neutrality claim: footprint, retired serials and their proofs."""
    title: str
    claim: Claim
    footprint: FootprintData | None = Field(description="null on GET: the breakdown comes from the inventory (POST)")
    retirements: list[ClaimPageRetirement]
    receipt: Receipt = Field(description="the claim's own receipt")
    tables: Tables
    notes: list[str]


class ActivityRecord(Strict):
    activity_id: str
    fingerprint: Hex64
    inputs: dict[str, Any]
    occurred_at: Time
    reduction_g: Int
    subject: str


class PrivateActivityRecord(Strict):
    """A format-2 record (spec 7.3): a daily pseudonym, a date, the public inputs, a commitment."""
    activity_id: str
    fingerprint: Hex64
    inputs: dict[str, Any]
    occurred_on: str
    private_sha256: Hex64
    reduction_g: Int
    subject: str


class Opening(Strict):
    """A format-2 record's opening (spec 7.4): its non-public inputs and time, and a salt."""
    fields: dict[str, Any]
    salt: str


class IngestedBatch(Strict):
    body: BatchBody
    records: list[ActivityRecord | PrivateActivityRecord] = Field(
        description="in root order, as /v1/activity-batches takes them")
    openings: list[Opening] | None = Field(None, description=(
        "format 2: each record's opening, in the same order: the platform keeps them and never posts them"))


class IngestionRejection(Strict):
    line: Int
    reason: Literal[tuple(REASONS)]  # type: ignore[valid-type]
    detail: str
    activity_id: str | None
    raw: str
    raw_truncated: bool | None = None
    fingerprint: Hex64 | None = None
    quantified_g: Int | None = None
    accepted_g: Int | None = None
    dropped_g: Int | None = None


class IngestionAnswer(Strict):
    """Batches to sign, and a reason for every record not counted in full."""
    platform: str
    methodology_id: str
    methodology_version: Int
    run_id: str
    lines: Int
    accepted: Int
    accepted_g: Int
    accepted_t: str
    rejected: Int
    dropped_by_cap_g: Int
    reasons: dict[str, Int]
    batches: list[IngestedBatch]
    rejections: list[IngestionRejection]


# -- routes ----------------------------------------------------------------------------------------

@router.post("/v1/quantify", openapi_extra=json_body({
    "type": "object", "additionalProperties": False, "required": ["methodology_id", "inputs"], "title": "QuantifyRequest",
    "properties": {"methodology_id": {"type": "string", "pattern": IDENT},
                   "inputs": {"type": "object", "description": "the methodology's inputs; subject and occurred_at "
                                                               "beside them give the fingerprint"},
                   "version": {"type": "integer", "minimum": 1, "maximum": 1_000_000}}}),
    responses={200: {"model": QuantifyAnswer}, **refused(404, 413, 422)})
async def post_quantify(request: Request) -> Response:
    """Quantify one act under a registered methodology (the logged definition; the latest version unless
    `version`): reduction, fingerprint, explanation. Writes nothing."""
    body = await read_json(request.scope, request.receive, MAX_QUANTIFY_BYTES)
    return json_response(await asyncio.to_thread(_quantified, _context(request).methodologies, body))


def _quantified(methodologies: LoggedMethodologies, body: Any) -> dict[str, Any]:
    if not isinstance(body, dict) or not {"methodology_id", "inputs"} <= body.keys() <= {"methodology_id", "inputs", "version"}:
        raise ApiError(422, "SCHEMA", 'a request is {"methodology_id", "inputs"[, "version"]}')
    if not isinstance(body["methodology_id"], str) or not IDENTIFIER.fullmatch(body["methodology_id"]):
        raise ApiError(422, "SCHEMA", "methodology_id must be an identifier")
    version = body.get("version", 1)
    if type(version) is not int or not 1 <= version <= 1_000_000:
        raise ApiError(422, "SCHEMA", "version must be an integer in 1..1000000")
    with _refusals():
        return quantify_request(methodologies, body)


@router.get("/v1/subjects/{subject}/account", responses={**_report(PersonalAccount, "the account"), **refused(422)})
def get_subject_account(request: Request, subject: IdPath, format: FormatParam = "json") -> Response:
    """The personal carbon account (个人碳账户) of a pseudonym: reductions by Beijing day, methodology and
    platform, the batches (with their seq) and issuances they went into, every record."""
    with _refusals():
        return _answer(subject_account(_context(request).queries, subject), format)


class PseudonymsAccount(Strict):
    """Format 2: a person's account over their daily pseudonyms; tables as PersonalAccount's; every
    record's inclusion proof in its batch (openings stay with the citizen: `puhui account --openings`)."""
    title: str
    subjects: list[str]
    total_g: Int = Field(description="earned: without rejected_g")
    issued_g: Int
    rejected_g: Int = Field(description="in batches a validation body rejected, never to be issued")
    tables: Tables
    notes: list[str]
    proofs: list[dict[str, Any]]


MAX_API_PSEUDONYMS = 366  # a year of daily pseudonyms a request


@router.get("/v1/pseudonyms/account", responses={**_report(PseudonymsAccount, "the account"), **refused(422)})
def get_pseudonyms_account(request: Request, subject: Annotated[list[str], Query(
                               min_length=1, max_length=MAX_API_PSEUDONYMS,
                               description="a daily pseudonym (32 hex digits): repeat for each date")],
                           format: FormatParam = "json") -> Response:
    """Format 2: the personal carbon account (个人碳账户) of a person over their daily pseudonyms (the
    identity hub gives them), with every record's inclusion proof in its batch."""
    context = _context(request)
    if context.registry.log_format != 2:
        raise ApiError(422, "SCHEMA", "a format-1 registry's account is of one pseudonym: /v1/subjects/{subject}/account")
    for one in subject:
        if not isinstance(one, str) or not PSEUDONYM.fullmatch(one):
            raise ApiError(422, "SCHEMA", "each subject is a daily pseudonym: 32 lowercase hex digits")
    with _refusals():
        report, proofs = pseudonyms_account(context.queries, "these pseudonyms", subject)
    if format == "csv":
        return _answer(report, format)
    return json_response({**report.as_json(), "proofs": proofs})


@router.get("/v1/activities/{activity_id}/explanation",
            responses={**_report(ActivityExplanation, "the explanation"), **refused(404, 409, 422)})
def get_activity_explanation(request: Request, activity_id: IdPath, format: FormatParam = "json") -> Response:
    """Formula, factors with their sources (or the illustrative mark), inputs and result of a logged
    record, under the methodology version its batch names; what a daily cap dropped."""
    context = _context(request)
    with _refusals():
        explanation = explain_logged(context.queries, context.methodologies, activity_id)
    if explanation is None:
        raise not_found(f"activity {activity_id}")
    if format == "csv":
        return _answer(explanation_report(explanation), format)
    return json_response(explanation)


@router.post("/v1/footprints", openapi_extra=json_body(_INVENTORY),
             responses={**_report(FootprintReport, "the footprint"), **refused(413, 422)})
async def post_footprint(request: Request, format: FormatParam = "json") -> Response:
    """An inventory's footprint by scope, source, site and month, every factor cited. Writes nothing."""
    inventory = await read_json(request.scope, request.receive, MAX_FOOTPRINT_BYTES)
    return _answer(await asyncio.to_thread(_footprint_report, inventory), format)


def _footprint_report(inventory: Any) -> Report:
    with _refusals():
        return footprint(inventory).report()


@router.post("/v1/footprints:compare", openapi_extra=json_body({
    "type": "object", "additionalProperties": False, "required": ["earlier", "later"], "title": "FootprintPeriods",
    "properties": {"earlier": _INVENTORY, "later": _INVENTORY}}),
    responses={**_report(FootprintComparison, "the comparison"), **refused(413, 422)})
async def post_footprint_comparison(request: Request, format: FormatParam = "json") -> Response:
    """Two periods' footprints compared by scope, source and site: grams, tonnes, change. Writes nothing."""
    body = await read_json(request.scope, request.receive, MAX_FOOTPRINT_BYTES)
    return _answer(await asyncio.to_thread(_comparison, body), format)


def _comparison(body: Any) -> Report:
    if not isinstance(body, dict) or set(body) != {"earlier", "later"}:
        raise ApiError(422, "SCHEMA", 'a comparison is {"earlier": INVENTORY, "later": INVENTORY}')
    with _refusals():
        return compare_footprints(footprint(body["earlier"]), footprint(body["later"]))


@router.get("/v1/claims/{claim_id}/page", responses={**_report(ClaimPage, "the page"), **refused(404, 422, 503)})
async def get_claim_page(request: Request, claim_id: IdPath, format: FormatParam = "json") -> Response:
    """A neutrality claim's public page from the log: the declared footprint, the retired serials (and
    the issuances they come from), each retirement's receipt and the claim's."""
    return _answer(await _claim_page(_context(request), claim_id, None), format)


@router.post("/v1/claims/{claim_id}/page", openapi_extra=json_body(_INVENTORY),
             responses={**_report(ClaimPage, "the page"), **refused(404, 409, 413, 422, 503)})
async def post_claim_page(request: Request, claim_id: IdPath, format: FormatParam = "json") -> Response:
    """The same page with the claimant's inventory: the footprint by scope, source, site and month with
    every factor cited. 409 CLAIM_MISMATCH unless the inventory is the claim's (subject, period, total)."""
    inventory = await read_json(request.scope, request.receive, MAX_FOOTPRINT_BYTES)
    if not isinstance(inventory, dict):  # null would read as "no inventory", the GET's page
        raise Rejected("SCHEMA", "the body must be an inventory: a JSON object")
    return _answer(await _claim_page(_context(request), claim_id, inventory), format)


async def _claim_page(context: Context, claim_id: str, inventory: Any) -> Report:
    logged = await asyncio.to_thread(logged_claim, context.queries, claim_id, _CLAIM_KEYS)
    if logged is None:
        raise not_found(f"claim {claim_id}")
    note = await context.checkpoint_covering(logged.claim["seq"])  # retirements come before their claim
    return await asyncio.to_thread(_page, context, logged, inventory, note)


_CLAIM_KEYS = tuple(Claim.model_fields)  # the claim on its page, in the model's order


def _page(context: Context, logged: LoggedClaim, inventory: Any, note: str) -> Report:
    with _refusals():
        return claim_page_report(context.registry, context.queries, logged, inventory, note)


@router.post("/v1/ingestions", openapi_extra={"requestBody": {"required": True, "content": {
    "application/x-ndjson": {"schema": {"type": "string", "description": (
        "raw activity records, one JSON object a line: {activity_id, subject, occurred_at, inputs}")}},
    "text/csv": {"schema": {"type": "string", "description": (
        "with format=csv: a header of activity_id, subject, occurred_at and input names, then a record a row")}}}}},
    responses={200: {"model": IngestionAnswer}, **refused(404, 413, 422)})
async def post_ingestion(request: Request, platform: Annotated[str, Query(pattern=IDENT)],
                         methodology_id: Annotated[str, Query(pattern=IDENT)],
                         format: Annotated[Literal["jsonl", "csv"], Query(description="the body's format")] = "jsonl",
                         period: Literal["month", "day"] = "month",
                         run_id: Annotated[str | None, Query(pattern=RUN_ID, description=(
                             "names the batches <run_id>-<YYYY-MM>; default: the platform and a random tail"))] = None,
                         ) -> Response:
    """Quantify a platform's raw records against the log (the methodology's version in force): check,
    quantify, fingerprint, drop duplicates and over-cap amounts with a reason and line each, batch.
    Answers the unsigned activity.batch bodies with their records; writes nothing. In a format-2
    registry, with the keys the server was started with: daily pseudonyms, keyed fingerprints, public
    inputs, and each batch's openings for the platform to keep (never posted)."""
    data = await read_body(request.scope, request.receive, MAX_INGESTION_BYTES)
    if data.count(b"\n") + (not data.endswith(b"\n")) > MAX_INGESTION_LINES:
        raise ApiError(413, "SCHEMA", f"more than {MAX_INGESTION_LINES} lines: split the file")
    # Charged before its body is read (RegistryApp.dispatch, app.prices: EXPENSIVE_READ_UNITS).
    context = _context(request)
    async with context.ingestions:  # each run is CPU-bound: a few at a time
        payload = await asyncio.to_thread(_ingested, context, data, platform, methodology_id, format, period,
                                          run_id or f"{platform[:60]}-{secrets.token_hex(6)}")
    return Response(payload, media_type="application/json")


def _ingested(context: Context, data: bytes, platform: str, methodology_id: str, format: str, period: str,
              run_id: str) -> bytes:
    with _refusals():
        check_scheme_keys(context.registry.log_format, context.scheme_keys,
                          "this server was started without them: `puhui serve --hub-key FILE --fingerprint-key FILE`, "
                          "or ingest with `puhui ingest` where they are kept")
        check_platform(context.queries, platform)  # before the methodology: as before, a missing platform is named first
        methodology = context.methodologies.get(methodology_id)
    work = FilePath(tempfile.mkdtemp(prefix="puhui-ingestion-"))
    try:
        with _refusals():
            result = ingest_against_log(context.registry, io.BytesIO(data), csv=format == "csv", platform=platform,
                                        methodology=methodology, run_id=run_id, out_dir=work / "run", period=period,
                                        max_lines=MAX_INGESTION_LINES, scheme_keys=context.scheme_keys)
        return _ingestion_answer(result, run_id)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _openings(batch: BatchResult) -> bytes:
    """Format 2: the batch's openings for the platform to keep, spliced in as they are (JCS objects)."""
    if batch.openings_path is None:
        return b""
    return b',"openings":[' + b",".join(batch.openings_path.read_bytes().splitlines()) + b"]"


def _ingestion_answer(result: IngestResult, run_id: str) -> bytes:
    """The answer's JSON, with each record's exact bytes spliced in (they are JCS objects already)."""
    head = {"platform": result.platform, "methodology_id": result.methodology_id,
            "methodology_version": result.methodology_version, "run_id": run_id, "lines": result.lines,
            "accepted": result.accepted, "accepted_g": result.accepted_g, "accepted_t": format_tonnes(result.accepted_g),
            "rejected": result.rejected, "dropped_by_cap_g": result.dropped_by_cap_g,
            "reasons": {reason: result.reasons.get(reason, 0) for reason in REASONS}}
    batches = [b'{"body":' + json_bytes(batch.body) + b',"records":[' + b",".join(batch.path.read_bytes().splitlines())
               + b"]" + _openings(batch) + b"}" for batch in result.batches]
    rejections = result.rejections_path.read_bytes().splitlines() if result.rejections_path else []
    return (json_bytes(head)[:-1] + b',"batches":[' + b",".join(batches) + b'],"rejections":['
            + b",".join(rejections) + b"]}")
