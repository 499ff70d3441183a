"""The register's totals for the public home page (issued, active, retired by purpose, cancelled,
issued by methodology, and the flow by month), read from the committed database and kept up to date incrementally.

Issuances, retirements and cancellations never change their amounts once logged: so the totals
fold in only the events above the last size they saw, read by the events table's primary key, and
each read costs the events committed since the previous one, not the whole register. The first
read of a process folds the whole log once. Every read is bounded by one committed size, so a
commit landing meanwhile is counted whole at the next read, never in part.
"""

from __future__ import annotations

import threading
from typing import NamedTuple

from sqlalchemy import select
from sqlalchemy.engine import Connection

from ledger.leaf import parse_leaf, stored_log_format
from ledger.schema import PURPOSES
from ledger.store import Store, events

_COUNTED = ("issuance", "retirement", "cancellation")
MAX_MONTHS = 1_200  # a century of months: the map of flows by month never outgrows this


class MonthFlow(NamedTuple):
    month: str  # YYYY-MM of the events' registry time (UTC)
    issued_g: int
    retired_g: int


class RegisterTotals(NamedTuple):
    size: int  # the committed log size these totals cover
    issued_g: int
    active_g: int
    retired_g: int
    cancelled_g: int
    retired_by_purpose_g: dict[str, int]
    issued_by_methodology_g: dict[str, int]  # by methodology_id, sorted
    by_month: list[MonthFlow]  # oldest first


class RunningTotals:
    """RegisterTotals of one database, refreshed on read by what was committed since the last read."""

    def __init__(self, store: Store):
        self._store = store
        self._lock = threading.Lock()
        self._size = 0
        self._issued_g = 0
        self._cancelled_g = 0
        self._retired_by_purpose_g = dict.fromkeys(PURPOSES, 0)
        self._issued_by_month_g: dict[str, int] = {}
        self._issued_by_methodology_g: dict[str, int] = {}
        self._retired_by_month_g: dict[str, int] = {}

    def read(self) -> RegisterTotals:
        with self._lock, self._store.engine.connect() as conn:
            size = self._store.size(conn)
            if size > self._size:
                self._fold(conn, self._size, size)
                self._size = size
            return self._totals()

    def _fold(self, conn: Connection, low: int, high: int) -> None:
        """Add the issuances, retirements and cancellations of seqs [low, high). The projections
        have no index on seq, the events table has it as its key: the events are read (their type
        column comes before the leaf, so the others cost no leaf read)."""
        log_format = stored_log_format(self._store.leaf(conn, 0))
        for row in conn.execute(select(events.c.type, events.c.time, events.c.leaf).where(
                events.c.seq >= low, events.c.seq < high, events.c.type.in_(_COUNTED))):
            body, month = parse_leaf(row.leaf, log_format).body, row.time[:7]
            if row.type == "issuance":
                self._issued_g += body["amount_g"]
                _add(self._issued_by_month_g, month, body["amount_g"])
                _add(self._issued_by_methodology_g, body["methodology_id"], body["amount_g"])
            elif row.type == "retirement":
                self._retired_by_purpose_g[body["purpose"]] += body["amount_g"]
                _add(self._retired_by_month_g, month, body["amount_g"])
            else:
                self._cancelled_g += body["amount_g"]

    def _totals(self) -> RegisterTotals:
        retired_g = sum(self._retired_by_purpose_g.values())
        months = sorted(self._issued_by_month_g.keys() | self._retired_by_month_g.keys())[-MAX_MONTHS:]
        return RegisterTotals(
            size=self._size, issued_g=self._issued_g, active_g=self._issued_g - retired_g - self._cancelled_g,
            retired_g=retired_g, cancelled_g=self._cancelled_g,
            retired_by_purpose_g=dict(self._retired_by_purpose_g),
            issued_by_methodology_g=dict(sorted(self._issued_by_methodology_g.items())),
            by_month=[MonthFlow(m, self._issued_by_month_g.get(m, 0), self._retired_by_month_g.get(m, 0))
                      for m in months])


def _add(by_month_g: dict[str, int], month: str, amount_g: int) -> None:
    by_month_g[month] = by_month_g.get(month, 0) + amount_g
