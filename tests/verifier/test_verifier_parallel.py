"""The runner that spreads signature and record checks over processes, the main one included."""

import os
import signal
import time

import nacl.signing
import pytest

from verifier.digests import StringHashDigester
from verifier.parallel import IN_FLIGHT_PER_WORKER, InlineRunner, ProcessRunner, WorkerError
from verifier.signatures import verify_many


def _signed_jobs(count, per_job=50):
    """Jobs of (public keys, signed messages); every 7th signature is broken."""
    key = nacl.signing.SigningKey(bytes(range(32)))
    public_key = bytes(key.verify_key)
    jobs = []
    for j in range(count):
        signed = []
        for i in range(per_job):
            message = f"job {j} item {i}".encode()
            good = bytes(key.sign(message))
            signed.append(good if (j * per_job + i) % 7 else bytes([good[0] ^ 1]) + good[1:])
        jobs.append(([public_key] * per_job, signed))
    return jobs


def test_the_main_process_takes_the_jobs_its_workers_have_no_room_for_and_results_keep_their_order():
    jobs = _signed_jobs(3 * IN_FLIGHT_PER_WORKER + 2)
    runner = ProcessRunner(1)
    worker = runner._processes[0]
    try:
        os.kill(worker.pid, signal.SIGSTOP)  # a worker that cannot answer: its room stays full
        try:
            tickets = [runner.submit("verify", job) for job in jobs]
        finally:
            os.kill(worker.pid, signal.SIGCONT)
        assert runner.jobs_done_here == len(jobs) - IN_FLIGHT_PER_WORKER
        assert [runner.result(ticket) for ticket in tickets] == [verify_many(job) for job in jobs]
    finally:
        runner.close()


def test_results_collected_as_they_come_match_an_inline_run():
    jobs = _signed_jobs(20)
    runner = ProcessRunner(2)
    inline = InlineRunner()
    expected = [inline.result(inline.submit("verify", job)) for job in jobs]
    try:
        answers = []
        pending = []
        for job in jobs:
            pending.append(runner.submit("verify", job))
            while pending and runner.ready(pending[0]):
                answers.append(runner.result(pending.pop(0)))
        answers.extend(runner.result(ticket) for ticket in pending)
    finally:
        runner.close()
    assert answers == expected
    assert all(b"\x00" in answer for answer in answers)  # broken signatures are reported, not skipped


def test_a_worker_that_has_answered_gets_the_next_job_even_before_its_answers_are_asked_for():
    jobs = _signed_jobs(IN_FLIGHT_PER_WORKER + 1)
    runner = ProcessRunner(1)
    try:
        tickets = [runner.submit("verify", job) for job in jobs[:IN_FLIGHT_PER_WORKER]]
        deadline = time.monotonic() + 60
        while not runner._results_from[0].poll(0.05):  # an answer is waiting, unread
            assert time.monotonic() < deadline, "the worker never answered"
        tickets.append(runner.submit("verify", jobs[-1]))
        assert runner.jobs_done_here == 0  # the answer was read, so the worker had room
        assert [runner.result(ticket) for ticket in tickets] == [verify_many(job) for job in jobs]
    finally:
        runner.close()


def test_a_job_a_worker_refuses_is_reported_with_the_reason():
    digester = StringHashDigester()
    digester._check += 1  # as if the worker had drawn another string-hash secret
    runner = ProcessRunner(1)
    try:
        ticket = runner.submit("records", ("2026-01-01", "2026-01-31", digester, 1, b"{}"))
        with pytest.raises(WorkerError, match="does not share the main process's string-hash secret"):
            runner.result(ticket)
    finally:
        runner.terminate()


def test_a_worker_is_idle_only_once_it_has_answered_every_job_it_was_given():
    jobs = _signed_jobs(2)
    runner = ProcessRunner(1)
    worker = runner._processes[0]
    try:
        assert runner.has_idle_worker()
        os.kill(worker.pid, signal.SIGSTOP)
        try:
            tickets = [runner.submit("verify", job) for job in jobs]
            assert not runner.has_idle_worker()
        finally:
            os.kill(worker.pid, signal.SIGCONT)
        deadline = time.monotonic() + 60
        while not runner.has_idle_worker():
            assert time.monotonic() < deadline, "the worker never answered"
            time.sleep(0.01)
        assert all(runner.ready(ticket) for ticket in tickets)
        assert [runner.result(ticket) for ticket in tickets] == [verify_many(job) for job in jobs]
    finally:
        runner.close()
    assert not InlineRunner().has_idle_worker()
