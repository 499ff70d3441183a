"""Jobs on the workers of a Dask distributed cluster (`puhui-verify bundle --dask ADDRESS`).

The same interface as parallel.py's runners, so bundle.py does not know where a job runs: the
main process reads the log, replays it in order and merges results in order; the jobs that need
no replayed state (signature checks, activity files by byte ranges, searches of the digests'
partitions) are Dask tasks. Activity files and spilled partitions travel as paths: workers read
them from storage they share with the main process (the bundle and --spill-dir at the same
paths), and the main process never reads a record (file_ranges.py); a partition still in memory
travels as its bytes (a 64th of a kind's digests). Workers run their own
interpreters, so the digests are BLAKE2b under a key sent with each job (bundle.py), unless every
worker and this process were started with the same PYTHONHASHSEED: then the string hash, twenty
times cheaper (digests.digester_for_workers, string_hash_checks).

A worker is a Dask worker thread: start workers with one thread each (`--nthreads 1`) and as many
processes as cores (`--nworkers`), since every job is Python holding the GIL.
"""

import gc
import pickle
import resource
from itertools import count

from verifier.digests import SecretNotShared, string_hash_check
from verifier.file_ranges import RANGE_JOBS
from verifier.parallel import IN_FLIGHT_PER_WORKER, JOBS, WorkerError
from verifier.reader import InputError

CONNECT_TIMEOUT_S = 30


def run_job(kind, pickled_payload):
    """What a Dask worker runs for one job (a range of an activity file is read here). The payload
    comes pickled, so that only the worker unpickles it: the scheduler unpickles a task's arguments,
    and a StringHashDigester refuses to be unpickled where the string-hash secret differs, as the
    scheduler's may. A job makes no reference cycles, but a Dask worker holds many objects: with
    the cyclic collector on, the job's allocations would set off collections that walk them all."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        return (RANGE_JOBS.get(kind) or JOBS[kind])(pickle.loads(pickled_payload))
    finally:
        if collecting:
            gc.enable()


def _peak_rss_kib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


class DaskRunner:
    jobs_done_here = 0
    reads_files = True  # the workers read activity files by byte ranges (file_ranges.py)

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

    def string_hash_checks(self):
        """Each worker's digests.string_hash_check(), asked of every worker the scheduler has now."""
        return list(self.client.run(string_hash_check).values())

    def submit(self, kind, payload):
        ticket = next(self._tickets)
        self._futures[ticket] = self.client.submit(run_job, kind, pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL), pure=False)
        return ticket

    def ready(self, ticket):
        return self._futures[ticket].done()

    def has_idle_worker(self):
        return sum(1 for future in self._futures.values() if not future.done()) < self.workers

    def result(self, ticket):
        future = self._futures.pop(ticket)
        try:
            return future.result()
        except SecretNotShared:
            raise InputError("a Dask worker that joined during the run does not share its string-hash secret: start every "
                             "worker with the PYTHONHASHSEED puhui-verify was started with (docs/scale.md)") from None
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
