"""Backups are consistent online copies; a restore never goes back behind a published checkpoint
(ledger.backup), on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from ledger.backup import BackupRefused, backup, restore
from ledger.registry import Registry
from ledger.store import Store
from world import World


@pytest.fixture
def world(database_url):
    w = World(database_url).setup().history()
    yield w
    w.registry.close()


@pytest.fixture
def restore_url(database_url, tmp_path, postgres_cluster_if_needed):
    """Where a restore goes: a new SQLite file, or a new, empty PostgreSQL database."""
    if database_url.startswith("sqlite"):
        return f"sqlite:///{tmp_path / 'restored.sqlite3'}"
    return postgres_cluster_if_needed.create_database()


@pytest.fixture
def postgres_cluster_if_needed(database_url, request):
    return request.getfixturevalue("postgres_cluster") if not database_url.startswith("sqlite") else None


def retire(world: World, n: int) -> None:
    for i in range(n):
        world.client.retire(world.mall, f"more-{world.registry.size}-{i}", "mall-co", 1, "voluntary", "mall")


def log_key(world: World) -> str:
    return world.registry.meta["log_key"]


def test_a_backup_holds_every_acknowledged_event_while_the_writer_runs(world, tmp_path, restore_url):
    retire(world, 30)  # on SQLite these sit in the WAL, not yet in the database file
    size, root = world.registry.size, world.registry.root()
    copied = backup(world.url, tmp_path / "registry.backup")
    assert copied.size == size
    retire(world, 1)  # the writer went on during and after the copy
    restored = restore(tmp_path / "registry.backup", restore_url, [], log_key(world))
    assert restored.size == size
    registry = Registry.open(restore_url)
    assert registry.size == size and registry.root() == root
    assert registry.check_integrity(full=True).ok
    registry.close()


def test_a_backup_never_overwrites_a_file(world, tmp_path):
    existing = tmp_path / "taken"
    existing.write_bytes(b"keep me")
    with pytest.raises(BackupRefused, match="never overwrites"):
        backup(world.url, existing)
    assert existing.read_bytes() == b"keep me"


def test_a_restore_refuses_a_backup_older_than_a_published_checkpoint(world, tmp_path, restore_url):
    backup(world.url, tmp_path / "old.backup")
    old_size = world.registry.size
    retire(world, 5)
    published = world.registry.checkpoint()  # what a witness or a client's receipt holds
    with pytest.raises(BackupRefused, match=f"holds {old_size} events, but a checkpoint of {old_size + 5}"):
        restore(tmp_path / "old.backup", restore_url, [published], log_key(world))
    if restore_url.startswith("sqlite"):
        assert not Path(restore_url.removeprefix("sqlite:///")).exists()
    else:  # emptied again: a new attempt with a good backup may follow
        store = Store.connect(restore_url)
        assert not store.has_schema()
        store.close()
    backup(world.url, tmp_path / "new.backup")
    assert restore(tmp_path / "new.backup", restore_url, [published], log_key(world)).size == old_size + 5


def test_a_restore_into_another_database_checks_the_one_the_registry_leaves(world, tmp_path, restore_url):
    """On PostgreSQL a backup is restored into a new database (trial 11: a backup older than the
    registry's own latest checkpoint was restored there, unchecked): the database the registry
    leaves is read for its latest checkpoint, as the one a SQLite restore replaces is."""
    backup(world.url, tmp_path / "old.backup")
    old_size = world.registry.size
    retire(world, 5)
    world.registry.checkpoint()  # in the registry's own database only: no --checkpoint given
    with pytest.raises(BackupRefused, match=f"holds {old_size} events, but a checkpoint of {old_size + 5}"):
        restore(tmp_path / "old.backup", restore_url, [], log_key(world), replaced_database_url=world.url)


def test_a_sqlite_restore_checks_the_registry_it_replaces_and_drops_its_wal(tmp_path):
    world = World(f"sqlite:///{tmp_path / 'registry.sqlite3'}").setup().history()
    backup(world.url, tmp_path / "old.backup")
    retire(world, 3)
    world.registry.checkpoint()
    world.registry.close()
    with pytest.raises(BackupRefused, match="was published"):  # the registry's own latest checkpoint
        restore(tmp_path / "old.backup", world.url, [], log_key(world))
    world.reopen()
    retire(world, 2)  # uncheckpointed pages in registry.sqlite3-wal
    backup(world.url, tmp_path / "new.backup")
    world.registry.close()
    Path(f"{tmp_path / 'registry.sqlite3'}-wal").write_bytes(b"stale")  # as a crash might leave it
    restore(tmp_path / "new.backup", world.url, [], log_key(world))
    assert not Path(f"{tmp_path / 'registry.sqlite3'}-wal").exists() or \
        Path(f"{tmp_path / 'registry.sqlite3'}-wal").read_bytes() != b"stale"
    assert world.reopen().check_integrity(full=True).ok


def test_a_restore_refuses_another_history_and_a_foreign_note(world, tmp_path, restore_url):
    backup(world.url, tmp_path / "mine.backup")
    other = World(f"sqlite:///{tmp_path / 'other.sqlite3'}").setup()  # same keys, another history
    other.client.register_methodology(other.admin, "HB-OTHER", 1, "Other", "other", {"x": "1"}, False)
    foreign = other.registry.checkpoint()
    other.registry.close()
    with pytest.raises(BackupRefused, match="differs from the published checkpoint"):
        restore(tmp_path / "mine.backup", restore_url, [foreign], log_key(world))
    note = world.registry.checkpoint()
    tampered = note.replace(note.splitlines()[2], "A" * 43 + "=")
    with pytest.raises(BackupRefused, match="does not verify"):
        restore(tmp_path / "mine.backup", restore_url, [tampered], log_key(world))


def test_a_postgresql_restore_needs_an_empty_database(fresh_postgres_url, tmp_path):
    world = World(fresh_postgres_url).setup()
    backup(world.url, tmp_path / "pg.backup")
    with pytest.raises(BackupRefused, match="not empty"):
        restore(tmp_path / "pg.backup", world.url, [], log_key(world))
    with world.registry.store.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM events")).scalar() == world.registry.size
    world.registry.close()
