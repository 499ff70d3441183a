"""`puhui serve`: the HTTP front (uvicorn + FastAPI) in this process, the writer in a child process.

The writer process (api/writer.py) opens the registry with its log key and runs the Sequencer:
group commit, checkpoints, the reads of the in-memory State. This process serves HTTP: writes go
to the writer through a RemoteSequencer, reads go to the committed database through a LogReader
sized by the writer's committed size. Each process has its own interpreter lock, so the event
loop does not slow the writer down.
"""

from __future__ import annotations

import gc
import logging
from pathlib import Path

import uvicorn

from api.app import create_app
from api.writer import RemoteSequencer
from ledger.registry import LogReader
from ledger.store import Store
from service.registry_dir import RegistryDir

__all__ = ["create_app", "run"]


def run(directory: Path, *, host: str, port: int, database_url: str | None) -> None:
    """Serve until interrupted; on the way out the writer commits what it was sent and signs a checkpoint.

    The log key's passphrase comes from PUHUI_KEY_PASSPHRASE, or a prompt.
    """
    registry_dir = RegistryDir(Path(directory))
    passphrase = registry_dir.passphrase()
    sequencer = RemoteSequencer.spawn(registry_dir.path, database_url=database_url, passphrase=passphrase)
    log = None
    try:
        log = LogReader(Store.connect(registry_dir.database_url(database_url)), lambda: sequencer.committed_size)
        app = create_app(log, sequencer=sequencer)
        gc.freeze()
        logging.getLogger("ledger").setLevel(logging.INFO)
        # No access log: one line per event would cost more than judging it.
        uvicorn.run(app, host=host, port=port, access_log=False, log_level="info", timeout_graceful_shutdown=10)
    finally:
        sequencer.stop()  # a second stop (after the lifespan's) only waits for the process
        if log is not None:
            log.close()
