"""The public pages (api/pages.py) over the test World: every page renders in both languages with
the API's numbers; filters, pagination and CSV agree with the API; unknown ids answer a 404 page,
bad filters a 422 page; hostile strings are escaped."""

from __future__ import annotations

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

import pytest

warnings.filterwarnings("ignore", message=".*httpx.*starlette.testclient.*")
from starlette.testclient import TestClient  # noqa: E402

from api import pages  # noqa: E402
from api.app import create_app  # noqa: E402
from api.page_text import LANGUAGES, MESSAGES  # noqa: E402
from quantify.methodology import load_shipped, register_body  # noqa: E402
from world import World  # noqa: E402

HOSTILE = '<script>alert("x")</script>'
FORMULA = '=HYPERLINK("http://attacker.example","click")'
PAGE_PATHS = ["/", "/issuances", "/retirements", "/surrenders", "/claims", "/claims/claim-1", "/accounts/mall-co",
              "/methodologies", "/methodologies/HB-GT-METRO", "/methodologies/HB-ES-NEVCHARGE", "/serials",
              "/serials/2250", "/receipts/0", "/receipts/5", "/verify"]
NAV = {"zh": ("首页", "签发", "碳中和声明"), "en": ("Home", "Issuances", "Neutrality claims")}


class Site(NamedTuple):
    world: World
    http: TestClient


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    """The World's history, with a hostile account name and beneficiary, served in process."""
    world = World(f"sqlite:///{tmp_path / 'registry.sqlite3'}").setup().history()
    world.client.open_account(world.admin, "hostile", "enterprise", HOSTILE, "420100", [world.bob])
    world.client.retire(world.mall, "ret-hostile", "mall-co", 10, "voluntary", HOSTILE)
    world.client.retire(world.mall, "ret-formula", "mall-co", 10, "voluntary", FORMULA)
    world.client.submit(world.admin, "methodology.register", register_body(load_shipped().get("HB-ES-NEVCHARGE")))
    try:
        with TestClient(create_app(world.registry, checkpoint_interval_s=0.05)) as http:
            deadline = time.monotonic() + 10
            while http.get("/v1/checkpoint").status_code != 200 and time.monotonic() < deadline:
                time.sleep(0.05)
            yield Site(world, http)
    finally:
        world.registry.close()


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
    ("/surrenders", "/v1/surrenders", {}), ("/surrenders", "/v1/surrenders", {"compliance_year": "2025"}),
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
        assert row["serials"] == ";".join(f"{start}-{end}" for start, end in retirement["serials"])


def test_methodology_page_shows_the_api_methodology(http):
    html = page(http, "/methodologies/HB-GT-METRO")
    methodology = http.get("/v1/methodologies/HB-GT-METRO").json()
    assert f'id="latest-version">{methodology["latest_version"]}<' in html
    assert methodology["title"] in html and '"g_per_km": "78.4"' in unescape(html)


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

@pytest.mark.parametrize("path", ["/claims/nope", "/accounts/nope", "/methodologies/nope", "/serials/999999999",
                                  "/receipts/999999999"])
def test_unknown_ids_answer_a_404_page(http, path):
    response = http.get(with_lang(path, "zh"))
    assert response.status_code == 404 and response.headers["content-type"].startswith("text/html")
    assert "未找到" in response.text


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
