"""Ingestion throughput against the raw parse-and-hash floor, as a ratio.

    .venv/bin/python bench/bench_ingest.py [--records N | --input FILE] [--format jsonl|csv]
        [--workers W ...] [--log-formats 1 2] [--out DIR]

Generates N synthetic metro records (deterministic; about 1 % cross-platform duplicates and a
few subjects over their daily cap, so every check runs), writes them to a file, then times in
the same process:
- raw: read each line, json.loads, JCS (sorted json.dumps), two SHA-256 (the fingerprint and
  the leaf hash): the least any ingestion must do;
- ingest: quantify.ingest end to end, from the file to batch files, rejection file and roots;
- with --registry: `puhui ingest`'s path (service.ingestion.ingest_against_log) against a SQLite
  registry database whose activities table already holds --logged records of another platform
  (every 50th act of the file among them, so duplicates and daily totals come from the log).
Reports records/s for each and its ratio to raw, and the CPU time it took (this process and its
workers: the machine may be busy, CPU time is steadier than the clock); with several --workers
values, one ingest per value against the same raw measurement. --input FILE takes the records of
an earlier run (e.g. bench/out/ingest/records.jsonl, copied out of --out) instead of writing them. With --log-formats 1 2, each ingest is timed writing
format-1 records and format-2 records (daily pseudonyms, keyed fingerprints, public inputs and
openings: quantify.private; distance_m public, the stations not, as in spec 7.2's example), and the
ratio format-2/format-1 is printed. Output goes to bench/out/ (git-ignored) by default.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import hashlib
import json
import os
import platform
import resource
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ledger.store import Store, sqlite_url  # noqa: E402
from quantify.activity import activity_record  # noqa: E402
from quantify.ingest import ingest_file  # noqa: E402
from quantify.methodology import load_shipped  # noqa: E402
from quantify.private import SchemeKeys  # noqa: E402
from service.ingestion import ingest_against_log  # noqa: E402

METHODOLOGY = "HB-GT-METRO"
SUBJECTS = 200_000
BENCH_KEYS = SchemeKeys(hashlib.sha256(b"bench hub key").digest(), hashlib.sha256(b"bench fingerprint key").digest())


def synthetic_records(n: int):
    """Deterministic raw records: distinct acts, except every 97th repeats an earlier act under a
    new activity id (a second platform reporting the same ride)."""
    for i in range(n):
        act = i - 1 if i % 97 == 96 else i
        subject = f"p-{act % SUBJECTS:08x}"
        day = 1 + (act // SUBJECTS) % 28
        minute = (act // 7) % 1440
        yield {
            "activity_id": f"wh-{i:010d}",
            "subject": subject,
            "occurred_at": f"2026-01-{day:02d}T{minute // 60:02d}:{minute % 60:02d}:{act % 60:02d}.000000Z",
            "inputs": {"distance_m": 800 + (act * 7919) % 30_000, "entry_station": f"S{act % 180:03d}",
                       "exit_station": f"S{(act * 31) % 180:03d}"},
        }


def write_input(path: Path, n: int, fmt: str) -> None:
    with open(path, "w", encoding="utf-8", newline="") as out:
        if fmt == "jsonl":
            for record in synthetic_records(n):
                out.write(json.dumps(record, separators=(",", ":")) + "\n")
        else:
            writer = csv.writer(out, lineterminator="\n")
            writer.writerow(["activity_id", "subject", "occurred_at", "distance_m", "entry_station", "exit_station"])
            for r in synthetic_records(n):
                i = r["inputs"]
                writer.writerow([r["activity_id"], r["subject"], r["occurred_at"], i["distance_m"],
                                 i["entry_station"], i["exit_station"]])


def raw_floor(path: Path, fmt: str) -> int:
    """Parse, canonicalize and hash twice per record; returns the records seen."""
    n = 0
    sha256 = hashlib.sha256
    if fmt == "jsonl":
        with open(path, "rb") as stream:
            for line in stream:
                value = json.loads(line.decode())
                data = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
                sha256(b"puhui-fingerprint/v1\n" + data).hexdigest()
                sha256(b"\x00" + data).digest()
                n += 1
    else:
        with open(path, encoding="utf-8", newline="") as stream:
            reader = csv.reader(stream)
            header = next(reader)
            for row in reader:
                data = json.dumps(dict(zip(header, row)), sort_keys=True, separators=(",", ":"),
                                  ensure_ascii=False).encode()
                sha256(b"puhui-fingerprint/v1\n" + data).hexdigest()
                sha256(b"\x00" + data).digest()
                n += 1
    return n


class _Registry:
    """What ingest_against_log uses of a Registry: its store and its log's format."""

    def __init__(self, store: Store, log_format: int = 1):
        self.store = store
        self.log_format = log_format


def logged_registry(path: Path, methodology, logged: int) -> _Registry:
    """A registry database whose activities table holds `logged` records of another platform:
    every 50th act of the bench file (as reported elsewhere) and other acts of the same people."""
    store = Store.connect(sqlite_url(str(path)))
    store.create_schema()
    rows = []
    for i, raw in enumerate(synthetic_records(logged * 50)):
        if i % 50:
            continue
        if (i // 50) % 2:  # an act the file does not hold: the same subject, another minute
            raw = {**raw, "occurred_at": raw["occurred_at"][:14] + "59:59.000000Z"}
        record = activity_record(methodology, {**raw, "activity_id": f"other-{i}"})
        rows.append({"activity_id": record["activity_id"], "fingerprint": record["fingerprint"],
                     "batch_id": f"other-{i // 100_000}", "position": i, "methodology_id": methodology.methodology_id,
                     "subject": record["subject"], "occurred_at": record["occurred_at"],
                     "reduction_g": record["reduction_g"], "record": b"{}"})
    with store.engine.begin() as conn:
        store.insert_activities(conn, rows)
    return _Registry(store)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--format", choices=("jsonl", "csv"), default="jsonl")
    parser.add_argument("--workers", type=int, nargs="+", default=[0],
                        help="processes preparing records, one measurement per value (0: in-process)")
    parser.add_argument("--registry", action="store_true",
                        help="also time puhui ingest's path against a registry database (SQLite)")
    parser.add_argument("--logged", type=int, default=20_000, help="records already in that database")
    parser.add_argument("--log-formats", type=int, nargs="+", choices=(1, 2), default=[1],
                        help="the records' format, one measurement per value (2: with the bench's scheme keys)")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "out" / "ingest")
    parser.add_argument("--input", type=Path, help="records of --format written before (not inside --out)")
    args = parser.parse_args()

    if args.input is not None and args.input.resolve().is_relative_to(args.out.resolve()):
        parser.error("--input must not be inside --out, which is emptied first")
    shutil.rmtree(args.out, ignore_errors=True)
    args.out.mkdir(parents=True)
    source = args.input or args.out / f"records.{args.format}"
    if args.input is None:
        write_input(source, args.records, args.format)
    methodology = load_shipped().get(METHODOLOGY)
    marked = dataclasses.replace(methodology, inputs=tuple(dataclasses.replace(f, public=f.name == "distance_m")
                                                           for f in methodology.inputs))

    started = time.perf_counter()
    raw_n = raw_floor(source, args.format)
    raw_s = time.perf_counter() - started

    raw_rate = raw_n / raw_s
    print(f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs, "
          f"{raw_n} {args.format} records, {METHODOLOGY}")
    print(f"raw parse+JCS+2xSHA-256: {raw_rate:,.0f} records/s ({raw_s:.2f} s)")
    rates: dict[tuple[str, int], float] = {}  # (what, log format) -> records/s

    def cpu_s() -> float:
        """CPU seconds of this process and of its children that have ended (a run's workers)."""
        return sum(usage.ru_utime + usage.ru_stime for usage in (resource.getrusage(resource.RUSAGE_SELF),
                                                                  resource.getrusage(resource.RUSAGE_CHILDREN)))

    def measure(label: str, log_format: int, run) -> None:
        started, started_cpu_s = time.perf_counter(), cpu_s()
        result = run()
        ingest_s, ingest_cpu_s = time.perf_counter() - started, cpu_s() - started_cpu_s
        ingest_rate = rates[(label, log_format)] = result.lines / ingest_s
        print(f"{label}, format {log_format}: {ingest_rate:,.0f} records/s ({ingest_s:.2f} s; CPU {ingest_cpu_s:.2f} s, "
              f"{ingest_cpu_s / result.lines * 1e6:.2f} us/record), ratio ingest/raw {ingest_rate / raw_rate:.2f}; "
              f"{result.accepted} accepted in {len(result.batches)} batch(es), {dict(result.reasons)}")

    def keys_of(log_format: int) -> SchemeKeys | None:
        return BENCH_KEYS if log_format == 2 else None

    for log_format in args.log_formats:
        for workers in args.workers:
            measure(f"ingest end to end, workers={workers}", log_format, lambda: ingest_file(
                source, platform="bench-platform", methodology=marked, run_id="bench",
                out_dir=args.out / f"run-{log_format}-{workers}", workers=workers, scheme_keys=keys_of(log_format)))
    if args.registry:
        for log_format in args.log_formats:
            registry = logged_registry(args.out / f"registry-{log_format}.sqlite3", methodology, args.logged)
            registry.log_format = log_format

            def against_log(workers: int):
                with open(source, "rb") as stream:
                    return ingest_against_log(registry, stream, csv=args.format == "csv", platform="bench-platform",
                                              methodology=marked, run_id="bench", scheme_keys=keys_of(log_format),
                                              out_dir=args.out / f"logged-{log_format}-{workers}", workers=workers)

            for workers in args.workers:
                measure(f"ingest against the log ({args.logged} records logged), workers={workers}", log_format,
                        lambda: against_log(workers))
    for (label, log_format), rate in rates.items():
        if log_format == 2 and (label, 1) in rates:
            print(f"{label}: ratio format-2/format-1 {rate / rates[(label, 1)]:.2f}")

if __name__ == "__main__":
    main()
