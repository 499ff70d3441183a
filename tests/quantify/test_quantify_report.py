"""Tonnes with three decimals from integer grams, and CSV export."""

from __future__ import annotations

import csv
import io

import pytest
from hypothesis import given
from hypothesis import strategies as st

from quantify.report import Report, Table, format_tonnes


@pytest.mark.parametrize("grams, text", [
    (0, "0.000"), (1, "0.000"), (499, "0.000"), (500, "0.000"), (501, "0.001"), (1500, "0.002"), (2500, "0.002"),
    (999_999, "1.000"), (1_234_567, "1.235"), (-400, "0.000"), (-1500, "-0.002"), (10**15, "1000000000.000"),
])
def test_tonnes_by_hand(grams, text):
    assert format_tonnes(grams) == text


@given(st.integers(-10**18, 10**18))
def test_tonnes_are_the_nearest_kilogram(grams):
    text = format_tonnes(grams)
    whole, decimals = text.lstrip("-").split(".")
    assert len(decimals) == 3
    kilograms = int(whole) * 1000 + int(decimals)
    assert abs(abs(grams) - kilograms * 1000) <= 500


def test_tonnes_refuse_non_integers():
    for bad in (1.5, "3", True):
        with pytest.raises(TypeError):
            format_tonnes(bad)


def test_report_csv_has_every_table_and_note():
    report = Report("Title, with comma", {
        "a": Table(("x", "y"), [(1, "one"), (2, None)]),
        "b": Table(("flag",), [(True,), (False,)]),
    }, notes=["factor k is illustrative"])
    rows = list(csv.reader(io.StringIO(report.to_csv())))
    assert rows[0] == ["Title, with comma"]
    assert ["[a]"] in rows and ["x", "y"] in rows and ["2", ""] in rows and ["true"] in rows
    assert rows[-1] == ["factor k is illustrative"]
    assert report.tables["a"].to_csv() == "x,y\n1,one\n2,\n"
    with pytest.raises(ValueError):
        Table(("x",), [(1, 2)])
