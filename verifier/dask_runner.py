"""Jobs on the workers of a Dask distributed cluster (`puhui-verify bundle --dask ADDRESS`).

The same interface as parallel.py's runners, so bundle.py and the activity checkers do not know
where a job runs: the main process still reads the log and the activity files (to cut them into
chunks at line ends), replays in order and merges results in order; the jobs that need no
replayed state (signature checks, record chunks, searches of spilled partitions) are Dask tasks.
A chunk of records and a spilled partition travel as paths: workers read them from storage they
share with the main process (the bundle and --spill-dir at the same paths). A file changed during
the run can only make its batch fail (the worker's count or root then differs from its event).
Workers run their own interpreters, so the digests are BLAKE2b under a key sent with each job
(bundle.py), never the string hash of this process.

A worker is a Dask worker thread: start workers with one thread each (`--nthreads 1`) and as many
processes as cores (`--nworkers`), since every job is Python holding the GIL.
"""

import resource
from itertools import count

from verifier.activities import CHUNK_RECORDS, FileSlice
from verifier.parallel import IN_FLIGHT_PER_WORKER, JOBS, WorkerError
from verifier.reader import InputError

CONNECT_TIMEOUT_S = 30


def run_job(kind, payload):
    """What a Dask worker runs for one job: a chunk of records is read here, from shared storage."""
    if kind in ("records", "records_v2") and isinstance(payload[4], FileSlice):
        blob = payload[4].read()
        payload = payload._replace(blob=blob) if kind == "records_v2" else (*payload[:4], blob)
    return JOBS[kind](payload)


def _peak_rss_kib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


class DaskRunner:
    jobs_done_here = 0
    # A task costs the scheduler milliseconds: eight times the local chunk of records per task.
    records_per_job = CHUNK_RECORDS << 3
    reads_files = True

    def __init__(self, scheduler_address, connect_timeout_s=CONNECT_TIMEOUT_S):
        from distributed import Client

        try:
            self.client = Client(scheduler_address, timeout=connect_timeout_s, set_as_default=False)
        except OSError as error:
            raise InputError(f"cannot reach the Dask scheduler at {scheduler_address}: {error}") from None
        threads = sum(worker["nthreads"] for worker in self.client.scheduler_info()["workers"].values())
        if threads == 0:
            self.client.close()
            raise InputError(f"the Dask scheduler at {scheduler_address} has no workers")
        self.workers = threads
        self.lookahead = IN_FLIGHT_PER_WORKER * (threads + 1)
        self._futures = {}
        self._tickets = count()

    def submit(self, kind, payload):
        ticket = next(self._tickets)
        self._futures[ticket] = self.client.submit(run_job, kind, payload, pure=False)
        return ticket

    def ready(self, ticket):
        return self._futures[ticket].done()

    def has_idle_worker(self):
        return sum(1 for future in self._futures.values() if not future.done()) < self.workers

    def result(self, ticket):
        future = self._futures.pop(ticket)
        try:
            return future.result()
        except Exception as error:
            raise WorkerError(f"a Dask worker failed: {type(error).__name__}: {error}") from error

    def close(self):
        """Peak resident memory of each worker process in KiB (as ProcessRunner.close)."""
        for ticket in list(self._futures):
            self.result(ticket)
        return sorted(self.client.run(_peak_rss_kib).values())

    def terminate(self):
        for future in self._futures.values():
            future.cancel()
        self._futures.clear()

    def disconnect(self):
        self.client.close()
