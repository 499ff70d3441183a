"""Reading a file that holds a secret (a key file, a passphrase file): refused at once when it is
no regular file (a FIFO would block the reader, /dev/zero would never end) or larger than such a
file can be; a warning when others than its owner may read or write it."""

from __future__ import annotations

import os
import stat
import warnings
from typing import Callable

from .errors import KeyFileError


class KeyFilePermissionWarning(UserWarning):
    """A file holding a secret that others than its owner may read or write."""


def read_secret_file(path: str | os.PathLike[str], *, label: str, what: str, max_bytes: int,
                     holds_a_secret: Callable[[bytes], bool] | None = None) -> bytes:
    """The file's bytes. `label` starts every message, `what` names the kind of file. An OSError
    from opening it (missing, unreadable) is the caller's to word. `holds_a_secret` tells a file
    of the kind from another handed over by mistake (a trust file as a key file), so that the
    caller's "not a key file" is said, not a warning about a public file's mode."""
    # O_NONBLOCK: opening a FIFO must not wait for a writer before fstat can refuse it.
    descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    with os.fdopen(descriptor, "rb") as handle:
        status = os.fstat(descriptor)
        if not stat.S_ISREG(status.st_mode):
            raise KeyFileError(f"{label}: not a regular file, so not a {what}")
        if status.st_size > max_bytes:
            raise KeyFileError(f"{label}: {status.st_size} bytes, larger than a {what} can be ({max_bytes})")
        data = handle.read(max_bytes + 1)
    if len(data) > max_bytes:  # grew since fstat
        raise KeyFileError(f"{label}: larger than a {what} can be ({max_bytes} bytes)")
    if status.st_mode & 0o077 and (holds_a_secret is None or holds_a_secret(data)):
        warnings.warn(f"{label}: readable or writable by others (mode {stat.S_IMODE(status.st_mode):o}); "
                      f"run `chmod 600 {path}`", KeyFilePermissionWarning, stacklevel=4)
    return data
