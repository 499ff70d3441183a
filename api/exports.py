"""GET /v1/export's archive: the bundle of spec section 8 as a tar file, built in processes of
the front's own (api/processes.py). An export reads the whole log; in a thread of the front it
held the event loop's interpreter lock for as long, and every honest request waited behind it."""

from __future__ import annotations

import shutil
import tarfile
import tempfile
from pathlib import Path

from api.processes import SpawnedProcesses, database_url_of
from ledger.export import export_bundle
from ledger.registry import LogReader
from ledger.store import Store

MAX_CONCURRENT_EXPORTS = 2


class Exports:
    """Archives of the committed log of `reader`, at most MAX_CONCURRENT_EXPORTS built at once."""

    def __init__(self, reader: LogReader):
        self._database_url = database_url_of(reader)
        self._processes = SpawnedProcesses(MAX_CONCURRENT_EXPORTS, "building exports")

    async def archive(self) -> Path:
        """A new archive of the log up to its latest checkpoint, in a directory of its own that
        the caller removes."""
        return await self._processes.run(_archive_in_process, self._database_url)

    def close(self) -> None:
        self._processes.close()


# In an export process: a reader of each database, sized by its latest checkpoint. The writer
# signs only what it has committed, and a bundle ends at the latest checkpoint: so the size the
# front last heard of, perhaps older than the checkpoint just signed for this export, is not asked.
_readers: dict[str, LogReader] = {}


def _archive_in_process(database_url: str) -> Path:
    reader = _readers.get(database_url)
    if reader is None:
        reader = _readers[database_url] = _checkpointed_reader(database_url)
    work = Path(tempfile.mkdtemp(prefix="puhui-export-"))
    try:
        export_bundle(reader, work / "bundle")
        archive = work / "bundle.tar"
        with tarfile.open(archive, "w", format=tarfile.PAX_FORMAT) as tar:
            for path in sorted((work / "bundle").rglob("*")):
                tar.add(path, arcname=str(path.relative_to(work / "bundle")), recursive=False,
                        filter=_without_server_details)
        shutil.rmtree(work / "bundle")
        return archive
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise


def _without_server_details(entry: tarfile.TarInfo) -> tarfile.TarInfo:
    """An entry that depends only on the log: the same checkpoint gives the same archive, byte for
    byte (an auditor compares digests), and the server's clock, user and umask stay its own."""
    entry.mtime = 0
    entry.uid = entry.gid = 0
    entry.uname = entry.gname = ""
    entry.mode = 0o755 if entry.isdir() else 0o644
    entry.pax_headers = {}
    return entry


def _checkpointed_reader(database_url: str) -> LogReader:
    reader = LogReader(Store.connect(database_url), lambda: reader.latest_checkpoint_size())
    return reader
