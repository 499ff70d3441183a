"""HTTP throughput and latency of `puhui serve`, beside the ledger's own append rate, as ratios.

    .venv/bin/python bench/bench_api.py [--clients 32] [--rounds 3] [--phase-s 8] [--batches 8]
                                        [--batch-size 1000] [--processes 4] [--hostile-clients 8] [--out DIR]
                                        [--hostile-kinds malformed,unknown-key,eligibility,export] [--postgres]
                                        [--hostile-nice 0] [--hostile-own-addresses] [--probe-s 5]
    (a smoke run: --rounds 1 --phase-s 1 --probe-s 1)

In one run, on one machine, after one eligibility check and one export (which start the
server's processes for them), measurements of the same kind of event (a 1 g retirement from
the signer's own account, pre-signed before the clock starts, so signing is not measured):
- single: `--clients` HTTP clients (keep-alive connections, spread over `--processes` processes
  so that the clients' own Python does not share one interpreter lock) each POST /v1/events one
  event at a time, for `--phase-s` seconds;
- batch: `--processes` clients POST /v1/events:batch with `--batch-size` events each;
- ledger: Registry.append_many in groups of `--batch-size` in this process, no HTTP, no sequencer;
- mixed: the single run again (new events, `--phase-s` seconds) while `--hostile-clients` hostile clients, in processes
  of their own, send malformed events ("type": {}), events signed by keys nobody registered,
  offset-eligibility checks of 1,000 ids and exports, as fast as they are answered (`--hostile-kinds`
  chooses among these, forged-batch: batches of 1,000 events naming a registered key over
  signatures it did not make, and bad-upload: a registered platform's 60 MiB activity upload whose
  records do not match the root its batch commits to). The hostile clients send from the honest
  clients' 127.0.0.1, but for the forgers: an address in debt for what it wasted may not write,
  so each forger has an address of its own (203.0.113.N, told by X-Forwarded-For, which the server
  trusts from loopback); `--hostile-own-addresses` gives every hostile client one.
- rounds: single and mixed alternate, `--rounds` times each (single, mixed, single, mixed, ...),
  so that a drift of the machine or of the log's size weighs on both alike; the ratio of each
  round's mixed rate over its single rate is reported, and the round of the median ratio stands
  for the run (its single and mixed phases, its p99s). Phases of 2.5 s gave ratios +-0.07 apart
  from one run to the next; 8 s each, 3 rounds, about 2.5 minutes in all.
- hostile alone: after the rounds, each hostile kind alone for `--probe-s` seconds (as many
  clients of it as in the mixed run): the server's CPU per hostile request, and per second.
Reports accepted events/s, p50/p99 latency per request, each HTTP rate over the ledger's, and the
honest clients' rate under attack over their rate alone (goal: at least 0.8, p99 under 50 ms).

Every HTTP phase also says who used the CPU in its window (from /proc): the server by process
(front, writer, the front's worker processes), the honest clients, the hostile clients, and the
rest of the machine ("others": other users of a shared machine), each as a share of the machine's
busy CPU; and the server's CPU per honest event. On a small machine the hostile clients, the
honest ones and the server share the cores, so the honest rate under attack also falls by the
attackers' own CPU: the server's CPU per honest event under attack over alone
(ratios.server_cpu_per_event_mixed_over_single) is the damage done to the server itself, whatever
else ran. `--hostile-nice 19` runs the hostile processes at the lowest priority, so that they use
only CPU the server and the honest clients leave, as attackers on machines of their own would
(they then send fewer requests: their count is reported); the default (0) is the same priority
as everyone, as in earlier runs.
With --postgres every phase runs again on a throwaway local PostgreSQL cluster (the registries'
databases there, as `puhui init --database-url` makes them), reported beside SQLite's.
The server is `puhui serve` on 127.0.0.1 (SQLite, synchronous=FULL) in its own process; every
loop is bounded in count and in time (--time-limit-s per phase). Output: bench/out/ (git-ignored).
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import http.client
import json
import multiprocessing
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, NamedTuple, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from keys import Ed25519Key  # noqa: E402
from ledger.canonical import jcs  # noqa: E402
from ledger.registry import sign_event  # noqa: E402
from quantify.methodology import load_shipped  # noqa: E402
from service.actors import Actor, Client  # noqa: E402
from service.methodologies import register_body_for_log  # noqa: E402
from service.registry_dir import INIT_LOG_FORMAT as LOG_FORMAT, RegistryDir  # noqa: E402

ORIGIN = "bench.hubei.example/puhui"
PASSPHRASE = "puhui bench only"  # new keys need 12 characters
HOLDING_G = 10**9


def bench_key(label: str) -> Ed25519Key:
    return Ed25519Key.from_label(f"puhui-bench/{label}")  # benchmark keys only: derived from public labels


def make_registry(directory: Path, holders: int, database_url: str | None) -> None:
    """A format-2 registry (what `puhui init` writes) with one account per holder, each holding
    HOLDING_G of one evidence issuance, reviewed first by a validator that root registered."""
    admin, validator = Actor(bench_key("admin"), "admin"), Actor(bench_key("validator"), "validator")
    place = RegistryDir(directory)
    registry = place.init(ORIGIN, admin_public_key=admin.signer.public_key, strength="interactive",
                          passphrase=PASSPHRASE.encode(), database_url=database_url)
    client = Client(registry)
    client.register_key(Actor(place.keyring.load("root", PASSPHRASE.encode()), "root"), validator, ["validator"])
    client.submit(admin, "methodology.register", register_body_for_log(load_shipped().get("HB-GT-METRO"), LOG_FORMAT))
    uploader = Actor(bench_key("platform"), "platform")  # the bad-upload attacker: a registered platform
    client.register_key(admin, uploader, ["platform"])
    client.open_account(admin, "bench-platform", "platform", "bench platform", "420100", [uploader])
    for h in range(holders):
        holder = Actor(bench_key(f"holder-{h}"), f"holder-{h}")
        client.register_key(admin, holder, [])
        client.open_account(admin, f"holder-{h}", "enterprise", f"holder {h}", "420100", [holder])
        evidence = hashlib.sha256(f"bench verification report {h}".encode()).hexdigest()  # one issuance each
        client.review(validator, f"rev-{h}", "evidence", evidence)
        client.issue(admin, f"iss-{h}", f"holder-{h}", "HB-GT-METRO", 2026, "420100", HOLDING_G, evidence=evidence)
    registry.checkpoint()
    registry.close()


def retirement(signer: Ed25519Key, body: dict[str, Any]) -> dict[str, Any]:
    """A signed retirement of this format: from any issuance (issuances null)."""
    return sign_event(signer, ORIGIN, "retirement", {**body, "purpose": "voluntary", "issuances": None},
                      log_format=LOG_FORMAT)


def retirements(holder: int, count: int, tag: str) -> list[dict[str, Any]]:
    signer = bench_key(f"holder-{holder}")
    return [retirement(signer, {"retirement_id": f"{tag}-{holder}-{n}", "account": f"holder-{holder}", "amount_g": 1,
                                "beneficiary": "bench", "request_id": f"{tag}-{holder}-{n}"}) for n in range(count)]


# -- HTTP clients (in worker processes) ------------------------------------------------------------

def _headers(path: str) -> dict[str, str]:
    return {"content-type": "application/x-ndjson" if path == "/v1/activity-batches" else "application/json"}


def _post_all(port: int, path: str, bodies: list[bytes], deadline: float) -> list[tuple[float, int, int]]:
    """POST each body in turn on one keep-alive connection: (latency_s, status, events accepted)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    results = []
    for body in bodies:
        if time.monotonic() > deadline:
            break
        started = time.perf_counter()
        connection.request("POST", path, body=body, headers=_headers(path))
        response = connection.getresponse()
        answer = response.read()
        latency = time.perf_counter() - started
        if path.endswith(":batch"):
            accepted = sum(1 for r in json.loads(answer)["results"] if r["status"] == 201)
        else:
            accepted = 1 if response.status == 201 else 0
        results.append((latency, response.status, accepted))
    connection.close()
    return results


def _worker(port: int, path: str, jobs: list[list[bytes]], ready: Any, go: Any, time_limit_s: float, out: Any) -> None:
    import threading
    results: list[list[tuple[float, int, int]]] = [[] for _ in jobs]
    cpu_before = _cpu_s()

    def run(i: int) -> None:
        go.wait()
        results[i] = _post_all(port, path, jobs[i], time.monotonic() + time_limit_s)
    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(jobs))]
    for thread in threads:
        thread.start()
    ready.release()
    for thread in threads:
        thread.join()
    out.put(([r for rs in results for r in rs], _cpu_s() - cpu_before))


HOSTILE_KINDS = ("malformed", "unknown-key", "eligibility", "export", "forged-batch", "bad-upload")
DEFAULT_HOSTILE_KINDS = HOSTILE_KINDS[:4]  # issue 11's mixed run: malformed events and expensive reads
BAD_UPLOAD_RECORDS = 200_000  # about 60 MiB of format-2 records (the limit is 64 MiB)


def _bad_upload_records() -> bytes:
    """Well-formed format-2 records of HB-GT-METRO: only the root, checked after every record is
    read, tells that they are not the batch's."""
    return b"".join(jcs({"activity_id": f"bad-{n}", "fingerprint": f"{n:064x}", "inputs": {"distance_m": 1000 + n % 9000},
                         "occurred_on": "2026-03-02", "private_sha256": f"{n:064x}", "reduction_g": 78,
                         "subject": f"{n:032x}"}) + b"\n" for n in range(BAD_UPLOAD_RECORDS))


def _bad_upload(n: int, records: bytes) -> bytes:
    event = sign_event(bench_key("platform"), ORIGIN, "activity.batch", {
        "batch_id": f"bad-{n}", "platform": "bench-platform", "methodology_id": "HB-GT-METRO", "methodology_version": 1,
        "period_start": "2026-03-01", "period_end": "2026-03-31", "count": BAD_UPLOAD_RECORDS,
        "total_g": 78 * BAD_UPLOAD_RECORDS, "root": "00" * 32, "request_id": f"bad-{n}"}, log_format=LOG_FORMAT)
    return jcs(event) + b"\n" + records


def _forged_batch() -> bytes:
    """A batch of 1,000 retirements naming holder-0's registered key over a stranger's signatures."""
    events = [retirement(bench_key("forger"), {"retirement_id": f"forged-{n}", "account": "holder-0", "amount_g": 1,
                                               "beneficiary": "x", "request_id": f"forged-{n}"}) for n in range(1000)]
    for event in events:
        event["auth"]["key"] = bench_key("holder-0").key_id
    return jcs({"events": events})


def _hostile_requests(kind: str, n: int) -> tuple[str, str, bytes | None]:
    """The n-th request of a hostile client of this kind: (method, path, body)."""
    if kind == "malformed":
        event = retirements(0, 1, f"hostile-{n}")[0]
        return "POST", "/v1/events", jcs({**event, "type": {}})
    if kind == "unknown-key":
        stranger = bench_key(f"stranger-{n % 1000}")
        return "POST", "/v1/events", jcs(retirement(stranger, {
            "retirement_id": f"x-{n}", "account": "holder-0", "amount_g": 1, "beneficiary": "x", "request_id": f"x-{n}"}))
    if kind == "eligibility":
        return "POST", "/v1/offset-eligibility", jcs({
            "entity": "holder-0", "compliance_year": 2026, "allocation_g": 10**9,
            "retirements": [f"single-{n % 32}-{i}" for i in range(1000)]})
    return "GET", "/v1/export", None


def _hostile(port: int, kind: str, address: str | None, nice: int, ready: Any, stop: Any, answered: Any,
             time_limit_s: float, out: Any) -> None:
    """Send requests of one kind, each as soon as the last is answered (Retry-After ignored), until
    told to stop; `answered` counts the answers as they come. `address`: the client address the
    server is to see (X-Forwarded-For, which it trusts from loopback), None for 127.0.0.1."""
    os.nice(nice)
    statuses: dict[int, int] = {}
    records = _bad_upload_records() if kind == "bad-upload" else b""
    forged = _forged_batch() if kind == "forged-batch" else b""
    ready.release()
    deadline = time.monotonic() + time_limit_s
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    n = 0
    while not stop.is_set() and time.monotonic() < deadline:
        method, path, body = (("POST", "/v1/activity-batches", _bad_upload(n, records)) if kind == "bad-upload"
                              else ("POST", "/v1/events:batch", forged) if kind == "forged-batch"
                              else _hostile_requests(kind, n))
        try:
            headers = _headers(path) if address is None else {**_headers(path), "x-forwarded-for": address}
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            response.read()
            statuses[response.status] = statuses.get(response.status, 0) + 1
        except (OSError, http.client.HTTPException):
            connection.close()
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
            statuses[0] = statuses.get(0, 0) + 1
        answered.value += 1
        n += 1
    connection.close()
    out.put((kind, statuses))


class HostileClient(NamedTuple):
    kind: str
    process: Any       # multiprocessing.Process
    answered: Any      # multiprocessing.Value: requests answered so far


class Attack:
    """Hostile clients in processes of their own, under way once every one has built its requests
    (a bad upload's records take a few seconds); stop() gathers their answers' statuses by kind."""

    def __init__(self, port: int, kinds: list[str], nice: int, time_limit_s: float, own_addresses: bool):
        context = multiprocessing.get_context("fork")
        ready, self._stop, self._out = context.Semaphore(0), context.Event(), context.Queue()
        self.clients = []
        for n, kind in enumerate(kinds):
            answered = context.Value("q", 0, lock=False)  # one writer: the client itself
            # TEST-NET-3 (RFC 5737). A forger's address is in debt for what it wastes, and an address
            # in debt may not write: on 127.0.0.1 it would refuse the honest clients too.
            own = own_addresses or kind == "forged-batch"
            address = f"203.0.113.{n + 1}" if own else None
            process = context.Process(target=_hostile, args=(port, kind, address, nice, ready, self._stop, answered,
                                                             time_limit_s, self._out))
            process.start()
            self.clients.append(HostileClient(kind, process, answered))
        for _ in self.clients:
            ready.acquire(timeout=120)

    def stop(self) -> dict[str, dict[int, int]]:
        self._stop.set()
        by_kind: dict[str, dict[int, int]] = {}
        for _ in self.clients:
            kind, statuses = self._out.get(timeout=180)
            for status, count in statuses.items():
                by_kind.setdefault(kind, {})[status] = by_kind.setdefault(kind, {}).get(status, 0) + count
        for client in self.clients:
            client.process.join(30)
        return by_kind


def mixed_phase(port: int, jobs: list[list[bytes]], processes: int, hostile_clients: int, hostile_kinds: list[str],
                hostile_nice: int, time_limit_s: float, server_pid: int, own_addresses: bool) -> dict[str, Any]:
    """The single-event run while hostile clients (processes of their own) send what they send."""
    attack = Attack(port, [hostile_kinds[i % len(hostile_kinds)] for i in range(hostile_clients)], hostile_nice,
                    time_limit_s + 60, own_addresses)
    time.sleep(0.5)  # the attack is under way when the honest clients start
    try:
        honest = http_phase(port, "/v1/events", jobs, processes, time_limit_s, server_pid, attack.clients)
    finally:
        statuses = attack.stop()
    return {**honest, "hostile_clients": hostile_clients, "hostile_nice": hostile_nice, "hostile_statuses": statuses}


def probe_phase(port: int, kind: str, clients: int, nice: int, seconds: float, server_pid: int,
                own_addresses: bool) -> dict[str, Any]:
    """`clients` hostile clients of one kind alone for `seconds`: what each of their requests costs
    the server, and what they make it spend a second."""
    attack = Attack(port, [kind] * clients, nice, seconds + 60, own_addresses)
    try:
        before = CpuMark.now(server_pid, attack.clients)
        started = time.perf_counter()
        time.sleep(seconds)
        after = CpuMark.now(server_pid, attack.clients)
        elapsed = time.perf_counter() - started
    finally:
        statuses = attack.stop()
    window = cpu_window(before, after, 0.0, elapsed, 0)
    answered, server_s = window["hostile_requests_answered"], window["cpu_s"]["server"]
    return {"kind": kind, "clients": clients, "seconds": round(elapsed, 2), "requests_answered": answered,
            "requests_per_s": round(answered / elapsed, 1), "statuses": statuses[kind],
            "server_cpu_ms_per_request": round(1000 * server_s / answered, 3) if answered else None,
            "server_cores_busy": round(server_s / elapsed, 3),
            **{k: window[k] for k in ("server_cpu_s_by_process", "cpu_s", "machine_cores_busy")}}


def _cpu_s() -> float:
    """User + system CPU seconds of this process."""
    times = os.times()
    return times.user + times.system


def _process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of one process and of its children it has reaped (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def _children_of(pid: int) -> list[int]:
    children = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            children += [int(child) for child in (task / "children").read_text().split()]
        except OSError:
            continue
    return children


def _started_at(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
    except OSError:
        return 0


SERVER_PARTS = ("front", "writer", "front_workers", "helpers")


def server_cpu_s(pid: int) -> dict[str, float]:
    """CPU seconds of `puhui serve`'s processes: the front (pid), the writer (its first child started
    by multiprocessing), the front's workers (the later ones: upload checks, the committed State of
    the eligibility checks, exports; api/processes.py) and helpers (the resource tracker)."""
    parts = dict.fromkeys(SERVER_PARTS, 0.0)
    parts["front"] = _process_cpu_s(pid)
    spawned = []
    for child in _children_of(pid):
        cpu_s = _process_cpu_s(child)
        try:
            command = Path(f"/proc/{child}/cmdline").read_bytes()
        except OSError:
            continue
        if b"resource_tracker" in command:
            parts["helpers"] += cpu_s
        else:
            spawned.append((_started_at(child), cpu_s))
    for n, (_, cpu_s) in enumerate(sorted(spawned)):
        parts["writer" if n == 0 else "front_workers"] += cpu_s
    return parts


def machine_busy_cpu_s() -> float:
    """CPU seconds every process on this machine has used (all cores), from /proc/stat."""
    ticks = [int(t) for t in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")  # less idle and iowait


class CpuMark(NamedTuple):
    """CPU seconds so far of each group a window of the bench charges."""
    server: dict[str, float]
    hostile_s: float
    bench_s: float           # this process: starting phases, reading /v1/status
    machine_busy_s: float
    answered: int            # hostile requests answered so far

    @classmethod
    def now(cls, server_pid: int, hostile: Sequence["HostileClient"] = ()) -> "CpuMark":
        return cls(server_cpu_s(server_pid), sum(_process_cpu_s(h.process.pid) for h in hostile), _cpu_s(),
                   machine_busy_cpu_s(), sum(h.answered.value for h in hostile))


def cpu_window(before: CpuMark, after: CpuMark, clients_cpu_s: float, elapsed_s: float,
               honest_events: int) -> dict[str, Any]:
    """Who used the CPU between two marks: the server (by process), the honest clients (their own
    count), the hostile clients, this process and everything else on the machine (other users);
    each group's share of the machine's busy CPU, and the server's CPU per honest event."""
    server = {part: round(after.server[part] - before.server[part], 3) for part in SERVER_PARTS}
    groups = {"server": sum(server.values()), "honest_clients": clients_cpu_s,
              "hostile_clients": after.hostile_s - before.hostile_s, "bench": after.bench_s - before.bench_s}
    busy_s = after.machine_busy_s - before.machine_busy_s
    groups["others"] = max(0.0, busy_s - sum(groups.values()))  # not ours: other users of the machine
    return {"server_cpu_s_by_process": server, "cpu_s": {name: round(s, 2) for name, s in groups.items()},
            "cpu_share": {name: round(s / busy_s, 3) if busy_s else None for name, s in groups.items()},
            "machine_busy_cpu_s": round(busy_s, 2), "machine_cores_busy": round(busy_s / elapsed_s, 2),
            "server_cpu_ms_per_honest_event": round(1000 * groups["server"] / honest_events, 3) if honest_events else None,
            "hostile_requests_answered": after.answered - before.answered}


def http_phase(port: int, path: str, jobs: list[list[bytes]], processes: int, time_limit_s: float,
               server_pid: int, hostile: Sequence[HostileClient] = ()) -> dict[str, Any]:
    """Run jobs (one per client: its request bodies) spread over worker processes; one shared start."""
    context = multiprocessing.get_context("fork")
    ready, go, out = context.Semaphore(0), context.Event(), context.Queue()
    shares = [jobs[p::processes] for p in range(processes)]
    workers = [context.Process(target=_worker, args=(port, path, share, ready, go, time_limit_s, out))
               for share in shares if share]
    for worker in workers:
        worker.start()
    for _ in workers:
        ready.acquire()
    before = CpuMark.now(server_pid, hostile)
    started = time.perf_counter()
    go.set()
    answers = [out.get(timeout=time_limit_s + 120) for _ in workers]
    elapsed = time.perf_counter() - started
    after = CpuMark.now(server_pid, hostile)
    sequencer = _status(port)["sequencer"]
    results = [r for rs, _ in answers for r in rs]
    clients_cpu_s = sum(cpu for _, cpu in answers)
    for worker in workers:
        worker.join(30)
    latencies_ms = sorted(r[0] * 1000 for r in results)
    accepted = sum(r[2] for r in results)
    statuses: dict[int, int] = {}
    for _, status, _ in results:
        statuses[status] = statuses.get(status, 0) + 1
    return {"clients": len(jobs), "requests": len(results), "accepted_events": accepted, "seconds": round(elapsed, 3),
            "events_per_s": round(accepted / elapsed, 1), "p50_ms": round(_quantile(latencies_ms, 0.50), 2),
            "p90_ms": round(_quantile(latencies_ms, 0.90), 2), "p99_ms": round(_quantile(latencies_ms, 0.99), 2),
            "max_ms": round(latencies_ms[-1], 2) if latencies_ms else None, "statuses": statuses,
            **cpu_window(before, after, clients_cpu_s, elapsed, accepted), "sequencer_since_start": sequencer}


def _status(port: int) -> dict[str, Any]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request("GET", "/v1/status")
    return json.loads(connection.getresponse().read())


def _quantile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


# -- the ledger alone --------------------------------------------------------------------------------

def ledger_phase(directory: Path, holders: int, total_events: int, group: int) -> dict[str, Any]:
    registry = RegistryDir(directory).open(with_log_key=True, passphrase=PASSPHRASE.encode())
    per_holder = -(-total_events // holders)
    events = [e for h in range(holders) for e in retirements(h, per_holder, "ledger")][:total_events]
    started = time.perf_counter()
    accepted = 0
    for i in range(0, len(events), group):
        accepted += sum(1 for r in registry.append_many([(e, None) for e in events[i:i + group]]) if not isinstance(r, Exception))
    elapsed = time.perf_counter() - started
    registry.close()
    return {"group": group, "accepted_events": accepted, "seconds": round(elapsed, 3),
            "events_per_s": round(accepted / elapsed, 1)}


# -- the server --------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(directory: Path, port: int, log_path: Path, start_timeout_s: float = 60) -> subprocess.Popen:
    """`puhui serve` on the port, once it answers; a registry's first start checks its projections
    against the whole log, which at 10^6 events on a busy machine takes minutes (start_timeout_s)."""
    env = dict(os.environ, PUHUI_KEY_PASSPHRASE=PASSPHRASE)
    server = subprocess.Popen([str(Path(sys.executable).parent / "puhui"), "serve", "--dir", str(directory),
                               "--host", "127.0.0.1", "--port", str(port)], env=env, stdin=subprocess.DEVNULL,
                              stdout=open(log_path, "wb"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + start_timeout_s
    while time.monotonic() < deadline and server.poll() is None:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            connection.request("GET", "/v1/checkpoint")
            if connection.getresponse().status == 200:
                return server
        except OSError:
            time.sleep(0.1)
    server.kill()
    raise SystemExit(f"puhui serve did not answer within {start_timeout_s:.0f} s; see {log_path}")


def warm_up(port: int, server_pid: int, timeout_s: float = 120, quiet_cpu_s: float = 0.05) -> None:
    """One offset-eligibility check and one export, then until `puhui serve` has used less than
    quiet_cpu_s of CPU in half a second: the server starts the processes doing those at the first
    of each (api/processes.py), a once-only cost no phase is to pay."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout_s)
    for method, path, body in (_hostile_requests("eligibility", 0), _hostile_requests("export", 0)):
        connection.request(method, path, body=body, headers=_headers(path))
        connection.getresponse().read()
    connection.close()
    deadline = time.monotonic() + timeout_s
    before = sum(server_cpu_s(server_pid).values())
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = sum(server_cpu_s(server_pid).values())
        if now - before < quiet_cpu_s:
            return
        before = now


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3,
                        help="single and mixed phases, alternating, this many times each (the median round's ratio "
                             "is reported)")
    parser.add_argument("--phase-s", type=float, default=8.0,
                        help="seconds of each single and mixed phase (1 for a smoke run)")
    parser.add_argument("--batches", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--hostile-clients", type=int, default=8)
    parser.add_argument("--hostile-kinds", type=lambda text: text.split(","), default=list(DEFAULT_HOSTILE_KINDS),
                        help=f"comma-separated, among {', '.join(HOSTILE_KINDS)}")
    parser.add_argument("--hostile-nice", type=int, default=0,
                        help="niceness of the hostile processes (0 to 19): at 19 they use only CPU that the server "
                             "and the honest clients leave, as attackers on machines of their own would")
    parser.add_argument("--hostile-own-addresses", action="store_true",
                        help="every hostile client on an address of its own (X-Forwarded-For), not only the forgers: "
                             "each address then has its own share of the budget and its own refusals a second")
    parser.add_argument("--probe-s", type=float, default=5.0,
                        help="seconds of each hostile kind alone, after the rounds (0: none)")
    parser.add_argument("--time-limit-s", type=float, default=120.0)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "out" / "api")
    parser.add_argument("--postgres", action="store_true",
                        help="repeat every phase on a throwaway local PostgreSQL cluster (tests/pg_cluster.py)")
    args = parser.parse_args()
    if not (1 <= args.clients <= 256 and 1 <= args.rounds <= 9 and 0.5 <= args.phase_s <= 60
            and 1 <= args.batches <= 100 and 1 <= args.batch_size <= 1000 and 1 <= args.processes <= 32
            and 0 <= args.hostile_clients <= 64 and 0 <= args.hostile_nice <= 19 and 0 <= args.probe_s <= 60):
        raise SystemExit("out of bounds: clients <= 256, rounds 1 to 9, phase-s 0.5 to 60, batches <= 100, "
                         "batch-size <= 1000, hostile-clients <= 64, hostile-nice 0 to 19, probe-s <= 60")
    if not args.hostile_kinds or not set(args.hostile_kinds) <= set(HOSTILE_KINDS):
        raise SystemExit(f"--hostile-kinds: a comma-separated choice among {', '.join(HOSTILE_KINDS)}")
    shutil.rmtree(args.out, ignore_errors=True)
    args.out.mkdir(parents=True)
    results = {"sqlite": measure(args, args.out / "sqlite", None, None)}
    if args.postgres:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
        from pg_cluster import PostgresCluster
        with PostgresCluster() as cluster:
            results["postgresql"] = measure(args, args.out / "postgresql", cluster.create_database("bench_api_served"),
                                            cluster.create_database("bench_api_ledger"))
    report = {
        "command": " ".join([".venv/bin/python", "bench/bench_api.py", *sys.argv[1:]]),
        "machine": {"platform": platform.platform(), "python": platform.python_version(), "cpus": os.cpu_count()},
        "backends": results,
    }
    (args.out / "bench_api.json").write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps({name: {k: result[k] for k in ("ratios", "goals", "cpu_share")} for name, result in results.items()},
                     indent=1))


# Single events a second an honest phase may reach (3,391 on a quiet machine): its clients hold enough
# events signed beforehand for `--phase-s` seconds at this rate.
HONEST_RATE_CEILING_PER_S = 5_000


class Round(NamedTuple):
    """A single-event phase and the mixed phase after it."""
    single: dict[str, Any]
    mixed: dict[str, Any]

    @property
    def mixed_over_single(self) -> float:
        return self.mixed["events_per_s"] / self.single["events_per_s"]


def honest_jobs(args: argparse.Namespace, tag: str) -> list[list[bytes]]:
    """Each honest client's single events for one phase, signed before its clock starts."""
    per_client = -(-int(args.phase_s * HONEST_RATE_CEILING_PER_S) // args.clients)
    return [[jcs(e) for e in retirements(c, per_client, tag)] for c in range(args.clients)]


def batch_phase(args: argparse.Namespace, port: int, server_pid: int) -> dict[str, Any]:
    """`--batches` batches of `--batch-size` events, from at most `--processes` clients."""
    batch_clients = min(args.processes, args.batches)
    batch_jobs: list[list[bytes]] = [[] for _ in range(batch_clients)]
    for b in range(args.batches):
        events = [e for h in range(args.clients)
                  for e in retirements(h, -(-args.batch_size // args.clients), f"batch{b}")][:args.batch_size]
        batch_jobs[b % batch_clients].append(jcs({"events": events}))
    return http_phase(port, "/v1/events:batch", batch_jobs, batch_clients, args.time_limit_s, server_pid)


def measure(args: argparse.Namespace, out: Path, served_url: str | None, ledger_url: str | None) -> dict[str, Any]:
    """Every phase on one backend (the directory's SQLite file, or the databases given)."""
    out.mkdir(parents=True)
    batch_events = args.batches * args.batch_size
    print(f"{out.name}: setting up two identical registries ...", flush=True)
    make_registry(out / "served", args.clients, served_url)
    make_registry(out / "ledger", args.clients, ledger_url)

    ledger = ledger_phase(out / "ledger", args.clients, batch_events, args.batch_size)
    print(f"ledger alone: {ledger}", flush=True)

    port = free_port()
    server = start_server(out / "served", port, out / "server.log")
    try:
        warm_up(port, server.pid)
        batch = batch_phase(args, port, server.pid)
        print(f"batch endpoint: {batch}", flush=True)
        rounds = []
        for n in range(args.rounds):
            single = http_phase(port, "/v1/events", honest_jobs(args, f"single{n or ''}"), args.processes,
                                min(args.phase_s, args.time_limit_s), server.pid)
            print(f"round {n}, single events: {single}", flush=True)
            mixed = mixed_phase(port, honest_jobs(args, f"mixed{n or ''}"), args.processes, args.hostile_clients,
                                args.hostile_kinds, args.hostile_nice, min(args.phase_s, args.time_limit_s), server.pid,
                                args.hostile_own_addresses)
            print(f"round {n}, single events under attack: {mixed}", flush=True)
            rounds.append(Round(single, mixed))
        probes = []
        for kind in args.hostile_kinds if args.probe_s else ():
            probes.append(probe_phase(port, kind, max(1, args.hostile_clients // len(args.hostile_kinds)),
                                      args.hostile_nice, args.probe_s, server.pid, args.hostile_own_addresses))
            print(f"{kind} alone: {probes[-1]}", flush=True)
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(30)
    median = statistics.median_low(r.mixed_over_single for r in rounds)
    single, mixed = next((r.single, r.mixed) for r in rounds if r.mixed_over_single == median)
    return {
        "ledger": ledger, "single": single, "batch": batch, "mixed": mixed, "hostile_alone": probes,
        "rounds": [{"single": r.single, "mixed": r.mixed} for r in rounds],
        "by_round": {"mixed_over_single": [round(r.mixed_over_single, 3) for r in rounds],
                     "single_events_per_s": [r.single["events_per_s"] for r in rounds],
                     "mixed_events_per_s": [r.mixed["events_per_s"] for r in rounds],
                     "single_p99_ms": [r.single["p99_ms"] for r in rounds],
                     "mixed_p99_ms": [r.mixed["p99_ms"] for r in rounds]},
        "cpu_share": {"single": single["cpu_share"], "mixed": mixed["cpu_share"]},
        "ratios": {"batch_over_ledger": round(batch["events_per_s"] / ledger["events_per_s"], 3),
                   "single_over_ledger": round(single["events_per_s"] / ledger["events_per_s"], 3),
                   "mixed_over_single": round(median, 3),  # the median round's
                   # The server-side damage, whoever else used the cores: its CPU per honest event.
                   "server_cpu_per_event_mixed_over_single": round(
                       mixed["server_cpu_ms_per_honest_event"] / single["server_cpu_ms_per_honest_event"], 3)},
        "goals": {"batch_over_ledger >= 0.5": batch["events_per_s"] >= 0.5 * ledger["events_per_s"],
                  "single >= 2000/s": single["events_per_s"] >= 2000, "single p99 < 50 ms": single["p99_ms"] < 50,
                  "mixed_over_single >= 0.8": mixed["events_per_s"] >= 0.8 * single["events_per_s"],
                  "mixed p99 < 50 ms": mixed["p99_ms"] < 50},
    }


if __name__ == "__main__":
    main()
