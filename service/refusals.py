"""The one table from the exceptions a person can act on to what both faces say: the spec's code
(section 9) and one line. api/ turns a refusal into an HTTP answer, cli/ into a terminal line and
an exit code; neither keeps a table of its own.

`Cause` says what a refusal is about, which is all a face needs besides the code: HTTP answers
ABSENT with 404 and LOGGED with 409 whatever the code's usual status; the terminal shows a
REJECTED refusal's code in front of its message (the registry's own words).
"""

from __future__ import annotations

import enum
from typing import Any, Callable, NamedTuple

from sqlalchemy.exc import SQLAlchemyError

from keys import KeyFileError
from ledger.errors import Rejected, StorageError
from quantify.activity import InvalidActivity
from quantify.footprint import FootprintError
from quantify.ingest import IngestError
from quantify.methodology import MethodologyError
from service.accounts import RecordMismatch, TooManyRecords
from service.claims import ClaimMismatch
from service.ingestion import NotAPlatform, UnknownPlatform
from service.methodologies import NoDefinition, UnknownMethodology
from service.registry_dir import RegistryDirError


class Cause(enum.Enum):
    ASKED = "asked"        # what was asked is wrong by itself (an input, a file, a request)
    ABSENT = "absent"      # it names what the log does not hold
    LOGGED = "logged"      # what the log holds does not fit it
    REJECTED = "rejected"  # the registry's rules refused it (ledger.errors.Rejected)
    MACHINE = "machine"    # this machine's directory, keys, database or files: its operator's to mend


class Refusal(NamedTuple):
    code: str | None  # the spec's (section 9); None for MACHINE, which no spec code names
    message: str
    cause: Cause


class _Row(NamedTuple):
    types: tuple[type[BaseException], ...]
    code: str | None  # None: the exception's own (Rejected), or none (MACHINE)
    cause: Cause
    message: Callable[[Any], str]


# The first row whose types match an exception gives its refusal.
_TABLE = (
    _Row((UnknownMethodology, NoDefinition, UnknownPlatform), "UNKNOWN_REF", Cause.ABSENT, str),
    _Row((NotAPlatform,), "SCHEMA", Cause.ASKED, str),
    _Row((InvalidActivity,), "SCHEMA", Cause.ASKED, lambda exc: f"{exc.code}: {exc.detail}"),
    _Row((RecordMismatch,), "BATCH", Cause.LOGGED, str),
    _Row((ClaimMismatch,), "CLAIM_MISMATCH", Cause.LOGGED, str),
    _Row((MethodologyError, FootprintError, IngestError, TooManyRecords), "SCHEMA", Cause.ASKED, str),
    _Row((Rejected,), None, Cause.REJECTED, lambda exc: exc.message),
    _Row((RegistryDirError, KeyFileError, StorageError, FileExistsError), None, Cause.MACHINE, str),
    _Row((FileNotFoundError, IsADirectoryError, PermissionError), None, Cause.MACHINE,
         lambda exc: f"{exc.filename}: {exc.strerror}"),
    _Row((SQLAlchemyError,), None, Cause.MACHINE,
         lambda exc: f"the database refused: {exc.__class__.__name__}: {str(exc).splitlines()[0]}"),
)

# What a request can be refused for: every face answers these.
REQUEST_ERRORS = tuple(t for row in _TABLE if row.cause is not Cause.MACHINE for t in row.types)
# What goes wrong on this machine: the terminal tells its operator; a server treats them as faults.
MACHINE_ERRORS = tuple(t for row in _TABLE if row.cause is Cause.MACHINE for t in row.types)


def refusal(exc: BaseException) -> Refusal:
    """What to tell the person for exc, one of REQUEST_ERRORS or MACHINE_ERRORS."""
    for row in _TABLE:
        if isinstance(exc, row.types):
            code = exc.code if isinstance(exc, Rejected) else row.code
            return Refusal(code, row.message(exc), row.cause)
    raise TypeError(f"{type(exc).__name__} is not a refusal") from exc
