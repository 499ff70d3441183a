"""The public pages (信息披露): the register as server-rendered HTML at `/`, beside the API at /v1.

Every page reads the committed database through ledger.queries, as the /v1 routes do, so each
number on a page is the API's for the same query. Pages need no JavaScript; they speak Simplified
Chinese by default and English on `?lang=en`, remembered in a cookie (api.page_text holds every
string in both). A register page is one Register: its filters (validated as the API validates
them), its columns (the table's and the CSV's), and the query that reads it; format 2 adds the
holds register and the reviews of each issuance. Unknown ids and paths answer a 404 page, bad
filters and unknown query parameters a 422 page, each reason in the page's language. None of these
routes is in the OpenAPI document.

Reading needs no JavaScript either on /receipts/{seq}, /verify and /me; there a script (api/static/
check.js, docs/receipt.md "In the browser") checks the receipt, or each of a citizen's records and
its batch's receipt, itself, so that the reader need not take this server's word for it. /me lists
records only for what the citizen enters (their daily pseudonyms, or a record's id and opening).
"""

from __future__ import annotations

import asyncio
import csv
import difflib
import io
import json
import operator
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Annotated, Any, Callable, Iterator, NamedTuple, NoReturn
from urllib.parse import parse_qsl, quote, urlencode

from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.routing import APIRoute
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from markupsafe import Markup, escape
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, TypeAdapter, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from api import quantification
from api.bodies import read_body
from api.bridge import checkpoint_covering
from api.errors import ApiError
from api.models import IDENT, MAX_SAFE_INT
from api.page_text import DEFAULT_LANGUAGE, HTML_LANG, LANGUAGES, MESSAGES, translator
from api.quantification import PSEUDONYM
from ledger import merkle
from ledger.canonical import jcs, parse_strict
from ledger.definitions import compile_definition
from ledger.errors import Rejected, StorageError
from ledger.note import parse_checkpoint
from ledger.queries import MAX_PAGE_ITEMS, Page, Queries
from ledger.receipts import build_receipt
from ledger.register_totals import MonthFlow
from ledger.schema import PURPOSES, SECTORS
from ledger.state import ReviewTarget
from ledger.units import tonnes
from quantify.account import opening_problem
from quantify.activity import IDENTIFIER
from quantify.report import Report
from service.accounts import TooManyRecords, pseudonyms_account, subject_account

HERE = Path(__file__).resolve().parent
PAGE_ITEMS = 50
MAX_CSV_ROWS = 10_000  # rows of one CSV download; past them the file names the cursor to go on from
CHART_MONTHS = 24
ACCOUNT_ROWS = 10  # rows of each register on an account's page; the register has the rest
LANGUAGE_COOKIE = "puhui_lang"
LANGUAGE_COOKIE_MAX_AGE_S = 365 * 24 * 3600

templates = Jinja2Templates(directory=HERE / "templates")


def _known_params_only(request: Request) -> None:
    """Every page refuses a query parameter it does not have (a 422 naming the close one), as the
    registers do with their filters: `/methodologies/X?version=1` showing every version would read
    as version 1's. A page's own are `lang` and those PAGE_QUERY_PARAMS names; a register's, its filters."""
    path = getattr(request.scope.get("route"), "path", "")
    if path.removeprefix("/") not in REGISTERS:  # those: _filters
        _refuse_unknown(request, ("lang", *PAGE_QUERY_PARAMS.get(path, ())))


router = APIRouter(include_in_schema=False, dependencies=[Depends(_known_params_only)])
PAGE_QUERY_PARAMS = {"/serials": ("n",)}  # beside `lang`; every other page but the registers has none

Ident = Annotated[str, Field(pattern=IDENT)]
Year = Annotated[int, Field(ge=1900, le=9999)]
Region = Annotated[str, Field(pattern=r"^[0-9]{6}$")]


def _one_of(values: tuple[str, ...]) -> Callable[[str], str]:
    def check(value: str) -> str:
        if value not in values:
            raise ValueError(f"is not one of {', '.join(values)}")
        return value
    return check


class Message(NamedTuple):
    """A message of api.page_text, said in the page's language when it is rendered; a value may be
    a Message itself (a field's label inside a reason)."""
    key: str
    values: dict[str, Any] = {}

    def said(self, t: Callable[..., str]) -> str:
        return t(self.key, **{name: value.said(t) if isinstance(value, Message) else value
                              for name, value in self.values.items()})


def said(key: str, **values: Any) -> Message:
    return Message(key, values)


class PageError(Exception):
    """A page that cannot be shown: 404 (unknown id), 413 (too large a form) or 422 (bad filter or
    id), with its reason in both languages."""

    def __init__(self, status: int, reason: Message):
        super().__init__(reason.key)
        self.status = status
        self.reason = reason


# -- filters, as the API's query parameters --------------------------------------------------------

class Cursor(BaseModel):
    """The cursor, as the API's `after`, and the dates (UTC, both included) every register has:
    its rows' event times, which never decrease along the log, so that dates bound the seqs."""
    model_config = ConfigDict(extra="ignore", frozen=True)
    after: int = Field(-1, ge=-1, le=MAX_SAFE_INT)
    since: date | None = None
    until: date | None = None


class SeqWindow(NamedTuple):
    """The seqs the dates allow: after `after`, before `stop` (None: to the end of the log)."""
    after: int
    stop: int | None


class IssuanceFilters(Cursor):
    account: Ident | None = None
    methodology_id: Ident | None = None
    vintage: Year | None = None
    region: Region | None = None


class RetirementFilters(Cursor):
    account: Ident | None = None
    purpose: Annotated[str, AfterValidator(_one_of(PURPOSES))] | None = None
    methodology_id: Ident | None = None
    vintage: Year | None = None
    region: Region | None = None
    used: bool | None = None


class SurrenderFilters(Cursor):
    entity: Ident | None = None
    compliance_year: Year | None = None


class ClaimFilters(Cursor):
    claimant: Ident | None = None


class HoldFilters(Cursor):
    account: Ident | None = None
    held: bool | None = None


class MethodologyFilters(Cursor):
    sector: Annotated[str, AfterValidator(_one_of(SECTORS))] | None = None
    offset_eligible: bool | None = None


class FilterField(NamedTuple):
    name: str  # the query parameter, as the API names it; its label is the message filter.<name>
    choices: tuple[str, ...] = ()  # a select's values (labelled by choice_labels); none: a text field
    choice_labels: str = ""  # the message prefix of the choices' labels ("purpose" for purpose.ets_offset)
    input_type: str = "text"


_DATES = (FilterField("since", input_type="date"), FilterField("until", input_type="date"))


class Column(NamedTuple):
    name: str  # the CSV's header; the page's heading is the message col.<name>
    value: Callable[[dict[str, Any]], Any]  # the cell's value, flat (the CSV's)
    show: str = "text"  # how the page shows it: text, free (a text anyone wrote), amount, account, claim,
    # methodology, receipt, serials, time, reviews, label:<prefix>


@dataclass(frozen=True, slots=True)
class Register:
    name: str  # its path and the prefix of its messages
    filters: type[Cursor]
    fields: tuple[FilterField, ...]
    columns: tuple[Column, ...]
    read: Callable[[Queries, dict[str, Any], int, int], Page]  # (queries, filters, after, limit)
    formats: tuple[int, ...] = (1, 2)  # the log formats that have this register
    format2_columns: tuple[Column, ...] = ()  # after the columns, in a format-2 log

    def columns_in(self, log_format: int) -> tuple[Column, ...]:
        return self.columns + self.format2_columns if log_format == 2 else self.columns


def _ranges(ranges: list[list[int]]) -> str:
    """Serial ranges as the CSV has them, START-END;START-END (each [START, END), spec section 3)."""
    return ";".join(f"{start}-{end}" for start, end in ranges)


SERIAL_SEPARATOR = "–"  # START–END on every page, each range [START, END) as the note serials.note says


def serials_html(ranges: list[list[int]] | list[tuple[int, int]]) -> Markup:
    """Serial ranges as every page shows them: START–END, each end-exclusive."""
    return Markup(", ".join(f'<span class="serials">{int(start)}{SERIAL_SEPARATOR}{int(end)}</span>'
                            for start, end in ranges) or "–")


def _of_sources(field: str) -> Callable[[dict[str, Any]], str]:
    return lambda item: ";".join(sorted({str(source[field]) for source in item["sources"]}))


def _field(name: str, show: str = "text") -> Column:
    """A column showing one field of the item as it is."""
    return Column(name, operator.itemgetter(name), show)


_TIME = _field("time", "time")
_SEQ = _field("seq", "receipt")

REGISTERS = {r.name: r for r in (
    Register("issuances", IssuanceFilters,
             (FilterField("region"), FilterField("methodology_id"), FilterField("vintage"), FilterField("account"),
              *_DATES),
             (_TIME, _field("issuance_id"), _field("account", "account"), _field("methodology_id", "methodology"),
              _field("vintage"), _field("region"), _field("amount_g", "amount"),
              Column("serials", lambda i: f"{i['start']}-{i['end']}", "serials"), _SEQ),
             lambda q, f, after, limit: _with_reviews(q, q.issuances(**f, after=after, limit=limit)),
             format2_columns=(Column("reviews", lambda i: ";".join(
                 f"{target['id']}/{r['review_id']}/{r['verdict']}" for target in i["reviews"] for r in target["reviews"]),
                 "reviews"),)),
    Register("retirements", RetirementFilters,
             (FilterField("region"), FilterField("methodology_id"), FilterField("vintage"),
              FilterField("purpose", PURPOSES, "purpose"), FilterField("used", ("true", "false"), "bool"),
              FilterField("account"), *_DATES),
             (_TIME, _field("retirement_id"), _field("account", "account"), _field("purpose", "label:purpose"),
              _field("beneficiary", "free"), _field("amount_g", "amount"), Column("serials", lambda i: _ranges(i["serials"]), "serials"),
              Column("methodology_id", _of_sources("methodology_id")), Column("vintage", _of_sources("vintage")),
              Column("region", _of_sources("region")), Column("used_by", lambda i: i["used_by"] or ""), _SEQ),
             lambda q, f, after, limit: q.retirements(**f, after=after, limit=limit)),
    Register("surrenders", SurrenderFilters, (FilterField("entity"), FilterField("compliance_year"), *_DATES),
             (_TIME, _field("surrender_id"), _field("entity", "account"), _field("compliance_year"),
              _field("amount_g", "amount"), _field("allocation_g", "amount"),
              Column("retirements", lambda i: ";".join(i["retirements"])), _SEQ),
             lambda q, f, after, limit: q.surrenders(**f, after=after, limit=limit)),
    Register("claims", ClaimFilters, (FilterField("claimant"), *_DATES),
             (_TIME, _field("claim_id", "claim"), _field("claimant", "account"),
              Column("subject", lambda i: i["subject"]["name"], "free"),
              Column("period", lambda i: f"{i['period_start']}/{i['period_end']}"),
              _field("footprint_g", "amount"), _field("retired_g", "amount"),
              Column("retirements", lambda i: ";".join(i["retirements"])), _SEQ),
             lambda q, f, after, limit: q.claims(**f, after=after, limit=limit)),
    Register("holds", HoldFilters,
             (FilterField("account"), FilterField("held", ("true", "false"), "held"), *_DATES),
             (_TIME, _field("hold_id"), _field("account_id", "account"), _field("case_id"),
              Column("held", lambda i: str(i["held"]).lower(), "label:held"), _field("reason", "free"), _SEQ),
             lambda q, f, after, limit: q.holds_register(**f, after=after, limit=limit), formats=(2,)),
    Register("methodologies", MethodologyFilters,
             (FilterField("sector", SECTORS, "sector"), FilterField("offset_eligible", ("true", "false"), "bool"),
              *_DATES),
             (_field("methodology_id", "methodology"), _field("title", "free"), _field("sector", "label:sector"),
              _field("version"), Column("offset_eligible", lambda i: str(i["offset_eligible"]).lower(), "label:bool"),
              _TIME, _SEQ),
             lambda q, f, after, limit: _methodologies_in_force(q.methodologies(**f, after=after, limit=limit))),
)}


def _with_reviews(queries: Queries, page: Page) -> Page:
    """Format 2: each issuance with the reviews of what it issues (its batches, else its evidence):
    [{kind, id, reviews: [{review_id, seq, signer, verdict}]}], read for the whole page at once."""
    if queries.log_format() != 2:
        return page
    bodies = queries.bodies_at(item["seq"] for item in page.items)  # the projection keeps no batches
    targets = {item["issuance_id"]: [ReviewTarget("batch", b, None) for b in bodies[item["seq"]]["batches"]]
               or ([ReviewTarget("evidence", item["evidence"], None)] if item["evidence"] else [])
               for item in page.items}
    found = queries.reviews_of(target for listed in targets.values() for target in listed)
    return Page([{**item, "reviews": [{"kind": target.kind, "id": target.id, "reviews": found[target]}
                                      for target in targets[item["issuance_id"]]]} for item in page.items],
                page.next_after)


def _methodologies_in_force(page: Page) -> Page:
    return Page([quantification.methodology_in_force(m) for m in page.items], page.next_after)


# -- language, rendering, errors -------------------------------------------------------------------

def _language(request: Request) -> tuple[str, bool]:
    """The page's language, and whether it was asked for now (then the cookie remembers it)."""
    asked = request.query_params.get("lang")
    if asked in LANGUAGES:
        return asked, True
    remembered = request.cookies.get(LANGUAGE_COOKIE)
    return (remembered if remembered in LANGUAGES else DEFAULT_LANGUAGE), False


def amount(amount_g: int) -> str:
    """Tonnes with three decimals; grams where the tonnes would read 0.000."""
    text = tonnes(amount_g)
    return f"{amount_g} g" if text == "0.000" and amount_g else f"{text} t"


def grams_html(t: Callable[..., str], amount_g: int) -> Markup:
    """An amount as the pages show it: tonnes (or grams), the exact grams in its title."""
    return Markup(f'<span class="amount" data-g="{int(amount_g)}" title="{int(amount_g):,} {escape(t("unit.g"))}">'
                  f'{escape(amount(amount_g))}</span>')


def exact_grams_html(t: Callable[..., str], amount_g: int) -> Markup:
    """Grams as a citizen's app counts them (a ride earns hundreds), the tonnes in its title."""
    return Markup(f'<span class="amount" data-g="{int(amount_g)}" title="{escape(amount(amount_g))}">'
                  f'{int(amount_g):,} {escape(t("unit.g"))}</span>')


def free_text_html(text: str) -> Markup:
    """A text its writer chose (a beneficiary, a reason, a name), isolated in a <bdi>: bidi
    controls in it (U+202E RIGHT-TO-LEFT OVERRIDE...) reorder it alone, never the text around it."""
    return Markup(f"<bdi>{escape(text)}</bdi>")


_LINKED = {"account": "accounts", "claim": "claims", "methodology": "methodologies"}  # Column.show: its pages


def cell_html(t: Callable[..., str], column: Column, item: dict[str, Any]) -> Markup:
    """A register table's cell, escaped: built here rather than by a macro per cell (a page of 50
    rows has hundreds of cells, and a Jinja macro call, or Markup.format, costs several times this)."""
    value, show = column.value(item), column.show
    if show == "amount":
        return grams_html(t, value)
    if show in _LINKED:
        text = escape(value)
        return Markup(f'<a href="/{_LINKED[show]}/{text}">{text}</a>')
    if show == "serials":  # the CSV's START-END;... as the pages show ranges
        return serials_html([part.split("-") for part in value.split(";")] if value else [])
    if show == "free":
        return free_text_html(value)
    if show == "receipt":  # a seq: its event's receipt, checked by the browser
        return Markup(f'<a href="/receipts/{int(value)}">{int(value)}</a>')
    if show == "time":
        return Markup(f'<time datetime="{escape(value)}">{escape(value[:19].replace("T", " "))}</time>')
    if show.startswith("label:"):
        return escape(t(f"{show.removeprefix('label:')}.{value}"))
    if show == "reviews":
        return _reviews_html(t, item["reviews"])
    return escape(value)


def _reviews_html(t: Callable[..., str], targets: list[dict[str, Any]]) -> Markup:
    """An issuance's reviews: each target (a batch, or the evidence) and its verdicts, each linked
    to its receipt; the API's /v1/reviews tells which count."""
    parts = []
    for target in targets:
        verdicts = ", ".join(f'<a href="/receipts/{int(r["seq"])}" class="verdict-{escape(r["verdict"])}">'
                             f'{escape(r["review_id"])} {escape(t("verdict." + r["verdict"]))}</a>' for r in target["reviews"])
        reviews_url = f"/v1/reviews?{urlencode({'kind': target['kind'], 'id': target['id']})}"
        parts.append(f'<span class="review-target"><a href="{escape(reviews_url)}">{escape(target["id"][:16])}</a>: '
                     f'{verdicts or escape(t("verdict.none"))}</span>')
    return Markup("<br>".join(parts) or "–")


def _render(request: Request, template: str, status_code: int = 200, headers: dict[str, str] | None = None,
            **context: Any) -> HTMLResponse:
    language, asked = _language(request)
    switch = "en" if language == "zh" else "zh"
    query = {k: v for k, v in request.query_params.items() if k != "lang"}
    t = translator(language)
    response = templates.TemplateResponse(request, template, {
        "t": t, "html_lang": HTML_LANG[language], "amount": amount, "log_format": _queries(request).log_format(),
        "grams": lambda amount_g: grams_html(t, amount_g), "exact_grams": lambda amount_g: exact_grams_html(t, amount_g),
        "cell": lambda column, item: cell_html(t, column, item), "serials": serials_html, "free": free_text_html,
        "switch_url": f"{_path(request)}?{urlencode({**query, 'lang': switch})}", **context}, status_code=status_code,
        headers=headers)
    if asked:
        response.set_cookie(LANGUAGE_COOKIE, language, max_age=LANGUAGE_COOKIE_MAX_AGE_S, samesite="lax")
    response.headers.update(PAGE_SECURITY_HEADERS)
    response.headers["vary"] = "Cookie"  # the language cookie chooses the text: a cache keeps one copy per language
    return response


# Every HTML page's: scripts, styles and whatever they fetch from this server alone (no inline
# script or style: the JSON a page hands its script is data, not run); never framed (clickjacking
# a citizen's /me); no Referer, which would carry a page's filters or a receipt's seq elsewhere.
PAGE_SECURITY_HEADERS = {
    "content-security-policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                               "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
    "x-frame-options": "DENY", "referrer-policy": "no-referrer"}  # nosniff: on every answer (api/app.py)


def _error_page(request: Request, error: PageError) -> HTMLResponse:
    t = translator(_language(request)[0])
    # the refusal of a citizen's form (/me) is about their input: not cached either
    return _render(request, "error.html", error.status, NOT_CACHED if request.method == "POST" else None,
                   status=error.status, reason=error.reason.said(t))


def _queries(request: Request) -> Queries:
    return request.app.state.queries


# Parameters that sharing a link adds, not the reader: WeChat, whose web view the mini program
# opens pages in, appends ?from=singlemessage&isappinstalled=0 to a link shared in a chat. Refusing
# them would break every shared register page, so they alone are passed over, and only with
# WeChat's values (a `from=2026-01-01` meant as a date is still refused, naming `since`).
SHARING_PARAMS = {"from": ("singlemessage", "groupmessage", "timeline"), "isappinstalled": ("0", "1")}
# Campaign and click tags that other sites and newsletters add to a link (utm_source, fbclid, ...):
# no filter is named like them, so they are passed over whatever their value (trial 13: a shared
# link /issuances?utm_source=wechat was refused).
TRACKING_PARAMS = ("fbclid", "gclid", "msclkid", "spm")
TRACKING_PREFIX = "utm_"


def _added_by_sharing(name: str, value: str) -> bool:
    return value in SHARING_PARAMS.get(name, ()) or name in TRACKING_PARAMS or name.startswith(TRACKING_PREFIX)
PAGE_PARAMS = ("lang", "format")  # every register page's own, beside its filters


def _filters(request: Request, model: type[Cursor]) -> Cursor:
    """The query's filters, validated as the API validates them; an empty field is no filter. An
    unknown parameter is refused, not ignored: `/issuances?methodology=X` showing every issuance
    would read as X's (the filter is methodology_id, as in the API)."""
    _refuse_unknown(request, (*model.model_fields, *PAGE_PARAMS))
    if request.query_params.get("format", "") not in ("", "csv"):
        _refused("format", "value_error")
    given = {k: v for k, v in request.query_params.items() if v != "" and k not in PAGE_PARAMS}
    for name in INTEGER_FILTERS.intersection(given):
        # as a path's numbers are (`_digits`): `+2026` or `02026` is no year a reader wrote as such
        if not _INTEGER.fullmatch(given[name]):
            _refused(name, "digits")
    try:
        return model.model_validate(given)
    except ValidationError as exc:
        error = exc.errors()[0]
        _refused(str(error["loc"][0]) if error["loc"] else "", error["type"])


def _refuse_unknown(request: Request, known: tuple[str, ...]) -> None:
    """Refuses a parameter the page does not take, one given twice (which value would the page
    show? it used to take the last without a word), and a language it does not speak."""
    seen: set[str] = set()
    for name, value in request.query_params.multi_items():
        if name not in known and not _added_by_sharing(name, value):
            raise PageError(422, said("reason.unknown_param", name=name[:MAX_SHOWN_CHARS], known=", ".join(known),
                                      guess=_guess(name, known)))
        if name in seen:
            raise PageError(422, said("reason.repeated", name=name[:MAX_SHOWN_CHARS]))
        seen.add(name)
    if request.query_params.get("lang") not in (None, "", *LANGUAGES):
        _refused("lang", "value_error")


MAX_SHOWN_CHARS = 80  # of a reader's input quoted back in a reason (escaped, as every text)


def _guess(name: str, known: tuple[str, ...]) -> Message:
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.5) or [k for k in known if name and k.startswith(name)]
    return said("reason.did_you_mean", name=close[0]) if close else said("reason.no_guess")


# pydantic's error types, as the reason a reader sees (api.page_text's reason.*)
_PROBLEMS = {"string_pattern_mismatch": "reason.pattern", "string_too_long": "reason.pattern",
             "int_parsing": "reason.integer", "int_from_float": "reason.integer", "greater_than_equal": "reason.range",
             "less_than_equal": "reason.range", "date_parsing": "reason.date", "date_from_datetime_parsing": "reason.date",
             "date_from_datetime_inexact": "reason.date", "bool_parsing": "reason.bool", "value_error": "reason.choice",
             "digits": "reason.digits"}
INTEGER_FILTERS = frozenset({"after", "vintage", "compliance_year"})  # the registers' integer filters
_INTEGER = re.compile(r"-?(0|[1-9][0-9]*)")  # `after` may be -1, the API's "from the start"


def _refused(field: str, error_type: str) -> NoReturn:
    """A 422 naming the field by its label (filter.<field>) and the problem in the page's language."""
    label = said(f"filter.{field}") if f"filter.{field}" in MESSAGES else field[:MAX_SHOWN_CHARS]
    raise PageError(422, said("reason.field", field=label, problem=said(_PROBLEMS.get(error_type, "reason.invalid"))))


def _valid(adapter: TypeAdapter[Any], value: str, what: str) -> Any:
    """`value` as the adapter takes it; else a 422 naming it by the message `what` (its label)."""
    try:
        return adapter.validate_python(value)
    except ValidationError as exc:
        raise PageError(422, said("reason.field", field=said(what),
                                  problem=said(_PROBLEMS.get(exc.errors()[0]["type"], "reason.invalid")))) from None


_IDENT: TypeAdapter[str] = TypeAdapter(Ident)
_NATURAL: TypeAdapter[int] = TypeAdapter(Annotated[int, Field(ge=0, le=MAX_SAFE_INT)])  # a serial, a seq
_DIGITS = re.compile(r"0|[1-9][0-9]*")


def _natural(text: str, what: str) -> int:
    """A serial or a seq in a path, written as the pages write it (one page, one URL): digits, no
    sign, point nor leading zero; /serials?n= takes it however it is typed and lands here."""
    if not _DIGITS.fullmatch(text):
        raise PageError(422, said("reason.field", field=said(what), problem=said("reason.digits")))
    return _valid(_NATURAL, text, what)


def _as_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, indent=2, sort_keys=True)


def _found(value: Any, reason: Message) -> Any:
    if value is None:
        raise PageError(404, reason)
    return value


def _with(request: Request, **changes: Any) -> str:
    """This page's URL with some query parameters changed (None drops one)."""
    query = {**request.query_params, **changes}
    query = {k: v for k, v in query.items() if v is not None and v != "" and k != "lang"}
    return f"{_path(request)}?{urlencode(query)}" if query else _path(request)


def _path(request: Request) -> str:
    """This page's path as a link: the decoded path the routes saw, percent-encoded again (a 404
    page's may hold anything: `?`, `#`, quotes, a %-escape; request.url.path re-encodes some of
    them only), so that the link leads back to the same path; a path starting with `//` would be a
    link to another host, so its second slash is encoded (the server decodes it back)."""
    path = quote(request.scope["path"], safe="/")
    return "/%2F" + path[2:] if path.startswith("//") else path


# -- pages -----------------------------------------------------------------------------------------

@router.get("/", response_class=HTMLResponse)
def home(request: Request) -> HTMLResponse:
    queries = _queries(request)
    totals = queries.totals()
    note = request.app.state.registry.latest_checkpoint()
    return _render(request, "home.html", totals=totals, purposes=PURPOSES,
                   checkpoint=None if note is None else _checkpoint_view(queries, note),
                   chart=month_chart(totals.by_month[-CHART_MONTHS:]))


def _register_page(request: Request, name: str) -> Response:
    register = REGISTERS[name]
    queries = _queries(request)
    log_format = queries.log_format()
    if log_format not in register.formats:
        raise PageError(404, said("reason.format_2_only"))
    filters = _filters(request, register.filters)
    wanted = filters.model_dump(exclude={"after", "since", "until"}, exclude_none=True)
    window = _window(queries, filters)
    columns = register.columns_in(log_format)
    if request.query_params.get("format") == "csv":
        return _csv(register, columns, queries, wanted, window, filters.after)
    page = _read(register, queries, wanted, window, filters.after, PAGE_ITEMS)
    values = {field.name: request.query_params.get(field.name, "") for field in register.fields}
    return _render(request, "register.html", register=register, columns=columns, page=page, values=values,
                   next_url=None if page.next_after is None else _with(request, after=page.next_after, format=None),
                   first_url=_with(request, after=None, format=None) if filters.after != -1 else None,
                   csv_url=_with(request, format="csv"), max_csv_rows=MAX_CSV_ROWS)


def _window(queries: Queries, filters: Cursor) -> SeqWindow:
    after = -1 if filters.since is None else queries.first_seq_at(filters.since.isoformat()) - 1
    if filters.until is None or filters.until == date.max:
        return SeqWindow(after, None)
    return SeqWindow(after, queries.first_seq_at((filters.until + timedelta(days=1)).isoformat()))


def _read(register: Register, queries: Queries, wanted: dict[str, Any], window: SeqWindow, after: int,
          limit: int) -> Page:
    """A page of the register from `after`, within the dates' seqs."""
    page = register.read(queries, wanted, max(after, window.after), limit)
    if window.stop is None:
        return page
    items = [item for item in page.items if item["seq"] < window.stop]
    ended = len(items) < len(page.items) or page.next_after is None or page.next_after >= window.stop - 1
    return Page(items, None if ended else page.next_after)


def _register_route(name: str) -> Callable[[Request], Response]:
    def show(request: Request) -> Response:
        return _register_page(request, name)
    show.__name__ = name
    return show


for _name in REGISTERS:  # /issuances, /retirements, /surrenders, /claims, /methodologies
    router.add_api_route(f"/{_name}", _register_route(_name), methods=["GET"], response_class=HTMLResponse)


@router.get("/claims/{claim_id}", response_class=HTMLResponse)
def claim(request: Request, claim_id: str) -> HTMLResponse:
    claim_id = _valid(_IDENT, claim_id, "col.claim_id")
    queries = _queries(request)
    found = _found(queries.claim(claim_id), said("reason.no_claim", id=claim_id))
    return _render(request, "claim.html", claim=found, retirement_columns=REGISTERS["retirements"].columns,
                   retirements=queries.retirements_by_id(found["retirements"]))


@router.get("/accounts/{account_id}", response_class=HTMLResponse)
def account(request: Request, account_id: str) -> HTMLResponse:
    account_id = _valid(_IDENT, account_id, "col.account")
    queries = _queries(request)
    found = _found(queries.account(account_id), said("reason.no_account", id=account_id))
    log_format = queries.log_format()
    lists = [AccountList(register, field, register.columns_in(log_format),
                         register.read(queries, {field: account_id}, -1, ACCOUNT_ROWS))
             for register, field in ((REGISTERS[name], field) for name, field in ACCOUNT_LISTS)
             if log_format in register.formats]
    return _render(request, "account.html", account=found, lists=lists,
                   by_issuance=queries.account_by_issuance(account_id)["issuances"])


class AccountList(NamedTuple):
    """The first rows of a register that name the account, on its page."""
    register: Register
    filter: str  # the register's filter that names the account
    columns: tuple[Column, ...]
    page: Page


ACCOUNT_LISTS = (("issuances", "account"), ("retirements", "account"), ("claims", "claimant"),
                 ("surrenders", "entity"), ("holds", "account"))


@router.get("/methodologies/{methodology_id}", response_class=HTMLResponse)
def methodology(request: Request, methodology_id: str) -> HTMLResponse:
    methodology_id = _valid(_IDENT, methodology_id, "col.methodology_id")
    queries = _queries(request)
    found = _found(queries.methodology(methodology_id), said("reason.no_methodology", id=methodology_id))
    reviews = {}
    if queries.log_format() == 2:
        reviews = {version["version"]: queries.reviews(ReviewTarget("methodology", methodology_id, version["version"]),
                                                       limit=MAX_SHOWN_REVIEWS) for version in found["versions"]}
    signers = {item["signer"] for answer in reviews.values() if answer for item in answer["items"]}
    return _render(request, "methodology.html", methodology=quantification.methodology_in_force(found),
                   as_json=_as_json, reviews=reviews, history=queries.eligibility_history(methodology_id),
                   signer_labels={key_id: _key_label(queries, key_id) for key_id in signers})


MAX_SHOWN_REVIEWS = 50  # of one methodology version, on its page; the API (/v1/reviews) pages through the rest


def _key_label(queries: Queries, key_id: str) -> str:
    key = queries.registered_key(key_id)
    return "" if key is None else key.label


@router.get("/serials", response_class=HTMLResponse)
def serial_form(request: Request) -> Response:
    """The lookup form; its GET (?n=) lands on /serials/{n}."""
    asked = request.query_params.get("n", "").strip()
    if asked:
        return RedirectResponse(f"/serials/{_valid(_NATURAL, asked, 'serial.number')}", status_code=303)
    return _render(request, "serial.html", holding=None, retirement=None)


@router.get("/serials/{serial}", response_class=HTMLResponse)
def serial(request: Request, serial: str) -> HTMLResponse:
    number = _natural(serial, "serial.number")
    queries = _queries(request)
    holding = _found(queries.serial(number), said("reason.not_issued", serial=number))
    retirement = queries.retirements_by_id([holding.event_ref])[0] if holding.state == "retired" else None
    return _render(request, "serial.html", holding=holding, retirement=retirement)


# -- check it yourself: receipts, a pasted receipt, the remembered checkpoint ----------------------

CHECK_MESSAGE_PREFIXES = ("check.", "trust.", "consistency.", "verify.")


class ReceiptView(NamedTuple):
    """What /receipts/{seq} shows without JavaScript; `receipt` is also handed to the page's check."""
    receipt: dict[str, Any]
    leaf: dict[str, Any]  # the leaf, parsed
    leaf_hash_hex: str
    checkpoint: CheckpointView


@router.get("/receipts/{seq}", response_class=HTMLResponse)
async def receipt(request: Request, seq: str) -> HTMLResponse:
    """An event's receipt (docs/receipt.md) as /v1/receipts/{seq} serves it, checked by the browser."""
    number = _natural(seq, "col.seq")
    state = request.app.state
    if number >= state.sequencer.committed_size:
        raise PageError(404, said("reason.no_event", seq=number, size=state.sequencer.committed_size))
    note = await checkpoint_covering(state.registry, state.sequencer, number)
    found = await asyncio.to_thread(build_receipt, state.registry, state.queries, number, note)
    leaf_bytes = found["leaf"].encode("utf-8")
    view = ReceiptView(found, json.loads(leaf_bytes), merkle.leaf_hash(leaf_bytes).hex(),
                       _checkpoint_view(state.queries, note))
    return _render_check(request, "receipt.html", view=view)


@router.get("/verify", response_class=HTMLResponse)
def verify(request: Request) -> HTMLResponse:
    """A paste box for a receipt obtained elsewhere, and the remembered checkpoint's consistency check."""
    return _render_check(request, "verify.html")


def _render_check(request: Request, template: str, **context: Any) -> HTMLResponse:
    """A page whose script checks in the browser: it gets the served trust file (to pin or compare)
    and its messages in the page's language."""
    t = translator(_language(request)[0])
    messages = {key: t(key) for key in MESSAGES if key.startswith(CHECK_MESSAGE_PREFIXES)}
    return _render(request, template, served_trust=request.app.state.registry.trust(), check_messages=messages,
                   as_json=_as_json, **context)

# -- the citizen's page ----------------------------------------------------------------------------
#
# POST, not GET. A GET form would be bookmarkable, but it would put a person's daily pseudonyms (or
# a record's opening) in the URL, and URLs are what access logs, proxies, browser history and
# Referer headers keep: spec section 7.4 wants no personal trail, and pseudonyms that a log joins
# across days are one. In a POST they travel in the body, which none of those keep; the page still
# needs no JavaScript (the answer is rendered by the server), is never cached (no-store), and a
# wrong opening's refusal is slowed per address like every refused POST (api/limits.py).

MAX_ME_PSEUDONYMS = 31  # daily pseudonyms at one asking: a month
MAX_ME_RECORDS = 200  # records one answer shows, each with its proof and explanation
MAX_ME_FORM_BYTES = 16 << 10  # 31 pseudonyms are 1 KiB; an opening a few hundred bytes
MAX_OPENING_CHARS = 4096
ME_FIELDS = ("pseudonyms", "activity_id", "opening")
PSEUDONYM_SEPARATORS = re.compile(r"[\s,;，；]+")
NOT_CACHED = {"cache-control": "no-store"}


class MeForm(NamedTuple):
    """What the reader entered, as entered (a refused form is shown again, filled in): their daily
    pseudonyms, or one record's id and opening."""
    pseudonyms_text: str
    activity_id: str
    opening: str


class CitizenRecord(NamedTuple):
    """One of the reader's records as /me shows it; `proof` is handed to the browser's check."""
    record: dict[str, Any]
    day: str  # its Beijing date
    batch: dict[str, Any]  # as GET /v1/batches/{id}: the batch's methodology, platform, issuance, reviews
    issuance_seq: int | None
    rejected_by: str | None  # format 2: the review by which a validation body rejected its batch, never issued
    params: dict[str, Any]  # its methodology version's
    formula_g: int | None  # format 2: section 7.2's formula(inputs) before the daily cap
    proof: dict[str, Any]  # {activity_id, record (exact bytes), inclusion, batch_id, batch_seq}


class CitizenView(NamedTuple):
    total_g: int  # earned: rejected batches' grams are not
    issued_g: int
    rejected_g: int
    records: list[CitizenRecord]
    receipts: dict[int, dict[str, Any]]  # each batch event's receipt, by seq
    opened: dict[str, Any] | None  # the opening's fields, when a record was opened


@router.get("/me", response_class=HTMLResponse)
def me_form(request: Request) -> HTMLResponse:
    """The form alone: nothing is listed by person without the person's input."""
    return _render(request, "me.html", form=MeForm("", "", ""), view=None, headers=NOT_CACHED,
                   max_pseudonyms=MAX_ME_PSEUDONYMS)


@router.post("/me", response_class=HTMLResponse)
async def me(request: Request) -> HTMLResponse:
    form = _me_form(await _form_body(request))
    try:
        view = await _me_view(request, form)
    except PageError as error:  # about what was entered: the form again, filled in, the reason above it
        return _render(request, "me.html", error.status, NOT_CACHED, form=form, view=None,
                       refusal=error.reason.said(translator(_language(request)[0])), max_pseudonyms=MAX_ME_PSEUDONYMS)
    return _render_check(request, "me.html", form=form, view=view, headers=NOT_CACHED,
                         max_pseudonyms=MAX_ME_PSEUDONYMS)


async def _me_view(request: Request, form: MeForm) -> CitizenView:
    state = request.app.state
    log_format = state.queries.log_format()
    pseudonyms = _pseudonyms(form.pseudonyms_text)
    if len(form.opening) > MAX_OPENING_CHARS:
        raise PageError(422, said("reason.field", field=said("me.opening"), problem=said("reason.too_long")))
    if pseudonyms:
        view = await asyncio.to_thread(_pseudonyms_view, state.queries, log_format, pseudonyms)
    elif form.activity_id:
        view = await asyncio.to_thread(_opened_view, state.queries, log_format, form.activity_id, form.opening)
    else:
        raise PageError(422, said("reason.me_empty"))
    if view.records:
        note = await checkpoint_covering(state.registry, state.sequencer, max(view.receipts))
        receipts = {seq: await asyncio.to_thread(build_receipt, state.registry, state.queries, seq, note)
                    for seq in view.receipts}
        view = view._replace(receipts=receipts)
    return view


async def _form_body(request: Request) -> list[tuple[str, str]]:
    """The form's fields (application/x-www-form-urlencoded), read with a size limit."""
    try:
        data = await read_body(request.scope, request.receive, MAX_ME_FORM_BYTES)
    except ApiError as refused:  # too large; or not read whole in time, or its place taken (408)
        if refused.status == 413:
            raise PageError(413, said("reason.form_too_large", kib=MAX_ME_FORM_BYTES >> 10)) from None
        raise PageError(refused.status, said("reason.form_not_read", message=refused.message)) from None
    try:
        return parse_qsl(data.decode("latin-1"), keep_blank_values=True, max_num_fields=len(ME_FIELDS),
                         encoding="utf-8", errors="strict")
    except (ValueError, UnicodeDecodeError):
        raise PageError(422, said("reason.form")) from None


def _me_form(fields: list[tuple[str, str]]) -> MeForm:
    given: dict[str, str] = {}
    for name, value in fields:
        if name not in ME_FIELDS or name in given:
            raise PageError(422, said("reason.form"))
        given[name] = value.lstrip("\ufeff").strip()  # the byte-order mark Notepad starts a file with
    return MeForm(given.get("pseudonyms", ""), given.get("activity_id", ""), given.get("opening", ""))


def _pseudonyms(text: str) -> list[str]:
    """The pseudonyms entered, each once. A date before one is passed over: `puhui pseudonyms`,
    the identity hub's own output, prints a line DATE PSEUDONYM a day, pasted here as it is."""
    tokens = [token for token in PSEUDONYM_SEPARATORS.split(text) if token]
    dated = [i for i, token in enumerate(tokens)
             if DATE_TOKEN.fullmatch(token) and i + 1 < len(tokens) and not DATE_TOKEN.fullmatch(tokens[i + 1])]
    for i in dated:  # a date the hub never prints (2026-13-45) says the lines are not the hub's
        _valid(_DATE, tokens[i], "me.pseudonyms")
    passed_over = set(dated)
    pseudonyms = list(dict.fromkeys(token for i, token in enumerate(tokens) if i not in passed_over))
    if len(pseudonyms) > MAX_ME_PSEUDONYMS:
        raise PageError(422, said("reason.too_many_pseudonyms", count=len(pseudonyms), limit=MAX_ME_PSEUDONYMS))
    return pseudonyms


DATE_TOKEN = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_DATE: TypeAdapter[date] = TypeAdapter(date)


def _pseudonyms_view(queries: Queries, log_format: int, pseudonyms: list[str]) -> CitizenView:
    if log_format == 2:  # hexadecimal digits, however the app shows them
        pseudonyms = list(dict.fromkeys(p.lower() for p in pseudonyms))
    for pseudonym in pseudonyms:
        if not (PSEUDONYM.fullmatch(pseudonym) if log_format == 2 else IDENTIFIER.fullmatch(pseudonym)):
            raise PageError(422, said("reason.field", field=said("me.pseudonyms"),
                                      problem=said(f"reason.pseudonym_{log_format}")))
    return _citizen_view(queries, log_format, pseudonyms)


def _opened_view(queries: Queries, log_format: int, activity_id: str, opening_text: str) -> CitizenView:
    """One record, shown to whoever holds its opening (spec section 7.4: the platform gives it to
    the citizen the record belongs to), with what the opening says beside it."""
    activity_id = _valid(_IDENT, activity_id, "me.activity_id")
    if log_format != 2:
        raise PageError(422, said("reason.no_openings"))
    try:
        opening = parse_strict(opening_text)
        opening_bytes = jcs(opening)  # what private_sha256 hashes (spec 7.4), however the app spaced it
    except Rejected:
        raise PageError(422, said("reason.field", field=said("me.opening"), problem=said("reason.not_json"))) from None
    found = _found(queries.activity_proof(activity_id), said("reason.no_record", id=activity_id))
    record = json.loads(found["record"])
    if opening_problem(record, opening_bytes) is not None:
        raise PageError(422, said("reason.opening_wrong", id=activity_id))
    view = _citizen_view(queries, log_format, [record["subject"]], activity_id)
    return view._replace(opened=opening["fields"])


def _citizen_view(queries: Queries, log_format: int, subjects: list[str], only: str | None = None) -> CitizenView:
    """The subjects' records as their personal account gives them (service.accounts, the reads
    behind GET /v1/pseudonyms/account, without reading whole batches: one statement for all the
    subjects), or the one record `only`; each with its methodology version and its proof as GET
    /v1/activities/{id} serves it."""
    rows: list[dict[str, Any]] = []
    places: dict[str, dict[str, Any]] = {}  # by batch_id: its seq and issuance
    total_g = issued_g = rejected_g = 0
    try:
        for report in _accounts(queries, log_format, subjects):
            rows += report.tables["records"].as_json()
            places.update((batch["batch_id"], batch) for batch in report.tables["batches"].as_json())
            total_g, issued_g = total_g + report.data["total_g"], issued_g + report.data["issued_g"]
            rejected_g += report.data["rejected_g"]
    except TooManyRecords:
        raise PageError(422, said("reason.too_many_records", limit=MAX_ME_RECORDS)) from None
    rows = [row for row in rows if only is None or row["activity_id"] == only]
    batches = {batch_id: queries.batch(batch_id) for batch_id in {row["batch_id"] for row in rows}}
    versions: dict[tuple[str, int], dict[str, Any]] = {}
    records = []
    for row in rows:
        proof = queries.activity_proof(row["activity_id"])
        batch = batches[row["batch_id"]]
        record = json.loads(proof["record"])
        key = (batch["methodology_id"], batch["methodology_version"])
        if key not in versions:
            versions[key] = next(v["params"] for v in queries.methodology(key[0])["versions"] if v["version"] == key[1])
        formula_g = compile_definition(*key, versions[key]).formula_g(record["inputs"]) if log_format == 2 else None
        place = places[row["batch_id"]]
        records.append(CitizenRecord(record, row["day"], batch, place["issuance_seq"], place["rejected_by"],
                                     versions[key], formula_g,
                                     {k: proof[k] for k in ("activity_id", "record", "inclusion", "batch_id",
                                                            "batch_seq")}))
    records.sort(key=lambda r: (r.day, r.record["activity_id"]))
    if only is not None:
        rejected_g = sum(r.record["reduction_g"] for r in records if r.rejected_by is not None)
        total_g = sum(r.record["reduction_g"] for r in records) - rejected_g
        issued_g = sum(r.record["reduction_g"] for r in records if r.issuance_seq is not None)
    return CitizenView(total_g, issued_g, rejected_g, records, {r.proof["batch_seq"]: {} for r in records}, None)


def _accounts(queries: Queries, log_format: int, subjects: list[str]) -> Iterator[Report]:
    """The personal accounts of the subjects, at most MAX_ME_RECORDS records in all: in format 2
    one account of the daily pseudonyms together (one read of the activities index, whatever
    their number), in format 1 one for each person id (a reader enters one or a few)."""
    if log_format == 2:
        yield pseudonyms_account(queries, "the reader", subjects, max_records=MAX_ME_RECORDS, proofs=False)[0]
        return
    shown = 0
    for subject in subjects:
        report = subject_account(queries, subject, max_records=MAX_ME_RECORDS - shown)
        shown += len(report.tables["records"].rows)
        yield report


# -- the CSV, the checkpoint, the chart ------------------------------------------------------------

def _csv(register: Register, columns: tuple[Column, ...], queries: Queries, wanted: dict[str, Any],
         window: SeqWindow, after: int) -> Response:
    """Every row of the filtered register from `after` on, up to MAX_CSV_ROWS; when more remain,
    the header Puhui-Next-After names the cursor to go on from (as the API's next_after)."""
    out = io.StringIO()
    out.write("\ufeff")  # a BOM, so that spreadsheet programs read the Chinese text as UTF-8
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([column.name for column in columns])
    rows, cursor = 0, after
    while rows < MAX_CSV_ROWS:
        page = _read(register, queries, wanted, window, cursor, min(MAX_PAGE_ITEMS, MAX_CSV_ROWS - rows))
        writer.writerows([_spreadsheet_safe(column.value(item)) for column in columns] for item in page.items)
        rows += len(page.items)
        if page.next_after is None:
            cursor = None
            break
        cursor = page.next_after
    headers = {"content-disposition": f'attachment; filename="{register.name}.csv"'}
    if cursor is not None:
        headers["puhui-next-after"] = str(cursor)
    return Response(out.getvalue(), media_type="text/csv; charset=utf-8", headers=headers)


def _spreadsheet_safe(value: Any) -> Any:
    """A text that a spreadsheet would run as a formula (a beneficiary "=HYPERLINK(...)") gets a
    leading apostrophe (OWASP's advice on CSV injection): the one way a CSV cell differs from the API."""
    return f"'{value}" if isinstance(value, str) and value[:1] in _FORMULA_STARTS else value


_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


class WitnessView(NamedTuple):
    name: str
    time: str | None  # the cosignature's timestamp (UTC), when it carries one


class CheckpointView(NamedTuple):
    size: int
    root_hex: str
    last_event_time: str | None
    witnesses: list[WitnessView]


def _checkpoint_view(queries: Queries, note: str) -> CheckpointView:
    """The latest checkpoint as the home page shows it: the note itself has no time, so the time
    shown is its last event's; witnesses are the signatures other than the log's."""
    checkpoint = parse_checkpoint(note)
    witnesses = [WitnessView(s.name, _cosigned_at(s.signature)) for s in checkpoint.signatures
                 if s.name != checkpoint.origin]
    return CheckpointView(checkpoint.size, checkpoint.root.hex(), queries.event_time(checkpoint.size - 1), witnesses)


def _cosigned_at(signature: bytes) -> str | None:
    """A tlog-cosignature's payload is an 8-byte timestamp then the 64-byte signature."""
    if len(signature) != 72:
        return None
    seconds = int.from_bytes(signature[:8], "big")
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")


class Bar(NamedTuple):
    x: float
    y: float
    height: float
    amount_g: int


class MonthBars(NamedTuple):
    month: str
    label_x: float
    issued: Bar
    retired: Bar


class Chart(NamedTuple):
    width: int
    height: int
    top: float  # where the bars of max_g reach
    baseline: float
    bar_width: float
    max_g: int
    months: list[MonthBars]


CHART_WIDTH, CHART_HEIGHT, CHART_MARGIN, CHART_MAX_BAR_WIDTH = 640, 240, 24, 48


def month_chart(flows: list[MonthFlow]) -> Chart:
    """Bars of grams issued and retired by month side by side, scaled to the largest, for an inline SVG."""
    max_g = max([max(f.issued_g, f.retired_g) for f in flows] + [1])
    slot = (CHART_WIDTH - 2 * CHART_MARGIN) / max(len(flows), 1)
    bar_width = min(slot * 0.4, CHART_MAX_BAR_WIDTH)
    baseline = CHART_HEIGHT - CHART_MARGIN
    usable = baseline - CHART_MARGIN

    def bar(x: float, amount_g: int) -> Bar:
        height = usable * amount_g / max_g
        return Bar(round(x, 1), round(baseline - height, 1), round(height, 1), amount_g)
    months = []
    for i, flow in enumerate(flows):
        middle = CHART_MARGIN + slot * (i + 0.5)
        months.append(MonthBars(flow.month, round(middle, 1), bar(middle - bar_width, flow.issued_g),
                                bar(middle, flow.retired_g)))
    return Chart(CHART_WIDTH, CHART_HEIGHT, CHART_MARGIN, baseline, round(bar_width, 1), max_g, months)


def _is_page_path(app: FastAPI, path: str) -> bool:
    return path != "/v1" and not path.startswith("/v1/") and path != app.openapi_url


def _method_not_allowed(request: Request) -> Response:
    """The HTML 405 page, its Allow header every method of every route at the path (/me: GET,
    HEAD and POST; the router's own names only the first route's)."""
    allowed = sorted({method for route in router.routes if isinstance(route, APIRoute)
                      and route.path_regex.fullmatch(request.url.path) for method in route.methods}
                     or {"GET", "HEAD"})  # none: a /static file, which StaticFiles serves to those alone
    response = _error_page(request, PageError(405, said("reason.method", method=request.method[:MAX_SHOWN_CHARS],
                                                       allowed=", ".join(allowed))))
    response.headers["allow"] = ", ".join(allowed)
    return response


def install(app: FastAPI) -> None:
    """The pages at `/` and their stylesheet at /static; a PageError answers its HTML page, and so
    does a path outside /v1 that no route takes (an encoded slash, /accounts/a%2Fb, is decoded
    before routing, so it lands here rather than on the account page)."""
    for route in router.routes:  # HEAD wherever GET (a link checker's or a proxy's probe); the server sends no body
        if isinstance(route, APIRoute) and "GET" in route.methods:
            route.methods.add("HEAD")
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    async def page_error(request: Request, error: Exception) -> Response:
        assert isinstance(error, PageError)
        return _error_page(request, error)
    app.add_exception_handler(PageError, page_error)
    api_http_error = app.exception_handlers[StarletteHTTPException]
    api_storage_error = app.exception_handlers[StorageError]

    async def storage_error(request: Request, error: Exception) -> Response:
        if _is_page_path(app, request.url.path):
            return _error_page(request, PageError(503, said("reason.stored_data")))
        return await api_storage_error(request, error)
    app.add_exception_handler(StorageError, storage_error)

    async def http_error(request: Request, error: Exception) -> Response:
        assert isinstance(error, StarletteHTTPException)
        path = request.url.path
        if error.status_code == 404 and path != "/v1" and not path.startswith("/v1/"):
            return _error_page(request, PageError(404, said("reason.no_page")))
        if error.status_code == 405 and _is_page_path(app, path):
            return _method_not_allowed(request)
        return await api_http_error(request, error)
    app.add_exception_handler(StarletteHTTPException, http_error)
