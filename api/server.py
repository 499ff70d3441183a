"""`puhui serve`: the HTTP front (uvicorn + FastAPI) in this process, the writer in a child process.

The writer process (api/writer.py) opens the registry with its log key and runs the Sequencer:
group commit, checkpoints, the reads of the in-memory State. This process serves HTTP: writes go
to the writer through a RemoteSequencer, reads go to the committed database through a LogReader
sized by the writer's committed size. Each process has its own interpreter lock, so the event
loop does not slow the writer down. If the writer dies, or stops answering for
`limits.writer_timeout_s` (then it is killed), the RemoteSequencer starts it again; if it cannot,
this process stops and exits with EXIT_WRITER_LOST, for a supervisor to act.
"""

from __future__ import annotations

import gc
import logging
from pathlib import Path

import uvicorn

from api.app import create_app
from api.limits import Limits, header_deadline_protocol
from api.writer import RemoteSequencer
from keys import forget_passphrases
from ledger.registry import LogReader
from ledger.store import Store
from service.ingestion import load_scheme_keys
from service.registry_dir import RegistryDir

__all__ = ["EXIT_WRITER_LOST", "Limits", "create_app", "run"]  # Limits: for `puhui serve`'s options

EXIT_WRITER_LOST = 3

log = logging.getLogger("puhui.serve")


def run(directory: Path, *, host: str, port: int, database_url: str | None, limits: Limits = Limits(),
        scheme_key_files: tuple[Path, Path] | None = None) -> None:
    """Serve until interrupted; on the way out the writer commits what it was sent and signs a checkpoint.

    Reads the log key's passphrase (PUHUI_LOG_KEY_PASSPHRASE[_FILE], else
    PUHUI_KEY_PASSPHRASE[_FILE], else a prompt) and, given the hub and fingerprint key files (for
    POST /v1/ingestions in a format-2 registry), theirs, then clears every passphrase variable from
    this process's environment before the writer is started, so that no child inherits them.
    """
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    registry_dir = RegistryDir(Path(directory))
    registry_dir.config()  # a directory that is no registry is named as such, before any passphrase
    if (registry_dir.path / "keys" / "root.key").exists():
        log.warning("%s is on this server: the server never needs the root key; move it offline "
                    "(docs/operations.md, \"Keys\")", registry_dir.path / "keys" / "root.key")
    passphrase = registry_dir.passphrase("log")
    scheme_keys = None if scheme_key_files is None else load_scheme_keys(*scheme_key_files, registry_dir.passphrase)
    forget_passphrases()
    server: uvicorn.Server | None = None

    def writer_lost() -> None:
        if server is not None:
            server.should_exit = True

    sequencer = RemoteSequencer.spawn(registry_dir.path, database_url=database_url, passphrase=passphrase,
                                      answer_timeout_s=limits.writer_timeout_s, on_lost=writer_lost)
    reader = None
    try:
        reader = LogReader(Store.connect(registry_dir.database_url(database_url)), lambda: sequencer.committed_size)
        app = create_app(reader, sequencer=sequencer, limits=limits, scheme_keys=scheme_keys)
        gc.freeze()
        logging.getLogger("ledger").setLevel(logging.INFO)
        # No access log: one line per event would cost more than judging it.
        server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, access_log=False, log_level="info",
                                               timeout_graceful_shutdown=10,
                                               http=header_deadline_protocol(limits.header_timeout_s)))
        server.run()
    finally:
        sequencer.stop()  # a second stop (after the lifespan's) only waits for the process
        if reader is not None:
            reader.close()
    if sequencer.lost:
        log.critical("the writer process is gone and could not be restarted: exiting with %d", EXIT_WRITER_LOST)
        raise SystemExit(EXIT_WRITER_LOST)
