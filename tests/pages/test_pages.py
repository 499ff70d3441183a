"""The public pages (api/pages.py) over the test World in a format-2 log (reviews, holds, daily
pseudonyms), and once over a format-1 log: every page renders in both languages with the API's
numbers; filters, pagination and CSV agree with the API; the citizen's page shows a person's
records only for their input; unknown ids answer a 404 page, bad filters and unknown parameters a
422 page, with reasons in the page's language; hostile strings are escaped."""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import re
import time
import warnings
from html import unescape
from pathlib import Path
from typing import Any, Iterator, NamedTuple
from urllib.parse import unquote

import pytest

warnings.filterwarnings("ignore", message=".*httpx.*starlette.testclient.*")
from starlette.testclient import TestClient  # noqa: E402

from api import pages  # noqa: E402
from api.app import create_app  # noqa: E402
from api.page_text import HTML_LANG, LANGUAGES, MESSAGES  # noqa: E402
from format2_records import metro_record  # noqa: E402
from page_history import CITIZEN, CITIZEN_RIDES, CITIZEN_SALT, ISSUED_RIDES, citizen_opening, citizen_records  # noqa: E402
from ledger.canonical import jcs  # noqa: E402
from quantify.methodology import load_shipped, register_body  # noqa: E402
from world import World  # noqa: E402

HOSTILE = '<script>alert("x")</script>'
FORMULA = '=HYPERLINK("http://attacker.example","click")'
PAGE_PATHS = ["/", "/issuances", "/retirements", "/surrenders", "/claims", "/claims/claim-1", "/accounts/mall-co",
              "/accounts/alice", "/methodologies", "/methodologies/HB-GT-METRO", "/methodologies/HB-ES-NEVCHARGE",
              "/serials", "/serials/2250", "/receipts/0", "/receipts/5", "/verify", "/holds", "/me"]
NAV = {"zh": ("首页", "签发", "碳中和声明"), "en": ("Home", "Issuances", "Neutrality claims")}
EVIDENCE_2025 = "5d1f" * 16
class Site(NamedTuple):
    world: World
    http: TestClient


def serve(world: World) -> Iterator[Site]:
    try:
        with TestClient(create_app(world.registry, checkpoint_interval_s=0.05)) as http:
            deadline = time.monotonic() + 10
            while http.get("/v1/checkpoint").status_code != 200 and time.monotonic() < deadline:
                time.sleep(0.05)
            yield Site(world, http)
    finally:
        world.registry.close()


def pages_history(world: World) -> World:
    """After setup_v2 and history_v2: what else the pages show. A vintage-2025 evidence issuance of
    HB-RS-RECYCLE, a claim, HB-ES-NEVCHARGE with an expert's rejection, HB-GT-METRO's eligibility
    turned off and on again, the citizen's rides, and a hostile account name and beneficiaries."""
    c = world.client
    shipped = load_shipped()
    c.submit(world.admin, "methodology.register", register_body(shipped.get("HB-RS-RECYCLE")))
    c.review(world.validator_2, "rev-e2", "evidence", EVIDENCE_2025)
    c.issue(world.admin, "iss-3", "mall-co", "HB-RS-RECYCLE", 2025, "420200", 5_000, evidence=EVIDENCE_2025)
    c.retire(world.mall, "ret-2025", "mall-co", 1_000, "eco_compensation", "river restoration", issuances=["iss-3"])
    c.claim(world.mall, "claim-1", "mall-co", "event", "Spring fair 2026", "2026-03-01", "2026-03-03", 9_500, ["ret-2"])
    c.submit(world.admin, "methodology.register", register_body(shipped.get("HB-ES-NEVCHARGE")))
    c.review(world.expert, "rev-m3", "methodology", "HB-ES-NEVCHARGE", "rejected", version=1)
    c.set_eligibility(world.admin, "HB-GT-METRO", False, version=1)
    c.set_eligibility(world.admin, "HB-GT-METRO", True, version=1)
    rides = citizen_records()
    world.batch("wh-2026-01-me", rides[:ISSUED_RIDES])
    c.review(world.validator, "rev-b3", "batch", "wh-2026-01-me")
    c.issue(world.admin, "iss-4", "wuhan-platform", "HB-GT-METRO", 2026, "420100",
            sum(r["reduction_g"] for r in rides[:ISSUED_RIDES]), ["wh-2026-01-me"])
    world.batch("wh-2026-01-me-2", rides[ISSUED_RIDES:])
    c.open_account(world.admin, "hostile", "enterprise", HOSTILE, "420100", [world.bob])
    c.retire(world.mall, "ret-hostile", "mall-co", 10, "voluntary", HOSTILE)
    c.retire(world.mall, "ret-formula", "mall-co", 10, "voluntary", FORMULA)
    return world


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    """The format-2 World's history and pages_history, served in process."""
    world = World(f"sqlite:///{tmp_path / 'registry.sqlite3'}", log_format=2).setup_v2().history_v2()
    yield from serve(pages_history(world))


@pytest.fixture
def site_v1(tmp_path: Path) -> Iterator[Site]:
    """A format-1 registry (the World's history): the pages still render it."""
    world = World(f"sqlite:///{tmp_path / 'registry.sqlite3'}").setup().history()
    world.client.submit(world.admin, "methodology.register", register_body(load_shipped().get("HB-ES-NEVCHARGE")))
    yield from serve(world)


@pytest.fixture
def http(site: Site) -> TestClient:
    return site.http


def with_lang(path: str, lang: str) -> str:
    return f"{path}{'&' if '?' in path else '?'}lang={lang}"


def page(http: TestClient, path: str, lang: str = "en") -> str:
    response = http.get(with_lang(path, lang))
    assert response.status_code == 200, (path, response.text[:2000])
    assert response.headers["content-type"].startswith("text/html")
    return response.text


def grams(html: str, element_id: str) -> int:
    match = re.search(rf'id="{re.escape(element_id)}"><span class="amount" data-g="(\d+)"', html)
    assert match, element_id
    return int(match.group(1))


def rows(html: str, table_id: str = "register") -> list[dict[str, str]]:
    """A register table's rows: seq and every cell's text (amounts as their exact grams)."""
    table = re.search(rf'<table class="register" id="{table_id}">(.*?)</table>', html, re.S)
    if table is None:
        return []
    html, found = table.group(1), []
    for seq, body in re.findall(r'<tr data-seq="(\d+)">(.*?)</tr>', html, re.S):
        cells = {"seq": seq}
        for name, cell in re.findall(r'<td data-column="([a-z_]+)">(.*?)</td>', body, re.S):
            amount = re.search(r'data-g="(\d+)"', cell)
            cells[name] = amount.group(1) if amount else re.sub(r"<[^>]+>", "", cell).strip()
        found.append(cells)
    return found


def api_items(http: TestClient, path: str, **params: Any) -> list[dict[str, Any]]:
    """Every item of an API list, page by page."""
    items, after = [], -1
    while after is not None:
        answer = http.get(path, params={**params, "after": after, "limit": 2}).json()
        items += answer["items"]
        after = answer["next_after"]
    return items


# -- every page, both languages ----------------------------------------------------------------------

def test_every_message_has_both_languages():
    for key, texts in MESSAGES.items():
        assert len(texts) == len(LANGUAGES) and all(text.strip() for text in texts), key


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_page_renders_in_both_languages(http, lang):
    html_lang = {"zh": "zh-Hans", "en": "en"}[lang]
    for path in PAGE_PATHS:
        html = page(http, path, lang)
        assert f'<html lang="{html_lang}">' in html, path
        assert all(word in html for word in NAV[lang]), path
        other = NAV["en" if lang == "zh" else "zh"]
        assert not any(f">{word}</a>" in html for word in other[:2]), path  # nav in one language only
        assert not re.search(r'(src|href|action)="(https?:)?//', html), path  # no external asset or link


def test_the_language_is_remembered_in_a_cookie(http):
    assert '<html lang="zh-Hans">' in http.get("/").text  # Chinese by default
    assert '<html lang="en">' in http.get("/?lang=en").text
    assert '<html lang="en">' in http.get("/issuances").text
    assert '<html lang="zh-Hans">' in http.get("/issuances?lang=zh").text
    assert '<html lang="zh-Hans">' in http.get("/").text


def test_the_stylesheet_is_served_by_puhui_itself(http):
    response = http.get("/static/pages.css")
    assert response.status_code == 200 and "max-width: 480px" in response.text
    assert "@import" not in response.text and "url(" not in response.text


def test_pages_are_not_in_the_openapi_document(http):
    paths = http.get("/openapi.json").json()["paths"]
    assert all(path.startswith("/v1/") for path in paths)


# -- the API's numbers ---------------------------------------------------------------------------------

def test_home_shows_the_api_totals_and_checkpoint(http):
    html = page(http, "/")
    totals = http.get("/v1/totals").json()
    for name in ("issued", "active", "retired", "cancelled"):
        assert grams(html, name) == totals[f"{name}_g"], name
    for purpose in ("ets_offset", "carbon_neutrality", "eco_compensation", "voluntary"):
        expected = sum(r["amount_g"] for r in api_items(http, "/v1/retirements", purpose=purpose))
        assert grams(html, f"retired-{purpose}") == expected, purpose
    issuances = api_items(http, "/v1/issuances")
    for methodology_id in {i["methodology_id"] for i in issuances}:
        expected = sum(i["amount_g"] for i in issuances if i["methodology_id"] == methodology_id)
        assert grams(html, f"issued-{methodology_id}") == expected, methodology_id
    note = http.get("/v1/checkpoint").text
    size = int(note.split("\n")[1])
    assert f'id="checkpoint-size">{size}<' in html
    assert 'data-month="2026-04"' in html and f'data-g="{totals["issued_g"]}"' in html


@pytest.mark.parametrize("path", ["/issuances", "/retirements", "/surrenders", "/claims", "/holds", "/methodologies",
                                  "/accounts/mall-co", "/accounts/alice", "/claims/claim-1"])
def test_every_rows_seq_links_to_its_receipt(http, path):
    """Issue 13 wants a receipt for any event: each row's seq (an issuance's too, not only its
    reviews') is a link to /receipts/{seq}."""
    html = page(http, path)
    seqs = re.findall(r'<tr data-seq="(\d+)">', html) + re.findall(r'id="claim-seq">(?:<a[^>]*>)?(\d+)', html)
    assert seqs, path
    for seq in seqs:
        assert f'<a href="/receipts/{seq}">{seq}</a>' in html, (path, seq)


def test_free_text_with_bidi_controls_is_isolated_from_its_neighbours(site):
    """A beneficiary, a hold's reason or an account name holding U+202E (RIGHT-TO-LEFT OVERRIDE)
    would reorder the text after it in the cell; in a <bdi> it reorders itself alone."""
    http, world = site.http, site.world
    spoof = "Wuhan \u202eytirahc\u202c 1000 t"
    world.client.open_account(world.admin, "bidi-co", "enterprise", spoof, "420100", [world.bob])
    world.client.retire(world.mall, "ret-bidi", "mall-co", 10, "voluntary", spoof)
    world.client.hold(world.admin, "hold-bidi", "mall-co", True, "case-bidi", spoof)
    world.client.hold(world.admin, "hold-bidi-2", "mall-co", False, "case-bidi", "closed")
    isolated = f"<bdi>{spoof}</bdi>"
    retirement = next(r for r in api_items(http, "/v1/retirements", account="mall-co") if r["retirement_id"] == "ret-bidi")
    for path in ("/retirements", "/holds", "/accounts/bidi-co", "/accounts/mall-co", f"/serials/{retirement['serials'][0][0]}"):
        html = page(http, path)
        assert spoof in html and html.count(spoof) == html.count(isolated), path


def test_home_totals_follow_new_commits(site):
    http, world = site.http, site.world
    before = grams(page(http, "/"), "retired")
    world.client.retire(world.mall, "ret-later", "mall-co", 700, "voluntary", "later")
    html = page(http, "/")
    assert grams(html, "retired") == before + 700 == http.get("/v1/totals").json()["retired_g"]


def test_amounts_read_in_tonnes_or_grams_where_tonnes_would_read_zero():
    assert pages.amount(1_500_000) == "1.500 t"
    assert pages.amount(1_500) == "0.002 t"
    assert pages.amount(499) == "499 g"
    assert pages.amount(0) == "0.000 t"


REGISTER_QUERIES = [
    ("/issuances", "/v1/issuances", {}), ("/issuances", "/v1/issuances", {"methodology_id": "HB-RS-RECYCLE"}),
    ("/issuances", "/v1/issuances", {"vintage": "2026", "region": "420000"}),
    ("/retirements", "/v1/retirements", {}), ("/retirements", "/v1/retirements", {"purpose": "voluntary"}),
    ("/retirements", "/v1/retirements", {"vintage": "2025"}), ("/retirements", "/v1/retirements", {"used": "true"}),
    ("/retirements", "/v1/retirements", {"account": "mall-co", "methodology_id": "HB-GT-METRO"}),
    ("/surrenders", "/v1/surrenders", {}), ("/surrenders", "/v1/surrenders", {"compliance_year": "2026"}),
    ("/claims", "/v1/claims", {}), ("/claims", "/v1/claims", {"claimant": "mall-co"}),
    ("/methodologies", "/v1/methodologies", {"offset_eligible": "false"}),
]
AMOUNTS = {"/issuances": "amount_g", "/retirements": "amount_g", "/surrenders": "amount_g", "/claims": "footprint_g"}


@pytest.mark.parametrize("path, api_path, filters", REGISTER_QUERIES)
def test_register_pages_and_csv_agree_with_the_api(http, path, api_path, filters):
    expected = api_items(http, api_path, **filters)
    shown = rows(page(http, f"{path}?{'&'.join(f'{k}={v}' for k, v in filters.items())}"))
    assert [int(r["seq"]) for r in shown] == [item["seq"] for item in expected]
    response = http.get(path, params={**filters, "format": "csv"})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    assert "puhui-next-after" not in response.headers
    table = list(csv.DictReader(io.StringIO(response.text.removeprefix("\ufeff"))))
    assert [int(r["seq"]) for r in table] == [item["seq"] for item in expected]
    if path in AMOUNTS:
        field = AMOUNTS[path]
        assert [int(r[field]) for r in shown] == [int(r[field]) for r in table] == [i[field] for i in expected]


def test_an_empty_filter_field_is_no_filter(http):
    assert rows(page(http, "/retirements?purpose=&region=&vintage=")) == rows(page(http, "/retirements"))


def every_page(http: TestClient, url: str) -> list[int]:
    """The seqs of a register's rows, following its next links from `url` to the last page."""
    seen: list[int] = []
    while url:
        html = page(http, url)
        seen += [int(r["seq"]) for r in rows(html)]
        next_link = re.search(r'<a href="([^"]+)" rel="next"', html)
        url = unescape(next_link.group(1)) if next_link else ""
    return seen


def test_pagination_follows_the_api_cursor(http, monkeypatch):
    monkeypatch.setattr(pages, "PAGE_ITEMS", 2)
    first = [int(r["seq"]) for r in rows(page(http, "/retirements"))]
    api = http.get("/v1/retirements", params={"limit": 2}).json()
    assert first == [item["seq"] for item in api["items"]]
    second = [int(r["seq"]) for r in rows(page(http, f"/retirements?after={api['next_after']}"))]
    assert second == [item["seq"] for item in http.get(
        "/v1/retirements", params={"limit": 2, "after": api["next_after"]}).json()["items"]]
    assert every_page(http, "/retirements") == [item["seq"] for item in api_items(http, "/v1/retirements")]


def test_dates_bound_the_rows_by_their_event_time(tmp_path, monkeypatch):
    """Rows of two days (April, then May after a reopening): each date window shows exactly the API's
    rows of those days, on the page, across pages, and in the CSV."""
    monkeypatch.setattr(pages, "PAGE_ITEMS", 2)
    world = World(f"sqlite:///{tmp_path / 'registry.sqlite3'}").setup().history()
    world.reopen()
    world.client.retire(world.mall, "ret-may", "mall-co", 300, "voluntary", "May")
    world.client.retire(world.alice, "ret-may-2", "alice", 10, "voluntary", "May")
    try:
        with TestClient(create_app(world.registry, checkpoint_interval_s=0.05)) as http:
            everything = api_items(http, "/v1/retirements")
            assert {item["time"][:7] for item in everything} == {"2026-04", "2026-05"}
            for since, until in [("2026-05-01", ""), ("", "2026-04-30"), ("2026-04-01", "2026-04-01"),
                                 ("2026-06-01", ""), ("2026-04-02", "2026-04-30"), ("", ""),
                                 ("0001-01-01", "9999-12-31")]:
                expected = [item["seq"] for item in everything
                            if item["time"][:10] >= (since or "0") and item["time"][:10] <= (until or "9")]
                url = f"/retirements?since={since}&until={until}"
                assert every_page(http, url) == expected, url
                table = csv.DictReader(io.StringIO(http.get(f"{url}&format=csv").text.removeprefix("\ufeff")))
                assert [int(r["seq"]) for r in table] == expected, url
    finally:
        world.registry.close()


def test_a_long_csv_names_the_cursor_to_go_on_from(http, monkeypatch):
    monkeypatch.setattr(pages, "MAX_CSV_ROWS", 3)
    response = http.get("/retirements", params={"format": "csv"})
    seqs = [int(r["seq"]) for r in csv.DictReader(io.StringIO(response.text.removeprefix("\ufeff")))]
    assert seqs == [item["seq"] for item in api_items(http, "/v1/retirements")][:3]
    assert int(response.headers["puhui-next-after"]) == seqs[-1]


def test_account_page_shows_the_api_balances(http):
    html = page(http, "/accounts/mall-co")
    account = http.get("/v1/accounts/mall-co").json()
    for state in ("active", "retired", "cancelled"):
        assert grams(html, f"balance-{state}") == account[f"{state}_g"]
    for source in http.get("/v1/accounts/mall-co/issuances").json()["issuances"]:
        assert source["issuance_id"] in html
    for name, api_path, field in [("issuances", "/v1/issuances", "account"), ("retirements", "/v1/retirements", "account"),
                                  ("claims", "/v1/claims", "claimant"), ("surrenders", "/v1/surrenders", "entity")]:
        expected = api_items(http, api_path, **{field: "mall-co"})[:pages.ACCOUNT_ROWS]
        assert [int(r["seq"]) for r in rows(html, f"account-{name}-table")] == [i["seq"] for i in expected], name
        assert f'href="/{name}?{field}=mall-co"' in html
    assert rows(html, "account-retirements-table")  # mall-co has retirements and a claim: the lists are not empty
    assert rows(html, "account-claims-table")


def test_claim_page_shows_the_api_claim(http):
    html = page(http, "/claims/claim-1")
    claim = http.get("/v1/claims", params={"claimant": "mall-co"}).json()["items"][0]
    assert grams(html, "claim-footprint") == claim["footprint_g"]
    assert grams(html, "claim-retired") == claim["retired_g"]
    assert claim["subject"]["name"] in html
    shown = rows(html, "claim-retirements")
    retirements = {r["retirement_id"]: r for r in api_items(http, "/v1/retirements")}
    assert [r["retirement_id"] for r in shown] == claim["retirements"]
    for row in shown:
        retirement = retirements[row["retirement_id"]]
        assert (int(row["seq"]), int(row["amount_g"])) == (retirement["seq"], retirement["amount_g"])
        assert row["serials"] == ", ".join(f"{start}–{end}" for start, end in retirement["serials"])


def test_methodology_page_shows_the_api_methodology(http):
    html = page(http, "/methodologies/HB-GT-METRO")
    methodology = http.get("/v1/methodologies/HB-GT-METRO").json()
    assert f'id="latest-version">{methodology["latest_version"]}<' in html
    assert methodology["title"] in html
    assert json.dumps(methodology["params"], ensure_ascii=False, indent=2, sort_keys=True) in unescape(html)


def test_methodology_page_shows_formula_factors_sources_and_daily_cap(http):
    html = page(http, "/methodologies/HB-ES-NEVCHARGE")
    params = http.get("/v1/methodologies/HB-ES-NEVCHARGE").json()["params"]
    assert params["formula"]["expression"] in unescape(html)
    for name, factor in params["factors"].items():
        row = re.search(rf'<tr data-factor="{name}">(.*?)</tr>', html, re.S).group(1)
        assert f"{factor['value']} {factor['unit']}" in unescape(row)
        if factor["illustrative"]:
            assert "illustrative (no published source)" in row
        else:
            assert factor["source"] in unescape(row)
    cap = re.search(r'<dd class="daily-cap"><span class="amount" data-g="(\d+)"', html)
    assert int(cap.group(1)) == params["daily_cap"]["value_g"]


@pytest.mark.parametrize("serial", [5, 1700, 2250, 13920, 30000, 34114])
def test_serial_page_names_the_issuance_and_holder_the_api_shows(http, serial):
    html = page(http, f"/serials/{serial}")
    issuance = next(i for i in api_items(http, "/v1/issuances") if i["start"] <= serial < i["end"])
    assert f">{issuance['issuance_id']}</a>" in html
    holder = re.search(r'id="serial-holder"><a href="/accounts/([^"]+)">', html).group(1)
    state = {"流通中": "active", "active": "active", "retired": "retired", "cancelled": "cancelled"}[
        re.search(r"</a> \(([a-z]+)\)", html).group(1)]
    ranges = http.get(f"/v1/accounts/{holder}").json()["serials"][state]
    assert any(start <= serial < end for start, end in ranges)
    if state == "retired":
        retirement = next(r for r in api_items(http, "/v1/retirements", account=holder)
                          if any(s <= serial < e for s, e in r["serials"]))
        assert retirement["retirement_id"] in html


@pytest.mark.parametrize("path", ["/issuances", "/retirements", "/accounts/mall-co", "/claims/claim-1", "/serials/2250"])
def test_serial_ranges_have_one_separator_and_say_they_are_end_exclusive(http, path):
    """Ranges are [START, END) (spec section 3): every page writes them START–END, and says once
    what that means, in both languages; the CSV keeps its START-END."""
    for lang in LANGUAGES:
        html = page(http, path, lang)
        shown = re.findall(r'<span class="serials">([^<]*)</span>', html)
        assert shown and all(re.fullmatch(r"\d+–\d+", text) for text in shown), (path, shown)
        assert html.count('id="serials-note"') == 1 and "[a, b)" in html
    if path.startswith(("/issuances", "/retirements")):
        table = csv.DictReader(io.StringIO(http.get(path, params={"format": "csv"}).text.removeprefix("\ufeff")))
        assert all(re.fullmatch(r"\d+-\d+(;\d+-\d+)*", row["serials"]) for row in table)


def test_the_serial_form_lands_on_the_serial_page(http):
    response = http.get("/serials", params={"n": "2250"}, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/serials/2250"


# -- check it yourself --------------------------------------------------------------------------------

def test_receipt_page_shows_the_api_receipt(http):
    """Without JavaScript the page shows what the browser then checks: the leaf, its hash, the
    proof and the checkpoint, as /v1/receipts/{seq} serves them; and hands the same receipt to the script."""
    seq = http.get("/v1/retirements").json()["items"][0]["seq"]
    receipt = http.get(f"/v1/receipts/{seq}").json()
    html = page(http, f"/receipts/{seq}")
    leaf_hash = hashlib.sha256(b"\x00" + receipt["leaf"].encode()).hexdigest()
    assert re.search(rf'id="leaf-hash">{leaf_hash}<', html)
    assert re.search(rf'id="tree-size">{receipt["inclusion"]["tree_size"]}<', html)
    assert re.findall(r'<li><code class="hash">([0-9a-f]{64})</code></li>', html) == receipt["inclusion"]["hashes"]
    assert unescape(re.search(r'id="checkpoint-note">(.*?)</pre>', html, re.S).group(1)) == receipt["checkpoint"]
    embedded = re.search(r'<script type="application/json" id="receipt-json">(.*?)</script>', html, re.S).group(1)
    assert json.loads(embedded) == receipt
    trust = re.search(r'<script type="application/json" id="served-trust">(.*?)</script>', html, re.S).group(1)
    assert json.loads(trust) == http.get("/v1/trust").json()
    assert 'data-verification="pending"' in html and '<script type="module" src="/static/check_page.js">' in html


@pytest.mark.parametrize("lang", LANGUAGES)
def test_the_check_script_gets_its_messages_in_the_page_language(http, lang):
    html = page(http, "/verify", lang)
    embedded = re.search(r'<script type="application/json" id="check-messages">(.*?)</script>', html, re.S).group(1)
    index = LANGUAGES.index(lang)
    assert json.loads(embedded) == {k: v[index] for k, v in MESSAGES.items() if k.startswith(pages.CHECK_MESSAGE_PREFIXES)}


def test_the_check_scripts_are_served_by_puhui_itself(http):
    for name in ("check.js", "pins.js", "check_page.js"):
        response = http.get(f"/static/{name}")
        assert response.status_code == 200 and "javascript" in response.headers["content-type"], name
        assert not re.search(r"(import|from|fetch\()\s*\(?[\"'`](https?:)?//", response.text), name


# -- 404, 422, escaping --------------------------------------------------------------------------------

def test_every_answer_says_nosniff_once_downloads_static_files_and_the_api_too(http):
    """Trial 13b: a CSV of text anyone can write (a beneficiary), a stylesheet and JSON went without it."""
    for path in ("/retirements?format=csv", "/static/pages.css", "/openapi.json", "/v1/status", "/v1/nope", "/"):
        response = http.get(path)
        assert response.headers.get_list("x-content-type-options") == ["nosniff"], path
    refused_write = http.post("/v1/events", content=b'{"type": {}}')  # the write path, past the framework
    assert refused_write.status_code == 422 and refused_write.headers.get_list("x-content-type-options") == ["nosniff"]


@pytest.mark.parametrize("path", ["/claims/nope", "/accounts/nope", "/methodologies/nope", "/serials/999999999",
                                  "/receipts/999999999"])
def test_unknown_ids_answer_a_404_page(http, path):
    response = http.get(with_lang(path, "zh"))
    assert response.status_code == 404 and response.headers["content-type"].startswith("text/html")
    assert "未找到" in response.text


@pytest.mark.parametrize("path", ["/nope%22%3E%3Cscript%3Ealert(1)%3C/script%3E%27", "/a%3Fb%23c%20d", "/%2Fevil.example/x",
                                  "/a%25zz", "/%E8%B4%A6%E6%88%B7", "/accounts/a%2Fb"])
def test_the_404_pages_language_switch_leads_back_to_the_same_path(http, path):
    """The link is the path encoded again: quotes, angle brackets, `?`, `#` and `%` stay escaped, and
    a path starting with // does not become a link to another host."""
    for lang, other in (("zh", "en"), ("en", "zh")):
        response = http.get(with_lang(path, lang))
        assert response.status_code == 404 and "<script>alert" not in response.text
        [href] = re.findall(r'<a class="lang" href="([^"]*)"', response.text)
        link_path, _, query = unescape(href).partition("?")
        assert query == f"lang={other}" and link_path.startswith("/") and not link_path.startswith("//")
        assert not re.search(r"[<>\"'#?\s]", link_path), link_path
        assert unquote(link_path) == unquote(path)
        assert http.get(unescape(href)).text.count(MESSAGES["reason.no_page"][LANGUAGES.index(other)]) == 1


@pytest.mark.parametrize("path", [
    "/retirements?purpose=bogus", "/retirements?vintage=abc", "/retirements?used=maybe", "/issuances?region=42",
    "/issuances?after=-5", "/surrenders?compliance_year=99999", "/methodologies?sector=space",
    "/claims?claimant=a%20b", "/retirements?since=2026-13-01", "/issuances?until=yesterday",
    "/accounts/a%20b", "/serials/-1", "/serials/x", "/serials?n=abc", "/receipts/-1", "/receipts/x",
    "/claims/" + "x" * 200])
def test_bad_filters_and_ids_answer_a_422_page(http, path):
    response = http.get(with_lang(path, "en"))
    assert response.status_code == 422 and response.headers["content-type"].startswith("text/html")
    assert "Invalid request" in response.text


@pytest.mark.parametrize("path, reason", [
    ("/serials?serial=100", "no query parameter serial"), ("/methodologies/HB-GT-METRO?version=1", "no query parameter version"),
    ("/verify?x=1", "no query parameter x"), ("/receipts/0?sequence=1", "no query parameter sequence"),
    ("/?lng=en", "did you mean lang?"), ("/issuances?format=xml", "format: not one of the choices"),
    ("/receipts/1.0", "must be written in digits"), ("/serials/+100", "must be written in digits"),
    ("/serials/00100", "must be written in digits"), ("/receipts/00", "must be written in digits"),
    ("/retirements?vintage=%2B2026", "must be written in digits"), ("/retirements?vintage=02026", "must be written in digits"),
    ("/issuances?after=%2B5", "must be written in digits"), ("/surrenders?compliance_year=%202026", "must be written in digits"),
    ("/retirements?purpose=voluntary&purpose=ets_offset", "purpose may be given once"),
    ("/me?lang=en&lang=zh", "lang may be given once")])
def test_every_page_refuses_what_it_does_not_take_as_the_registers_do(http, path, reason):
    """Unknown query parameters are refused on every page (not only the registers), and a serial
    or a seq in a path is written one way only."""
    response = http.get(with_lang(path, "en"))
    assert response.status_code == 422 and response.headers["content-type"].startswith("text/html"), path
    assert reason in unescape(re.search(r'<p class="reason">(.*?)</p>', response.text, re.S).group(1)), path


def test_a_language_the_pages_do_not_speak_is_refused_not_taken_for_chinese(http):
    response = http.get("/retirements?lang=fr")
    assert response.status_code == 422 and response.headers["content-type"].startswith("text/html")
    assert http.get("/retirements?lang=").status_code == 200  # an empty field is no choice, as for filters


def test_the_pages_own_parameters_and_sharing_ones_are_still_taken(http):
    for path in ("/serials?n=2250", "/serials/2250?lang=zh", "/receipts/0?from=singlemessage&isappinstalled=0",
                 "/methodologies/HB-GT-METRO?lang=en", "/issuances?format=", "/serials/0"):
        assert http.get(path).status_code in (200, 303, 404), path
    assert http.get("/serials?n=00100", follow_redirects=False).headers["location"] == "/serials/100"  # the form: as typed


def test_hostile_strings_are_escaped(http):
    hostile_seq = http.get("/v1/retirements", params={"account": "mall-co", "limit": 100}).json()["items"]
    [hostile_seq] = [r["seq"] for r in hostile_seq if r["retirement_id"] == "ret-hostile"]
    receipt_page = http.get(f"/receipts/{hostile_seq}").text
    assert "<script>alert" not in receipt_page and "&lt;script&gt;" in receipt_page
    for path in ("/accounts/hostile", "/retirements", "/retirements?format=html&x=%3Cscript%3E",
                 "/retirements?purpose=%3Cscript%3E"):
        text = http.get(path).text
        assert "<script>" not in text, path
    assert "&lt;script&gt;" in http.get("/accounts/hostile").text
    assert "&lt;script&gt;" in http.get("/retirements").text


def test_no_filter_value_makes_a_500(http):
    odd = ["", "x", "-1", "0", "<>\"'", "9" * 30, "2026-02-30", "\u00e9\u4e2d", "%00", "true"]
    for register in pages.REGISTERS.values():
        for field in (*register.fields, pages.FilterField("after")):
            for value in odd:
                for extra in ({}, {"format": "csv"}):
                    response = http.get(f"/{register.name}", params={field.name: value, **extra})
                    assert response.status_code in (200, 422), (register.name, field.name, value, extra)


def test_a_csv_cell_never_starts_a_spreadsheet_formula(http):
    table = list(csv.DictReader(io.StringIO(http.get("/retirements?format=csv").text.removeprefix("\ufeff"))))
    assert [r["beneficiary"] for r in table if r["retirement_id"] == "ret-formula"] == ["'" + FORMULA]
    assert [r["beneficiary"] for r in table if r["retirement_id"] == "ret-hostile"] == [HOSTILE]


# -- format 2: holds, reviews, eligibility history ---------------------------------------------------

ACCOUNTS = ("wuhan-platform", "grid-platform", "steel-co", "mall-co", "alice", "bob", "hostile")


def api_holds(http: TestClient, **wanted: Any) -> list[dict[str, Any]]:
    """Every hold event of every account, from /v1/accounts/{id}/holds, in log order."""
    found = [{**hold, "account_id": account, "case_id": case["case_id"]} for account in ACCOUNTS
             for case in http.get(f"/v1/accounts/{account}/holds").json()["cases"] for hold in case["holds"]]
    return sorted((h for h in found if all(str(h[k]).lower() == v for k, v in wanted.items())), key=lambda h: h["seq"])


@pytest.mark.parametrize("filters", [{}, {"account": "mall-co"}, {"held": "true"}, {"account": "alice", "held": "false"}])
def test_holds_register_and_csv_agree_with_the_api(http, filters):
    expected = api_holds(http, **{("account_id" if k == "account" else k): v for k, v in filters.items()})
    shown = rows(page(http, f"/holds?{'&'.join(f'{k}={v}' for k, v in filters.items())}"))
    assert [(int(r["seq"]), r["hold_id"], r["case_id"], r["reason"]) for r in shown] == [
        (h["seq"], h["hold_id"], h["case_id"], h["reason"]) for h in expected]
    table = list(csv.DictReader(io.StringIO(http.get("/holds", params={**filters, "format": "csv"}).text.removeprefix("\ufeff"))))
    assert [(int(r["seq"]), r["held"]) for r in table] == [(h["seq"], str(h["held"]).lower()) for h in expected]
    if not filters:
        assert len(expected) == 3


def test_account_page_shows_its_holds_and_whether_it_is_frozen(http):
    alice = page(http, "/accounts/alice")
    assert http.get("/v1/accounts/alice").json()["held"] == ["case-8"]
    assert 'id="account-frozen"' in alice and "case-8" in alice and 'id="account-state">FROZEN<' in alice
    assert [r["hold_id"] for r in rows(alice, "account-holds-table")] == [h["hold_id"] for h in api_holds(http, account_id="alice")]
    mall = page(http, "/accounts/mall-co")
    assert http.get("/v1/accounts/mall-co").json()["held"] == []
    assert 'id="account-frozen"' not in mall and 'id="account-state">open<' in mall
    assert [r["hold_id"] for r in rows(mall, "account-holds-table")] == ["hold-1", "hold-2"]
    assert 'href="/holds?account=mall-co"' in mall


@pytest.mark.parametrize("methodology_id", ["HB-GT-METRO", "HB-ES-NEVCHARGE"])
def test_methodology_page_shows_each_versions_reviews_as_the_api(http, methodology_id):
    html = page(http, f"/methodologies/{methodology_id}")
    for version in http.get(f"/v1/methodologies/{methodology_id}").json()["versions"]:
        answer = http.get("/v1/reviews", params={"kind": "methodology", "id": methodology_id,
                                                  "version": version["version"]}).json()
        table = re.search(rf'<table class="register" id="reviews-{version["version"]}">(.*?)</table>', html, re.S).group(1)
        shown = re.findall(r'<tr data-seq="(\d+)" data-review="([^"]+)" data-verdict="(\w+)" data-counts="(\w+)">', table)
        assert shown == [(str(r["seq"]), r["review_id"], r["verdict"], str(r["counts"]).lower()) for r in answer["items"]]
        status = answer["status"]
        assert (f'id="review-status-{version["version"]}" data-approved="{status["approved"]}" '
                f'data-quorum="{status["quorum"]}"') in html
        assert (answer["status"]["rejected"] is True) == ("a counting key rejected it" in html)


def test_methodology_page_shows_the_events_that_set_its_eligibility(http):
    html = page(http, "/methodologies/HB-GT-METRO")
    leaves = http.get("/v1/log", params={"start": 0, "limit": 1000}).json()["leaves"]
    expected = [(leaf["seq"], leaf["body"]["offset_eligible"]) for leaf in leaves
                if leaf["type"] in ("methodology.register", "methodology.eligibility")
                and leaf["body"]["methodology_id"] == "HB-GT-METRO"]
    table = re.search(r'<table class="register" id="eligibility-history">(.*?)</table>', html, re.S).group(1)
    shown = re.findall(r'<tr data-seq="(\d+)" data-eligible="(\w+)">', table)
    assert shown == [(str(seq), str(eligible).lower()) for seq, eligible in expected]
    assert [eligible for _, eligible in expected] == [False, True, False, True]


def test_issuance_rows_show_their_batches_reviews(http):
    shown = {r["issuance_id"]: r["reviews"] for r in rows(page(http, "/issuances"))}
    table = {r["issuance_id"]: r["reviews"] for r in
             csv.DictReader(io.StringIO(http.get("/issuances?format=csv").text.removeprefix("\ufeff")))}
    for issuance_id, targets in (("iss-1", [("batch", "wh-2026-01")]), ("iss-2", [("evidence", World.EVIDENCE)]),
                                 ("iss-4", [("batch", "wh-2026-01-me")])):
        reviews = [(target_id, r["review_id"], r["verdict"]) for kind, target_id in targets
                   for r in http.get("/v1/reviews", params={"kind": kind, "id": target_id}).json()["items"]]
        assert reviews  # each was reviewed before it was issued
        assert table[issuance_id] == ";".join("/".join(review) for review in reviews)
        for _, review_id, verdict in reviews:
            assert f"{review_id} {verdict}" in shown[issuance_id]


# -- the citizen's page ---------------------------------------------------------------------------------

def me(http: TestClient, lang: str = "en", status: int = 200, **form: str) -> str:
    response = http.post(f"/me?lang={lang}", data=form)
    assert response.status_code == status, response.text[-2000:]
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["cache-control"] == "no-store"
    return response.text


def records_shown(html: str) -> list[dict[str, Any]]:
    """The records /me shows: activity id, grams, and the batch and issuance links of each."""
    found = []
    for activity_id, grams_shown, body in re.findall(
            r'<article class="record" id="record-\d+" data-activity="([^"]+)" data-g="(\d+)"[^>]*>(.*?)</article>', html, re.S):
        formula = re.search(r'class="formula-result" data-g="(\d+)"', body)
        found.append({"activity_id": activity_id, "reduction_g": int(grams_shown),
                      "formula_g": int(formula.group(1)) if formula else None,
                      "batch": re.search(r'class="batch"><a href="/receipts/(\d+)">([^<]+)</a>', body).groups(),
                      "issuance": re.search(r'class="issuance">(?:<a href="/receipts/(\d+)">)?([^<]+)', body).groups()})
    return found


def embedded(html: str, element_id: str) -> Any:
    return json.loads(re.search(rf'<script type="application/json" id="{element_id}">(.*?)</script>', html, re.S).group(1))


def citizen_subjects(http: TestClient) -> list[str]:
    return [json.loads(http.get(f"/v1/activities/{ride.activity_id}").json()["record"])["subject"] for ride in CITIZEN_RIDES]


def test_the_citizen_page_lists_nothing_without_input(http):
    html = page(http, "/me")
    assert 'method="post"' in html and 'method="get"' not in html.split("<main>")[1]
    assert "data-activity" not in html and 'id="record-proofs"' not in html
    by_get = http.get("/me?pseudonyms=" + citizen_subjects(http)[0])  # no GET lookup: /me has no query parameter
    assert by_get.status_code == 422 and "no query parameter pseudonyms" in by_get.text and "data-activity" not in by_get.text


def test_the_citizen_page_shows_the_api_account_with_each_records_proof(http):
    subjects = list(dict.fromkeys(citizen_subjects(http)))
    assert len(subjects) == 2  # one pseudonym a day
    account = http.get("/v1/pseudonyms/account", params={"subject": subjects}).json()
    html = me(http, pseudonyms="\n".join(s.upper() for s in subjects) + "\n" + subjects[0])
    assert grams(html, "me-total") == account["total_g"] and grams(html, "me-issued") == account["issued_g"]
    assert account["issued_g"] < account["total_g"]  # the second day's batch is not issued yet
    shown = records_shown(html)
    api_records = {r["activity_id"]: r for r in account["tables"]["records"]}
    assert [r["activity_id"] for r in shown] == ["me-1", "me-2", "me-3"] == sorted(api_records)
    batches = {b["batch_id"]: b for b in account["tables"]["batches"]}
    for row in shown:
        record = api_records[row["activity_id"]]
        batch = batches[record["batch_id"]]
        assert row["reduction_g"] == record["reduction_g"]
        assert row["batch"] == (str(batch["batch_seq"]), batch["batch_id"])
        assert row["issuance"] == ((str(batch["issuance_seq"]), batch["issuance_id"]) if batch["issuance_id"]
                                   else (None, "not issued yet"))
    assert [(r["formula_g"], r["reduction_g"]) for r in shown][:2] == [(967, 967), (3136, 2033)]  # the daily cap
    assert "the daily cap took off 1103 g" in html
    proofs = embedded(html, "record-proofs")
    receipts = embedded(html, "batch-receipts")
    for row, proof in zip(shown, proofs):
        served = http.get(f"/v1/activities/{row['activity_id']}").json()
        assert (proof["activity_id"], proof["record"], proof["inclusion"], proof["batch_seq"]) == (
            row["activity_id"], served["record"], served["inclusion"], served["batch_seq"])
        receipt = receipts[str(proof["batch_seq"])]
        assert receipt["leaf"] == http.get(f"/v1/receipts/{proof['batch_seq']}").json()["leaf"]
    assert 'data-verification="pending"' in html and '<script type="module" src="/static/me_page.js">' in html
    assert subjects[0] in html and subjects[0] not in re.sub(r"<(textarea|dd|script).*?</\1>", "", html, flags=re.S)


def test_the_citizen_page_opens_one_record_with_its_opening(http):
    opening = citizen_opening()
    spaced = json.dumps(opening, indent=2)  # however the app spaced it, its JCS is what is committed
    html = me(http, activity_id="me-1", opening=spaced)
    assert [r["activity_id"] for r in records_shown(html)] == ["me-1"]
    assert grams(html, "me-total") == 967 and "L4-12" in html and opening["fields"]["occurred_at"] in html
    assert embedded(html, "record-proofs")[0]["record"] == http.get("/v1/activities/me-1").json()["record"]
    assert 'id="opening-checked"' in html and "its SHA-256 is the record's private_sha256" in unescape(html)
    wrong = {**opening, "fields": {**opening["fields"], "exit_station": "L4-13"}}
    refused = me(http, "zh", 422, activity_id="me-1", opening=json.dumps(wrong))
    assert "此开启信息不能开启记录 me-1" in refused and "data-activity" not in refused
    assert "L4-13" not in outside_the_form(refused) and 'id="opening-checked"' not in refused
    assert "没有记录 nope" in me(http, "zh", 404, activity_id="nope", opening=json.dumps(opening))
    assert "L4-12" not in outside_the_form(me(http, "en", 422, activity_id="me-2", opening=jcs(opening).decode()))


def test_stored_records_that_fail_their_proof_are_answered_503_never_a_wrong_proof(site):
    """A record's bytes edited behind the registry's back (its append-only trigger dropped first,
    as a forger would): its block's proofs no longer lead to the batch root. The API and /me say
    the stored data failed a check (503), where they answered a bare 500."""
    from sqlalchemy import create_engine, text
    engine = create_engine(site.world.url)
    with engine.begin() as conn:
        conn.execute(text("DROP TRIGGER activities_no_update"))
        conn.execute(text("UPDATE activities SET record = CAST(record || ' ' AS BLOB) WHERE activity_id = 'me-2'"))
    engine.dispose()
    answer = site.http.get("/v1/activities/me-1")
    assert answer.status_code == 503 and answer.json()["code"] == "UNAVAILABLE"
    assert "failed a check" in answer.json()["message"] and "puhui check" in answer.json()["message"]
    refused = me(site.http, "en", 503, activity_id="me-1", opening=json.dumps(citizen_opening()))
    assert "stored data failed a check" in unescape(refused) and "record-proofs" not in refused


@pytest.mark.parametrize("refusal, status, said", [
    ((413, "SCHEMA", "the body is larger than 16384 bytes"), 413, "reason.form_too_large"),
    ((408, "TIMEOUT", "the request's body did not arrive within 120 s"), 408, "reason.form_not_read")])
def test_a_form_not_read_whole_says_why_not_that_it_was_too_large(refusal, status, said):
    """Trial 13: with more than 256 requests in flight from one address, a newer request takes the
    place of the oldest still receiving its body (408): a 1.4 KB /me form was answered 'larger
    than 16 KiB'."""
    import asyncio
    from starlette.requests import Request

    from api.errors import ApiError

    async def receive():
        raise ApiError(*refusal)

    request = Request({"type": "http", "method": "POST", "path": "/me", "headers": [], "query_string": b""}, receive)
    with pytest.raises(pages.PageError) as refused:
        asyncio.run(pages._form_body(request))
    assert (refused.value.status, refused.value.reason.key) == (status, said)


def outside_the_form(html: str) -> str:
    """A /me answer without the form's fields, which hold what the reader entered."""
    return re.sub(r"<textarea\b.*?</textarea>|<input\b[^>]*>", "", html, flags=re.S)


@pytest.mark.parametrize("form, status", [
    ({"activity_id": "me-1", "opening": '{"fields": {}, "salt": "AA=="}'}, 422),
    ({"activity_id": "nope", "opening": '{"fields": {}, "salt": "AA=="}'}, 404),
    ({"activity_id": "me-1", "opening": "{not json"}, 422),
    ({"pseudonyms": "not-hex\n" + "00" * 16}, 422)])
def test_a_refused_lookup_shows_the_form_again_filled_in_with_the_reason_above_it(http, form, status):
    html = me(http, "en", status, **form)
    refusal = re.search(r'id="me-refusal" role="alert"><p class="reason">(.*?)</p>', html, re.S)
    assert refusal and html.index('id="me-refusal"') < html.index('id="pseudonyms-form"')
    for name, value in form.items():
        field = re.search(rf'<textarea id="[a-z-]+" name="{name}"[^>]*>(.*?)</textarea>|<input id="[a-z-]+" name="{name}"[^>]*value="([^"]*)"',
                          html, re.S)
        assert field and unescape(field.group(1) or field.group(2)) == value, name


def test_the_hubs_own_date_pseudonym_lines_are_taken_as_they_are(http):
    """`puhui pseudonyms` prints DATE PSEUDONYM a line: pasted into /me, the dates are passed over
    (31 lines are 31 pseudonyms, not 62), and the limit still holds."""
    subjects = list(dict.fromkeys(citizen_subjects(http)))
    lines = "\n".join(f"2026-01-{6 + i:02d} {subject}" for i, subject in enumerate(subjects))
    assert records_shown(me(http, pseudonyms=lines)) == records_shown(me(http, pseudonyms="\n".join(subjects)))
    month = "\n".join(f"2026-01-{day:02d} {day:032x}" for day in range(1, 32))
    assert "data-activity" not in me(http, pseudonyms=month)  # 31 pseudonyms: taken, none of them logged
    refused = me(http, "en", 422, pseudonyms=month + "\n2026-02-01 " + "ff" * 16)
    assert "32 pseudonyms entered: at most 31" in refused
    with_bom = me(http, pseudonyms="\ufeff" + month)  # 200: Notepad's byte-order mark is not a 32nd pseudonym
    assert "data-activity" not in with_bom
    impossible = me(http, "en", 422, pseudonyms="2026-13-45 " + "ab" * 16)  # no date the hub prints
    assert "must be a date" in impossible


def test_a_batch_its_validation_body_rejected_is_said_so_and_not_earned(site):
    """A batch rejected by a counting review will never be issued: its record says so, naming the
    review, and its grams are shown apart from what the citizen earned (the API's rejected_g)."""
    http, world = site.http, site.world
    ride = metro_record("me-rejected", CITIZEN, "2026-01-09T02:00:00.000000Z", 8000, salt=CITIZEN_SALT)
    world.batch("wh-2026-01-me-rejected", [ride])
    world.client.review(world.validator, "rev-me-rejected", "batch", "wh-2026-01-me-rejected", "rejected")
    subjects = list(dict.fromkeys(citizen_subjects(http) + [ride["subject"]]))
    account = http.get("/v1/pseudonyms/account", params={"subject": subjects}).json()
    assert account["rejected_g"] == ride["reduction_g"] > 0
    assert account["total_g"] == sum(r["reduction_g"] for r in account["tables"]["records"]) - ride["reduction_g"]
    html = me(http, pseudonyms="\n".join(subjects))
    assert grams(html, "me-total") == account["total_g"] and grams(html, "me-rejected") == ride["reduction_g"]
    card = re.search(r'data-activity="me-rejected".*?</article>', html, re.S).group(0)
    assert 'data-rejected-by="rev-me-rejected"' in card and "rejected by its validation body (review rev-me-rejected)" in card
    assert "not issued yet" not in card and "approvals counting" not in card
    assert "已被审定机构否决（审核 rev-me-rejected）" in me(http, "zh", pseudonyms=ride["subject"])


@pytest.mark.parametrize("form, status", [
    ({}, 422), ({"pseudonyms": ""}, 422), ({"pseudonyms": "not-hex"}, 422), ({"pseudonyms": "ab" * 17}, 422),
    ({"pseudonyms": "\n".join(f"{n:032x}" for n in range(32))}, 422), ({"pseudonyms": "00" * 16, "name": "x"}, 422),
    ({"activity_id": HOSTILE, "opening": "{}"}, 422), ({"activity_id": "me-1", "opening": "{not json"}, 422),
    ({"activity_id": "me-1", "opening": "x" * 5000}, 422), ({"activity_id": "me-1", "opening": '{"a": 1.5}'}, 422),
    ({"pseudonyms": "x" * 20_000}, 413)])
def test_the_citizen_page_refuses_bad_input_with_a_page(http, form, status):
    for lang in LANGUAGES:
        html = me(http, lang, status, **form)
        assert "<script>alert" not in html and "data-activity" not in html
        reason = re.search(r'<p class="reason">(.*?)</p>', html, re.S).group(1)
        assert re.search(r"[\u4e00-\u9fff]", reason) if lang == "zh" else not re.search(r"[\u4e00-\u9fff]", reason)


def test_the_citizen_page_refuses_a_body_that_is_not_a_form(http):
    for body in (b"pseudonyms=%ff%fe", b"a=1&b=2&c=3&d=4", b"pseudonyms=1&pseudonyms=2"):
        response = http.post("/me", content=body, headers={"content-type": "application/x-www-form-urlencoded"})
        assert response.status_code == 422 and response.headers["content-type"].startswith("text/html"), body


def test_no_pseudonym_of_no_one_lists_anything(http):
    html = me(http, pseudonyms="00" * 16)
    assert 'id="no-records"' in html and "data-activity" not in html


# -- the outside trial's findings -------------------------------------------------------------------------

@pytest.mark.parametrize("name", [name for name, register in pages.REGISTERS.items()])
def test_an_unknown_query_parameter_is_refused_not_ignored(http, name):
    response = http.get(f"/{name}", params={"methodology": "HB-GT-METRO", "lang": "en"})
    assert response.status_code == 422 and response.headers["content-type"].startswith("text/html")
    assert "no query parameter methodology" in response.text
    assert http.get(f"/{name}", params={"methodology": "x", "format": "csv"}).status_code == 422


def test_the_refusal_names_the_parameter_meant(http):
    assert "did you mean methodology_id?" in http.get("/issuances?methodology=HB-GT-METRO&lang=en").text
    assert "您是否要用 vintage？" in http.get("/issuances?vintag=2026&lang=zh").text


def test_what_sharing_a_link_in_wechat_adds_is_passed_over(http):
    shared = rows(page(http, "/issuances?methodology_id=HB-GT-METRO&from=singlemessage&isappinstalled=0"))
    assert shared == rows(page(http, "/issuances?methodology_id=HB-GT-METRO"))
    assert http.get("/issuances?from=2026-01-01").status_code == 422  # a date meant as `since` is not WeChat's


def test_campaign_and_click_tags_of_a_shared_link_are_passed_over(http):
    plain = rows(page(http, "/issuances?methodology_id=HB-GT-METRO"))
    for tags in ("utm_source=wechat&utm_campaign=x", "fbclid=abc", "gclid=1&spm=a.b.c"):
        assert rows(page(http, f"/issuances?methodology_id=HB-GT-METRO&{tags}")) == plain
    assert page(http, "/?utm_source=newsletter")
    assert http.get("/issuances?page=2").status_code == 422  # not a tag: still refused


def test_a_page_in_a_cookie_s_language_says_it_varies_by_cookie(http):
    english = http.get("/issuances", cookies={"puhui_lang": "en"})
    assert english.status_code == 200 and '<html lang="en"' in english.text
    assert "cookie" in english.headers["vary"].lower()


@pytest.mark.parametrize("path", ["/accounts/a%2Fb", "/claims/a%2Fb", "/methodologies/x%2Fy", "/nope", "/me/x"])
def test_an_unrouted_path_answers_the_html_404_page(http, path):
    response = http.get(path + "?lang=zh")
    assert response.status_code == 404 and response.headers["content-type"].startswith("text/html")
    assert "未找到" in response.text and "没有这个页面" in response.text


def test_api_paths_still_answer_json_404(http):
    for path in ("/v1/nope", "/v1/accounts/a%2Fb"):
        response = http.get(path)
        assert response.status_code == 404 and response.json()["code"] == "UNKNOWN_REF", path


def test_head_is_served_wherever_get_is(http):
    for path in PAGE_PATHS + ["/issuances?format=csv", "/static/pages.css"]:
        response = http.head(path)
        assert response.status_code == 200, path
        assert response.headers["content-type"] == http.get(path).headers["content-type"], path


@pytest.mark.parametrize("method, path, allowed", [
    ("PUT", "/me", "GET, HEAD, POST"), ("DELETE", "/me", "GET, HEAD, POST"), ("OPTIONS", "/issuances", "GET, HEAD"),
    ("POST", "/receipts/0", "GET, HEAD"), ("OPTIONS", "/", "GET, HEAD"), ("POST", "/static/pages.css", "GET, HEAD")])
def test_a_method_a_page_does_not_take_answers_the_html_405_with_every_allowed_method(http, method, path, allowed):
    response = http.request(method, with_lang(path, "zh"))
    assert response.status_code == 405 and response.headers["allow"] == allowed
    assert response.headers["content-type"].startswith("text/html") and "不支持此请求方法" in response.text
    assert f"此地址不接受 {method} 请求；可用的方法：{allowed}" in response.text


def test_api_paths_still_answer_json_405(http):
    response = http.request("DELETE", "/v1/status")
    assert response.status_code == 405 and response.headers["content-type"] == "application/json"


def test_fastapis_docs_pages_that_load_cdn_assets_are_off(http):
    assert http.get("/openapi.json").status_code == 200
    for path in ("/docs", "/redoc", "/docs/oauth2-redirect"):
        response = http.get(path)
        assert response.status_code == 404 and "cdn.jsdelivr.net" not in response.text, path


def test_every_html_page_carries_the_security_headers(http):
    """Scripts and styles from Puhui alone (the browser tests run the pages' checks under this
    policy), never framed, no MIME sniffing, no Referer: on pages, error pages and /me's answer."""
    answers = [http.get(path) for path in PAGE_PATHS + ["/nope", "/issuances?vintage=x"]]
    answers.append(http.post("/me", data={"pseudonyms": "00" * 16}))
    for response in answers:
        headers = response.headers
        policy = dict(part.strip().split(" ", 1) for part in headers["content-security-policy"].split(";"))
        assert policy["script-src"] == policy["style-src"] == "'self'" and policy["default-src"] == "'none'"
        assert policy["frame-ancestors"] == "'none'" and headers["x-frame-options"] == "DENY"
        assert headers["x-content-type-options"] == "nosniff" and headers["referrer-policy"] == "no-referrer"


@pytest.mark.parametrize("path", ["/claims/nope", "/accounts/nope", "/methodologies/nope", "/serials/999999999",
                                  "/receipts/999999999", "/retirements?purpose=bogus", "/retirements?vintage=abc",
                                  "/issuances?region=42", "/issuances?since=2026-13-01", "/surrenders?compliance_year=99999",
                                  "/accounts/a%20b", "/serials/x", "/issuances?methodology=x", "/retirements?used=maybe"])
def test_chinese_error_pages_give_chinese_reasons(http, path):
    zh, en = (http.get(with_lang(path, lang)) for lang in LANGUAGES)
    assert zh.status_code == en.status_code in (404, 422)
    zh_reason, en_reason = (re.search(r'<p class="reason">(.*?)</p>', r.text, re.S).group(1) for r in (zh, en))
    assert re.search(r"[\u4e00-\u9fff]", zh_reason) and not re.search(r"[\u4e00-\u9fff]", en_reason), (zh_reason, en_reason)
    assert not re.search(r"\b(should|must|not|is|the|Input)\b", zh_reason), zh_reason


# -- format 1: the pages still render it ------------------------------------------------------------

FORMAT_1_PATHS = [path for path in PAGE_PATHS if path not in ("/holds", "/accounts/alice")]


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_page_renders_a_format_1_registry(site_v1, lang):
    http = site_v1.http
    for path in FORMAT_1_PATHS:
        assert f'<html lang="{HTML_LANG[lang]}">' in page(http, path, lang), path
    assert 'href="/holds"' not in page(http, "/", lang)  # format 1 has no holds
    response = http.get(with_lang("/holds", lang))
    assert response.status_code == 404 and response.headers["content-type"].startswith("text/html")
    totals = http.get("/v1/totals").json()
    assert grams(page(http, "/"), "issued") == totals["issued_g"]


def test_the_citizen_page_reads_a_format_1_pseudonym(site_v1):
    http = site_v1.http
    subject = json.loads(http.get("/v1/activities/act-0").json()["record"])["subject"]
    account = http.get(f"/v1/subjects/{subject}/account").json()
    html = me(http, pseudonyms=subject)
    assert grams(html, "me-total") == account["total_g"] and grams(html, "me-issued") == account["issued_g"]
    assert [r["activity_id"] for r in records_shown(html)] == sorted(r["activity_id"] for r in account["tables"]["records"])
    response = http.post("/me?lang=en", data={"activity_id": "act-0", "opening": "{}"})
    assert response.status_code == 422 and "have no opening" in response.text
