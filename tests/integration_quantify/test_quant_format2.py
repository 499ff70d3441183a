"""Ingestion against a format-2 registry (spec 7.3, 7.4): it refuses to run without the hub and
fingerprint keys; with them its records pass the independent verifier (`--require-activities`:
VALID, QUANTIFICATION and PRIVACY included), every opening it keeps passes `puhui-verify opening`,
and the daily cap runs across runs per pseudonym, methodology and date.

The batches reach the bundle as signed activity.batch leaves appended to the registry's own export
and a checkpoint signed with its log key (extend_bundle): the registry's format-2 batch checks are
another change's (ledger/); once they are in, `submit_batch` then `export_bundle` give the same bundle."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from api.app import create_app
from keys import Ed25519Key, save_key, save_secret
from ledger.export import export_bundle
from ledger.leaf import make_leaf
from ledger.merkle import leaf_hash, root_of_leaf_hashes
from ledger.note import sign_checkpoint
from ledger.registry import sign_event
from quant_helpers import jsonl, metro
from quantify.ingest import IngestError, IngestResult
from quantify.methodology import load_shipped, register_body
from quantify.private import SchemeKeys, daily_pseudonym
from service.ingestion import ingest_against_log
from service.registry_dir import RegistryDir
from world import World

KEYS = SchemeKeys(bytes(range(32)), bytes(range(32, 64)))  # spec 7.2's example keys
METRO = load_shipped().get("HB-GT-METRO")
# Spec 7.2's example: distance_m public, the stations (the fingerprint fields) not.
METRO_V2 = dataclasses.replace(METRO, inputs=tuple(dataclasses.replace(f, public=f.name == "distance_m")
                                                   for f in METRO.inputs))


def metro_params() -> dict:
    """HB-GT-METRO v1 as a section 7.1 definition: every input says whether it is public."""
    params = register_body(METRO_V2)["params"]
    params["inputs"] = {f.name: {**params["inputs"][f.name], "public": f.public} for f in METRO_V2.inputs}
    return params


@pytest.fixture
def world(tmp_path: Path):
    w = World(f"sqlite:///{tmp_path / 'registry.sqlite3'}", log_format=2)
    c = w.client
    c.register_key(w.root, w.admin, ["admin"])
    c.register_key(w.admin, w.wuhan, ["platform"])
    c.register_key(w.admin, w.grid, ["platform"])
    c.open_account(w.admin, "wuhan-platform", "platform", "Wuhan platform", "420100", [w.wuhan])
    c.open_account(w.admin, "grid-platform", "platform", "Grid platform", "420100", [w.grid])
    body = {**register_body(METRO_V2), "params": metro_params(), "offset_eligible": False}  # eligibility needs reviews
    c.submit(w.admin, "methodology.register", body)
    yield w
    w.registry.close()


def ingest(world: World, records: list, out: Path, *, platform: str = "wuhan-platform",
           scheme_keys: SchemeKeys | None = KEYS) -> IngestResult:
    # The definition as logged (metro_params); LoggedMethodologies reads section 7.1 params back once
    # the library is in that format (another change's).
    return ingest_against_log(world.registry, io.BytesIO(jsonl(records)), platform=platform, methodology=METRO_V2,
                              run_id=out.name, out_dir=out, scheme_keys=scheme_keys)


def extend_bundle(world: World, bundle: Path, batches: list, signer) -> None:
    """Append each batch as a signed activity.batch leaf, its records as its activity file, and a
    checkpoint of the whole log signed by the registry's log key."""
    lines = (bundle / "log.jsonl").read_bytes().splitlines()
    time = json.loads(lines[-1])["time"]
    with open(bundle / "log.jsonl", "ab") as log:
        for batch in batches:
            body = {**batch.body, "request_id": f"batch-{batch.batch_id}"}
            event = sign_event(signer.signer, world.registry.origin, "activity.batch", body, log_format=2)
            data = make_leaf(len(lines), time, "activity.batch", body, event["auth"], None).data
            log.write(data + b"\n")
            lines.append(data)
            shutil.copyfile(batch.path, bundle / "activities" / f"{batch.batch_id}.jsonl")
    note = sign_checkpoint(world.registry.origin, len(lines), root_of_leaf_hashes([leaf_hash(line) for line in lines]),
                           world.log_key)
    with open(bundle / "checkpoints.jsonl", "a", encoding="utf-8") as notes:
        notes.write(json.dumps({"note": note}) + "\n")


def verify(bundle: Path, trust: Path) -> dict:
    result = subprocess.run([sys.executable, "-m", "verifier.cli", "bundle", str(bundle), "--trust", str(trust),
                             "--require-activities", "--json"], capture_output=True, text=True, timeout=300)
    report = json.loads(result.stdout)
    assert report["log_format"] == 2, report
    return report


def test_a_format_2_registry_refuses_ingestion_without_the_keys(world, tmp_path):
    with pytest.raises(IngestError, match="format 2.*hub key and the fingerprint key"):
        ingest(world, [metro("a-1", "p-0001", "2026-03-02T00:31:05.000000Z")], tmp_path / "no-keys", scheme_keys=None)


def test_ingested_records_pass_the_verifier_and_their_openings_the_holders_check(world, tmp_path):
    raw = [metro(f"wh-{i}", f"p-{i % 3:04d}", f"2026-03-0{1 + i % 2}T0{i % 10}:31:05.000000Z", 9_000 + 1_000 * i,
                 f"L2-{i:02d}", "L4-12") for i in range(12)]
    raw.append(metro("wh-late", "p-0000", "2026-03-31T16:30:00.000000Z"))  # Beijing 1 April: April's batch
    wuhan = ingest(world, raw, tmp_path / "wh")
    # The same rides reported by the grid platform: the same acts, so the same keyed fingerprints.
    grid = ingest(world, [{**r, "activity_id": f"g-{r['activity_id']}"} for r in raw[:4]], tmp_path / "grid",
                  platform="grid-platform")
    assert wuhan.rejected == 0 and [b.batch_id for b in wuhan.batches] == ["wh-2026-03", "wh-2026-04"]

    def fingerprints(result: IngestResult) -> set[str]:
        return {json.loads(line)["fingerprint"] for b in result.batches for line in b.path.read_bytes().splitlines()}
    assert len(fingerprints(grid)) == 4 and fingerprints(grid) < fingerprints(wuhan)
    assert {"p-0000", "p-0001", "p-0002"}.isdisjoint(
        json.loads(line)["subject"] for b in wuhan.batches for line in b.path.read_bytes().splitlines())

    world.registry.checkpoint()
    bundle, trust = tmp_path / "bundle", tmp_path / "trust.json"
    export_bundle(world.registry, bundle)
    trust.write_text(json.dumps(world.registry.trust()))
    extend_bundle(world, bundle, wuhan.batches, world.wuhan)
    report = verify(bundle, trust)
    assert report["valid"] and not report["warnings"], report["violations"]

    # puhui-verify opening, through the command line, on every record and its kept opening.
    definition = tmp_path / "definition.json"
    definition.write_text(json.dumps(metro_params()))
    for batch in wuhan.batches:
        for n, (record, opening) in enumerate(zip(batch.path.read_bytes().splitlines(),
                                                  batch.openings_path.read_bytes().splitlines(), strict=True)):
            (tmp_path / "record").write_bytes(record)
            (tmp_path / "opening").write_bytes(opening)
            checked = subprocess.run([sys.executable, "-m", "verifier.cli", "opening", str(tmp_path / "record"),
                                      str(tmp_path / "opening"), "--definition", str(definition), "--json"],
                                     capture_output=True, text=True, timeout=120)
            assert checked.returncode == 0 and json.loads(checked.stdout)["valid"], checked.stdout + checked.stderr
            if n == 0 and batch is wuhan.batches[0]:  # another record's opening does not open it
                other = batch.openings_path.read_bytes().splitlines()[1]
                (tmp_path / "opening").write_bytes(other)
                refused = subprocess.run([sys.executable, "-m", "verifier.cli", "opening", str(tmp_path / "record"),
                                          str(tmp_path / "opening")], capture_output=True, text=True, timeout=120)
                assert refused.returncode == 1 and "OPENING" in refused.stdout


def test_an_altered_record_is_what_the_verifier_reports(world, tmp_path):
    """The comparison is not vacuous: a record whose reduction exceeds its formula is QUANTIFICATION."""
    result = ingest(world, [metro("wh-1", "p-0001", "2026-03-02T00:31:05.000000Z", 12_345, "L2-07", "L4-12")],
                    tmp_path / "wh")
    (batch,) = result.batches
    record = json.loads(batch.path.read_bytes())
    assert record["reduction_g"] == 967 and record["subject"] == "e5cbd441b92befd2e02c5052b2090815"
    assert record["fingerprint"] == "ea6f4f2512b6d397bcacee941eade6af9c7c08a7243523875893304a4eddb545"
    inflated = json.dumps({**record, "reduction_g": 968}, separators=(",", ":"), sort_keys=True).encode()
    batch.path.write_bytes(inflated + b"\n")
    altered = dataclasses.replace(batch, body={**batch.body, "total_g": 968, "root": root_of_leaf_hashes(
        [leaf_hash(inflated)]).hex()})
    world.registry.checkpoint()
    bundle, trust = tmp_path / "bundle", tmp_path / "trust.json"
    export_bundle(world.registry, bundle)
    trust.write_text(json.dumps(world.registry.trust()))
    extend_bundle(world, bundle, [altered], world.wuhan)
    report = verify(bundle, trust)
    assert [v["code"] for v in report["violations"]] == ["QUANTIFICATION"], report


def test_the_daily_cap_counts_the_pseudonyms_logged_grams_of_that_date(world, tmp_path):
    """LoggedChunks in a format-2 log asks the activities index by pseudonym and methodology alone:
    a pseudonym is one person's on one date, whatever time the index keeps for its records."""
    subject = daily_pseudonym(KEYS.hub_key, "p-0001", "2026-03-02")
    with world.registry.store.engine.begin() as conn:
        world.registry.store.insert_activities(conn, [{
            "activity_id": "earlier", "fingerprint": hashlib.sha256(b"earlier").hexdigest(), "batch_id": "b0",
            "position": 0, "methodology_id": "HB-GT-METRO", "subject": subject,
            "occurred_at": "", "reduction_g": 2_500, "record": b"{}"}])  # no time: a format-2 record has none
    result = ingest(world, [metro("wh-1", "p-0001", "2026-03-02T09:00:00.000000Z"),
                            metro("wh-2", "p-0001", "2026-03-03T09:00:00.000000Z")], tmp_path / "wh")
    records = [json.loads(line) for line in result.batches[0].path.read_bytes().splitlines()]
    assert [r["reduction_g"] for r in records] == [500, 1176] and result.reasons["daily_cap_clipped"] == 1


PASSPHRASE = "format 2 cli tests"
PUHUI = [sys.executable, "-c", "from cli.main import main; main()"]


def puhui(*args: object, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(PUHUI + [str(a) for a in args], capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL, env={**os.environ, "PUHUI_KEY_PASSPHRASE": PASSPHRASE,
                                                         "COLUMNS": "200", **env})


def test_puhui_ingest_in_a_format_2_directory_asks_for_the_keys_and_puhui_pseudonyms_derives_them(tmp_path):
    place = tmp_path / "registry"
    RegistryDir(place).init("cli.hubei.example/puhui", strength="interactive", passphrase=PASSPHRASE.encode()).close()
    platform_key = save_key(tmp_path / "wuhan.key", Ed25519Key.from_label("puhui-test/f2-wuhan"), PASSPHRASE.encode(),
                            role="platform", label="wuhan", strength="interactive")
    source = tmp_path / "rides.jsonl"
    source.write_bytes(jsonl([metro("wh-1", "p-0001", "2026-03-02T00:31:05.000000Z")]))
    refused = puhui("ingest", place, source, "--platform", "wuhan-platform", "--methodology", "HB-GT-METRO",
                    "--platform-key", platform_key, "--out", tmp_path / "out")
    assert refused.returncode == 1 and "format 2" in refused.stderr and "--hub-key FILE --fingerprint-key FILE" in \
        refused.stderr and "Traceback" not in refused.stderr, refused.stderr
    assert puhui("ingest", place, source, "--platform", "wuhan-platform", "--methodology", "HB-GT-METRO",
                 "--platform-key", platform_key, "--out", tmp_path / "out2", "--hub-key",
                 platform_key).returncode == 2  # one key without the other

    hub = save_secret(tmp_path / "hub.key", KEYS.hub_key, b"hub passphrase", kind="hub", label="hub",
                      strength="interactive")
    derived = puhui("pseudonyms", "p-0001", "--from", "2026-03-01", "--to", "2026-03-03", "--hub-key", hub, "--json",
                    PUHUI_HUB_KEY_PASSPHRASE="hub passphrase")
    assert derived.returncode == 0, derived.stderr
    assert json.loads(derived.stdout)["pseudonyms"][1] == {"day": "2026-03-02",
                                                           "subject": "e5cbd441b92befd2e02c5052b2090815"}
    too_long = puhui("pseudonyms", "p-0001", "--from", "2026-03-01", "--to", "2046-03-03", "--hub-key", hub,
                     PUHUI_HUB_KEY_PASSPHRASE="hub passphrase")
    assert too_long.returncode == 2 and "3660 days" in too_long.stderr  # a range that cannot be: cannot run
    inverted = puhui("pseudonyms", "p-0001", "--from", "2026-03-03", "--to", "2026-03-01", "--hub-key", hub,
                     PUHUI_HUB_KEY_PASSPHRASE="hub passphrase")
    assert inverted.returncode == 2 and "from the first to the last" in inverted.stderr
    for person in ("", " ", "p 1"):  # no person id the hub gives out, nor one a raw record names
        nobody = puhui("pseudonyms", person, "--from", "2026-03-01", "--to", "2026-03-01", "--hub-key", hub,
                       PUHUI_HUB_KEY_PASSPHRASE="hub passphrase")
        assert nobody.returncode == 2 and "is no person id" in nobody.stderr and not nobody.stdout, nobody.stderr


def test_the_api_refuses_a_format_2_ingestion_without_the_keys_and_reads_accounts_by_pseudonyms(world):
    data = jsonl([metro("wh-1", "p-0001", "2026-03-02T00:31:05.000000Z")])
    with TestClient(create_app(world.registry, checkpoint_interval_s=0.05)) as http:
        answer = http.post("/v1/ingestions?platform=wuhan-platform&methodology_id=HB-GT-METRO", content=data,
                           headers={"content-type": "application/x-ndjson"})
        assert answer.status_code == 422 and answer.json()["code"] == "SCHEMA"
        assert "puhui serve --hub-key FILE --fingerprint-key FILE" in answer.json()["message"]
        account = http.get("/v1/pseudonyms/account", params={"subject": ["e5cbd441b92befd2e02c5052b2090815"]})
        assert account.status_code == 200 and account.json()["total_g"] == 0 and account.json()["proofs"] == []
        assert http.get("/v1/pseudonyms/account", params={"subject": ["p-0001"]}).status_code == 422


class _Definitions:
    """LoggedMethodologies' `get` for the logged HB-GT-METRO (it reads section 7.1 params back once the
    library is in that format, another change's)."""

    def get(self, methodology_id: str, version: int | None = None):
        assert methodology_id == "HB-GT-METRO"
        return METRO_V2


def test_a_server_with_the_keys_answers_format_2_records_and_their_openings(world):
    data = jsonl([metro("wh-0000123", "p-0001", "2026-03-02T00:31:05.000000Z", 12_345, "L2-07", "L4-12")])
    with TestClient(create_app(world.registry, checkpoint_interval_s=0.05, scheme_keys=KEYS)) as http:
        http.app.state.quantification.methodologies = _Definitions()
        answer = http.post("/v1/ingestions?platform=wuhan-platform&methodology_id=HB-GT-METRO&run_id=wh",
                           content=data, headers={"content-type": "application/x-ndjson"})
    assert answer.status_code == 200, answer.text
    (batch,) = answer.json()["batches"]
    (record,), (opening,) = batch["records"], batch["openings"]
    assert record["subject"] == "e5cbd441b92befd2e02c5052b2090815" and record["inputs"] == {"distance_m": 12345}
    assert record["private_sha256"] == hashlib.sha256(
        json.dumps(opening, separators=(",", ":"), sort_keys=True).encode()).hexdigest()
    assert opening["fields"] == {"entry_station": "L2-07", "exit_station": "L4-12",
                                 "occurred_at": "2026-03-02T00:31:05.000000Z"}


def test_a_logged_format_2_record_is_explained_from_what_the_log_holds(world, tmp_path):
    """Trial 6, finding 1: a format-2 record holds its public inputs only (the stations are in its
    opening), and is explained from them: formula, factors, grams, batch and issuance, the private
    inputs named as committed by private_sha256, checked with the opening."""
    result = ingest(world, [metro("wh-1", "p-0001", "2026-03-02T00:31:05.000000Z", 12_345, "L2-07", "L4-12"),
                            metro("wh-2", "p-0001", "2026-03-02T09:00:00.000000Z", 30_000)], tmp_path / "wh")
    (batch,) = result.batches
    world.client.submit(world.wuhan, "activity.batch", dict(batch.body),
                        [json.loads(line) for line in batch.path.read_bytes().splitlines()])
    with TestClient(create_app(world.registry, checkpoint_interval_s=0.05)) as http:
        answer = http.get("/v1/activities/wh-1/explanation")
        assert answer.status_code == 200, answer.text
        explained = answer.json()
        capped = http.get("/v1/activities/wh-2/explanation").json()
        csv_text = http.get("/v1/activities/wh-1/explanation", params={"format": "csv"}).text
    assert explained["inputs"] == {"distance_m": 12345} and explained["reduction_g"] == 967
    assert explained["substitution"] == "floor(max(0, 12345 / 1000 * 78.4)) = floor(967.848) = 967"
    assert (explained["occurred_on"], explained["batch_id"], explained["issuance_id"]) == (
        "2026-03-02", "wh-2026-03", None)
    assert "occurred_at" not in explained  # the time is in the opening only
    private = explained["private"]
    assert private["inputs"] == ["entry_station", "exit_station", "occurred_at"]
    assert private["private_sha256"] == json.loads(batch.path.read_bytes().splitlines()[0])["private_sha256"]
    assert "puhui-verify opening" in private["note"]
    assert capped["capped"] == {"recorded_g": 3000 - 967, "dropped_g": 2352 - (3000 - 967),
                                "reason": "daily cap of 3000 g per subject and Beijing day"}
    assert "activity,wh-1,," in csv_text and "2026-03-02" in csv_text and "private inputs" in csv_text
