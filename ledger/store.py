"""Persistence through SQLAlchemy 2 Core: SQLite (embedded default) or PostgreSQL (production).

The log (events, tree nodes, checkpoints) is append-only in the database itself: triggers refuse
UPDATE and DELETE. Projections (accounts, serials, issuances, ...) are rewritten in the same
transaction as the events that change them, so a crash leaves all or nothing.
"""

from __future__ import annotations

import fcntl
import json
import logging
import multiprocessing
import os
import sys
import time
from contextlib import contextmanager
from typing import IO, Any, Callable, Iterable, Iterator, NamedTuple, Sequence

from sqlalchemy import (
    BigInteger, Boolean, Column, Index, Integer, LargeBinary, MetaData, SmallInteger, String, Table, Text,
    UniqueConstraint, any_, bindparam, case, create_engine, event, func, select, text,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, IntegrityError

from ledger.errors import StorageError, WriterLockHeld
from ledger.key_digests import StoredKeyDigests

log = logging.getLogger(__name__)

metadata = MetaData()
# Written into registry_meta at creation; a database of another version is refused, not guessed at.
# 2: the holds and reviews projections (format 2), activities.occurred_on (format-2 records),
# occurred_at null for them. 3: the reviews projection's target, signer and verdict columns.
SCHEMA_VERSION = 3

events = Table(
    "events", metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("type", String(32), nullable=False),
    Column("signer", String(16), nullable=False),
    Column("request_id", String(128), nullable=False),
    Column("time", String(27), nullable=False),
    Column("leaf", LargeBinary, nullable=False),
    Column("leaf_hash", LargeBinary(32), nullable=False),
    Column("ref", String(128), nullable=True),  # the id the event introduces (transfer_id, ...), if any
    # seq is the primary key: a second writer's insert fails (optimistic concurrency). REPLAY is
    # judged in memory; a unique index on (signer, request_id) would cost a random B-tree insert per event.
)

# Perfect subtree hashes above the leaves; level 0 is events.leaf_hash.
tree_nodes = Table(
    "tree_nodes", metadata,
    Column("level", SmallInteger, primary_key=True, autoincrement=False),
    Column("idx", BigInteger, primary_key=True, autoincrement=False),
    Column("hash", LargeBinary(32), nullable=False),
)

checkpoints = Table(
    "checkpoints", metadata,
    Column("tree_size", BigInteger, primary_key=True, autoincrement=False),
    Column("root", LargeBinary(32), nullable=False),
    Column("note", Text, nullable=False),
)

# The one mutable row of the log: the size of the latest signed checkpoint, moved by compare-and-swap.
checkpoint_head = Table(
    "checkpoint_head", metadata,
    Column("id", SmallInteger, primary_key=True, autoincrement=False),
    Column("tree_size", BigInteger, nullable=False),
)

registry_meta = Table(
    "registry_meta", metadata,
    Column("name", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

activities = Table(
    "activities", metadata,
    Column("activity_id", String(128), primary_key=True),
    Column("fingerprint", String(64), nullable=False, unique=True),
    Column("batch_id", String(128), nullable=False, index=True),
    Column("position", Integer, nullable=False),
    Column("methodology_id", String(128), nullable=False),
    Column("subject", String(128), nullable=False),
    Column("occurred_at", String(27), nullable=True),  # a format-1 record's time; null in format 2
    Column("occurred_on", String(10), nullable=True),  # a format-2 record's date; null in format 1
    Column("reduction_g", BigInteger, nullable=False),
    Column("record", LargeBinary, nullable=False),
    UniqueConstraint("batch_id", "position", name="activities_batch_position_unique"),
    # A subject's reductions by methodology and time: personal accounts and daily caps across platforms
    # (format 2's subject dates and daily totals, spec 7.2 and 7.3, are read over its subject prefix).
    Index("activities_subject_methodology_time", "subject", "methodology_id", "occurred_at"),
)

# Projections: each row is the current state of one entity, as JSON plus the columns queries use.
def _projection(name: str, key: str, *columns: Column, listed_by: tuple[str, ...] = ()) -> Table:
    """listed_by: the columns a register filters on, each indexed with seq, so that a page of
    their rows in log order reads just its rows (issue 13); seq alone is indexed for unfiltered pages."""
    return Table(name, metadata, Column(key, String(128), primary_key=True), *columns,
                 Column("seq", BigInteger, nullable=False, index=True), Column("data", Text, nullable=False),
                 *(Index(f"{name}_{column}_seq", column, "seq") for column in listed_by))


keys_projection = _projection("keys", "key_id")
accounts_projection = _projection(
    "accounts", "account_id", Column("kind", String(32), nullable=False), Column("region", String(6), nullable=False),
    Column("active_g", BigInteger, nullable=False), Column("retired_g", BigInteger, nullable=False),
    Column("cancelled_g", BigInteger, nullable=False))
methodologies_projection = _projection("methodologies", "methodology_id")
batches_projection = _projection("batches", "batch_id", Column("platform", String(128), nullable=False),
                                 listed_by=("platform",))
issuances_projection = _projection("issuances", "issuance_id", Column("account", String(128), nullable=False),
                                   listed_by=("account",))
retirements_projection = _projection(
    "retirements", "retirement_id", Column("account", String(128), nullable=False),
    Column("purpose", String(32), nullable=False), listed_by=("account", "purpose"))
surrenders_projection = _projection("surrenders", "surrender_id", Column("entity", String(128), nullable=False),
                                    listed_by=("entity",))
claims_projection = _projection("claims", "claim_id", Column("claimant", String(128), nullable=False),
                                listed_by=("claimant",))
# Format 2: every accepted account.hold, loaded in log order to rebuild the open cases.
holds_projection = _projection("holds", "hold_id", Column("account_id", String(128), nullable=False, index=True))
# format 2: every accepted review, stored whole (ledger.state.Review), with its target, signer and
# verdict as columns: a target's review status is one indexed GROUP BY (ledger.queries).
reviews_projection = _projection(
    "reviews", "review_id", Column("target_kind", String(16), nullable=False),
    Column("target_id", String(128), nullable=False, index=True), Column("target_version", Integer, nullable=True),
    Column("signer", String(16), nullable=False), Column("approved", Boolean, nullable=False))

# The multiset digest of every projection row (ledger.projections.ProjectionDigest), rewritten in
# each commit's transaction, so that a start can tell rows changed behind the registry's back.
projection_digest = Table(
    "projection_digest", metadata,
    Column("id", SmallInteger, primary_key=True, autoincrement=False),
    Column("tree_size", BigInteger, nullable=False),
    Column("digest", String(64), nullable=False),
)

# -- the public pages' indexes (issue 13: ledger/register_totals.py, ledger/serial_index.py) --------
# Written in each commit's transaction beside the projections and counted in their digest; a
# database from before them gets them filled from its log once, when its writer starts.

# The register's totals: one row per (measure, key), e.g. ("retired_by_purpose", "voluntary") in
# grams, and ("size", "") the log size the rows cover.
register_totals = Table(
    "register_totals", metadata,
    Column("measure", String(32), primary_key=True),
    Column("key", String(128), primary_key=True),
    Column("value", BigInteger, nullable=False),
)

# Every issued serial, in ranges [start, end) that tile [0, next serial): the account holding them,
# in which state, the event that put them there and the issuance they come from.
serial_ranges = Table(
    "serial_ranges", metadata,
    Column("start", BigInteger, primary_key=True, autoincrement=False),
    Column("end", BigInteger, nullable=False),
    Column("account", String(128), nullable=False),
    Column("state", String(16), nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("issuance_seq", BigInteger, nullable=False),
)
# The events that set a methodology's offset eligibility (methodology.register and .eligibility),
# by methodology: the history on its page (ledger/eligibility_index.py).
eligibility_changes = Table(
    "eligibility_changes", metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("methodology_id", String(128), nullable=False),
    Column("time", String(27), nullable=False),
    Column("type", String(32), nullable=False),
    Column("version", Integer, nullable=True),  # null: format 1's methodology.eligibility, of every version
    Column("offset_eligible", Boolean, nullable=False),
    Index("ix_eligibility_changes_methodology_seq", "methodology_id", "seq"),
)
# The hashes of each activity batch's blocks of 256 consecutive records (ledger/batch_blocks.py):
# an activity's inclusion proof reads them and its own block, never the whole batch.
batch_blocks = Table(
    "batch_blocks", metadata,
    Column("batch_id", String(128), primary_key=True),
    Column("block_index", Integer, primary_key=True, autoincrement=False),
    Column("hash", LargeBinary(32), nullable=False),
)
PAGE_INDEXES = (register_totals, serial_ranges, eligibility_changes, batch_blocks)

PROJECTIONS = {t.name: t for t in (keys_projection, accounts_projection, methodologies_projection, batches_projection,
                                   issuances_projection, retirements_projection, surrenders_projection,
                                   claims_projection, holds_projection, reviews_projection)}
APPEND_ONLY = ("events", "tree_nodes", "checkpoints", "activities")

_SQLITE_TRIGGERS = [
    f"CREATE TRIGGER IF NOT EXISTS {table}_no_{op.lower()} BEFORE {op} ON {table} "
    f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"
    for table in APPEND_ONLY for op in ("UPDATE", "DELETE")
]
_POSTGRES_TRIGGERS = [
    """CREATE OR REPLACE FUNCTION puhui_append_only() RETURNS trigger AS $$
       BEGIN RAISE EXCEPTION '% is append-only', TG_TABLE_NAME; END $$ LANGUAGE plpgsql""",
] + [
    stmt for table in APPEND_ONLY for stmt in (
        f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}",
        f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
        f"FOR EACH ROW EXECUTE FUNCTION puhui_append_only()",
        f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}",
        f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
        f"FOR EACH STATEMENT EXECUTE FUNCTION puhui_append_only()",
    )
]


IN_LIST_VALUES = 500  # SQLite: values of one IN list (its limit is 32,766 parameters a statement)
# PostgreSQL: values of one array parameter. Few enough that the planner probes the index once
# the table is large: with 20,000 it chose a parallel scan of the whole table up to a few million
# rows (at 2*10^6 rows: 31,546 lookups/s, against 49,125 in arrays of 2,000, which it scans only
# below about 400,000 rows, where a scan is cheap).
ARRAY_VALUES = 2_000
INSERT_ROWS = 5_000  # SQLite: rows of one executemany


def values_present(conn: Connection, column: Column, values: Sequence[str], array_values: int | None = None) -> set[str]:
    """Which of `values` the column holds, read over its index: the activity ids and fingerprints
    of an upload's chunk before it is judged. array_values: values of one statement on PostgreSQL
    (default ARRAY_VALUES; all of them for a column without an index, which is then scanned once)."""
    array_values = array_values or ARRAY_VALUES
    found: set[str] = set()
    if conn.dialect.name == "postgresql":
        # One array parameter: one plan, where an IN list's 500 parameters were rendered, sent and
        # parsed each statement (bench/bench_fingerprints.py: 7 to 3 us of client CPU a value).
        statement = select(column).where(column == any_(bindparam("values", type_=ARRAY(column.type))))
        for i in range(0, len(values), array_values):
            found.update(conn.execute(statement, {"values": list(values[i:i + array_values])}).scalars())
    else:
        for i in range(0, len(values), IN_LIST_VALUES):
            found.update(conn.execute(select(column).where(column.in_(values[i:i + IN_LIST_VALUES]))).scalars())
    return found


def values_present_by_digests(digests: StoredKeyDigests, present_in: Callable[[int, list[str]], set[str]],
                              values: Sequence[str]) -> set[str]:
    """Which of `values` are stored, as values_present says, when the writer holds the digests of
    every stored value by partition (ledger.key_digests): a value whose digest is absent is not
    stored and costs no query; the others are confirmed by `present_in` in the partition each
    digest names, so a digest collision is never reported as stored."""
    found: set[str] = set()
    for partition, candidates in digests.candidates(values).items():
        found |= present_in(partition, candidates)
    assert found.issubset(values), "a confirmed value must be one asked for"
    return found


def insert_rows(conn: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert rows (dicts by column name, each with the same keys; a column absent is NULL) in the
    connection's transaction. On PostgreSQL by COPY: an executemany cost the writer ~9 us of CPU a row, so an
    upload of 10^6 records ~9 s; COPY ~0.5 us (bench/bench_fingerprints.py)."""
    if conn.dialect.name != "postgresql":
        for i in range(0, len(rows), INSERT_ROWS):
            conn.execute(table.insert(), rows[i:i + INSERT_ROWS])
        return
    import psycopg  # SQLAlchemy's PostgreSQL dialect has it loaded; a SQLite registry never needs it

    names = [c.name for c in table.columns]
    statement = f"COPY {table.name} ({', '.join(names)}) FROM STDIN"
    try:
        with conn.connection.driver_connection.cursor() as cursor, cursor.copy(statement) as stream:
            for row in rows:
                stream.write_row(tuple(row.get(name) for name in names))
    except psycopg.Error as exc:  # as SQLAlchemy would raise it (IntegrityError, OperationalError, ...)
        raise DBAPIError.instance(statement, None, exc, psycopg.Error) from exc


class SignedCheckpoint(NamedTuple):
    """A checkpoint the registry signed: its tree size and root, and the signed note itself."""
    tree_size: int
    root: bytes
    note: str


class StoredNodes:
    """merkle.BatchNodeReader over a store's committed tree, on one connection."""

    def __init__(self, store: "Store", conn: Connection):
        self._store, self._conn = store, conn

    def perfect(self, level: int, index: int) -> bytes:
        return self._store.node(self._conn, level, index)

    def perfect_many(self, nodes: Sequence[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        return self._store.nodes(self._conn, nodes)


def writer_lock_holder(*, short: bool = False) -> str:
    """How the process taking the writer lock names itself to whoever waits for it; short: in
    PostgreSQL's 63 characters of application_name (pids only)."""
    parent = multiprocessing.parent_process()
    if short:  # `puhui serve`'s writer: name the server the operator knows
        return f"held by pid {os.getpid()}" + (f", the writer of pid {parent.pid}" if parent is not None else "")
    program = " ".join([os.path.basename(sys.argv[0]), *sys.argv[1:3]]) if sys.argv else "python"
    if parent is not None:
        program += f", the writer of pid {parent.pid}"
    return f"held by pid {os.getpid()} ({program}) since {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}"


class _SqliteWriterLock:
    """An exclusive flock on `<database>.writer-lock`, which names its holder for the others."""

    def __init__(self, handle: IO[str]):
        self._handle = handle

    @classmethod
    def take(cls, database: str, timeout_s: float) -> "_SqliteWriterLock":
        path = f"{database}.writer-lock"
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600)
        handle = os.fdopen(descriptor, "r+", encoding="utf-8")
        deadline = time.monotonic() + timeout_s
        said_waiting = False
        while True:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not said_waiting:  # trial 11: a second `puhui serve` said nothing for 30 s
                    handle.seek(0)
                    log.warning("the log's writer lock is %s: waiting up to %g s for it",
                                handle.read(300).strip() or "held", timeout_s)
                    said_waiting = True
                if time.monotonic() > deadline:
                    handle.seek(0)
                    holder = handle.read(300).strip() or "a process that has not said what it is"
                    handle.close()
                    raise WriterLockHeld(f"another writer holds this log ({holder}; waited {timeout_s:g} s): stop it, "
                                       f"or send the events through its API") from None
                time.sleep(0.05)
        handle.truncate(0)
        handle.write(writer_lock_holder() + "\n")
        handle.flush()
        return cls(handle)

    def release(self) -> None:
        self._handle.close()  # closing the descriptor drops the flock


def sqlite_url(path: str) -> str:
    return f"sqlite:///{path}"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL for readers beside the writer; FULL so that a commit is on disk before we acknowledge.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def _numbers(values: Sequence[int]) -> str:
    return ",".join(map(str, values))


class Store:
    """The registry's tables on one engine. One Store per process writes; any number read."""

    NODE_CACHE_ENTRIES = 1 << 16
    # Nodes of this level and above (one per 1,024 leaves or more: about 10^5 at 10^8 leaves) are
    # kept for good: every proof's upper half is read from memory.
    UPPER_NODE_LEVEL = 10

    def __init__(self, engine: Engine):
        self.engine = engine
        # Committed tree nodes never change, so reads may be cached; the bound keeps memory flat.
        self._node_cache: dict[tuple[int, int], bytes] = {}
        self._upper_nodes: dict[tuple[int, int], bytes] = {}
        self._upserts: dict[str, Any] = {}
        self._lock_conn: Connection | None = None  # PostgreSQL: the connection holding the writer lock
        self._digest_table = False  # whether projection_digest is known to exist (databases before it lack it)
        self.dialect = engine.dialect.name
        database = engine.url.database if self.dialect == "sqlite" else None
        self._sqlite_path = database if database not in (None, "", ":memory:") else None
        self._sqlite_lock: _SqliteWriterLock | None = None
        if self.dialect not in ("sqlite", "postgresql"):
            raise StorageError(f"unsupported database {self.dialect}: use SQLite or PostgreSQL")

    @classmethod
    def connect(cls, url: str) -> "Store":
        try:  # before create_engine: another backend's driver would fail to import with a traceback
            backend = make_url(url).get_backend_name()
        except ArgumentError as exc:
            raise StorageError(f"not a database URL: {exc}") from None
        if backend not in ("sqlite", "postgresql"):
            raise StorageError(f"unsupported database {backend}: use SQLite (sqlite:///FILE) or PostgreSQL "
                               f"(postgresql+psycopg://USER@HOST/DB)")
        if url.startswith("sqlite"):
            engine = create_engine(url, connect_args={"check_same_thread": False})
            event.listen(engine, "connect", _sqlite_pragmas)
        else:
            engine = create_engine(url, pool_pre_ping=True)
        return cls(engine)

    def create_schema(self) -> None:
        with self.engine.begin() as conn:
            metadata.create_all(conn)
            for statement in (_SQLITE_TRIGGERS if self.dialect == "sqlite" else _POSTGRES_TRIGGERS):
                conn.execute(text(statement))
            if conn.execute(select(checkpoint_head.c.tree_size)).first() is None:
                conn.execute(checkpoint_head.insert().values(id=1, tree_size=0))

    # An arbitrary constant: the advisory lock key that marks this database's one writer.
    WRITER_LOCK_KEY = 0x7075687569  # "puhui"

    def acquire_writer_lock(self, timeout_s: float) -> None:
        """Become the log's one writer, or fail after timeout_s.

        On PostgreSQL a session advisory lock, held on a connection kept for the Store's life: a
        writer that died mid-commit keeps it until the server has finished that session, so a new
        writer never loads the state while an old transaction can still commit. On SQLite an
        exclusive lock (flock) on a file beside the database, naming its holder: concurrent
        writers would collide on the seq key anyway, but the loser would have written from a
        stale state (a CLI ingestion under a running server); the lock goes with its process.
        """
        if self.holds_writer_lock():
            return
        if self.dialect == "sqlite":
            self._sqlite_lock = _SqliteWriterLock.take(self._sqlite_path, timeout_s)
            return
        conn = self.engine.connect()
        deadline = time.monotonic() + timeout_s
        said_waiting = False
        while not conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": self.WRITER_LOCK_KEY}).scalar():
            conn.rollback()
            if not said_waiting:
                log.warning("the log's writer lock is %s: waiting up to %g s for it", self._pg_lock_holder(conn), timeout_s)
                said_waiting = True
            if time.monotonic() > deadline:
                holder = self._pg_lock_holder(conn)
                conn.close()
                raise WriterLockHeld(f"another writer holds this log ({holder}; waited {timeout_s:g} s): stop it, "
                                     f"or send the events through its API")
            time.sleep(0.05)
        # The session's application_name names the holder to a waiting writer (trial 11: on
        # PostgreSQL the refusal named no one), as the SQLite lock file does.
        conn.execute(text("SELECT set_config('application_name', :name, false)"),
                     {"name": writer_lock_holder(short=True)})
        conn.commit()
        self._lock_conn = conn

    def _pg_lock_holder(self, conn: Connection) -> str:
        """The application_name of the session holding the writer lock (a bigint advisory lock is
        classid = its high 32 bits, objid = its low 32, objsubid = 1 in pg_locks)."""
        name = conn.execute(text(
            "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.granted AND l.classid = :high AND l.objid = :low "
            "AND l.objsubid = 1 AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"),
            {"high": self.WRITER_LOCK_KEY >> 32, "low": self.WRITER_LOCK_KEY & 0xFFFFFFFF}).scalar()
        conn.rollback()
        return name or "held by a session that has not said what it is"

    def holds_writer_lock(self) -> bool:
        """Whether this Store may write: while it holds the lock (an in-memory SQLite needs none)."""
        if self.dialect == "postgresql":
            return self._lock_conn is not None
        return self._sqlite_lock is not None or self._sqlite_path is None

    @contextmanager
    def writing(self) -> Iterator[Connection]:
        """A write transaction of the log's one writer.

        On PostgreSQL it runs on the connection that holds the writer lock. A writer killed during
        COMMIT then keeps the lock until its server session has finished that COMMIT; on another
        connection the lock's session could end first, and a new writer could load the log while
        the old COMMIT was still landing (seen as a gap in the crash test). If that connection
        breaks, the lock is gone with it: this Store stops being the writer.
        """
        conn = self._lock_conn
        if conn is None:
            if self.dialect == "postgresql":
                raise StorageError("this registry does not hold the writer lock: it may not write")
            with self.engine.begin() as conn:
                yield conn
            return
        try:
            with conn.begin():
                yield conn
        except BaseException:
            if conn.invalidated or conn.closed:
                self.release_writer_lock()
            raise

    def release_writer_lock(self) -> None:
        """Stop being the writer (as closing the Store does, without folding the WAL)."""
        lock_conn = self._lock_conn
        if lock_conn is not None:
            self._lock_conn = None
            # The lock is the session's: closed, the connection would go back to the pool still
            # holding it, and no other writer could take it until the engine was disposed.
            lock_conn.invalidate()
            lock_conn.close()
        if self._sqlite_lock is not None:
            self._sqlite_lock.release()
            self._sqlite_lock = None

    def has_schema(self) -> bool:
        from sqlalchemy import inspect
        return inspect(self.engine).has_table("events")

    def close(self) -> None:
        if self._sqlite_lock is not None:
            # A clean stop folds the WAL into the database file: a copy of that file alone is then
            # whole (a copy without its WAL once lost acknowledged events; `puhui backup` is the safe way).
            with self.engine.connect() as conn:
                conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        self.release_writer_lock()
        self.engine.dispose()

    # -- meta ------------------------------------------------------------------------------------

    def write_meta(self, conn: Connection, values: dict[str, Any]) -> None:
        conn.execute(registry_meta.insert(), [{"name": k, "value": json.dumps(v)} for k, v in values.items()])

    def read_meta(self) -> dict[str, Any]:
        with self.engine.connect() as conn:
            return {row.name: json.loads(row.value) for row in conn.execute(select(registry_meta))}

    # -- the log ---------------------------------------------------------------------------------

    def size(self, conn: Connection) -> int:
        last = conn.execute(select(events.c.seq).order_by(events.c.seq.desc()).limit(1)).scalar()
        return 0 if last is None else last + 1

    def insert_events(self, conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
        try:
            conn.execute(events.insert(), list(rows))
        except IntegrityError as exc:
            raise StorageError(f"another writer appended to this log, or a request was replayed: {exc.orig}") from None

    def insert_nodes(self, conn: Connection, nodes: Iterable[tuple[int, int, bytes]]) -> None:
        rows = [{"level": level, "idx": index, "hash": digest} for level, index, digest in nodes if level > 0]
        if rows:
            conn.execute(tree_nodes.insert(), rows)

    def node(self, conn: Connection, level: int, index: int) -> bytes:
        return self.nodes(conn, [(level, index)])[(level, index)]

    def nodes(self, conn: Connection, wanted: Sequence[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        """The hashes of these tree nodes ((level, index); level 0 is a leaf hash) in one query for
        all that are not cached; KeyError if one is not stored. Committed nodes never change, so
        the upper levels (a node per UPPER_NODE_LEAVES leaves or more) stay cached for good and
        the rest in a bounded cache: a proof at 10^6 leaves reads its dozen lowest nodes only."""
        found: dict[tuple[int, int], bytes] = {}
        missing: list[tuple[int, int]] = []
        for node in wanted:
            cached = self._upper_nodes.get(node) or self._node_cache.get(node)
            if cached is None:
                missing.append(node)
            else:
                found[node] = cached
        if not missing:
            return found
        # The SQL is written here, not built with SQLAlchemy's expressions: building, compiling and
        # caching those cost 2 ms of CPU a proof at 10^6 leaves, ten times the query. Every value is
        # an int (int() below), so the text holds nothing but digits from outside.
        leaf_seqs = [int(index) for level, index in missing if level == 0]
        by_level: dict[int, list[int]] = {}
        for level, index in missing:
            if level > 0:
                by_level.setdefault(int(level), []).append(int(index))
        parts = []
        if leaf_seqs:
            parts.append(f"SELECT 0 AS level, seq AS idx, leaf_hash AS hash FROM {events.name} WHERE seq IN ({_numbers(leaf_seqs)})")
        if by_level:
            # By level, each an IN on idx: SQLite (3.40) scans the whole table for a row-value
            # (level, idx) IN (...), and searches the key for each of these OR'ed terms.
            terms = " OR ".join(f"(level = {level} AND idx IN ({_numbers(indexes)}))" for level, indexes in by_level.items())
            parts.append(f"SELECT level, idx, hash FROM {tree_nodes.name} WHERE {terms}")
        if len(self._node_cache) + len(missing) > self.NODE_CACHE_ENTRIES:
            self._node_cache.clear()
        for level, index, digest in conn.exec_driver_sql(" UNION ALL ".join(parts)):
            node, digest = (level, index), bytes(digest)
            found[node] = digest
            (self._upper_nodes if level >= self.UPPER_NODE_LEVEL else self._node_cache)[node] = digest
        absent = [node for node in missing if node not in found]
        if absent:
            raise KeyError(absent[0])
        return found

    def leaf(self, conn: Connection, seq: int) -> bytes | None:
        data = conn.execute(select(events.c.leaf).where(events.c.seq == seq)).scalar()
        return None if data is None else bytes(data)

    def leaves_at(self, conn: Connection, seqs: Sequence[int]) -> dict[int, bytes]:
        """The leaves at these seqs (those the log holds), by seq, in one query per IN_LIST_VALUES."""
        found: dict[int, bytes] = {}
        for i in range(0, len(seqs), IN_LIST_VALUES):
            rows = conn.execute(select(events.c.seq, events.c.leaf).where(events.c.seq.in_(seqs[i:i + IN_LIST_VALUES])))
            found.update((row.seq, bytes(row.leaf)) for row in rows)
        return found

    def leaves(self, conn: Connection, start: int, stop: int | None = None, chunk: int = 2000) -> Iterator[tuple[int, bytes]]:
        """Leaves in seq order, read in chunks so that memory stays constant over any log."""
        position = start
        while stop is None or position < stop:
            limit = chunk if stop is None else min(chunk, stop - position)
            rows = conn.execute(select(events.c.seq, events.c.leaf).where(events.c.seq >= position)
                                .order_by(events.c.seq).limit(limit)).all()
            if not rows:
                return
            for seq, data in rows:
                yield seq, bytes(data)
            position = rows[-1][0] + 1

    def last_seq_of_types(self, conn: Connection, types: Sequence[str]) -> int | None:
        return conn.execute(select(events.c.seq).where(events.c.type.in_(types)).order_by(events.c.seq.desc()).limit(1)).scalar()

    def refs(self, conn: Connection, event_type: str) -> Iterator[str]:
        yield from conn.execute(select(events.c.ref).where(events.c.type == event_type)).scalars().yield_per(10000)

    def request_seqs(self, conn: Connection) -> Iterator[tuple[str, str, int]]:
        for row in conn.execute(select(events.c.signer, events.c.request_id, events.c.seq)).yield_per(10000):
            yield row.signer, row.request_id, row.seq

    # -- checkpoints -----------------------------------------------------------------------------

    def latest_checkpoint(self, conn: Connection) -> "SignedCheckpoint | None":
        size = conn.execute(select(checkpoint_head.c.tree_size).where(checkpoint_head.c.id == 1)).scalar()
        if not size:
            return None
        row = conn.execute(select(checkpoints).where(checkpoints.c.tree_size == size)).one()
        return SignedCheckpoint(row.tree_size, bytes(row.root), row.note)

    def checkpoint_notes(self, conn: Connection) -> Iterator[str]:
        for row in conn.execute(select(checkpoints.c.note).order_by(checkpoints.c.tree_size)):
            yield row.note

    def add_checkpoint(self, conn: Connection, previous_size: int, size: int, root: bytes, note: str) -> None:
        """Record a signed checkpoint, moving the head from `previous_size` or failing: never a fork."""
        moved = conn.execute(checkpoint_head.update().where(checkpoint_head.c.id == 1, checkpoint_head.c.tree_size == previous_size)
                             .values(tree_size=size)).rowcount
        if moved != 1:
            raise StorageError(f"the latest checkpoint moved from size {previous_size} under us: another signer is at work")
        conn.execute(checkpoints.insert().values(tree_size=size, root=root, note=note))

    # -- activities ------------------------------------------------------------------------------

    def existing(self, conn: Connection, column: str, values: Sequence[str]) -> set[str]:
        return values_present(conn, activities.c[column], values)

    def subject_days(self, conn: Connection, subjects: Sequence[str], methodology_id: str,
                     chunk: int = 500) -> Iterator[tuple[str, str, int]]:
        """(subject, occurred_on, grams of methodology_id) of the format-2 records of these subjects,
        one row per subject and date, over the index on (subject, methodology_id, occurred_at)."""
        of_methodology = case((activities.c.methodology_id == methodology_id, activities.c.reduction_g), else_=0)
        for i in range(0, len(subjects), chunk):
            for subject, occurred_on, credited_g in conn.execute(
                select(activities.c.subject, activities.c.occurred_on, func.sum(of_methodology))
                .where(activities.c.subject.in_(subjects[i:i + chunk]), activities.c.occurred_on.is_not(None))
                .group_by(activities.c.subject, activities.c.occurred_on)):
                yield subject, occurred_on, int(credited_g)  # PostgreSQL sums bigints as numeric

    def insert_activities(self, conn: Connection, rows: list[dict[str, Any]]) -> None:
        insert_rows(conn, activities, rows)

    def batch_records(self, conn: Connection, batch_id: str) -> Iterator[bytes]:
        for row in conn.execute(select(activities.c.record).where(activities.c.batch_id == batch_id)
                                .order_by(activities.c.position)).yield_per(5000):
            yield bytes(row.record)

    # -- projections -----------------------------------------------------------------------------

    def upsert(self, conn: Connection, table_name: str, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        statement = self._upserts.get(table_name)
        if statement is None:
            table = PROJECTIONS[table_name]
            key = table.primary_key.columns.values()[0].name
            insert = sqlite_insert if self.dialect == "sqlite" else postgresql_insert
            statement = insert(table)
            statement = self._upserts[table_name] = statement.on_conflict_do_update(
                index_elements=[key], set_={c.name: statement.excluded[c.name] for c in table.columns if c.name != key})
        conn.execute(statement, rows)

    def account_gram_columns(self, conn: Connection) -> dict[str, tuple[int, int, int]]:
        """Each account's (active_g, retired_g, cancelled_g) columns, without its JSON data."""
        t = accounts_projection
        return {row.account_id: (row.active_g, row.retired_g, row.cancelled_g)
                for row in conn.execute(select(t.c.account_id, t.c.active_g, t.c.retired_g, t.c.cancelled_g))}

    def projection_rows_by_key(self, conn: Connection, table_name: str, keys: Sequence[str], chunk: int = 500) -> list[Any]:
        """The current rows of these entities (absent ones are left out), in column order."""
        table = PROJECTIONS[table_name]
        key = table.primary_key.columns.values()[0]
        rows: list[Any] = []
        for i in range(0, len(keys), chunk):
            rows.extend(conn.execute(select(table).where(key.in_(keys[i:i + chunk]))).all())
        return rows

    def read_projection_digest(self, conn: Connection) -> tuple[int, str] | None:
        """(tree size, hex digest) as the last commit left them; None if none was ever written
        (a database from before the digest, or whose table is missing)."""
        if not self._has_digest_table(conn):
            return None
        row = conn.execute(select(projection_digest.c.tree_size, projection_digest.c.digest)
                           .where(projection_digest.c.id == 1)).first()
        return None if row is None else (row.tree_size, row.digest)

    def write_projection_digest(self, conn: Connection, tree_size: int, digest: str) -> None:
        if not self._has_digest_table(conn):
            projection_digest.create(conn)
            self._digest_table = True
        moved = conn.execute(projection_digest.update().where(projection_digest.c.id == 1)
                             .values(tree_size=tree_size, digest=digest)).rowcount
        if moved == 0:
            conn.execute(projection_digest.insert().values(id=1, tree_size=tree_size, digest=digest))

    def _has_digest_table(self, conn: Connection) -> bool:
        if not self._digest_table:
            from sqlalchemy import inspect
            self._digest_table = inspect(conn).has_table("projection_digest")
        return self._digest_table

    def projection_rows(self, conn: Connection, table_name: str) -> Iterator[Any]:
        yield from conn.execute(select(PROJECTIONS[table_name]).order_by(PROJECTIONS[table_name].c.seq)).yield_per(10000)
