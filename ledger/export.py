"""Write a bundle (spec section 8) from a registry, streaming: memory stays constant over the log."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Callable

from ledger.note import parse_checkpoint
from ledger.registry import LogReader


def export_bundle(registry: LogReader, out: Path, progress: Callable[[int, int], None] = lambda done, total: None) -> dict:
    """Export the log up to its latest checkpoint (what an auditor can hold the registry to).

    Leaves past the latest checkpoint are left out: a bundle whose tail no checkpoint covers
    would fail NO_CHECKPOINT. Checkpoint first (`registry.checkpoint()`) to export everything.
    """
    size = registry.latest_checkpoint_size()
    out.mkdir(parents=True, exist_ok=False)
    (out / "activities").mkdir()
    batches: list[str] = []
    with open(out / "log.jsonl", "wb") as log:
        for seq, data in registry.leaf_bytes(0, size):
            log.write(data + b"\n")
            if seq % 10_000 == 0:
                progress(seq, size)
            if data.endswith(b'"type":"activity.batch"}'):  # the top-level type is the last key in JCS
                batches.append(json.loads(data)["body"]["batch_id"])
    with open(out / "checkpoints.jsonl", "w", encoding="utf-8") as notes:
        for note in registry.checkpoint_notes():
            if parse_checkpoint(note).size <= size:
                notes.write(json.dumps({"note": note}, ensure_ascii=False) + "\n")
    for batch_id in batches:
        with open(out / "activities" / f"{batch_id}.jsonl", "wb") as records:
            for record in registry.batch_records(batch_id):
                records.write(record + b"\n")
    manifest = {"format": f"puhui-bundle/{registry.log_format}", "origin": registry.origin, "tree_size": size,
                "root": registry.root(size).hex()}
    (out / "manifest.json").write_text(json.dumps(manifest) + "\n")
    progress(size, size)
    for name in ("log.jsonl", "checkpoints.jsonl"):
        with open(out / name, "rb") as f:
            os.fsync(f.fileno())
    return manifest
