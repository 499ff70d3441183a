"""`puhui serve`: open a registry directory with its log key and serve the API with uvicorn."""

from __future__ import annotations

import gc
import logging
from pathlib import Path

import uvicorn

from api.app import create_app
from cli.registry_dir import RegistryDir

__all__ = ["create_app", "run"]


def run(directory: Path, *, host: str, port: int, database_url: str | None) -> None:
    """Serve until interrupted; on the way out the sequencer commits what is queued and signs a checkpoint.

    The log key's passphrase comes from PUHUI_KEY_PASSPHRASE, or a prompt.
    """
    registry = RegistryDir(Path(directory)).open(with_log_key=True, database_url=database_url)
    try:
        app = create_app(registry)
        # The State just loaded is long-lived: keep the collector from rescanning it in every full
        # collection (each one stalled the writer, and every client with it, for ~100 ms).
        gc.freeze()
        logging.getLogger("ledger").setLevel(logging.INFO)
        # No access log: one line per event would cost more than judging it.
        uvicorn.run(app, host=host, port=port, access_log=False, log_level="info", timeout_graceful_shutdown=10)
    finally:
        registry.close()
