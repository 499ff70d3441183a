"""Ledger append rate against the raw cost of the same work, and proof times by tree size.

    .venv/bin/python bench/bench_ledger.py --events 100000 [--postgres | --database-url URL]
    .venv/bin/python bench/bench_ledger.py --events 1000000 --postgres --proofs-only

Appends N signed transfers through Registry.append_many (groups of --group events, one
transaction each) on SQLite (WAL, synchronous=FULL), and the same events through the "raw" path:
JCS of the signed message + Ed25519 verify + JCS of the leaf + SHA-256 + one insert per event, in
transactions of the same size, no rules. Signing happens before the clock starts. Then it times
inclusion and consistency proofs from the stored tree at 10^3, 10^4, ... up to N leaves.
With --postgres (a throwaway local cluster, tests/pg_cluster.py, started as the `postgres` user
when run as root) or --database-url (an empty PostgreSQL database of yours), the same run
repeats on PostgreSQL, raw path included, in the same process: both backends' ratios side by side.
Reports one run, as ratios; nothing here is a pass/fail test.

--proofs-only skips the append and raw rates and times only the proofs, on a registry of --events
transfers appended once through Registry.append_many on SQLite and cached under --out (the first
run takes as long as the SQLite half of a full run; later runs reuse it). PostgreSQL gets the same
registry bulk-loaded: its schema created by the store, every table's rows copied in with COPY,
then ANALYZE (as autovacuum would have done on a server that grew the log itself). Appending 10^6
events to PostgreSQL one group at a time takes most of an hour on a busy machine; the proofs read
only the committed tree, which COPY stores row for row as the appends would have.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import hashlib
import json
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Protocol

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nacl.signing import VerifyKey  # noqa: E402
from sqlalchemy import inspect  # noqa: E402

from keys import Ed25519Key  # noqa: E402
from ledger import merkle  # noqa: E402
from ledger.canonical import jcs  # noqa: E402
from ledger.registry import Registry  # noqa: E402
from ledger.store import Store, metadata  # noqa: E402
from ledger.rules import signing_message  # noqa: E402
from service.actors import Actor, Client  # noqa: E402
from service.hubei import HUBEI_RULES  # noqa: E402

ORIGIN = "bench.hubei.example/puhui"


def build_registry(url: str) -> tuple[Registry, Client, Actor]:
    root, admin, holder = (Actor(Ed25519Key.from_label(f"puhui-bench/{n}"), n) for n in ("root", "admin", "holder"))
    log = Ed25519Key.from_label("puhui-bench/log")
    registry = Registry.create(url, log_format=1, origin=ORIGIN, name="bench", rules=HUBEI_RULES,
                               root_signer=root.signer, log_public_key=log.public_key, log_signer=log)
    client = Client(registry)
    client.register_key(root, admin, ["admin"])
    client.register_key(admin, holder, [])
    client.open_account(admin, "source", "enterprise", "source", "420100", [holder])
    client.open_account(admin, "sink", "enterprise", "sink", "420100", [holder])
    client.register_methodology(admin, "HB-X", 1, "bench", "other", {}, False)
    client.issue(admin, "iss-bench", "source", "HB-X", 2026, "420100", 10**15, evidence="0" * 64)
    return registry, client, holder


def signed_transfers(client: Client, holder: Actor, start: int, count: int) -> list[dict]:
    return [client.signed(holder, "transfer", {"transfer_id": f"t{i}", "from": "source", "to": "sink", "amount_g": 1,
                                               "request_id": f"r{i}"}) for i in range(start, start + count)]


class RawStore(Protocol):
    def insert(self, rows: list[tuple[int, bytes, bytes]]) -> None: ...


class RawSqlite:
    """The raw path's table on SQLite, as the registry's (WAL, synchronous=FULL)."""

    def __init__(self, path: Path):
        self.conn = sqlite3.connect(path, isolation_level=None)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=FULL")
        self.conn.execute("CREATE TABLE events (seq INTEGER PRIMARY KEY, leaf BLOB NOT NULL, leaf_hash BLOB NOT NULL)")
        self.conn.isolation_level = ""

    def insert(self, rows: list[tuple[int, bytes, bytes]]) -> None:
        with self.conn:
            self.conn.executemany("INSERT INTO events (seq, leaf, leaf_hash) VALUES (?, ?, ?)", rows)


class RawPostgres:
    """The raw path's table in a PostgreSQL database (a commit per group, synchronous_commit on)."""

    def __init__(self, url: str):
        import psycopg
        self.conn = psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"))
        with self.conn.transaction():
            self.conn.execute("CREATE TABLE raw_events (seq BIGINT PRIMARY KEY, leaf BYTEA NOT NULL, leaf_hash BYTEA NOT NULL)")

    def insert(self, rows: list[tuple[int, bytes, bytes]]) -> None:
        with self.conn.transaction(), self.conn.cursor() as cursor:
            cursor.executemany("INSERT INTO raw_events (seq, leaf, leaf_hash) VALUES (%s, %s, %s)", rows)


def raw_append(raw: RawStore, events: list[dict], verify_key: VerifyKey, first_seq: int) -> None:
    """The floor: what any registry must do per event, without rules, projections or a tree."""
    rows = []
    for offset, event in enumerate(events):
        message = signing_message(ORIGIN, event["type"], event["body"], 1)
        verify_key.verify(message, base64.b64decode(event["auth"]["sig"]))
        leaf = jcs({**event, "seq": first_seq + offset, "time": "2026-04-01T00:00:00.000000Z"})
        rows.append((first_seq + offset, leaf, hashlib.sha256(b"\x00" + leaf).digest()))
    raw.insert(rows)


def proofs_json(proofs: list[tuple[int, float, float]]) -> list[dict]:
    return [{"tree_size": n, "inclusion_ms": round(i * 1e3, 3), "consistency_ms": round(c * 1e3, 3)} for n, i, c in proofs]


def machine() -> dict:
    return {"python": sys.version.split()[0], "cpus": os.cpu_count(), "date": dt.date.today().isoformat()}


def time_proofs(registry: Registry, sizes: list[int], samples: int) -> list[tuple[int, float, float]]:
    rng = random.Random(1)
    results = []
    for size in sizes:
        t0 = time.perf_counter()
        for _ in range(samples):
            registry.inclusion_proof(rng.randrange(size), size)
        inclusion_s = (time.perf_counter() - t0) / samples
        t0 = time.perf_counter()
        for _ in range(samples):
            registry.consistency_proof(rng.randrange(1, size), size)
        consistency_s = (time.perf_counter() - t0) / samples
        results.append((size, inclusion_s, consistency_s))
    return results


def run_backend(backend: str, registry_url: str, raw: RawStore, events_total: int, group: int,
                samples: int) -> dict:
    """The append and raw rates and the proof times on one backend."""
    registry, client, holder = build_registry(registry_url)
    verify_key = VerifyKey(bytes(holder.signer.public_key))
    ledger_s = raw_s = 0.0
    done = 0
    while done < events_total:
        count = min(group, events_total - done)
        events = signed_transfers(client, holder, done, count)
        t0 = time.perf_counter()
        raw_append(raw, events, verify_key, done)
        raw_s += time.perf_counter() - t0
        t0 = time.perf_counter()
        results = registry.append_many([(e, None) for e in events])
        ledger_s += time.perf_counter() - t0
        assert all(not hasattr(r, "code") for r in results), results[0]
        done += count
        print(f"\r{backend}: {done}/{events_total} events", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    registry.checkpoint()
    ledger_rate, raw_rate = events_total / ledger_s, events_total / raw_s
    sizes = [n for n in (10**3, 10**4, 10**5, 10**6) if n <= registry.size]
    proofs = time_proofs(registry, sizes, samples)
    registry.close()
    return {"backend": backend, "ledger_events_per_s": round(ledger_rate), "raw_events_per_s": round(raw_rate),
            "ledger_to_raw_ratio": round(ledger_rate / raw_rate, 3),
            "proofs_ms": proofs_json(proofs)}


def cached_registry(out: Path, events_total: int, group: int) -> Path:
    """A SQLite registry of events_total transfers and a checkpoint, built once (append_many in
    groups, as run_backend appends) and kept under out; a partial one is built again."""
    path = out / f"ledger-proofs-e{events_total}.sqlite3"
    complete = path.with_suffix(".complete")
    if complete.exists():
        return path
    for stale in out.glob(path.name + "*"):
        stale.unlink()
    out.mkdir(parents=True, exist_ok=True)
    registry, client, holder = build_registry(f"sqlite:///{path}")
    done = 0
    while done < events_total:
        count = min(group, events_total - done)
        results = registry.append_many([(e, None) for e in signed_transfers(client, holder, done, count)])
        assert all(not hasattr(r, "code") for r in results), results[0]
        done += count
        print(f"\rbuilding {path.name}: {done}/{events_total} events", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    registry.checkpoint()
    registry.close()
    complete.write_text(f"{events_total} transfers\n")
    return path


def bulk_load(sqlite_path: Path, url: str) -> None:
    """Every table of the SQLite registry copied into the empty PostgreSQL database at url."""
    import psycopg

    source = Store.connect(f"sqlite:///{sqlite_path}")
    Store.connect(url).create_schema()
    # A cache built before a projection table was added lacks it: the table stays empty here, as
    # a registry's writer fills such a table at its first start (the proofs read the tree alone).
    held = set(inspect(source.engine).get_table_names())
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as target:
        with source.engine.connect() as conn:
            for table in [t for t in metadata.sorted_tables if t.name in held]:
                if table.name == "checkpoint_head":  # the one mutable row, which create_schema wrote
                    size = conn.execute(table.select()).one().tree_size
                    target.execute("UPDATE checkpoint_head SET tree_size = %s WHERE id = 1", (size,))
                    continue
                names = ", ".join(f'"{column.name}"' for column in table.columns)
                with target.cursor() as cursor, cursor.copy(f'COPY "{table.name}" ({names}) FROM STDIN') as copy:
                    for row in conn.execute(table.select()):
                        copy.write_row(tuple(row))
                print(f"copied {table.name}", file=sys.stderr)
        target.commit()
        target.autocommit = True
        target.execute("ANALYZE")
    source.close()


def proofs_backend(backend: str, url: str, samples: int) -> dict:
    """The proof times on a registry already stored at url (--proofs-only)."""
    registry = Registry.open(url)
    sizes = [n for n in (10**3, 10**4, 10**5, 10**6) if n <= registry.size]
    proofs = time_proofs(registry, sizes, samples)
    registry.close()
    return {"backend": backend, "proofs_ms": proofs_json(proofs)}


def proofs_only(args: argparse.Namespace) -> list[dict]:
    sqlite_path = cached_registry(Path(args.out), args.events, args.group)
    backends = [proofs_backend("sqlite", f"sqlite:///{sqlite_path}", args.samples)]
    if args.postgres:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
        from pg_cluster import PostgresCluster
        with PostgresCluster() as cluster:
            url = cluster.create_database("bench_ledger")
            bulk_load(sqlite_path, url)
            backends.append(proofs_backend("postgresql", url, args.samples))
    elif args.database_url:
        bulk_load(sqlite_path, args.database_url)
        backends.append(proofs_backend("postgresql", args.database_url, args.samples))
    return backends


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=100_000, help="transfers to append (10^3 .. 10^6)")
    parser.add_argument("--group", type=int, default=1000, help="events per transaction (group commit)")
    parser.add_argument("--samples", type=int, default=200, help="proofs timed at each size")
    parser.add_argument("--postgres", action="store_true", help="also on a throwaway local PostgreSQL cluster")
    parser.add_argument("--database-url", help="also on this empty PostgreSQL database (postgresql+psycopg://...)")
    parser.add_argument("--proofs-only", action="store_true",
                        help="time only the proofs, on a registry built once and cached under --out (PostgreSQL bulk-loaded)")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "out"), help="--proofs-only's cache")
    args = parser.parse_args()
    if not 1_000 <= args.events <= 1_000_000:
        parser.error("--events must be in 10^3 .. 10^6")
    if args.postgres and args.database_url:
        parser.error("--postgres or --database-url, not both")
    if args.proofs_only:
        report = {"events": args.events, "proofs_only": True, "backends": proofs_only(args), "machine": machine()}
        print(json.dumps(report, indent=1))
        return
    workdir = Path(tempfile.mkdtemp(prefix="puhui-bench-"))
    backends = [run_backend("sqlite", f"sqlite:///{workdir / 'ledger.sqlite3'}", RawSqlite(workdir / "raw.sqlite3"),
                            args.events, args.group, args.samples)]
    if args.postgres:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
        from pg_cluster import PostgresCluster
        with PostgresCluster() as cluster:
            url = cluster.create_database("bench_ledger")
            backends.append(run_backend("postgresql", url, RawPostgres(url), args.events, args.group, args.samples))
    elif args.database_url:
        backends.append(run_backend("postgresql", args.database_url, RawPostgres(args.database_url), args.events,
                                    args.group, args.samples))
    report = {"events": args.events, "group": args.group, "backends": backends, "machine": machine()}
    print(json.dumps(report, indent=1))
    for result in backends:
        print(f"{result['backend']}: append path {result['ledger_events_per_s']:,} events/s, raw path "
              f"{result['raw_events_per_s']:,} events/s, ratio {result['ledger_to_raw_ratio']:.2f} (goal >= 0.5)")
        for proof in result["proofs_ms"]:
            print(f"  tree size {proof['tree_size']:>9,}: inclusion {proof['inclusion_ms']:.3f} ms, "
                  f"consistency {proof['consistency_ms']:.3f} ms")


if __name__ == "__main__":
    main()
