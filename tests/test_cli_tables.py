"""What `puhui` prints for people fits an 80-column terminal: every line of the commands that print
tables is 80 columns at most, every row of a drawn table is one line, and no tonnes figure is cut
or left out (a table too wide is printed a block a row: cli.tables)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from rich.cells import cell_len
from rich.console import Console

from cli.tables import heading_lines, print_table, table_width
from ledger.units import tonnes
from service.registry_dir import RegistryDir

REPO = Path(__file__).resolve().parents[1]
PASSPHRASE = "demo only"
WIDTH = 80
INVENTORY = {"name": "光谷春季博览会 2026", "kind": "event", "period_start": "2026-03-01", "period_end": "2026-03-31",
             "entries": [{"site": "hall-a", "month": "2026-03", "source": "electricity", "quantity": 1000},
                         {"site": "hall-a", "month": "2026-03", "source": "diesel", "quantity": "100.5"},
                         {"site": "hotels", "month": "2026-03", "source": "hotel_night", "quantity": 10},
                         {"site": "travel", "month": "2026-03", "source": "air_travel", "quantity": "0.1"}]}


def puhui(*args: object, cwd: Path = REPO) -> str:
    env = dict(os.environ, PUHUI_KEY_PASSPHRASE=PASSPHRASE, COLUMNS=str(WIDTH))
    result = subprocess.run([sys.executable, "-c", "from cli.main import main; main()", *map(str, args)],
                            capture_output=True, text=True, env=env, cwd=cwd, timeout=300, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr + result.stdout
    return result.stdout


def assert_fits(text: str) -> None:
    for line in text.splitlines():
        assert cell_len(line) <= WIDTH, f"{cell_len(line)} columns: {line!r}\n{text}"
    assert "…" not in text, text  # a cell cut short


def assert_report_shown(text: str, report: dict) -> None:
    """Each of the report's tables drawn has one line a row and a header of one line (a table too
    wide is a block a row); every tonnes figure stands whole on a line of the text."""
    lines = text.splitlines()
    for name, rows in report["tables"].items():
        start = lines.index(name) if name in lines else next(
            i for i, line in enumerate(lines) if line.startswith(f"{name} (a block a row"))
        if lines[start] == name:
            end = next(i for i in range(start, len(lines)) if lines[i].startswith("└"))
            drawn = lines[start + 1:end]
            assert [line[0] for line in drawn] == ["┏", "┃", "┡"] + ["│"] * len(rows), (name, text)
    words = {word for line in lines for word in line.replace("│", " ").split()}
    for rows in report["tables"].values():
        for row in rows:
            for column, value in row.items():
                if isinstance(value, int) and not isinstance(value, bool) and column.endswith("_g"):
                    assert tonnes(value).removeprefix("-0.000").strip("-") in words | {""}, (column, value, text)


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> tuple[Path, str]:
    root = tmp_path_factory.mktemp("tables")
    out = puhui("demo", root / "demo-registry", "--records-per-batch", "20", "--key-strength", "interactive")
    return root / "demo-registry", out


@pytest.fixture(scope="module")
def pseudonym(demo) -> str:
    """The demo's citizen with the most records on a day of a few grams (one that reads 0.000 t): the
    demo's log is format 2, where a subject is a person's pseudonym of one day."""
    registry = RegistryDir(demo[0]).open(with_log_key=False)
    try:
        records = [json.loads(line) for batch_id in registry.state.batches for line in registry.batch_records(batch_id)]
    finally:
        registry.close()
    day_g: Counter[str] = Counter()
    for record in records:
        day_g[record["subject"]] += record["reduction_g"]
    counts = Counter(record["subject"] for record in records if 0 < day_g[record["subject"]] <= 500)
    return counts.most_common(1)[0][0]


def test_a_table_that_fits_is_drawn_one_line_a_row_and_a_wider_one_a_block_a_row():
    narrow = [["issued", "26.165"], ["retired for carbon_neutrality", "18.653"]]
    out = io.StringIO()
    print_table("reductions", ["", "tonnes"], narrow, right=frozenset({"tonnes"}), console=Console(file=out, width=WIDTH))
    lines = out.getvalue().splitlines()
    assert table_width(["", "tonnes"], narrow) == cell_len(lines[1]) <= WIDTH
    assert [line for line in lines if "26.165" in line] == ["│ issued                        │ 26.165 │"]

    citation = "武碳江湖, Wuhan carbon-inclusive platform, later revision (see spec/methodology-sources.md)"
    wide = [["electricity", "1000", "525", "0.525", citation], ["air_travel", "0.1", "150", "0.000", "ILLUSTRATIVE"]]
    headers = ["source", "quantity", "g_per_unit", "emissions_t", "citation"]
    out = io.StringIO()
    print_table("lines", headers, wide, right=frozenset({"emissions_t"}), console=Console(file=out, width=WIDTH))
    text = out.getvalue()
    assert_fits(text)
    assert "too wide for 80 columns" in text and "│" not in text
    for row in wide:
        for header, cell in zip(headers, row[:4]):
            assert any(line.split() == [header, cell] for line in text.splitlines()), (header, cell, text)
    assert "".join(text.split()).count("".join(citation.split())) == 1  # folded over lines, whole


def test_status_and_the_demo_fit_80_columns(demo):
    directory, demo_out = demo
    assert_fits(demo_out)
    shown = puhui("status", directory)
    assert_fits(shown)
    totals = json.loads(puhui("status", directory, "--json"))["totals_g"]
    for label in ("issued", "active", "retired", "cancelled"):
        assert any(line.split() == ["│", label, "│", tonnes(totals[f"{label}_g"]), "│"] for line in shown.splitlines()), shown


def test_methodologies_fit_80_columns(demo):
    shown = puhui("methodologies", demo[0])
    assert_fits(shown)
    # The heading is cut where its phrases part, never mid-phrase ("...80 ⏎columns").
    assert shown.splitlines()[:2] == ["methodologies: the shipped library and the log",
                                      "(a block a row: too wide for 80 columns)"], shown
    for entry in json.loads(puhui("methodologies", demo[0], "--json")):
        assert any(line.split() == ["methodology", entry["methodology_id"]] for line in shown.splitlines())


def test_a_personal_account_fits_80_columns(demo, pseudonym):
    shown = puhui("account", demo[0], pseudonym)
    assert_fits(shown)
    assert_report_shown(shown, json.loads(puhui("account", demo[0], pseudonym, "--json")))


def test_a_footprint_and_its_comparison_fit_80_columns(tmp_path):
    inventory = tmp_path / "expo.json"
    inventory.write_text(json.dumps(INVENTORY, ensure_ascii=False), encoding="utf-8")
    shown = puhui("footprint", inventory, "--compare", inventory)
    assert_fits(shown)
    assert_report_shown(shown, json.loads(puhui("footprint", inventory, "--json")))


def test_a_heading_too_wide_is_cut_where_its_phrases_part():
    title = "Carbon footprint of Chuhe Mall spring community market 2026, 2026-04-18 to 2026-04-19"
    assert heading_lines(title, 80) == ["Carbon footprint of Chuhe Mall spring community market 2026,",
                                        "2026-04-18 to 2026-04-19"]
    assert heading_lines(title, 100) == [title]
    assert heading_lines("reviews (a block a row: too wide for 40 columns)", 40) == [
        "reviews", "(a block a row: too wide for 40 columns)"]
    assert heading_lines("one phrase far wider than the terminal it is printed on", 20) == [
        "one phrase far wider than the terminal it is printed on"]  # left to the terminal to wrap


def test_a_quantified_act_fits_80_columns():
    inputs = json.dumps({"distance_m": 5000, "entry_station": "S01", "exit_station": "S09"})
    args = ("quantify", "HB-GT-METRO", "--inputs", inputs, "--subject", "p-alice", "--occurred-at",
            "2026-01-05T08:00:00.000000Z")
    shown = puhui(*args)
    assert_fits(shown)
    assert_report_shown(shown, json.loads(puhui(*args, "--json")))


def test_grams_stand_beside_tonnes_that_read_zero(demo, pseudonym, tmp_path):
    shown = puhui("account", demo[0], pseudonym)
    small = [row["reduction_g"] for row in json.loads(puhui("account", demo[0], pseudonym, "--json"))["tables"]["by_day"]
             if 0 < row["reduction_g"] <= 500]
    assert small, "the demo's citizen has a day of a few grams"
    for grams in small:
        assert f"0.000 ({grams} g)" in shown, shown
    assert "0.000 (100 g)" in puhui("methodologies", demo[0])  # HB-GC-OWNBAG's daily cap
    inventory = tmp_path / "expo.json"
    inventory.write_text(json.dumps(INVENTORY, ensure_ascii=False), encoding="utf-8")
    assert "0.000 (15 g)" in puhui("footprint", inventory)  # 0.1 passenger-km by air
