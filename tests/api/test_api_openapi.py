"""The OpenAPI document is complete, and holds: schemathesis generates requests for every operation
and checks each answer (no 500, status codes, content types and bodies as documented)."""

from __future__ import annotations

import json

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemathesis.checks import positive_data_acceptance

from api.app import create_app
from api.errors import API_CODES
from ledger.registry import sign_event
from world import ORIGIN, World, actor

EXAMPLES = 30


# JSON Lines bodies (the activity upload, the ingestion): a custom strategy, so that the runs
# reach past line 1. Line 1 is an activity.batch event signed by the world's platform key (or a
# mangled one, or any JSON), then record lines that look like activity or raw records with
# generated values, or broken ones; the same bodies serve the ingestion, whose lines are records.
_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-(2**60), 2**60), st.text(max_size=20))
_JSON = st.recursive(_SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                       st.dictionaries(st.text(max_size=8), inner, max_size=3)),
                     max_leaves=8)
_RECORD = st.fixed_dictionaries({
    "activity_id": st.one_of(st.text(max_size=12), st.from_regex(r"[a-z0-9-]{1,20}", fullmatch=True)),
    "subject": st.one_of(st.text(max_size=12), st.from_regex(r"p-[a-z0-9]{1,12}", fullmatch=True)),
    "occurred_at": st.one_of(st.just("2026-01-02T08:00:00Z"), st.text(max_size=25)),
    "inputs": st.one_of(st.fixed_dictionaries({"km": st.one_of(st.just("12.5"), st.text(max_size=6))}), _JSON),
}, optional={"reduction_g": st.one_of(st.integers(-5, 10**6), _JSON), "fingerprint": st.text(max_size=64)})
_LINE = st.one_of(_RECORD.map(json.dumps), _RECORD.map(json.dumps), _JSON.map(json.dumps), st.binary(max_size=40))


@st.composite
def _json_lines(draw) -> str:
    body = draw(st.fixed_dictionaries({
        "batch_id": st.from_regex(r"b-[a-z0-9]{1,12}", fullmatch=True), "platform": st.just("wuhan-platform"),
        "methodology_id": st.sampled_from(["HB-GT-METRO", "NO-SUCH"]), "methodology_version": st.sampled_from([1, 1, 1, 0, 2]),
        "period_start": st.just("2026-01-01"), "period_end": st.just("2026-01-31"),
        "count": st.integers(1, 4), "total_g": st.integers(-1, 10**6), "root": st.just("ab" * 32),
        "request_id": st.from_regex(r"r-[a-z0-9]{1,12}", fullmatch=True)}))
    # Signed for either format: the one of the app under test gets past the signature check.
    event = sign_event(actor("wuhan").signer, ORIGIN, "activity.batch", body, log_format=draw(st.sampled_from([1, 2])))
    signed = json.dumps(event)
    first = draw(st.sampled_from([signed, signed, signed, json.dumps({**event, "type": {}}), None]))
    first = first if first is not None else json.dumps(draw(_JSON))
    # Text, with any bytes that are not UTF-8 as lone surrogates: tests/integration_quantify's
    # serializer for this media type takes text too, whichever of the two is loaded last.
    lines = [first, *[line.decode("utf-8", "surrogateescape") if isinstance(line, bytes) else line
                      for line in draw(st.lists(_LINE, max_size=4))]]
    return "\n".join(lines) + draw(st.sampled_from(["", "\n"]))


schemathesis.openapi.media_type("application/x-ndjson", _json_lines())


@schemathesis.serializer("application/x-ndjson")
def _json_lines_bytes(_context, value):
    """The generated text as bytes, its lone surrogates back to the bytes they stood for."""
    text = value if isinstance(value, str) else json.dumps(value)
    return text.encode("utf-8", "surrogateescape")


@pytest.fixture(scope="module", params=[1, 2], ids=["format-1", "format-2"])
def served_app(request, tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('openapi') / 'registry.sqlite3'}"
    if request.param == 1:
        world = World(url).setup().history()
    else:  # reviews, holds, chosen issuances: every read has something of format 2 to show
        world = World(url, log_format=2).setup_v2().history_v2()
    app = create_app(world.registry, checkpoint_interval_s=0.05)
    yield app
    app.state.sequencer.stop()
    world.registry.close()


def test_every_operation_answers_as_documented(served_app):
    # One hypothesis run per operation, failures collected, so one run reports all of them.
    # (schemathesis.pytest.from_fixture does not run under pytest 9, hence this loop.)
    # positive_data_acceptance is left out: a request can match the document and still break a
    # body rule that is SCHEMA by the spec (422), e.g. a key_id that is not its public key's.
    failures = {}
    operations = [result.ok() for result in schemathesis.openapi.from_asgi("/openapi.json", served_app).get_all_operations()]
    assert len(operations) >= 22
    for operation in operations:
        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        def answers_as_documented(case):
            case.call_and_validate(excluded_checks=[positive_data_acceptance])
        try:
            answers_as_documented()
        except Exception as failure:  # noqa: BLE001 - reported below, every operation's
            failures[operation.label] = str(failure)[:2000]
    assert not failures, "\n\n".join(f"{label}:\n{text}" for label, text in failures.items())


def test_every_operation_documents_its_bodies_and_refusals(served_app):
    document = served_app.openapi()
    problem = {"$ref": "#/components/schemas/Problem"}
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            assert any(s.startswith("2") for s in responses), (method, path)
            for status, response in responses.items():
                assert response.get("content"), (method, path, status)
                if status.startswith("4") or status.startswith("5"):
                    assert response["content"]["application/json"]["schema"] == problem, (method, path, status)
            if method == "post":
                assert operation["requestBody"]["content"], path
            if operation.get("parameters") or method == "post":
                assert "422" in responses, (method, path)
    assert set(document["components"]["schemas"]["Problem"]["properties"]["code"]["enum"]) == set(API_CODES)
