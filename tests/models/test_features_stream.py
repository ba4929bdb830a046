"""FeatureStream: the hub's incremental features equal the batch kernel's, in bounded memory."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devices.capabilities import KIND
from models.features import EventWindow, compute_features
from models.features_stream import FeatureStream
from models.schema import FeatureSchema

SMALL = FeatureSchema(
    devices=("d0", "d1", "d2"), rooms=("r0", "r1"), markets=("m0",), jobs=("j0", "j1"),
    horizons_s=(5.0, 17.5, 40.0), since_cap_s=60.0,
)


def head(window: EventWindow, lo: int, hi: int) -> EventWindow:
    return EventWindow(*(a[lo:hi] for a in window))


def random_window(rng: np.random.Generator, n: int, span: float) -> EventWindow:
    return EventWindow.from_arrays(
        np.sort(rng.integers(0, int(span), n)).astype(np.float64),
        rng.integers(-1, 4, n), rng.integers(-1, 3, n), rng.integers(-1, len(KIND), n),
        rng.choice([0.0, 1.0, 7.0, math.nan], n),
    )


@settings(max_examples=80, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), capacity=st.sampled_from([1, 4, 64]), ahead=st.integers(0, 5))
def test_stream_rows_equal_the_batch_kernel_rows(seed: int, capacity: int, ahead: int) -> None:
    rng = np.random.default_rng(seed)
    w = random_window(rng, int(rng.integers(0, 80)), 300)
    times = np.sort(rng.uniform(-10, 320, int(rng.integers(1, 30))))
    markets, jobs = rng.integers(-1, 2, times.size), rng.integers(-1, 3, times.size)
    job_since = rng.choice([math.nan, 0.0, 12.5, 1e9], times.size)
    expected = compute_features(SMALL, w, times, markets=markets, jobs=jobs, job_since_s=job_since, tz_offset_s=3600.0)
    stream = FeatureStream(SMALL, capacity=capacity)
    pushed = 0
    for j, t in enumerate(times):
        # Everything up to t, and sometimes a few events from the future (they must wait).
        due = int(np.searchsorted(w.ts, t, side="right")) + ahead
        while pushed < min(due, w.ts.size):
            step = int(rng.integers(1, 4))
            stream.push(head(w, pushed, min(pushed + step, due, w.ts.size)))
            pushed = min(pushed + step, due, w.ts.size)
        row = stream.at(t, market=int(markets[j]), job=int(jobs[j]), job_since_s=float(job_since[j]), tz_offset_s=3600.0)
        np.testing.assert_allclose(row, expected[j], rtol=0, atol=1e-6)


def test_stream_memory_follows_the_longest_horizon_not_the_history() -> None:
    rng = np.random.default_rng(5)
    w = random_window(rng, 5000, 50_000)  # ~one event per 10 s; the longest horizon is 40 s
    stream = FeatureStream(SMALL, capacity=8)
    batch = compute_features(SMALL, w, w.ts[99::100])
    for k, j in enumerate(range(99, w.ts.size, 100)):
        stream.push(head(w, j - 99, j + 1))
        np.testing.assert_allclose(stream.at(float(w.ts[j])), batch[k], rtol=0, atol=1e-6)
    assert stream.buffered <= 300  # one push (100) plus what the 40 s horizon holds, plus slack


def test_stream_refuses_events_or_queries_that_go_back_in_time() -> None:
    stream = FeatureStream(SMALL)
    stream.push(EventWindow.from_arrays([10.0, 11.0], [0, 0], [0, 0], [0, 0], [1.0, 1.0]))
    with pytest.raises(ValueError, match="time order"):
        stream.push(EventWindow.from_arrays([10.5], [0], [0], [0], [1.0]))
    stream.at(20.0)
    with pytest.raises(ValueError, match="non-decreasing"):
        stream.at(19.0)
    assert stream.at(20.0)[SMALL.names.index("dev[d0].act_40s")] == 2.0  # the same time again is fine
