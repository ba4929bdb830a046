"""Per-edge progress: which seqs are stored, as an interval set.

``SeqRanges`` holds disjoint, non-adjacent closed ranges ``[from, to]`` of stored seqs. An
edge that delivers in order keeps one range ``[1, n]``, so the common update (append a
batch's run right after the end) is O(1) amortised and the whole state is a few integers.
From it follow the acknowledgement figures: the highest contiguous seq from 1
(``contiguous``) and the missing ranges below the highest seq seen (``gaps``).
"""

from __future__ import annotations

import json
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

__all__ = ["EdgeProgress", "SeqRanges"]


class SeqRanges:
    """A set of positive ints stored as sorted disjoint ranges (merged when adjacent)."""

    __slots__ = ("_starts", "_ends")

    def __init__(self, ranges: Iterable[tuple[int, int]] = ()) -> None:
        self._starts: list[int] = []
        self._ends: list[int] = []
        for lo, hi in ranges:
            self.add_range(lo, hi)

    def __len__(self) -> int:
        """How many seqs are in the set."""
        return sum(e - s + 1 for s, e in zip(self._starts, self._ends))

    def __contains__(self, seq: object) -> bool:
        if not isinstance(seq, int):
            return False
        i = bisect_right(self._starts, seq) - 1
        return i >= 0 and seq <= self._ends[i]

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return zip(self._starts, self._ends)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SeqRanges) and self._starts == other._starts and self._ends == other._ends

    def __repr__(self) -> str:
        return f"SeqRanges({list(self)!r})"

    @property
    def range_count(self) -> int:
        return len(self._starts)

    @property
    def high(self) -> int:
        """The highest seq in the set (0 when empty)."""
        return self._ends[-1] if self._ends else 0

    @property
    def contiguous(self) -> int:
        """The highest ``n`` such that every seq in ``1..n`` is in the set (0 if 1 is missing)."""
        return self._ends[0] if self._starts and self._starts[0] == 1 else 0

    def covered(self, lo: int, hi: int) -> int:
        """How many seqs of ``[lo, hi]`` are already in the set."""
        if hi < lo or not self._starts:
            return 0
        # Fast path for the common case: the run lies wholly after everything stored.
        if lo > self._ends[-1]:
            return 0
        i = max(bisect_right(self._starts, lo) - 1, 0)
        total = 0
        n = len(self._starts)
        while i < n and self._starts[i] <= hi:
            s = max(self._starts[i], lo)
            e = min(self._ends[i], hi)
            if e >= s:
                total += e - s + 1
            i += 1
        return total

    def add_range(self, lo: int, hi: int) -> int:
        """Add ``[lo, hi]``; returns how many of its seqs were new."""
        if hi < lo:
            return 0
        starts, ends = self._starts, self._ends
        if not starts or lo > ends[-1] + 1:
            starts.append(lo)
            ends.append(hi)
            return hi - lo + 1
        if lo >= starts[-1]:  # touches or overlaps only the last range
            new = max(hi - ends[-1], 0)
            if hi > ends[-1]:
                ends[-1] = hi
            return new
        new = hi - lo + 1 - self.covered(lo, hi)
        # Ranges overlapping or adjacent to [lo, hi] are i..j-1; merge them into one.
        i = bisect_left(ends, lo - 1)
        j = bisect_right(starts, hi + 1)
        if i < j:
            lo = min(lo, starts[i])
            hi = max(hi, ends[j - 1])
        starts[i:j] = [lo]
        ends[i:j] = [hi]
        return new

    def add_seqs(self, seqs: Iterable[int]) -> int:
        """Add individual seqs (any order, duplicates allowed); returns how many were new."""
        new = 0
        run_lo = run_hi = None
        for seq in sorted(set(seqs)):
            if run_hi is not None and seq == run_hi + 1:
                run_hi = seq
                continue
            if run_lo is not None and run_hi is not None:
                new += self.add_range(run_lo, run_hi)
            run_lo = run_hi = seq
        if run_lo is not None and run_hi is not None:
            new += self.add_range(run_lo, run_hi)
        return new

    def gaps(self, *, limit: int | None = None) -> list[tuple[int, int]]:
        """Missing ranges ``[from, to]`` between 1 and ``high``, lowest first, at most ``limit``."""
        out: list[tuple[int, int]] = []
        prev_end = 0
        for s, e in zip(self._starts, self._ends):
            if limit is not None and len(out) >= limit:
                break
            if s > prev_end + 1:
                out.append((prev_end + 1, s - 1))
            prev_end = e
        return out

    def to_json(self) -> str:
        return json.dumps([[s, e] for s, e in zip(self._starts, self._ends)], separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> SeqRanges:
        ranges = cls()
        for lo, hi in json.loads(text):
            ranges.add_range(int(lo), int(hi))
        return ranges


@dataclass(slots=True)
class EdgeProgress:
    """What the hub holds for one edge: stored seqs and counters, persisted with the events."""

    edge_key: int
    ranges: SeqRanges = field(default_factory=SeqRanges)
    events: int = 0
    duplicates: int = 0
    # Seqs at or below ``floor`` that the hub lacks are lost for good: the edge reported
    # (status ``oldest_seq``) that it no longer holds them (outbox overflow, purge). They
    # stay visible as gaps; the ack may pass them so the edge can drain what it still has.
    floor: int = 0

    @property
    def contiguous(self) -> int:
        return self.ranges.contiguous

    @property
    def acked_through(self) -> int:
        """``stored_through`` for the ack: contiguous from 1, stepping over lost seqs."""
        n = self.floor
        for lo, hi in self.ranges:
            if lo > n + 1:
                break
            n = max(n, hi)
        return max(n, self.ranges.contiguous)

    def ack_gaps(self, *, limit: int | None = None) -> list[tuple[int, int]]:
        """Missing ranges the edge may still resend (those above ``floor``)."""
        out = [(max(lo, self.floor + 1), hi) for lo, hi in self.ranges.gaps() if hi > self.floor]
        return out if limit is None else out[:limit]

    def lower_floor_to(self, oldest_seq: int) -> bool:
        """The edge holds nothing below ``oldest_seq``; True when that moved the floor."""
        floor = oldest_seq - 1
        if floor <= self.floor:
            return False
        self.floor = floor
        return True

    @property
    def high_seq(self) -> int:
        return self.ranges.high

    def accept(self, seqs: Sequence[int]) -> list[int] | None:
        """Record a batch's seqs; returns the positions of the new ones, or ``None`` for "all".

        A seq already stored, or repeated within the batch, is a duplicate: counted, not
        stored again. ``None`` is the fast answer for the common case (a fresh run of
        consecutive seqs), so the caller need not build an index list.
        """
        n = len(seqs)
        if n == 0:
            return []
        lo, hi = min(seqs), max(seqs)
        ranges = self.ranges
        if hi - lo + 1 == n and len(set(seqs)) == n:  # one run of consecutive seqs
            already = ranges.covered(lo, hi)
            if already == 0:
                ranges.add_range(lo, hi)
                self.events += n
                return None
            if already == n:
                self.duplicates += n
                return []
        keep: list[int] = []
        seen: set[int] = set()
        for i, seq in enumerate(seqs):
            if seq in seen or seq in ranges:
                continue
            seen.add(seq)
            keep.append(i)
        ranges.add_seqs(seen)
        self.events += len(keep)
        self.duplicates += n - len(keep)
        return keep
