"""Quantification: exact, floored, never negative, monotone, deterministic, explainable."""

from __future__ import annotations

from decimal import ROUND_FLOOR, Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quantify.activity import InvalidActivity, quantify
from quantify.explain import explain, explain_record, explanation_report, quantify_request
from quantify.methodology import load_shipped
from quantify_strategies import inputs_for

LIBRARY = load_shipped()
ALL = LIBRARY.all()


any_case = st.sampled_from(ALL).flatmap(lambda m: st.tuples(st.just(m), inputs_for(m)))


@settings(max_examples=300, deadline=None)
@given(any_case)
def test_deterministic_non_negative_and_equal_to_the_decimal_reference(case):
    methodology, inputs = case
    first = quantify(methodology, inputs)
    assert first == quantify(methodology, dict(reversed(list(inputs.items()))))
    assert isinstance(first, int) and first >= 0
    # The reference: Decimal with ample precision, clipped at 0, floored.
    quantity = 1 if methodology.formula.quantity_field is None else inputs[methodology.formula.quantity_field]
    exact = Decimal(quantity) * methodology.coefficient() / methodology.formula.per_units
    assert first == int(max(exact, Decimal(0)).to_integral_value(rounding=ROUND_FLOOR))
    explanation = explain(methodology, inputs)  # raises if its Decimal path disagrees
    assert explanation["reduction_g"] == first


@settings(max_examples=300, deadline=None)
@given(any_case, st.data())
def test_monotone_in_the_quantity(case, data):
    methodology, inputs = case
    field = methodology.formula.quantity_field
    if field is None:
        return  # one act, one factor: nothing to be monotone in
    spec = next(f for f in methodology.inputs if f.name == field)
    more = data.draw(st.integers(inputs[field], spec.maximum))
    assert quantify(methodology, {**inputs, field: more}) >= quantify(methodology, inputs)


@pytest.mark.parametrize("mid, version, inputs, grams", [
    ("HB-GT-METRO", 1, {"distance_m": 5000, "entry_station": "S1", "exit_station": "S2"}, 392),  # 5 * 78.4
    ("HB-GT-METRO", 1, {"distance_m": 1001, "entry_station": "S1", "exit_station": "S2"}, 78),  # 78.4784
    ("HB-GT-BUS", 1, {"line": "L5"}, 150),
    ("HB-GT-BUS", 2, {"line": "L5"}, 212),  # 212.5, floored
    ("HB-GT-CYCLE", 2, {"distance_m": 3000}, 279),  # 279.9
    ("HB-GT-WALK", 1, {"distance_m": 4000}, 200),  # 4 * (50 - 0)
    ("HB-ES-NEVCHARGE", 1, {"energy_wh": 30500, "charger_id": "C7"}, 16622),  # 30.5 * (1070 - 525)
    ("HB-ES-ROOFPV", 1, {"energy_wh": 12345, "inverter_id": "INV1"}, 6481),  # 12.345 * 525 = 6481.125
    ("HB-RS-ELECSAVE", 1, {"energy_wh": 2000, "meter_id": "M1"}, 1050),
    ("HB-RS-RECYCLE", 1, {"mass_g": 2500, "station_id": "R1"}, 750),
    ("HB-GC-SECONDHAND", 1, {"items": 3, "category": "books"}, 3000),
    ("HB-GC-OWNBAG", 1, {"items": 2, "store_id": "ST1"}, 10),
])
def test_hand_checked_results(mid, version, inputs, grams):
    assert quantify(LIBRARY.get(mid, version), inputs) == grams


def test_zero_quantity_gives_zero():
    assert quantify(LIBRARY.get("HB-GT-METRO"), {"distance_m": 0, "entry_station": "A", "exit_station": "B"}) == 0


def test_explanation_names_formula_factors_sources_inputs_and_result():
    m = LIBRARY.get("HB-ES-NEVCHARGE")
    e = explain(m, {"energy_wh": 30500, "charger_id": "C7"})
    assert e["formula"]["expression"] == (
        "reduction_g = floor(max(0, energy_wh / 1000 * (baseline_g_per_kwh - project_g_per_kwh)))")
    assert e["substitution"] == "floor(max(0, 30500 / 1000 * (1070 - 525))) = floor(16622.5) = 16622"
    assert e["exact_g"] == "16622.5" and e["reduction_g"] == 16622 and e["reduction_t"] == "0.017"
    factors = {f["name"]: f for f in e["factors"]}
    assert factors["baseline_g_per_kwh"]["illustrative"] is True
    assert "methodology-sources.md" in factors["project_g_per_kwh"]["source"]
    assert e["illustrative"] is True
    assert any("baseline_g_per_kwh" in w and "illustrative" in w for w in e["warnings"])
    csv_text = explanation_report(e).to_csv()
    assert "ILLUSTRATIVE (no published source)" in csv_text
    assert "0.017,t,16622 g" in csv_text


def test_a_capped_record_is_explained_with_what_the_cap_dropped():
    m = LIBRARY.get("HB-GT-METRO")
    record = {"activity_id": "a1", "subject": "p1", "occurred_at": "2026-01-05T08:00:00.000000Z",
              "inputs": {"distance_m": 5000, "entry_station": "S1", "exit_station": "S2"}, "reduction_g": 100}
    from quantify.activity import fingerprint
    record["fingerprint"] = fingerprint(m, "p1", record["occurred_at"], record["inputs"])
    e = explain_record(m, record)
    assert e["capped"] == {"recorded_g": 100, "dropped_g": 292, "reason": "daily cap of 3000 g per subject and Beijing day"}
    with pytest.raises(InvalidActivity):
        explain_record(m, {**record, "fingerprint": "0" * 64})
    with pytest.raises(ValueError):
        explain_record(m, {**record, "reduction_g": 393})  # more than the inputs earn


def test_an_old_record_is_explained_under_its_own_version():
    inputs = {"line": "L5"}
    assert explain(LIBRARY.get("HB-GT-BUS", 1), inputs)["reduction_g"] == 150
    assert explain(LIBRARY.get("HB-GT-BUS", 2), inputs)["reduction_g"] == 212


def test_quantify_request_answers_without_writing():
    answer = quantify_request(LIBRARY, {"methodology_id": "HB-GT-METRO", "inputs": {
        "distance_m": 5000, "entry_station": "S1", "exit_station": "S2",
        "subject": "p-1", "occurred_at": "2026-01-05T08:00:01.000000Z"}})
    assert set(answer) == {"reduction_g", "fingerprint", "explanation"}
    assert answer["reduction_g"] == 392 and len(answer["fingerprint"]) == 64
    assert answer["explanation"]["inputs"] == {"distance_m": 5000, "entry_station": "S1", "exit_station": "S2"}
    no_act = quantify_request(LIBRARY, {"methodology_id": "HB-GT-BUS", "version": 1, "inputs": {"line": "L5"}})
    assert no_act["fingerprint"] is None and no_act["reduction_g"] == 150
    with pytest.raises(KeyError):
        quantify_request(LIBRARY, {"methodology_id": "NOPE", "inputs": {}})
    with pytest.raises(InvalidActivity):
        quantify_request(LIBRARY, {"methodology_id": "HB-GT-BUS", "inputs": {"line": "L 5"}})
    with pytest.raises(InvalidActivity):
        quantify_request(LIBRARY, {"methodology_id": "HB-GT-BUS", "inputs": {}, "extra": 1})
