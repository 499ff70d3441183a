"""The page indexes (ledger.page_indexes: register totals, serial ranges and eligibility changes)
that each commit writes equal a recomputation from the log after every event, on SQLite and
PostgreSQL, after a restart too; a database from before them is filled once from its log at its
writer's start; rows edited behind the registry's back are caught by the start check; a
methodology's eligibility history is read from its index, never from the log."""

from __future__ import annotations

from collections import Counter
from typing import NamedTuple

import pytest
from sqlalchemy import event, inspect, text

from ledger import eligibility_index, register_totals, serial_index
from ledger.errors import StorageError
from ledger.leaf import parse_leaf
from ledger.projections import ProjectionDigest, load_state
from ledger.queries import Queries
from ledger.registry import Registry
from ledger.store import PAGE_INDEXES, PROJECTIONS, Store
from world import World


class SerialAt(NamedTuple):
    account: str
    state: str
    seq: int
    issuance_seq: int


class FromLog(NamedTuple):
    serials: dict[int, SerialAt]  # every issued serial
    totals: Counter  # grams by (measure, key)
    eligibility: list[tuple]  # (seq, methodology_id, time, type, version, offset_eligible) of each such event


def from_log(registry: Registry) -> FromLog:
    """Where each serial is and the totals, recomputed gram by gram from the leaves alone."""
    serials: dict[int, SerialAt] = {}
    totals: Counter = Counter()
    eligibility = []
    for _, data in registry.leaf_bytes():
        leaf = parse_leaf(data, registry.log_format)
        body, month = leaf.body, leaf.time[:7]
        if leaf.type in ("methodology.register", "methodology.eligibility"):
            eligibility.append((leaf.seq, body["methodology_id"], leaf.time, leaf.type, body.get("version"),
                                body["offset_eligible"]))
        if leaf.type == "issuance":
            totals["issued", ""] += body["amount_g"]
            totals["issued_by_methodology", body["methodology_id"]] += body["amount_g"]
            totals["issued_by_month", month] += body["amount_g"]
        elif leaf.type == "retirement":
            totals["retired_by_purpose", body["purpose"]] += body["amount_g"]
            totals["retired_by_month", month] += body["amount_g"]
        elif leaf.type == "cancellation":
            totals["cancelled", ""] += body["amount_g"]
        to = {"issuance": (body.get("account"), "active"), "transfer": (body.get("to"), "active"),
              "retirement": (body.get("account"), "retired"), "cancellation": (body.get("account"), "cancelled")}
        if leaf.type in to:
            for start, end in leaf.serials:
                for serial in range(start, end):
                    issuance_seq = leaf.seq if leaf.type == "issuance" else serials[serial].issuance_seq
                    serials[serial] = SerialAt(*to[leaf.type], leaf.seq, issuance_seq)
    return FromLog(serials, totals, eligibility)


def check_against_log(registry: Registry) -> None:
    expected = from_log(registry)
    with registry.store.engine.connect() as conn:
        rows = serial_index.stored_rows(conn)
        totals = register_totals.stored_rows(conn)
        assert [tuple(row) for row in eligibility_index.stored_rows(conn)] == expected.eligibility
    assert {(row.measure, row.key): row.value for row in totals} == {**expected.totals, ("size", ""): registry.size}
    stored: dict[int, SerialAt] = {}
    for row in rows:
        assert row.start < row.end
        for serial in range(row.start, row.end):
            assert serial not in stored
            stored[serial] = SerialAt(row.account, row.state, row.seq, row.issuance_seq)
    assert stored == expected.serials
    queries = Queries(registry.store)
    for row in rows:  # the lookup at both ends of every range
        for serial in (row.start, row.end - 1):
            holding = queries.serial(serial)
            assert (holding.account, holding.state, holding.seq) == expected.serials[serial][:3]
            assert holding.issuance.start <= serial < holding.issuance.end
            assert holding.event_ref == registry.leaf(holding.seq).body[
                {"issuance": "issuance_id", "transfer": "transfer_id", "retirement": "retirement_id",
                 "cancellation": "cancellation_id"}[registry.leaf(holding.seq).type]]
    assert queries.serial(len(expected.serials)) is None


def checked_after_every_group(world: World) -> None:
    """Check the indexes against the log after every commit of the world's registry."""
    registry = world.registry
    append_many = registry.append_many

    def checked(items):
        results = append_many(items)
        check_against_log(registry)
        return results
    registry.append_many = checked


def fragmenting_history(world: World) -> None:
    """Serials moved back and forth, in single events and in groups where one event moves what an
    earlier one of the same group created or moved."""
    c = world.client
    c.transfer(world.mall, "frag-1", "mall-co", "bob", 7_000)
    c.transfer(world.bob, "frag-2", "bob", "mall-co", 3_000)
    c.transfer(world.mall, "frag-3", "mall-co", "bob", 4_000)
    c.retire(world.bob, "frag-ret", "bob", 2_500, "voluntary", "p-bob")
    c.cancel(world.admin, "frag-can", "bob", 10, "data correction")
    group = [c.signed(world.admin, "issuance", {
                "issuance_id": "iss-g", "account": "mall-co", "methodology_id": "HB-RS-RECYCLE", "vintage": 2025,
                "region": "420100", "amount_g": 900, "batches": [],
                "evidence": "e8281ba0cff227df12fba39ad99bd46713c35e6dc54327f3ff9d558e2d4a3d55"}),
             # all mall holds: its serials of iss-2 and of iss-g, one range across the two issuances
             c.signed(world.mall, "transfer", {"transfer_id": "g-1", "from": "mall-co", "to": "bob",
                                               "amount_g": world.registry.state.accounts["mall-co"].active.size_g + 900}),
             c.signed(world.bob, "transfer", {"transfer_id": "g-2", "from": "bob", "to": "mall-co", "amount_g": 16_345}),
             c.signed(world.mall, "retirement", {"retirement_id": "g-ret", "account": "mall-co", "amount_g": 111,
                                                 "purpose": "carbon_neutrality", "beneficiary": "mall"}),
             c.signed(world.admin, "cancellation", {"cancellation_id": "g-can", "account": "bob", "amount_g": 7,
                                                    "reason": "data correction"})]
    results = world.registry.append_many([(event, None) for event in group])
    assert [r for r in results if isinstance(r, Exception)] == []


def test_the_indexes_equal_the_log_after_every_event_and_a_restart(database_url):
    world = World(database_url)
    try:
        checked_after_every_group(world)
        world.setup().history()
        fragmenting_history(world)
        world.reopen().become_writer()
        assert world.registry.integrity.ok, world.registry.integrity.problems
        check_against_log(world.registry)
        checked_after_every_group(world)
        world.client.transfer(world.bob, "after-restart", "bob", "alice", 1_234)
        world.client.retire(world.alice, "after-restart-ret", "alice", 1_000, "voluntary", "p-alice")
        assert world.registry.integrity.ok
        full = world.registry.check_integrity(full=True)
        assert full.ok, full.problems
    finally:
        world.registry.close()


def rows_of(url: str) -> tuple[list, list]:
    store = Store.connect(url)
    try:
        with store.engine.connect() as conn:
            return register_totals.stored_rows(conn), serial_index.stored_rows(conn)
    finally:
        store.close()


def test_a_database_from_before_the_indexes_is_filled_once_from_its_log(database_url):
    """And gets the projections' indexes it lacks (the seq of each, by which the registers page)."""
    world = World(database_url).setup().history()
    fragmenting_history(world)
    before = rows_of(world.url)
    world.registry.close()
    # As an earlier Puhui left it: no page index tables, a digest of the projections alone.
    store = Store.connect(world.url)
    with store.engine.begin() as conn:
        for table in PAGE_INDEXES:
            table.drop(conn)
        for table in PROJECTIONS.values():
            for index in table.indexes:
                index.drop(conn)
        conn.execute(text("CREATE INDEX ix_retirements_purpose ON retirements (purpose)"))  # as schema 1 made it
        digest = ProjectionDigest()
        load_state(store, conn, world.registry.state.root_keys, store.read_meta(), digest=digest)
        store.write_projection_digest(conn, world.registry.size, digest.hex())
    with pytest.raises(StorageError, match="not filled yet"):
        Queries(store).totals()
    store.close()
    registry = world.reopen()
    registry.become_writer()
    assert registry.integrity.ok, registry.integrity.problems
    assert rows_of(world.url) == before
    with registry.store.engine.connect() as conn:  # the declared indexes are back, the superseded one gone
        assert {index["name"] for index in inspect(conn).get_indexes("retirements")} == {
            index.name for index in PROJECTIONS["retirements"].indexes}
    check_against_log(registry)
    world.reopen().become_writer()  # filled once: the next start only checks
    assert world.registry.integrity.ok and rows_of(world.url) == before
    world.registry.close()


@pytest.mark.parametrize("statement", [
    "UPDATE register_totals SET value = value + 1 WHERE measure = 'issued'",
    "UPDATE serial_ranges SET account = 'bob' WHERE start = 0",
    "DELETE FROM serial_ranges WHERE start = (SELECT MAX(start) FROM serial_ranges)",
    "UPDATE eligibility_changes SET offset_eligible = NOT offset_eligible WHERE seq = (SELECT MAX(seq) FROM eligibility_changes)",
    "DELETE FROM eligibility_changes WHERE seq = (SELECT MIN(seq) FROM eligibility_changes)",
])
def test_index_rows_edited_behind_the_registry_are_refused_before_any_write(database_url, statement):
    world = World(database_url).setup().history()
    world.registry.close()
    store = Store.connect(world.url)
    with store.engine.begin() as conn:
        conn.execute(text(statement))
    store.close()
    registry = world.reopen()
    size = registry.size
    with pytest.raises(StorageError, match="projections do not match the log"):
        world.client.retire(world.mall, "after-edit", "mall-co", 1, "voluntary", "mall")
    assert registry.size == size
    assert any("register totals" in p or "serial index" in p or "digest" in p for p in registry.integrity.problems)
    registry.close()


def test_months_forged_with_a_recomputed_digest_are_caught_by_the_full_check(database_url):
    world = World(database_url).setup().history()
    world.registry.close()
    store = Store.connect(world.url)
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE register_totals SET value = value + 5 WHERE measure = 'retired_by_month'"))
        conn.execute(text("UPDATE register_totals SET value = value - 5 WHERE measure = 'issued_by_month'"))
        digest = ProjectionDigest()  # as a forger who knows the digest would recompute it
        load_state(store, conn, world.registry.state.root_keys, store.read_meta(), digest=digest)
        store.write_projection_digest(conn, world.registry.size, digest.hex())
    store.close()
    registry = world.reopen()
    registry.become_writer()
    assert registry.integrity.ok  # the start check sees no months
    full = registry.check_integrity(full=True)
    assert not full.ok
    assert any("retired_by_month" in p for p in full.problems) and any("issued_by_month" in p for p in full.problems)
    registry.close()


def statements_on(store: Store) -> list[str]:
    """The SQL statements run on the store's engine from now on."""
    seen: list[str] = []
    event.listen(store.engine, "before_cursor_execute", lambda conn, cursor, statement, *_: seen.append(statement))
    return seen


def test_the_eligibility_history_is_read_from_its_index_not_the_log(database_url):
    """In log order, each version's register and every change (format 1's of every version), as the
    log has them; read through the index alone, at the first asking as at the next."""
    world = World(database_url).setup().history()
    world.client.set_eligibility(world.admin, "HB-RS-RECYCLE", True)
    world.client.set_eligibility(world.admin, "HB-RS-RECYCLE", False)
    world.client.register_methodology(world.admin, "HB-RS-RECYCLE", 2, "Household recycling", "resource_saving",
                                      {"g_per_kg": "310"}, True)
    check_against_log(world.registry)
    queries = Queries(world.registry.store)
    seen = statements_on(world.registry.store)
    history = queries.eligibility_history("HB-RS-RECYCLE")
    assert queries.eligibility_history("HB-NONE") == []
    read = list(seen)
    assert read and not any(" events" in statement for statement in read), read
    assert [(c.type, c.version, c.offset_eligible) for c in history] == [
        ("methodology.register", 1, False), ("methodology.eligibility", None, True),
        ("methodology.eligibility", None, False), ("methodology.register", 2, True)]
    assert [c.time for c in history] == [world.registry.leaf(c.seq).time for c in history]
    world.registry.close()


def test_a_database_from_before_the_eligibility_index_gets_it_from_its_methodology_events(database_url):
    """Its other page indexes filled already: only the eligibility changes are filled, once."""
    world = World(database_url).setup().history()
    world.client.set_eligibility(world.admin, "HB-GT-METRO", False)
    before = rows_of(world.url)
    world.registry.close()
    store = Store.connect(world.url)
    with store.engine.begin() as conn:
        conn.execute(text("DROP TABLE eligibility_changes"))
        digest = ProjectionDigest()
        load_state(store, conn, world.registry.state.root_keys, store.read_meta(), digest=digest)
        store.write_projection_digest(conn, world.registry.size, digest.hex())
    store.close()
    registry = world.reopen()
    registry.become_writer()
    assert registry.integrity.ok, registry.integrity.problems
    assert rows_of(world.url) == before
    check_against_log(registry)
    assert [c.offset_eligible for c in Queries(registry.store).eligibility_history("HB-GT-METRO")] == [True, False]
    world.reopen().become_writer()
    assert world.registry.integrity.ok
    check_against_log(world.registry)
    world.registry.close()
