"""The spec's violation codes (section 9) and the one exception that carries them."""

from __future__ import annotations

# In the order of spec section 9: where one event breaks several rules, the first applies.
# FROZEN is format 2's (puhui-log-v2.md): a transfer or retirement from a held account.
CODES = (
    "ENCODING", "SEQ", "TIME", "SCHEMA", "SIGNATURE", "KEY_UNKNOWN", "KEY_REVOKED",
    "UNAUTHORIZED", "REPLAY", "DUPLICATE_ID", "UNKNOWN_REF", "FROZEN", "SERIALS", "NOT_HELD",
    "ISSUANCE_AMOUNT", "UNREVIEWED", "DOUBLE_ISSUANCE", "BATCH", "QUANTIFICATION", "PRIVACY", "DUPLICATE_ACTIVITY",
    "DOUBLE_CLAIM",
    "CLAIM_MISMATCH", "OFFSET_INELIGIBLE", "OFFSET_CAP", "NEUTRALITY_SHORT",
    "CHECKPOINT_SIGNATURE", "CHECKPOINT_ROOT", "CHECKPOINT_BEYOND_LOG", "NO_CHECKPOINT",
    "WITNESS_QUORUM",
)


class Rejected(Exception):
    """An event (or input) the rules refuse. `code` is one of the spec's codes."""

    def __init__(self, code: str, message: str):
        assert code in CODES, code
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message

    def __reduce__(self):
        # args holds only the formatted text; rebuild from the fields (the API's writer process
        # sends rejections to the front through a pipe).
        return (Rejected, (self.code, self.message))


class StorageError(Exception):
    """The store is not in the state the registry expects (a second writer, a broken invariant)."""


class WriterLockHeld(StorageError):
    """Another process (a running `puhui serve`, another command) holds the log's writer lock."""


class InvariantBroken(AssertionError):
    """An invariant of the ledger does not hold: a bug, never a client's fault. Raised by explicit
    checks rather than `assert`, which `python -O` would strip from the write path."""
