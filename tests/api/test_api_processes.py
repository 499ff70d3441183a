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
