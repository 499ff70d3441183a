"""Check it yourself, in a real browser: Debian's headless chromium, driven over the DevTools
protocol (tests/pages/cdp.py), against `puhui serve` processes on 127.0.0.1.

The receipt check passes on a real receipt and fails, visibly, on a flipped proof byte and on a
checkpoint signed by another key; the remembered checkpoint warns when a registry with a rewritten
history is served behind the same URL to the same browser profile; the pinned trust file warns when
the served one changes; axe-core finds no serious or critical violation on any page. Screenshots
at 1280 and 360 px go to the test's tmp folder, and also to $PUHUI_SCREENSHOT_DIR when it is set
(the README's come from there)."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
from pathlib import Path
from typing import Any, Callable, Iterator, NamedTuple

import httpx
import pytest
from nacl.signing import SigningKey

from cdp import Browser, png_size
from ledger import merkle
from ledger.note import key_hash, verifier_key
from page_history import (  # puts tests/api, served_registry's folder, on the path
    CITIZEN_RIDES, PLATFORM, citizen_opening, platform_with_issuance,
)
from served_registry import SERVED_ORIGIN, Cast, Served, init_registry_dir
from service.client import RegistryClient
from world import actor

CHROMIUM = shutil.which("chromium")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed "
                                "(apt-get install -y chromium): no browser checks")
WIDTHS_PX = (1280, 360)
AXE = Path(__file__).resolve().parent / "vendor" / "axe-core" / "axe.min.js"
AXE_SHA256 = "29348999450cdf2849a8e70b7912fc2da85a849da39c0d0d5394f51d4a9ed95c"  # as vendor/axe-core/README.md
BLOCKING_IMPACTS = ("serious", "critical")
SCREENSHOTS = os.environ.get("PUHUI_SCREENSHOT_DIR")
README_HEIGHT_PX = 820  # the README's screenshots show the first screen of a page, to stay small


class Registries(NamedTuple):
    """`served` holds the real history; `rewritten` began as a copy of it (same keys, same origin)
    and then took other events: a log rewritten after its prefix. `stranger` has keys of its own."""
    served: Served
    rewritten: Served
    stranger: Served
    retirement_seq: int


def retire(server: Served, retirement_id: str, amount_g: int, beneficiary: str) -> int:
    """A retirement by page_history's platform; its seq."""
    client = RegistryClient(server.url, trust=server.trust())
    return client.retire(actor("wuhan").signer, retirement_id, PLATFORM, amount_g, "voluntary", beneficiary,
                         prove=False).seq


def sign_up_to(server: Served, seq: int) -> None:
    """A checkpoint covering `seq`: the receipt route signs one if none does."""
    httpx.get(f"{server.url}/v1/receipts/{seq}", timeout=30).raise_for_status()


@pytest.fixture(scope="module")
def registries(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registries]:
    base = tmp_path_factory.mktemp("check")
    served = Served(init_registry_dir(base / "served" / "registry", log_format=2))
    started: list[Served] = []
    try:
        started.append(served.start())
        platform_with_issuance(served)
        served.stop()
        (base / "rewritten").mkdir()
        shutil.copytree(served.directory, base / "rewritten" / "registry")
        rewritten = Served(base / "rewritten" / "registry")
        started.append(served.start())
        retirement_seq = retire(served, "ret-0", 600_000, "公众 0")
        sign_up_to(served, retirement_seq)

        started.append(rewritten.start())
        for n in range(3):  # longer than the real log, so that the browser asks for a consistency proof
            sign_up_to(rewritten, retire(rewritten, f"ret-rewritten-{n}", 1_000 + n, "改写"))
        rewritten.stop()
        rewritten.port = served.port  # behind the same URL, when its turn comes

        stranger = Served(init_registry_dir(base / "stranger" / "registry", log_format=2))
        started.append(stranger.start())
        stranger_cast = Cast(RegistryClient(stranger.url, trust=stranger.trust()))
        stranger_cast.register(stranger_cast.wuhan, ["platform"])
        sign_up_to(stranger, 1)
        stranger.stop()
        stranger.port = served.port
        yield Registries(served, rewritten, stranger, retirement_seq)
    finally:
        for server in started:
            server.stop()


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Browser]:
    assert CHROMIUM is not None
    with Browser(CHROMIUM, tmp_path / "profile") as opened:
        yield opened


def shoot(browser: Browser, folder: Path, name: str, widths_px: tuple[int, ...] = WIDTHS_PX,
          full_page: bool = True) -> None:
    """The page at each width, into the test's folder and $PUHUI_SCREENSHOT_DIR."""
    for width_px in widths_px:
        browser.size(width_px, README_HEIGHT_PX)
        shot = folder / f"{name}-{width_px}.png"
        browser.screenshot(shot, full_page)
        assert png_size(shot)[0] == width_px, shot
        if SCREENSHOTS:
            Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
            shutil.copy(shot, Path(SCREENSHOTS) / shot.name)
    browser.size(WIDTHS_PX[0])


def outcome(browser: Browser) -> str:
    return browser.wait_for("(s => s !== 'pending' && s)(document.getElementById('outcome').dataset.verification)")


def steps(browser: Browser) -> dict[str, str]:
    return browser.eval("Object.fromEntries([...document.querySelectorAll('#steps li')]"
                        ".map(li => [li.dataset.step, li.dataset.result]))")


def state_of(browser: Browser, element_id: str, attribute: str) -> str:
    return browser.wait_for(f"(s => s !== 'pending' && s)(document.getElementById('{element_id}')"
                            f".getAttribute('{attribute}'))")


def paste_receipt(browser: Browser, receipt: Any) -> str:
    browser.eval(f"document.getElementById('receipt-input').value = {json.dumps(json.dumps(receipt))};"
                 "document.querySelector('#receipt-form button').click()")
    return outcome(browser)


def flip_a_proof_byte(receipt: dict[str, Any]) -> dict[str, Any]:
    first = receipt["inclusion"]["hashes"][0]
    flipped = f"{int(first[:2], 16) ^ 0x01:02x}{first[2:]}"
    return {**receipt, "inclusion": {**receipt["inclusion"], "hashes": [flipped, *receipt["inclusion"]["hashes"][1:]]}}


def sign_with_another_key(receipt: dict[str, Any]) -> dict[str, Any]:
    """The same checkpoint text, signed under the log's name by a key that is not the log key."""
    note = receipt["checkpoint"]
    text = note[:note.index("\n\n") + 1]
    name = text.split("\n", 1)[0]
    key = SigningKey.generate()
    public = bytes(key.verify_key)
    key_hash = hashlib.sha256(name.encode() + b"\n\x01" + public).digest()[:4]
    line = f"\u2014 {name} {base64.b64encode(key_hash + key.sign(text.encode()).signature).decode()}\n"
    return {**receipt, "checkpoint": f"{text}\n{line}"}


def unchanged(receipt: dict[str, Any]) -> dict[str, Any]:
    return receipt


# -- check.js against ledger/ -------------------------------------------------------------------------------

VECTOR_MAX_SIZE = 24


def merkle_vectors() -> dict[str, Any]:
    """Every inclusion proof and consistency proof of trees up to VECTOR_MAX_SIZE leaves, as ledger/
    computes them, with a wrong hash in each proof beside; and verifier keys whose base64 holds a "+"."""
    leaves = [merkle.leaf_hash(f"leaf {n}".encode()) for n in range(VECTOR_MAX_SIZE)]
    nodes = merkle.MemoryNodes(leaves)
    roots = [merkle.root(nodes, size).hex() for size in range(VECTOR_MAX_SIZE + 1)]
    inclusions = [{"index": index, "size": size, "leaf": leaves[index].hex(), "root": roots[size],
                   "proof": [h.hex() for h in merkle.inclusion_proof(nodes, index, size)]}
                  for size in range(1, VECTOR_MAX_SIZE + 1) for index in range(size)]
    consistencies = [{"first": first, "second": second, "first_root": roots[first], "second_root": roots[second],
                      "proof": [h.hex() for h in merkle.consistency_proof(nodes, first, second)]}
                     for second in range(1, VECTOR_MAX_SIZE + 1) for first in range(1, second + 1)]
    keys = []
    for seed in range(64):
        public = bytes(SigningKey(hashlib.sha256(bytes([seed])).digest()).verify_key)
        keys.append({"text": verifier_key(SERVED_ORIGIN, public), "hash": key_hash(SERVED_ORIGIN, 0x01, public).hex()})
    assert any("+" in key["text"].split("+", 2)[2] for key in keys)  # the case a split on "+" gets wrong
    return {"inclusions": inclusions, "consistencies": consistencies, "keys": keys}


CHECK_VECTORS = """async (vectors) => {
  const check = await import('/static/check.js');
  const bytes = (hex) => check.hashOfHex(hex, 'vector');
  const flip = (hex) => (parseInt(hex[0], 16) ^ 8).toString(16) + hex.slice(1);
  const wrong = [];
  for (const v of vectors.inclusions) {
    const root = check.hexOf(await check.rootOfInclusion(bytes(v.leaf), BigInt(v.index), BigInt(v.size), v.proof.map(bytes)));
    if (root !== v.root) wrong.push(['inclusion', v.index, v.size]);
    if (v.proof.length) {
      const tampered = check.hexOf(await check.rootOfInclusion(bytes(v.leaf), BigInt(v.index), BigInt(v.size),
                                                                [flip(v.proof[0]), ...v.proof.slice(1)].map(bytes)));
      if (tampered === v.root) wrong.push(['tampered inclusion', v.index, v.size]);
    }
  }
  for (const v of vectors.consistencies) {
    const args = [BigInt(v.first), BigInt(v.second), bytes(v.first_root), bytes(v.second_root)];
    if (!(await check.consistent(...args, v.proof.map(bytes)))) wrong.push(['consistency', v.first, v.second]);
    if (v.proof.length && await check.consistent(...args, [flip(v.proof[0]), ...v.proof.slice(1)].map(bytes))) {
      wrong.push(['tampered consistency', v.first, v.second]);
    }
    if (v.first < v.second && await check.consistent(args[0], args[1], bytes(flip(v.first_root)), args[3], v.proof.map(bytes))) {
      wrong.push(['other first root', v.first, v.second]);
    }
  }
  for (const k of vectors.keys) {
    const key = await check.parseVerifierKey(k.text);
    if (check.hexOf(key.keyHash) !== k.hash || key.statedHashHex !== k.hash) wrong.push(['key', k.text]);
  }
  return wrong;
}"""


def test_the_browser_check_agrees_with_ledger_on_every_small_tree(registries, browser):
    """check.js's RFC 9162 proofs and key hashes against ledger/'s, in chromium: a mistake in the
    bit twiddling shows on some index of some size, as a key string split at its base64's "+" did."""
    browser.goto(f"{registries.served.url}/verify")
    assert browser.eval(f"({CHECK_VECTORS})({json.dumps(merkle_vectors())})") == []


# -- the receipt ------------------------------------------------------------------------------------------

def test_a_real_receipt_passes_every_step_in_the_browser(registries, browser, tmp_path):
    url = f"{registries.served.url}/receipts/{registries.retirement_seq}"
    browser.goto(url)
    assert outcome(browser) == "passed"
    assert steps(browser) == dict.fromkeys(("format", "leaf-hash", "inclusion", "log-key", "signature"), "passed")
    computed = browser.eval("[...document.querySelectorAll('#steps li[data-step=leaf-hash] code')].map(c => c.textContent)")
    assert computed == [browser.eval("document.getElementById('leaf-hash').textContent")]
    assert browser.eval("document.getElementById('outcome').getAttribute('role')") == "status"
    assert state_of(browser, "trust-status", "data-trust") == "first"
    shoot(browser, tmp_path, "receipt-passed")
    browser.goto(url + "?lang=en")
    assert outcome(browser) == "passed" and state_of(browser, "trust-status", "data-trust") == "same"
    assert "Verified" in browser.eval("document.getElementById('outcome').textContent")


@pytest.mark.parametrize("tamper, result, failing_step", [
    (unchanged, "passed", None), (flip_a_proof_byte, "failed", "inclusion"),
    (sign_with_another_key, "failed", "signature")])
def test_a_pasted_receipt_is_checked_step_by_step(registries, browser, tmp_path, tamper: Callable, result: str,
                                                 failing_step: str | None):
    receipt = httpx.get(f"{registries.served.url}/v1/receipts/{registries.retirement_seq}", timeout=30).json()
    browser.goto(f"{registries.served.url}/verify")
    assert paste_receipt(browser, tamper(receipt)) == result
    failed = [step for step, outcome_of_step in steps(browser).items() if outcome_of_step == "failed"]
    assert failed == ([failing_step] if failing_step else [])
    if failing_step:  # loudly: an alert, in the alarm's colours
        assert browser.eval("document.getElementById('outcome').getAttribute('role')") == "alert"
        assert browser.eval("document.getElementById('outcome').classList.contains('alarm')")
        shoot(browser, tmp_path, f"receipt-{tamper.__name__}")


def test_a_pasted_text_that_is_not_json_fails_visibly(registries, browser):
    browser.goto(f"{registries.served.url}/verify?lang=en")
    browser.eval("document.getElementById('receipt-input').value = '{not json';"
                 "document.querySelector('#receipt-form button').click()")
    assert outcome(browser) == "failed"
    assert "not JSON" in browser.eval("document.getElementById('outcome').textContent")


# -- what the browser remembers ---------------------------------------------------------------------------

def swap(running: Served, standby: Served) -> None:
    """Another registry behind the same URL: the browser's profile (its local storage) stays."""
    running.stop()
    standby.start()


def test_a_rewritten_log_behind_the_same_url_is_caught(registries, browser, tmp_path):
    served, rewritten = registries.served, registries.rewritten
    browser.goto(f"{served.url}/verify")
    assert state_of(browser, "consistency", "data-consistency") == "first"
    sign_up_to(served, retire(served, "ret-grown", 1_000, "公众"))
    browser.goto(f"{served.url}/verify")
    assert state_of(browser, "consistency", "data-consistency") == "passed"  # a real proof, the log grew
    remembered = browser.eval("localStorage.getItem('puhui.checkpoint.v1')")
    swap(served, rewritten)
    try:
        browser.goto(f"{rewritten.url}/verify")
        assert state_of(browser, "consistency", "data-consistency") == "failed"
        assert browser.eval("document.getElementById('consistency').getAttribute('role')") == "alert"
        assert state_of(browser, "trust-status", "data-trust") == "same"  # same keys: only the proof tells
        assert browser.eval("localStorage.getItem('puhui.checkpoint.v1')") == remembered  # the warning stays
        shoot(browser, tmp_path, "verify-rewritten")
        browser.goto(f"{rewritten.url}/verify")
        assert state_of(browser, "consistency", "data-consistency") == "failed"
    finally:
        swap(rewritten, served)


def test_pinning_warns_when_the_served_trust_file_changes(registries, browser, tmp_path):
    served, stranger = registries.served, registries.stranger
    browser.goto(f"{served.url}/receipts/0")
    assert outcome(browser) == "passed" and state_of(browser, "trust-status", "data-trust") == "first"
    swap(served, stranger)
    try:
        browser.goto(f"{stranger.url}/receipts/1")
        assert state_of(browser, "trust-status", "data-trust") == "changed"
        assert browser.eval("document.getElementById('trust-status').getAttribute('role')") == "alert"
        assert outcome(browser) == "failed"  # checked with the pinned log key, not the served one
        assert [step for step, result in steps(browser).items() if result == "failed"] == ["signature"]
        shoot(browser, tmp_path, "receipt-trust-changed")
        browser.goto(f"{stranger.url}/verify")
        assert state_of(browser, "consistency", "data-consistency") == "failed"  # not signed by the pinned key
        # The reader pastes the operator's published trust file: the check passes with it.
        browser.goto(f"{stranger.url}/receipts/1")
        browser.eval(f"document.getElementById('trust-input').value = {json.dumps(json.dumps(stranger.trust()))};"
                     "document.querySelector('#trust-form button').click()")
        browser.wait_for("document.getElementById('trust-form-status').textContent")
        assert outcome(browser) == "passed"
        browser.goto(f"{stranger.url}/receipts/1")
        assert state_of(browser, "trust-status", "data-trust") == "same" and outcome(browser) == "passed"
    finally:
        swap(stranger, served)


# -- the citizen's page -------------------------------------------------------------------------------------

RECORD_STEPS = ("record-shown", "record-hash", "record-inclusion", "format", "leaf-hash", "inclusion", "log-key", "signature")


def citizen_pseudonyms(server: Served) -> list[str]:
    return list(dict.fromkeys(json.loads(httpx.get(f"{server.url}/v1/activities/{ride.activity_id}", timeout=30)
                                         .json()["record"])["subject"] for ride in CITIZEN_RIDES))


def submit_form(browser: Browser, form_id: str, fields: dict[str, str]) -> None:
    """Fill a form's fields and submit it as a reader would (a POST), then wait for the answer."""
    fill = "".join(f"document.getElementById({json.dumps(k)}).value = {json.dumps(v)};" for k, v in fields.items())
    browser.eval(f"window.submitted = true; {fill} document.getElementById({json.dumps(form_id)}).requestSubmit()")
    browser.wait_for("!window.submitted && document.readyState === 'complete' && document.getElementById('results') !== null")


def record_results(browser: Browser) -> list[dict[str, Any]]:
    """Each record's outcome and its steps' results, once every record is checked."""
    return browser.wait_for("""(r => r.every(x => x.outcome !== 'pending') && r)([...document.querySelectorAll('article.record')]
        .map(a => ({activity: a.dataset.activity, outcome: a.querySelector('.record-outcome').dataset.verification,
                    alarm: a.querySelector('.record-outcome').classList.contains('alarm'),
                    steps: Object.fromEntries([...a.querySelectorAll('ol.steps li')].map(li => [li.dataset.step, li.dataset.result]))})))""")


def test_the_citizen_page_shows_real_records_with_passing_proofs(registries, browser, tmp_path):
    url = registries.served.url
    pseudonyms = citizen_pseudonyms(registries.served)
    browser.goto(f"{url}/me")
    submit_form(browser, "pseudonyms-form", {"pseudonyms": "\n".join(pseudonyms)})
    assert outcome(browser) == "passed"
    assert record_results(browser) == [{"activity": ride.activity_id, "outcome": "passed", "alarm": False,
                                        "steps": dict.fromkeys(RECORD_STEPS, "passed")} for ride in CITIZEN_RIDES]
    assert browser.eval("location.pathname + location.search") == "/me?lang=zh"  # the pseudonyms went in the body
    assert not any(p in browser.eval("performance.getEntriesByType('navigation')[0].name") for p in pseudonyms)
    shoot(browser, tmp_path, "me-passed")
    for width_px in WIDTHS_PX:
        browser.size(width_px)
        assert [v for v in axe_violations(browser) if v["impact"] in BLOCKING_IMPACTS] == [], width_px
    browser.goto(f"{url}/me?lang=en")
    submit_form(browser, "opening-form", {"activity-id": "me-1", "opening": json.dumps(citizen_opening())})
    assert outcome(browser) == "passed" and [r["outcome"] for r in record_results(browser)] == ["passed"]
    assert "L4-12" in browser.eval("document.querySelector('dl.opened').textContent")


def load_tampered(browser: Browser, url: str, html: str) -> None:
    """A page's HTML, tampered with, as a document of the server's origin (its scripts load from the
    server, its local storage is the reader's): what a lying or hijacked server could serve."""
    browser.goto(f"{url}/claims/nope")  # a page of the origin with no script of its own
    browser.eval(f"document.open(); document.write({json.dumps(html)}); document.close()")
    browser.wait_for("document.getElementById('outcome') !== null")


def with_proofs(html: str, change: Callable[[list[dict[str, Any]]], None]) -> str:
    found = re.search(r'(<script type="application/json" id="record-proofs">)(.*?)(</script>)', html, re.S)
    proofs = json.loads(found.group(2))
    change(proofs)
    return html[:found.start(2)] + json.dumps(proofs).replace("<", "\\u003c") + html[found.end(2):]


def flip_a_record_proof_byte(html: str) -> str:
    def flip(proofs: list[dict[str, Any]]) -> None:
        first = proofs[0]["inclusion"]["hashes"]
        first[0] = f"{int(first[0][:2], 16) ^ 0x01:02x}{first[0][2:]}"
    return with_proofs(html, flip)


def claim_more_grams(html: str) -> str:
    """The page says the first ride earned ten times what its record holds."""
    return re.sub(r'(data-activity="me-1" data-g=")(\d+)"', lambda m: f'{m.group(1)}{int(m.group(2)) * 10}"', html, count=1)


def swap_in_another_record(html: str) -> str:
    """The first ride's proof carries bytes that claim more grams: its hash is no leaf of the batch."""
    def inflate(proofs: list[dict[str, Any]]) -> None:
        record = json.loads(proofs[0]["record"])
        proofs[0]["record"] = proofs[0]["record"].replace(f'"reduction_g":{record["reduction_g"]}',
                                                          f'"reduction_g":{record["reduction_g"] * 10}')
    return claim_more_grams(with_proofs(html, inflate))


@pytest.mark.parametrize("tamper, failing_steps", [
    (flip_a_record_proof_byte, ["record-inclusion"]), (claim_more_grams, ["record-shown"]),
    (swap_in_another_record, ["record-inclusion"])])
def test_a_tampered_record_fails_visibly(registries, browser, tmp_path, tamper: Callable, failing_steps: list[str]):
    url = registries.served.url
    answer = httpx.post(f"{url}/me?lang=en", data={"pseudonyms": "\n".join(citizen_pseudonyms(registries.served))},
                        timeout=30)
    load_tampered(browser, url, answer.text)  # untampered first: the way of loading it is not what fails
    assert outcome(browser) == "passed"
    load_tampered(browser, url, tamper(answer.text))
    assert outcome(browser) == "failed"
    assert browser.eval("document.getElementById('outcome').getAttribute('role')") == "alert"
    results = record_results(browser)
    assert [r["outcome"] for r in results] == ["failed", "passed", "passed"] and results[0]["alarm"]
    assert [step for step, result in results[0]["steps"].items() if result == "failed"] == failing_steps
    assert "FAILED" in browser.eval("document.querySelector('article.record .record-outcome').textContent")
    shoot(browser, tmp_path, f"me-{tamper.__name__}")


# -- accessibility ------------------------------------------------------------------------------------------

def test_the_vendored_axe_core_is_the_pinned_one():
    assert hashlib.sha256(AXE.read_bytes()).hexdigest() == AXE_SHA256
    readme = (AXE.parent / "README.md").read_text()
    assert AXE_SHA256 in readme and "4.14.1" in readme and AXE.read_text()[:40].startswith("/*! axe v4.14.1")


def axe_violations(browser: Browser) -> list[dict[str, Any]]:
    """axe-core's violations of WCAG 2.1 A and AA and its best practices on the page: rule, impact, where."""
    if not browser.eval("typeof axe !== 'undefined'"):
        browser.eval(AXE.read_text())
    return browser.eval("""axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice']}})
        .then(r => r.violations.map(v => ({rule: v.id, impact: v.impact, help: v.help,
                                            targets: v.nodes.slice(0, 3).map(n => n.target.join(' '))})))""")


AXE_PAGES = ("/", "/?lang=en", "/issuances", "/retirements", "/surrenders", "/claims", "/methodologies",
             "/methodologies/HB-GT-METRO", "/accounts/wuhan-platform", "/serials", "/serials/1200000",
             "/claims/nope", "/receipts/{seq}", "/receipts/{seq}?lang=en", "/verify", "/verify?lang=en",
             "/holds", "/holds?lang=en", "/me", "/me?lang=en")  # /me's answer: test_the_citizen_page_shows_real_records


@pytest.mark.parametrize("width_px", WIDTHS_PX)
def test_no_page_has_a_serious_accessibility_violation(registries, browser, width_px):
    browser.size(width_px)
    found = {}
    for path in AXE_PAGES:
        browser.goto(registries.served.url + path.format(seq=registries.retirement_seq))
        if path.startswith(("/receipts", "/verify")):
            browser.wait_for("document.querySelector('[data-verification], [data-consistency]') &&"
                             " !document.querySelector('[data-consistency=pending]')")
        blocking = [v for v in axe_violations(browser) if v["impact"] in BLOCKING_IMPACTS]
        if blocking:
            found[path] = blocking
    assert not found, json.dumps(found, ensure_ascii=False, indent=1)
    # The check itself sees: an image without a text and a nameless button are critical.
    browser.eval("document.querySelector('main').insertAdjacentHTML('beforeend', '<img src=\"/static/none.png\"><button></button>')")
    assert {"image-alt", "button-name"} <= {v["rule"] for v in axe_violations(browser) if v["impact"] == "critical"}


def test_home_and_a_passed_receipt_for_the_readme(registries, browser, tmp_path):
    """docs/images/readme-home-1280.png and readme-receipt-1280.png are these, copied from $PUHUI_SCREENSHOT_DIR."""
    browser.goto(f"{registries.served.url}/")
    shoot(browser, tmp_path, "readme-home", (1280,), full_page=False)
    browser.goto(f"{registries.served.url}/receipts/{registries.retirement_seq}")
    assert outcome(browser) == "passed"
    shoot(browser, tmp_path, "readme-receipt", (1280,), full_page=False)
    assert re.fullmatch(r"[0-9a-f]{64}", browser.eval("document.getElementById('leaf-hash').textContent"))
