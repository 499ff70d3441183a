"""The registry's fingerprint and activity-id index on PostgreSQL as it grows to 10^8 rows (issue 15).

    .venv/bin/python bench/bench_fingerprints.py --rows 100000000            # a throwaway local cluster
    .venv/bin/python bench/bench_fingerprints.py --rows 1000000 --database-url URL
    .venv/bin/python bench/bench_fingerprints.py --rows 100000000 --pg-setting shared_buffers=6GB ...
    .venv/bin/python bench/bench_fingerprints.py --rows 100000000 --layout partitioned --partition-rows 4000000

Every activity record an upload holds is looked up by its activity_id and fingerprint before it is
judged (ledger.store.values_present, through Store.existing) and inserted at its batch's commit
(ledger.store.insert_rows, through Store.insert_activities); this calls those very functions. Both cost what the two unique
B-tree indexes of `activities` cost, and those grow with the log: this measures them from 0 to
--rows rows, in chunks of --chunk rows.

The table holds the two indexed columns of `activities`, typed and constrained as there (taken
from ledger.store), and nothing else: 10^8 full rows (a record of ~300 bytes, three more indexes)
would take some 45 GB, more than this machine's disk holds beside a 10^8-record bundle. What the
other columns and indexes add per row at a small size is measured by bench_ingest.py --registry.

Each chunk is filled on the server (INSERT ... SELECT over generate_series: fingerprints are
sha256(int8send(n)) in hex, ids "a-n"), so the fill rate is the indexes' own cost without the
client's. At each --probe size the registry's two paths are timed from the client: the lookup of
a chunk of --probe-records ids and fingerprints (half already stored, half not; the hits are
checked against what was stored) and the insert of --probe-records new rows as Store does it.
--layout partitioned measures the design for 10^8 rows and more: the table partitioned by ranges
of a row number (--partition-rows each, as the writer would start one a week or a month), each
partition with its own unique indexes, so that inserts only touch the newest partition's; and
the uniqueness across partitions held by the single writer's digests of every stored value
(ledger.key_digests), so that a lookup asks the database only about the values whose digests it
holds, in the partition each names (ledger.store.values_present_by_digests). The digests are
loaded by reading back each filled chunk, as a writer loads them at its start; that rate is
reported too.

Reports one run as JSON on stdout; nothing here is a pass/fail test.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import struct
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from sqlalchemy import BigInteger, Column, MetaData, Table, create_engine, select, text
from sqlalchemy.engine import Connection, Engine

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ledger.key_digests import MAX_PARTITION, StoredKeyDigests  # noqa: E402
from ledger.store import activities, insert_rows, values_present, values_present_by_digests  # noqa: E402

MAX_ROWS = 10**9

def index_table(uniqueness: str) -> Table:
    """The two indexed columns of `activities`, unique as there ("btree": ledger.store's unique
    B-tree indexes) or by exclusion constraints over hash indexes ("hash": exact too, and an index
    entry holds a 4-byte hash code where a B-tree holds the whole 64-character key)."""
    id_type, fingerprint_type = activities.c.activity_id.type, activities.c.fingerprint.type
    if uniqueness == "btree":
        return Table("fingerprint_index", MetaData(), Column("activity_id", id_type, primary_key=True),
                     Column("fingerprint", fingerprint_type, nullable=False, unique=True))
    from sqlalchemy.dialects.postgresql import ExcludeConstraint

    return Table("fingerprint_index", MetaData(), Column("activity_id", id_type, nullable=False),
                 Column("fingerprint", fingerprint_type, nullable=False),
                 ExcludeConstraint(("activity_id", "="), using="hash", name="fingerprint_index_activity_id_excl"),
                 ExcludeConstraint(("fingerprint", "="), using="hash", name="fingerprint_index_fingerprint_excl"))


class SingleIndex:
    """--layout single: one table with its unique indexes, as the registry's `activities` has them."""

    def __init__(self, uniqueness: str):
        self.table = index_table(uniqueness)

    def create(self, conn: Connection) -> None:
        self.table.metadata.drop_all(conn)
        self.table.metadata.create_all(conn)
        conn.commit()

    def fill(self, conn: Connection, first: int, rows: int) -> None:
        fill_rows(conn, first, rows, with_row_number=False)

    def make_room(self, conn: Connection, row_number: int) -> None:
        pass  # one table holds every row

    def present(self, conn: Connection, column: str, values: list[str]) -> set[str]:
        return values_present(conn, self.table.c[column], values)

    def insert(self, conn: Connection, rows: list[dict[str, object]], row_number: int) -> None:
        with conn.begin():  # COPY goes to the driver's connection: only a begun transaction commits it
            insert_rows(conn, self.table, rows)

    def size_bytes(self, conn: Connection) -> int:
        return conn.execute(text("SELECT pg_total_relation_size('fingerprint_index')")).scalar_one()


class PartitionedIndex:
    """--layout partitioned: the table, its partitions as they are made, and the writer's digests.

    deferred_indexes: the newest partition is written without unique indexes, which are built when
    the next one opens (CREATE UNIQUE INDEX: a sort, and a proof that the partition holds no
    repeat); until then the writer confirms a candidate there by one scan of that partition."""

    def __init__(self, partition_rows: int, expected_rows: int, deferred_indexes: bool):
        self.partition_rows = partition_rows
        self.deferred_indexes = deferred_indexes
        self.parent = self._table("fingerprint_index", postgresql_partition_by="RANGE (row_number)")
        self.partitions: dict[int, Table] = {}
        self.newest: int | None = None
        self.id_digests = StoredKeyDigests(expected_rows)
        self.fingerprint_digests = StoredKeyDigests(expected_rows)
        self.load_seconds = 0.0
        self.loaded_rows = 0
        self.closes: list[PartitionClose] = []

    @staticmethod
    def _table(name: str, **options: str) -> Table:
        return Table(name, MetaData(), Column("row_number", BigInteger, nullable=False),
                     Column("activity_id", activities.c.activity_id.type, nullable=False),
                     Column("fingerprint", activities.c.fingerprint.type, nullable=False), **options)

    def create(self, conn: Connection) -> None:
        self.parent.metadata.drop_all(conn)
        self.parent.metadata.create_all(conn)
        conn.commit()

    def partition_of(self, row_number: int) -> int:
        return row_number // self.partition_rows

    def make_room(self, conn: Connection, row_number: int) -> None:
        """The partition of this row number, made if it is new (closing the one before)."""
        partition = self.partition_of(row_number)
        if partition in self.partitions:
            return
        assert self.newest is None or partition > self.newest, "partitions open in row order"
        if self.newest is not None and self.deferred_indexes:
            self._build_indexes(conn, self.newest)
        name = f"fingerprint_index_p{partition:05d}"
        conn.execute(text(f"CREATE TABLE {name} PARTITION OF fingerprint_index FOR VALUES FROM "
                          f"({partition * self.partition_rows}) TO ({(partition + 1) * self.partition_rows})"))
        conn.commit()
        self.partitions[partition] = self._table(name)
        self.newest = partition
        if not self.deferred_indexes:
            self._build_indexes(conn, partition)

    def _build_indexes(self, conn: Connection, partition: int) -> None:
        name = self.partitions[partition].name
        started = time.perf_counter()
        conn.execute(text("SET maintenance_work_mem = '1GB'"))
        for column in ("activity_id", "fingerprint"):
            conn.execute(text(f"CREATE UNIQUE INDEX {name}_{column} ON {name} ({column})"))
        rows = conn.execute(text(f"SELECT count(*) FROM {name}")).scalar_one()
        conn.commit()
        self.closes.append(PartitionClose(partition, rows, time.perf_counter() - started))

    def fill(self, conn: Connection, first: int, rows: int) -> None:
        assert self.partition_of(first) == self.newest, "a fill writes the newest partition"
        fill_rows(conn, first, rows, with_row_number=True)

    def insert(self, conn: Connection, rows: list[dict[str, object]], row_number: int) -> None:
        """Insert as the writer would: into the newest partition, then note the digests (noting a
        value whose commit then failed would only cost a query: a digest may be a false candidate)."""
        partition = self.partition_of(row_number)
        assert partition == self.newest, "the writer writes the newest partition"
        with conn.begin():  # COPY goes to the driver's connection: only a begun transaction commits it
            insert_rows(conn, self.parent, [{"row_number": row_number, **row} for row in rows])
        self.id_digests.add_many((row["activity_id"] for row in rows), partition)
        self.fingerprint_digests.add_many((row["fingerprint"] for row in rows), partition)
        self.loaded_rows += len(rows)

    def load_digests(self, conn: Connection, first: int, rows: int) -> None:
        """Read back rows [first, first + rows) of one partition into the digests, as a writer
        reads every stored row at its start."""
        partition = self.partition_of(first)
        assert self.partition_of(first + rows - 1) == partition, "a loaded chunk lies in one partition"
        started = time.perf_counter()
        t = self.parent
        result = conn.execution_options(stream_results=True, yield_per=50_000).execute(
            select(t.c.activity_id, t.c.fingerprint).where(t.c.row_number >= first, t.c.row_number < first + rows))
        for chunk in result.partitions():
            self.id_digests.add_many((row[0] for row in chunk), partition)
            self.fingerprint_digests.add_many((row[1] for row in chunk), partition)
        self.load_seconds += time.perf_counter() - started
        self.loaded_rows += rows
        assert len(self.id_digests) == len(self.fingerprint_digests) == self.loaded_rows

    def present(self, conn: Connection, column: str, values: list[str]) -> set[str]:
        def present_in(partition: int, candidates: list[str]) -> set[str]:
            stored = self.partitions[partition].c[column]
            if self.deferred_indexes and partition == self.newest:  # no index yet: one scan for all candidates
                return values_present(conn, stored, candidates, array_values=len(candidates))
            return values_present(conn, stored, candidates)

        return values_present_by_digests(self.id_digests if column == "activity_id" else self.fingerprint_digests,
                                         present_in, values)

    def size_bytes(self, conn: Connection) -> int:
        return int(conn.execute(text("SELECT coalesce(sum(pg_total_relation_size(inhrelid)), 0) FROM pg_inherits "
                                     "WHERE inhparent = 'fingerprint_index'::regclass")).scalar_one())  # a sum is numeric


@dataclass(slots=True)
class PartitionClose:
    partition: int
    rows: int
    seconds: float  # building its two unique indexes (with --deferred-indexes, as the next one opens)


@dataclass(slots=True)
class FillChunk:
    rows_before: int
    rows: int
    fill_rows_per_s: float


@dataclass(slots=True)
class Probe:
    rows_stored: int
    lookup_records: int
    lookup_ms: float  # ids and fingerprints of one chunk, half of them stored, by values_present
    lookup_records_per_s: float
    lookup_new_records_per_s: float  # a chunk none of whose ids or fingerprints is stored: an upload's usual case
    insert_records: int
    insert_ms: float  # by insert_rows
    insert_records_per_s: float
    table_and_indexes_mib: float


def stored_fingerprint(n: int) -> str:
    """What the fill stores for row n: PostgreSQL's encode(sha256(int8send(n)), 'hex')."""
    return hashlib.sha256(struct.pack(">q", n)).hexdigest()


def fill_rows(conn: Connection, first: int, rows: int, *, with_row_number: bool) -> None:
    """Rows first .. first + rows - 1, made on the server: id "a-n", fingerprint stored_fingerprint(n)."""
    columns, values = ("row_number, ", "n, ") if with_row_number else ("", "")
    conn.execute(text(f"INSERT INTO fingerprint_index ({columns}activity_id, fingerprint) SELECT {values}'a-' || n, "
                      "encode(sha256(int8send(n)), 'hex') FROM generate_series(CAST(:first AS bigint), CAST(:last AS bigint)) AS n"),
                 {"first": first, "last": first + rows - 1})


def fill(conn: Connection, index: "SingleIndex | PartitionedIndex", first: int, rows: int) -> FillChunk:
    started = time.perf_counter()
    index.fill(conn, first, rows)
    conn.commit()
    return FillChunk(first, rows, rows / (time.perf_counter() - started))


def probe(engine: Engine, index: "SingleIndex | PartitionedIndex", stored: int, records: int, rng: random.Random) -> Probe:
    hits = [rng.randrange(stored) for _ in range(records // 2)]
    misses = [f"{rng.getrandbits(256):064x}" for _ in range(records - len(hits))]
    ids = [f"a-{n}" for n in hits] + [f"miss-{stored}-{i}" for i in range(len(misses))]
    fingerprints = [stored_fingerprint(n) for n in hits] + misses
    with engine.connect() as conn:
        started = time.perf_counter()
        found_ids = index.present(conn, "activity_id", ids)
        found_fingerprints = index.present(conn, "fingerprint", fingerprints)
        lookup_s = time.perf_counter() - started
    assert found_ids == {f"a-{n}" for n in hits}, "the lookup missed stored ids or found absent ones"
    assert found_fingerprints == {stored_fingerprint(n) for n in hits}, "the lookup disagrees with the fill"
    new_ids = [f"fresh-{stored}-{i}" for i in range(records)]
    new_fingerprints = [f"{rng.getrandbits(256):064x}" for _ in range(records)]
    with engine.connect() as conn:
        started = time.perf_counter()
        found_new = index.present(conn, "activity_id", new_ids) | index.present(conn, "fingerprint", new_fingerprints)
        lookup_new_s = time.perf_counter() - started
    assert not found_new, "the lookup found values never stored"
    rows = [{"activity_id": f"new-{stored}-{i}", "fingerprint": f"{rng.getrandbits(256):064x}"} for i in range(records)]
    with engine.connect() as conn:
        started = time.perf_counter()
        index.insert(conn, rows, stored - 1)  # the row number of the last row filled: into the newest partition
        insert_s = time.perf_counter() - started
        size_bytes = index.size_bytes(conn)
    with engine.connect() as conn:
        inserted = [rows[0]["activity_id"], rows[-1]["activity_id"]]
        assert index.present(conn, "activity_id", inserted) == set(inserted), "the inserted rows were not committed"
    return Probe(stored, records, 1000 * lookup_s, records / lookup_s, records / lookup_new_s, records, 1000 * insert_s,
                 records / insert_s, size_bytes / 2**20)


def run(url: str, rows: int, chunk: int, probes: list[int], probe_records: int, seed: int, uniqueness: str = "btree",
        partition_rows: int = 0, deferred_indexes: bool = False) -> dict:
    """partition_rows 0: the single table of --layout single; else --layout partitioned."""
    engine = create_engine(url)
    index = PartitionedIndex(partition_rows, rows, deferred_indexes) if partition_rows else SingleIndex(uniqueness)
    with engine.connect() as conn:
        index.create(conn)
    rng = random.Random(seed)
    chunks: list[FillChunk] = []
    measured: list[Probe] = []
    started = time.perf_counter()
    stored = 0
    pending_probes = sorted(p for p in set(probes) if 0 < p <= rows)
    while stored < rows:
        size = min(chunk, rows - stored, (pending_probes[0] - stored) if pending_probes else chunk)
        if partition_rows:  # a chunk lies in one partition, and its digests are loaded as it is filled
            size = min(size, partition_rows - stored % partition_rows)
        with engine.connect() as conn:
            index.make_room(conn, stored)
            chunks.append(fill(conn, index, stored, size))
            if partition_rows:
                index.load_digests(conn, stored, size)
        stored += size
        if pending_probes and stored == pending_probes[0]:
            pending_probes.pop(0)
            with engine.connect() as conn:
                conn.execute(text("ANALYZE fingerprint_index"))
                conn.commit()
            measured.append(probe(engine, index, stored, probe_records, rng))
            print(f"{stored:>12,} rows: lookup {measured[-1].lookup_records_per_s:,.0f} records/s "
                  f"(new: {measured[-1].lookup_new_records_per_s:,.0f}), insert "
                  f"{measured[-1].insert_records_per_s:,.0f} records/s, fill {chunks[-1].fill_rows_per_s:,.0f} rows/s, "
                  f"{measured[-1].table_and_indexes_mib:,.0f} MiB", file=sys.stderr)
    engine.dispose()
    assert stored == rows and len(measured) == len([p for p in set(probes) if 0 < p <= rows])
    report = {"rows": rows, "layout": "partitioned" if partition_rows else "single", "uniqueness": uniqueness, "chunk": chunk,
              "probe_records": probe_records, "seconds": time.perf_counter() - started,
              "fill": [asdict(c) for c in chunks], "probes": [asdict(p) for p in measured],
              "slowest_fill_rows_per_s": min(c.fill_rows_per_s for c in chunks),
              "slowest_lookup_records_per_s": min(p.lookup_records_per_s for p in measured),
              "slowest_lookup_new_records_per_s": min(p.lookup_new_records_per_s for p in measured),
              "slowest_insert_records_per_s": min(p.insert_records_per_s for p in measured)}
    if isinstance(index, PartitionedIndex):
        report |= {"partition_rows": partition_rows, "partitions": len(index.partitions), "deferred_indexes": deferred_indexes,
                   "closes": [asdict(c) for c in index.closes],
                   "slowest_close_rows_per_s": min((c.rows / c.seconds for c in index.closes if c.rows), default=None),
                   "digests_loaded_rows_per_s": index.loaded_rows / index.load_seconds if index.load_seconds else None,
                   "digests_mib": (index.id_digests.memory_bytes() + index.fingerprint_digests.memory_bytes()) / 2**20}
    return report


def probe_sizes(rows: int) -> list[int]:
    """10^4, 10^5, ... and each tenth of the way from 10^7 on, and the last size."""
    sizes = {10**k for k in range(4, 10) if 10**k <= rows} | {rows}
    if rows >= 10**7:
        sizes |= {rows * k // 10 for k in range(1, 10)}
    return sorted(sizes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000, help=f"rows to grow the index to (at most {MAX_ROWS:,})")
    parser.add_argument("--chunk", type=int, default=1_000_000, help="rows a fill step adds")
    parser.add_argument("--probe-records", type=int, default=20_000, help="records of a probe's lookup and insert")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--database-url", help="an empty PostgreSQL database of yours (default: a throwaway local cluster)")
    parser.add_argument("--pg-setting", action="append", default=[], metavar="NAME=VALUE",
                        help="a postgresql.conf setting of the throwaway cluster, repeatable (e.g. shared_buffers=6GB)")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "out", help="where the JSON report is also written")
    parser.add_argument("--uniqueness", choices=("btree", "hash"), default="btree",
                        help="unique B-tree indexes as the registry has them (default), or exclusion constraints over hash indexes")
    parser.add_argument("--layout", choices=("single", "partitioned"), default="single",
                        help="one table (default), or partitions by row number with the writer's digests (see above)")
    parser.add_argument("--partition-rows", type=int, default=4_000_000, help="rows of a partition, with --layout partitioned")
    parser.add_argument("--deferred-indexes", action="store_true",
                        help="with --layout partitioned: build a partition's unique indexes when the next one opens")
    args = parser.parse_args()
    settings = dict(setting.split("=", 1) for setting in args.pg_setting if "=" in setting)
    if len(settings) != len(args.pg_setting) or (settings and args.database_url):
        parser.error("--pg-setting is NAME=VALUE, for the throwaway cluster only")
    if not 0 < args.rows <= MAX_ROWS or args.chunk <= 0 or args.probe_records < 2:
        parser.error("--rows in 1..10^9, --chunk above 0, --probe-records at least 2")
    if args.layout == "partitioned" and (args.uniqueness != "btree" or args.partition_rows <= 0
                                         or args.rows // args.partition_rows > MAX_PARTITION):
        parser.error(f"--layout partitioned: unique B-trees, --partition-rows above 0 and at most {MAX_PARTITION + 1:,} partitions")
    if args.deferred_indexes and args.layout != "partitioned":
        parser.error("--deferred-indexes is for --layout partitioned")
    partition_rows = args.partition_rows if args.layout == "partitioned" else 0
    if args.database_url:
        report = run(args.database_url, args.rows, args.chunk, probe_sizes(args.rows), args.probe_records, args.seed, args.uniqueness,
                     partition_rows, args.deferred_indexes)
    else:
        sys.path.insert(0, str(REPO / "tests"))
        from pg_cluster import PostgresCluster
        with PostgresCluster(settings=settings) as cluster:
            report = run(cluster.create_database("bench_fingerprints"), args.rows, args.chunk, probe_sizes(args.rows),
                         args.probe_records, args.seed, args.uniqueness, partition_rows, args.deferred_indexes)
    report["command"] = " ".join([os.path.basename(sys.argv[0]), *sys.argv[1:]])
    report["pg_settings"] = settings
    args.out.mkdir(parents=True, exist_ok=True)
    variant = (f"partitioned{partition_rows}{'-deferred' if args.deferred_indexes else ''}" if partition_rows
               else args.uniqueness)
    (args.out / f"bench_fingerprints-{variant}-r{args.rows}.json").write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
