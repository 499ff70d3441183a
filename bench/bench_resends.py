"""What a resend costs the writer (issue 11, trial 11: resends of public events from many addresses).

    .venv/bin/python bench/bench_resends.py [--events 1000] [--rounds 3]

Commits --events account.open events in one group on a SQLite registry with tests/world.py's
history, then resends the very same events as one group --rounds times, and prints the writer's
CPU per resend (time.process_time over Registry.append_many: each answered 200 with its seq).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from ledger.registry import sign_event  # noqa: E402
from world import World  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1000, help="events of the group (at most 1,000)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if not 1 <= args.events <= 1000 or args.rounds < 1:
        parser.error("--events 1 to 1,000, --rounds at least 1")
    with tempfile.TemporaryDirectory() as directory:
        world = World(f"sqlite:///{directory}/registry.sqlite3").setup().history()
        events = [sign_event(world.admin.signer, world.registry.origin, "account.open", {
            "account_id": f"acct-{n}", "kind": "compliance_entity", "name": f"a{n}", "region": "420100",
            "controllers": [world.wuhan.key_id], "platform": None, "request_id": f"open-{n}"}, log_format=1)
            for n in range(args.events)]
        first = world.registry.append_many([(event, None) for event in events])
        assert not any(hasattr(result, "code") for result in first), "the events were to be accepted"
        for _ in range(args.rounds):
            started = time.process_time()
            again = world.registry.append_many([(event, None) for event in events])
            cpu_s = time.process_time() - started
            assert all(result.duplicate and result.seq == original.seq for result, original in zip(again, first))
            print(f"writer CPU per resend: {1e6 * cpu_s / args.events:.1f} us")
        world.registry.close()


if __name__ == "__main__":
    main()
