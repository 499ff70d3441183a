"""The writer process of `puhui serve` (api/writer.py): the pipe's protocol, and no orphan writer."""

from __future__ import annotations

import functools
import signal
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from api.app import _totals
from api.committed_state import eligibility_as_of
from api.writer import RemoteSequencer
from ledger.errors import Rejected
from ledger.note import parse_checkpoint
from ledger.sequencer import Overloaded
from served_registry import PASSPHRASE, Cast, Served, alive, children, init_registry_dir
from service.client import RegistryClient


def test_remote_sequencer_writes_reads_and_checkpoints(tmp_path):
    directory = init_registry_dir(tmp_path / "registry")
    sequencer = RemoteSequencer.spawn(directory, database_url=None, passphrase=PASSPHRASE.encode(),
                                      checkpoint_interval_s=0.05, max_queued_events=3)
    try:
        size = sequencer.committed_size
        # A refusal crosses the pipe as the ledger's own Rejected, code and message intact.
        [outcome] = sequencer.submit({"type": "retirement", "body": {}, "auth": {}}).result(30)
        assert isinstance(outcome, Rejected) and outcome.code == "SCHEMA"
        assert sequencer.read(_totals).result(30)["size"] == size
        note = sequencer.checkpoint().result(30)
        assert parse_checkpoint(note).size == size
        status = sequencer.status().result(30)
        assert status["committed_size"] == size and status["sequencer"]["groups"] == 1
        with pytest.raises(Exception):  # the eligibility of an unknown entity: refused, not lost
            sequencer.read(functools.partial(eligibility_as_of, {"entity": "nobody"})).result(30)
        # Back-pressure: beyond max_queued_events in flight, Overloaded (503) at once; nothing sent.
        with pytest.raises(Overloaded):
            sequencer.submit_many([({"type": "x"}, None)] * 4)
        assert sequencer.queued_events == 0
        assert len(sequencer.submit_many([({"type": "x"}, None)] * 3).result(30)) == 3
    finally:
        sequencer.stop()
    assert not sequencer.running


def test_large_jobs_and_answers_cross_the_pipe_both_ways(tmp_path):
    """Each 1,000-event job and its answer are bigger than a pipe's buffer: neither end may wait
    on the other while both write."""
    directory = init_registry_dir(tmp_path / "registry")
    sequencer = RemoteSequencer.spawn(directory, database_url=None, passphrase=PASSPHRASE.encode())
    try:
        junk = [({"type": "retirement", "body": {"note": "x" * 500}, "auth": {}}, None)] * 1000
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda _: sequencer.submit_many(junk).result(60), range(16)))
        assert all(len(a) == 1000 and all(isinstance(o, Rejected) for o in a) for a in answers)
    finally:
        sequencer.stop()


def test_killing_the_server_kills_its_writer(tmp_path):
    served = Served(init_registry_dir(tmp_path / "registry")).start()
    client = RegistryClient(served.url, trust=served.trust())
    cast = Cast(client)
    cast.register(cast.wuhan, ["platform"])
    writers = children(served.process.pid)
    assert writers, "puhui serve runs its writer in a child process"
    served.process.send_signal(signal.SIGKILL)
    served.process.wait(10)
    deadline = time.monotonic() + 10
    while any(alive(pid) for pid in writers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(alive(pid) for pid in writers), "an orphan writer outlived its server"
    # The database is free again: a new server writes at once, and the acknowledged event is there.
    served.process = None
    served.start()
    try:
        client = RegistryClient(served.url, trust=served.trust())
        Cast(client).open("wuhan-platform-2", "platform", [cast.wuhan])
        assert client.account("wuhan-platform-2")["kind"] == "platform"
    finally:
        served.stop()
