"""One writer per registry, on both backends: a second one waiting for the lock is refused after
its timeout with the holder named (SQLite: the lock file; PostgreSQL: the holding session's
application_name), so an operator knows which process to stop (trial 11: on PostgreSQL the refusal
named no one)."""

from __future__ import annotations

import os

import pytest

from ledger.errors import WriterLockHeld
from ledger.store import Store


def test_a_second_writer_is_refused_naming_the_holder(database_url, caplog):
    holder, waiter = Store.connect(database_url), Store.connect(database_url)
    try:
        holder.create_schema()
        holder.acquire_writer_lock(1.0)
        with pytest.raises(WriterLockHeld) as refused:
            waiter.acquire_writer_lock(0.3)
        assert "another writer holds this log" in str(refused.value)
        assert f"held by pid {os.getpid()}" in str(refused.value), str(refused.value)
        assert f"held by pid {os.getpid()}" in caplog.text  # said at once, not only after the wait
        holder.release_writer_lock()
        waiter.acquire_writer_lock(5.0)
        assert waiter.holds_writer_lock()
    finally:
        waiter.close()
        holder.close()


def test_a_released_lock_is_free_while_the_store_stays_open(database_url):
    """Releasing the lock frees it at once, though the Store keeps its engine: on PostgreSQL the
    session lock once went back to the pool with its connection and stayed held until the engine
    was disposed (a writer that lost its turn kept everyone else out)."""
    holder, waiter = Store.connect(database_url), Store.connect(database_url)
    try:
        holder.create_schema()
        holder.acquire_writer_lock(1.0)
        holder.release_writer_lock()
        assert not holder.holds_writer_lock()
        waiter.acquire_writer_lock(0.3)
        assert waiter.holds_writer_lock()
        waiter.release_writer_lock()
        holder.acquire_writer_lock(0.3)  # and the first can take it again
        assert holder.holds_writer_lock()
    finally:
        waiter.close()
        holder.close()
