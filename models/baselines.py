"""Baselines the learned heads must beat: count tables with Laplace smoothing.

All four follow the scikit-learn contract (``fit`` returns ``self``, learned state ends in
``_``) and see what a hub would know at anticipation time ``t``: the time and the current or
last job (ground truth or recognised, the same as the model gets). Laplace smoothing (one
pseudo-count per job per context) keeps every probability positive, so log-loss is finite.

* :class:`Majority` — the training frequency of each next job, whatever the context;
* :class:`TimeOfDay` — next job given the time-of-day bucket (8 × 3 h);
* :class:`Markov` — next job given the last (first-order Markov chain);
* :class:`MarkovTimeOfDay` — next job given the last and the time-of-day bucket.

Each also estimates ``expected_in_s`` for a job as the median training wait for that job in
the same context (backing off to the job's median, then to the overall median).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from numpy.typing import NDArray

__all__ = ["BASELINES", "Baseline", "Majority", "Markov", "MarkovTimeOfDay", "TimeOfDay", "tod_bucket"]

_DAY = 86400.0


def tod_bucket(times: NDArray[np.float64], *, buckets: int = 8, tz_offset_s: float = 0.0) -> NDArray[np.int64]:
    """Index of the time-of-day bucket (``buckets`` equal slices of the local day) of each time."""
    seconds = np.mod(np.asarray(times, np.float64) + tz_offset_s, _DAY)
    return np.minimum((seconds * buckets / _DAY).astype(np.int64), buckets - 1)


class Baseline:
    """A count table over a context key; subclasses say which key (:meth:`_keys`)."""

    name: ClassVar[str] = "baseline"

    def __init__(self, n_jobs: int, *, smoothing: float = 1.0, buckets: int = 8) -> None:
        self.n_jobs = n_jobs
        self.smoothing = smoothing
        self.buckets = buckets

    def _keys(self, times: NDArray[np.float64], last: NDArray[np.int32]) -> NDArray[np.int64]:
        raise NotImplementedError

    @property
    def _n_keys(self) -> int:
        raise NotImplementedError

    def fit(
        self,
        times: NDArray[np.float64],
        last: NDArray[np.int32],
        next_job: NDArray[np.int32],
        wait_s: NDArray[np.float64] | None = None,
    ) -> Baseline:
        """Count next jobs per context; ``last`` is the current/last job (-1 none), ``next_job`` >= 0."""
        keys = self._keys(times, last)
        counts = np.zeros((self._n_keys, self.n_jobs), np.float64)
        np.add.at(counts, (keys, next_job), 1.0)
        self.counts_ = counts
        self.wait_ = np.full((self._n_keys, self.n_jobs), np.nan)
        if wait_s is not None and wait_s.size:
            overall = float(np.median(wait_s))
            per_job = np.full(self.n_jobs, overall)
            for j in np.unique(next_job):
                per_job[j] = np.median(wait_s[next_job == j])
            self.wait_[:] = per_job
            order = np.lexsort((next_job, keys))
            k_sorted, j_sorted, w_sorted = keys[order], next_job[order], wait_s[order]
            pair = k_sorted * self.n_jobs + j_sorted
            bounds = np.flatnonzero(np.diff(pair)) + 1
            for chunk_k, chunk_j, chunk_w in zip(
                np.split(k_sorted, bounds), np.split(j_sorted, bounds), np.split(w_sorted, bounds), strict=True
            ):
                if chunk_w.size >= 3:  # too few waits say little: keep the job's median
                    self.wait_[chunk_k[0], chunk_j[0]] = np.median(chunk_w)
        return self

    def predict_proba(self, times: NDArray[np.float64], last: NDArray[np.int32]) -> NDArray[np.float64]:
        """``(n, J)`` smoothed next-job probabilities."""
        rows = self.counts_[self._keys(times, last)] + self.smoothing
        return rows / rows.sum(axis=1, keepdims=True)

    def expected_in(self, times: NDArray[np.float64], last: NDArray[np.int32]) -> NDArray[np.float64]:
        """``(n, J)`` median training wait per job in each row's context (seconds)."""
        return self.wait_[self._keys(times, last)]


class Majority(Baseline):
    name = "majority"

    @property
    def _n_keys(self) -> int:
        return 1

    def _keys(self, times: NDArray[np.float64], last: NDArray[np.int32]) -> NDArray[np.int64]:
        return np.zeros(np.shape(times), np.int64)


class TimeOfDay(Baseline):
    name = "time_of_day"

    @property
    def _n_keys(self) -> int:
        return self.buckets

    def _keys(self, times: NDArray[np.float64], last: NDArray[np.int32]) -> NDArray[np.int64]:
        return tod_bucket(times, buckets=self.buckets)


class Markov(Baseline):
    name = "markov"

    @property
    def _n_keys(self) -> int:
        return self.n_jobs + 1  # the last key: no job yet

    def _keys(self, times: NDArray[np.float64], last: NDArray[np.int32]) -> NDArray[np.int64]:
        last = np.asarray(last, np.int64)
        return np.where((last >= 0) & (last < self.n_jobs), last, self.n_jobs)


class MarkovTimeOfDay(Baseline):
    name = "markov_tod"

    @property
    def _n_keys(self) -> int:
        return (self.n_jobs + 1) * self.buckets

    def _keys(self, times: NDArray[np.float64], last: NDArray[np.int32]) -> NDArray[np.int64]:
        last = np.asarray(last, np.int64)
        job = np.where((last >= 0) & (last < self.n_jobs), last, self.n_jobs)
        return job * self.buckets + tod_bucket(times, buckets=self.buckets)


BASELINES: tuple[type[Baseline], ...] = (Majority, TimeOfDay, Markov, MarkovTimeOfDay)
