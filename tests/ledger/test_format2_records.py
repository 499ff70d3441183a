"""Format-2 activity batches (spec sections 7.2 to 7.4): the record shape, the latest version, exact
quantification under the daily cap across batches and restarts, one date per subject, repeated
acts; each refusal leaves the log unchanged, and what is accepted exports to a bundle the verifier
finds VALID with --require-activities. The verifier is also shown the refused events themselves
(appended to an exported bundle and re-checkpointed): it reports the same code at that seq."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from typing import Any, Callable

import pytest

from format2_records import METRO_PARAMS, metro_record
from ledger.canonical import jcs
from ledger.errors import Rejected
from ledger.export import export_bundle
from ledger.leaf import make_leaf
from ledger.merkle import leaf_hash, root_of_leaf_hashes
from ledger.note import sign_checkpoint
from ledger.rules import batch_commitment
from ledger.schema import check_body
from verifier.methodologies import definition_problem
from world import World

MARCH = ("2026-03-01", "2026-03-31")


@pytest.fixture
def world(database_url):
    world = World(database_url, log_format=2)
    c = world.client
    c.register_key(world.root, world.admin, ["admin"])
    c.register_key(world.admin, world.wuhan, ["platform"])
    c.register_key(world.admin, world.grid, ["platform"])
    c.open_account(world.admin, "wuhan-platform", "platform", "Wuhan platform", "420100", [world.wuhan])
    c.open_account(world.admin, "grid-platform", "platform", "Grid platform", "420500", [world.grid])
    c.register_methodology(world.admin, "HB-GT-METRO", 1, "Metro trips", "green_travel", METRO_PARAMS, False)
    yield world
    world.registry.close()


def batch_event(world: World, batch_id: str, records: list[dict[str, Any]], *, version: int = 1,
                platform: str = "wuhan-platform", period: tuple[str, str] = MARCH) -> dict[str, Any]:
    signer = world.wuhan if platform == "wuhan-platform" else world.grid
    body = {"batch_id": batch_id, "platform": platform, "methodology_id": "HB-GT-METRO", "methodology_version": version,
            "period_start": period[0], "period_end": period[1], **batch_commitment(records)}
    return world.client.signed(signer, "activity.batch", body)


def refused(world: World, event: dict[str, Any], records: list[dict[str, Any]]) -> str:
    """The code the registry refuses this batch with; the log and its activity records stay as they were."""
    size = world.registry.size
    with pytest.raises(Rejected) as refusal:
        world.registry.append(event, records)
    assert world.registry.size == size
    assert list(world.registry.batch_records(event["body"]["batch_id"])) == []
    return refusal.value.code


def run_verifier(bundle, trust) -> dict[str, Any]:
    result = subprocess.run([sys.executable, "-m", "verifier.cli", "bundle", str(bundle), "--trust", str(trust),
                             "--json", "--require-activities"], capture_output=True, text=True, timeout=120)
    assert result.returncode in (0, 1), result.stderr
    return json.loads(result.stdout)


def verifier_findings(world: World, tmp_path, event: dict[str, Any], records: list[dict[str, Any]]) -> list[tuple[str, int]]:
    """The verifier's (code, seq) over the registry's log with this refused event appended as the next
    leaf (its records as its activity file) and a checkpoint of the longer log signed by the log key."""
    registry = world.registry
    registry.checkpoint()
    bundle = tmp_path / f"bundle-{event['body']['batch_id']}"
    export_bundle(registry, bundle)
    leaf = make_leaf(registry.size, registry.state.last_time, event["type"], event["body"], event["auth"], None)
    with open(bundle / "log.jsonl", "ab") as log:
        log.write(leaf.data + b"\n")
    (bundle / "activities" / f"{event['body']['batch_id']}.jsonl").write_bytes(b"".join(jcs(r) + b"\n" for r in records))
    hashes = [leaf_hash(line) for line in (bundle / "log.jsonl").read_bytes().splitlines()]
    note = sign_checkpoint(registry.origin, len(hashes), root_of_leaf_hashes(hashes), world.log_key)
    (bundle / "checkpoints.jsonl").write_text(json.dumps({"note": note}) + "\n")
    trust = tmp_path / "trust.json"
    trust.write_text(json.dumps(registry.trust()))
    return [(v["code"], v["seq"]) for v in run_verifier(bundle, trust)["violations"]]


def test_accepted_batches_survive_a_restart_and_export_to_a_valid_bundle(world, tmp_path):
    first = [metro_record("w-1", "p-1", "2026-03-02T00:31:05.000000Z", 12_756),   # 1000 g
             metro_record("w-2", "p-1", "2026-03-02T01:00:00.000000Z", 6_378, before_g=1_000),  # 500 g
             metro_record("w-3", "p-2", "2026-03-03T09:00:00.000000Z", 1_001)]
    world.registry.append(batch_event(world, "wh-1", first), first)
    world.reopen()
    # The spec's 7.2 example: 1500 g credited earlier that day, then 967 and 533 (a second platform).
    second = [metro_record("g-1", "p-1", "2026-03-02T02:00:00.000000Z", 12_345, before_g=1_500),
              metro_record("g-2", "p-1", "2026-03-02T03:00:00.000000Z", 9_000, before_g=2_467)]
    assert [r["reduction_g"] for r in second] == [967, 533]
    world.registry.append(batch_event(world, "gr-1", second, platform="grid-platform"), second)
    world.reopen()
    assert world.registry.check_integrity(full=True).ok
    world.registry.checkpoint()
    bundle, trust = tmp_path / "bundle", tmp_path / "trust.json"
    export_bundle(world.registry, bundle)
    trust.write_text(json.dumps(world.registry.trust()))
    report = run_verifier(bundle, trust)
    assert report["valid"] and report["log_format"] == 2 and report["warnings"] == [], report


def _replace(name: str, value: Any) -> Callable[[dict[str, Any]], None]:
    return lambda record: record.__setitem__(name, value)


@pytest.mark.parametrize("damage", [
    _replace("subject", "p-0001"),                                  # not a daily pseudonym
    _replace("subject", "E5CBD441B92BEFD2E02C5052B2090815"),
    _replace("private_sha256", "80D8BB1E843261FCB7037D2D5CAE9347A09F7BAC6CF87BF255981AE01BC18C1C"),
    _replace("occurred_on", "2026-02-30"),
    _replace("occurred_on", "2026-04-01"),                          # outside the period
    _replace("reduction_g", -1),
    _replace("inputs", {"distance_m": 9_000, "entry_station": "L2-07"}),  # a private input published
    _replace("inputs", {}),                                         # the quantity missing
    _replace("inputs", {"distance_m": 100_001}),                    # above the input's max
    _replace("inputs", {"distance_m": "9000"}),
    lambda record: record.pop("private_sha256"),
    lambda record: record.update(occurred_at="2026-03-02T00:31:05.000000Z"),
], ids=["subject-name", "subject-upper", "sha-upper", "no-such-date", "outside-period", "negative", "private-input",
        "no-quantity", "above-max", "quantity-text", "no-commitment", "occurred-at"])
def test_a_record_of_another_shape_is_batch(world, damage):
    records = [metro_record("w-1", "p-1", "2026-03-02T00:31:05.000000Z", 9_000),
               metro_record("w-2", "p-2", "2026-03-02T00:32:05.000000Z", 9_000)]
    damage(records[1])
    assert refused(world, batch_event(world, "wh-1", records), records) == "BATCH"


def test_a_batch_of_a_superseded_version_is_unknown_ref(world, tmp_path):
    records = [metro_record("w-1", "p-1", "2026-03-02T00:31:05.000000Z", 9_000)]
    world.registry.append(batch_event(world, "wh-0", records), records)
    version_2 = copy.deepcopy(METRO_PARAMS)
    version_2["factors"]["g_per_km"]["value"] = "80"
    world.client.register_methodology(world.admin, "HB-GT-METRO", 2, "Metro trips", "green_travel", version_2, False)
    later = [metro_record("w-2", "p-2", "2026-03-03T00:31:05.000000Z", 10_000, reduction_g=784)]
    stale = batch_event(world, "wh-1", later)
    assert refused(world, stale, later) == "UNKNOWN_REF"
    assert verifier_findings(world, tmp_path, stale, later) == [("UNKNOWN_REF", world.registry.size)]
    current = [dict(later[0], reduction_g=800)]  # version 2: 10 km at 80 g/km
    world.registry.append(batch_event(world, "wh-1", current, version=2), current)


def test_reduction_g_other_than_the_formula_is_quantification(world):
    over = [metro_record("w-1", "p-1", "2026-03-02T00:31:05.000000Z", 12_345, reduction_g=968)]
    assert refused(world, batch_event(world, "wh-1", over), over) == "QUANTIFICATION"
    under = [metro_record("w-1", "p-1", "2026-03-02T00:31:05.000000Z", 12_345, reduction_g=966)]
    assert refused(world, batch_event(world, "wh-1", under), under) == "QUANTIFICATION"
    zero = [metro_record("w-1", "p-1", "2026-03-02T00:31:05.000000Z", 0)]  # 0 g is valid (a platform should drop it)
    world.registry.append(batch_event(world, "wh-1", zero), zero)


@pytest.mark.parametrize("restart", [False, True])
def test_the_daily_cap_holds_across_batches_platforms_and_restarts(world, tmp_path, restart):
    first = [metro_record("w-1", "p-1", "2026-03-02T00:31:05.000000Z", 25_000),  # 1960 g
             metro_record("w-2", "p-1", "2026-03-02T01:31:05.000000Z", 10_204, before_g=1_960)]  # 799 g
    world.registry.append(batch_event(world, "wh-1", first), first)
    if restart:
        world.reopen()
    # 2759 g credited: 241 g of room left for p-1 on 2026-03-02 under HB-GT-METRO, on any platform.
    full = [metro_record("g-1", "p-1", "2026-03-02T02:00:00.000000Z", 12_345, reduction_g=967)]
    event = batch_event(world, "gr-1", full, platform="grid-platform")
    assert refused(world, event, full) == "QUANTIFICATION"
    assert verifier_findings(world, tmp_path, event, full) == [("QUANTIFICATION", world.registry.size)]
    clipped = [dict(full[0], reduction_g=241),
               metro_record("g-2", "p-1", "2026-03-02T03:00:00.000000Z", 9_000, reduction_g=0),  # no room left
               metro_record("g-3", "p-2", "2026-03-02T03:00:00.000000Z", 9_000)]  # another subject: 705 g
    world.registry.append(batch_event(world, "gr-1", clipped, platform="grid-platform"), clipped)
    assert world.reopen().check_integrity(full=True).ok


def test_the_daily_cap_counts_batches_judged_in_the_same_group(world):
    """Batches judged in one group commit: the second sees the first's grams before either is durable."""
    first = [metro_record("w-1", "p-1", "2026-03-02T00:31:05.000000Z", 30_000)]  # 2352 g
    over = [metro_record("w-2", "p-1", "2026-03-02T01:31:05.000000Z", 12_345, reduction_g=967)]
    right = [metro_record("w-3", "p-1", "2026-03-02T01:31:05.000000Z", 12_345, before_g=2_352)]  # 648 g
    results = world.registry.append_many([(batch_event(world, "wh-1", first), first),
                                          (batch_event(world, "wh-2", over), over),
                                          (batch_event(world, "wh-3", right), right)])
    assert isinstance(results[1], Rejected) and results[1].code == "QUANTIFICATION"
    assert not isinstance(results[2], Rejected) and right[0]["reduction_g"] == 648
    assert world.reopen().check_integrity(full=True).ok


def test_a_subject_on_two_dates_is_privacy(world, tmp_path):
    in_file = [metro_record("w-1", "p-1", "2026-03-02T00:31:05.000000Z", 9_000),
               dict(metro_record("w-2", "p-1", "2026-03-03T00:31:05.000000Z", 9_000),
                    subject=metro_record("x", "p-1", "2026-03-02T00:31:05.000000Z", 1)["subject"])]
    assert refused(world, batch_event(world, "wh-1", in_file), in_file) == "PRIVACY"
    world.registry.append(batch_event(world, "wh-1", in_file[:1]), in_file[:1])
    world.reopen()
    linked = [dict(in_file[1], activity_id="g-1")]  # the 2 March pseudonym again, on 3 March
    event = batch_event(world, "gr-1", linked, platform="grid-platform")
    assert refused(world, event, linked) == "PRIVACY"
    assert verifier_findings(world, tmp_path, event, linked) == [("PRIVACY", world.registry.size)]


def test_a_repeated_act_is_duplicate_activity_and_a_repeated_id_duplicate_id(world, tmp_path):
    records = [metro_record("w-1", "p-1", "2026-03-02T00:31:05.000000Z", 9_000)]
    world.registry.append(batch_event(world, "wh-1", records), records)
    twice = [metro_record("w-2", "p-2", "2026-03-02T00:31:05.000000Z", 9_000)]
    twice.append(dict(twice[0], activity_id="w-3"))  # the same act (fingerprint) twice: 705 g each, under the cap
    assert refused(world, batch_event(world, "wh-2", twice), twice) == "DUPLICATE_ACTIVITY"
    again = [dict(records[0], activity_id="g-1")]  # another platform reports the same ride
    event = batch_event(world, "gr-1", again, platform="grid-platform")
    assert refused(world, event, again) == "DUPLICATE_ACTIVITY"
    assert verifier_findings(world, tmp_path, event, again) == [("DUPLICATE_ACTIVITY", world.registry.size)]
    reused = [metro_record("w-1", "p-3", "2026-03-02T00:31:05.000000Z", 9_000)]
    assert refused(world, batch_event(world, "wh-3", reused), reused) == "DUPLICATE_ID"


def test_the_first_code_in_table_order_is_the_one_reported(world, tmp_path):
    """Section 7.3: the first of its rules broken anywhere in the file, whatever the records' order."""
    subject_of_2_march = metro_record("x", "p-1", "2026-03-02T00:31:05.000000Z", 1)["subject"]
    on_3_march = dict(metro_record("w-1", "p-1", "2026-03-03T00:31:05.000000Z", 9_000), subject=subject_of_2_march)
    day_one = metro_record("w-2", "p-1", "2026-03-02T00:31:05.000000Z", 9_000)
    overclaimed = metro_record("w-3", "p-2", "2026-03-02T00:31:05.000000Z", 9_000, reduction_g=706)
    malformed = dict(metro_record("w-4", "p-3", "2026-03-02T00:31:05.000000Z", 9_000), subject="p-3")
    cases = [
        ([day_one, on_3_march, overclaimed], "QUANTIFICATION"),       # PRIVACY earlier, QUANTIFICATION later
        ([day_one, dict(day_one, activity_id="w-5"), malformed], "BATCH"),  # DUPLICATE_ACTIVITY earlier
        ([malformed, overclaimed, dict(overclaimed, fingerprint="0" * 64)], "DUPLICATE_ID"),  # BATCH earlier
    ]
    for n, (records, code) in enumerate(cases):
        event = batch_event(world, f"wh-{n}", records)
        assert refused(world, event, records) == code
        assert verifier_findings(world, tmp_path, event, records) == [(code, world.registry.size)]


def _damaged(change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    params = copy.deepcopy(METRO_PARAMS)
    change(params)
    return params


@pytest.mark.parametrize("params, field", [
    (_damaged(lambda p: p.pop("daily_cap")), "params"),
    (_damaged(lambda p: p.update(extra=1)), "params"),
    (_damaged(lambda p: p["factors"]["g_per_km"].update(value="78.4000001")), "params.factors.g_per_km.value"),
    (_damaged(lambda p: p["factors"]["g_per_km"].update(value=78)), "params.factors.g_per_km.value"),
    (_damaged(lambda p: p["factors"]["g_per_km"].update(illustrative=True)), "params.factors.g_per_km"),
    (_damaged(lambda p: p["daily_cap"].update(value_g=0)), "params.daily_cap.value_g"),
    (_damaged(lambda p: p["formula"].update(kind="per_trip")), "params.formula"),
    (_damaged(lambda p: p["formula"].update(quantity_unit="km")), "params.formula"),
    (_damaged(lambda p: p["inputs"]["distance_m"].update(public=False)), "params.inputs"),
    (_damaged(lambda p: p["inputs"]["distance_m"].update(max=10**12 + 1)), "params.inputs.distance_m"),
    (_damaged(lambda p: p["inputs"]["entry_station"].pop("public")), "params.inputs.entry_station"),
    (_damaged(lambda p: p["inputs"].update(occurred_at={"type": "code", "required": False, "public": False,
                                                        "description": "d"})), "params.inputs"),
    (_damaged(lambda p: p["inputs"].update(kind={"type": "enum", "required": True, "public": True,
                                                 "description": "d", "values": ["a", "a"]})), "params.inputs.kind.values"),
    (_damaged(lambda p: p["fingerprint"].update(fields=["distance_m"])), "params.fingerprint.fields"),
    (_damaged(lambda p: p["fingerprint"].update(time="second")), "params.fingerprint.time"),
], ids=["no-cap", "extra", "seven-decimals", "number", "illustrative-with-source", "cap-zero", "other-kind",
        "other-unit", "private-quantity", "above-bound", "public-unsaid", "reserved-name", "repeated-values",
        "fingerprint-quantity", "fingerprint-second"])
def test_params_that_are_not_a_definition_are_schema_in_format_2_only(world, params, field):
    assert definition_problem(params) is not None  # the verifier's own reading: no definition
    size = world.registry.size
    with pytest.raises(Rejected) as refusal:
        world.client.register_methodology(world.admin, "HB-NEW", 1, "New", "other", params, False)
    assert refusal.value.code == "SCHEMA" and refusal.value.message.startswith(f"{field}:"), refusal.value.message
    assert world.registry.size == size
    body = {"methodology_id": "HB-NEW", "version": 1, "title": "New", "sector": "other", "params": params,
            "offset_eligible": False, "request_id": "r-1"}
    check_body("methodology.register", body, 1)  # format 1: params is any object


def test_a_record_dated_after_its_batch_is_refused_as_batch_and_the_verifier_finds_no_violation(world, tmp_path):
    """A house rule (docs/spec-readings.md): the registry's clock reads 2026-04-01 (Beijing time), so
    an act of 2026-04-02 has not happened; the verifier, which judges by the spec alone, finds nothing
    wrong with such a batch, and an act of the batch's own day is taken."""
    april = ("2026-04-01", "2026-04-30")
    ahead = [metro_record("w-1", "p-1", "2026-04-01T16:00:00.000000Z", 12_756)]  # 2026-04-02 00:00 in Beijing
    event = batch_event(world, "wh-ahead", ahead, period=april)
    assert refused(world, event, ahead) == "BATCH"
    with pytest.raises(Rejected, match="dated 2026-04-02, after the batch's own date 2026-04-01"):
        world.registry.append(event, ahead)
    assert verifier_findings(world, tmp_path, event, ahead) == []
    today = [metro_record("w-2", "p-2", "2026-04-01T15:59:59.000000Z", 12_756)]
    world.registry.append(batch_event(world, "wh-today", today, period=april), today)
