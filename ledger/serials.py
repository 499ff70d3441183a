"""Sets of serial numbers as sorted, disjoint, merged half-open ranges [start, end).

One gram of CO2e is one serial. An account's active, retired and cancelled serials are each one
SerialSet; the invariant (sorted, disjoint, non-adjacent, start < end) is asserted on every change.
"""

from __future__ import annotations

from bisect import bisect_right
from typing import Iterable, Sequence

Range = tuple[int, int]


def is_merged(ranges: Sequence[Sequence[int]]) -> bool:
    """True when the ranges are sorted, disjoint and non-adjacent, each non-empty."""
    previous_end = -1
    for start, end in ranges:
        if start >= end or start <= previous_end:
            return False
        previous_end = end
    return True


def total(ranges: Iterable[Sequence[int]]) -> int:
    return sum(end - start for start, end in ranges)


class SerialSet:
    __slots__ = ("_starts", "_ends", "size_g")

    def __init__(self, ranges: Iterable[Sequence[int]] = ()):
        self._starts: list[int] = []
        self._ends: list[int] = []
        self.size_g = 0
        for start, end in ranges:
            self.add(start, end)

    def ranges(self) -> list[list[int]]:
        return [[s, e] for s, e in zip(self._starts, self._ends)]

    def __len__(self) -> int:
        return len(self._starts)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SerialSet) and self._starts == other._starts and self._ends == other._ends

    def __repr__(self) -> str:
        return f"SerialSet({self.ranges()})"

    def add(self, start: int, end: int) -> None:
        """Add [start, end), which must not overlap what the set holds; adjacent ranges merge."""
        assert start < end, (start, end)
        i = bisect_right(self._starts, start)
        if i > 0:
            assert self._ends[i - 1] <= start, "serial range overlaps the set"
        if i < len(self._starts):
            assert end <= self._starts[i], "serial range overlaps the set"
        merge_left = i > 0 and self._ends[i - 1] == start
        merge_right = i < len(self._starts) and self._starts[i] == end
        if merge_left and merge_right:
            self._ends[i - 1] = self._ends[i]
            del self._starts[i], self._ends[i]
        elif merge_left:
            self._ends[i - 1] = end
        elif merge_right:
            self._starts[i] = start
        else:
            self._starts.insert(i, start)
            self._ends.insert(i, end)
        self.size_g += end - start

    def covers(self, start: int, end: int) -> bool:
        i = bisect_right(self._starts, start) - 1
        return i >= 0 and self._ends[i] >= end

    def covers_all(self, ranges: Iterable[Sequence[int]]) -> bool:
        return all(self.covers(start, end) for start, end in ranges)

    def remove(self, start: int, end: int) -> None:
        """Remove [start, end), which the set must hold entirely."""
        i = bisect_right(self._starts, start) - 1
        assert i >= 0 and self._ends[i] >= end and start < end, "serial range not held"
        held_start, held_end = self._starts[i], self._ends[i]
        pieces = [(s, e) for s, e in ((held_start, start), (end, held_end)) if s < e]
        self._starts[i:i + 1] = [s for s, _ in pieces]
        self._ends[i:i + 1] = [e for _, e in pieces]
        self.size_g -= end - start

    def lowest(self, amount_g: int, windows: Iterable[Range] | None = None) -> list[list[int]] | None:
        """The lowest `amount_g` serials held, as merged ranges, counting only those inside the
        windows (sorted, disjoint [start, end) ranges) when given; None if the set holds fewer.
        Visits the held ranges that meet the windows up to the last one taken, never each serial."""
        starts, ends = self._starts, self._ends
        if windows is None:
            windows = ((starts[0], ends[-1]),) if starts else ()
        taken: list[list[int]] = []
        remaining = amount_g
        for window_start, window_end in windows:
            i = max(bisect_right(starts, window_start) - 1, 0)
            while remaining and i < len(starts) and starts[i] < window_end:
                start, end = max(starts[i], window_start), min(ends[i], window_end)
                if start < end:
                    end = min(end, start + remaining)
                    remaining -= end - start
                    if taken and taken[-1][1] == start:
                        taken[-1][1] = end
                    else:
                        taken.append([start, end])
                i += 1
            if not remaining:
                return taken
        return None
