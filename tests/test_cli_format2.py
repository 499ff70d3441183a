"""Format 2 from the command line, run as an operator would (real processes, passphrases from the
environment): validators' and experts' keys granted by root, `puhui review`, `puhui reviews`,
`puhui hold`, `eligibility --version`, against a directory and a real `puhui serve`; refusals in
one line with the spec's code. And the whole path of a citizen's act: `puhui init`, the scheme's
keys, a format-2 ingestion, a validator's review, an issuance, an export that `puhui-verify
--require-activities` finds VALID, and `puhui account` over the person's daily pseudonyms with
every record's proof and opening checked."""

from __future__ import annotations

import json
import subprocess
import sys

from keys import load_key
from service.actors import Actor, Client
from service.registry_dir import RegistryDir
from tests.api.served_registry import PASSPHRASE, Served
from tests.test_cli_onboarding import REPO, experts_approve, init, log_size, new_key, open_registry, puhui

DAY = "2026-04-07"


def register_by_root(place, key_file, *where) -> None:
    puhui("keys", "register", key_file, *(where or ("--dir", place)), "--signer-key", place / "keys" / "root.key")


def test_reviews_eligibility_and_holds_against_a_directory(tmp_path):
    place = init(tmp_path / "reg")
    assert "log format 2" in puhui("status", place).stdout
    where = ["--dir", place]
    validator = new_key("validator", "hubei-vb", tmp_path / "vb.key")
    # Validator and expert are granted by root alone (spec section 6): the admin is refused, and nothing is written.
    size = log_size(place)
    by_admin = puhui("keys", "register", tmp_path / "vb.key", *where, ok=False)
    assert "UNAUTHORIZED" in by_admin.stderr and log_size(place) == size
    register_by_root(place, tmp_path / "vb.key")
    puhui("methodologies", place, "--register")
    report = tmp_path / "report.txt"
    report.write_text("the panel's report\n")

    unreviewed = puhui("eligibility", place, "HB-GT-METRO", "--on", ok=False)
    assert "UNREVIEWED" in unreviewed.stderr
    wrong_role = puhui("review", "methodology", "HB-GT-METRO", "--verdict", "approved", "--report", report, *where,
                       "--signer-key", tmp_path / "vb.key", ok=False)
    assert "UNAUTHORIZED" in wrong_role.stderr and log_size(place) == size + 1 + 12
    experts_approve("HB-GT-METRO", where, tmp_path, place / "keys" / "root.key")
    shown = json.loads(puhui("reviews", "methodology", "HB-GT-METRO", *where, "--json").stdout)
    assert shown["target"] == {"kind": "methodology", "id": "HB-GT-METRO", "version": 1}
    assert (shown["quorum"], shown["approving_keys"], shown["met"]) == (2, 2, True)
    assert "eligibility quorum met" in puhui("reviews", "methodology", "HB-GT-METRO", *where).stdout
    assert "HB-GT-METRO v1: offset eligible on at seq" in puhui("eligibility", place, "HB-GT-METRO", "--on").stdout
    assert "on already: nothing written" in puhui("eligibility", place, "HB-GT-METRO", "--on").stdout
    # Per version: BUS v2 is the latest; v1, never reviewed, is refused on its own.
    assert "UNREVIEWED" in puhui("eligibility", place, "HB-GT-BUS", "--on", "--version", "1", ok=False).stderr
    assert "no version 3" in puhui("eligibility", place, "HB-GT-BUS", "--on", "--version", "3", ok=False).stderr
    registry = open_registry(place)
    assert registry.state.methodologies["HB-GT-METRO"].versions[1]["offset_eligible"] is True
    registry.close()

    # A rejection by a counting key keeps the quorum from being met, whatever the approvals.
    puhui("review", "methodology", "HB-GT-CYCLE", "--verdict", "approved", "--report", report, *where,
          "--signer-key", tmp_path / "expert-1.key")
    puhui("review", "methodology", "HB-GT-CYCLE", "--verdict", "rejected", "--report", report, *where,
          "--signer-key", tmp_path / "expert-2.key", "--review-id", "panel-no")
    size = log_size(place)
    assert "nothing written" in puhui("review", "methodology", "HB-GT-CYCLE", "--verdict", "rejected", "--report",
                                      report, *where, "--signer-key", tmp_path / "expert-2.key",
                                      "--review-id", "panel-no").stdout
    assert log_size(place) == size
    cycle = json.loads(puhui("reviews", "methodology", "HB-GT-CYCLE", *where, "--json").stdout)
    assert cycle["target"]["version"] == 2 and cycle["rejected"] and not cycle["met"]
    assert "UNREVIEWED" in puhui("eligibility", place, "HB-GT-CYCLE", "--on", ok=False).stderr
    # One key counts once per target: its second approval is listed, and says it adds nothing.
    puhui("review", "methodology", "HB-GT-CYCLE", "--verdict", "approved", "--report", report, *where,
          "--signer-key", tmp_path / "expert-1.key", "--review-id", "panel-yes-again")
    again = json.loads(puhui("reviews", "methodology", "HB-GT-CYCLE", *where, "--json").stdout)
    first_seq = next(r["seq"] for r in again["reviews"] if r["verdict"] == "approved")
    assert [r["counts"] for r in again["reviews"] if r["review_id"] == "panel-yes-again"] == [
        f"no: its key counted once already (seq {first_seq})"]
    assert again["approving_keys"] == 1

    nothing = puhui("review", "batch", "no-such-batch", "--verdict", "approved", "--report", report, *where,
                    "--signer-key", tmp_path / "vb.key", ok=False)
    assert "UNKNOWN_REF" in nothing.stderr
    assert "none of" in puhui("review", "batch", "b", "--verdict", "maybe", "--report", report, *where, ok=False,
                              exit_code=2).stderr
    assert "none of" in puhui("review", "site", "b", "--verdict", "approved", "--report", report, *where,
                              ok=False, exit_code=2).stderr

    holder = new_key("holder", "steel", tmp_path / "steel.key")
    puhui("keys", "register", tmp_path / "steel.key", *where)
    puhui("accounts", "open", "steel-co", "--kind", "compliance_entity", "--name", "Steel works", "--region", "420100",
          "--controller", holder, *where)
    assert "case C-1 on account steel-co opened at seq" in puhui("hold", "steel-co", "C-1", "--reason", "court order",
                                                                 *where).stdout
    size = log_size(place)
    assert "case C-1 is open on account steel-co already: nothing written" in puhui(
        "hold", "steel-co", "C-1", "--reason", "court order", *where).stdout
    assert log_size(place) == size
    registry = open_registry(place)
    assert registry.state.open_cases == {"steel-co": {"C-1"}}
    registry.close()
    assert "closed" in puhui("hold", "steel-co", "C-1", "--reason", "order lifted", "--release", *where).stdout
    assert "UNKNOWN_REF" in puhui("hold", "steel-co", "C-1", "--reason", "again", "--release", *where, ok=False).stderr
    assert "UNKNOWN_REF" in puhui("hold", "nobody", "C-2", "--reason", "x", *where, ok=False).stderr
    assert "UNAUTHORIZED" in puhui("hold", "steel-co", "C-3", "--reason", "x", *where, "--signer-key",
                                   tmp_path / "vb.key", ok=False).stderr


def test_a_format_1_registry_has_no_reviews_nor_holds(tmp_path):
    place = init(tmp_path / "old", "--log-format", "1")
    assert "log format 1" in puhui("status", place).stdout
    report = tmp_path / "report.txt"
    report.write_text("x\n")
    refused = puhui("review", "evidence", "ab" * 32, "--verdict", "approved", "--report", report, "--dir", place,
                    ok=False)
    assert "SCHEMA" in refused.stderr and "format 1" in refused.stderr
    assert "SCHEMA" in puhui("hold", "a", "c", "--reason", "x", "--dir", place, ok=False).stderr
    assert "--version" in puhui("eligibility", place, "HB-GT-BUS", "--on", "--version", "1", ok=False,
                                exit_code=2).stderr
    new_key("validator", "vb", tmp_path / "vb.key")
    assert "SCHEMA" in puhui("keys", "register", tmp_path / "vb.key", "--dir", place, "--signer-key",
                             place / "keys" / "root.key", ok=False).stderr


def test_reviews_and_holds_against_a_running_server(tmp_path):
    place = init(tmp_path / "registry")
    served = Served(place).start()
    try:
        where = ["--server", served.url, "--trust", place / "trust.json"]
        admin = ["--signer-key", place / "keys" / "admin.key"]
        puhui("methodologies", "--register", *where, *admin)
        new_key("validator", "hubei-vb", tmp_path / "vb.key")
        register_by_root(place, tmp_path / "vb.key", *where)
        experts_approve("HB-GT-BUS", where, tmp_path, place / "keys" / "root.key")
        shown = json.loads(puhui("reviews", "methodology", "HB-GT-BUS", *where, "--json").stdout)
        assert shown["target"]["version"] == 2 and shown["met"] and [r["counts"] for r in shown["reviews"]] == ["yes"] * 2
        assert "offset eligible on at seq" in puhui("eligibility", "HB-GT-BUS", "--on", *where, *admin).stdout
        # An offline admin's hold, signed to a file and posted.
        holder = new_key("holder", "mall", tmp_path / "mall.key")
        puhui("keys", "register", tmp_path / "mall.key", *where, *admin)
        puhui("accounts", "open", "mall-co", "--kind", "enterprise", "--name", "Mall", "--region", "420100",
              "--controller", holder, *where, *admin)
        puhui("hold", "mall-co", "C-9", "--reason", "regulator's inquiry", "--sign-only", tmp_path / "hold.signed",
              "--trust", place / "trust.json", "--signer-key", place / "keys" / "admin.key")
        assert "account.hold at seq" in puhui("submit", tmp_path / "hold.signed", *where).stdout
        assert "is open on account mall-co already: nothing written" in puhui(
            "hold", "mall-co", "C-9", "--reason", "again", *where, *admin).stdout
        refused = puhui("review", "methodology", "HB-GT-BUS", "--verdict", "approved", "--report", tmp_path / "vb.key",
                        *where, "--signer-key", tmp_path / "vb.key", ok=False)
        assert "UNAUTHORIZED" in refused.stderr
    finally:
        served.stop()
    registry = open_registry(place)
    assert registry.state.open_cases == {"mall-co": {"C-9"}}
    assert registry.state.methodologies["HB-GT-BUS"].versions[2]["offset_eligible"] is True
    registry.close()


def _raw_ride(activity_id: str, person: str, hour: int, distance_m: int, entry: str) -> dict:
    return {"activity_id": activity_id, "subject": person, "occurred_at": f"{DAY}T{hour:02d}:10:00.000000Z",
            "inputs": {"distance_m": distance_m, "entry_station": entry, "exit_station": "L4-12"}}


def test_a_citizens_act_from_ingestion_to_a_verified_export_and_their_account(tmp_path):
    place = init(tmp_path / "reg")
    where = ["--dir", place]
    platform = new_key("platform", "wuhan-platform", tmp_path / "wuhan.key")
    puhui("keys", "register", tmp_path / "wuhan.key", *where)
    puhui("accounts", "open", "wuhan-platform", "--kind", "platform", "--name", "Wuhan", "--region", "420100",
          "--controller", platform, *where)
    new_key("validator", "hubei-vb", tmp_path / "vb.key")
    register_by_root(place, tmp_path / "vb.key")
    puhui("methodologies", place, "--register")
    for kind in ("hub", "fingerprint"):
        puhui("keys", "new", kind, f"scheme {kind}", "--out", tmp_path / f"{kind}.key", "--key-strength", "interactive")

    rides = tmp_path / "rides.jsonl"
    rides.write_text("".join(json.dumps(r) + "\n" for r in (
        _raw_ride("wh-1", "p-0001", 1, 12345, "L2-07"), _raw_ride("wh-2", "p-0001", 3, 9000, "L2-09"),
        _raw_ride("wh-3", "p-0002", 2, 5000, "L1-01"))))
    keys = ["--hub-key", tmp_path / "hub.key", "--fingerprint-key", tmp_path / "fingerprint.key"]
    ingested = puhui("ingest", place, rides, "--platform", "wuhan-platform", "--methodology", "HB-GT-METRO",
                     "--platform-key", tmp_path / "wuhan.key", "--out", tmp_path / "run", "--run-id", "wh-apr", *keys,
                     PUHUI_PLATFORM_KEY_PASSPHRASE="the platform's own passphrase")
    assert "3 accepted" in ingested.stdout and "appended at seq" in ingested.stdout
    batch_id = "wh-apr-2026-04"
    openings = tmp_path / "run" / "openings" / f"{batch_id}.jsonl"
    assert len(openings.read_bytes().splitlines()) == 3

    assert "issuance quorum NOT met: 0 approving key(s) count, 1 needed" in puhui("reviews", "batch", batch_id,
                                                                                  *where).stdout
    report = tmp_path / "validation-report.txt"
    report.write_text("sampled gate records match\n")
    puhui("review", "batch", batch_id, "--verdict", "approved", "--report", report, *where,
          "--signer-key", tmp_path / "vb.key")
    assert json.loads(puhui("reviews", "batch", batch_id, *where, "--json").stdout)["met"]
    registry = RegistryDir(place).open(with_log_key=True, passphrase=PASSPHRASE.encode())
    try:
        admin = Actor(load_key(place / "keys" / "admin.key", PASSPHRASE.encode()), "admin")
        total_g = registry.state.batches[batch_id].total_g
        Client(registry).issue(admin, "iss-wh-apr", "wuhan-platform", "HB-GT-METRO", 2026, "420100", total_g, [batch_id])
        registry.checkpoint()
    finally:
        registry.close()

    puhui("export", place, "--out", tmp_path / "bundle")
    verified = subprocess.run([sys.executable, "-m", "verifier.cli", "bundle", str(tmp_path / "bundle"), "--trust",
                               str(place / "trust.json"), "--require-activities", "--json"],
                              capture_output=True, text=True, cwd=REPO, timeout=120)
    verdict = json.loads(verified.stdout)
    assert verified.returncode == 0 and verdict["valid"] and verdict["log_format"] == 2, verified.stdout
    assert verdict["warnings"] == []

    derived = json.loads(puhui("pseudonyms", "p-0001", "--from", "2026-04-06", "--to", "2026-04-08", "--hub-key",
                               tmp_path / "hub.key", "--json").stdout)["pseudonyms"]
    subjects = [p["subject"] for p in derived]
    account = json.loads(puhui("account", place, *subjects, "--openings", openings, "--json").stdout)
    records = account["tables"]["records"]
    assert sorted(row["activity_id"] for row in records) == ["wh-1", "wh-2"]  # p-0002's ride is not theirs
    assert {row["opening"] for row in records} == {"checked"}
    assert {row["subject"] for row in records} == {derived[1]["subject"]}  # one pseudonym: the day's
    assert account["total_g"] == 967 + 705 and account["issued_g"] == account["total_g"]
    assert sorted(p["record"]["activity_id"] for p in account["proofs"]) == ["wh-1", "wh-2"]
    assert {p["batch_id"] for p in account["proofs"]} == {batch_id}
    assert {p["issuance_id"] for p in account["proofs"]} == {"iss-wh-apr"}
    shown = puhui("account", place, *subjects, "--openings", openings).stdout
    assert "checked" in shown and "issued in iss-wh-apr" in shown
    other_day = puhui("account", place, subjects[0], "--json").stdout
    assert json.loads(other_day)["total_g"] == 0
