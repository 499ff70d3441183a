"""The OpenAPI document is complete, and holds: schemathesis generates requests for every operation
and checks each answer (no 500, status codes, content types and bodies as documented)."""

from __future__ import annotations

import json

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from schemathesis.checks import positive_data_acceptance

from api.app import create_app
from api.errors import API_CODES
from world import World

EXAMPLES = 30


@schemathesis.serializer("application/x-ndjson")
def _json_lines(_context, value):
    """The activity upload is JSON Lines; generated bodies are sent as they are, however broken."""
    text = value if isinstance(value, str) else json.dumps(value)
    return text.encode("utf-8", "surrogatepass")


@pytest.fixture(scope="module")
def served_app(tmp_path_factory):
    world = World(f"sqlite:///{tmp_path_factory.mktemp('openapi') / 'registry.sqlite3'}").setup().history()
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
