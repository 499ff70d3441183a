"""A crashed process against `puhui serve` (a real process on 127.0.0.1, every wait bounded): the
writer killed under load is started again by the front and nothing acknowledged is lost; a client
that dies in the middle of its body leaves the server as it was."""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
import time
from pathlib import Path

import httpx
import pytest

from service.client import RegistryClient
from ledger.registry import sign_event
from served_registry import Cast, Served, alive, init_registry_dir, spawned_children

CLIENTS = 4


def writer_pids(front_pid: int) -> list[int]:
    """The front's writer processes (no upload here is large enough to start a check process)."""
    return spawned_children(front_pid)
TIME_LIMIT_S = 90.0


class Writer(threading.Thread):
    """A client opening accounts one by one; on 503 it sends the very same event again. Records
    every acknowledgement (201 or 200 with its seq)."""

    def __init__(self, index: int, served: Served, cast: Cast, origin: str, stop: threading.Event):
        super().__init__(name=f"writer-client-{index}")
        self.index, self.served, self.cast, self.origin, self.stop_event = index, served, cast, origin, stop
        self.acknowledged: dict[int, dict] = {}
        self.unavailable = 0
        self.unexpected: list[str] = []

    def run(self) -> None:
        deadline = time.monotonic() + TIME_LIMIT_S
        with httpx.Client(base_url=self.served.url, timeout=30.0) as http:
            n = 0
            while not self.stop_event.is_set() and time.monotonic() < deadline:
                tag = f"c{self.index}-{n}"
                event = sign_event(self.cast.admin.signer, self.origin, "account.open", {
                    "account_id": f"acct-{tag}", "kind": "compliance_entity", "name": f"acct-{tag}",
                    "region": "420100", "controllers": [self.cast.wuhan.key_id], "platform": None,
                    "request_id": f"req-{tag}"}, log_format=1)
                while time.monotonic() < deadline:
                    try:
                        answer = http.post("/v1/events", content=json.dumps(event))
                    except httpx.TransportError:
                        time.sleep(0.05)
                        continue
                    if answer.status_code == 503:
                        self.unavailable += 1
                        assert answer.headers.get("retry-after"), answer.headers
                        time.sleep(0.05)
                        continue
                    if answer.status_code in (200, 201):
                        self.acknowledged[answer.json()["seq"]] = event
                    else:
                        self.unexpected.append(answer.text)
                    break
                n += 1


def _writing(served: Served) -> tuple[RegistryClient, int, list[Writer], threading.Event]:
    """CLIENTS Writers at work for a second on `served`: its client, its writer's pid, the Writers
    and the event that stops them."""
    client = RegistryClient(served.url, trust=served.trust())
    cast = Cast(client)
    cast.register(cast.wuhan, ["platform"])
    [writer_pid] = writer_pids(served.process.pid)
    stop = threading.Event()
    writers = [Writer(i, served, cast, served.trust()["origin"], stop) for i in range(CLIENTS)]
    for w in writers:
        w.start()
    time.sleep(1.0)
    return client, writer_pid, writers, stop


def _assert_nothing_acknowledged_is_lost(client: RegistryClient, writers: list[Writer]) -> None:
    """Each seq acknowledged holds the very event acknowledged for it."""
    leaves = {leaf["seq"]: leaf for leaf in client.leaves()}
    for w in writers:
        for seq, event in w.acknowledged.items():
            assert leaves[seq]["body"] == event["body"] and leaves[seq]["auth"] == event["auth"], seq


def test_a_killed_writer_is_restarted_and_nothing_acknowledged_is_lost(tmp_path):
    served = Served(init_registry_dir(tmp_path / "registry")).start()
    try:
        client, writer_pid, writers, stop = _writing(served)
        acknowledged_before_kill = sum(len(w.acknowledged) for w in writers)
        os.kill(writer_pid, signal.SIGKILL)
        deadline = time.monotonic() + 60
        new_writers: list[int] = []
        while time.monotonic() < deadline:
            new_writers = [pid for pid in writer_pids(served.process.pid) if pid != writer_pid]
            if new_writers:
                break
            time.sleep(0.1)
        assert new_writers, "the front did not start a new writer"
        # Writes succeed again: every client gets new acknowledgements after the restart.
        counts = [len(w.acknowledged) for w in writers]
        time.sleep(0.5)
        while time.monotonic() < deadline and any(len(w.acknowledged) <= c + 5 for w, c in zip(writers, counts)):
            time.sleep(0.1)
        stop.set()
        for w in writers:
            w.join(TIME_LIMIT_S)
        assert acknowledged_before_kill > 0
        assert all(len(w.acknowledged) > c + 5 for w, c in zip(writers, counts)), "writes did not resume"
        assert not [text for w in writers for text in w.unexpected]
        assert served.process.poll() is None, "the front exited"
        _assert_nothing_acknowledged_is_lost(client, writers)
        log = served.log.read_text()
        assert "the writer process (pid" in log and "restarting it" in log and "writer process restarted" in log
        for path in ("/v1/status", "/v1/totals", "/v1/export"):
            assert httpx.get(served.url + path, timeout=60).status_code == 200, path
    finally:
        served.stop()


def test_a_stopped_writer_is_killed_and_restarted_and_nothing_acknowledged_is_lost(tmp_path):
    """SIGSTOP the writer under load: the front notices it does not answer (3 s here), says so,
    kills it and starts another; the writes waiting meanwhile get 503 saying to send them again,
    reads of the committed log go on, and writes succeed again."""
    served = Served(init_registry_dir(tmp_path / "registry")).start(
        env={"PUHUI_KEY_PASSPHRASE": "puhui api tests", "PUHUI_WRITER_TIMEOUT_S": "3"})
    try:
        client, writer_pid, writers, stop = _writing(served)
        os.kill(writer_pid, signal.SIGSTOP)
        stopped_at = time.monotonic()
        try:
            time.sleep(0.5)
            counts = [len(w.acknowledged) for w in writers]
            # While the writer is stopped the front still answers reads of the committed log.
            assert httpx.get(served.url + "/v1/checkpoint", timeout=5).status_code == 200
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and any(len(w.acknowledged) <= c + 5 for w, c in zip(writers, counts)):
                time.sleep(0.1)
        finally:
            if alive(writer_pid):
                os.kill(writer_pid, signal.SIGCONT)
        stop.set()
        for w in writers:
            w.join(TIME_LIMIT_S)
        assert all(len(w.acknowledged) > c + 5 for w, c in zip(writers, counts)), "writes did not resume"
        assert time.monotonic() - stopped_at < 60
        assert not alive(writer_pid), "the stopped writer was not killed"
        assert sum(w.unavailable for w in writers) > 0, "no write waited for the stopped writer"
        assert not [text for w in writers for text in w.unexpected]
        _assert_nothing_acknowledged_is_lost(client, writers)
        log = served.log.read_text()
        assert f"the writer process (pid {writer_pid}) has not answered for" in log and "killing it" in log
        assert "writer process restarted" in log
    finally:
        served.stop()


@pytest.mark.parametrize("signal_number", [signal.SIGKILL, signal.SIGSTOP], ids=["killed", "stopped"])
def test_a_writer_lost_while_idle_is_replaced_before_the_next_write(tmp_path, database_url, signal_number):
    """Killed or stopped while no one writes: the front finds it out by itself (the pipe's end; an
    idle writer's status unanswered for the writer timeout, 3 s here), says so and starts another,
    so the next write succeeds at its first try."""
    served = Served(init_registry_dir(tmp_path / "registry", database_url), database_url).start(
        env={"PUHUI_KEY_PASSPHRASE": "puhui api tests", "PUHUI_WRITER_TIMEOUT_S": "3"})
    [writer_pid] = writer_pids(served.process.pid)
    try:
        os.kill(writer_pid, signal_number)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and "writer process restarted" not in served.log.read_text():
            time.sleep(0.1)
        log = served.log.read_text()
        assert "writer process restarted" in log, log[-2000:]
        if signal_number == signal.SIGSTOP:
            assert f"the writer process (pid {writer_pid}) has not answered for" in log
        assert not alive(writer_pid)
        status = httpx.get(served.url + "/v1/status", timeout=10)
        assert status.status_code == 200 and status.json()["committed_size"] == 2, status.text
        client = RegistryClient(served.url, trust=served.trust())
        Cast(client).register(Cast(client).wuhan, ["platform"])  # one POST, no retry: 201 or it raises
        assert client.checkpoint().size == 3
    finally:
        if alive(writer_pid):
            os.kill(writer_pid, signal.SIGCONT)
        served.stop()


def test_a_client_that_dies_mid_body_leaves_the_server_as_it_was(tmp_path):
    served = Served(init_registry_dir(tmp_path / "registry")).start()
    try:
        client = RegistryClient(served.url, trust=served.trust())
        cast = Cast(client)
        for path in ("/v1/events", "/v1/events:batch", "/v1/activity-batches", "/v1/offset-eligibility"):
            for _ in range(20):
                with socket.create_connection(("127.0.0.1", served.port), timeout=5) as s:
                    s.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n"
                              f"Content-Type: application/json\r\n\r\n".encode() + b'{"type": "acc')
                # closed half-way: the process that sent it crashed
        cast.register(cast.wuhan, ["platform"])
        assert client.checkpoint().size == 3
        assert httpx.get(served.url + "/v1/status", timeout=10).json()["committed_size"] == 3
        assert "Traceback" not in served.log.read_text()
    finally:
        served.stop()


def test_a_writer_that_cannot_be_restarted_stops_the_front_with_a_nonzero_exit(tmp_path):
    served = Served(init_registry_dir(tmp_path / "registry")).start()
    try:
        [writer_pid] = writer_pids(served.process.pid)
        database = served.directory / "registry.sqlite3"
        # The database is gone: every restart fails, and the front must not linger as a zombie.
        os.kill(writer_pid, signal.SIGKILL)
        for suffix in ("", "-wal", "-shm"):
            if Path(f"{database}{suffix}").exists():
                Path(f"{database}{suffix}").rename(tmp_path / f"moved{suffix}")
        answer = httpx.post(served.url + "/v1/events", content=b"{}", timeout=10)
        assert answer.status_code in (422, 503)
        exit_code = served.process.wait(60)
        assert exit_code == 3
        log = served.log.read_text()
        assert "could not be restarted" in log
    finally:
        served.process = None
