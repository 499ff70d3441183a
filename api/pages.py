"""The public pages (信息披露): the register as server-rendered HTML at `/`, beside the API at /v1.

Every page reads the committed database through ledger.queries, as the /v1 routes do, so each
number on a page is the API's for the same query. Pages need no JavaScript; they speak Simplified
Chinese by default and English on `?lang=en`, remembered in a cookie (api.page_text holds every
string in both). A register page is one Register: its filters (validated as the API validates
them), its columns (the table's and the CSV's), and the query that reads it. Unknown ids answer a
404 page, bad filters a 422 page. None of these routes is in the OpenAPI document.

Reading needs no JavaScript either on /receipts/{seq} and /verify; there a script (api/static/
check.js, docs/receipt.md "In the browser") checks the receipt itself, so that the reader need not
take this server's word for it.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import operator
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Annotated, Any, Callable, NamedTuple
from urllib.parse import urlencode

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from markupsafe import Markup, escape
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from api import quantification
from api.models import IDENT, MAX_SAFE_INT
from api.bridge import checkpoint_covering
from api.page_text import DEFAULT_LANGUAGE, HTML_LANG, LANGUAGES, MESSAGES, translator
from ledger import merkle
from ledger.note import parse_checkpoint
from ledger.queries import MAX_PAGE_ITEMS, Page, Queries
from ledger.receipts import build_receipt
from ledger.register_totals import MonthFlow
from ledger.schema import PURPOSES, SECTORS
from ledger.units import tonnes

HERE = Path(__file__).resolve().parent
PAGE_ITEMS = 50
MAX_CSV_ROWS = 10_000  # rows of one CSV download; past them the file names the cursor to go on from
CHART_MONTHS = 24
ACCOUNT_ROWS = 10  # rows of each register on an account's page; the register has the rest
LANGUAGE_COOKIE = "puhui_lang"
LANGUAGE_COOKIE_MAX_AGE_S = 365 * 24 * 3600

templates = Jinja2Templates(directory=HERE / "templates")
router = APIRouter(include_in_schema=False)

Ident = Annotated[str, Field(pattern=IDENT)]
Year = Annotated[int, Field(ge=1900, le=9999)]
Region = Annotated[str, Field(pattern=r"^[0-9]{6}$")]


def _one_of(values: tuple[str, ...]) -> Callable[[str], str]:
    def check(value: str) -> str:
        if value not in values:
            raise ValueError(f"is not one of {', '.join(values)}")
        return value
    return check


class PageError(Exception):
    """A page that cannot be shown: 404 (unknown id) or 422 (bad filter or id), with the reason."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
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
    show: str = "text"  # how the page shows it: text, amount, account, claim, methodology, time, label:<prefix>


@dataclass(frozen=True, slots=True)
class Register:
    name: str  # its path and the prefix of its messages
    filters: type[Cursor]
    fields: tuple[FilterField, ...]
    columns: tuple[Column, ...]
    read: Callable[[Queries, dict[str, Any], int, int], Page]  # (queries, filters, after, limit)


def _ranges(ranges: list[list[int]]) -> str:
    return ";".join(f"{start}-{end}" for start, end in ranges)


def _of_sources(field: str) -> Callable[[dict[str, Any]], str]:
    return lambda item: ";".join(sorted({str(source[field]) for source in item["sources"]}))


def _field(name: str, show: str = "text") -> Column:
    """A column showing one field of the item as it is."""
    return Column(name, operator.itemgetter(name), show)


_TIME = _field("time", "time")
_SEQ = _field("seq")

REGISTERS = {r.name: r for r in (
    Register("issuances", IssuanceFilters,
             (FilterField("region"), FilterField("methodology_id"), FilterField("vintage"), FilterField("account"),
              *_DATES),
             (_TIME, _field("issuance_id"), _field("account", "account"), _field("methodology_id", "methodology"),
              _field("vintage"), _field("region"), _field("amount_g", "amount"),
              Column("serials", lambda i: f"{i['start']}-{i['end']}"), _SEQ),
             lambda q, f, after, limit: q.issuances(**f, after=after, limit=limit)),
    Register("retirements", RetirementFilters,
             (FilterField("region"), FilterField("methodology_id"), FilterField("vintage"),
              FilterField("purpose", PURPOSES, "purpose"), FilterField("used", ("true", "false"), "bool"),
              FilterField("account"), *_DATES),
             (_TIME, _field("retirement_id"), _field("account", "account"), _field("purpose", "label:purpose"),
              _field("beneficiary"), _field("amount_g", "amount"), Column("serials", lambda i: _ranges(i["serials"])),
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
              Column("subject", lambda i: i["subject"]["name"]),
              Column("period", lambda i: f"{i['period_start']}/{i['period_end']}"),
              _field("footprint_g", "amount"), _field("retired_g", "amount"),
              Column("retirements", lambda i: ";".join(i["retirements"])), _SEQ),
             lambda q, f, after, limit: q.claims(**f, after=after, limit=limit)),
    Register("methodologies", MethodologyFilters,
             (FilterField("sector", SECTORS, "sector"), FilterField("offset_eligible", ("true", "false"), "bool"),
              *_DATES),
             (_field("methodology_id", "methodology"), _field("title"), _field("sector", "label:sector"),
              _field("version"), Column("offset_eligible", lambda i: str(i["offset_eligible"]).lower(), "label:bool"),
              _TIME, _SEQ),
             lambda q, f, after, limit: _methodologies_in_force(q.methodologies(**f, after=after, limit=limit))),
)}


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
    if show == "time":
        return Markup(f'<time datetime="{escape(value)}">{escape(value[:19].replace("T", " "))}</time>')
    if show.startswith("label:"):
        return escape(t(f"{show.removeprefix('label:')}.{value}"))
    return escape(value)


def _render(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    language, asked = _language(request)
    switch = "en" if language == "zh" else "zh"
    query = {k: v for k, v in request.query_params.items() if k != "lang"}
    t = translator(language)
    response = templates.TemplateResponse(request, template, {
        "t": t, "html_lang": HTML_LANG[language], "amount": amount,
        "grams": lambda amount_g: grams_html(t, amount_g), "cell": lambda column, item: cell_html(t, column, item),
        "switch_url": f"{request.url.path}?{urlencode({**query, 'lang': switch})}", **context}, status_code=status_code)
    if asked:
        response.set_cookie(LANGUAGE_COOKIE, language, max_age=LANGUAGE_COOKIE_MAX_AGE_S, samesite="lax")
    return response


def _error_page(request: Request, error: PageError) -> HTMLResponse:
    return _render(request, "error.html", error.status, status=error.status, reason=error.reason)


def _queries(request: Request) -> Queries:
    return request.app.state.queries


def _filters(request: Request, model: type[Cursor]) -> Cursor:
    """The query's filters, validated as the API validates them; an empty field is no filter."""
    given = {k: v for k, v in request.query_params.items() if v != "" and k not in ("lang", "format")}
    try:
        return model.model_validate(given)
    except ValidationError as exc:
        raise PageError(422, "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
                                       for e in exc.errors()[:5])) from None


def _valid(adapter: TypeAdapter[Any], value: str, what: str) -> Any:
    try:
        return adapter.validate_python(value)
    except ValidationError as exc:
        raise PageError(422, f"{what}: {exc.errors()[0]['msg']}") from None


_IDENT: TypeAdapter[str] = TypeAdapter(Ident)
_NATURAL: TypeAdapter[int] = TypeAdapter(Annotated[int, Field(ge=0, le=MAX_SAFE_INT)])  # a serial, a seq


def _as_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, indent=2, sort_keys=True)


def _found(value: Any, what: str) -> Any:
    if value is None:
        raise PageError(404, what)
    return value


def _with(request: Request, **changes: Any) -> str:
    """This page's URL with some query parameters changed (None drops one)."""
    query = {**request.query_params, **changes}
    query = {k: v for k, v in query.items() if v is not None and v != "" and k != "lang"}
    return f"{request.url.path}?{urlencode(query)}" if query else request.url.path


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
    filters = _filters(request, register.filters)
    queries = _queries(request)
    wanted = filters.model_dump(exclude={"after", "since", "until"}, exclude_none=True)
    window = _window(queries, filters)
    if request.query_params.get("format") == "csv":
        return _csv(register, queries, wanted, window, filters.after)
    page = _read(register, queries, wanted, window, filters.after, PAGE_ITEMS)
    values = {field.name: request.query_params.get(field.name, "") for field in register.fields}
    return _render(request, "register.html", register=register, page=page, values=values,
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
    claim_id = _valid(_IDENT, claim_id, "claim id")
    queries = _queries(request)
    found = _found(queries.claim(claim_id), f"claim {claim_id}")
    return _render(request, "claim.html", claim=found, retirement_columns=REGISTERS["retirements"].columns,
                   retirements=queries.retirements_by_id(found["retirements"]))


@router.get("/accounts/{account_id}", response_class=HTMLResponse)
def account(request: Request, account_id: str) -> HTMLResponse:
    account_id = _valid(_IDENT, account_id, "account id")
    queries = _queries(request)
    found = _found(queries.account(account_id), f"account {account_id}")
    lists = [AccountList(REGISTERS[name], field, REGISTERS[name].read(queries, {field: account_id}, -1, ACCOUNT_ROWS))
             for name, field in ACCOUNT_LISTS]
    return _render(request, "account.html", account=found, lists=lists,
                   by_issuance=queries.account_by_issuance(account_id)["issuances"])


class AccountList(NamedTuple):
    """The first rows of a register that name the account, on its page."""
    register: Register
    filter: str  # the register's filter that names the account
    page: Page


ACCOUNT_LISTS = (("issuances", "account"), ("retirements", "account"), ("claims", "claimant"),
                 ("surrenders", "entity"))


@router.get("/methodologies/{methodology_id}", response_class=HTMLResponse)
def methodology(request: Request, methodology_id: str) -> HTMLResponse:
    methodology_id = _valid(_IDENT, methodology_id, "methodology id")
    found = _found(_queries(request).methodology(methodology_id), f"methodology {methodology_id}")
    return _render(request, "methodology.html", methodology=quantification.methodology_in_force(found),
                   as_json=_as_json)


@router.get("/serials", response_class=HTMLResponse)
def serial_form(request: Request) -> Response:
    """The lookup form; its GET (?n=) lands on /serials/{n}."""
    asked = request.query_params.get("n", "").strip()
    if asked:
        return RedirectResponse(f"/serials/{_valid(_NATURAL, asked, 'serial')}", status_code=303)
    return _render(request, "serial.html", holding=None, retirement=None)


@router.get("/serials/{serial}", response_class=HTMLResponse)
def serial(request: Request, serial: str) -> HTMLResponse:
    number = _valid(_NATURAL, serial, "serial")
    queries = _queries(request)
    holding = _found(queries.serial(number), f"serial {number} (not issued)")
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
    number = _valid(_NATURAL, seq, "seq")
    state = request.app.state
    if number >= state.sequencer.committed_size:
        raise PageError(404, f"event {number} (the log holds {state.sequencer.committed_size} events)")
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

# -- the CSV, the checkpoint, the chart ------------------------------------------------------------

def _csv(register: Register, queries: Queries, wanted: dict[str, Any], window: SeqWindow, after: int) -> Response:
    """Every row of the filtered register from `after` on, up to MAX_CSV_ROWS; when more remain,
    the header Puhui-Next-After names the cursor to go on from (as the API's next_after)."""
    out = io.StringIO()
    out.write("\ufeff")  # a BOM, so that spreadsheet programs read the Chinese text as UTF-8
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([column.name for column in register.columns])
    rows, cursor = 0, after
    while rows < MAX_CSV_ROWS:
        page = _read(register, queries, wanted, window, cursor, min(MAX_PAGE_ITEMS, MAX_CSV_ROWS - rows))
        writer.writerows([_spreadsheet_safe(column.value(item)) for column in register.columns] for item in page.items)
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


def install(app: FastAPI) -> None:
    """The pages at `/` and their stylesheet at /static; a PageError answers its HTML page."""
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    async def page_error(request: Request, error: Exception) -> Response:
        assert isinstance(error, PageError)
        return _error_page(request, error)
    app.add_exception_handler(PageError, page_error)
