"""Section 7.2's quantification in the registry (ledger/definitions.py, and activity.batch's cap
across batches) agrees with the verifier's own (verifier/methodologies.py, verifier/records_v2.py)
for every shipped methodology: random public inputs, batches over days and subjects, the daily cap
clipping across batches; and a record one gram off is refused by both. Plus the spec's worked
example. The verifier is imported here only: the registry never imports it."""

from __future__ import annotations

import tempfile
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from format2_records import METRO_DEFINITION, daily_subject
from ledger.canonical import jcs
from ledger.definitions import Definition, compile_definition, definition, is_illustrative, public_inputs
from ledger.errors import Rejected
from ledger.events.activities import check_file_v2, judge_checked
from ledger.rules import batch_commitment
from ledger.state import MemoryActivityIndex
from quantify.methodology import load_shipped, register_body
from verifier.digests import StringHashDigester
from verifier.methodologies import Definition as VerifierDefinition
from verifier.methodologies import definition_problem
from verifier.parallel import InlineRunner
from verifier.records_v2 import ActivityChecker2
from verifier.uniqueness import RepeatJudge, Uniqueness

LIBRARY = load_shipped()
DAYS = ("2026-03-02", "2026-03-03")
PERSONS = ("p-1", "p-2", "p-3")


def public_values(params: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """Valid public inputs of a definition: near the bounds and anywhere between (the cap then clips)."""
    fields = {}
    for name in sorted(public_inputs(params)):
        spec = params["inputs"][name]
        if spec["type"] == "integer":
            low, high = spec["min"], spec["max"]
            value = st.one_of(st.integers(low, min(high, low + 50)), st.integers(low, high), st.just(high))
        elif spec["type"] == "enum":
            value = st.sampled_from(spec["values"])
        else:
            value = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,20}", fullmatch=True)
        fields[name] = value if spec["required"] else st.one_of(st.none(), value)
    return st.fixed_dictionaries(fields).map(lambda d: {k: v for k, v in d.items() if v is not None})


@st.composite
def histories(draw: st.DrawFn) -> tuple[Any, list[list[tuple[str, str, dict[str, Any]]]]]:
    """A shipped methodology version and 1 to 4 batches of acts (person, day, public inputs)."""
    methodology = draw(st.sampled_from(LIBRARY.all()))
    params = register_body(methodology)["params"]
    act = st.tuples(st.sampled_from(PERSONS), st.sampled_from(DAYS), public_values(params))
    return methodology, draw(st.lists(st.lists(act, min_size=1, max_size=12), min_size=1, max_size=4))


def record(n: int, person: str, day: str, inputs: dict[str, Any], reduction_g: int) -> dict[str, Any]:
    return {"activity_id": f"a-{n}", "fingerprint": f"{n:064x}", "inputs": inputs, "occurred_on": day,
            "private_sha256": f"{n:064x}", "reduction_g": reduction_g, "subject": daily_subject(person, day)}


class Verifier:
    """The verifier's activity checker over a directory of files, its state kept across batches."""

    def __init__(self, directory: Path, methodology_id: str, version: int, params: dict[str, Any]):
        self.directory = directory
        self.checker = ActivityChecker2(str(directory), InlineRunner(), StringHashDigester(),
                                        Uniqueness(memory_limit=1 << 24), RepeatJudge())
        self.definition = VerifierDefinition.of(methodology_id, version, params)

    def __call__(self, body: dict[str, Any], records: list[dict[str, Any]]) -> Any:
        (self.directory / f"{body['batch_id']}.jsonl").write_bytes(b"".join(jcs(r) + b"\n" for r in records))
        return self.checker(SimpleNamespace(body=body), self.definition, False)


def registry_code(body: dict[str, Any], definition: Definition, records: list[dict[str, Any]],
                  index: MemoryActivityIndex) -> str | None:
    try:
        parsed = judge_checked(check_file_v2(body, definition, records), index)
    except Rejected as refusal:
        return refusal.code
    index.add(body["batch_id"], definition.methodology_id, parsed)
    return None


@settings(max_examples=150, deadline=None)
@given(histories(), st.data())
def test_the_registry_quantifies_as_the_verifier_does(history, data):
    methodology, batches = history
    params = register_body(methodology)["params"]
    assert definition_problem(params) is None
    mine = compile_definition(methodology.methodology_id, methodology.version, params)
    index = MemoryActivityIndex()
    credited_g: dict[tuple[str, str], int] = {}  # (person, day) -> grams accepted so far
    n = 0
    with tempfile.TemporaryDirectory() as directory:
        verifier = Verifier(Path(directory), methodology.methodology_id, methodology.version, params)
        for number, acts in enumerate(batches):
            records = []
            for person, day, inputs in acts:
                assert mine.formula_g(inputs) == verifier.definition.formula_g(inputs)
                reduction_g = mine.reduction_g(inputs, credited_g.get((person, day), 0))
                credited_g[(person, day)] = credited_g.get((person, day), 0) + reduction_g
                records.append(record(n, person, day, inputs, reduction_g))
                n += 1
            body = {"batch_id": f"b-{number}", "period_start": DAYS[0], "period_end": DAYS[-1],
                    **batch_commitment(records)}
            # One gram off on one record: both refuse it, and the batch leaves nothing behind in either.
            wrong = data.draw(st.integers(0, len(records) - 1), label="record one gram off")
            off = [dict(r, reduction_g=r["reduction_g"] + (1 if i == wrong else 0)) for i, r in enumerate(records)]
            off_body = {**body, "batch_id": f"off-{number}", **batch_commitment(off)}
            assert registry_code(off_body, mine, off, index) == "QUANTIFICATION"
            finding = verifier(off_body, off)
            assert finding is not None and finding[0] == "QUANTIFICATION", finding
            assert registry_code(body, mine, records, index) is None
            assert verifier(body, records) is None
        assert all(total <= mine.daily_cap_g for total in credited_g.values())


def test_the_spec_worked_example_gives_967_then_533():
    """Spec 7.2: HB-GT-METRO v1, 1500 g credited earlier that day; A 12345 m, then B 9000 m."""
    assert METRO_DEFINITION.factor_millionths == 78_400_000 and METRO_DEFINITION.divisor == 10**9
    assert METRO_DEFINITION.formula_g({"distance_m": 12_345}) == 967
    assert METRO_DEFINITION.reduction_g({"distance_m": 12_345}, 1_500) == 967
    assert METRO_DEFINITION.formula_g({"distance_m": 9_000}) == 705
    assert METRO_DEFINITION.reduction_g({"distance_m": 9_000}, 1_500 + 967) == 533
    assert METRO_DEFINITION.reduction_g({"distance_m": 1}, 3_000) == 0  # any later record that day


def test_baseline_minus_project_is_never_negative_and_products_stay_exact():
    walk = register_body(LIBRARY.get("HB-GT-WALK"))["params"]
    walk["factors"]["project_g_per_km"] = {"value": "60", "unit": "g/km", "source": None, "illustrative": True}
    negative = compile_definition("HB-GT-WALK", 1, walk)
    assert negative.factor_millionths == -10_000_000 and negative.formula_g({"distance_m": 10**5}) == 0
    charge = register_body(LIBRARY.get("HB-ES-NEVCHARGE"))["params"]
    charge["factors"]["baseline_g_per_kwh"]["value"] = "999999999.999999"
    charge["inputs"]["energy_wh"]["max"] = 10**12
    huge = compile_definition("HB-ES-NEVCHARGE", 1, charge)
    # 10^12 Wh * (999999999.999999 - 525) g/kWh, exactly: a float would lose the last digits.
    assert huge.formula_g({"energy_wh": 10**12}) == (10**12 * (999_999_999_999_999 - 525_000_000)) // 10**9
    assert huge.formula_g({"energy_wh": 10**12}) == VerifierDefinition.of("HB-ES-NEVCHARGE", 1, charge).formula_g(
        {"energy_wh": 10**12})


def test_every_shipped_definition_is_one_and_says_what_is_public_and_illustrative():
    for methodology in LIBRARY.all():
        params = register_body(methodology)["params"]
        definition("params", params)
        assert definition_problem(params) is None
        assert public_inputs(params) == {f.name for f in methodology.inputs if f.public}
        assert is_illustrative(params) == methodology.illustrative
        quantity = compile_definition(methodology.methodology_id, methodology.version, params).quantity_field
        assert quantity is None or quantity in public_inputs(params)
        for field in methodology.inputs:  # codes name a station, a device or a meter: never public
            assert field.public == (field.kind != "code"), (methodology.methodology_id, field.name)
