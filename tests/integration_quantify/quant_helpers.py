"""Shared by the quantification integration tests: a registry with the shipped methodology library,
raw platform records, and an event's inventory whose footprint is worked out by hand below."""

from __future__ import annotations

import json
from typing import Any

from quantify.methodology import load_shipped, register_body
from world import World

LIBRARY = load_shipped()
EVIDENCE = "e8281ba0cff227df12fba39ad99bd46713c35e6dc54327f3ff9d558e2d4a3d55"


def library_world(url: str) -> World:
    """Test keys and clock (tests/world.py), two platforms, an event organizer, and every version of
    the shipped library registered from its definition (quantify.register_body)."""
    w = World(url)
    c = w.client
    c.register_key(w.root, w.admin, ["admin"])
    c.register_key(w.admin, w.wuhan, ["platform"])
    c.register_key(w.admin, w.grid, ["platform"])
    c.register_key(w.admin, w.mall, [])
    c.open_account(w.admin, "wuhan-platform", "platform", "Wuhan platform", "420100", [w.wuhan])
    c.open_account(w.admin, "grid-platform", "platform", "Grid platform", "420100", [w.grid])
    c.open_account(w.admin, "expo-org", "organization", "Optics Valley expo organizer", "420100", [w.mall])
    for m in LIBRARY.all():
        c.submit(w.admin, "methodology.register", register_body(m))
    return w


def metro(activity_id: str, subject: str, occurred_at: str, distance_m: int = 15_000, entry: str = "S01",
          exit: str = "S09") -> dict[str, Any]:
    """A metro trip as a platform reports it: 15 km is 15 * 78.4 = 1176 g."""
    return {"activity_id": activity_id, "subject": subject, "occurred_at": occurred_at,
            "inputs": {"distance_m": distance_m, "entry_station": entry, "exit_station": exit}}


def jsonl(records: list[Any]) -> bytes:
    return b"".join((r if isinstance(r, str) else json.dumps(r)).encode() + b"\n" for r in records)


# An event's activity data for one month. By hand, each line rounded up to whole grams:
#   electricity 1000 kWh * 525 g          = 525,000 g  scope 2
#   diesel 100.5 L * 2680 g               = 269,340 g  scope 1
#   hotel_night 10 * 20000 g              = 200,000 g  scope 3
#   meal 3 * 2500 g                       =   7,500 g  scope 3
#   air_travel 0.1 passenger-km * 150 g   =      15 g  scope 3
#   total                                 = 1,001,855 g = 1.002 t
EXPO = {
    "name": "光谷春季博览会 2026",
    "kind": "event",
    "period_start": "2026-03-01",
    "period_end": "2026-03-31",
    "entries": [
        {"site": "hall-a", "month": "2026-03", "source": "electricity", "quantity": 1000},
        {"site": "hall-a", "month": "2026-03", "source": "diesel", "quantity": "100.5"},
        {"site": "hotels", "month": "2026-03", "source": "hotel_night", "quantity": 10},
        {"site": "catering", "month": "2026-03", "source": "meal", "quantity": "3"},
        {"site": "travel", "month": "2026-03", "source": "air_travel", "quantity": "0.1"},
    ],
}
EXPO_G = 1_001_855
EXPO_BY_SCOPE = {"1": 269_340, "2": 525_000, "3": 207_515}
