"""The registry checks its projections against the log before it writes (ledger.integrity), on
every backend: rows edited behind its back are found at the next start and nothing is written
over them; untouched rows pass without a replay."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import text

from ledger.errors import StorageError
from world import World


@pytest.fixture
def world(database_url):
    w = World(database_url).setup().history()
    yield w
    w.registry.close()


def edit(world: World, statement: str, **values) -> None:
    """Change the database as an intruder or a careless restore would, then start again."""
    world.registry.close()
    from ledger.store import Store
    store = Store.connect(world.url)
    with store.engine.begin() as conn:
        conn.execute(text(statement), values)
    store.close()


def account_data(world: World, account_id: str) -> dict:
    with world.registry.store.engine.connect() as conn:
        return json.loads(conn.execute(text("SELECT data FROM accounts WHERE account_id = :a"), {"a": account_id}).scalar())


def write_attempt(world: World):
    return world.client.retire(world.mall, "after-edit", "mall-co", 1, "voluntary", "mall")


def test_an_untouched_registry_passes_the_start_check_without_a_replay(world):
    size = world.registry.size
    reopened = world.reopen()
    write_attempt(world)
    report = reopened.integrity
    assert report.ok and report.method == "digest" and report.digest_recorded and report.size == size
    full = reopened.check_integrity(full=True)
    assert full.ok and full.method == "replay"


def test_serials_never_issued_added_to_an_account_are_refused_before_any_write(world):
    data = account_data(world, "mall-co")
    issued = world.registry.state.next_serial
    data["active"] = data["active"] + [[issued + 10, issued + 1_000_010]]
    edit(world, "UPDATE accounts SET data = :d, active_g = active_g + 1000000 WHERE account_id = 'mall-co'",
         d=json.dumps(data, sort_keys=True, separators=(",", ":")))
    registry = world.reopen()
    size = registry.size
    with pytest.raises(StorageError, match="projections do not match the log") as refused:
        write_attempt(world)
    assert "beyond the" in str(refused.value) and "puhui check" in str(refused.value)
    assert registry.size == size  # nothing was written
    report = registry.check_integrity(full=True)
    assert not report.ok and any("accounts 'mall-co'" in p for p in report.problems)


def test_a_role_added_to_a_key_row_is_found_by_the_digest(world):
    key_id = world.mall.key_id
    with world.registry.store.engine.connect() as conn:
        data = json.loads(conn.execute(text("SELECT data FROM keys WHERE key_id = :k"), {"k": key_id}).scalar())
    data["roles"] = ["admin"]
    edit(world, "UPDATE keys SET data = :d WHERE key_id = :k", d=json.dumps(data, sort_keys=True, separators=(",", ":")),
         k=key_id)
    registry = world.reopen()
    with pytest.raises(StorageError, match="changed, added or removed outside the registry"):
        write_attempt(world)
    report = registry.check_integrity(full=True)
    assert any(f"keys {key_id!r}" in p for p in report.problems)


def test_a_gram_column_that_differs_from_the_ranges_is_named(world):
    edit(world, "UPDATE accounts SET retired_g = retired_g + 5 WHERE account_id = 'steel-co'")
    registry = world.reopen()
    with pytest.raises(StorageError, match="account steel-co: its gram columns"):
        write_attempt(world)
    assert not registry.check_integrity().ok


def test_a_removed_row_is_found(world):
    edit(world, "DELETE FROM claims")
    world.reopen()
    with pytest.raises(StorageError, match="projections do not match the log"):
        write_attempt(world)


def test_rows_edited_into_nonsense_are_a_clear_error(world):
    edit(world, "UPDATE retirements SET data = '{}'")
    with pytest.raises(StorageError, match="projection rows cannot be read.*puhui check"):
        world.reopen()


def test_a_database_from_before_the_digest_is_replayed_once_then_checked_by_digest(world):
    edit(world, "DELETE FROM projection_digest")
    registry = world.reopen()
    write_attempt(world)
    assert registry.integrity.ok and registry.integrity.method == "replay" and not registry.integrity.digest_recorded
    again = world.reopen()
    world.client.retire(world.mall, "after-edit-2", "mall-co", 1, "voluntary", "mall")
    assert again.integrity.ok and again.integrity.method == "digest"


def test_a_database_from_before_the_digest_with_edited_rows_is_refused(world):
    edit(world, "DELETE FROM projection_digest")
    edit(world, "UPDATE accounts SET active_g = 0, data = :d WHERE account_id = 'mall-co'",
         d=json.dumps({**account_data(world, "mall-co"), "active": []}, sort_keys=True, separators=(",", ":")))
    registry = world.reopen()
    with pytest.raises(StorageError, match="projections do not match the log"):
        write_attempt(world)
    assert registry.integrity.method == "replay"
