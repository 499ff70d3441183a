"""The registry side of quantification (service/ingestion.py's LoggedChunks) against per-record adapters
written here from the definitions: the same batches and rejections, byte for byte, over several
chunks, both platforms' records in the log, duplicates against it, and daily caps across the
Beijing day boundary (16:00Z)."""

from __future__ import annotations

import datetime as dt
import io
import json
import random

from sqlalchemy import func, select

from ledger.store import activities
from quant_helpers import LIBRARY, jsonl, metro
from quantify.ingest import ingest_jsonl
from quantify.methodology import register_body
from quantify.activity import BEIJING_OFFSET
from service.ingestion import ingest_against_log, ingest_and_submit
from service.methodologies import LoggedMethodologies, definition_from_log


class LoggedValues:
    """Membership of one activities column (fingerprint or activity_id), asked of the log one value at a time."""

    def __init__(self, registry, column):
        self._registry, self._column = registry, column

    def __contains__(self, value) -> bool:
        with self._registry.store.engine.connect() as conn:
            return bool(self._registry.store.existing(conn, self._column, [value]))


class LoggedDailyTotals:
    """A Beijing day is [D-1 16:00Z, D 16:00Z), asked of the log one subject and day at a time."""

    def __init__(self, registry):
        self._registry = registry

    def credited_g(self, subject: str, methodology_id: str, day: str) -> int:
        midnight = dt.datetime.fromisoformat(day) - BEIJING_OFFSET
        end = midnight + dt.timedelta(days=1)
        with self._registry.store.engine.connect() as conn:
            return int(conn.execute(select(func.coalesce(func.sum(activities.c.reduction_g), 0)).where(
                activities.c.subject == subject, activities.c.methodology_id == methodology_id,
                activities.c.occurred_at >= f"{midnight:%Y-%m-%dT%H:%M:%S}.000000Z",
                activities.c.occurred_at < f"{end:%Y-%m-%dT%H:%M:%S}.000000Z")).scalar())


def raw_records(prefix: str, count: int, rng: random.Random) -> list[dict]:
    """Trips of 1,500 citizens on three days, around the Beijing midnight of 5/6 January: caps bind, or clip."""
    times = ["2026-01-05T15:59:00.000000Z", "2026-01-05T16:00:00.000000Z", "2026-01-05T03:00:00.000000Z",
             "2026-01-06T10:00:00.000000Z", "2026-01-04T23:00:00.000000Z"]
    return [metro(f"{prefix}{i}", f"p-{rng.randrange(1_500)}", rng.choice(times).replace(":00:00.", f":{rng.randrange(60):02d}:00.", 1)
                  if rng.random() < 0.5 else rng.choice(times), distance_m=rng.randrange(1_000, 30_000),
                  entry=f"S{rng.randrange(6)}", exit=f"S{rng.randrange(6)}") for i in range(count)]


def chunked_log_answers_match_the_per_record_adapters(world, tmp_path):
    """Run on each database by test_quant_logged_chunks.py."""
    rng = random.Random(7)
    metro_v1 = LIBRARY.get("HB-GT-METRO")
    ingest_and_submit(world.registry, world.wuhan, "wuhan-platform", metro_v1,
                      [json.dumps(r) for r in raw_records("w", 3_000, rng)], "wh", tmp_path / "wh")
    grid = raw_records("g", 5_000, rng)
    grid[100:110] = [dict(r, activity_id=f"again-{i}") for i, r in enumerate(grid[:10])]  # acts repeated in the run
    body = jsonl(grid) + jsonl([{**metro("w5", "p-1", "2026-01-05T01:00:00.000000Z")}])  # an id the log holds
    per_record = ingest_jsonl(io.BytesIO(body), platform="grid-platform", methodology=metro_v1, run_id="gr",
                              out_dir=tmp_path / "per-record", daily_totals=LoggedDailyTotals(world.registry),
                              seen_fingerprints=LoggedValues(world.registry, "fingerprint"),
                              seen_activity_ids=LoggedValues(world.registry, "activity_id"))
    chunked = ingest_against_log(world.registry, io.BytesIO(body), platform="grid-platform", methodology=metro_v1,
                                 run_id="gr", out_dir=tmp_path / "chunked")
    assert per_record.reasons == chunked.reasons and per_record.lines == chunked.lines == 5_001
    assert {"duplicate_fingerprint", "over_daily_cap", "daily_cap_clipped", "duplicate_activity_id"} <= set(chunked.reasons)
    assert [b.body for b in per_record.batches] == [b.body for b in chunked.batches]
    assert per_record.rejections_path.read_bytes() == chunked.rejections_path.read_bytes()
    for mine, theirs in zip(chunked.batches, per_record.batches):
        assert mine.path.read_bytes() == theirs.path.read_bytes()


def test_logged_definitions_are_the_library_and_hand_made_params_are_not_one(world):
    definitions = LoggedMethodologies(world.registry.store)
    for m in LIBRARY.all():
        assert definitions.get(m.methodology_id, m.version).params() == m.params()
    assert definitions.get("HB-GT-BUS").version == 2
    entry = {"title": "x", "sector": "other", "params": {**register_body(LIBRARY.get("HB-GT-METRO"))["params"],
                                                         "extra": 1}}
    for params in ({"g_per_km": "78.4"}, entry["params"]):
        try:
            definition_from_log("HB-X", 1, {**entry, "params": params})
        except LookupError as exc:
            assert "HB-X v1" in str(exc)
        else:
            raise AssertionError(f"{params} taken for a definition")
