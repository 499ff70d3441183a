"""The activity rows' two bulk paths on both backends (ledger.store.values_present, insert_rows):
PostgreSQL reads an array parameter and writes by COPY, SQLite IN lists and executemany; both
must store and find the very same rows, NULLs and bytes included, and refuse a repeat the same way."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from ledger import store as store_module
from ledger.store import Store, activities


def row(i: int, **changes: object) -> dict[str, object]:
    return {"activity_id": f"a-{i}", "fingerprint": f"{i:064x}", "batch_id": "b-1", "position": i,
            "methodology_id": "HB-GT-METRO", "subject": f"s-{i % 7}", "occurred_at": None,
            "occurred_on": "2026-03-02", "reduction_g": 100 + i, "record": b'{"x":"\\u00e9\\\\"}\n\x00' + bytes([i % 256]),
            **changes}


def test_rows_inserted_are_found_and_read_back_byte_for_byte(database_url, monkeypatch):
    monkeypatch.setattr(store_module, "ARRAY_VALUES", 7)  # several array statements on PostgreSQL
    monkeypatch.setattr(store_module, "IN_LIST_VALUES", 7)  # several IN lists on SQLite
    store = Store.connect(database_url)
    store.create_schema()
    rows = [row(i) for i in range(40)]
    with store.engine.begin() as conn:
        store.insert_activities(conn, rows)
    asked = [f"a-{i}" for i in range(0, 80, 3)]
    with store.engine.connect() as conn:
        assert store.existing(conn, "activity_id", asked) == {f"a-{i}" for i in range(0, 40, 3)}
        assert store.existing(conn, "fingerprint", [f"{i:064x}" for i in (5, 39, 40, 41)]) == {f"{5:064x}", f"{39:064x}"}
        assert store.existing(conn, "fingerprint", []) == set()
        stored = [dict(r._mapping) for r in conn.execute(select(activities).order_by(activities.c.position))]
    assert stored == rows


def test_a_repeated_fingerprint_is_an_integrity_error_and_nothing_of_the_group_stays(database_url):
    store = Store.connect(database_url)
    store.create_schema()
    with store.engine.begin() as conn:
        store.insert_activities(conn, [row(1)])
    with pytest.raises(IntegrityError):
        with store.engine.begin() as conn:
            store.insert_activities(conn, [row(2), row(3, fingerprint=f"{1:064x}")])
    with store.engine.connect() as conn:
        assert store.existing(conn, "activity_id", ["a-1", "a-2", "a-3"]) == {"a-1"}


def test_values_present_by_digests_asks_only_the_named_partitions_and_confirms_collisions(database_url):
    """Two tables stand for two partitions; the digests name where each stored value lies. A value
    whose digest is absent costs no query, and a colliding digest is confirmed absent, not reported."""
    from sqlalchemy import Column, MetaData, String, Table

    from ledger.key_digests import StoredKeyDigests
    from ledger.store import values_present, values_present_by_digests

    class Colliding(str):
        def __hash__(self) -> int:
            return hash("a-1")

    metadata = MetaData()
    partitions = {p: Table(f"partition_{p}", metadata, Column("activity_id", String(128), primary_key=True)) for p in (0, 1)}
    store = Store.connect(database_url)
    metadata.create_all(store.engine)
    digests = StoredKeyDigests()
    with store.engine.begin() as conn:
        for p, values in ((0, ["a-1", "a-2"]), (1, ["a-3"])):
            conn.execute(partitions[p].insert(), [{"activity_id": v} for v in values])
            digests.add_many(values, p)
    asked: list[int] = []

    with store.engine.connect() as conn:
        def present_in(partition: int, candidates: list[str]) -> set[str]:
            asked.append(partition)
            return values_present(conn, partitions[partition].c.activity_id, candidates)

        assert values_present_by_digests(digests, present_in, ["a-3", "a-9", Colliding("a-8")]) == {"a-3"}
        assert sorted(asked) == [0, 1]  # partition 0 only for the collision, which it does not hold
        asked.clear()
        assert values_present_by_digests(digests, present_in, ["a-7", "a-9"]) == set()
        assert asked == []
        assert values_present_by_digests(digests, present_in, ["a-2", "a-1"]) == {"a-1", "a-2"}
