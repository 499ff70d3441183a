"""The sequencer: group commit, nothing acknowledged before the commit, checkpoints, back-pressure."""

from __future__ import annotations

import multiprocessing
import threading
import time
from concurrent.futures import wait

import pytest

from api.writer import CheckpointJob, WriteJob, _Outbox, _serve
from ledger.errors import Rejected, StorageError
from ledger.note import parse_checkpoint
from ledger.registry import Appended
from ledger.sequencer import Overloaded, Sequencer


class Watched:
    """A registry whose append_many can be held back, made to fail, and counted."""

    def __init__(self, registry):
        self._registry = registry
        self.groups: list[int] = []
        self.release = threading.Event()
        self.release.set()
        self.entered = threading.Event()
        self.fail_next = False

    def __getattr__(self, name):
        return getattr(self._registry, name)

    def append_many(self, items):
        self.entered.set()
        self.release.wait(10)
        if self.fail_next:
            self.fail_next = False
            raise StorageError("the disk is full")
        self.groups.append(len(items))
        return self._registry.append_many(items)


def retirement(world, n, amount_g=1):
    return world.client.signed(world.mall, "retirement", {"retirement_id": f"ret-q{n}", "account": "mall-co",
                                                          "amount_g": amount_g, "purpose": "voluntary",
                                                          "beneficiary": "x"})


def checkpoint_size(registry) -> int:
    note = registry.latest_checkpoint()
    return 0 if note is None else parse_checkpoint(note).size


@pytest.fixture
def watched(world):
    return Watched(world.registry)


@pytest.fixture
def sequencer(watched):
    s = Sequencer(watched, checkpoint_interval_s=0.05).start()
    yield s
    watched.release.set()
    s.stop()


def test_events_that_arrive_together_share_one_commit(world, watched, sequencer):
    watched.release.clear()
    first = sequencer.submit(retirement(world, 0))
    assert watched.entered.wait(5)
    # While the first group commits, 63 more arrive: they all go in the next group.
    futures = [sequencer.submit(retirement(world, n)) for n in range(1, 64)]
    time.sleep(0.05)
    assert not first.done() and not any(f.done() for f in futures)  # nothing acknowledged before the commit
    watched.release.set()
    wait([first, *futures], timeout=10)
    outcomes = [f.result()[0] for f in [first, *futures]]
    assert all(isinstance(o, Appended) and not o.duplicate for o in outcomes)
    assert sorted(o.seq for o in outcomes) == list(range(outcomes[0].seq, outcomes[0].seq + 64))
    assert watched.groups[:2] == [1, 63]
    assert sequencer.committed_size == world.registry.size


def test_a_job_is_applied_in_order_and_contiguously(world, sequencer):
    events = [retirement(world, n) for n in range(10)]
    outcomes = sequencer.submit_many([(e, None) for e in [*events, events[3]]]).result(10)
    assert [o.seq for o in outcomes[:10]] == list(range(outcomes[0].seq, outcomes[0].seq + 10))
    assert outcomes[10].duplicate and outcomes[10].seq == outcomes[3].seq


def test_rejections_are_results_not_failures(world, sequencer):
    [outcome] = sequencer.submit(retirement(world, 0, amount_g=10**12)).result(10)
    assert isinstance(outcome, Rejected) and outcome.code == "NOT_HELD"


def test_a_failed_commit_fails_its_group_and_the_next_one_succeeds(world, watched, sequencer):
    size = world.registry.size
    watched.fail_next = True
    with pytest.raises(StorageError):
        sequencer.submit(retirement(world, 0)).result(10)
    assert world.registry.size == size and sequencer.committed_size == size
    [outcome] = sequencer.submit(retirement(world, 0)).result(10)
    assert outcome.seq == size


def test_checkpoints_follow_the_log_on_an_interval_and_on_demand(world, sequencer):
    [outcome] = sequencer.submit(retirement(world, 0)).result(10)
    deadline = time.monotonic() + 1.0
    while checkpoint_size(world.registry) <= outcome.seq:
        assert time.monotonic() < deadline, "no checkpoint covered the event within a second"
        time.sleep(0.01)
    notes = len(list(world.registry.checkpoint_notes()))
    time.sleep(0.2)
    assert len(list(world.registry.checkpoint_notes())) == notes  # the tree did not grow: nothing signed
    on_demand = Sequencer(world.registry, checkpoint_interval_s=3600).start()
    try:
        [outcome] = on_demand.submit(retirement(world, 1)).result(10)
        assert parse_checkpoint(on_demand.checkpoint().result(10)).size == outcome.seq + 1
    finally:
        on_demand.stop()


def test_the_status_counts_checkpoints_signed_not_checkpoints_asked_for(world):
    """Trial 11: every export asks for a checkpoint, and /v1/status counted one each time, though
    the latest checkpoint covered the log and none was signed."""
    sequencer = Sequencer(world.registry, checkpoint_interval_s=3600).start()
    try:
        sequencer.submit(retirement(world, 0)).result(10)
        first = sequencer.checkpoint().result(10)
        notes, signed = len(list(world.registry.checkpoint_notes())), sequencer.stats.checkpoints
        assert signed >= 1
        assert [sequencer.checkpoint().result(10) for _ in range(3)] == [first] * 3
        assert len(list(world.registry.checkpoint_notes())) == notes  # none signed
        assert sequencer.status().result(10)["sequencer"]["checkpoints"] == signed
    finally:
        sequencer.stop()


def test_reads_see_the_committed_state(world, sequencer):
    futures = [sequencer.submit(retirement(world, n, amount_g=2)) for n in range(5)]
    totals = sequencer.read(lambda state: (state.size, state.totals_g())).result(10)
    assert all(f.done() for f in futures)
    assert totals[0] == world.registry.size and totals[1]["retired_g"] == world.registry.state.totals_g()["retired_g"]


def test_a_full_queue_says_come_back_later(world, watched):
    sequencer = Sequencer(watched, max_queued_events=10, checkpoint_interval_s=3600).start()
    try:
        watched.release.clear()
        sequencer.submit(retirement(world, 0))
        assert watched.entered.wait(5)
        queued = [sequencer.submit(retirement(world, n)) for n in range(1, 11)]
        with pytest.raises(Overloaded):
            sequencer.submit(retirement(world, 11))
        watched.release.set()
        assert all(isinstance(f.result(10)[0], Appended) for f in queued)
    finally:
        watched.release.set()
        sequencer.stop()


def test_stop_commits_what_is_queued(world, watched):
    sequencer = Sequencer(watched, checkpoint_interval_s=3600).start()
    watched.release.clear()
    futures = [sequencer.submit(retirement(world, n)) for n in range(20)]
    threading.Timer(0.1, watched.release.set).start()
    sequencer.stop()
    assert all(isinstance(f.result(0)[0], Appended) for f in futures)
    assert checkpoint_size(world.registry) == world.registry.size
    with pytest.raises(Overloaded):
        sequencer.submit(retirement(world, 99))


class Miscounting(Watched):
    """A registry that loses the last outcome of each group (a broken append_many)."""

    def append_many(self, items):
        return super().append_many(items)[:-1]


def test_a_group_whose_outcomes_miscount_acknowledges_none_of_it(world):
    sequencer = Sequencer(Miscounting(world.registry), checkpoint_interval_s=3600)  # driven by step
    futures = [sequencer.submit(retirement(world, n)) for n in range(2)]
    assert sequencer.step()
    for future in futures:
        with pytest.raises(AssertionError, match="2 events"):
            future.result(0)


class Forgetful(Sequencer):
    """A sequencer that signs checkpoints but forgets to answer who asked for them."""

    def _sign_checkpoint(self, waiters):
        super()._sign_checkpoint([])


def test_a_turn_that_leaves_a_job_unsettled_is_never_answered(world):
    """The writer process answers a group once its turn is over (api/writer.py): a turn that left a
    job unsettled stops it before any answer of that group leaves, the settled write's included."""
    sequencer = Forgetful(world.registry, checkpoint_interval_s=3600)
    front, back = multiprocessing.Pipe()
    broke: list[BaseException] = []

    def writer() -> None:
        try:
            _serve(back, sequencer, _Outbox(back, sequencer))
        except AssertionError as exc:
            broke.append(exc)

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    front.send([WriteJob(0, [(retirement(world, 0), None)]), CheckpointJob(1)])
    thread.join(10)
    answered = front.poll(0.2)
    front.close()  # a writer still serving sees the front gone
    thread.join(10)
    assert not answered
    assert len(broke) == 1 and "unsettled" in str(broke[0])
