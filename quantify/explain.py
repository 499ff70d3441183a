"""Explanations: for any inputs or record, the formula, factors, inputs and result, in full.

The explanation recomputes the result with Decimal, independently of the integer fast path in
RecordRules, and the two must agree (a mismatch is a bug and raises). This is also what
`POST /v1/quantify` answers, without writing anything.
"""

from __future__ import annotations

import dataclasses
from decimal import ROUND_FLOOR, Decimal
from typing import Any, Mapping

from quantify.activity import InvalidActivity, fingerprint, quantify
from quantify.methodology import EXACT, ROUNDING_RULE, Methodology, MethodologyLibrary
from quantify.report import Report, Table, format_tonnes

ILLUSTRATIVE_MARK = "ILLUSTRATIVE (no published source)"
PRIVATE_NOTE = ("format 2: these inputs and the exact time are not in the log; the record commits to them by "
                "private_sha256, the SHA-256 of its opening, which the platform gives the citizen it belongs to "
                "and, on request, an accredited auditor: `puhui-verify opening RECORD OPENING` checks it")


def _plain(value: Decimal) -> str:
    """A Decimal as positional text ("392.00", never "3.92E+2")."""
    return format(value, "f")


def explain(methodology: Methodology, inputs: Any, *, recorded_g: int | None = None) -> dict[str, Any]:
    """Formula, factors (with sources or the illustrative mark), inputs and result.

    recorded_g: the reduction_g an ingested record holds; when the daily cap clipped it, the
    explanation says by how much.
    """
    reduction_g = quantify(methodology, inputs)  # checks the inputs
    formula = methodology.formula
    quantity = Decimal(1) if formula.quantity_field is None else Decimal(inputs[formula.quantity_field])
    coefficient = methodology.coefficient()
    exact_g = EXACT.divide(EXACT.multiply(quantity, coefficient), Decimal(formula.per_units))
    clipped_g = max(exact_g, Decimal(0))
    floored = int(clipped_g.to_integral_value(rounding=ROUND_FLOOR))
    if floored != reduction_g:
        raise AssertionError(f"decimal {exact_g} floors to {floored} but the fast path gave {reduction_g}")

    quantity_text = None if formula.quantity_field is None else str(inputs[formula.quantity_field])
    substitution = (f"{formula.render(quantity_text, [f.value for f in methodology.factors])} = "
                    f"floor({_plain(clipped_g)}) = {reduction_g}")

    warnings = [
        f"factor {f.name} = {f.value} {f.unit} is illustrative: no published source" for f in methodology.factors
        if f.illustrative
    ]
    out: dict[str, Any] = {
        "methodology_id": methodology.methodology_id,
        "version": methodology.version,
        "title": methodology.title,
        "sector": methodology.sector,
        "formula": {"kind": methodology.formula_kind, "expression": formula.expression()},
        "factors": [{"name": f.name, **f.as_json()} for f in methodology.factors],
        "inputs": dict(inputs),
        "quantity": None if formula.quantity_field is None else {
            "field": formula.quantity_field, "value": inputs[formula.quantity_field], "unit": formula.quantity_unit,
        },
        "substitution": substitution,
        "exact_g": _plain(exact_g),
        "rounding": ROUNDING_RULE,
        "reduction_g": reduction_g,
        "reduction_t": format_tonnes(reduction_g),
        "daily_cap_g": methodology.daily_cap_g,
        "illustrative": methodology.illustrative,
        "warnings": warnings,
        "capped": None,
    }
    if recorded_g is not None:
        if not isinstance(recorded_g, int) or isinstance(recorded_g, bool) or not 0 <= recorded_g <= reduction_g:
            raise ValueError(f"recorded_g {recorded_g!r} is not between 0 and the quantified {reduction_g}")
        if recorded_g < reduction_g:
            out["capped"] = {"recorded_g": recorded_g, "dropped_g": reduction_g - recorded_g,
                             "reason": f"daily cap of {methodology.daily_cap_g} g per subject and Beijing day"}
            out["warnings"].append(
                f"the daily cap credited {recorded_g} g of the {reduction_g} g quantified"
            )
    return out


def explain_record(methodology: Methodology, record: Mapping[str, Any]) -> dict[str, Any]:
    """The explanation of a stored activity record, checked against what it says."""
    if "private_sha256" in record:
        return _explain_private_record(methodology, record)
    explanation = explain(methodology, record["inputs"], recorded_g=record["reduction_g"])
    expected = fingerprint(methodology, record["subject"], record["occurred_at"], record["inputs"])
    if expected != record["fingerprint"]:
        raise InvalidActivity("invalid_record", "the record's fingerprint is not the one its inputs give")
    explanation.update(activity_id=record["activity_id"], subject=record["subject"],
                       occurred_at=record["occurred_at"], fingerprint=record["fingerprint"])
    return explanation


def _explain_private_record(methodology: Methodology, record: Mapping[str, Any]) -> dict[str, Any]:
    """A format-2 record (spec 7.3, 7.4) explained from what the log holds: its public inputs give
    the formula's result (the quantity input is always public), its other inputs and exact time are
    committed by private_sha256, and its fingerprint is keyed with the scheme's secret, so neither is
    checked here: its opening is the holder's to check."""
    public = dataclasses.replace(methodology, inputs=tuple(field for field in methodology.inputs if field.public))
    explanation = explain(public, record["inputs"], recorded_g=record["reduction_g"])
    private_names = sorted(field.name for field in methodology.inputs if not field.public)
    explanation.update(activity_id=record["activity_id"], subject=record["subject"],
                       occurred_on=record["occurred_on"], fingerprint=record["fingerprint"], private={
                           "inputs": [*private_names, "occurred_at"],
                           "private_sha256": record["private_sha256"],
                           "note": PRIVATE_NOTE,
                       })
    return explanation


def quantify_request(library: MethodologyLibrary, request: Any) -> dict[str, Any]:
    """`POST /v1/quantify`: {"methodology_id", "inputs"[, "version"]} -> reduction, fingerprint,
    explanation. Writes nothing.

    The fingerprint names an act, so it needs who and when: `inputs` may carry `subject` and
    `occurred_at` beside the methodology's inputs; without both, fingerprint is null.
    Raises KeyError for an unknown methodology or version, InvalidActivity for bad inputs.
    """
    if not isinstance(request, dict) or not {"methodology_id", "inputs"} <= request.keys() \
            or not request.keys() <= {"methodology_id", "inputs", "version"}:
        raise InvalidActivity("invalid_record", "a request is {methodology_id, inputs[, version]}")
    methodology = library.get(request["methodology_id"], request.get("version"))
    raw_inputs = request["inputs"]
    if not isinstance(raw_inputs, dict):
        raise InvalidActivity("invalid_input", "inputs must be a JSON object")
    inputs = {k: v for k, v in raw_inputs.items() if k not in ("subject", "occurred_at")}
    explanation = explain(methodology, inputs)
    act_fingerprint = None
    if "subject" in raw_inputs and "occurred_at" in raw_inputs:
        act_fingerprint = fingerprint(methodology, raw_inputs["subject"], raw_inputs["occurred_at"], inputs)
    else:
        explanation["warnings"].append("no fingerprint: inputs need subject and occurred_at to name the act")
    return {"reduction_g": explanation["reduction_g"], "fingerprint": act_fingerprint, "explanation": explanation}


def explanation_report(explanation: Mapping[str, Any]) -> Report:
    """An explanation as a report a person reads (tonnes) and exports (CSV)."""
    rows: list[tuple[Any, ...]] = [
        ("methodology", f"{explanation['methodology_id']} v{explanation['version']}", "", explanation["title"]),
        ("formula", explanation["formula"]["expression"], "", explanation["formula"]["kind"]),
    ]
    if explanation.get("activity_id"):  # a stored record's explanation (explain_record)
        when = f"at {explanation['occurred_at']}" if "occurred_at" in explanation else f"on {explanation['occurred_on']}"
        rows.append(("activity", explanation["activity_id"], "", f"{explanation['subject']} {when}"))
    if explanation.get("fingerprint"):
        rows.append(("fingerprint", explanation["fingerprint"], "", "the real-world act (spec section 7)"))
    rows += [
        (f"factor {f['name']}", f["value"], f["unit"], f["source"] if not f["illustrative"] else ILLUSTRATIVE_MARK)
        for f in explanation["factors"]
    ]
    rows += [(f"input {name}", value, "", "") for name, value in sorted(explanation["inputs"].items())]
    rows += [
        ("substitution", explanation["substitution"], "", ""),
        ("rounding", explanation["rounding"], "", ""),
        ("reduction", explanation["reduction_t"], "t", f"{explanation['reduction_g']} g"),
    ]
    if explanation.get("capped"):
        capped = explanation["capped"]
        rows.append(("credited after daily cap", format_tonnes(capped["recorded_g"]), "t",
                     f"{capped['recorded_g']} g; {capped['reason']}"))
    if explanation.get("private"):
        private = explanation["private"]
        rows.append(("private inputs", " ".join(private["inputs"]), "", f"private_sha256 {private['private_sha256']}"))
    return Report(
        title=f"Quantification of {explanation['methodology_id']} v{explanation['version']}",
        tables={"explanation": Table(("item", "value", "unit", "source_or_note"), rows)},
        notes=[*explanation["warnings"], *([explanation["private"]["note"]] if explanation.get("private") else [])],
        data={"explanation": dict(explanation)},
    )
