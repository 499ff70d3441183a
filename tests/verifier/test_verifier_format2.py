"""Format 2 (spec puhui-log-v2, every rule marked "(format 2)"): the valid vector, re-signed with
test keys (conftest.rekeyed_vector), altered to break one rule at a time. Each test names the code
and the one seq it must be reported at.

End of the valid vector: xiaogan-platform holds [2500, 3120) of pi-xg-bus and [3420, 14761) of
pi-xg-cycle; huangshi-platform [20761, 27280) of pi-hs-cycle, [27310, 104686) of pi-hs-power and
[104686 + 3000, 152935) of pi-hs-ev; paper-mill [2000, 2500) of pi-xg-bus. XG-GT-BUS v1 and
HS-RS-POWER v1 are offset eligible; HS-ES-EV is illustrative. Review quorums: issuance 1,
eligibility 2."""

import copy
import json
import os
import random
from hashlib import sha256

import pytest
from conftest import found, record_v2, rekeyed_vector, subject_of
from test_verifier_fastpath import MUTATION_CHARACTERS, leaf_state
from test_verifier_fastpath import ORIGIN as FAST_ORIGIN
from test_verifier_fastpath import PREVIOUS_TIME as FAST_PREVIOUS_TIME
from test_verifier_fastpath import ROOT_KEYS as FAST_ROOT_KEYS
from test_verifier_fastpath import line as fast_line

from verifier import activities
from verifier.activities import CHUNK_RECORDS
from verifier.bundle import verify_bundle
from verifier.leaves import LeafParser

JULY = ("2026-07-01", "2026-07-31")
BUS = "XG-GT-BUS"  # per_trip, g_per_trip "212.5" (212 g a trip), daily cap 1000 g, input fare (public), route


@pytest.fixture
def r():
    return rekeyed_vector()


@pytest.fixture
def check(tmp_path):
    """check(registry, expected [(code, seq)], **verify options) -> BundleResult."""

    def run(registry, expected, jobs=1, **options):
        bundle = registry.write(tmp_path / f"run{len(os.listdir(tmp_path))}")
        result = verify_bundle(bundle.path, bundle.trust_object(), jobs=jobs, **options)
        assert found(result) == expected, result.violations.listed
        return result

    return run


def key(r, label):
    return r.keys[label]


def xg(r):
    return key(r, "Xiaogan city platform")


def hs(r):
    return key(r, "Huangshi city platform")


def review(r, review_id, kind, target_id, verdict="approved", version=None, signer=None):
    signer = signer or key(r, "validation body A" if kind != "methodology" else "methodology expert A")
    body = {
        "review_id": review_id,
        "target": {"kind": kind, "id": target_id, "version": version},
        "verdict": verdict,
        "report_sha256": sha256(review_id.encode()).hexdigest(),
    }
    return r.event("review", body, signer)


def bus_records(prefix, subject, count, reduction_g=212, day="2026-07-03"):
    return [record_v2(f"{prefix}-{n}", subject, day, {"fare": "adult"}, reduction_g) for n in range(count)]


def bus_batch(r, batch_id, records, **overrides):
    return r.batch(batch_id, "xiaogan-platform", xg(r), BUS, records=records, period=JULY, **overrides)


def spend(r, event_type, body, signer, serials):
    return r.event(event_type, body, signer, effects=serials)


def transfer(r, transfer_id, sender, recipient, amount_g, signer, serials, issuances=None):
    body = {"transfer_id": transfer_id, "from": sender, "to": recipient, "amount_g": amount_g, "issuances": issuances}
    return spend(r, "transfer", body, signer, serials)


def retire(r, retirement_id, account, amount_g, purpose, signer, serials, issuances=None):
    body = {
        "retirement_id": retirement_id,
        "account": account,
        "amount_g": amount_g,
        "purpose": purpose,
        "beneficiary": account,
        "issuances": issuances,
    }
    return spend(r, "retirement", body, signer, serials)


def hold(r, hold_id, account_id, held, case_id="CASE-1"):
    body = {"hold_id": hold_id, "account_id": account_id, "held": held, "case_id": case_id, "reason": "court order"}
    return r.event("account.hold", body, r.admin)


def bus_params(r):
    return copy.deepcopy(r.leaves[19]["body"]["params"])


def register(r, methodology_id, version, params, eligible=False):
    body = {
        "methodology_id": methodology_id,
        "version": version,
        "title": methodology_id,
        "sector": "green_travel",
        "params": params,
        "offset_eligible": eligible,
    }
    return r.event("methodology.register", body, r.admin)


def eligibility(r, methodology_id, version, eligible=True):
    return r.event("methodology.eligibility", {"methodology_id": methodology_id, "version": version, "offset_eligible": eligible}, r.admin)


def test_the_rekeyed_vector_is_valid(r, check):
    result = check(r, [])
    assert result.log_format == 2 and result.stats["activity_records"] == 43


# -- records: QUANTIFICATION, PRIVACY, BATCH (spec 7.2 to 7.4) ------------------------------------


def test_a_record_above_its_formula_is_quantification(r, check):
    records = bus_records("q", subject_of("q"), 2)
    records[1] = record_v2("q-1", subject_of("q"), "2026-07-03", {"fare": "adult"}, 213)
    check(r, [("QUANTIFICATION", bus_batch(r, "xg-bus-q", records))])


def test_the_daily_cap_runs_across_batches_in_log_order(r, check):
    subject = subject_of("capped")
    bus_batch(r, "cap-a", bus_records("cap-a", subject, 4))  # 848 g of the 1000 g cap
    clipped = bus_batch(r, "cap-b", bus_records("cap-b", subject, 1))  # 212 g, only 152 g of room
    good = bus_batch(r, "cap-c", bus_records("cap-c", subject, 1, reduction_g=152) + bus_records("cap-c2", subject, 1, reduction_g=0))
    check(r, [("QUANTIFICATION", clipped)])
    assert good == clipped + 1


def test_the_cap_counts_the_methodology_not_the_version(r, check):
    subject = subject_of("versions")
    bus_batch(r, "v1-batch", bus_records("v1", subject, 4))
    register(r, BUS, 2, bus_params(r))
    bad = bus_batch(r, "v2-batch", bus_records("v2", subject, 1), methodology_version=2)
    check(r, [("QUANTIFICATION", bad)])


def test_after_an_unverified_batch_grams_are_only_bounded(r, check):
    subject = subject_of("unverified")
    bus_batch(r, "absent", bus_records("absent", subject_of("other"), 1), write_file=False)
    bus_batch(r, "below", bus_records("below", subject, 2, reduction_g=100))
    result = check(r, [])
    assert [warning.code for warning in result.warnings.listed] == ["UNVERIFIED_BATCH"]


def test_below_the_formula_is_quantification_when_every_batch_was_read(r, check):
    check(r, [("QUANTIFICATION", bus_batch(r, "below", bus_records("below", subject_of("s"), 2, reduction_g=100)))])


def test_a_subject_of_another_date_is_privacy(r, check):
    earlier = json.loads(r.activity_files["xg-bus-2026-05"].splitlines()[0])["subject"]
    check(r, [("PRIVACY", bus_batch(r, "trail", bus_records("trail", earlier, 1)))])


def test_a_subject_on_two_dates_in_one_file_is_privacy(r, check):
    subject = subject_of("two-days")
    records = bus_records("d1", subject, 1) + bus_records("d2", subject, 1, day="2026-07-04")
    check(r, [("PRIVACY", bus_batch(r, "two-days", records))])


@pytest.mark.parametrize(
    "inputs",
    [{"fare": "adult", "route": "XG-10"}, {"fare": "child"}, {}, {"fare": 1}],
    ids=["a non-public input", "not one of the values", "a required input missing", "not a code"],
)
def test_inputs_other_than_the_public_ones_are_batch(r, check, inputs):
    records = [record_v2("in-0", subject_of("in"), "2026-07-03", inputs, 212)]
    check(r, [("BATCH", bus_batch(r, "inputs", records))])


def test_within_a_file_batch_comes_before_quantification_and_privacy(r, check):
    subject = subject_of("order")
    records = [
        record_v2("o-0", subject, "2026-07-03", {"fare": "adult"}, 999),  # QUANTIFICATION
        record_v2("o-1", subject, "2026-07-04", {"fare": "adult"}, 212),  # PRIVACY
        record_v2("o-2", subject_of("x"), "2026-07-03", {"fare": "adult", "route": "R"}, 212),  # BATCH
    ]
    check(r, [("BATCH", bus_batch(r, "order", records))])
    r2 = rekeyed_vector()
    check(r2, [("QUANTIFICATION", bus_batch(r2, "order", records[:2]))])


def test_a_format_1_record_in_a_format_2_log_is_batch(r, check):
    record = json.dumps(
        {"activity_id": "f1", "fingerprint": "0" * 64, "inputs": {"fare": "adult"}, "occurred_at": "2026-07-03T00:00:00.000000Z", "reduction_g": 212, "subject": subject_of("f1")},
        separators=(",", ":"),
        sort_keys=True,
    ).encode()
    check(r, [("BATCH", bus_batch(r, "f1", [record]))])


def test_a_batch_of_a_superseded_version_is_unknown_ref(r, check):
    register(r, BUS, 2, bus_params(r))
    check(r, [("UNKNOWN_REF", bus_batch(r, "old", bus_records("old", subject_of("old"), 1)))])


# -- reviews: UNREVIEWED, UNAUTHORIZED, UNKNOWN_REF --------------------------------------------------


def issue_bus(r, issuance_id, batch_id, account="xiaogan-platform"):
    return r.issue(issuance_id, account, batches=[batch_id], methodology_id=BUS, region="420900")


def test_an_issuance_without_its_review_is_unreviewed(r, check):
    bus_batch(r, "nr", bus_records("nr", subject_of("nr"), 1))
    check(r, [("UNREVIEWED", issue_bus(r, "iss-nr", "nr"))])


def test_a_counting_rejected_review_blocks_the_issuance(r, check):
    bus_batch(r, "rej", bus_records("rej", subject_of("rej"), 1))
    review(r, "rv-a", "batch", "rej")
    review(r, "rv-b", "batch", "rej", verdict="rejected", signer=key(r, "validation body B"))
    check(r, [("UNREVIEWED", issue_bus(r, "iss-rej", "rej"))])


def test_a_rejected_review_by_a_revoked_key_does_not_count(r, check):
    bus_batch(r, "rev", bus_records("rev", subject_of("rev"), 1))
    review(r, "rv-a", "batch", "rev")
    review(r, "rv-b", "batch", "rev", verdict="rejected", signer=key(r, "validation body B"))
    r.event("key.revoke", {"key_id": key(r, "validation body B").key_id, "reason": "accreditation withdrawn"}, r.root)
    check(r, [])
    issue_bus(r, "iss-rev", "rev")
    check(r, [])


def refused_until_validator_b_reviews(r, batch_id, review_ids):
    """A one-trip batch reviewed by validator A under review_ids, its issuance (refused, its seq
    returned), then validator B's approval and the same issuance again (accepted)."""
    bus_batch(r, batch_id, bus_records(batch_id, subject_of(batch_id), 1))
    for review_id in review_ids:
        review(r, review_id, "batch", batch_id)
    refused = issue_bus(r, f"iss-{batch_id}", batch_id)
    r.next_serial -= 212  # the refused issuance's grams
    review(r, f"{batch_id}-b", "batch", batch_id, signer=key(r, "validation body B"))
    issue_bus(r, f"iss-{batch_id}", batch_id)
    return refused


def test_a_validator_controlling_the_platform_does_not_count(r, check):
    validator = key(r, "validation body A")
    r.event("account.controllers", {"account_id": "xiaogan-platform", "controllers": [xg(r).key_id, validator.key_id]}, r.admin)
    check(r, [("UNREVIEWED", refused_until_validator_b_reviews(r, "own", ["rv-own"]))])


def test_one_key_counts_once_per_target(r, check):
    rules = dict(r.leaves[0]["body"]["rules"], review_quorum={"issuance": 2, "eligibility": 2})
    r.event("registry.rules", {"rules": rules}, r.root)
    check(r, [("UNREVIEWED", refused_until_validator_b_reviews(r, "twice", ["tw-1", "tw-2"]))])


def test_review_roles_and_targets(r, check):
    validator, expert = key(r, "validation body A"), key(r, "methodology expert A")
    wrong_role = review(r, "x1", "batch", "xg-bus-2026-05", signer=expert)
    expert_needed = review(r, "x2", "methodology", BUS, version=1, signer=validator)
    missing_batch = review(r, "x3", "batch", "no-such-batch")
    missing_version = review(r, "x4", "methodology", BUS, version=2)
    repeated_id = review(r, "pr-b-1", "batch", "xg-bus-2026-05")
    by_root = review(r, "x5", "batch", "xg-bus-2026-05", signer=r.root)
    check(
        r,
        [
            ("UNAUTHORIZED", wrong_role),
            ("UNAUTHORIZED", expert_needed),
            ("UNKNOWN_REF", missing_batch),
            ("UNKNOWN_REF", missing_version),
            ("DUPLICATE_ID", repeated_id),
            ("UNAUTHORIZED", by_root),
        ],
    )


def test_only_root_grants_and_revokes_validators_and_experts(r, check):
    r.key("new validator", ["validator"], by=r.admin)
    grant = len(r.leaves) - 1
    revoke = r.event("key.revoke", {"key_id": key(r, "methodology expert A").key_id, "reason": "x"}, r.admin)
    check(r, [("UNAUTHORIZED", grant), ("UNAUTHORIZED", revoke)])


# -- methodologies: SCHEMA of 7.1, UNREVIEWED and OFFSET_INELIGIBLE of eligibility ------------------


def _without_daily_cap(params):
    del params["daily_cap"]


def _seven_decimals(params):
    params["factors"]["g_per_trip"]["value"] = "212.5000001"


def _illustrative_with_source(params):
    params["factors"]["g_per_trip"]["illustrative"] = True


def _quantity_field_for_per_trip(params):
    params["formula"]["quantity_field"] = "fare"


def _fingerprint_of_a_public_integer(params):
    params["inputs"]["seats"] = {"type": "integer", "required": True, "public": True, "description": "d", "unit": "seat", "min": 0, "max": 9}
    params["fingerprint"]["fields"] = ["seats"]


def _reserved_input_name(params):
    params["inputs"]["occurred_at"] = {"type": "code", "required": False, "public": False, "description": "d"}


@pytest.mark.parametrize(
    "damage",
    [_without_daily_cap, _seven_decimals, _illustrative_with_source, _quantity_field_for_per_trip, _fingerprint_of_a_public_integer, _reserved_input_name],
)
def test_params_that_are_not_a_definition_are_schema(r, check, damage):
    params = bus_params(r)
    damage(params)
    check(r, [("SCHEMA", register(r, "XG-NEW", 1, params))])


def test_turning_eligibility_on_needs_the_expert_quorum(r, check):
    unreviewed = eligibility(r, "XG-GT-CYCLE", 1)
    review(r, "e-1", "methodology", "XG-GT-CYCLE", version=1)
    still = eligibility(r, "XG-GT-CYCLE", 1)
    review(r, "e-2", "methodology", "XG-GT-CYCLE", version=1, signer=key(r, "methodology expert B"))
    eligibility(r, "XG-GT-CYCLE", 1)
    registered_on = register(r, "XG-GT-CYCLE", 2, copy.deepcopy(r.leaves[20]["body"]["params"]), eligible=True)
    check(r, [("UNREVIEWED", unreviewed), ("UNREVIEWED", still), ("UNREVIEWED", registered_on)])


def test_an_illustrative_version_is_never_offset_eligible(r, check):
    review(r, "ev-1", "methodology", "HS-ES-EV", version=1)
    review(r, "ev-2", "methodology", "HS-ES-EV", version=1, signer=key(r, "methodology expert B"))
    check(r, [("OFFSET_INELIGIBLE", eligibility(r, "HS-ES-EV", 1))])


def test_eligibility_names_a_registered_version(r, check):
    check(r, [("UNKNOWN_REF", eligibility(r, BUS, 2, eligible=False))])


# -- holds and chosen issuances: FROZEN, NOT_HELD, UNKNOWN_REF -------------------------------------


def test_a_held_account_neither_transfers_nor_retires(r, check):
    paper = key(r, "paper mill")
    hold(r, "h-1", "paper-mill", True)
    frozen_transfer = transfer(r, "t-f", "paper-mill", "lakeside-hotel", 10, paper, [[2000, 2010]])
    frozen_retirement = retire(r, "r-f", "paper-mill", 10, "voluntary", paper, [[2000, 2010]])
    transfer(r, "t-in", "xiaogan-platform", "paper-mill", 10, xg(r), [[2500, 2510]])  # still receives
    spend(r, "cancellation", {"cancellation_id": "c-h", "account": "paper-mill", "amount_g": 10, "reason": "court", "issuances": None}, r.admin, [[2000, 2010]])
    hold(r, "h-2", "paper-mill", False)
    retire(r, "r-ok", "paper-mill", 10, "voluntary", paper, [[2010, 2020]])
    check(r, [("FROZEN", frozen_transfer), ("FROZEN", frozen_retirement)])


def test_a_case_belongs_to_its_account(r, check):
    hold(r, "h-1", "paper-mill", True, case_id="SHARED")
    other = hold(r, "h-2", "lakeside-hotel", False, case_id="SHARED")
    missing = hold(r, "h-3", "no-such-account", True)
    again = hold(r, "h-1", "paper-mill", True)
    frozen = transfer(r, "t-f", "paper-mill", "lakeside-hotel", 10, key(r, "paper mill"), [[2000, 2010]])
    check(r, [("UNKNOWN_REF", other), ("UNKNOWN_REF", missing), ("DUPLICATE_ID", again), ("FROZEN", frozen)])


def test_serials_must_be_the_lowest_of_the_chosen_issuances(r, check):
    not_lowest = transfer(r, "t-1", "xiaogan-platform", "paper-mill", 10, xg(r), [[3430, 3440]], issuances=["pi-xg-cycle"])
    not_lowest_of_all = transfer(r, "t-2", "xiaogan-platform", "paper-mill", 10, xg(r), [[3420, 3430]])
    transfer(r, "t-3", "xiaogan-platform", "paper-mill", 10, xg(r), [[3420, 3430]], issuances=["pi-xg-cycle"])
    transfer(r, "t-4", "xiaogan-platform", "paper-mill", 10, xg(r), [[2500, 2510]])
    across = transfer(r, "t-5", "xiaogan-platform", "paper-mill", 700, xg(r), [[2510, 3120], [3430, 3520]], issuances=["pi-xg-cycle", "pi-xg-bus"])
    unknown = transfer(r, "t-6", "xiaogan-platform", "paper-mill", 10, xg(r), [[2510, 2520]], issuances=["pi-nope"])
    check(r, [("NOT_HELD", not_lowest), ("NOT_HELD", not_lowest_of_all), ("UNKNOWN_REF", unknown)])
    assert across


def test_issuances_must_be_null_or_distinct_ids(r, check):
    empty = transfer(r, "t-1", "xiaogan-platform", "paper-mill", 10, xg(r), [[2500, 2510]], issuances=[])
    repeated = transfer(r, "t-2", "xiaogan-platform", "paper-mill", 10, xg(r), [[2500, 2510]], issuances=["pi-xg-bus", "pi-xg-bus"])
    check(r, [("SCHEMA", empty), ("SCHEMA", repeated)])


# -- offsets: OFFSET_INELIGIBLE at an ets_offset retirement, per version ---------------------------


def test_an_ets_offset_retirement_of_an_ineligible_methodology(r, check):
    ineligible = retire(r, "r-ev", "huangshi-platform", 10, "ets_offset", hs(r), [[107686, 107696]], issuances=["pi-hs-ev"])
    retire(r, "r-power", "huangshi-platform", 10, "ets_offset", hs(r), [[27310, 27320]], issuances=["pi-hs-power"])
    retire(r, "r-ev-voluntary", "huangshi-platform", 10, "voluntary", hs(r), [[107686, 107696]], issuances=["pi-hs-ev"])
    check(r, [("OFFSET_INELIGIBLE", ineligible)])


def test_eligibility_is_per_version(r, check):
    register(r, BUS, 2, bus_params(r))  # not eligible; version 1 stays eligible
    bus_batch(r, "v2", bus_records("v2", subject_of("v2"), 1), methodology_version=2)
    review(r, "rv-v2", "batch", "v2")
    issue_bus(r, "iss-v2", "v2", account="paper-mill")  # [152935, 153147)
    paper = key(r, "paper mill")
    retire(r, "r-v1", "paper-mill", 10, "ets_offset", paper, [[2000, 2010]], issuances=["pi-xg-bus"])
    ineligible = retire(r, "r-v2", "paper-mill", 10, "ets_offset", paper, [[152935, 152945]], issuances=["iss-v2"])
    check(r, [("OFFSET_INELIGIBLE", ineligible)])


def test_an_evidence_hash_backs_one_issuance(r, check):
    evidence = sha256(b"verification report of the hotel's boilers").hexdigest()
    review(r, "rv-e", "evidence", evidence)
    body = {"account": "lakeside-hotel", "methodology_id": "HS-GC-BAG", "region": "420200", "evidence": evidence}
    r.issue("iss-e1", amount_g=1000, **body)
    second = r.issue("iss-e2", amount_g=500, **body)
    r.next_serial -= 500
    unreviewed = r.issue("iss-e3", amount_g=500, **dict(body, evidence=sha256(b"another").hexdigest()))
    check(r, [("DOUBLE_ISSUANCE", second), ("UNREVIEWED", unreviewed)])


# -- the log as a whole ----------------------------------------------------------------------------


def test_an_event_signed_with_the_format_1_prefix_is_signature(r, check):
    r.log_format = 1
    seq = review(r, "v1-signed", "batch", "xg-bus-2026-05")
    r.log_format = 2
    check(r, [("SIGNATURE", seq)])


def test_a_genesis_of_another_format_starts_a_format_1_log_and_is_schema(r, tmp_path):
    r.leaves[0]["body"]["format"] = 3
    r.resign(0, r.root)
    bundle = r.write(tmp_path)
    result = verify_bundle(bundle.path, bundle.trust_object(), jobs=1)
    assert result.log_format == 1 and found(result)[0] == ("SCHEMA", 0)


def test_an_empty_log_has_no_format(r, tmp_path):
    r.leaves = []
    bundle = r.write(tmp_path, notes=[])
    assert verify_bundle(bundle.path, bundle.trust_object(), jobs=1).log_format is None


def test_many_chunks_give_the_same_findings_with_workers(r, check):
    """Caps clipped across chunk and batch boundaries, then a QUANTIFICATION deep in a later chunk:
    an inline run and one with a worker agree on everything."""
    count = 2 * CHUNK_RECORDS + 21
    totals = {}

    def records(prefix, day, subjects):
        out = []
        for n in range(count):
            subject = subject_of(f"{day}-{n % subjects}")
            grams = max(0, min(212, 1000 - totals.get(subject, 0)))  # section 7.2 for per_trip 212.5
            totals[subject] = totals.get(subject, 0) + grams
            out.append(record_v2(f"{prefix}-{n}", subject, day, {"fare": "adult"}, grams))
        return out

    bus_batch(r, "many-1", records("m1", "2026-07-05", 1300))  # 3 or 4 trips a subject
    bus_batch(r, "many-2", records("m2", "2026-07-05", 1300))  # the cap clips across batches and chunks
    bad = records("m3", "2026-07-06", 900)
    victim = CHUNK_RECORDS + 5
    data = json.loads(bad[victim])
    data["reduction_g"] += 1
    bad[victim] = json.dumps(data, separators=(",", ":"), sort_keys=True).encode()
    bad_seq = bus_batch(r, "many-3", bad)
    inline = check(r, [("QUANTIFICATION", bad_seq)], jobs=1)
    parallel = check(r, [("QUANTIFICATION", bad_seq)], jobs=2, min_parallel_bytes=0)
    assert parallel.stats["workers"] == 1 and inline.stats["activity_records"] == 43 + 3 * count
    assert parallel.violations.listed == inline.violations.listed
    assert f"line {victim + 1}:" in inline.violations.listed[0].message
    assert parallel.totals.as_json() == inline.totals.as_json()



@pytest.mark.parametrize("chunk_records", [4, 8, CHUNK_RECORDS])
@pytest.mark.parametrize("jobs", [1, 2])
def test_a_group_beyond_the_cap_names_its_first_clipped_record_however_the_chunks_are_cut(r, check, monkeypatch, chunk_records, jobs):
    """Six trips of one subject at their formula, between other people's: the fifth is the first
    the daily cap clips (848 g before it), whichever chunk holds the subject's first trips."""
    capped = subject_of("over-the-cap")
    records = []
    for trip in range(6):
        records.extend(bus_records(f"other-{trip}", subject_of(f"other-{trip}"), 3))
        records.append(record_v2(f"capped-{trip}", capped, "2026-07-03", {"fare": "adult"}, 212))
    fifth_line = 5 * 4  # each trip follows three others
    bad = bus_batch(r, "over-cap", records)
    monkeypatch.setattr(activities, "CHUNK_RECORDS", chunk_records)
    result = check(r, [("QUANTIFICATION", bad)], jobs=jobs, min_parallel_bytes=0)
    message = result.violations.listed[0].message
    assert message == f"activities/over-cap.jsonl line {fifth_line}: reduction_g 212, section 7.2 gives 152"


# -- the fast path of leaves.py for format 2's transfers and retirements --------------------------

FAST_LINES_2 = [
    fast_line("transfer", {"transfer_id": "t", "from": "a", "to": "b", "amount_g": 3, "issuances": None, "request_id": "r1"}, [[0, 3]]),
    fast_line("transfer", {"transfer_id": "t", "from": "a", "to": "b", "amount_g": 3, "issuances": ["i-1", "i.2"], "request_id": "r2"}, [[0, 3]]),
    fast_line("transfer", {"transfer_id": "t", "from": "a", "to": "b", "amount_g": 3, "issuances": ["i-1", "i-1"], "request_id": "r3"}, [[0, 3]]),
    fast_line("transfer", {"transfer_id": "t", "from": "a", "to": "b", "amount_g": 3, "issuances": [], "request_id": "r4"}, [[0, 3]]),
    fast_line("transfer", {"transfer_id": "t", "from": "a", "to": "b", "amount_g": 3, "request_id": "r5"}, [[0, 3]]),
    fast_line("retirement", {"retirement_id": "x", "account": "a", "amount_g": 1, "purpose": "ets_offset", "beneficiary": "b", "issuances": ["i"], "request_id": "r6"}, [[0, 1]]),
]


def parse_both_formats_2(raw):
    fast, slow = LeafParser(FAST_ORIGIN, FAST_ROOT_KEYS, 2), LeafParser(FAST_ORIGIN, FAST_ROOT_KEYS, 2)
    slow._parse_fast = lambda raw, text: None
    for parser in (fast, slow):
        parser.next_seq, parser.previous_time = 7, FAST_PREVIOUS_TIME
    fast_leaf, slow_leaf = fast.parse(raw), slow.parse(raw)
    assert leaf_state(fast_leaf) == leaf_state(slow_leaf), raw
    return fast, fast_leaf


def test_format_2_fast_path_equals_the_general_path():
    generator = random.Random(2)
    for raw in FAST_LINES_2:
        parse_both_formats_2(raw)
        text = raw.decode("utf-8")
        for _ in range(300):
            position = generator.randrange(len(text))
            mutant = text[:position] + generator.choice(MUTATION_CHARACTERS) + text[position + 1 :]
            parse_both_formats_2(mutant.encode("utf-8"))
    parser, leaf = parse_both_formats_2(FAST_LINES_2[1])
    assert leaf.problem is None and leaf.body["issuances"] == ["i-1", "i.2"]
    parser.next_seq, parser.previous_time = 7, FAST_PREVIOUS_TIME
    assert parser._parse_fast(FAST_LINES_2[1], FAST_LINES_2[1].decode()) is not None
    assert [parse_both_formats_2(raw)[1].problem[0] for raw in FAST_LINES_2[2:5]] == ["SCHEMA"] * 3
    assert leaf.signed[64:79] == b"puhui-event/v2\n"


def test_format_2_clean_chunk_path_equals_record_by_record():
    """The chunk-at-a-time path of records_v2 gives what the record-by-record path gives, on the
    vector's records and on mutants of them (which it must leave to the careful path)."""
    from verifier.digests import StringHashDigester
    from verifier.methodologies import Definition
    from verifier.records_v2 import RecordJob, _check_chunk, _check_clean_chunk, check_record_chunk

    r = rekeyed_vector()
    definition = Definition.of("XG-GT-CYCLE", 1, r.leaves[20]["body"]["params"])
    records = r.activity_files["hs-cycle-2026-05"].splitlines() + r.activity_files["xg-cycle-2026-05"].splitlines()

    def job(lines, first=1):
        return RecordJob("2026-05-01", "2026-05-31", StringHashDigester(), first, b"\n".join(lines), definition)

    assert _check_clean_chunk(job(records, 2049)) is not None
    assert check_record_chunk(job(records, 2049)) == _check_chunk(job(records, 2049))
    generator = random.Random(7)
    for _ in range(1500):  # one byte replaced, any byte (invalid UTF-8 too)
        mutated = list(records)
        index = generator.randrange(len(mutated))
        position = generator.randrange(len(mutated[index]))
        mutated[index] = mutated[index][:position] + bytes([generator.randrange(256)]) + mutated[index][position + 1 :]
        assert check_record_chunk(job(mutated)) == _check_chunk(job(mutated))
    for character in MUTATION_CHARACTERS:  # each character at each place of the first record
        for position in range(0, len(records[0]), 7):
            mutated = [records[0][:position] + character.encode() + records[0][position:]] + records[1:]
            assert check_record_chunk(job(mutated)) == _check_chunk(job(mutated))
    joined = b"\n".join(records)
    for blob in (joined + b"\n", b"\n" + joined, joined.replace(b"\n", b"", 1), joined.replace(b'"distance_m":', b'"dock":"D","distance_m":', 1)):
        assert check_record_chunk(job(blob.split(b"\n"))) == _check_chunk(job(blob.split(b"\n")))


def test_typed_frame_hex_fields_are_decided_as_record_by_record():
    """The typed frame matches a fingerprint, private_sha256 and subject as any characters but a
    newline and checks them as lowercase hex afterwards: a quote, a newline, an uppercase or a
    non-hex letter, a non-ASCII character, or one character too many or too few in any of them
    must leave the chunk to the careful path, with the same outcome."""
    from verifier.digests import StringHashDigester
    from verifier.methodologies import Definition
    from verifier.records_v2 import RecordJob, _check_chunk, _check_clean_chunk, check_record_chunk, typed_frame

    r = rekeyed_vector()
    definition = Definition.of("XG-GT-CYCLE", 1, r.leaves[20]["body"]["params"])
    assert typed_frame(definition) is not None
    records = r.activity_files["hs-cycle-2026-05"].splitlines() + r.activity_files["xg-cycle-2026-05"].splitlines()

    def outcomes(lines):
        job = RecordJob("2026-05-01", "2026-05-31", StringHashDigester(), 1, b"\n".join(lines), definition)
        return check_record_chunk(job), _check_chunk(job)

    assert _check_clean_chunk(RecordJob("2026-05-01", "2026-05-31", StringHashDigester(), 1, b"\n".join(records), definition)) is not None
    first = records[-1]
    changed = 0
    for field in (b'"fingerprint":"', b'"private_sha256":"', b'"subject":"'):
        start = first.index(field) + len(field)
        end = first.index(b'"', start)
        for position in (start, start + 1, (start + end) // 2, end - 1):
            for replacement in (b'"', b"\n", b"A", b"g", "é".encode(), b'\\"', b"", b"00"):
                mutated = first[:position] + replacement + first[position + 1 :]
                fast, careful = outcomes(records[:-1] + [mutated])
                assert fast == careful, (field, position, replacement)
                changed += careful.problem is not None
    assert changed == 3 * 4 * 8  # every mutant is a malformed record


def test_with_no_rules_in_force_reviews_cannot_be_counted(r, tmp_path):
    """A genesis that is rejected (here its signature) leaves no rules: eligibility turned on and
    issuances are UNREVIEWED, whatever the reviews."""
    r.leaves[0]["auth"]["sig"] = r.leaves[1]["auth"]["sig"]
    bundle = r.write(tmp_path)
    result = verify_bundle(bundle.path, bundle.trust_object(), jobs=1)
    codes = dict((seq, code) for code, seq in found(result))
    assert (codes[0], codes[26], codes[29], codes[40]) == ("SIGNATURE", "UNREVIEWED", "UNREVIEWED", "UNREVIEWED")


def test_a_quorum_of_zero_needs_no_review_but_a_rejection_still_blocks(r, check):
    rules = dict(r.leaves[0]["body"]["rules"], review_quorum={"issuance": 0, "eligibility": 0})
    r.event("registry.rules", {"rules": rules}, r.root)
    bus_batch(r, "zero", bus_records("zero", subject_of("zero"), 1))
    issue_bus(r, "iss-zero", "zero")
    bus_batch(r, "zero-rej", bus_records("zero-rej", subject_of("zero-rej"), 1))
    review(r, "zr", "batch", "zero-rej", verdict="rejected")
    rejected = issue_bus(r, "iss-zero-rej", "zero-rej")
    illustrative = eligibility(r, "HS-ES-EV", 1)
    eligibility(r, "XG-GT-CYCLE", 1)
    check(r, [("UNREVIEWED", rejected), ("OFFSET_INELIGIBLE", illustrative)])


def test_opening_an_open_case_again_changes_nothing(r, check):
    hold(r, "h-1", "paper-mill", True)
    hold(r, "h-2", "paper-mill", True)
    hold(r, "h-3", "paper-mill", False)
    retire(r, "r-ok", "paper-mill", 10, "voluntary", key(r, "paper mill"), [[2000, 2010]])
    again = hold(r, "h-4", "paper-mill", False)
    check(r, [("UNKNOWN_REF", again)])


def test_subject_digests_are_of_text_packed_a_column_at_a_time():
    """records_v2 packs a chunk's subject digests with pack_of_texts: of_text's values (never 0,
    the empty slot of KnownSubjects, nor -1), whatever a subclass does to pack_texts."""
    from array import array

    from verifier.digests import Blake2bDigester, StringHashDigester, _as_of_text

    class Narrow(Blake2bDigester):
        def pack_texts(self, texts):
            return bytes(8 * len(texts))

    texts = [subject_of(f"s{n}") for n in range(50)] + ["\u0141", "A\x01"]
    for digester in (StringHashDigester(), Blake2bDigester(b"k" * 32), Narrow(b"k" * 32)):
        assert digester.pack_of_texts(texts) == array("q", map(digester.of_text, texts)).tobytes()
    stuck = array("q", [0, -1, 7]).tobytes()
    assert array("q", _as_of_text(stuck, ["a", "b", "c"], {"a": 1, "b": 1, "c": 7}.get)).tolist() == [1, 1, 7]
