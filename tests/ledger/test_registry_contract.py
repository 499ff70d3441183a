"""The registry's contract, run on every storage backend (SQLite and PostgreSQL)."""

from __future__ import annotations

import os

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from ledger import merkle
from ledger.errors import Rejected, StorageError
from ledger.note import Witness, parse_verifier_key, verify_checkpoint, verify_cosignatures
from ledger.registry import sign_event
from ledger.replay import replay
from ledger.state import root_keys_from
from keys import Ed25519Key
from world import World


@pytest.fixture
def world(database_url):
    w = World(database_url).setup().history()
    yield w
    w.registry.close()


def replayed(world: World):
    reg = world.registry
    return replay((data for _, data in reg.leaf_bytes()), origin=reg.origin,
                  root_keys=root_keys_from(reg.meta["root_keys"]), batch_records=reg.batch_records)


def test_history_conserves_every_gram(world):
    totals = world.registry.state.totals_g()
    assert totals["issued_g"] == totals["active_g"] + totals["retired_g"] + totals["cancelled_g"]
    assert totals["retired_g"] == 1_500 + 10_000 + 100 + 50
    assert totals["cancelled_g"] == 100
    steel = world.registry.state.accounts["steel-co"]
    assert steel.active.size_g == 500 and steel.retired.ranges() == [[0, 1500]]


def test_projections_equal_a_replay_of_the_log_after_reopening(world):
    before = world.registry.state
    reopened = world.reopen().state
    assert reopened == before
    assert replayed(world) == reopened


def test_tree_root_from_stored_nodes_equals_root_from_leaves(world):
    reg = world.registry
    hashes = [merkle.leaf_hash(data) for _, data in reg.leaf_bytes()]
    assert len(hashes) == reg.size
    for size in (1, 7, len(hashes) // 2, len(hashes)):
        assert reg.root(size) == merkle.root_of_leaf_hashes(hashes[:size])
        for index in (0, size - 1):
            assert merkle.verify_inclusion(hashes[index], index, size, reg.inclusion_proof(index, size), reg.root(size))
    assert merkle.verify_consistency(5, len(hashes), reg.root(5), reg.root(), reg.consistency_proof(5, len(hashes)))


def test_a_proof_or_root_reads_its_nodes_in_one_query(world):
    """As Go's sumdb/tlog: work out every node a proof needs, then one read (on PostgreSQL one
    round trip, not one per node)."""
    from sqlalchemy import event as sql_event
    from ledger.merkle import leaf_hash, root_of_leaf_hashes, verify_consistency, verify_inclusion
    reg = world.registry
    size = reg.size
    hashes = [leaf_hash(data) for _, data in reg.leaf_bytes()]
    statements: list[str] = []
    sql_event.listen(reg.store.engine, "before_cursor_execute",
                     lambda conn, cursor, statement, *rest: statements.append(statement))

    def reads(work):
        reg.store._node_cache.clear()
        reg.store._upper_nodes.clear()
        statements.clear()
        result = work()
        return result, [s for s in statements if "tree_nodes" in s or "leaf_hash" in s]

    for index in (0, 5, size - 1):
        proof, sql = reads(lambda: reg.inclusion_proof(index, size))
        assert len(sql) == 1 and verify_inclusion(hashes[index], index, size, proof, root_of_leaf_hashes(hashes))
    for first in (1, 6, size - 1):
        proof, sql = reads(lambda: reg.consistency_proof(first, size))
        assert len(sql) == 1 and verify_consistency(first, size, root_of_leaf_hashes(hashes[:first]),
                                                    root_of_leaf_hashes(hashes), proof)
    root, sql = reads(lambda: reg.root(size))
    assert len(sql) == 1 and root == root_of_leaf_hashes(hashes)
    statements.clear()
    assert reg.inclusion_proof(3, size) == reg.inclusion_proof(3, size) and not [
        s for s in statements if "tree_nodes" in s or "leaf_hash" in s][1:]  # the second one is served from memory


def test_events_table_refuses_update_and_delete_in_the_database(world):
    engine = world.registry.store.engine
    for statement in ("UPDATE events SET time = 'x' WHERE seq = 1", "DELETE FROM events WHERE seq = 1",
                      "DELETE FROM tree_nodes", "UPDATE checkpoints SET note = 'x'", "DELETE FROM activities"):
        if "checkpoints" in statement:
            world.registry.checkpoint()
        with pytest.raises(Exception, match="append-only"):
            with engine.begin() as conn:
                conn.execute(text(statement))
    assert world.reopen().size == world.registry.size


def test_resending_the_same_signed_event_returns_the_original(world):
    c, w = world.client, world
    event = c.signed(w.mall, "retirement", {"retirement_id": "ret-x", "account": "mall-co", "amount_g": 5,
                                            "purpose": "voluntary", "beneficiary": "mall"})
    first = w.registry.append(event)
    size = w.registry.size
    again = w.registry.append(event)
    assert again.duplicate and again.seq == first.seq and again.leaf_hash == first.leaf_hash
    assert w.registry.size == size
    other = c.signed(w.mall, "retirement", {"retirement_id": "ret-y", "account": "mall-co", "amount_g": 5,
                                            "purpose": "voluntary", "beneficiary": "mall",
                                            "request_id": event["body"]["request_id"]})
    with pytest.raises(Rejected) as info:
        w.registry.append(other)
    assert info.value.code == "REPLAY"


def test_a_group_commits_accepted_events_and_reports_each_rejection(world):
    c, w = world.client, world
    events = [c.signed(w.mall, "retirement", {"retirement_id": f"g-{i}", "account": "mall-co", "amount_g": 10,
                                              "purpose": "voluntary", "beneficiary": "mall"}) for i in range(3)]
    events.insert(1, c.signed(w.mall, "retirement", {"retirement_id": "g-0", "account": "mall-co", "amount_g": 10,
                                                     "purpose": "voluntary", "beneficiary": "mall"}))
    size = w.registry.size
    results = w.registry.append_many([(e, None) for e in events])
    assert [getattr(r, "code", None) for r in results] == [None, "DUPLICATE_ID", None, None]
    assert [r.seq for r in results if not isinstance(r, Rejected)] == [size, size + 1, size + 2]
    assert world.reopen().size == size + 3



def test_malformed_events_are_refused_alone_and_alike_on_every_backend(world):
    """An unhashable type ({} or []), a request_id holding U+0000 (PostgreSQL's text cannot hold it)
    and an integer of thousands of digits are SCHEMA for that event alone: the group's other
    events commit, and the answer is the same on SQLite and PostgreSQL."""
    c, w = world.client, world
    honest = [c.signed(w.mall, "retirement", {"retirement_id": f"m-{i}", "account": "mall-co", "amount_g": 10,
                                              "purpose": "voluntary", "beneficiary": "mall"}) for i in range(2)]
    unhashable = [{**honest[0], "type": {}}, {**honest[0], "type": []}]
    nul = c.signed(w.mall, "retirement", {"retirement_id": "m-nul", "account": "mall-co", "amount_g": 10,
                                          "purpose": "voluntary", "beneficiary": "mall", "request_id": "a\x00b"})
    huge = {**honest[0], "body": {**honest[0]["body"], "amount_g": 10 ** 5000}}  # no client could sign it
    size = w.registry.size
    results = w.registry.append_many([(e, None) for e in [unhashable[0], honest[0], nul, unhashable[1], huge, honest[1]]])
    assert [getattr(r, "code", None) for r in results] == ["SCHEMA", None, "SCHEMA", "SCHEMA", "SCHEMA", None]
    assert "U+0000" in results[2].message
    assert world.reopen().size == size + 2


def test_a_fault_while_judging_one_event_refuses_it_alone_without_reloading(world, monkeypatch, caplog):
    """An unexpected exception before an event changes the State (checking, authenticating,
    judging) is that event's SCHEMA refusal, logged with its traceback: the group's other events
    commit and the State is not reloaded. A fault in apply still fails the group and reloads."""
    import ledger.registry as registry_module
    c, w = world.client, world
    events = [c.signed(w.mall, "retirement", {"retirement_id": f"f-{i}", "account": "mall-co", "amount_g": 10,
                                              "purpose": "voluntary", "beneficiary": "mall"}) for i in range(3)]
    judge = registry_module.judge

    def faulty_judge(state, event_type, body, key, **kwargs):
        if body["retirement_id"] == "f-1":
            raise TypeError("a bug this event's content triggers")
        return judge(state, event_type, body, key, **kwargs)

    monkeypatch.setattr(registry_module, "judge", faulty_judge)
    loads = []
    monkeypatch.setattr(w.registry, "_load", lambda: loads.append(1))
    size = w.registry.size
    results = w.registry.append_many([(e, None) for e in events])
    assert [getattr(r, "code", None) for r in results] == [None, "SCHEMA", None]
    assert "TypeError" in results[1].message and "cannot succeed" in results[1].message
    assert loads == [] and w.registry.size == size + 2
    assert "could not be judged" in caplog.text and "a bug this event's content triggers" in caplog.text
    monkeypatch.undo()
    assert world.reopen().size == size + 2

    def faulty_apply(*args, **kwargs):
        raise RuntimeError("apply broke")

    monkeypatch.setattr(registry_module, "apply", faulty_apply)
    event = c.signed(w.mall, "retirement", {"retirement_id": "f-3", "account": "mall-co", "amount_g": 10,
                                            "purpose": "voluntary", "beneficiary": "mall"})
    with pytest.raises(RuntimeError, match="apply broke"):
        w.registry.append_many([(event, None)])
    assert w.registry.size == size + 2


def test_the_signer_is_authenticated_before_any_record_is_looked_at(world, monkeypatch):
    import ledger.registry as registry_module
    c, w = world.client, world
    looked_at = []
    check_value = registry_module.check_value
    monkeypatch.setattr(registry_module, "check_value", lambda value: (looked_at.append(value), check_value(value)))
    stranger = Ed25519Key.from_label("puhui-test/stranger")
    event = sign_event(stranger, w.registry.origin, "activity.batch", {
        "batch_id": "b-stranger", "platform": "wuhan-platform", "methodology_id": "HB-GT-METRO",
        "methodology_version": 1, "period_start": "2026-01-01", "period_end": "2026-01-31", "count": 50, "total_g": 50,
        "root": "ab" * 32, "request_id": "r-stranger"}, log_format=1)
    records = [{"never": "looked at"}] * 50
    with pytest.raises(Rejected) as info:
        w.registry.append(event, records)
    assert info.value.code == "KEY_UNKNOWN"
    assert looked_at == [event]


def test_checkpoints_are_consistent_and_cosigned_by_witnesses(world):
    witness = Witness("witness.test/w1", Ed25519Key.from_label("puhui-test/witness"))
    first = world.registry.checkpoint([witness])
    world.client.retire(world.mall, "ret-w", "mall-co", 5, "voluntary", "mall")
    second = world.registry.checkpoint([witness])
    log_key = parse_verifier_key(world.registry.meta["log_key"])
    a, b = verify_checkpoint(first, log_key), verify_checkpoint(second, log_key)
    assert b.size == a.size + 1 and b.root == world.registry.root()
    assert verify_cosignatures(second, [witness.key]) == {"witness.test/w1"}
    assert world.registry.checkpoint() == second  # nothing new: the same checkpoint


def test_the_registry_never_signs_a_checkpoint_inconsistent_with_the_last(world):
    reg = world.registry
    reg.checkpoint()
    # Someone rewrote the record of the last signed checkpoint (a fork the registry must not extend).
    size = reg.size
    world.client.retire(world.mall, "ret-f", "mall-co", 5, "voluntary", "mall")
    with reg.store.engine.begin() as conn:
        conn.execute(text("UPDATE checkpoint_head SET tree_size = :s WHERE id = 1"), {"s": size - 1})
        conn.execute(text("INSERT INTO checkpoints (tree_size, root, note) VALUES (:s, :r, 'forged')"),
                     {"s": size - 1, "r": b"\x00" * 32})
    with pytest.raises(StorageError, match="not consistent"):
        reg.checkpoint()


def test_a_second_writer_cannot_fork_the_log(world):
    from service.actors import Client
    from ledger.registry import Registry
    other = Registry.open(world.url, log_signer=world.log_key)
    other.writer_lock_timeout_s = 0.5
    world.client.retire(world.mall, "ret-a", "mall-co", 5, "voluntary", "mall")  # world's registry writes
    # The writer lock (an advisory lock on PostgreSQL, a file lock on SQLite): a second writer
    # waits, then gives up, naming the holder on SQLite; it never loads a state to write from.
    with pytest.raises(StorageError, match="another writer") as refused:
        Client(other).retire(world.mall, "ret-b", "mall-co", 5, "voluntary", "mall")
    if other.store.dialect == "sqlite":
        assert f"pid {os.getpid()}" in str(refused.value)
    world.client.retire(world.mall, "ret-c", "mall-co", 5, "voluntary", "mall")  # the holder goes on
    other.close()
    reopened = world.reopen()
    assert replayed(world) == reopened.state
    assert {"ret-a", "ret-c"} <= set(reopened.state.retirements) and "ret-b" not in reopened.state.retirements


def test_the_writer_lock_goes_with_its_holder(world):
    from ledger.registry import Registry
    world.client.retire(world.mall, "ret-a", "mall-co", 5, "voluntary", "mall")
    world.registry.close()  # a clean stop (a killed process drops it too: the crash tests restart writers)
    other = Registry.open(world.url, log_signer=world.log_key)
    other.writer_lock_timeout_s = 0.5
    from service.actors import Client
    Client(other).retire(world.mall, "ret-b", "mall-co", 5, "voluntary", "mall")
    other.close()


@pytest.mark.postgresql
def test_the_writer_commits_in_the_session_that_holds_the_writer_lock(fresh_postgres_url, monkeypatch):
    """A writer killed mid-COMMIT must keep the lock until that COMMIT has landed, so appends and
    checkpoints commit in the lock's own session (the crash test once saw a restarted writer load
    the log while a killed writer's COMMIT, on another connection, was still landing)."""
    # (SQLite has no lock to keep: a killed process's transaction dies with it.)
    world = World(fresh_postgres_url).setup().history()
    reg = world.registry
    world.client.retire(world.mall, "ret-w0", "mall-co", 5, "voluntary", "mall")  # the lock is taken
    lock_conn = reg.store._lock_conn
    lock_pid = lock_conn.execute(text("SELECT pg_backend_pid()")).scalar()
    lock_conn.commit()
    holders = lock_conn.execute(text(
        "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND objid = :k"
        " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"),
        {"k": reg.store.WRITER_LOCK_KEY & 0xFFFFFFFF}).scalars().all()
    lock_conn.commit()
    assert holders == [lock_pid]

    def no_other_connection(*_args, **_kwargs):
        raise AssertionError("a write went through another connection than the lock's")
    monkeypatch.setattr(reg.store.engine, "begin", no_other_connection)
    size = reg.size
    world.client.retire(world.mall, "ret-w1", "mall-co", 5, "voluntary", "mall")
    reg.checkpoint()
    assert reg.size == size + 1
    monkeypatch.undo()
    with reg.store.engine.connect() as conn:
        committed = conn.execute(text("SELECT count(*) FROM events")).scalar()
    assert committed == reg.size


@pytest.mark.postgresql
def test_a_writer_whose_lock_session_breaks_stops_writing_until_it_holds_the_lock_again(fresh_postgres_url):
    world = World(fresh_postgres_url).setup().history()
    reg = world.registry
    world.client.retire(world.mall, "ret-l1", "mall-co", 5, "voluntary", "mall")
    lock_conn = reg.store._lock_conn
    pid = lock_conn.execute(text("SELECT pg_backend_pid()")).scalar()
    lock_conn.commit()
    with reg.store.engine.connect() as killer:
        killer.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid})
    with pytest.raises(OperationalError, match="terminating connection"):
        world.client.retire(world.mall, "ret-l2", "mall-co", 5, "voluntary", "mall")
    assert not reg.store.holds_writer_lock()
    world.client.retire(world.mall, "ret-l3", "mall-co", 5, "voluntary", "mall")  # takes the lock again, reloads
    assert reg.store.holds_writer_lock()
    assert {"ret-l1", "ret-l3"} <= set(reg.state.retirements) and "ret-l2" not in reg.state.retirements
    assert replayed(world) == world.reopen().state


def test_the_log_key_must_match(database_url):
    w = World(database_url)
    from ledger.registry import Registry
    with pytest.raises(StorageError, match="log key"):
        Registry.open(database_url, log_signer=Ed25519Key.from_label("someone else"))
    w.registry.close()
