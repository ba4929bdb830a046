"""Anticipation points and their targets, from a customer's label intervals.

A hub anticipates on a timer and whenever something happens, so a customer's anticipation
times are

* a regular **grid** every ``grid_s`` seconds (the timer) over the labelled span, and
* every **label end** (one second before it, so the finishing job is still current): the
  moment a job is done is when "what next?" matters most.

At each time ``t`` (all per customer; a multi-resident home whose residents are labelled
separately is imported as one customer per resident):

* ``next_job``: the job of the first label that *begins after* ``t``; ``expected_in_s`` is
  its begin − ``t``. Points with no later label, or whose next label is more than
  ``max_wait_s`` away (a gap in the data, not a habit), are skipped: next-job has no idle class.
* ``current_job`` (the recognition target): the label active at ``t`` (the most recently
  begun one when several overlap), else :data:`IDLE` — unlabelled time is an explicit class
  for recognition.
* ``context_job`` / ``context_since_s`` (the feature inputs "recognised current activity"
  and "time since last recognised job"): what the hub would know from recognition, here
  from ground truth: the most recently begun label at or before ``t`` (current or last
  completed), and ``max(0, t − its end)`` — 0 while it is still going on. ``-1``/NaN when
  nothing happened yet. Evaluation replaces these by the recognition head's own stream
  (:func:`recognised_context`).
* ``market``: the market of that label (of the next one before any), as the hub derives it
  from the edge's role and calendar.

Labels of the same job that overlap or follow each other within ``merge_gap_s`` are one
occurrence (two residents eating together, a sleep split at midnight by a day file).
Pure numpy, no I/O.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray

from models.dataset import LabelColumns

__all__ = [
    "END",
    "GRID",
    "IDLE",
    "Occurrences",
    "Targets",
    "anticipation_targets",
    "merge_occurrences",
    "recognised_context",
]

IDLE = -1
"""``current_job`` when no label is active at ``t`` (the recognition head's extra class)."""

GRID = 0
END = 1


class Occurrences(NamedTuple):
    """One customer's job occurrences, sorted by begin (merged label intervals)."""

    job: NDArray[np.int32]
    market: NDArray[np.int32]
    begin: NDArray[np.float64]
    end: NDArray[np.float64]

    @property
    def size(self) -> int:
        return int(self.begin.shape[0])


class Targets(NamedTuple):
    """Anticipation points of one customer, sorted by time; one row per point."""

    times: NDArray[np.float64]
    kind: NDArray[np.int8]  # GRID or END
    next_job: NDArray[np.int32]
    next_begin: NDArray[np.float64]  # identifies the next occurrence (several points share it)
    expected_in_s: NDArray[np.float64]
    current_job: NDArray[np.int32]  # IDLE when unlabelled
    context_job: NDArray[np.int32]  # -1 when none yet
    context_since_s: NDArray[np.float64]  # NaN when none yet
    market: NDArray[np.int32]

    def take(self, index: slice | NDArray[np.bool_] | NDArray[np.intp]) -> Targets:
        return Targets(*(col[index] for col in self))

    @property
    def size(self) -> int:
        """Number of points (``len()`` of a NamedTuple is its field count)."""
        return int(self.times.shape[0])

    @classmethod
    def concat(cls, parts: list[Targets]) -> Targets:
        if not parts:
            return _empty()
        return cls(*(np.concatenate([getattr(p, f) for p in parts]) for f in cls._fields))


def _empty() -> Targets:
    f, i = np.empty(0, np.float64), np.empty(0, np.int32)
    return Targets(f, np.empty(0, np.int8), i, f, f, i, i, f, i)


def merge_occurrences(labels: LabelColumns, *, merge_gap_s: float = 60.0) -> Occurrences:
    """One customer's labels as job occurrences: same-job labels within ``merge_gap_s`` merged."""
    order = np.lexsort((labels.end, labels.begin))
    job, market = labels.job[order], labels.market[order]
    begin, end = labels.begin[order], labels.end[order]
    keep_job: list[int] = []
    keep_market: list[int] = []
    keep_begin: list[float] = []
    keep_end: list[float] = []
    open_by_job: dict[int, int] = {}  # job -> index in keep_* of its latest occurrence
    for j, m, b, e in zip(job.tolist(), market.tolist(), begin.tolist(), end.tolist(), strict=True):
        k = open_by_job.get(j)
        if k is not None and b <= keep_end[k] + merge_gap_s:
            keep_end[k] = max(keep_end[k], e)
            continue
        open_by_job[j] = len(keep_job)
        keep_job.append(j)
        keep_market.append(m)
        keep_begin.append(b)
        keep_end.append(max(e, b))
    return Occurrences(
        np.array(keep_job, np.int32), np.array(keep_market, np.int32),
        np.array(keep_begin, np.float64), np.array(keep_end, np.float64),
    )


def anticipation_targets(
    labels: LabelColumns,
    *,
    grid_s: float = 900.0,
    max_wait_s: float = 86400.0,
    merge_gap_s: float = 60.0,
    since: float = -math.inf,
    until: float = math.inf,
    target_until: float = math.inf,
) -> Targets:
    """Anticipation points and targets for one customer's ``labels`` (see the module docstring).

    Only points with ``since <= t < until`` whose next occurrence begins before
    ``target_until`` are kept (a training split must not peek at test labels).
    """
    occ = merge_occurrences(labels, merge_gap_s=merge_gap_s)
    if occ.size == 0:
        return _empty()
    first, last = float(occ.begin[0]), float(occ.end.max())
    grid = np.arange(math.ceil(first / grid_s) * grid_s, last, grid_s, dtype=np.float64)
    ends = np.maximum(occ.begin, occ.end - 1.0)
    times = np.concatenate([grid, ends])
    kind = np.concatenate([np.full(grid.shape, GRID, np.int8), np.full(ends.shape, END, np.int8)])
    order = np.argsort(times, kind="stable")
    times, kind = times[order], kind[order]
    times, first_of = np.unique(times, return_index=True)  # a grid point and an end coinciding: one point
    kind = kind[first_of]
    keep = (times >= since) & (times < until)
    times, kind = times[keep], kind[keep]

    nxt = np.searchsorted(occ.begin, times, side="right")
    has_next = nxt < occ.size
    nxt_c = np.minimum(nxt, occ.size - 1)
    next_begin = occ.begin[nxt_c]
    wait = next_begin - times
    keep = has_next & (wait <= max_wait_s) & (next_begin < target_until)
    times, kind, nxt_c, next_begin, wait = times[keep], kind[keep], nxt_c[keep], next_begin[keep], wait[keep]

    latest = np.searchsorted(occ.begin, times, side="right") - 1  # most recently begun at or before t
    has_ctx = latest >= 0
    latest_c = np.maximum(latest, 0)
    context_job = np.where(has_ctx, occ.job[latest_c], -1).astype(np.int32)
    context_since = np.where(has_ctx, np.maximum(0.0, times - occ.end[latest_c]), np.nan)
    market = np.where(has_ctx, occ.market[latest_c], occ.market[nxt_c]).astype(np.int32)
    current = _active(occ, times, latest)
    return Targets(
        times, kind, occ.job[nxt_c].astype(np.int32), next_begin, wait,
        current, context_job, context_since, market,
    )


def _active(occ: Occurrences, times: NDArray[np.float64], latest: NDArray[np.intp]) -> NDArray[np.int32]:
    """The job active at each time (most recently begun among overlapping ones), else IDLE."""
    current = np.full(times.shape, IDLE, np.int32)
    # Walk back over earlier occurrences only as far as one of them could still be active.
    longest = float((occ.end - occ.begin).max())
    unresolved = latest >= 0
    k = latest.copy()
    while unresolved.any():
        idx = np.flatnonzero(unresolved)
        kk = k[idx]
        active = occ.end[kk] > times[idx]
        current[idx[active]] = occ.job[kk[active]]
        still = ~active & (kk > 0) & (occ.begin[np.maximum(kk - 1, 0)] > times[idx] - longest)
        unresolved[:] = False
        unresolved[idx[still]] = True
        k[idx[still]] -= 1
    return current


def recognised_context(
    ticks: NDArray[np.float64],
    recognised: NDArray[np.int32],
    times: NDArray[np.float64],
) -> tuple[NDArray[np.int32], NDArray[np.float64]]:
    """``(context_job, context_since_s)`` at ``times`` from a recognition stream.

    ``recognised[i]`` is the job the recognition head reported at ``ticks[i]`` (sorted), IDLE
    for none. At ``t`` the context is the latest tick ``<= t`` that recognised a job, and the
    time since is ``t`` minus that tick (0 when the job is recognised right now) — what a hub
    running recognition on its timer knows, with no ground truth.
    """
    seen = recognised != IDLE
    job_ticks, jobs = ticks[seen], recognised[seen]
    k = np.searchsorted(job_ticks, times, side="right") - 1
    has = k >= 0
    kc = np.maximum(k, 0)
    if job_ticks.size == 0:
        return np.full(times.shape, -1, np.int32), np.full(times.shape, np.nan)
    job = np.where(has, jobs[kc], -1).astype(np.int32)
    since = np.where(has, times - job_ticks[kc], np.nan)
    return job, since
