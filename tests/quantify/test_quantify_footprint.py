"""Footprints checked by hand, period comparisons, neutrality plans and claims."""

from __future__ import annotations

import csv
import io

import pytest

from quantify.footprint import FootprintError, compare_footprints, emission_factors, footprint
from quantify.neutrality import NotCovered, Retirement, claim_page, neutrality_claim_body, neutrality_plan

ledger_schema = pytest.importorskip("ledger.schema")

MARATHON = {
    "name": "武汉马拉松 2026",
    "kind": "event",
    "period_start": "2026-04-01",
    "period_end": "2026-04-30",
    "entries": [
        {"site": "start-area", "month": "2026-04", "source": "electricity", "quantity": "1200.5"},
        {"site": "start-area", "month": "2026-04", "source": "diesel", "quantity": "300"},
        {"site": "hotels", "month": "2026-04", "source": "hotel_night", "quantity": 850},
        {"site": "travel", "month": "2026-04", "source": "air_travel", "quantity": "120000"},
        {"site": "travel", "month": "2026-04", "source": "rail_travel", "quantity": "333333.3"},
        {"site": "catering", "month": "2026-04", "source": "meal", "quantity": "4000"},
    ],
}


def test_event_footprint_by_hand():
    fp = footprint(MARATHON)
    grams = [line.emissions_g for line in fp.lines]
    assert grams == [
        630263,      # 1200.5 kWh * 525 g = 630262.5, rounded up
        804000,      # 300 L * 2680 g
        17000000,    # 850 nights * 20000 g
        18000000,    # 120000 pkm * 150 g
        13333332,    # 333333.3 pkm * 40 g = 13333332 exactly
        10000000,    # 4000 meals * 2500 g
    ]
    assert fp.total_g == sum(grams) == 59767595
    assert fp.by("scope") == {1: 804000, 2: 630263, 3: 58333332}
    assert fp.by("site")["travel"] == 31333332
    assert fp.by("month") == {"2026-04": fp.total_g}
    report = fp.report()
    summary = {(r["dimension"], str(r["key"])): r["emissions_t"] for r in report.as_json()["tables"]["summary"]}
    assert summary[("total", "all")] == "59.768"
    assert summary[("scope", "3")] == "58.333"
    assert fp.illustrative
    assert any("hotel_night" in note and "illustrative" in note for note in report.notes)
    cited = {f.key: f.citation() for f in fp.factors_used()}
    assert "see spec/methodology-sources.md" in cited["electricity"]
    assert cited["meal"] == "ILLUSTRATIVE (no published source)"
    rows = list(csv.reader(io.StringIO(report.to_csv())))
    assert ["total", "all", "59767595", "59.768"] in rows


def test_every_footprint_factor_is_cited_or_marked():
    for f in emission_factors().values():
        assert (f.source is None) == f.illustrative
        assert f.scope in (1, 2, 3)


def test_comparison_across_periods():
    earlier = footprint({**MARATHON, "entries": MARATHON["entries"][:2]})
    later = footprint({**MARATHON, "entries": [
        {"site": "start-area", "month": "2026-04", "source": "electricity", "quantity": "1000"},
        {"site": "start-area", "month": "2026-04", "source": "natural_gas", "quantity": "10"}]})
    rows = {(r["dimension"], str(r["key"])): r for r in compare_footprints(earlier, later).as_json()["tables"]["comparison"]}
    assert rows[("source", "electricity")]["change_g"] == 525000 - 630263
    assert rows[("source", "electricity")]["change_percent"] == "-16.7%"
    assert rows[("source", "natural_gas")]["change_percent"] == "n/a"
    assert rows[("source", "diesel")]["later_g"] == 0
    assert rows[("total", "all")]["change_g"] == later.total_g - earlier.total_g


@pytest.mark.parametrize("change, where", [
    ({"kind": "company"}, "kind"),
    ({"period_start": "2026-05-01"}, "period"),
    ({"entries": []}, "entries"),
    ({"entries": [{"site": "x", "month": "2026-05", "source": "meal", "quantity": "1"}]}, "month"),
    ({"entries": [{"site": "x", "month": "2026-04", "source": "unicorns", "quantity": "1"}]}, "source"),
    ({"entries": [{"site": "x", "month": "2026-04", "source": "meal", "quantity": 1.5}]}, "quantity"),
    ({"entries": [{"site": "x", "month": "2026-04", "source": "meal", "quantity": "-1"}]}, "quantity"),
    ({"entries": [{"site": "x", "month": "2026-04", "source": "meal", "quantity": "1e3"}]}, "quantity"),
    ({"name": "Cafe\u0301"}, "name"),  # not NFC
])
def test_bad_activity_data_is_refused(change, where):
    with pytest.raises(FootprintError, match=where):
        footprint({**MARATHON, **change})


def retirement(rid, amount_g, account="org-wh", purpose="carbon_neutrality"):
    return Retirement(rid, account, amount_g, purpose, serials=[[1000, 1000 + amount_g]], seq=40,
                      proof={"leaf_index": 40, "tree_size": 64, "hashes": ["00" * 32] * 6})


def test_a_claim_is_built_only_when_retirements_cover_the_footprint():
    fp = footprint(MARATHON)
    short = neutrality_plan(fp, "org-wh", [retirement("r1", 50_000_000),
                                           retirement("r2", 9_000_000, purpose="voluntary"),
                                           retirement("r3", 9_000_000, account="someone-else"),
                                           retirement("r1", 50_000_000)])
    assert short.retired_g == 50_000_000 and not short.covered and short.short_g == 9_767_595
    assert [why for _, why in short.excluded] == ["purpose voluntary, not carbon_neutrality",
                                                  "retired from someone-else, not from org-wh", "listed twice"]
    assert "short by 9.768 t" in short.report().notes[0]
    with pytest.raises(NotCovered):
        neutrality_claim_body(short, "claim-1")

    used = neutrality_plan(fp, "org-wh", [retirement("r1", 50_000_000), retirement("r4", 9_767_595)],
                           used_retirement_ids={"r4"})
    assert not used.covered

    plan = neutrality_plan(fp, "org-wh", [retirement("r1", 50_000_000), retirement("r5", 9_767_595)])
    assert plan.covered and plan.short_g == 0
    claim = neutrality_claim_body(plan, "claim-1")
    assert claim == {"claim_id": "claim-1", "claimant": "org-wh", "subject": {"kind": "event", "name": "武汉马拉松 2026"},
                     "period_start": "2026-04-01", "period_end": "2026-04-30", "footprint_g": 59767595,
                     "retirements": ["r1", "r5"]}
    ledger_schema.check_body("neutrality.claim", {**claim, "request_id": "r-1"}, 1)

    page = claim_page(claim, plan)
    text = page.to_csv()
    assert "59.768" in text and "[1000,50001000)" in text and "6 hashes, tree size 64" in text
    assert page.data["retirements"][1]["proof"]["tree_size"] == 64
    assert page.data["footprint"]["lines"][0]["citation"].startswith("武碳江湖")
    with pytest.raises(ValueError):
        claim_page({**claim, "footprint_g": 1}, plan)
