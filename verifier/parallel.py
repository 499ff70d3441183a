"""Work spread over the machine's cores while replay stays in order.

The main process reads, parses and replays; worker processes do the two CPU-bound jobs that need
no replayed state: Ed25519 checks of events ("verify"), the checks and hashes of activity
records ("records", "records_v2" for a format-2 log; a chunk's digests come back split by
partition) and, after the log, the search of each partition of digests for repeats ("partition",
uniqueness.py), a partition too large for the memory limit split into parts first ("partition_parts"). A job goes to the worker with the fewest jobs in flight; each worker answers
in order. At most three jobs per worker are in flight (IN_FLIGHT_PER_WORKER), so a worker always
has its next job waiting and is never blocked writing a result nobody reads (results are a few
tens of KB). When every worker has its three, the main process does the job itself instead of waiting:
it is one more worker, and `--jobs N` means N - 1 worker processes. (With one worker per core,
three busy processes would share two cores, and the main one would wait on the others anyway.)

A job is a few hundred KB. Both pipes of a worker are widened to 1 MiB where Linux allows, so a
job crosses in one write: through the default 64 KiB, the sender needed the GIL back after every
64 KiB, and the worker waited on the main thread each time (about 8 % of the time of a run on the
log alone). A worker reads its next job only when it has finished the one before, so each worker
has a sender thread in the main process that does the blocking write (the GIL is released while
it waits) and the main thread never stalls on it.
"""

import gc
import multiprocessing
import os
import pickle
import queue
import resource
import sys
import threading
import traceback
from collections import deque

from verifier import records_v2
from verifier.activities import check_record_chunk
from verifier.signatures import verify_many
from verifier.uniqueness import repeated_in_partition, split_partition, with_split_digests

JOBS = {
    "verify": verify_many,
    # A chunk's digests come back split by partition, so that the main process only appends them.
    "records": with_split_digests(check_record_chunk),
    "records_v2": with_split_digests(records_v2.check_record_chunk),
    "partition": repeated_in_partition,
    "partition_parts": split_partition,
}
IN_FLIGHT_PER_WORKER = 3
SWITCH_INTERVAL_S = 0.0005


class WorkerError(RuntimeError):
    """A worker failed on a job (a bug, not a property of the bundle)."""


def default_jobs():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


class InlineRunner:
    """The same interface, doing each job in this process (small bundles, or --jobs 1)."""

    workers = 0
    lookahead = 1
    reads_files = False  # jobs carry their records' bytes

    def __init__(self):
        self.jobs_done_here = 0
        self._results = {}
        self._next_ticket = 0

    def submit(self, kind, payload):
        ticket = self._next_ticket
        self._next_ticket += 1
        self._results[ticket] = JOBS[kind](payload)
        self.jobs_done_here += 1
        return ticket

    def ready(self, ticket):
        return True

    def has_idle_worker(self):
        return False

    def result(self, ticket):
        return self._results.pop(ticket)

    def close(self):
        return []

    def terminate(self):
        self._results.clear()


def _worker_main(jobs, results):
    gc.disable()  # a worker keeps nothing between jobs: no cycles to collect, only time to lose
    try:
        while True:
            data = jobs.recv_bytes()
            try:
                message = pickle.loads(data)  # inside the try: a refused job (digests.py) is reported
                if message is None:
                    results.send(("stats", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))
                    return
                kind, payload = message
                results.send(("ok", JOBS[kind](payload)))
            except Exception:
                results.send(("error", traceback.format_exc()))
    except (KeyboardInterrupt, EOFError, BrokenPipeError):
        return


def _widen_pipe(connection, size_bytes=1 << 20):
    """A pipe that holds a whole job, or a few results ahead of their reader (Linux; best effort)."""
    try:
        import fcntl

        fcntl.fcntl(connection.fileno(), fcntl.F_SETPIPE_SZ, size_bytes)
    except (ImportError, AttributeError, OSError):
        pass


def _send_loop(connection, outbox):
    """Write pickled jobs to one worker, in order, until told to stop (None)."""
    while True:
        data = outbox.get()
        if data is None:
            return
        try:
            connection.send_bytes(data)
        except OSError:  # the worker is gone; the main thread finds out when it reads results
            return


class ProcessRunner:
    reads_files = False

    def __init__(self, workers):
        context = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else None)
        self.workers = workers
        # Jobs a caller may keep submitted but not yet used: the workers' fill plus a few done here.
        self.lookahead = IN_FLIGHT_PER_WORKER * (workers + 1)
        # The sender threads need the GIL for a moment per job; by default a busy main thread
        # keeps it for up to 5 ms, which a worker waiting for its next job would feel.
        self._switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(SWITCH_INTERVAL_S)
        self._results_from = []
        self._outboxes = []
        self._senders = []
        self._processes = []
        for _ in range(workers):
            jobs_reader, jobs_writer = context.Pipe(duplex=False)
            results_reader, results_writer = context.Pipe(duplex=False)
            _widen_pipe(results_writer)
            _widen_pipe(jobs_writer)
            process = context.Process(target=_worker_main, args=(jobs_reader, results_writer), daemon=True)
            process.start()
            jobs_reader.close()
            results_writer.close()
            outbox = queue.SimpleQueue()
            sender = threading.Thread(target=_send_loop, args=(jobs_writer, outbox), daemon=True)
            sender.start()
            self._results_from.append(results_reader)
            self._outboxes.append(outbox)
            self._senders.append((sender, jobs_writer))
            self._processes.append(process)
        self._next_ticket = 0
        self._pending = [deque() for _ in range(workers)]  # tickets sent to each worker, in order
        self._worker_of = {}
        self._results = {}
        self.jobs_done_here = 0

    def _collect_from(self, worker):
        status, value = self._results_from[worker].recv()
        if status != "ok":
            raise WorkerError(f"a worker process failed:\n{value}")
        ticket = self._pending[worker].popleft()
        del self._worker_of[ticket]
        self._results[ticket] = value

    def submit(self, kind, payload):
        """Send the job to the least busy worker; when every worker already has its fill, do it here.

        The main process is then one more worker rather than a process waiting on the others: on a
        machine with as many workers as cores, it would otherwise share a core with them."""
        ticket = self._next_ticket
        self._next_ticket += 1
        # A worker's room is freed by reading what it has answered: read it now, or a worker that
        # has finished would still count as full (e.g. while replay reads an activity file, the
        # answers about earlier log chunks wait unread in the pipes).
        self._collect_answered()
        worker = min(range(self.workers), key=lambda w: len(self._pending[w]))
        if len(self._pending[worker]) >= IN_FLIGHT_PER_WORKER:
            self._results[ticket] = JOBS[kind](payload)
            self.jobs_done_here += 1
            return ticket
        self._pending[worker].append(ticket)
        self._worker_of[ticket] = worker
        self._outboxes[worker].put(pickle.dumps((kind, payload), pickle.HIGHEST_PROTOCOL))
        return ticket

    def _collect_answered(self):
        for worker in range(self.workers):
            while self._pending[worker] and self._results_from[worker].poll():
                self._collect_from(worker)

    def has_idle_worker(self):
        """Whether a worker has answered every job it was given (it is waiting for the next)."""
        self._collect_answered()
        return any(not pending for pending in self._pending)

    def ready(self, ticket):
        """Whether result(ticket) would return without waiting."""
        if ticket in self._results:
            return True
        worker = self._worker_of[ticket]
        while ticket not in self._results and self._results_from[worker].poll():
            self._collect_from(worker)
        return ticket in self._results

    def result(self, ticket):
        while ticket not in self._results:
            self._collect_from(self._worker_of[ticket])
        return self._results.pop(ticket)

    def close(self):
        """Stop the workers; returns their peak resident memory in KiB (empty if they were killed)."""
        peaks = []
        try:
            for worker in range(self.workers):
                while self._pending[worker]:
                    self._collect_from(worker)
            for outbox in self._outboxes:
                outbox.put(pickle.dumps(None))
            for results in self._results_from:
                status, value = results.recv()
                if status == "stats":
                    peaks.append(value)
        except (OSError, EOFError, WorkerError):
            peaks = []
        self._stop_senders()
        for process in self._processes:
            process.join(timeout=5)
            if process.is_alive():
                process.terminate()
                process.join()
        for results in self._results_from:
            results.close()
        return peaks

    def _stop_senders(self):
        sys.setswitchinterval(self._switch_interval)
        for outbox in self._outboxes:
            outbox.put(None)
        for sender, jobs_writer in self._senders:
            sender.join(timeout=5)
            jobs_writer.close()

    def terminate(self):
        """Stop at once (the run failed): no results are awaited."""
        for process in self._processes:
            if process.is_alive():
                process.terminate()
        for process in self._processes:
            process.join()
        self._stop_senders()
        for results in self._results_from:
            results.close()
