"""Request and response schemas, for the OpenAPI document only.

Handlers never let pydantic parse or serialize (bodies go through ledger.canonical.parse_strict,
answers are written as JSON bytes); these models state the shapes, and the schemathesis test
checks every answer against them, so the document cannot drift from what is served.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field

from api.errors import API_CODES
from ledger.schema import ACCOUNT_KINDS, EVENT_TYPES, IDENT as IDENT_RE, PURPOSES, SECTORS, SUBJECT_KINDS

MAX_SAFE_INT = 2**53 - 1
Code = Literal[API_CODES]  # type: ignore[valid-type]
Int = Annotated[int, Field(ge=0, le=MAX_SAFE_INT)]
Hex64 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
KeyId = Annotated[str, Field(pattern=r"^[0-9a-f]{16}$")]
IDENT = f"^{IDENT_RE.pattern}$"  # the spec's identifier, as OpenAPI patterns spell it
Identifier = Annotated[str, Field(pattern=IDENT)]
Time = Annotated[str, Field(pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z$")]
Range = Annotated[list[Int], Field(min_length=2, max_length=2, description="half-open [START, END) of serials")]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Problem(Strict):
    """Every refusal: a spec code (section 9), or UNAVAILABLE (503: nothing was written, retry)."""
    code: Code
    message: str


class Auth(Strict):
    key: KeyId
    sig: str = Field(description="base64 of the Ed25519 signature over 'puhui-event/v1\\n' || JCS({body, origin, type})")


class SignedEvent(Strict):
    """An event signed by its actor (spec section 2); body fields per type (spec section 6)."""
    type: Literal[EVENT_TYPES]  # type: ignore[valid-type]
    body: dict[str, Any]
    auth: Auth


def _field_schemas() -> dict[int, dict[str, Any]]:
    """JSON Schema of the ledger's named field checks (by identity; the others are described as any)."""
    from ledger import schema as body
    return {id(check): fragment for check, fragment in (
        (body.identifier, {"type": "string", "pattern": IDENT}),
        (body.key_id, {"type": "string", "pattern": r"^[0-9a-f]{16}$"}),
        (body.hex64, {"type": "string", "pattern": r"^[0-9a-f]{64}$"}),
        (body.region, {"type": "string", "pattern": r"^[0-9]{6}$"}),
        (body.text, {"type": "string", "minLength": 1, "maxLength": body.MAX_TEXT_CHARS}),
        (body.request_id, {"type": "string", "minLength": 1, "maxLength": 128}),
        (body.date, {"type": "string", "pattern": r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"}),
        (body.boolean, {"type": "boolean"}),
        (body.public_key, {"type": "string", "description": "base64 of 32 bytes"}),
        (body.json_object, {"type": "object"}),
        (body.rules, {"type": "object", "required": ["offset_cap_ppm", "offset_vintage_years", "offset_regions"]}),
        (body.controllers, {"type": "array", "minItems": 1, "maxItems": body.MAX_CONTROLLERS,
                            "items": {"type": "string", "pattern": r"^[0-9a-f]{16}$"}}),
        (body.amount_g, {"type": "integer", "minimum": 1, "maximum": MAX_SAFE_INT}),
        (body.year, {"type": "integer", "minimum": 1900, "maximum": 9999}),
        (body.origin, {"type": "string", "minLength": 1, "maxLength": 255}),
    )}


def signed_event_schema(log_format: int) -> dict[str, Any]:
    """SignedEvent with one variant per event type: the body's exact fields in a log of this
    format, from ledger.schema.BODIES."""
    from ledger.schema import BODIES
    known = _field_schemas()
    variants = []
    for event_type, spec in BODIES[log_format].items():
        body = {"type": "object", "additionalProperties": False, "required": sorted(spec),
                "properties": {name: known.get(id(check), {}) for name, check in spec.items()}}
        variants.append({"type": "object", "additionalProperties": False, "required": ["type", "body", "auth"],
                         "title": event_type, "properties": {"type": {"const": event_type}, "body": body,
                                                             "auth": {"$ref": "#/components/schemas/Auth"}}})
    return {"title": "SignedEvent", "description": SignedEvent.__doc__, "oneOf": variants}


class EventBatch(Strict):
    events: list[SignedEvent] = Field(min_length=1, max_length=1000)


class Effects(Strict):
    serials: list[Range]


class EventAccepted(Strict):
    """201 when the event is committed; 200 with the original result when it is a resend."""
    seq: Int
    leaf_hash: Hex64
    time: Time
    effects: Effects | None = Field(None, description="present for issuance, transfer, retirement, cancellation")


class BatchAccepted(EventAccepted):
    status: Literal[200, 201]


class BatchRejected(Problem):
    status: int = Field(ge=400, le=599)


class EventBatchResults(Strict):
    results: list[Union[BatchAccepted, BatchRejected]]


class Trust(Strict):
    """The trust file (spec section 8)."""
    origin: str
    log_key: str
    root_keys: list[str]
    witnesses: list[str] | None = None
    witness_quorum: Int | None = None


class InclusionProof(Strict):
    leaf_index: Int
    tree_size: Int
    hashes: list[Hex64]


class ConsistencyProof(Strict):
    first: Int
    second: Int
    hashes: list[Hex64]


class Leaf(Strict):
    """A leaf (spec section 3)."""
    auth: Auth
    body: dict[str, Any]
    effects: Effects | None = None
    seq: Int
    time: Time
    type: Literal[EVENT_TYPES]  # type: ignore[valid-type]


class LogPage(Strict):
    leaves: list[Leaf]


class Serials(Strict):
    active: list[Range]
    retired: list[Range]
    cancelled: list[Range]


class Account(Strict):
    account_id: Identifier
    kind: Literal[ACCOUNT_KINDS]  # type: ignore[valid-type]
    name: str
    region: str
    platform: str | None
    controllers: list[KeyId]
    seq: Int
    active_g: Int
    retired_g: Int
    cancelled_g: Int
    serials: Serials


class AccountIssuance(Strict):
    issuance_id: str
    methodology_id: str
    vintage: Int
    region: str
    active_g: Int
    retired_g: Int
    cancelled_g: Int
    serials: Serials


class AccountIssuances(Strict):
    account_id: str
    issuances: list[AccountIssuance]


class Issuance(Strict):
    issuance_id: str
    seq: Int
    time: Time
    account: str
    methodology_id: str
    vintage: Int
    region: str
    amount_g: Int
    start: Int
    end: Int
    methodology_versions: list[Int] = Field(description="the methodology versions behind it: its batches' "
                                                        "versions, or the latest at an evidence issuance")
    evidence: Hex64 | None = Field(description="the SHA-256 of its verification report, for an issuance without "
                                               "batches")


class Source(Strict):
    """The part of a retirement's serials that one issuance created."""
    issuance_id: str
    methodology_id: str
    vintage: Int
    region: str
    amount_g: Int
    serials: list[Range]


class Retirement(Strict):
    """One line of the public disclosure list."""
    retirement_id: str
    seq: Int
    time: Time
    account: str
    amount_g: Int
    purpose: Literal[PURPOSES]  # type: ignore[valid-type]
    beneficiary: str
    serials: list[Range]
    used_by: str | None = Field(description="the surrender or claim that used it")
    sources: list[Source]


class Surrender(Strict):
    surrender_id: str
    seq: Int
    time: Time
    entity: str
    compliance_year: Int
    allocation_g: Int
    amount_g: Int
    retirements: list[str]


class Subject(Strict):
    kind: Literal[SUBJECT_KINDS]  # type: ignore[valid-type]
    name: str


class Claim(Strict):
    claim_id: str
    seq: Int
    time: Time
    claimant: str
    subject: Subject
    period_start: str
    period_end: str
    footprint_g: Int
    retired_g: Int
    retirements: list[str]


class MethodologyVersion(Strict):
    version: Int
    seq: Int
    title: str
    sector: Literal[SECTORS]  # type: ignore[valid-type]
    params: dict[str, Any]
    offset_eligible: bool


class Methodology(Strict):
    """A methodology with its version in force at the top; every version under `versions`."""
    methodology_id: str
    version: Int = Field(description="the version in force: the latest registered")
    title: str
    sector: Literal[SECTORS]  # type: ignore[valid-type]
    params: dict[str, Any] = Field(description=(
        "the definition as registered: with quantify's register_body, formula, inputs, daily cap, fingerprint and "
        "each factor with its source or illustrative: true"))
    seq: Int
    time: Time
    offset_eligible: bool = Field(description="eligibility in force (methodology.eligibility may change it)")
    latest_version: Int
    versions: list[MethodologyVersion]


def _page(item: type[BaseModel], name: str) -> type[BaseModel]:
    return type(name, (Strict,), {"__annotations__": {"items": list[item], "next_after": Int | None},
                                  "__doc__": f"A page of {item.__name__} by seq; next_after=null when the list ends."})


IssuancePage = _page(Issuance, "IssuancePage")
RetirementPage = _page(Retirement, "RetirementPage")
SurrenderPage = _page(Surrender, "SurrenderPage")
ClaimPage = _page(Claim, "ClaimPage")
MethodologyPage = _page(Methodology, "MethodologyPage")


class ActivityProof(Strict):
    """An activity record (exact bytes) and its inclusion proof in its batch's root (spec section 7)."""
    activity_id: str
    batch_id: str
    batch_seq: Int = Field(description="the activity.batch event; its receipt proves the root is in the log")
    batch_root: Hex64
    record: str
    inclusion: InclusionProof


class ActivityRef(Strict):
    activity_id: str
    batch_id: str
    occurred_at: str
    reduction_g: Int


class ActivityPage(Strict):
    items: list[ActivityRef]
    next_after: str | None


class ReceiptSigner(Strict):
    leaf: str
    inclusion: InclusionProof


class Receipt(Strict):
    """docs/receipt.md: what `puhui-verify receipt` checks."""
    format: Literal["puhui-receipt/1"]
    origin: str
    leaf: str
    inclusion: InclusionProof
    checkpoint: str
    signer: ReceiptSigner | None


class EligibilityByRetirements(Strict):
    entity: Identifier
    compliance_year: Annotated[int, Field(ge=1900, le=9999)]
    allocation_g: Int
    retirements: list[Identifier] = Field(min_length=1, max_length=1000)


class EligibilityByAmount(Strict):
    """An amount the entity holds as active, not yet retired."""
    entity: Identifier
    compliance_year: Annotated[int, Field(ge=1900, le=9999)]
    allocation_g: Int
    amount_g: Annotated[int, Field(ge=1, le=MAX_SAFE_INT)]
    issuances: list[Identifier] | None = Field(
        default=None, min_length=1, max_length=1000,
        description="format 2 only: the issuances the would-be retirement takes from, distinct (absent or null: any)")


class Refusal(Strict):
    code: Code
    message: str
    retirement_id: str | None


class RetirementCheck(Strict):
    retirement_id: str
    amount_g: Int | None
    eligible: bool


class Eligibility(Strict):
    eligible: bool
    entity: str
    held: bool = Field(description="format 2: the entity has an open case (account.hold): it may not retire now")
    compliance_year: Int
    allocation_g: Int
    offset_cap_ppm: Int
    cap_g: Int
    surrendered_g: Int
    remaining_cap_g: Int
    requested_g: Int
    retirements: list[RetirementCheck]
    refusals: list[Refusal]
    as_of_size: Annotated[Int, Field(description="the committed log size whose State was judged")]


class Totals(Strict):
    """Conservation: issued_g == active_g + retired_g + cancelled_g."""
    size: Int
    issued_g: Int
    active_g: Int
    retired_g: Int
    cancelled_g: Int


class SequencerStats(Strict):
    groups: Int
    events: Int
    writing_s: float
    mean_group_events: float
    checkpoints: Int
    checkpointing_s: float


class Status(Strict):
    committed_size: Int
    queued_events: Int
    sequencer: SequencerStats


# Named in the document by $ref only (request bodies, refusals): added to its components by hand.
DOCUMENT_ONLY_MODELS = (Problem, SignedEvent, EventBatch, EligibilityByRetirements, EligibilityByAmount)
