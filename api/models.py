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
    from ledger import field_checks, schema as body
    from ledger.definitions import definition
    from ledger.events.credits import ISSUANCES
    from ledger.events.reviews import review_target
    identifier = {"type": "string", "pattern": IDENT}
    rules = ["offset_cap_ppm", "offset_vintage_years", "offset_regions"]
    return {id(check): fragment for check, fragment in (
        # format 2's
        (field_checks.rules_v2, {"type": "object", "required": [*rules, "review_quorum"]}),
        (field_checks.format_2, {"const": 2}),
        (field_checks.key_roles_v2, {"type": "array", "uniqueItems": True, "items": {
            "enum": list(field_checks.ROLES_V2)}, "description": "validator or expert only alone"}),
        (review_target, {"oneOf": [
            {"type": "object", "additionalProperties": False, "required": ["kind", "id", "version"], "properties": {
                "kind": {"enum": ["batch"]}, "id": identifier, "version": {"type": "null"}}},
            {"type": "object", "additionalProperties": False, "required": ["kind", "id", "version"], "properties": {
                "kind": {"enum": ["evidence"]}, "id": {"type": "string", "pattern": r"^[0-9a-f]{64}$"},
                "version": {"type": "null"}}},
            {"type": "object", "additionalProperties": False, "required": ["kind", "id", "version"], "properties": {
                "kind": {"enum": ["methodology"]}, "id": identifier,
                "version": {"type": "integer", "minimum": 1, "maximum": MAX_SAFE_INT}}}]}),
        (ISSUANCES, {"anyOf": [{"type": "null"}, {"type": "array", "minItems": 1, "uniqueItems": True,
                                                  "items": identifier}],
                     "description": "the issuances the serials are taken from (null: any)"}),
        (definition, {"type": "object", "description": "a methodology definition (spec section 7.1)"}),
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
        (body.rules, {"type": "object", "required": rules}),
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
    held: list[str] | None = Field(None, description=(
        "format 2 only: the account's open cases (account.hold); while one is open it neither transfers nor "
        "retires (FROZEN)"))


class Hold(Strict):
    """One account.hold event of a case."""
    hold_id: str
    seq: Int
    time: Time
    held: bool = Field(description="true opens the case, false closes it")
    reason: str


class Case(Strict):
    case_id: str
    open: bool
    holds: list[Hold] = Field(description="in log order")


class AccountHolds(Strict):
    """Format 2: an account's cases, open and closed, by the seq that first opened them."""
    account_id: str
    held: bool = Field(description="a case is open")
    cases: list[Case]


class ReviewStatus(Strict):
    """A review target against review_quorum (format 2, spec section 6), as of now."""
    approved: Int = Field(description="distinct keys whose approval counts now")
    quorum: Int = Field(description="review_quorum.issuance (batch, evidence) or .eligibility (methodology)")
    rejected: bool = Field(description="a key whose rejection counts rejected it: no quorum is then enough")


class ReviewTargetModel(Strict):
    kind: Literal["batch", "evidence", "methodology"]
    id: str
    version: Int | None


class Review(Strict):
    review_id: str
    seq: Int
    time: Time
    signer: KeyId
    verdict: Literal["approved", "rejected"]
    report_sha256: Hex64
    counts: bool = Field(description=(
        "its key holds the reviewer role and is active now; a batch's approval from a controller of its platform "
        "does not count (the recipient's controllers are judged at the issuance); a key counts once per target, "
        "by its first review of a verdict"))
    repeat_of: Int | None = Field(description="the seq of the same key's earlier review of the same verdict, which "
                                              "alone counts; null for the first")


class Reviews(Strict):
    """Format 2: a page of one target's reviews by seq, and the target's status."""
    target: ReviewTargetModel
    status: ReviewStatus
    items: list[Review]
    next_after: Int | None


class BatchBody(Strict):
    """An activity.batch body without request_id: sign it (with a request_id) and post it with its records."""
    batch_id: str
    platform: str
    methodology_id: str
    methodology_version: Int
    period_start: str
    period_end: str
    count: Int
    total_g: Int
    root: Hex64


class Batch(BatchBody):
    """An activity batch as logged, and whether it backs an issuance."""
    seq: Int
    time: Time
    issuance_id: str | None
    issued: bool
    reviews: ReviewStatus | None = Field(None, description="format 2 only: its issuance reviews")


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
    issuances: list[str] | None = Field(None, description="format 2 only: the issuances it chose (null: any)")


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
    offset_eligible: bool = Field(description="format 2: this version's own eligibility; format 1: as registered")
    eligibility_reviews: ReviewStatus | None = Field(None, description="format 2 only: the experts' reviews")


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


class VersionEligibility(Strict):
    """A methodology version behind the serials judged (format 2)."""
    methodology_id: str
    version: Int
    offset_eligible: bool
    eligibility_reviews: ReviewStatus


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
    methodology_versions: list[VersionEligibility] | None = Field(None, description=(
        "format 2 only: the methodology versions behind the serials judged (the retirements', or the would-be "
        "retirement's), each eligible by its own flag"))


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
