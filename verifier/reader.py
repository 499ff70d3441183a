"""Reading the bundle's files: bounded line lengths and counts, and clear errors for input that
cannot be read at all (exit status 2), as opposed to content that breaks a rule (a violation)."""

import os
from contextlib import contextmanager

MAX_LEAF_BYTES = 16 * 1024 * 1024  # one log line; an issuance may list many batches
MAX_RECORD_BYTES = 1024 * 1024  # one activity record
MAX_CHECKPOINT_LINE_BYTES = 64 * 1024  # a note with up to 100 signatures fits easily
MAX_CHECKPOINTS = 100_000
MAX_SMALL_FILE_BYTES = 64 * 1024 * 1024  # trust file, receipt, checkpoint or proof file
READ_BLOCK_BYTES = 4 * 1024 * 1024


class InputError(Exception):
    """Input that cannot be verified at all: the run stops with exit status 2 and this message."""


@contextmanager
def _reading(path, what):
    """OS errors while reading a file, as the InputError that says which file and why."""
    try:
        yield
    except FileNotFoundError:
        raise InputError(f"{what} {path} does not exist") from None
    except OSError as error:
        raise InputError(f"{what} {path} cannot be read: {error.strerror or error}") from None


def read_small_file(path, what, max_bytes=MAX_SMALL_FILE_BYTES):
    with _reading(path, what):
        if os.path.isdir(path):
            raise InputError(f"{what} {path} is a directory, not a file")
        with open(path, "rb") as handle:
            data = handle.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise InputError(f"{what} {path} is larger than {max_bytes} bytes")
    return data


def read_first_line(path, what, max_line_bytes):
    """The first line of a file without its newline (at most max_line_bytes + 1 bytes of it, so a
    longer one is never held whole), or None for an empty file."""
    with _reading(path, what), open(path, "rb") as handle:
        line = handle.readline(max_line_bytes + 1)
    return line.rstrip(b"\n") if line else None


class LineReader:
    """The lines of a file, in order, each without its final newline, read in large blocks.

    A line longer than max_line_bytes stops the run (it is never held whole in memory). A last line
    without a newline is reported through `unterminated_last_line` after iteration, or stops the run
    when require_final_newline is set."""

    def __init__(self, path, what, max_line_bytes, require_final_newline, block_bytes=READ_BLOCK_BYTES):
        self.path = path
        self.what = what
        self.max_line_bytes = max_line_bytes
        self.require_final_newline = require_final_newline
        self.block_bytes = block_bytes
        self.unterminated_last_line = False
        self.bytes_read = 0

    def _too_long(self, line_number):
        return InputError(
            f"{self.what} {self.path}: line {line_number} is longer than the limit of {self.max_line_bytes} bytes"
        )

    def blocks(self):
        """Yield lists of complete lines, one list per block read."""
        try:
            handle = open(self.path, "rb")
        except FileNotFoundError:
            raise InputError(f"{self.what} {self.path} does not exist") from None
        except OSError as error:
            raise InputError(f"{self.what} {self.path} cannot be read: {error.strerror or error}") from None
        limit = self.max_line_bytes
        lines_done = 0
        carry = b""
        with handle:
            while True:
                try:
                    block = handle.read(self.block_bytes)
                except OSError as error:
                    raise InputError(f"{self.what} {self.path} cannot be read: {error.strerror or error}") from None
                if not block:
                    break
                self.bytes_read += len(block)
                lines = block.split(b"\n")
                if carry:
                    lines[0] = carry + lines[0]
                carry = lines.pop()
                if len(carry) > limit:
                    raise self._too_long(lines_done + len(lines) + 1)
                if lines:
                    if max(map(len, lines)) > limit:
                        for offset, line in enumerate(lines):
                            if len(line) > limit:
                                raise self._too_long(lines_done + offset + 1)
                    lines_done += len(lines)
                    yield lines
        if carry:
            if self.require_final_newline:
                raise InputError(
                    f"{self.what} {self.path}: the last line (line {lines_done + 1}) does not end with a newline; "
                    "the file is truncated"
                )
            self.unterminated_last_line = True
            yield [carry]
