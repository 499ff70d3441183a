"""The front's processes for long work (api/processes.py) run at a lower CPU priority than the
front, so that on busy cores the writes and cheap reads honest clients wait on come first."""

from __future__ import annotations

import asyncio
import os

from api.processes import BACKGROUND_NICENESS, SpawnedProcesses, _BackgroundContext


def test_the_long_work_runs_below_the_fronts_priority():
    processes = SpawnedProcesses(1, "measuring niceness")
    try:
        theirs = asyncio.run(processes.run(os.nice, 0))  # os.nice(0) answers the current niceness
    finally:
        processes.close()
    assert theirs == min(os.nice(0) + BACKGROUND_NICENESS, 19) > os.nice(0)


def test_a_process_is_lowered_before_it_imports_anything():
    """Lowered by itself, a new process first imported the registry's modules (~0.4 s) at the
    front's priority: its parent lowers it as soon as it exists, while it still boots."""
    process = _BackgroundContext().Process(target=os.nice, args=(0,))
    process.start()
    try:
        niceness_while_booting = os.getpriority(os.PRIO_PROCESS, process.pid)
    finally:
        process.join(30)
    assert niceness_while_booting == min(os.nice(0) + BACKGROUND_NICENESS, 19) > os.nice(0)
    assert process.exitcode == 0


def test_the_long_work_processes_die_with_a_front_killed_by_sigkill(tmp_path):
    """Trial 11: after kill -9 of the front, its export processes (and the resource tracker their
    queues started) lived on with no parent until killed by hand."""
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    script = ("import asyncio, os, sys, time\n"
              "from api.processes import SpawnedProcesses\n"
              "processes = SpawnedProcesses(1, 'outliving the front')\n"
              "print(asyncio.run(processes.run(os.getpid)), flush=True)\n"
              "time.sleep(600)\n")
    repo = Path(__file__).resolve().parents[2]
    front = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, cwd=repo,
                             env={**os.environ, "PYTHONPATH": str(repo)})
    try:
        child = int(front.stdout.readline())
        assert os.path.exists(f"/proc/{child}")
        front.send_signal(signal.SIGKILL)
        front.wait(30)
        deadline = time.monotonic() + 30
        while _alive(child) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(child), "a process of the front's pool outlived the front"
    finally:
        front.kill()


def _alive(pid: int) -> bool:
    """Running, not a zombie waiting for its reaper."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
