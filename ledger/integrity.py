"""The registry's checks of its own projections against the log, before it writes.

The State is loaded from projection rows, not from the log (a start must stay fast at 10^6
events). So a row edited behind the registry's back (serials that were never issued, a role
added to a key) would be believed, spent and signed over. Two checks stand in the way:

- at every start, cheap: conservation (the serials held, retired and cancelled by all accounts
  tile exactly [0, NEXT), NEXT being the end of the latest issuance *in the log*, and each
  account's gram columns equal its ranges), and the projection digest (ledger.projections:
  every commit moves it by the rows it rewrites; the start sums the rows it loaded). Both cost
  one pass over what loading reads anyway; nothing is replayed.
- on demand (`puhui check DIR`), and once for a database written before the digest existed: a
  full replay of the log through the same rules, compared entity by entity with the rows.

A registry whose check fails still reads (status, proofs, exports: the log is intact) but
refuses to write until an operator has looked (docs/operations.md).
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

from sqlalchemy.engine import Connection

from ledger.leaf import parse_leaf, stored_log_format
from ledger.page_indexes import state_problems as page_index_problems
from ledger.projections import ProjectionDigest
from ledger.state import State
from ledger.store import Store

MAX_PROBLEMS = 20  # a damaged database can differ everywhere; the first few say what happened


@dataclass(frozen=True, slots=True)
class IntegrityReport:
    """What a check found at tree size `size`; `method` is "digest" (start) or "replay" (full).
    digest_recorded is False for a database from before the digest: only a replay can decide."""
    size: int
    method: str
    problems: tuple[str, ...]
    digest_recorded: bool

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_json(self) -> dict[str, Any]:
        return {"size": self.size, "method": self.method, "ok": self.ok, "problems": list(self.problems),
                "digest_recorded": self.digest_recorded}


def log_next_serial(store: Store, conn: Connection) -> int:
    """The serial after the latest issuance's range, read from the log itself (0 before any)."""
    seq = store.last_seq_of_types(conn, ("issuance",))
    if seq is None:
        return 0
    serials = parse_leaf(store.leaf(conn, seq), stored_log_format(store.leaf(conn, 0))).serials
    assert serials and len(serials) == 1, "an accepted issuance has exactly one range"
    return serials[0][1]


def conservation_problems(state: State, next_serial: int, account_columns: dict[str, tuple[int, int, int]]) -> list[str]:
    """Every serial below next_serial is held, retired or cancelled by exactly one account, none
    above it; each account's gram columns (what the public registers show) equal its ranges.

    account_columns maps account_id to its row's (active_g, retired_g, cancelled_g)."""
    problems: list[str] = []
    if state.next_serial != next_serial:
        problems.append(f"the issuances projection ends at serial {state.next_serial}, the log's latest issuance at "
                        f"{next_serial}")
    spans: list[tuple[int, int, str, str]] = []
    for account in state.accounts.values():
        for kind, serials in (("active", account.active), ("retired", account.retired), ("cancelled", account.cancelled)):
            spans.extend((start, end, account.account_id, kind) for start, end in serials.ranges())
        columns = account_columns.get(account.account_id)
        sizes = (account.active.size_g, account.retired.size_g, account.cancelled.size_g)
        if columns != sizes:
            problems.append(f"account {account.account_id}: its gram columns {columns} differ from its serial ranges {sizes}")
    spans.sort()
    covered = 0
    for start, end, account_id, kind in spans:
        if start > covered:
            problems.append(f"serials [{covered}, {start}) were issued but no account holds them")
        elif start < covered:
            problems.append(f"account {account_id} holds {kind} serials [{start}, {min(end, covered)}) that another "
                            f"range holds too")
        covered = max(covered, end)
        if len(problems) >= MAX_PROBLEMS:
            break
    if covered > next_serial:
        problems.append(f"accounts hold serials up to {covered}, beyond the {next_serial} the log has issued")
    elif covered < next_serial and len(problems) < MAX_PROBLEMS:
        problems.append(f"serials [{covered}, {next_serial}) were issued but no account holds them")
    return problems[:MAX_PROBLEMS]


def check_loaded(store: Store, conn: Connection, state: State, loaded: ProjectionDigest) -> IntegrityReport:
    """The start's check of a State just loaded from the rows whose digest is `loaded`."""
    columns = store.account_gram_columns(conn)
    problems = conservation_problems(state, log_next_serial(store, conn), columns)
    problems.extend(page_index_problems(conn, state, MAX_PROBLEMS))
    stored = store.read_projection_digest(conn)
    if stored is not None and stored != (state.size, loaded.hex()):
        if stored[0] != state.size:
            problems.append(f"the projection digest was recorded at size {stored[0]}, the log holds {state.size}")
        else:
            problems.append("projection rows were changed, added or removed outside the registry "
                            "(their digest differs from the one the last commit recorded)")
    return IntegrityReport(state.size, "digest", tuple(problems[:MAX_PROBLEMS]), stored is not None)


def state_differences(from_rows: State, from_log: State) -> list[str]:
    """Where the State loaded from the rows differs from the State replayed from the log."""
    problems: list[str] = []
    for field in fields(State):
        name = field.name
        mine, theirs = getattr(from_rows, name), getattr(from_log, name)
        if mine == theirs:
            continue
        if isinstance(mine, dict) and isinstance(theirs, dict):
            for key in sorted(set(mine) | set(theirs), key=repr):
                if mine.get(key) != theirs.get(key):
                    problems.append(f"{name} {key!r}: rows say {_short(mine.get(key))}, the log {_short(theirs.get(key))}")
                    if len(problems) >= MAX_PROBLEMS:
                        return problems
        else:
            problems.append(f"{name}: rows say {_short(mine)}, the log {_short(theirs)}")
    return problems[:MAX_PROBLEMS]


def _short(value: Any, limit: int = 160) -> str:
    text = "absent" if value is None else repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def with_problems(report: IntegrityReport, problems: list[str]) -> IntegrityReport:
    """The report with these problems added (the first MAX_PROBLEMS in all)."""
    return replace(report, problems=(*report.problems, *problems)[:MAX_PROBLEMS])


def check_by_replay(from_rows: State, replayed: State, before: IntegrityReport) -> IntegrityReport:
    """The full check: the rows' State against a replay of the whole log (ledger.replay), with
    what the start's check found before it."""
    problems = [*before.problems, *state_differences(from_rows, replayed)]
    return IntegrityReport(from_rows.size, "replay", tuple(problems[:MAX_PROBLEMS]), before.digest_recorded)
