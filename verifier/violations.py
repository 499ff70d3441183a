"""The codes of spec section 9 (format 2's among them), in the order of its table, and the
bounded list that collects the violations and warnings of a run (a log with millions of bad lines must not exhaust memory)."""

from collections import Counter
from typing import NamedTuple

CODES = (
    "ENCODING",
    "SEQ",
    "TIME",
    "SCHEMA",
    "SIGNATURE",
    "KEY_UNKNOWN",
    "KEY_REVOKED",
    "UNAUTHORIZED",
    "REPLAY",
    "DUPLICATE_ID",
    "UNKNOWN_REF",
    "FROZEN",
    "SERIALS",
    "NOT_HELD",
    "ISSUANCE_AMOUNT",
    "UNREVIEWED",
    "DOUBLE_ISSUANCE",
    "BATCH",
    "QUANTIFICATION",
    "PRIVACY",
    "DUPLICATE_ACTIVITY",
    "DOUBLE_CLAIM",
    "CLAIM_MISMATCH",
    "OFFSET_INELIGIBLE",
    "OFFSET_CAP",
    "NEUTRALITY_SHORT",
    "CHECKPOINT_SIGNATURE",
    "CHECKPOINT_ROOT",
    "CHECKPOINT_BEYOND_LOG",
    "NO_CHECKPOINT",
    "WITNESS_QUORUM",
)
CHECKPOINT_CODES = frozenset(CODES[CODES.index("CHECKPOINT_SIGNATURE") :])

# Warnings are not violations: they do not change the exit status.
UNVERIFIED_BATCH = "UNVERIFIED_BATCH"  # an activity file is absent
ORPHAN_ACTIVITY_FILE = "ORPHAN_ACTIVITY_FILE"  # an activity file that no accepted batch names

MAX_LISTED = 100_000  # findings kept with their message; beyond, only counted per code


class Finding(NamedTuple):
    code: str
    seq: object  # int, or None for checkpoint findings
    message: str

    def as_json(self):
        return {"code": self.code, "seq": self.seq, "message": self.message}


class Findings:
    def __init__(self, max_listed=MAX_LISTED):
        self.listed = []
        self.counts = Counter()
        self.max_listed = max_listed

    def add(self, code, seq, message):
        self.counts[code] += 1
        if len(self.listed) < self.max_listed:
            self.listed.append(Finding(code, seq, message))

    @property
    def total(self):
        return sum(self.counts.values())

    @property
    def unlisted(self):
        return self.total - len(self.listed)

    def __bool__(self):
        return bool(self.counts)
