"""Schemathesis over the quantification operations only, on a registry holding the shipped library and
ingested records: every answer as documented, never a 500 (tests/api runs every operation on a registry
without the library)."""

from __future__ import annotations

import io
import json

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import positive_data_acceptance

from api.app import create_app
from quant_helpers import jsonl, library_world, metro
from service.ingestion import ingest_against_log
from service.methodologies import LoggedMethodologies

OPERATIONS = ("/v1/quantify", "/v1/subjects/", "/v1/ingestions", "/v1/footprints", "/v1/claims/{claim_id}/page",
              "/v1/activities/{activity_id}/explanation")


@schemathesis.serializer("application/x-ndjson", "text/csv")
def _text(_context, value):
    """Ingestion bodies are JSON Lines or CSV text; generated ones are sent as they are, however broken
    (the same as tests/api's serializer for JSON Lines, which this one replaces when both are loaded)."""
    return (value if isinstance(value, str) else json.dumps(value)).encode("utf-8", "surrogatepass")


@pytest.fixture(scope="module")
def served_app(tmp_path_factory):
    world = library_world(f"sqlite:///{tmp_path_factory.mktemp('quant-openapi') / 'registry.sqlite3'}")
    records = [metro(f"a{i}", "p-alice", f"2026-01-05T0{i}:00:00.000000Z") for i in range(3)]
    result = ingest_against_log(world.registry, io.BytesIO(jsonl(records)), platform="wuhan-platform",
                                methodology=LoggedMethodologies(world.registry.store).get("HB-GT-METRO"),
                                run_id="wh", out_dir=tmp_path_factory.mktemp("ingest"))
    for batch in result.batches:
        lines = [json.loads(line) for line in batch.path.read_bytes().splitlines()]
        world.client.submit(world.wuhan, "activity.batch", dict(batch.body), lines)
    app = create_app(world.registry, checkpoint_interval_s=0.05)
    yield app
    app.state.sequencer.stop()
    world.registry.close()


def test_quantification_operations_answer_as_documented(served_app):
    loaded = schemathesis.openapi.from_asgi("/openapi.json", served_app).get_all_operations()
    operations = [op.ok() for op in loaded if any(op.ok().path.startswith(p) for p in OPERATIONS)]
    assert len(operations) == 8
    failures = {}
    for operation in operations:
        @given(case=operation.as_strategy())
        @settings(max_examples=40, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        def answers(case):
            case.call_and_validate(excluded_checks=[positive_data_acceptance])
        try:
            answers()
        except Exception as failure:  # noqa: BLE001 - every operation's failure is reported below
            failures[operation.label] = str(failure)[:2000]
    assert not failures, "\n\n".join(f"{label}:\n{text}" for label, text in failures.items())
