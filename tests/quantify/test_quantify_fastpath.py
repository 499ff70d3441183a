"""The fast path (quantify.fastpath) only ever accepts, and what it accepts is exactly what the
full path gives: the same prepared record (record bytes, fingerprint, reduction_g, leaf hash) for
every line it recognises, and for every other line the full path's own answer (the same
rejection, the same reason and detail). Checked for every shipped methodology on valid records
written in several ways, on edge values, and on thousands of seeded mutations of them. It is
built from the very rules the full path applies (RecordRules.compiled)."""

from __future__ import annotations

import csv
import io
import json
import random
from fractions import Fraction
from typing import Any

import pytest
import rfc8785

from quantify.activity import CODE_INPUT, ENUM_INPUT, INTEGER_INPUT, rules_for
from quantify.fastpath import fast_records
from quantify.methodology import MAX_INTEGER_INPUT
from quantify.prepare import CsvLayout, prepare_csv_rows, prepare_json_lines, read_csv

ID_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-"
TIMES = [
    "2026-01-05T08:00:00.000000Z", "2026-01-31T15:59:59.999999Z", "2026-01-31T16:00:00.000000Z",
    "2024-02-29T23:59:59.000000Z", "2026-12-31T16:30:00.123456Z", "2026-06-30T00:00:00.000000Z",
]
BAD_TIMES = [
    "2026-02-29T08:00:00.000000Z", "2026-04-31T08:00:00.000000Z", "2026-13-01T08:00:00.000000Z",
    "2026-01-05T24:00:00.000000Z", "2026-01-05T08:00:00Z", "2026-01-05 08:00:00.000000Z", "2026-01-05T08:00:00.000000z",
]


def identifier(rng: random.Random, longest: int = 128) -> str:
    n = rng.choice([1, 2, 8, 20, longest])
    return rng.choice(ID_CHARS[:62]) + "".join(rng.choice(ID_CHARS) for _ in range(n - 1))


def valid_record(m, rng: random.Random, i: int) -> dict[str, Any]:
    inputs: dict[str, Any] = {}
    for field in m.inputs:
        if not field.required and rng.random() < 0.4:
            continue
        if field.kind == "integer":
            inputs[field.name] = rng.choice(
                [field.minimum, field.minimum + 1, field.maximum, field.maximum - 1, 1, 999, 1000, 1001,
                 rng.randint(field.minimum, field.maximum)])
        elif field.kind == "code":
            inputs[field.name] = identifier(rng, 64)
        else:
            inputs[field.name] = rng.choice(field.values)
    return {"activity_id": f"a{i}-{identifier(rng)}"[:128], "subject": identifier(rng),
            "occurred_at": rng.choice(TIMES), "inputs": inputs}


def writings(record: dict[str, Any], rng: random.Random) -> list[str]:
    """The same record as different writers put it on a line."""
    inputs_sorted = dict(sorted(record["inputs"].items()))
    return [
        json.dumps(record, separators=(",", ":")) + "\n",
        json.dumps(record) + "\n",
        json.dumps(record, sort_keys=True, separators=(",", ":")) + "\n",
        json.dumps(record, sort_keys=True) + "\r\n",
        json.dumps({**record, "inputs": inputs_sorted}, separators=(",", ":")),
        rfc8785.dumps(record).decode() + "   \n",
        " " + json.dumps(record) + "\n",  # leading blank: the full path
        json.dumps(dict(reversed(list(record.items())))) + "\n",  # an order of its own: the full path
        json.dumps(record, indent=1).replace("\n", " ") + "\n",
    ]


def edge_lines(m, rng: random.Random) -> list[str]:
    """Records each with one value at or beyond an edge."""
    out = []
    base = valid_record(m, rng, 0)
    base["inputs"] = {f.name: valid_record(m, rng, 0)["inputs"].get(f.name, "x1") if f.kind != "integer" else 5000
                      for f in m.inputs if f.required}

    def line(**changes: Any) -> str:
        record = json.loads(json.dumps(base))
        inputs = changes.pop("inputs", {})
        record.update(changes)
        record["inputs"].update(inputs)
        return json.dumps(record, separators=(",", ":")) + "\n"

    for t in TIMES + BAD_TIMES:
        out.append(line(occurred_at=t))
    for value in ["a" * 128, "a" * 129, "-a", ".a", "a b", "é", "a\\u0062", "", 7, None]:
        out.append(line(activity_id=value))
        out.append(line(subject=value))
    for field in m.inputs:
        if field.kind == "integer":
            for value in [field.minimum, field.maximum, field.maximum + 1, -1, 0, 1, MAX_INTEGER_INPUT,
                          MAX_INTEGER_INPUT + 1, 10**13, 1.0, 1.5, True, "12", None]:
                out.append(line(inputs={field.name: value}))
            out.append(line().replace(f'"{field.name}":5000', f'"{field.name}":05000'))
            out.append(line().replace(f'"{field.name}":5000', f'"{field.name}":5e3'))
            out.append(line().replace(f'"{field.name}":5000', f'"{field.name}":-0'))
        else:
            for value in ["a" * 64, "a" * 65, "S 1", "S\\u0031", "", 12, None, "other", "books", "paper"]:
                out.append(line(inputs={field.name: value}))
    out.append(line(inputs={"unknown_input": 1}))
    out.append(line(extra=1))
    out.append(line()[:-3] + "\n")
    out.append(line() + line())
    out.append("")
    out.append("\n")
    out.append("   \n")
    return out


MUTATIONS_POOL = ' "\\{}:,.-_0123456789aZé\t\r\x00\u2028'


def mutate(text: str, rng: random.Random) -> str:
    kind = rng.randrange(8)
    i = rng.randrange(len(text) + 1)
    if kind == 0 and text:
        return text[:i] + text[i + 1:]
    if kind == 1:
        return text[:i] + rng.choice(MUTATIONS_POOL) + text[i:]
    if kind == 2 and text:
        return text[:i] + rng.choice(MUTATIONS_POOL) + text[i + 1:]
    if kind == 3:  # a key or value repeated
        j = rng.randrange(len(text) + 1)
        a, b = min(i, j), max(i, j)
        return text[:b] + "," + text[a:b] + text[b:]
    if kind == 4:  # a digit changed
        digits = [k for k, c in enumerate(text) if c.isdigit()]
        if digits:
            k = rng.choice(digits)
            return text[:k] + rng.choice("0123456789") + text[k + 1:]
    if kind == 5:  # an integer's text replaced
        return text.replace(":5000", rng.choice([":-5000", ":50000000000000", ":5000.0", ":0", ":1", ":\"5000\""]), 1)
    if kind == 6:  # a key renamed or dropped
        key = rng.choice(['"activity_id"', '"subject"', '"occurred_at"', '"inputs"', '"distance_m"'])
        return text.replace(key, rng.choice(['"x"', key.upper(), key + ":1," + key]), 1)
    return text + rng.choice(["", "x", " ", "\n", "{}"])


def both_paths_json(m, lines: list[bytes | str]) -> tuple[list, list]:
    rules = rules_for(m)
    fast = prepare_json_lines(rules, 1, lines)
    full = prepare_json_lines(rules, 1, lines, fast_path=False)
    return fast, full


def accepted_fast(m, lines: list[str]) -> int:
    fast = fast_records(rules_for(m))
    return sum(fast.line_values(line) is not None for line in lines)


@pytest.mark.parametrize("key", ["HB-GT-METRO", "HB-GT-BUS", "HB-GT-CYCLE", "HB-GT-WALK", "HB-ES-NEVCHARGE",
                                 "HB-ES-ROOFPV", "HB-RS-ELECSAVE", "HB-RS-RECYCLE", "HB-GC-SECONDHAND",
                                 "HB-GC-OWNBAG"])
def test_fast_and_full_paths_agree_on_every_line(library, key):
    for m in library.versions(key):
        rng = random.Random(f"{key}-{m.version}")
        valid = [line for i in range(150) for line in writings(valid_record(m, rng, i), rng)]
        edges = edge_lines(m, rng)
        mutated = [mutate(mutate(rng.choice(valid + edges), rng), rng) for _ in range(3_000)]
        lines = valid + edges + mutated
        as_bytes = [line.encode("utf-8", "surrogatepass") for line in lines]
        as_bytes += [line.encode()[:-1] + b"\xff\n" for line in valid[:50]]  # not UTF-8
        for given in (lines, as_bytes):
            fast, full = both_paths_json(m, given)
            assert fast == full
        # The comparison is not vacuous: the fast path recognised the usual writings...
        usual = [w for i in range(0, len(valid), 9) for w in valid[i:i + 6]]
        assert accepted_fast(m, usual) == len(usual)
        # ...and both kinds of outcome are present.
        assert len(fast.lines) > 500 and len(fast.rejections) > 500
        for data in fast.data[:300]:  # the bytes are canonical, as the full path promises
            assert rfc8785.dumps(json.loads(data)) == data


def test_the_usual_writings_take_the_fast_path_in_ingestion(library):
    m = library.get("HB-GT-METRO")
    rng = random.Random(5)
    record = valid_record(m, rng, 1)
    record["inputs"]["distance_m"] = 5000
    lines = writings(record, rng)
    fast = fast_records(rules_for(m))
    assert [fast.line_values(line) is not None for line in lines] == [True] * 6 + [False] * 3
    prepared = prepare_json_lines(rules_for(m), 7, lines[:1])
    values, shape = fast.line_values(lines[0])
    assert values[:3] == (record["activity_id"], record["subject"], record["occurred_at"])
    assert prepared.lines == [7] and prepared.reductions_g == [392]  # 5000 m at 78.4 g/km, floored
    assert not prepared.rejections


def csv_text(m, records: list[dict[str, Any]], rng: random.Random, header: list[str]) -> str:
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator=rng.choice(["\n", "\r\n"]))
    writer.writerow(header)
    for r in records:
        cells = {"activity_id": r["activity_id"], "subject": r["subject"], "occurred_at": r["occurred_at"],
                 **r["inputs"]}
        writer.writerow(["" if cells.get(c) is None else cells[c] for c in header])
    return out.getvalue()


@pytest.mark.parametrize("key", ["HB-GT-METRO", "HB-GT-BUS", "HB-RS-RECYCLE", "HB-GC-SECONDHAND", "HB-GT-WALK"])
def test_fast_and_full_paths_agree_on_every_csv_row(library, key):
    for m in library.versions(key):
        rng = random.Random(f"csv-{key}-{m.version}")
        names = ["activity_id", "subject", "occurred_at", *(f.name for f in m.inputs)]
        for header in (names, list(reversed(names)), [n for n in names if n != "bike_id" and n != "category"]):
            if any(f.required and f.name not in header for f in m.inputs):
                continue
            records = [valid_record(m, rng, i) for i in range(300)]
            text = csv_text(m, records, rng, header)
            lines = text.splitlines(keepends=True)
            mutated = lines[:1] + [mutate(rng.choice(lines[1:]), rng) for _ in range(2_000)]
            for source in (lines, mutated):
                layout, chunks = read_csv(io.StringIO("".join(source), newline=""), m)
                rows = [item for _, _, items in chunks for item in items]
                fast = prepare_csv_rows(rules_for(m), layout, rows)
                full = prepare_csv_rows(rules_for(m), layout, rows, fast_path=False)
                assert fast == full
            accepted = prepare_csv_rows(rules_for(m), layout, rows).lines
            assert accepted and len(accepted) < len(rows)


def test_csv_rows_of_the_exact_shape_take_the_fast_path(library):
    m = library.get("HB-GT-METRO")
    layout = CsvLayout.from_header(["activity_id", "subject", "occurred_at", "distance_m", "entry_station",
                                    "exit_station"], m)
    fast = fast_records(rules_for(m))
    columns = (0, 1, 2, 3, 4, 5)
    assert fast.row_values(columns, ["a1", "p1", TIMES[0], "5000", "S01", "S09"]) is not None
    for row in (["a1", "p1", TIMES[0], "05000", "S01", "S09"], ["a1", "p1", TIMES[0], "5000", "S01", ""],
                ["a1", "p1\nx", TIMES[0], "5000", "S01", "S09"], ["a1", "p1", TIMES[0], "-5", "S01", "S09"]):
        assert fast.row_values(columns, row) is None
    assert layout.width == 6


def test_the_fast_path_is_built_from_the_rules_the_full_path_applies(library):
    kinds = {"integer": INTEGER_INPUT, "code": CODE_INPUT, "enum": ENUM_INPUT}
    for m in library.all():
        rules = rules_for(m)
        compiled = rules.compiled
        assert fast_records(rules).compiled is compiled
        # ...and those rules are the methodology's.
        fields = sorted(m.inputs, key=lambda f: f.name)
        assert [c.name for c in compiled.checks] == [f.name for f in fields]
        for check, field in zip(compiled.checks, fields):
            assert check.key == f'"{field.name}":'
            assert (check.kind, check.required, check.low, check.high, check.values) == (
                kinds[field.kind], field.required, field.minimum, field.maximum, frozenset(field.values))
        assert compiled.quantity_field == m.formula.quantity_field
        assert Fraction(compiled.numerator, compiled.denominator) == Fraction(m.coefficient()) / m.formula.per_units
        assert compiled.fingerprint_fields == tuple(sorted(m.fingerprint_fields))
        assert compiled.fingerprint_time == m.fingerprint_time
