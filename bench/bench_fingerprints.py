"""The registry's fingerprint and activity-id index on PostgreSQL as it grows to 10^8 rows (issue 15).

    .venv/bin/python bench/bench_fingerprints.py --rows 100000000            # a throwaway local cluster
    .venv/bin/python bench/bench_fingerprints.py --rows 1000000 --database-url URL
    .venv/bin/python bench/bench_fingerprints.py --rows 100000000 --pg-setting shared_buffers=6GB ...

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

from sqlalchemy import Column, MetaData, Table, create_engine, text
from sqlalchemy.engine import Connection, Engine

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ledger.store import activities, insert_rows, values_present  # noqa: E402

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


@dataclass(slots=True)
class FillChunk:
    rows_before: int
    rows: int
    fill_rows_per_s: float


@dataclass(slots=True)
class Probe:
    rows_stored: int
    lookup_records: int
    lookup_ms: float  # ids and fingerprints of one chunk, by values_present
    lookup_records_per_s: float
    insert_records: int
    insert_ms: float  # by insert_rows
    insert_records_per_s: float
    table_and_indexes_mib: float


def stored_fingerprint(n: int) -> str:
    """What the fill stores for row n: PostgreSQL's encode(sha256(int8send(n)), 'hex')."""
    return hashlib.sha256(struct.pack(">q", n)).hexdigest()


def fill(conn: Connection, first: int, rows: int) -> FillChunk:
    started = time.perf_counter()
    conn.execute(text("INSERT INTO fingerprint_index (activity_id, fingerprint) "
                      "SELECT 'a-' || n, encode(sha256(int8send(n)), 'hex') FROM generate_series(CAST(:first AS bigint), CAST(:last AS bigint)) AS n"),
                 {"first": first, "last": first + rows - 1})
    conn.commit()
    return FillChunk(first, rows, rows / (time.perf_counter() - started))


def probe(engine: Engine, fingerprint_index: Table, stored: int, records: int, rng: random.Random) -> Probe:
    hits = [rng.randrange(stored) for _ in range(records // 2)]
    misses = [f"{rng.getrandbits(256):064x}" for _ in range(records - len(hits))]
    ids = [f"a-{n}" for n in hits] + [f"miss-{stored}-{i}" for i in range(len(misses))]
    fingerprints = [stored_fingerprint(n) for n in hits] + misses
    with engine.connect() as conn:
        started = time.perf_counter()
        found_ids = values_present(conn, fingerprint_index.c.activity_id, ids)
        found_fingerprints = values_present(conn, fingerprint_index.c.fingerprint, fingerprints)
        lookup_s = time.perf_counter() - started
    assert found_ids == {f"a-{n}" for n in hits}, "the lookup missed stored ids or found absent ones"
    assert found_fingerprints == {stored_fingerprint(n) for n in hits}, "the lookup disagrees with the fill"
    rows = [{"activity_id": f"new-{stored}-{i}", "fingerprint": f"{rng.getrandbits(256):064x}"} for i in range(records)]
    with engine.connect() as conn:
        started = time.perf_counter()
        insert_rows(conn, fingerprint_index, rows)
        conn.commit()
        insert_s = time.perf_counter() - started
        size_bytes = conn.execute(text("SELECT pg_total_relation_size('fingerprint_index')")).scalar_one()
    return Probe(stored, records, 1000 * lookup_s, records / lookup_s, records, 1000 * insert_s, records / insert_s,
                 size_bytes / 2**20)


def run(url: str, rows: int, chunk: int, probes: list[int], probe_records: int, seed: int, uniqueness: str = "btree") -> dict:
    engine = create_engine(url)
    fingerprint_index = index_table(uniqueness)
    fingerprint_index.metadata.drop_all(engine)
    fingerprint_index.metadata.create_all(engine)
    rng = random.Random(seed)
    chunks: list[FillChunk] = []
    measured: list[Probe] = []
    started = time.perf_counter()
    stored = 0
    pending_probes = sorted(p for p in set(probes) if 0 < p <= rows)
    while stored < rows:
        size = min(chunk, rows - stored, (pending_probes[0] - stored) if pending_probes else chunk)
        with engine.connect() as conn:
            chunks.append(fill(conn, stored, size))
        stored += size
        if pending_probes and stored == pending_probes[0]:
            pending_probes.pop(0)
            with engine.connect() as conn:
                conn.execute(text("ANALYZE fingerprint_index"))
                conn.commit()
            measured.append(probe(engine, fingerprint_index, stored, probe_records, rng))
            print(f"{stored:>12,} rows: lookup {measured[-1].lookup_records_per_s:,.0f} records/s, insert "
                  f"{measured[-1].insert_records_per_s:,.0f} records/s, fill {chunks[-1].fill_rows_per_s:,.0f} rows/s, "
                  f"{measured[-1].table_and_indexes_mib:,.0f} MiB", file=sys.stderr)
    engine.dispose()
    assert stored == rows and len(measured) == len([p for p in set(probes) if 0 < p <= rows])
    return {"rows": rows, "uniqueness": uniqueness, "chunk": chunk, "probe_records": probe_records, "seconds": time.perf_counter() - started,
            "fill": [asdict(c) for c in chunks], "probes": [asdict(p) for p in measured],
            "slowest_fill_rows_per_s": min(c.fill_rows_per_s for c in chunks),
            "slowest_lookup_records_per_s": min(p.lookup_records_per_s for p in measured),
            "slowest_insert_records_per_s": min(p.insert_records_per_s for p in measured)}


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
    args = parser.parse_args()
    settings = dict(setting.split("=", 1) for setting in args.pg_setting if "=" in setting)
    if len(settings) != len(args.pg_setting) or (settings and args.database_url):
        parser.error("--pg-setting is NAME=VALUE, for the throwaway cluster only")
    if not 0 < args.rows <= MAX_ROWS or args.chunk <= 0 or args.probe_records < 2:
        parser.error("--rows in 1..10^9, --chunk above 0, --probe-records at least 2")
    if args.database_url:
        report = run(args.database_url, args.rows, args.chunk, probe_sizes(args.rows), args.probe_records, args.seed, args.uniqueness)
    else:
        sys.path.insert(0, str(REPO / "tests"))
        from pg_cluster import PostgresCluster
        with PostgresCluster(settings=settings) as cluster:
            report = run(cluster.create_database("bench_fingerprints"), args.rows, args.chunk, probe_sizes(args.rows),
                         args.probe_records, args.seed, args.uniqueness)
    report["command"] = " ".join([os.path.basename(sys.argv[0]), *sys.argv[1:]])
    report["pg_settings"] = settings
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"bench_fingerprints-{args.uniqueness}-r{args.rows}.json").write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
