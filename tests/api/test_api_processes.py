"""The front's processes for long work (api/processes.py) run at a lower CPU priority than the
front, so that on busy cores the writes and cheap reads honest clients wait on come first."""

from __future__ import annotations

import asyncio
import os

from api.processes import BACKGROUND_NICENESS, SpawnedProcesses


def test_the_long_work_runs_below_the_fronts_priority():
    processes = SpawnedProcesses(1, "measuring niceness")
    try:
        theirs = asyncio.run(processes.run(os.nice, 0))  # os.nice(0) answers the current niceness
    finally:
        processes.close()
    assert theirs == min(os.nice(0) + BACKGROUND_NICENESS, 19) > os.nice(0)
