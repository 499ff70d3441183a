"""The shipped methodology library: loads, covers the sectors, cites or marks every factor,
publishes params without floats, and refuses malformed definitions."""

from __future__ import annotations

import copy
import json

import pytest

from quantify.methodology import (
    FORMULAS,
    SECTORS,
    MethodologyError,
    MethodologyLibrary,
    eligibility_body,
    from_json,
    listing,
    register_body,
)

REQUIRED_ACTS = ("METRO", "BUS", "CYCLE", "WALK", "NEVCHARGE", "ELECSAVE", "RECYCLE", "ROOFPV")


def _walk(value, path="params"):
    """Yield (path, value) for every leaf of a JSON value."""
    if isinstance(value, dict):
        for key, item in value.items():
            assert isinstance(key, str)
            yield from _walk(item, f"{path}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _walk(item, f"{path}[{i}]")
    else:
        yield path, value


def test_library_has_at_least_eight_methodologies_over_the_four_sectors(library):
    latest = library.latest()
    assert len(latest) >= 8
    assert {m.sector for m in latest} >= {"green_travel", "green_consumption", "resource_saving",
                                          "energy_substitution"}
    ids = " ".join(library.ids())
    for act in REQUIRED_ACTS:
        assert act in ids
    assert "SECONDHAND" in ids or "OWNBAG" in ids


def test_every_factor_is_cited_or_marked_illustrative(library):
    for m in library.all():
        for f in m.factors:
            assert (f.source is None) == f.illustrative, (m.methodology_id, f.name)
            if not f.illustrative:  # the file a clone holds, not the workspace's upstream copy
                assert "see spec/methodology-sources.md" in f.source
        assert m.illustrative == any(f.illustrative for f in m.factors)


def test_published_factors_are_the_ones_in_the_sources_file(library):
    published = {("HB-GT-METRO", 1): "78.4", ("HB-GT-BUS", 1): "150", ("HB-GT-BUS", 2): "212.5",
                 ("HB-GT-CYCLE", 1): "40", ("HB-GT-CYCLE", 2): "93.3", ("HB-RS-ELECSAVE", 1): "525",
                 ("HB-GC-OWNBAG", 1): "5"}
    for (mid, version), value in published.items():
        m = library.get(mid, version)
        assert [f.value for f in m.factors if not f.illustrative] == [value]


def test_register_bodies_have_no_floats_and_pass_the_ledger_schema(library):
    schema = pytest.importorskip("ledger.schema")
    for m in library.all():
        body = register_body(m)
        assert set(body) == {"methodology_id", "version", "title", "sector", "params", "offset_eligible"}
        for path, value in _walk(body["params"]):
            assert value is None or isinstance(value, (str, int, bool)), path
            assert not isinstance(value, float), path
        for name, factor in body["params"]["factors"].items():
            assert isinstance(factor["value"], str)
            assert factor["illustrative"] or factor["source"]
        schema.check_body("methodology.register", {**body, "request_id": "r-1"}, 1)
        schema.check_body("methodology.register", {**body, "request_id": "r-1"}, 2)  # params: a spec 7.1 definition
        # The definition round-trips through its published form.
        assert from_json(json.loads(json.dumps(m.as_json()))) == m


def test_every_methodology_validates_its_inputs(library):
    from quantify.activity import InvalidActivity, quantify

    for m in library.all():
        with pytest.raises(InvalidActivity):
            quantify(m, {"no_such_input": 1})
        with pytest.raises(InvalidActivity):
            quantify(m, [])
        for field in m.inputs:
            if field.kind == "integer":
                good = {f.name: (f.minimum if f.kind == "integer" else f.values[0] if f.kind == "enum" else "X1")
                        for f in m.inputs if f.required}
                assert quantify(m, good) >= 0
                for bad in (field.maximum + 1, -1, "12", 1.5, True, None):
                    with pytest.raises(InvalidActivity):
                        quantify(m, {**good, field.name: bad})


def test_versions_supersede_without_touching_the_old(library):
    bus1, bus2 = library.get("HB-GT-BUS", 1), library.get("HB-GT-BUS", 2)
    assert library.get("HB-GT-BUS") is bus2
    assert bus1.factor("g_per_trip").value == "150" and bus2.factor("g_per_trip").value == "212.5"
    entries = {(e["methodology_id"], e["version"]): e for e in listing(library)}
    assert entries[("HB-GT-BUS", 1)]["superseded_by"] == 2
    assert entries[("HB-GT-BUS", 2)]["superseded_by"] is None


def test_library_refuses_a_gap_in_versions(library):
    bus2 = library.get("HB-GT-BUS", 2)
    with pytest.raises(MethodologyError):
        MethodologyLibrary([bus2])


def test_listing_reports_the_eligibility_the_registry_holds(library):
    entries = listing(library, {"HB-GT-METRO": False, "HB-RS-ELECSAVE": True})
    by_id = {(e["methodology_id"], e["version"]): e for e in entries}
    assert by_id[("HB-GT-METRO", 1)]["offset_eligible"] is False
    assert by_id[("HB-RS-ELECSAVE", 1)]["offset_eligible"] is True
    assert by_id[("HB-GT-BUS", 2)]["offset_eligible"] is library.get("HB-GT-BUS").offset_eligible
    for e in entries:
        assert {"methodology_id", "version", "sector", "title", "params", "offset_eligible"} <= e.keys()


def test_eligibility_is_switched_one_methodology_at_a_time(library):
    assert eligibility_body(library.get("HB-GT-BUS"), True) == {"methodology_id": "HB-GT-BUS",
                                                                "offset_eligible": True}
    assert eligibility_body(library.get("HB-GT-METRO"), False)["offset_eligible"] is False
    with pytest.raises(MethodologyError, match="illustrative"):
        eligibility_body(library.get("HB-RS-RECYCLE"), True)  # its factor has no published source
    assert eligibility_body(library.get("HB-RS-RECYCLE"), False)["offset_eligible"] is False


def _bad(doc, change):
    doc = copy.deepcopy(doc)
    change(doc)
    return doc


@pytest.mark.parametrize("change, message", [
    (lambda d: d["params"]["factors"]["g_per_km"].update(value=78.4), "decimal string"),
    (lambda d: d["params"]["factors"]["g_per_km"].update(value="-1"), "decimal string"),
    (lambda d: d["params"]["factors"]["g_per_km"].update(source=None), "source"),
    (lambda d: d["params"]["factors"]["g_per_km"].update(illustrative=True), "illustrative value has no source"),
    (lambda d: d["params"]["formula"].update(kind="per_smile"), "formula"),
    (lambda d: d.update(sector="space"), "sector"),
    (lambda d: d["params"]["fingerprint"].update(fields=["distance_m"]), "not a required code or enum"),
    (lambda d: d["params"]["fingerprint"].update(time="week"), "fingerprint.time"),
    (lambda d: d["params"]["daily_cap"].update(value_g=0), "value_g"),
    (lambda d: d.update(extra=1), "unknown extra"),
    (lambda d: d["params"]["inputs"].pop("distance_m"), "distance_m"),
    (lambda d: d["params"]["inputs"].update(subject={"type": "code", "required": True, "public": False,
                                                     "description": "x"}), "subject"),
    (lambda d: d["params"]["factors"].update(more={"value": "1", "unit": "g", "source": None, "illustrative": True}),
     "exactly the factors"),
    (lambda d: d["params"]["inputs"]["distance_m"].update(public=False), "distance_m, public"),
    (lambda d: d["params"]["inputs"]["entry_station"].pop("public"), "every input says whether it is public"),
    (lambda d: d["params"]["formula"].update(quantity_field="items"), "quantity_field"),
])
def test_malformed_definitions_are_refused(metro, change, message):
    with pytest.raises(MethodologyError, match=message):
        from_json(_bad(metro.as_json(), change))


def test_an_illustrative_methodology_cannot_start_offset_eligible(library):
    doc = library.get("HB-RS-RECYCLE").as_json()
    doc["offset_eligible"] = True
    with pytest.raises(MethodologyError, match="offset eligible"):
        from_json(doc)


def test_formula_kinds_are_a_closed_set_with_quantity_inputs(library):
    used = {m.formula_kind for m in library.all()}
    assert used <= set(FORMULAS)
    assert {"per_trip", "per_distance", "distance_baseline_minus_project", "per_item", "per_kg",
            "per_kwh"} <= used
    assert all(m.sector in SECTORS for m in library.all())
