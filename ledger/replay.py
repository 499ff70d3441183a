"""Rebuild the State from the log alone, judging every leaf by the same rules the registry ran.

Used to prove that the projections the registry keeps equal a replay of its log (after a crash,
in the tests, by `puhui check`, and once at the start of a database from before the projection
digest: ledger.integrity). A leaf that breaks a rule raises: the registry's own log must have
none (the independent verifier, verifier/, reports such leaves instead of raising).
"""

from __future__ import annotations

from typing import Callable, Iterable

from ledger.canonical import parse_strict
from ledger.errors import Rejected
from ledger.leaf import log_format_of, parse_leaf
from ledger.rules import apply, authenticate, judge
from ledger.state import Key, MemoryActivityIndex, State


def replay(leaves: Iterable[bytes], *, origin: str, root_keys: dict[str, Key],
           batch_records: Callable[[str], Iterable[bytes]],
           batch_blocks: Callable[[str, list[bytes]], None] | None = None) -> State:
    """batch_blocks, if given, is told each activity batch's block hashes (ledger.batch_blocks) as
    its root is checked."""
    state = State(root_keys=root_keys, origin=origin)  # as a registry that has not yet appended its genesis
    activities = MemoryActivityIndex()
    log_format = None
    for data in leaves:
        if log_format is None:
            log_format = log_format_of(data)
        leaf = parse_leaf(data, log_format)
        if leaf.seq != state.size:
            raise Rejected("SEQ", f"leaf {state.size} says seq {leaf.seq}")
        if state.last_time is not None and leaf.time < state.last_time:
            raise Rejected("TIME", f"leaf {leaf.seq} is earlier than the leaf before it")
        key = authenticate(state, origin, leaf.type, leaf.body, leaf.auth)
        records = None
        if leaf.type == "activity.batch":
            records = [parse_strict(r) for r in batch_records(leaf.body["batch_id"])]
        verdict = judge(state, leaf.type, leaf.body, key, activities=activities, records=records, effects=leaf.serials)
        if batch_blocks is not None and verdict.block_hashes is not None:
            batch_blocks(leaf.body["batch_id"], verdict.block_hashes)
        apply(state, leaf.seq, leaf.time, leaf.type, leaf.body, key.key_id, leaf.serials,
              activities=activities, records=verdict.records)
    return state
