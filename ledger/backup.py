"""Consistent online copies of a registry's database, and restores that never go back in time.

A copy of `registry.sqlite3` without its write-ahead log once came back 41 acknowledged events
short: a registry restored from it would hand out again seq numbers that clients hold receipts
for. So a backup is taken through the database's own means (SQLite's online backup API, which
copies a consistent snapshot whatever the WAL holds, while the writer goes on; `pg_dump`, one
repeatable-read snapshot), and a restore refuses a copy older than any checkpoint already
published: the registry's own latest one, and every note the operator brings from outside
(a witness, a monitor, a client's receipt). "Not older" means: the copy's log reaches that
checkpoint's size and has that root there (docs/operations.md, "Backup and restore").
"""

from __future__ import annotations

import glob
import os
import shutil
import sqlite3
import subprocess
import tempfile
from pathlib import Path
from typing import NamedTuple, Sequence

from sqlalchemy.engine import make_url

from keys.keyfile import fsync_directory
from ledger import merkle
from ledger.errors import StorageError
from ledger.note import VerifierKey, parse_verifier_key, verify_checkpoint
from ledger.store import Store, StoredNodes, sqlite_url

PG_TOOL_TIMEOUT_S = 3600.0


class CopyState(NamedTuple):
    """What a database copy holds: its log's size and its latest signed checkpoint's size."""
    size: int
    checkpoint_size: int


class BackupRefused(StorageError):
    """A backup or restore that would lose or rewrite history; nothing was changed."""


def backup(database_url: str, out: Path) -> CopyState:
    """Write a consistent copy of the registry's database to `out` (which must not exist)."""
    out = Path(out)
    if out.exists() or out.is_symlink():
        raise BackupRefused(f"{out} exists: a backup never overwrites a file")
    if not out.parent.is_dir():
        raise BackupRefused(f"{out.parent} is not a directory")
    url = make_url(database_url)
    temporary = out.parent / f".{out.name}.partial"
    try:
        if url.get_backend_name() == "sqlite":
            source_path = _sqlite_file(database_url)
            source = sqlite3.connect(f"file:{source_path}?mode=ro", uri=True)
            target = sqlite3.connect(temporary)
            try:
                source.backup(target)  # pages copied under a read snapshot: WAL contents included
            finally:
                target.close()
                source.close()
            state = copy_state(sqlite_url(str(temporary)))
        else:
            state = copy_state(database_url)  # read before the dump: the dump holds at least this
            _run_pg_tool("pg_dump", "--format=custom", "--no-owner", "--no-privileges", f"--file={temporary}",
                         _libpq_url(database_url))
        os.link(temporary, out)  # fails if out appeared meanwhile
        fsync_directory(out.parent)
        return state
    finally:
        temporary.unlink(missing_ok=True)


def restore(backup_file: Path, database_url: str, published_checkpoints: Sequence[str], log_key: str,
            replaced_database_url: str | None = None) -> CopyState:
    """Put a backup in place of the registry's database, after checking that it is not older than
    any checkpoint published: `published_checkpoints` (signed notes from outside) and the
    registry's own latest one, where the database being replaced can still be read: the target's
    and, when the registry moves to another database (`replaced_database_url`: on PostgreSQL a
    backup is restored into a new one), the one it leaves.

    SQLite: the file is replaced atomically, and the old file's WAL and shared-memory files go
    with it. PostgreSQL: the database must be empty (create a new one); it is restored, checked,
    and emptied again if the check refuses the copy."""
    backup_file = Path(backup_file)
    if not backup_file.is_file():
        raise BackupRefused(f"{backup_file}: no such backup file")
    key = parse_verifier_key(log_key)
    url = make_url(database_url)
    if replaced_database_url is not None and replaced_database_url != database_url:
        published_checkpoints = [*published_checkpoints, *_own_latest_checkpoint(replaced_database_url, True)]
    if url.get_backend_name() == "sqlite":
        target = Path(_sqlite_file(database_url))
        if not target.parent.is_dir():
            raise BackupRefused(f"{target.parent} does not exist")
        guard = Store.connect(database_url)
        guard.acquire_writer_lock(1.0)  # a running server holds it: never replace a file under it
        try:
            notes = list(published_checkpoints) + _own_latest_checkpoint(database_url, target.exists())
            with tempfile.TemporaryDirectory(dir=target.parent) as work:
                staged = Path(work) / "restore.sqlite3"
                shutil.copyfile(backup_file, staged)
                state = _check_not_older(sqlite_url(str(staged)), notes, key)
                for leftover in (f"{target}-wal", f"{target}-shm"):  # they belong to the file being replaced
                    Path(leftover).unlink(missing_ok=True)
                os.replace(staged, target)
            fsync_directory(target.parent)
        finally:
            guard.release_writer_lock()
            guard.engine.dispose()
        return state
    store = Store.connect(database_url)
    try:
        if store.has_schema():
            raise BackupRefused("the target PostgreSQL database is not empty: restore into a new database, "
                                "then point the registry at it (--database-url, or registry.json)")
    finally:
        store.close()
    _run_pg_tool("pg_restore", "--no-owner", "--no-privileges", "--exit-on-error",
                 f"--dbname={_libpq_url(database_url)}", str(backup_file))
    try:
        return _check_not_older(database_url, list(published_checkpoints), key)
    except BackupRefused:
        _empty_postgres(database_url)
        raise


def copy_state(database_url: str) -> CopyState:
    store = Store.connect(database_url)
    try:
        if not store.has_schema():
            raise BackupRefused(f"no Puhui registry in {make_url(database_url).render_as_string(hide_password=True)}")
        with store.engine.connect() as conn:
            latest = store.latest_checkpoint(conn)
            return CopyState(store.size(conn), 0 if latest is None else latest.tree_size)
    finally:
        store.close()


def _check_not_older(database_url: str, notes: Sequence[str], key: VerifierKey) -> CopyState:
    store = Store.connect(database_url)
    try:
        with store.engine.connect() as conn:
            size = store.size(conn)
            nodes = StoredNodes(store, conn)
            for note in notes:
                try:
                    checkpoint = verify_checkpoint(note, key)
                except ValueError as exc:
                    raise BackupRefused(f"a published checkpoint does not verify with this registry's log key: {exc}") from None
                if checkpoint.size > size:
                    raise BackupRefused(f"the backup holds {size} events, but a checkpoint of {checkpoint.size} was "
                                        f"published: restoring it would hand out again seq numbers that clients hold "
                                        f"receipts for. Restore a newer backup")
                if checkpoint.size and merkle.root(nodes, checkpoint.size) != checkpoint.root:
                    raise BackupRefused(f"the backup's log differs from the published checkpoint at size "
                                        f"{checkpoint.size}: it is not this registry's history")
            latest = store.latest_checkpoint(conn)
            return CopyState(size, 0 if latest is None else latest.tree_size)
    finally:
        store.close()


def _own_latest_checkpoint(database_url: str, exists: bool) -> list[str]:
    if not exists:
        return []
    try:
        store = Store.connect(database_url)
        try:
            with store.engine.connect() as conn:
                latest = store.latest_checkpoint(conn)
        finally:
            store.close()
    except Exception:  # noqa: BLE001 - the database being replaced may be damaged: that is why we restore
        return []
    return [] if latest is None else [latest.note]


def _sqlite_file(database_url: str) -> str:
    database = make_url(database_url).database
    if database in (None, "", ":memory:"):
        raise BackupRefused("an in-memory database has nothing to back up or restore")
    return database


def _libpq_url(database_url: str) -> str:
    """postgresql+psycopg://... (SQLAlchemy) as libpq reads it (postgresql://...)."""
    return make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)


def _pg_tool(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"),
                        key=lambda path: int(Path(path).parts[-3]) if Path(path).parts[-3].isdigit() else 0)
    if not candidates:
        raise StorageError(f"{name} is not installed (Debian: apt-get install postgresql-client)")
    return candidates[-1]


def _run_pg_tool(name: str, *arguments: str) -> None:
    try:
        subprocess.run([_pg_tool(name), *arguments], check=True, capture_output=True, text=True,
                       stdin=subprocess.DEVNULL, timeout=PG_TOOL_TIMEOUT_S)
    except subprocess.CalledProcessError as exc:
        raise StorageError(f"{name} failed: {(exc.stderr or '').strip()[-500:]}") from None
    except subprocess.TimeoutExpired:
        raise StorageError(f"{name} did not finish within {PG_TOOL_TIMEOUT_S:g} s") from None


def _empty_postgres(database_url: str) -> None:
    store = Store.connect(database_url)
    try:
        with store.engine.begin() as conn:
            conn.exec_driver_sql("DROP SCHEMA public CASCADE")
            conn.exec_driver_sql("CREATE SCHEMA public")
    finally:
        store.close()
