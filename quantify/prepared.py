"""What preparing raw records yields (`quantify.prepare`, `quantify.fastpath`): a record ready for
ingestion to admit, a record that cannot be prepared and why, and a chunk of them.

A chunk holds its records as one column per field rather than one PreparedRecord per line: a
tuple of strings and integers is one that CPython's garbage collector stops tracking, while an
object per record stays tracked for its life. Thousands alive per chunk made ingestion's full
collections six times as many and cost it 15 % of its throughput (measured); columns cost none.
"""

from __future__ import annotations

from typing import Any, Iterable, Iterator, NamedTuple


class PreparedRecord(NamedTuple):
    """A raw record checked, quantified, fingerprinted and encoded.

    data is the record's JCS bytes and leaf its RFC 9162 leaf hash, both for the full
    reduction_g (ingestion rebuilds them in the rare case the daily cap clips the amount)."""

    line: int
    activity_id: str
    subject: str
    occurred_at: str
    fingerprint: str
    reduction_g: int
    inputs_jcs: str
    data: bytes
    leaf: bytes


class Rejection(NamedTuple):
    """A raw record that cannot be prepared, and why."""

    line: int
    reason: str
    detail: str
    activity_id: str | None
    raw: Any  # the line's text, or the CSV row's cells


class PreparedChunk(NamedTuple):
    """The prepared records of a chunk of input, a column per PreparedRecord field, and its
    rejections; both in line order."""

    lines: tuple[int, ...]
    activity_ids: tuple[str, ...]
    subjects: tuple[str, ...]
    occurred_ats: tuple[str, ...]
    fingerprints: tuple[str, ...]
    reductions_g: tuple[int, ...]
    inputs_jcs: tuple[str, ...]
    data: tuple[bytes, ...]
    leaves: tuple[bytes, ...]
    rejections: tuple[Rejection, ...]

    @classmethod
    def of(cls, items: Iterable[PreparedRecord | Rejection]) -> PreparedChunk:
        records: list[PreparedRecord] = []
        rejections: list[Rejection] = []
        for item in items:
            (records if type(item) is PreparedRecord else rejections).append(item)
        return cls.of_rows(records, rejections)

    @classmethod
    def of_rows(cls, rows: list[tuple], rejections: list[Rejection]) -> PreparedChunk:
        """From rows of PreparedRecord's fields in its order (PreparedRecords, or the plain
        tuples the fast path builds for a record it accepts): transposed in one call."""
        columns = tuple(zip(*rows)) if rows else ((),) * len(PreparedRecord._fields)
        return cls(*columns, tuple(rejections))

    def rows(self) -> Iterator[tuple[int, str, str, str, str, int, str, bytes, bytes]]:
        """Each record's fields in PreparedRecord's order, to unpack (a plain tuple each)."""
        return zip(self.lines, self.activity_ids, self.subjects, self.occurred_ats, self.fingerprints,
                   self.reductions_g, self.inputs_jcs, self.data, self.leaves)
