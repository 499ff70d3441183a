"""An activity upload's records are judged off the writer by every rule that needs no state
(api/admission.py, issue 11): a file that does not match its batch reaches the writer as its code
alone, a sound one as records already parsed, and honest writes go on while a large upload is
judged (in a process of its own). On SQLite and PostgreSQL, in both log formats."""

from __future__ import annotations

import json
import os
import signal
import threading
from typing import Any, Iterator, Sequence

import pytest
from starlette.testclient import TestClient

from api.app import create_app
from ledger.canonical import jcs
from ledger.events.activities import CheckedFile
from ledger.registry import Registry
from ledger.sequencer import Item, Sequencer
from ledger.state import ActivityRecord
from served_registry import spawned_children
from test_api_events import batch_upload, retirement
from world import World

HOLD_S = 30.0  # the longest wait for a request held on purpose
LARGE = 2_000  # records: a body far above the size the front judges on its event loop


class RecordingSequencer(Sequencer):
    """The in-process writer, noting every item it is handed."""

    def __init__(self, registry: Registry):
        super().__init__(registry, checkpoint_interval_s=0.05)
        self.received: list[Item] = []

    def submit_many(self, items: Sequence[Item]) -> Any:
        self.received.extend(items)
        return super().submit_many(items)


@pytest.fixture(params=[1, 2], ids=["format1", "format2"])
def world(request: pytest.FixtureRequest, database_url: str) -> Iterator[World]:
    if request.param == 1:
        w = World(database_url).setup().history()
    else:
        w = World(database_url, log_format=2).setup_v2().history_v2()
    yield w
    w.registry.close()


@pytest.fixture
def served(world: World) -> Iterator[tuple[TestClient, RecordingSequencer]]:
    sequencer = RecordingSequencer(world.registry)
    with TestClient(create_app(world.registry, sequencer=sequencer)) as http:
        yield http, sequencer


def check_processes(before: set[int]) -> list[int]:
    """This process's spawned children started since `before`: under TestClient, the check processes."""
    return [pid for pid in spawned_children(os.getpid()) if pid not in before]


def refusal(answer: Any) -> tuple[int, str]:
    return answer.status_code, answer.json().get("code")


def test_a_file_that_does_not_match_its_batch_never_reaches_the_writer(served, world):
    http, sequencer = served
    logged = world.records(3, day="2026-02-03", act_prefix="logged")
    assert http.post("/v1/activity-batches", content=batch_upload(world, "b-logged", logged)).status_code == 201
    [(_, sound)] = sequencer.received
    assert isinstance(sound, CheckedFile) and sound.refusal is None
    assert all(isinstance(r, ActivityRecord) for r in sound.records) and len(sound.records) == 3

    records = world.records(LARGE, day="2026-02-03")
    cases = {
        "b-root": (batch_upload(world, "b-root", records, root="0" * 64), (422, "BATCH")),
        "b-line": (batch_upload(world, "b-line", records).replace(b"\n", b"\n{1.5}\n", 1), (422, "BATCH")),
        # An id the log holds, in a file that also breaks BATCH: DUPLICATE_ID comes first (spec 7.3).
        "b-logged-id": (batch_upload(world, "b-logged-id", [logged[0], *records[1:]], root="0" * 64), (409, "DUPLICATE_ID")),
        "b-twice": (batch_upload(world, "b-twice", [records[0], *records], root="0" * 64), (409, "DUPLICATE_ID")),
    }
    for batch_id, (data, expected) in cases.items():
        sequencer.received.clear()
        answer = http.post("/v1/activity-batches", content=data)
        assert refusal(answer) == expected, (batch_id, answer.text[:300])
        [(event, checked)] = sequencer.received
        assert event["body"]["batch_id"] == batch_id
        assert isinstance(checked, CheckedFile) and checked.records == [] and checked.quantified == []
        assert checked.refusal is not None and checked.refusal.code == expected[1], batch_id
    assert http.get("/v1/batches/b-root").status_code == 404


def test_the_events_own_rules_still_come_before_its_files(served, world):
    """The writer judges the event first: a platform key that controls no such platform is
    UNAUTHORIZED even though its file, decided in the front, is BATCH."""
    http, sequencer = served
    data = batch_upload(world, "b-grid", world.records(5, day="2026-02-03"), root="0" * 64)
    event_line, rest = data.split(b"\n", 1)
    event = world.client.signed(world.grid, "activity.batch", json.loads(event_line)["body"])
    answer = http.post("/v1/activity-batches", content=jcs(event) + b"\n" + rest)
    assert refusal(answer) == (403, "UNAUTHORIZED"), answer.text[:300]


def test_honest_writes_go_on_while_a_bad_upload_is_judged(served, world, monkeypatch):
    """A large file is judged in a check process: with that process stopped, a bad upload waits
    there while an honest write commits, so it cannot hold the writer."""
    http, sequencer = served
    before = set(spawned_children(os.getpid()))
    sound = batch_upload(world, "b-sound", world.records(LARGE, day="2026-02-04", act_prefix="sound"))
    assert http.post("/v1/activity-batches", content=sound).status_code == 201  # starts the check process
    checkers = check_processes(before)
    assert checkers, "no process of its own judged the large upload"
    record_checks = http.app.state.record_checks
    check, entered = record_checks.check, threading.Event()

    async def noted_check(*args: Any) -> CheckedFile:
        entered.set()
        return await check(*args)
    monkeypatch.setattr(record_checks, "check", noted_check)
    data = batch_upload(world, "b-held", world.records(LARGE, day="2026-02-03"), root="0" * 64)
    answers: list[Any] = []
    bad = threading.Thread(target=lambda: answers.append(http.post("/v1/activity-batches", content=data)))
    for pid in checkers:
        os.kill(pid, signal.SIGSTOP)
    try:
        bad.start()
        assert entered.wait(HOLD_S), "the bad upload was never judged"
        sequencer.received.clear()
        chosen = {"issuances": None} if world.registry.log_format == 2 else {}  # format 2: the lowest serials
        honest = http.post("/v1/events", content=jcs(retirement(world, "ret-honest", amount_g=1, **chosen)))
        assert honest.status_code == 201, honest.text
        assert not answers, "the bad upload was answered while its check process was stopped"
    finally:
        for pid in checkers:
            os.kill(pid, signal.SIGCONT)
        bad.join(HOLD_S)
    [answer] = answers
    assert refusal(answer) == (422, "BATCH") and "root" in answer.json()["message"]
    [_, (event, checked)] = sequencer.received
    assert event["body"]["batch_id"] == "b-held" and checked.records == []


def test_a_check_process_that_died_is_replaced(served, world):
    http, _ = served
    before = set(spawned_children(os.getpid()))
    first = batch_upload(world, "b-first", world.records(LARGE, day="2026-02-04", act_prefix="first"))
    assert http.post("/v1/activity-batches", content=first).status_code == 201
    [checker] = check_processes(before)
    os.kill(checker, signal.SIGKILL)
    second = batch_upload(world, "b-second", world.records(LARGE, day="2026-02-05", act_prefix="second"))
    answer = http.post("/v1/activity-batches", content=second)
    assert answer.status_code == 201, answer.text
