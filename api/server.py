"""`puhui serve`: the HTTP front (uvicorn + FastAPI) in this process, the writer in a child process.

The writer process (api/writer.py) opens the registry with its log key and runs the Sequencer:
group commit, checkpoints, the reads of the in-memory State. This process serves HTTP, reads the
committed database directly, and exchanges jobs and results with the writer over a pipe: each
has its own interpreter lock, so the event loop no longer slows the writer down.
"""

from __future__ import annotations

import gc
import logging
from pathlib import Path

import uvicorn

from api.app import create_app
from api.writer import CommittedRegistry, RemoteSequencer
from service.registry_dir import RegistryDir
from ledger.store import Store

__all__ = ["create_app", "run"]


def run(directory: Path, *, host: str, port: int, database_url: str | None) -> None:
    """Serve until interrupted; on the way out the writer commits what it was sent and signs a checkpoint.

    The log key's passphrase comes from PUHUI_KEY_PASSPHRASE, or a prompt.
    """
    registry_dir = RegistryDir(Path(directory))
    passphrase = registry_dir.passphrase()
    sequencer = RemoteSequencer.spawn(registry_dir.path, database_url=database_url, passphrase=passphrase)
    registry = None
    try:
        registry = CommittedRegistry(Store.connect(registry_dir.database_url(database_url)), sequencer)
        app = create_app(registry, sequencer=sequencer)  # type: ignore[arg-type]
        gc.freeze()
        logging.getLogger("ledger").setLevel(logging.INFO)
        # No access log: one line per event would cost more than judging it.
        uvicorn.run(app, host=host, port=port, access_log=False, log_level="info", timeout_graceful_shutdown=10)
    finally:
        sequencer.stop()  # a second stop (after the lifespan's) only waits for the process
        if registry is not None:
            registry.close()
