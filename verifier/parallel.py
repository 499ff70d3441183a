"""Work spread over the machine's cores while replay stays in order.

The main process reads, parses and replays; worker processes do the two CPU-bound jobs that need
no replayed state: Ed25519 checks of events ("verify") and the checks and hashes of activity
records ("records"). Jobs go to the workers in turn and each worker answers in order, so results
come back in submission order. At most two jobs per worker are in flight: the main process is
never more than that far ahead, and a worker is never blocked writing a result nobody reads.
"""

import multiprocessing
import os
import resource
import traceback

from verifier.activities import check_record_chunk
from verifier.signatures import verify_many

JOBS = {"verify": verify_many, "records": check_record_chunk}
IN_FLIGHT_PER_WORKER = 2


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

    def __init__(self):
        self._results = {}
        self._next_ticket = 0

    def submit(self, kind, payload):
        ticket = self._next_ticket
        self._next_ticket += 1
        self._results[ticket] = JOBS[kind](payload)
        return ticket

    def result(self, ticket):
        return self._results.pop(ticket)

    def close(self):
        return []

    def terminate(self):
        self._results.clear()


def _worker_main(connection):
    try:
        while True:
            message = connection.recv()
            if message is None:
                connection.send(("stats", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))
                return
            kind, payload = message
            try:
                connection.send(("ok", JOBS[kind](payload)))
            except Exception:
                connection.send(("error", traceback.format_exc()))
    except (KeyboardInterrupt, EOFError, BrokenPipeError):
        return


class ProcessRunner:
    def __init__(self, workers):
        context = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else None)
        self.workers = workers
        self._connections = []
        self._processes = []
        for _ in range(workers):
            parent_end, child_end = context.Pipe(duplex=True)
            process = context.Process(target=_worker_main, args=(child_end,), daemon=True)
            process.start()
            child_end.close()
            self._connections.append(parent_end)
            self._processes.append(process)
        self._next_ticket = 0
        self._next_result = 0
        self._results = {}

    def _collect_next(self):
        ticket = self._next_result
        status, value = self._connections[ticket % self.workers].recv()
        if status != "ok":
            raise WorkerError(f"a worker process failed:\n{value}")
        self._next_result += 1
        self._results[ticket] = value

    def submit(self, kind, payload):
        while self._next_ticket - self._next_result >= IN_FLIGHT_PER_WORKER * self.workers:
            self._collect_next()
        ticket = self._next_ticket
        self._next_ticket += 1
        self._connections[ticket % self.workers].send((kind, payload))
        return ticket

    def result(self, ticket):
        while ticket not in self._results:
            self._collect_next()
        return self._results.pop(ticket)

    def close(self):
        """Stop the workers; returns their peak resident memory in KiB (empty if they were killed)."""
        peaks = []
        try:
            while self._next_result < self._next_ticket:
                self._collect_next()
            for connection in self._connections:
                connection.send(None)
            for connection in self._connections:
                status, value = connection.recv()
                if status == "stats":
                    peaks.append(value)
        except (OSError, EOFError, WorkerError):
            peaks = []
        for process in self._processes:
            process.join(timeout=5)
            if process.is_alive():
                process.terminate()
                process.join()
        for connection in self._connections:
            connection.close()
        return peaks

    def terminate(self):
        """Stop at once (the run failed): no results are awaited."""
        for process in self._processes:
            if process.is_alive():
                process.terminate()
        for process in self._processes:
            process.join()
        for connection in self._connections:
            connection.close()
