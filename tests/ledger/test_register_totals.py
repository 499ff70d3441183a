"""The register's totals (ledger.register_totals, through Queries.totals), moved by each
commit and stored, equal the State's on SQLite and PostgreSQL; the other reads the public pages add to
ledger.queries: first_seq_at, serial and retirements_by_id."""

from __future__ import annotations

from ledger.queries import Queries
from world import World


def check_totals(world: World, queries: Queries) -> None:
    totals, state = queries.totals(), world.registry.state
    assert totals.size == state.size
    assert {"issued_g": totals.issued_g, "active_g": totals.active_g, "retired_g": totals.retired_g,
            "cancelled_g": totals.cancelled_g} == state.totals_g()
    assert sum(totals.retired_by_purpose_g.values()) == totals.retired_g
    for purpose, amount_g in totals.retired_by_purpose_g.items():
        assert amount_g == sum(r.amount_g for r in state.retirements.values() if r.purpose == purpose)
    for methodology_id, amount_g in totals.issued_by_methodology_g.items():
        assert amount_g == sum(i.amount_g for i in state.issuances.values() if i.methodology_id == methodology_id)
    assert sum(totals.issued_by_methodology_g.values()) == totals.issued_g
    assert sum(m.issued_g for m in totals.by_month) == totals.issued_g
    assert sum(m.retired_g for m in totals.by_month) == totals.retired_g


def test_totals_follow_each_commit(database_url):
    world = World(database_url).setup()
    queries = Queries(world.registry.store)
    try:
        check_totals(world, queries)
        assert queries.totals().by_month == []
        world.history()
        check_totals(world, queries)
        world.client.retire(world.mall, "ret-more", "mall-co", 700, "voluntary", "more")
        world.client.cancel(world.admin, "can-more", "mall-co", 300, "data correction")
        check_totals(world, queries)
        # A second reader reads the same stored rows.
        assert Queries(world.registry.store).totals() == queries.totals()
    finally:
        world.registry.close()


def test_totals_count_months_by_registry_time(tmp_path):
    world = World(f"sqlite:///{tmp_path / 'registry.sqlite3'}").setup().history()
    world.reopen()  # its clock starts in May
    world.client.retire(world.mall, "ret-may", "mall-co", 700, "voluntary", "May")
    queries = Queries(world.registry.store)
    try:
        by_month = {m.month: m for m in queries.totals().by_month}
        assert list(by_month) == ["2026-04", "2026-05"]
        assert by_month["2026-05"].retired_g == 700 and by_month["2026-05"].issued_g == 0
        assert queries.first_seq_at("2026-05") == world.registry.state.size - 1
        assert queries.first_seq_at("2026-04-01") == 0
        assert queries.first_seq_at("2026-06") == world.registry.state.size
    finally:
        world.registry.close()


def test_a_serial_names_its_issuance_and_holder(tmp_path):
    world = World(f"sqlite:///{tmp_path / 'registry.sqlite3'}").setup().history()
    queries = Queries(world.registry.store)
    try:
        state = world.registry.state
        for serial in (0, 1499, 1500, 2250, 4114, 4115, state.next_serial - 1):
            holding = queries.serial(serial)
            assert holding is not None
            assert holding.issuance.start <= serial < holding.issuance.end
            account = state.accounts[holding.account]
            assert any(start <= serial < end for start, end in getattr(account, holding.state).ranges())
        assert queries.serial(state.next_serial) is None
    finally:
        world.registry.close()


def test_retirements_by_id_keep_the_order_asked_and_leave_out_unknown_ids(tmp_path):
    world = World(f"sqlite:///{tmp_path / 'registry.sqlite3'}").setup().history()
    queries = Queries(world.registry.store)
    try:
        listed = {r["retirement_id"]: r for r in queries.retirements().items}
        found = queries.retirements_by_id(["ret-3", "nope", "ret-1"])
        assert found == [listed["ret-3"], listed["ret-1"]]
    finally:
        world.registry.close()
