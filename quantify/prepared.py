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
    reduction_g (ingestion rebuilds them in the rare case the daily cap clips the amount).
    Format 2 (quantify.private): subject is the daily pseudonym, inputs_jcs the public inputs and
    opening the JCS bytes of the record's opening; format 1: opening is empty."""

    line: int
    activity_id: str
    subject: str
    occurred_at: str
    fingerprint: str
    reduction_g: int
    inputs_jcs: str
    data: bytes
    leaf: bytes
    opening: bytes


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

    lines: list[int]
    activity_ids: list[str]
    subjects: list[str]
    occurred_ats: list[str]
    fingerprints: list[str]
    reductions_g: list[int]
    inputs_jcs: list[str]
    data: list[bytes]
    leaves: list[bytes]
    openings: list[bytes]
    rejections: list[Rejection]

    @classmethod
    def empty(cls) -> PreparedChunk:
        return cls([], [], [], [], [], [], [], [], [], [], [])

    @classmethod
    def of(cls, items: Iterable[PreparedRecord | Rejection]) -> PreparedChunk:
        """The chunk of these items, given in line order."""
        chunk = cls.empty()
        for item in items:
            chunk.add(item)
        return chunk

    @classmethod
    def of_rows(cls, rows: list[Any], rejections: list[Rejection]) -> PreparedChunk:
        """The chunk of these records (PreparedRecords, or plain tuples of their fields) and
        rejections, each given in line order: the columns in one pass, no append per field."""
        if not rows:
            return cls([], [], [], [], [], [], [], [], [], [], rejections)
        return cls(*map(list, zip(*rows)), rejections)

    def add(self, item: PreparedRecord | Rejection) -> None:
        """Add the item of the next line."""
        if type(item) is not PreparedRecord:
            self.rejections.append(item)
            return
        self.lines.append(item.line)
        self.activity_ids.append(item.activity_id)
        self.subjects.append(item.subject)
        self.occurred_ats.append(item.occurred_at)
        self.fingerprints.append(item.fingerprint)
        self.reductions_g.append(item.reduction_g)
        self.inputs_jcs.append(item.inputs_jcs)
        self.data.append(item.data)
        self.leaves.append(item.leaf)
        self.openings.append(item.opening)

    def rows(self) -> Iterator[tuple[int, str, str, str, str, int, str, bytes, bytes, bytes]]:
        """Each record's fields in PreparedRecord's order, to unpack (a plain tuple each)."""
        return zip(self.lines, self.activity_ids, self.subjects, self.occurred_ats, self.fingerprints,
                   self.reductions_g, self.inputs_jcs, self.data, self.leaves, self.openings, strict=True)
