"""Checkpoints (spec sections 5, 8, 9): every checkpoint code, with seq null."""

import json
import os

from conftest import WITNESS_NAME, TestKey, signed_note

from verifier.bundle import verify_bundle
from verifier.notes import checkpoint_body


def checkpoint_codes(result):
    return sorted(f.code for f in result.violations.listed if f.seq is None)


def test_checkpoints_at_several_sizes(world, verify, codes):
    result = verify(world, checkpoint_sizes=[0, 1, 18, len(world.leaves)])
    assert codes(result) == []
    assert result.checkpoints.matching == 4


def test_checkpoint_signed_by_another_key(world, verify):
    note = world.checkpoint_note(len(world.leaves), key=TestKey("not the log key"))
    result = verify(world, notes=[note, world.checkpoint_note(len(world.leaves))])
    assert checkpoint_codes(result) == ["CHECKPOINT_SIGNATURE"]


def test_checkpoint_malformed_or_of_another_origin(world, verify):
    size = len(world.leaves)
    good = world.checkpoint_note(size)
    other_origin = signed_note(checkpoint_body("other.example/log", size, b"\0" * 32), world.log_key, "other.example/log")
    notes = [good.replace("\n\n", "\n"), good.replace("\u2014", "-"), good[:-1], other_origin, good + "garbage\n", good]
    result = verify(world, notes=notes)
    assert checkpoint_codes(result) == ["CHECKPOINT_SIGNATURE"] * 5
    assert result.checkpoints.matching == 1


def test_checkpoint_line_not_json(world, tmp_path):
    bundle = world.write(tmp_path)
    with open(bundle.path + "/checkpoints.jsonl", "a") as handle:
        handle.write("{not json\n" + json.dumps({"nota": "x"}) + "\n")
    result = verify_bundle(bundle.path, bundle.trust_object(), jobs=1)
    assert checkpoint_codes(result) == ["CHECKPOINT_SIGNATURE", "CHECKPOINT_SIGNATURE"]


def test_rewritten_old_event(world, verify):
    """The operator, holding every key, rewrites and re-signs an old event: the log is
    self-consistent, but an earlier signed checkpoint no longer matches."""
    size_before = len(world.leaves)
    early_checkpoint = world.checkpoint_note(size_before)
    seq = [leaf["body"].get("retirement_id") for leaf in world.leaves].index("ret-3")
    world.leaves[seq]["body"]["beneficiary"] = "someone else"
    world.resign(seq, world.keys["alice"])
    result = verify(world, notes=[early_checkpoint, world.checkpoint_note(size_before)])
    assert checkpoint_codes(result) == ["CHECKPOINT_ROOT"]


def test_split_view(world, verify):
    """Two signed checkpoints of the same size with different roots: one history is not this log."""
    size = len(world.leaves)
    forged = world.checkpoint_note(size, root=b"\x01" * 32)
    result = verify(world, notes=[world.checkpoint_note(size), forged])
    assert checkpoint_codes(result) == ["CHECKPOINT_ROOT"]


def test_withheld_tail(world, verify):
    size = len(world.leaves)
    notes = [world.checkpoint_note(size - 3), world.checkpoint_note(size)]
    del world.leaves[size - 3 :]
    result = verify(world, notes=notes)
    assert checkpoint_codes(result) == ["CHECKPOINT_BEYOND_LOG"]  # the older checkpoint covers what is left


def test_no_checkpoint_covers_the_log(world, verify):
    result = verify(world, checkpoint_sizes=[10])
    assert checkpoint_codes(result) == ["NO_CHECKPOINT"]


def test_no_checkpoints_file(world, tmp_path):
    bundle = world.write(tmp_path)
    os.remove(bundle.path + "/checkpoints.jsonl")
    result = verify_bundle(bundle.path, bundle.trust_object(), jobs=1)
    assert checkpoint_codes(result) == ["NO_CHECKPOINT"]


def test_witness_quorum_met(world, verify, codes):
    result = verify(world, witness_quorum=1)
    assert codes(result) == []
    assert result.checkpoints.latest_witnesses == (WITNESS_NAME,)


def test_witness_quorum_missing(world, verify):
    result = verify(world, witness_quorum=1, cosign=False)
    assert checkpoint_codes(result) == ["WITNESS_QUORUM"]


def test_witness_cosignature_forged(world, verify):
    size = len(world.leaves)
    note = world.checkpoint_note(size, witnesses=((WITNESS_NAME, TestKey("impostor")),))
    result = verify(world, notes=[note], witness_quorum=1)
    assert checkpoint_codes(result) == ["WITNESS_QUORUM"]


def test_witness_quorum_counts_the_latest_size(world, verify):
    """Cosignatures on an older checkpoint do not count for the latest."""
    size = len(world.leaves)
    notes = [world.checkpoint_note(size - 1, witnesses=((WITNESS_NAME, world.witness),)), world.checkpoint_note(size)]
    result = verify(world, notes=notes, witness_quorum=1)
    assert checkpoint_codes(result) == ["WITNESS_QUORUM"]
