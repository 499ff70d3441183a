"""How `puhui ingest` shows a long run: on a terminal a progress bar through the file (records
read, records a second), then through the batches appended; elsewhere (a pipe, a log, cron) one
summary line at the end. Either goes to stderr, beside what the command prints on stdout.

The bar follows the bytes read from the file, which quantify reads ahead of the records it has
quantified by a block and the chunks its workers hold: a bar, not an account of the run."""

from __future__ import annotations

import io
import time
from types import TracebackType
from typing import BinaryIO, Callable

from rich.console import Console
from rich.progress import BarColumn, Progress, ProgressColumn, Task, TaskID, TextColumn, TimeElapsedColumn
from rich.text import Text

from quantify.ingest import IngestResult


class _CountingReader(io.RawIOBase):
    """A binary file read through, counting the bytes and newlines that have passed."""

    def __init__(self, source: BinaryIO, passed: Callable[[int, int], None]):
        super().__init__()
        self._source = source
        self._passed = passed  # (bytes, newlines) read since the last call

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:
        data = self._source.read(len(buffer))
        buffer[:len(data)] = data
        self._passed(len(data), data.count(b"\n"))
        return len(data)


class _RecordsPerSecond(ProgressColumn):
    def render(self, task: Task) -> Text:
        records = task.fields.get("records", 0)
        elapsed_s = (task.finished_time if task.finished else task.elapsed) or 0.0  # a finished task's rate stays
        rate = f"{records / elapsed_s:,.0f} records/s" if elapsed_s > 0 else ""
        return Text(f"{records:,} records  {rate}")


class IngestProgress:
    """A progress bar on the console when it is a terminal, else one summary line at the end."""

    def __init__(self, console: Console, file_size_bytes: int, clock: Callable[[], float] = time.monotonic):
        self.console, self.clock = console, clock
        self.started_s = clock()
        self._progress: Progress | None = None
        self._reading: TaskID | None = None
        self._appending: TaskID | None = None
        self._records = 0  # newlines read: records, and a CSV file's header
        self._appended_records = 0
        if console.is_terminal:
            self._progress = Progress(TextColumn("{task.description}"), BarColumn(), _RecordsPerSecond(),
                                      TimeElapsedColumn(), console=console)
            self._reading = self._progress.add_task("reading", total=max(file_size_bytes, 1))

    def __enter__(self) -> IngestProgress:
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        if self._progress is not None:
            self._progress.stop()

    def reader(self, source: BinaryIO) -> io.BufferedReader:
        """source, read through the bar."""
        return io.BufferedReader(_CountingReader(source, self._read))

    def _read(self, size_bytes: int, newlines: int) -> None:
        self._records += newlines
        if self._progress is not None and self._reading is not None:
            self._progress.update(self._reading, advance=size_bytes, records=self._records)

    def appending(self, batches: int) -> None:
        """The file is read and quantified: batches of it are to be appended."""
        if self._progress is not None:
            self._appending = self._progress.add_task("appending batches", total=max(batches, 1), records=0)

    def appended(self, records: int) -> None:
        """One more batch appended, of records."""
        self._appended_records += records
        if self._progress is not None and self._appending is not None:
            self._progress.update(self._appending, advance=1, records=self._appended_records)

    def summary(self, result: IngestResult, appended: int) -> None:
        """The one line a run leaves where no bar was shown."""
        if self._progress is not None:
            return
        self.console.print(
            f"ingest: {result.accepted + result.rejected} records read, {result.accepted} accepted, "
            f"{result.rejected} rejected, {result.accepted_g} g accepted, {appended} of {len(result.batches)} "
            f"batches appended, {self.clock() - self.started_s:.1f} s", soft_wrap=True, highlight=False)
