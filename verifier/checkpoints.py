"""Checkpoints against the log (spec sections 5, 8 and 9): each signed checkpoint must match the
log's root at its size, none may be larger than the log, one must cover the whole log, and the
latest must carry the witness cosignatures the trust file asks for. Findings have seq null."""

import json
from dataclasses import dataclass, field

from verifier.notes import NoteError, parse_checkpoint
from verifier.reader import MAX_CHECKPOINT_LINE_BYTES, MAX_CHECKPOINTS, InputError, LineReader


@dataclass
class SignedCheckpoint:
    line_number: int
    tree_size: int
    root: bytes
    witnesses: set = field(default_factory=set)


@dataclass
class CheckpointSummary:
    lines: int = 0
    signed: int = 0
    matching: int = 0
    latest_size: object = None
    latest_witnesses: tuple = ()

    def as_json(self):
        return {
            "lines": self.lines,
            "validly_signed": self.signed,
            "matching_the_log": self.matching,
            "latest_size": self.latest_size,
            "latest_witnesses": list(self.latest_witnesses),
        }


def read_checkpoints(path, trust, findings):
    """The validly signed checkpoints of checkpoints.jsonl; the rest become CHECKPOINT_SIGNATURE."""
    signed = []
    summary = CheckpointSummary()
    reader = LineReader(path, "checkpoints file", MAX_CHECKPOINT_LINE_BYTES, require_final_newline=False)
    for lines in reader.blocks():
        for raw in lines:
            summary.lines += 1
            if summary.lines > MAX_CHECKPOINTS:
                raise InputError(f"checkpoints file {path} has more than {MAX_CHECKPOINTS} lines")
            where = f"checkpoints.jsonl line {summary.lines}"
            try:
                entry = json.loads(raw.decode("utf-8"))
                if type(entry) is not dict or type(entry.get("note")) is not str:
                    raise NoteError('the line is not {"note": "<signed note>"}')
                checkpoint = parse_checkpoint(entry["note"], trust.origin)
            except (UnicodeDecodeError, ValueError, RecursionError) as error:
                findings.add("CHECKPOINT_SIGNATURE", None, f"{where}: malformed checkpoint: {error}")
                continue
            if not checkpoint.signed_by(trust.log_key):
                findings.add("CHECKPOINT_SIGNATURE", None, f"{where}: no valid signature of the log key {trust.log_key.name}")
                continue
            witnesses = checkpoint.cosigning_witnesses(trust.witnesses) if trust.witnesses else set()
            signed.append(SignedCheckpoint(summary.lines, checkpoint.tree_size, checkpoint.root, witnesses))
    summary.signed = len(signed)
    return signed, summary


def judge_checkpoints(signed, summary, log_size, roots, trust, findings):
    """roots: tree size -> the log's root at that size, for every size <= log_size in `signed`."""
    matching = []
    for checkpoint in signed:
        where = f"checkpoints.jsonl line {checkpoint.line_number}"
        if checkpoint.tree_size > log_size:
            findings.add(
                "CHECKPOINT_BEYOND_LOG",
                None,
                f"{where}: signed checkpoint of size {checkpoint.tree_size}, but the log has only {log_size} leaves (withheld or truncated)",
            )
        elif roots[checkpoint.tree_size] != checkpoint.root:
            findings.add(
                "CHECKPOINT_ROOT",
                None,
                f"{where}: signed root at size {checkpoint.tree_size} is {checkpoint.root.hex()}, "
                f"the log's is {roots[checkpoint.tree_size].hex()} (history rewritten, or a split view)",
            )
        else:
            matching.append(checkpoint)
    summary.matching = len(matching)
    if not any(checkpoint.tree_size == log_size for checkpoint in matching):
        findings.add("NO_CHECKPOINT", None, f"no valid checkpoint covers the whole log ({log_size} leaves)")
    if matching:
        latest_size = max(checkpoint.tree_size for checkpoint in matching)
        witnesses = set()
        for checkpoint in matching:
            if checkpoint.tree_size == latest_size:
                witnesses |= checkpoint.witnesses
        summary.latest_size = latest_size
        summary.latest_witnesses = tuple(sorted(witnesses))
        if len(witnesses) < trust.witness_quorum:
            findings.add(
                "WITNESS_QUORUM",
                None,
                f"the latest checkpoint (size {latest_size}) has {len(witnesses)} valid witness cosignature(s); "
                f"the trust file asks for {trust.witness_quorum}",
            )
    return summary
