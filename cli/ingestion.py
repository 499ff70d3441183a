"""Ingestion against a live registry: quantify's questions answered by the registry's database.

quantify.ingest asks, per record, whether a fingerprint or activity id is already in the log
and how many grams a subject already has for a methodology on a Beijing day (across every
platform). These adapters answer from the registry's activities table, then the platform signs
each batch and the registry judges it like any other event.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from ledger.actors import Actor, Client
from ledger.registry import Appended, Registry
from quantify.ingest import IngestResult, ingest_jsonl
from quantify.methodology import Methodology

BEIJING_OFFSET = dt.timedelta(hours=8)


class LoggedFingerprints:
    def __init__(self, registry: Registry):
        self._registry = registry

    def __contains__(self, fingerprint: object) -> bool:
        return isinstance(fingerprint, str) and self._registry.has_fingerprint(fingerprint)


class LoggedActivityIds:
    def __init__(self, registry: Registry):
        self._registry = registry

    def __contains__(self, activity_id: object) -> bool:
        return isinstance(activity_id, str) and self._registry.has_activity_id(activity_id)


class LoggedDailyTotals:
    """quantify.ingest.DailyTotals over the log: a Beijing day is [D-1 16:00Z, D 16:00Z)."""

    def __init__(self, registry: Registry):
        self._registry = registry

    def credited_g(self, subject: str, methodology_id: str, day: str) -> int:
        midnight = dt.datetime.fromisoformat(day) - BEIJING_OFFSET
        end = midnight + dt.timedelta(days=1)
        return self._registry.credited_g(subject, methodology_id, f"{midnight:%Y-%m-%dT%H:%M:%S}.000000Z",
                                         f"{end:%Y-%m-%dT%H:%M:%S}.000000Z")


def ingest_and_submit(registry: Registry, platform_signer: Actor, platform: str, methodology: Methodology,
                      lines: Any, run_id: str, out_dir: Path) -> tuple[IngestResult, list[Appended]]:
    """Quantify raw records, drop duplicates and over-cap amounts (with reasons), sign, submit."""
    result = ingest_jsonl(lines, platform=platform, methodology=methodology, run_id=run_id, out_dir=out_dir,
                          daily_totals=LoggedDailyTotals(registry), seen_fingerprints=LoggedFingerprints(registry),
                          seen_activity_ids=LoggedActivityIds(registry))
    client = Client(registry)
    appended = []
    for batch in result.batches:
        records = [json.loads(line) for line in batch.path.read_bytes().splitlines()]
        appended.append(client.submit(platform_signer, "activity.batch", dict(batch.body), records))
    return result, appended
