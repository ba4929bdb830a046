"""Baselines: smoothed count tables over the contexts a hub knows."""

from __future__ import annotations

import numpy as np

from models.baselines import BASELINES, Majority, Markov, MarkovTimeOfDay, TimeOfDay, tod_bucket

H = 3600.0


def test_time_of_day_buckets_split_the_local_day_into_equal_slices() -> None:
    times = np.array([0.0, 2.9 * H, 3 * H, 23.99 * H, 24 * H + 7 * H])
    assert tod_bucket(times).tolist() == [0, 0, 1, 7, 2]
    assert tod_bucket(np.array([23 * H]), tz_offset_s=2 * H).tolist() == [0]


def test_every_baseline_gives_every_job_a_positive_probability() -> None:
    times = np.array([7 * H, 8 * H, 19 * H])
    last, nxt = np.array([0, 1, 2], np.int32), np.array([1, 2, 0], np.int32)
    for cls in BASELINES:
        p = cls(4).fit(times, last, nxt).predict_proba(times, last)
        assert p.shape == (3, 4)
        assert np.allclose(p.sum(axis=1), 1.0)
        assert (p > 0).all(), cls.name


def test_markov_learns_which_job_follows_which() -> None:
    last = np.array([0, 0, 0, 1, 1, 1], np.int32)
    nxt = np.array([1, 1, 1, 2, 2, 0], np.int32)
    times = np.zeros(6)
    p = Markov(3).fit(times, last, nxt).predict_proba(np.zeros(2), np.array([0, 1], np.int32))
    assert p[0].argmax() == 1 and p[1].argmax() == 2
    assert p[0, 1] == (3 + 1) / (3 + 3)  # Laplace: one pseudo-count per job


def test_time_of_day_and_markov_tod_separate_mornings_from_evenings() -> None:
    times = np.array([7 * H, 7.5 * H, 19 * H, 19.5 * H])
    last = np.zeros(4, np.int32)
    nxt = np.array([1, 1, 2, 2], np.int32)
    query = np.array([7.2 * H, 19.2 * H])
    for cls in (TimeOfDay, MarkovTimeOfDay):
        p = cls(3).fit(times, last, nxt).predict_proba(query, np.zeros(2, np.int32))
        assert p[:, 1:].argmax(axis=1).tolist() == [0, 1], cls.name
    flat = Majority(3).fit(times, last, nxt).predict_proba(query, np.zeros(2, np.int32))
    assert np.allclose(flat[0], flat[1])


def test_expected_in_is_the_median_wait_per_context_backing_off_to_the_job() -> None:
    last = np.array([0, 0, 0, 1], np.int32)
    nxt = np.array([1, 1, 1, 1], np.int32)
    wait = np.array([100.0, 200.0, 300.0, 1000.0])
    b = Markov(2).fit(np.zeros(4), last, nxt, wait)
    est = b.expected_in(np.zeros(2), np.array([0, 1], np.int32))
    assert est[0, 1] == 200.0  # three waits after job 0: their median
    assert est[1, 1] == 250.0  # one wait after job 1 says little: the job's median
