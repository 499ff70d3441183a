"""Reductions issued, moved and used from the command line (`puhui issue`, `transfer`, `retire`,
`cancel`, `surrender`, `claim`), run as an operator would (real processes, passphrases from the environment): against a
registry directory and a real `puhui serve`; repeats that hold write nothing, refusals are one line
with the spec's code and exit 1; --sign-only files posted with `puhui submit`."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import httpx
import pytest

from tests.api.served_registry import Served
from tests.test_cli_onboarding import experts_approve, init, log_size, open_registry, puhui

REPO = Path(__file__).resolve().parents[1]
INVENTORY = REPO / "examples" / "spring-market-inventory.json"
INVENTORY_G = 99_000  # 160 kWh * 525 g + 6 meals * 2500 g
BATCH = "t-metro-2026-04"
# Three rides of one person: 12 km and 10 km, 78.4 g/km, floored (HB-GT-METRO v1).
RIDES = [(1, "2026-04-06T00:30:00.000000Z", 12_000, "0201", "0210"),
         (2, "2026-04-06T10:30:00.000000Z", 10_000, "0210", "0205"),
         (3, "2026-04-07T00:30:00.000000Z", 12_000, "0201", "0210")]
BATCH_G = 940 + 784 + 940


def _with(*args: object) -> list[str]:
    return [str(a) for a in args]


def new_key(role: str, name: str, out: Path) -> None:
    """A key file unlocked by the tests' one passphrase (PUHUI_KEY_PASSPHRASE), whatever its role."""
    puhui("keys", "new", role, name, "--out", out, "--key-strength", "interactive")


@pytest.fixture(scope="module")
def reviewed(tmp_path_factory) -> Path:
    """A format-2 registry directory whose platform's batch BATCH a validator approved, with the
    platform's, the validator's and an enterprise's key files beside it."""
    root = tmp_path_factory.mktemp("credits")
    place = init(root / "registry")
    where = ["--dir", place]
    for role, name, file in (("platform", "wuhan-platform", "wuhan.key"), ("validator", "validation-centre", "validator.key"),
                             ("holder", "mall-co", "mall.key")):
        new_key(role, name, root / file)
    puhui("keys", "register", root / "validator.key", *where, "--signer-key", place / "keys" / "root.key")
    for file in ("wuhan.key", "mall.key"):
        puhui("keys", "register", root / file, *where)
    puhui("accounts", "open", "wuhan-platform", "--kind", "platform", "--name", "Wuhan", "--region", "420100",
          "--controller", root / "wuhan.key", *where)
    puhui("accounts", "open", "mall-co", "--kind", "enterprise", "--name", "Mall Co", "--region", "420100",
          "--controller", root / "mall.key", *where)
    puhui("methodologies", place, "--register")
    for kind in ("hub", "fingerprint"):
        puhui("keys", "new", kind, f"test-{kind}", "--out", root / f"{kind}.key", "--key-strength", "interactive")
    rides = root / "rides.jsonl"
    rides.write_text("".join(json.dumps({"activity_id": f"t-ride-{n}", "subject": "hub-person-0001", "occurred_at": at,
                                         "inputs": {"distance_m": m, "entry_station": a, "exit_station": b}}) + "\n"
                             for n, at, m, a, b in RIDES))
    puhui("ingest", place, rides, "--platform", "wuhan-platform", "--methodology", "HB-GT-METRO", "--platform-key",
          root / "wuhan.key", "--hub-key", root / "hub.key", "--fingerprint-key", root / "fingerprint.key",
          "--run-id", "t-metro", "--out", root / "run")
    puhui("review", "batch", BATCH, "--verdict", "approved", "--report", REPO / "examples" / "review-report.txt",
          "--signer-key", root / "validator.key", *where)
    return root


def copy_of(reviewed: Path, tmp_path: Path) -> Path:
    shutil.copytree(reviewed, tmp_path / "copy", symlinks=True)
    return tmp_path / "copy"


def issue_args(account: str = "wuhan-platform") -> list[str]:
    return _with("--account", account, "--methodology", "HB-GT-METRO", "--vintage", 2026, "--region", 420100,
                 "--batch", BATCH)


def test_issue_move_retire_claim_against_a_directory(reviewed, tmp_path):
    root = copy_of(reviewed, tmp_path)
    place, where = root / "registry", ["--dir", root / "registry"]
    wuhan, mall = ["--signer-key", root / "wuhan.key"], ["--signer-key", root / "mall.key"]

    assert (f"issued {BATCH_G} g (0.003 t) to wuhan-platform as iss-1 at seq"
            in puhui("issue", "iss-1", *issue_args(), *where).stdout)  # the batch's total, read from the log
    size = log_size(place)
    assert "issuance iss-1 is in the log already with these fields: nothing written" in puhui(
        "issue", "iss-1", *issue_args(), *where).stdout
    other = puhui("issue", "iss-1", *issue_args("mall-co"), *where, ok=False)
    assert "DUPLICATE_ID" in other.stderr and "account 'wuhan-platform'" in other.stderr
    again = puhui("issue", "iss-2", *issue_args(), *where, ok=False)  # the same batch twice
    assert "DOUBLE_ISSUANCE" in again.stderr and log_size(place) == size

    assert "transferred 2000 g (0.002 t) from wuhan-platform to mall-co at seq" in puhui(
        "transfer", "tr-1", "--from", "wuhan-platform", "--to", "mall-co", "--amount-g", 2000, "--issuance", "iss-1",
        *wuhan, *where).stdout
    size = log_size(place)
    assert "transfer tr-1 is in the log already with these fields: nothing written" in puhui(
        "transfer", "tr-1", "--from", "wuhan-platform", "--to", "mall-co", "--amount-g", 2000, "--issuance", "iss-1",
        *wuhan, *where).stdout
    short = puhui("transfer", "tr-2", "--from", "wuhan-platform", "--to", "mall-co", "--amount-g", 2000, *wuhan, *where,
                  ok=False)
    assert "NOT_HELD" in short.stderr
    unknown = puhui("transfer", "tr-2", "--from", "wuhan-platform", "--to", "mall-co", "--amount-g", 1,
                    "--issuance", "iss-9", *wuhan, *where, ok=False)
    assert "UNKNOWN_REF" in unknown.stderr
    not_theirs = puhui("transfer", "tr-2", "--from", "wuhan-platform", "--to", "mall-co", "--amount-g", 1, *mall, *where,
                       ok=False)
    assert "UNAUTHORIZED" in not_theirs.stderr and log_size(place) == size

    retire = ["--account", "mall-co", "--amount-g", 1500, "--purpose", "carbon_neutrality", "--beneficiary", "Spring market"]
    assert "retired 1500 g (0.002 t) from mall-co for carbon_neutrality at seq" in puhui(
        "retire", "ret-1", *retire, *mall, *where).stdout
    size = log_size(place)
    assert "nothing written" in puhui("retire", "ret-1", *retire, *mall, *where).stdout
    # A value no option takes cannot run (exit 2, docs/operations.md); a refusal by the rules is exit 1.
    assert "none of" in puhui("retire", "ret-2", *retire[:5], "gift", *retire[6:], *mall, *where, ok=False,
                              exit_code=2).stderr
    assert log_size(place) == size

    claim = ["--claimant", "mall-co", "--retirement", "ret-1", *mall, *where]
    wrong = puhui("claim", "claim-1", "--inventory", INVENTORY, "--subject-name", "Another event", *claim, ok=False,
                  exit_code=2)
    assert "not the inventory's" in wrong.stderr
    (root / "broken.json").write_text('{"subject": ')
    broken = puhui("claim", "claim-1", "--inventory", root / "broken.json", *claim, ok=False, exit_code=2)
    assert "is no inventory" in broken.stderr
    # The market's 99 kg are more than the 1.5 kg retired: the registry refuses, with the spec's code.
    assert "NEUTRALITY_SHORT" in puhui("claim", "claim-1", "--inventory", INVENTORY, *claim, ok=False).stderr
    by_hand = ["--subject-kind", "event", "--subject-name", "Spring market", "--from", "2026-04-18", "--to", "2026-04-19",
               "--footprint-g", 1400]
    assert "claim claim-1: Spring market neutral from 2026-04-18 to 2026-04-19, footprint 1400 g (0.001 t) at seq" in puhui(
        "claim", "claim-1", *by_hand, *claim).stdout
    size = log_size(place)
    assert "claim claim-1 is in the log already with these fields: nothing written" in puhui(
        "claim", "claim-1", *by_hand, *claim).stdout
    assert "DOUBLE_CLAIM" in puhui("claim", "claim-2", *by_hand, *claim, ok=False).stderr
    missing = puhui("claim", "claim-2", *by_hand[:-2], *claim, ok=False, exit_code=2)
    assert "--footprint-g" in missing.stderr and log_size(place) == size

    registry = open_registry(place)
    state = registry.state
    assert state.issuances["iss-1"].amount_g == BATCH_G and state.batches[BATCH].issuance_id == "iss-1"
    assert state.accounts["mall-co"].active.size_g == 500 and state.retirements["ret-1"].used_by == "claim-1"
    assert state.claims["claim-1"].footprint_g == 1400
    registry.close()


def test_against_a_running_server_and_signed_elsewhere(reviewed, tmp_path):
    root = copy_of(reviewed, tmp_path)
    place = root / "registry"
    served = Served(place).start()
    try:
        where = ["--server", served.url, "--trust", place / "trust.json"]
        mall = ["--signer-key", root / "mall.key"]

        def size() -> int:
            return len(httpx.get(f"{served.url}/v1/log", params={"start": 0, "limit": 1000}).json()["leaves"])

        # The admin signs on a laptop that never meets the registry; the file is posted later.
        signed = puhui("issue", "iss-1", *issue_args("mall-co"), "--sign-only", root / "issue.signed", *where,
                       "--signer-key", place / "keys" / "admin.key")
        assert (f"signed into {root / 'issue.signed'}, not submitted yet: issue {BATCH_G} g (0.003 t) to mall-co as "
                f"iss-1" in signed.stdout and "issued" not in signed.stdout)
        before = size()
        assert "issuance at seq" in puhui("submit", root / "issue.signed", *where).stdout
        assert "nothing written" in puhui("submit", root / "issue.signed", *where).stdout
        assert "nothing written" in puhui("issue", "iss-1", *issue_args("mall-co"), *where,
                                          "--signer-key", place / "keys" / "admin.key").stdout
        assert size() == before + 1
        alone = puhui("issue", "iss-2", *issue_args(), "--sign-only", root / "alone.signed", "--trust",
                      place / "trust.json", ok=False, exit_code=2)  # nothing to read the batches' total from
        assert "--amount-g" in alone.stderr and not (root / "alone.signed").exists()

        retire = ["--account", "mall-co", "--amount-g", INVENTORY_G // 100, "--purpose", "carbon_neutrality",
                  "--beneficiary", "Spring market", "--issuance", "iss-1"]
        assert "at seq" in puhui("retire", "ret-1", *retire, *mall, *where).stdout
        assert "nothing written" in puhui("retire", "ret-1", *retire, *mall, *where).stdout
        other = puhui("retire", "ret-1", *retire[:3], 1, *retire[4:], *mall, *where, ok=False)
        assert "DUPLICATE_ID" in other.stderr and "amount_g 990" in other.stderr
        claim = ["--claimant", "mall-co", "--subject-kind", "organization", "--subject-name", "Mall Co", "--from",
                 "2026-04-01", "--to", "2026-04-30", "--footprint-g", 990, "--retirement", "ret-1", *mall, *where]
        assert "claim claim-1: Mall Co neutral" in puhui("claim", "claim-1", *claim).stdout
        before = size()
        assert "nothing written" in puhui("claim", "claim-1", *claim).stdout
        assert "DOUBLE_CLAIM" in puhui("claim", "claim-2", *claim, ok=False).stderr
        assert size() == before
    finally:
        served.stop()


def test_a_format_1_log_chooses_no_issuances(tmp_path):
    place = init(tmp_path / "registry", "--log-format", 1)
    new_key("holder", "mall-co", tmp_path / "mall.key")
    where = ["--dir", place]
    puhui("keys", "register", tmp_path / "mall.key", *where)
    puhui("accounts", "open", "mall-co", "--kind", "enterprise", "--name", "Mall Co", "--region", "420100",
          "--controller", tmp_path / "mall.key", *where)
    puhui("methodologies", place, "--register")
    evidence = "ab" * 32
    issued = puhui("issue", "iss-1", "--account", "mall-co", "--methodology", "HB-GT-METRO", "--vintage", 2026,
                   "--region", 420100, "--evidence", evidence, "--amount-g", 5000, *where).stdout
    assert "issued 5000 g (0.005 t) to mall-co as iss-1 at seq" in issued
    no_amount = puhui("issue", "iss-2", "--account", "mall-co", "--methodology", "HB-GT-METRO", "--vintage", 2026,
                      "--region", 420100, "--evidence", evidence, *where, ok=False, exit_code=2)
    assert "--amount-g" in no_amount.stderr
    size = log_size(place)
    chosen = puhui("transfer", "tr-1", "--from", "mall-co", "--to", "mall-co", "--amount-g", 1, "--issuance", "iss-1",
                   "--signer-key", tmp_path / "mall.key", *where, ok=False, exit_code=2)
    assert "format-1" in chosen.stderr
    assert "retired 5000 g" in puhui("retire", "ret-1", "--account", "mall-co", "--amount-g", 5000, "--purpose",
                                     "voluntary", "--beneficiary", "Mall Co", "--signer-key", tmp_path / "mall.key",
                                     *where).stdout
    assert log_size(place) == size + 1


def test_an_admin_cancels_and_the_carbon_market_surrenders(reviewed, tmp_path):
    root = copy_of(reviewed, tmp_path)
    place, where = root / "registry", ["--dir", root / "registry"]
    steel = ["--signer-key", root / "steel.key"]
    experts_approve("HB-GT-METRO", where, root, place / "keys" / "root.key")  # ets_offset needs an eligible methodology
    puhui("eligibility", place, "HB-GT-METRO", "--on")
    new_key("ets", "hubei-ets", root / "ets.key")
    new_key("holder", "steel-co", root / "steel.key")
    for file in ("ets.key", "steel.key"):
        puhui("keys", "register", root / file, *where)
    puhui("accounts", "open", "steel-co", "--kind", "compliance_entity", "--name", "Steel Co", "--region", "420100",
          "--controller", root / "steel.key", *where)
    puhui("issue", "iss-1", *issue_args("steel-co"), *where)

    cancel = ["--account", "steel-co", "--amount-g", 100, "--reason", "court order 2026-17", "--issuance", "iss-1"]
    assert "cancelled 100 g (0.000 t) from steel-co at seq" in puhui("cancel", "can-1", *cancel, *where).stdout
    size = log_size(place)
    assert "cancellation can-1 is in the log already with these fields: nothing written" in puhui(
        "cancel", "can-1", *cancel, *where).stdout
    not_admin = puhui("cancel", "can-2", *cancel, *steel, *where, ok=False)  # a holder cancels nothing
    assert "UNAUTHORIZED" in not_admin.stderr
    signed = puhui("cancel", "can-2", *cancel, "--sign-only", root / "cancel.signed", *where)
    assert f"signed into {root / 'cancel.signed'}, not submitted yet: cancel 100 g (0.000 t) from steel-co" in signed.stdout
    assert log_size(place) == size
    assert "cancellation at seq" in puhui("submit", root / "cancel.signed", *where).stdout

    puhui("retire", "ret-1", "--account", "steel-co", "--amount-g", 1000, "--purpose", "ets_offset", "--beneficiary",
          "Steel Co 2026 compliance", *steel, *where)
    surrender = ["--entity", "steel-co", "--compliance-year", 2026, "--allocation-g", 1_000_000_000, "--retirement",
                 "ret-1"]
    by_market = ["--signer-key", root / "ets.key"]
    assert "UNAUTHORIZED" in puhui("surrender", "sur-1", *surrender, *where, ok=False).stderr  # the admin is no market
    assert "surrendered ret-1 of steel-co for 2026 at seq" in puhui("surrender", "sur-1", *surrender, *by_market,
                                                                    *where).stdout
    size = log_size(place)
    assert "surrender sur-1 is in the log already with these fields: nothing written" in puhui(
        "surrender", "sur-1", *surrender, *by_market, *where).stdout
    assert "DOUBLE_CLAIM" in puhui("surrender", "sur-2", *surrender, *by_market, *where, ok=False).stderr
    assert "--retirement" in puhui("surrender", "sur-2", *surrender[:-2], *by_market, *where, ok=False,
                                   exit_code=2).stderr
    assert log_size(place) == size

    registry = open_registry(place)
    state = registry.state
    assert {"can-1", "can-2"} <= state.cancellations and state.retirements["ret-1"].used_by == "sur-1"
    assert state.accounts["steel-co"].active.size_g == BATCH_G - 200 - 1000
    registry.close()
