"""`puhui-verify bundle`: one pass over a bundle (spec section 8), in log order.

The log is read once in chunks. For each chunk the main process parses the lines (leaves.py),
extends the Merkle tree and sends the signature checks to the workers; it replays a chunk
(replay.py) once its signatures are back, keeping a few chunks in flight so the workers never
wait. Activity files are read when replay reaches their batch event, their records checked by the
same workers. Memory holds the replayed state, never the log; activity ids and fingerprints are
checked for repeats after the log, exactly and within --memory-limit (uniqueness.py), as are a
format-2 log's subjects (subjects.py); the log is replayed a second time only if a real repeat
changed a batch's judgement, or a subject forgotten under the limit was met again."""

import gc
import json
import os
import resource
from collections import deque
from dataclasses import dataclass, field
from hashlib import sha256
from time import perf_counter

from verifier.activities import ActivityChecker
from verifier.checkpoints import CheckpointSummary, judge_checkpoints, read_checkpoints
from verifier.digests import StringHashDigester, digester_for_workers, new_digester
from verifier.file_ranges import RangeChecker, RangeChecker2
from verifier.leaves import LeafParser
from verifier.merkle import EMPTY_ROOT, MerkleAccumulator, subtrees_of
from verifier.parallel import InlineRunner, ProcessRunner, default_jobs
from verifier.reader import MAX_LEAF_BYTES, InputError, LineReader, read_first_line
from verifier.records_v2 import ActivityChecker2
from verifier.replay import Replay
from verifier.replay_v2 import Replay2
from verifier.signatures import verify_signed
from verifier.uniqueness import MAX_PASSES, RepeatJudge, Uniqueness, default_memory_limit

SUBJECTS_WHOLE_FROM_PASS = 3
from verifier.violations import ORPHAN_ACTIVITY_FILE, Findings

CHUNK_EVENTS = 1024
# Below this many bytes of log and activity files, worker processes cost more than they save.
MIN_PARALLEL_BYTES = 2 * 1024 * 1024


@dataclass
class BundleResult:
    log_format: object  # 1, 2, or None for an empty log
    origin: str
    tree_size: int
    root: bytes
    violations: Findings
    warnings: Findings
    checkpoints: CheckpointSummary
    totals: object
    stats: dict = field(default_factory=dict)

    @property
    def valid(self):
        return not self.violations


@dataclass
class BundlePaths:
    log: str
    checkpoints: str
    activities: object  # str, or None when the bundle has no activities directory

    @classmethod
    def locate(cls, bundle_dir):
        if not os.path.exists(bundle_dir):
            raise InputError(f"bundle {bundle_dir} does not exist")
        if not os.path.isdir(bundle_dir):
            raise InputError(f"bundle {bundle_dir} is not a directory")
        log = os.path.join(bundle_dir, "log.jsonl")
        if not os.path.isfile(log):
            raise InputError(f"bundle {bundle_dir} has no log.jsonl")
        activities = os.path.join(bundle_dir, "activities")
        return cls(log, os.path.join(bundle_dir, "checkpoints.jsonl"), activities if os.path.isdir(activities) else None)

    def activity_files(self):
        """{batch_id: size in bytes} of activities/*.jsonl."""
        if self.activities is None:
            return {}
        with os.scandir(self.activities) as entries:
            return {
                entry.name[: -len(".jsonl")]: entry.stat().st_size
                for entry in entries
                if entry.name.endswith(".jsonl") and entry.is_file()
            }


def verify_bundle(
    bundle_dir,
    trust,
    require_activities=False,
    jobs=None,
    progress=None,
    min_parallel_bytes=MIN_PARALLEL_BYTES,
    memory_limit=None,
    spill_dir=None,
    digester=None,
    dask_scheduler=None,
):
    """Verify a bundle against a trust file. progress(done_bytes, total_bytes) is called now and then.
    memory_limit bounds the id and fingerprint tables (bytes; default: half the machine's memory),
    which spill to a temporary directory under spill_dir; dask_scheduler is the address of a Dask
    distributed scheduler whose workers then check the records (and signatures)."""
    started = perf_counter()
    paths = BundlePaths.locate(bundle_dir)
    activity_files = paths.activity_files()
    total_bytes = os.path.getsize(paths.log) + sum(activity_files.values())
    memory_limit = default_memory_limit() if memory_limit is None else memory_limit
    if dask_scheduler is not None:
        from verifier.dask_runner import DaskRunner

        # Dask's workers are not forked from this process: they share its string-hash secret only
        # if they were all started with the PYTHONHASHSEED it was.
        runner = DaskRunner(dask_scheduler)
        digester = digester or digester_for_workers(runner.string_hash_checks())
    else:
        digester = digester or new_digester()
        jobs = default_jobs() if jobs is None else jobs
        # The main process takes jobs too when its workers are busy, so N jobs is N - 1 workers.
        runner = ProcessRunner(jobs - 1) if jobs > 1 and total_bytes >= min_parallel_bytes else InlineRunner()
    groups = {}
    pinned_subjects = frozenset()
    try:
        try:
            for passes in range(1, MAX_PASSES + 1):
                # Pinning changes which generations forget what, and a verdict pinning changed may
                # change which subjects are kept: from the third pass on the subjects are held whole
                # (beyond the limit), so that no log can keep them unsettled (docs/scale.md).
                subjects_whole = passes >= SUBJECTS_WHOLE_FROM_PASS
                outcome = _verify_pass(paths, trust, require_activities, runner, digester, progress, total_bytes, memory_limit, spill_dir, groups, pinned_subjects, subjects_whole)
                if outcome.exact:
                    break
                for key, members in outcome.groups.items():
                    groups.setdefault(key, set()).update(members)
                pinned_subjects |= outcome.subjects_at_risk
            else:
                raise RuntimeError(f"the repeats of activity ids and fingerprints, and the subjects forgotten and met again, were not settled in {MAX_PASSES} passes")
        except BaseException:
            runner.terminate()
            raise
        worker_peaks_kib = runner.close()
    finally:
        if dask_scheduler is not None:
            runner.disconnect()
    result = outcome.result
    for batch_id in sorted(set(activity_files) - outcome.batch_ids_opened):
        result.warnings.add(ORPHAN_ACTIVITY_FILE, None, f"activities/{batch_id}.jsonl was not read: no activity.batch event that passed its other checks names it")
    result.stats.update(
        {
            "seconds": round(perf_counter() - started, 3),
            "passes": passes,
            "peak_rss_main_kib": _peak_rss_kib(),
            "peak_rss_workers_kib": worker_peaks_kib,
            "digests": "string hash" if isinstance(digester, StringHashDigester) else "BLAKE2b",
        }
    )
    return result


@dataclass
class PassOutcome:
    result: BundleResult
    exact: bool  # whether every batch was judged knowing every real repeat among the records read
    groups: dict  # the confirmed repeats, uniqueness.Uniqueness.file_groups
    batch_ids_opened: set
    subjects_at_risk: frozenset  # format 2: digests of subjects this pass could have forgotten and met again (subjects.py)


def _verify_pass(paths, trust, require_activities, runner, digester, progress, total_bytes, memory_limit, spill_dir, groups, pinned_subjects, subjects_whole=False):
    """One replay of the bundle, judging repeats with what `groups` knows and keeping the subjects
    of `pinned_subjects` apart (format 2; every subject, whatever the limit, if subjects_whole),
    then the search for repeats among every record it read and for subjects it may have forgotten and met again."""
    violations = Findings()
    warnings = Findings()
    if os.path.exists(paths.checkpoints):
        signed_checkpoints, checkpoint_summary = read_checkpoints(paths.checkpoints, trust, violations)
    else:
        signed_checkpoints, checkpoint_summary = [], CheckpointSummary()
    uniqueness = Uniqueness(memory_limit, spill_dir)
    # Nothing here makes reference cycles worth collecting, and with millions of live objects
    # the cyclic collector's passes would cost a third of the main process's time.
    collecting = gc.isenabled()
    gc.disable()
    try:
        log_reader = LineReader(paths.log, "log", MAX_LEAF_BYTES, require_final_newline=True)
        log_format = log_format_of(paths.log)
        if runner.reads_files:  # a cluster's workers read the activity files themselves
            checker_class = RangeChecker2 if log_format == 2 else RangeChecker
        else:
            checker_class = ActivityChecker2 if log_format == 2 else ActivityChecker
        replay_class = Replay2 if log_format == 2 else Replay
        format_options = {"pinned_subjects": pinned_subjects, "subjects_whole": subjects_whole} if log_format == 2 else {}
        activity_checker = checker_class(paths.activities, runner, digester, uniqueness, RepeatJudge(groups), **format_options)
        replay = replay_class(trust, digester, violations, warnings, activity_checker, require_activities)
        merkle, roots, chunks_admitted_while_waiting = _stream_log(log_reader, trust, replay, runner, signed_checkpoints, activity_checker, progress, total_bytes, log_format or 1)
        search_started = perf_counter()
        at_risk = activity_checker.subjects_at_risk(runner) if log_format == 2 else frozenset()
        confirmed = uniqueness.confirmed(uniqueness.candidates(runner), paths.activities)
        exact = uniqueness.judged_right(confirmed) and not at_risk
        judge_checkpoints(signed_checkpoints, checkpoint_summary, merkle.size, roots, trust, violations)
        stats = {
            "events": merkle.size,
            "events_accepted": replay.events_accepted,
            "activity_records": activity_checker.records_checked,
            "activity_files": activity_checker.files_checked,
            "activity_batches_unverified": replay.batches_unverified,
            "activity_seconds": round(activity_checker.seconds, 3),
            "uniqueness_search_seconds": round(perf_counter() - search_started, 3),
            "uniqueness_memory_limit_bytes": memory_limit,
            "uniqueness_partitions": uniqueness.partitions,
            "uniqueness_partitions_spilled": uniqueness.partitions_spilled,
            "uniqueness_spill_bytes_peak": uniqueness.spill_bytes_peak,
            "uniqueness_digests_hit": uniqueness.digests_hit,
            "uniqueness_repeats_confirmed": len(confirmed),
            "subjects_generations_forgotten": activity_checker.generations_forgotten if log_format == 2 else 0,
            "subjects_pinned": len(pinned_subjects),
            "subjects_held_whole": subjects_whole and log_format == 2,
            "subjects_at_risk": len(at_risk),
            "subjects_stream_spilled": activity_checker.subject_stream.spilled if log_format == 2 else 0,
            "workers": runner.workers,
            "jobs_done_in_main": runner.jobs_done_here,
            "log_chunks_admitted_while_workers_finished_a_file": chunks_admitted_while_waiting,
        }
        result = BundleResult(log_format, trust.origin, merkle.size, merkle.root(), violations, warnings, checkpoint_summary, replay.totals, stats)
        return PassOutcome(result, exact, uniqueness.file_groups(confirmed), set(activity_checker.batch_ids_opened), at_risk)
    finally:
        uniqueness.close()
        # The replayed state holds no reference cycle, so dropping it here frees it at once. With
        # the collector back on first, its next pass would walk every object of the state (all
        # still in the youngest generation) for nothing: about 0.3 s per million events.
        replay = activity_checker = None
        if collecting:
            gc.enable()


def log_format_of(log_path):
    """The log's format (spec "Formats"): 2 if its first line is a JSON object of type
    registry.genesis whose body.format is the integer 2, whatever else is wrong with it; else 1;
    None for an empty log."""
    first_line = read_first_line(log_path, "log", MAX_LEAF_BYTES)
    if first_line is None:
        return None
    try:
        first = json.loads(first_line)
    except (ValueError, RecursionError):
        return 1
    if type(first) is not dict or first.get("type") != "registry.genesis" or type(first.get("body")) is not dict:
        return 1
    log_format = first["body"].get("format")
    return 2 if type(log_format) is int and log_format == 2 else 1


def _peak_rss_kib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _stream_log(log_reader, trust, replay, runner, signed_checkpoints, activity_checker, progress, total_bytes, log_format):
    if progress:
        activity_checker.on_progress = lambda: progress(log_reader.bytes_read + activity_checker.bytes_read, total_bytes)
    parser = LeafParser(trust.origin, trust.root_keys, log_format)
    merkle = MerkleAccumulator()
    wanted_sizes = sorted({checkpoint.tree_size for checkpoint in signed_checkpoints})
    roots = {0: EMPTY_ROOT} if wanted_sizes and wanted_sizes[0] == 0 else {}
    wanted = deque(size for size in wanted_sizes if size > 0)
    next_wanted = wanted.popleft() if wanted else -1
    in_flight = deque()
    depth = runner.lookahead
    most_in_flight = 2 * depth
    parallel = runner.workers > 0
    parse = parser.parse

    def log_chunks():
        carried = []
        for lines in log_reader.blocks():
            if carried:
                lines = carried + lines
            whole = len(lines) - len(lines) % CHUNK_EVENTS
            for chunk_start in range(0, whole, CHUNK_EVENTS):
                yield lines[chunk_start : chunk_start + CHUNK_EVENTS]
            carried = lines[whole:]
            if progress:
                progress(log_reader.bytes_read + activity_checker.bytes_read, total_bytes)
        if carried:
            yield carried

    def admit(chunk):
        """Parse a chunk, add it to the tree and send its signatures to the workers."""
        nonlocal next_wanted
        # Chunks are whole (CHUNK_EVENTS lines, so each is a perfect subtree of the log's tree)
        # but the last; a chunk where a checkpoint's size falls is added leaf by leaf.
        leaves = list(map(parse, chunk))
        hashes = [sha256(b"\x00" + raw).digest() for raw in chunk]
        if merkle.size < next_wanted <= merkle.size + len(chunk):
            for hash_of_leaf in hashes:
                merkle.append(hash_of_leaf)
                if merkle.size == next_wanted:
                    roots[next_wanted] = merkle.root()
                    next_wanted = wanted.popleft() if wanted else -1
        else:
            for height, subtree_root in subtrees_of(hashes):
                merkle.append_subtree(height, subtree_root)
        in_flight.append(_submit_signatures(runner, leaves) if parallel else (leaves, None, None))

    chunks = log_chunks()
    admitted_while_waiting = [0]

    def admit_next():
        """Admit the log's next chunk ahead of replay, if memory allows; whether one was admitted.
        The activity checker calls it while a worker finishes a file's last records, so that the
        worker then finds the log's signatures waiting, and the main process does not wait."""
        if len(in_flight) >= most_in_flight:
            return False
        chunk = next(chunks, None)
        if chunk is None:
            return False
        admit(chunk)
        admitted_while_waiting[0] += 1
        return True

    activity_checker.while_waiting = admit_next if parallel else None
    try:
        _replay_log(chunks, admit, in_flight, replay, runner, depth, most_in_flight)
    finally:
        # These closures refer back to the checker; leaving them would make the state a cycle.
        activity_checker.while_waiting = activity_checker.on_progress = None
    if progress:
        progress(total_bytes, total_bytes)
    return merkle, roots, admitted_while_waiting[0]


def _replay_log(chunks, admit, in_flight, replay, runner, depth, most_in_flight):
    for chunk in chunks:
        admit(chunk)
        # Replay what is ready; wait only when too far ahead (memory stays bounded). A worker that
        # waits gets the next chunk first: after an activity file every chunk in flight is done,
        # and replaying them all first would leave the workers idle for as long.
        while in_flight:
            if len(in_flight) <= most_in_flight and runner.has_idle_worker():
                break
            if len(in_flight) > depth or in_flight[0][2] is None or runner.ready(in_flight[0][2]):
                _replay_chunk(replay, runner, *in_flight.popleft())
            else:
                break
    while in_flight:
        _replay_chunk(replay, runner, *in_flight.popleft())


def _submit_signatures(runner, leaves):
    checked = [leaf for leaf in leaves if leaf.signed is not None and leaf.key_guess is not None]
    if not checked:
        return leaves, None, None
    ticket = runner.submit("verify", ([leaf.key_guess for leaf in checked], [leaf.signed for leaf in checked]))
    return leaves, checked, ticket


def _replay_chunk(replay, runner, leaves, checked, ticket):
    if ticket is not None:
        outcome = runner.result(ticket)
        for leaf, verified in zip(checked, outcome):
            leaf.verified = verified == 1
    apply = replay.apply
    for leaf in leaves:
        apply(leaf, verify_signed)
