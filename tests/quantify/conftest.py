"""Fixtures for the quantify tests: the shipped library, raw records, an independent Merkle root."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from quantify.methodology import MethodologyLibrary, load_shipped


@pytest.fixture(scope="session")
def library() -> MethodologyLibrary:
    return load_shipped()


@pytest.fixture(scope="session")
def metro(library):
    return library.get("HB-GT-METRO")


def mth(leaves: list[bytes]) -> bytes:
    """RFC 9162 section 2.1 Merkle tree hash, written from the RFC text, recursively."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return hashlib.sha256(b"\x00" + leaves[0]).digest()
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return hashlib.sha256(b"\x01" + mth(leaves[:k]) + mth(leaves[k:])).digest()


@pytest.fixture(scope="session")
def merkle_root():
    return mth


def metro_record(activity_id: str, subject: str = "p-alice", occurred_at: str = "2026-01-05T08:00:00.000000Z",
                 distance_m: int = 5000, entry: str = "S01", exit: str = "S09") -> dict[str, Any]:
    return {"activity_id": activity_id, "subject": subject, "occurred_at": occurred_at,
            "inputs": {"distance_m": distance_m, "entry_station": entry, "exit_station": exit}}


@pytest.fixture
def make_metro_record():
    return metro_record


def jsonl(records: list[Any]) -> list[bytes]:
    return [(r if isinstance(r, str) else json.dumps(r)).encode() + b"\n" for r in records]


@pytest.fixture
def to_jsonl():
    return jsonl


def read_jsonl(path) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f]


@pytest.fixture
def read_lines():
    return read_jsonl
