"""Activity files (spec section 7): BATCH, DUPLICATE_ACTIVITY and DUPLICATE_ID of activity ids,
missing files, and the parallel path over chunks of records."""

import gc
import multiprocessing
import os
import pickle
import subprocess
import sys
import time
import weakref
from array import array

import pytest
from conftest import fingerprint_of, record_bytes

import verifier.bundle as bundle_module
from verifier.activities import CHUNK_RECORDS, ActivityChecker
from verifier.bundle import verify_bundle
from verifier.parallel import JOBS
from verifier.replay import Replay
from verifier.digests import Blake2bDigester, DigestSet, StringHashDigester

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def only(result, code, seq):
    assert [(f.code, f.seq) for f in result.violations.listed] == [(code, seq)], result.violations.listed


def records(prefix, count, day="2026-03-02", reduction=10, fingerprints=None):
    return [
        record_bytes(
            f"{prefix}-{n}",
            fingerprints[n] if fingerprints else fingerprint_of(f"{prefix}-{n}"),
            f"{day}T08:00:{n % 60:02d}.000000Z",
            reduction + n,
        )
        for n in range(count)
    ]


PERIOD = ("2026-03-01", "2026-03-31")


def add_batch(world, batch_id, batch_records, **overrides):
    return world.batch(batch_id, "wuhan-platform", world.keys["platform"], "HB-GT-METRO", records=batch_records, period=PERIOD, **overrides)


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({"count": 4}, id="count"),
        pytest.param({"total_g": 1}, id="total"),
        pytest.param({"root": "0" * 64}, id="root"),
        pytest.param({"period_start": "2026-03-03"}, id="period"),
    ],
)
def test_batch_does_not_match_its_file(world, verify, overrides):
    seq = add_batch(world, "wh-03", records("wh-03", 3), **overrides)
    only(verify(world), "BATCH", seq)


@pytest.mark.parametrize(
    "bad_record",
    [
        pytest.param(b'{"activity_id":"x"}', id="missing-fields"),
        pytest.param(b"not json", id="not-json"),
        pytest.param(record_bytes("x-1", fingerprint_of("x"), "2026-03-02T08:00:00.000000Z", 1).replace(b'"reduction_g":1', b'"reduction_g":-1'), id="negative"),
        pytest.param(record_bytes("x-1", fingerprint_of("x"), "2026-03-02T08:00:00.000000Z", 1).replace(b'"reduction_g":1', b'"reduction_g":1.5'), id="float"),
        pytest.param(record_bytes("x-1", fingerprint_of("x"), "2026-03-02T25:00:00.000000Z", 1), id="bad-time"),
        pytest.param(record_bytes("x-1", fingerprint_of("x"), "2026-03-02T08:00:00.000000Z", 1, inputs={"b": 1, "a": 2}).replace(b'"a":2,"b":1', b'"b":1,"a":2'), id="inputs-key-order"),
        pytest.param(record_bytes("x-1", fingerprint_of("x"), "2026-03-02T08:00:00.000000Z", 1, subject="a\u0008b"), id="control-char-spelt-canonically-ok"),
        pytest.param(record_bytes("x-1", fingerprint_of("x"), "2026-03-02T08:00:00.000000Z", 1, inputs={"n": 2**60}), id="big-int-in-inputs"),
        pytest.param(record_bytes("x-1", "F" * 64, "2026-03-02T08:00:00.000000Z", 1), id="uppercase-fingerprint"),
        pytest.param(b"", id="empty-line"),
    ],
)
def test_batch_with_a_malformed_record(world, verify, bad_record, request):
    batch_records = records("wh-03", 3) + [bad_record]
    seq = add_batch(world, "wh-03", batch_records, total_g=sum(10 + n for n in range(3)) + 1, count=4)
    result = verify(world)
    if "canonically-ok" in request.node.name:
        # "\b" spelt as JCS spells it is a valid subject: only the total differs (it counts 1)
        assert [(f.code, f.seq) for f in result.violations.listed] == []
    else:
        only(result, "BATCH", seq)


def test_batch_file_truncated(world, verify):
    seq = add_batch(world, "wh-03", records("wh-03", 3))
    world.activity_files["wh-03"] = world.activity_files["wh-03"][:-1]
    only(verify(world), "BATCH", seq)


def test_duplicate_activity_across_batches(world, verify):
    """The same bus ride reported by two platforms: same fingerprint, different activity ids."""
    other = world.key("grid-key", ["platform"])
    world.account("grid-platform", "platform", other, region="420500")
    add_batch(world, "wh-03", records("wh-03", 3))
    seq = world.batch("grid-03", "grid-platform", other, "HB-GT-METRO", records=records("grid-03", 2, fingerprints=[fingerprint_of("wh-03-1"), fingerprint_of("g")]), period=PERIOD)
    only(verify(world), "DUPLICATE_ACTIVITY", seq)


def test_duplicate_activity_within_a_batch(world, verify):
    seq = add_batch(world, "wh-03", records("wh-03", 3, fingerprints=[fingerprint_of("a"), fingerprint_of("b"), fingerprint_of("a")]))
    only(verify(world), "DUPLICATE_ACTIVITY", seq)


def test_duplicate_activity_id_is_duplicate_id(world, verify):
    duplicate = records("wh-01", 1, fingerprints=[fingerprint_of("fresh")])  # activity id wh-01-0 exists
    seq = add_batch(world, "wh-03", duplicate)
    only(verify(world), "DUPLICATE_ID", seq)


def test_rejected_batch_leaves_no_fingerprints(world, verify):
    """A batch rejected for its root does not claim its fingerprints: a later, correct batch with
    the same activities is valid (the first is reported, the second not)."""
    bad = add_batch(world, "wh-03", records("wh-03", 3), root="0" * 64)
    add_batch(world, "wh-04", records("wh-03", 3))
    only(verify(world), "BATCH", bad)


def test_batch_rejected_for_activities_cannot_back_an_issuance(world, verify):
    bad = add_batch(world, "wh-03", records("wh-03", 3), count=9)
    issuance = world.issue("iss-9", "wuhan-platform", amount_g=33, batches=["wh-03"])
    result = verify(world)
    assert [(f.code, f.seq) for f in result.violations.listed] == [("BATCH", bad), ("UNKNOWN_REF", issuance)]


def test_missing_activity_file_is_a_warning(world, verify):
    seq = add_batch(world, "wh-03", records("wh-03", 3))
    del world.activity_files["wh-03"]
    result = verify(world)
    assert result.valid
    assert [(w.code, w.seq) for w in result.warnings.listed] == [("UNVERIFIED_BATCH", seq)]


def test_missing_activity_file_with_require_activities(world, verify):
    seq = add_batch(world, "wh-03", records("wh-03", 3))
    del world.activity_files["wh-03"]
    only(verify(world, require_activities=True), "BATCH", seq)


def test_orphan_activity_file_is_a_warning(world, verify):
    world.activity_files["nobody"] = records("nobody", 1)[0] + b"\n"
    result = verify(world)
    assert result.valid
    assert [w.code for w in result.warnings.listed] == ["ORPHAN_ACTIVITY_FILE"]


@pytest.mark.parametrize("count", [CHUNK_RECORDS, 2 * CHUNK_RECORDS + 37])
def test_parallel_records_match_inline(world, tmp_path, count):
    """Several chunks through worker processes: same root, and a duplicate in the last chunk is
    found at its line."""
    batch_records = records("big", count, reduction=1)
    add_batch(world, "big", batch_records)
    fingerprints = [fingerprint_of(f"big2-{n}") for n in range(count)]
    fingerprints[-1] = fingerprint_of("big-5")
    seq = add_batch(world, "big2", records("big2", count, reduction=1, fingerprints=fingerprints))
    bundle = world.write(tmp_path)
    for jobs in (1, 2):
        result = verify_bundle(bundle.path, bundle.trust_object(), jobs=jobs, min_parallel_bytes=0)
        only(result, "DUPLICATE_ACTIVITY", seq)
        assert f"line {count}:" in result.violations.listed[0].message
        assert result.stats["activity_records"] == 6 + 2 * count


RECORDS_JOB = JOBS["records"]  # the chunk job as the runners run it: its digests split by partition


def _slow_records(job):
    if multiprocessing.parent_process() is not None:  # a worker: the inline run need not wait
        time.sleep(1.0)  # the workers are still busy when the file's last chunk is submitted, even on loaded cores (0.2 s was not, at a load of 12)
    return RECORDS_JOB(job)


def test_the_log_is_read_ahead_while_workers_finish_an_activity_file(world, tmp_path, monkeypatch):
    """While the workers finish a file's last chunks, the main process parses the log's next chunks
    and queues their signatures; the run's findings, totals and root equal an inline run's."""
    for n in range(3):
        add_batch(world, f"ahead-{n}", records(f"ahead-{n}", CHUNK_RECORDS + 5, reduction=1))
        for m in range(12):
            world.transfer(f"tr-ahead-{n}-{m}", "wuhan-platform", "steel-co", 1, world.keys["platform"])
    broken = add_batch(world, "ahead-broken", records("ahead-broken", 3), total_g=1)
    world.transfer("tr-after", "wuhan-platform", "steel-co", 1, world.keys["platform"])
    bundle = world.write(tmp_path)
    monkeypatch.setattr(bundle_module, "CHUNK_EVENTS", 4)
    monkeypatch.setitem(JOBS, "records", _slow_records)
    inline = verify_bundle(bundle.path, bundle.trust_object(), jobs=1)
    parallel = verify_bundle(bundle.path, bundle.trust_object(), jobs=2, min_parallel_bytes=0)
    assert parallel.stats["log_chunks_admitted_while_workers_finished_a_file"] > 0
    assert inline.stats["log_chunks_admitted_while_workers_finished_a_file"] == 0
    only(parallel, "BATCH", broken)
    assert parallel.violations.listed == inline.violations.listed
    assert (parallel.tree_size, parallel.root) == (inline.tree_size, inline.root)
    assert parallel.totals.as_json() == inline.totals.as_json()
    assert parallel.stats["events_accepted"] == inline.stats["events_accepted"]
    assert parallel.stats["activity_records"] == inline.stats["activity_records"]


def test_the_replayed_state_is_freed_without_the_cyclic_collector(world, tmp_path, monkeypatch):
    """bundle.py runs with the cyclic collector off; a reference cycle would keep the whole state
    alive until its next pass (and that pass would walk every object of it)."""
    add_batch(world, "freed", records("freed", CHUNK_RECORDS + 5, reduction=1))
    bundle = world.write(tmp_path)
    made = []

    def recorded(base):
        class Recorded(base):
            def __init__(self, *arguments, **options):
                super().__init__(*arguments, **options)
                made.append(weakref.ref(self))

        return Recorded

    monkeypatch.setattr(bundle_module, "Replay", recorded(Replay))
    monkeypatch.setattr(bundle_module, "ActivityChecker", recorded(ActivityChecker))
    collecting = gc.isenabled()
    gc.disable()
    try:
        for jobs in (1, 2):
            result = verify_bundle(bundle.path, bundle.trust_object(), jobs=jobs, min_parallel_bytes=0, progress=lambda done, total: None)
            assert result.valid and result.stats["activity_records"] == CHUNK_RECORDS + 5 + 6
        assert len(made) == 4 and all(reference() is None for reference in made)
    finally:
        if collecting:
            gc.enable()


def test_workers_are_stopped_when_setting_up_the_run_fails(world, tmp_path, monkeypatch):
    """E.g. a huge sparse activity file sizes digest tables beyond memory: the run fails, and
    neither worker processes nor the runner's switch interval are left behind."""
    import multiprocessing

    bundle = world.write(tmp_path)

    def no_memory(*arguments, **options):
        raise MemoryError

    monkeypatch.setattr(bundle_module, "ActivityChecker", no_memory)
    interval = sys.getswitchinterval()
    with pytest.raises(MemoryError):
        verify_bundle(bundle.path, bundle.trust_object(), jobs=2, min_parallel_bytes=0)
    assert multiprocessing.active_children() == []
    assert sys.getswitchinterval() == interval


@pytest.mark.parametrize("digester", [StringHashDigester(), Blake2bDigester(os.urandom(32))], ids=["string-hash", "blake2b"])
def test_digest_set_add_grow(digester):
    digest64 = digester.of_text
    digests = DigestSet(initial_bits=4)
    values = array("q", (digest64(str(n)) for n in range(1000)))
    assert digests.add_all(values) == []
    assert len(digests) == 1000 and all(value in digests for value in values)
    assert digests.add_all(array("q", values[:3])) == [0, 1, 2]
    more = array("q", (digest64(str(n)) for n in range(1000, 5000)))
    assert digests.add_all(more) == []  # grows
    assert len(digests) == 5000 and all(value in digests for value in values + more)
    assert digests.add_all(array("q", [digest64("new"), digest64("new")])) == [1]
    assert digest64("new") in digests


@pytest.mark.parametrize("digester", [StringHashDigester(), Blake2bDigester(os.urandom(32))], ids=["string-hash", "blake2b"])
def test_packed_digests_are_the_digests_of_each_text(digester):
    texts = [f"id-{n}" for n in range(300)] + ["métro 😀"]  # ids are never empty (CPython hashes "" to 0)
    packed = array("q")
    packed.frombytes(digester.pack_texts(texts))
    assert list(packed) == [digester.of_text(text) for text in texts]  # no text here hashes to 0 or -1
    assert len(set(packed)) == len(texts)
    # CPython hashes a str's internal bytes: these two share a hash under every secret unless the
    # digester hashes a non-ASCII text's UTF-8 instead.
    assert hash("\u0141") == hash("A\x01")
    assert digester.of_text("\u0141") != digester.of_text("A\x01")
    mixed = array("q")
    mixed.frombytes(digester.pack_texts(["\u0141", "A\x01", "x\udc80"]))
    assert list(mixed) == [digester.of_text(text) for text in ("\u0141", "A\x01", "x\udc80")]
    again = pickle.loads(pickle.dumps(digester))  # what a forked worker receives
    assert again.pack_texts(texts) == digester.pack_texts(texts)


def _in_fresh_interpreter(code, seed):
    environment = dict(os.environ, PYTHONHASHSEED=seed, PYTHONPATH=REPO)
    return subprocess.run([sys.executable, "-c", code], env=environment, capture_output=True, text=True, timeout=60)


def test_a_process_with_another_string_hash_secret_refuses_the_digester():
    """Digests under two secrets would never match: a duplicate would go unseen, so refuse."""
    sent = pickle.dumps(StringHashDigester()).hex()
    done = _in_fresh_interpreter(f"import pickle; pickle.loads(bytes.fromhex({sent!r}))", "random")
    assert done.returncode == 1 and "does not share the main process's string-hash secret" in done.stderr


@pytest.mark.parametrize(("seed", "kind"), [("random", "StringHashDigester"), ("0", "Blake2bDigester"), ("12345", "Blake2bDigester")])
def test_the_string_hash_is_used_only_when_its_secret_is_random(seed, kind):
    done = _in_fresh_interpreter("from verifier.digests import new_digester; print(type(new_digester()).__name__)", seed)
    assert done.stdout.strip() == kind, done.stderr
