"""Anticipation points: next job, expected time, current job, context, merging and splits."""

from __future__ import annotations

import math

import numpy as np
import pytest

from models.dataset import LabelColumns
from models.targets import END, GRID, IDLE, anticipation_targets, merge_occurrences, recognised_context

H = 3600.0
WAKE, COFFEE, LEAVE, SLEEP = 0, 1, 2, 3


def labels(*rows: tuple[int, float, float], market: int = 0) -> LabelColumns:
    """(job, begin, end) rows of one customer."""
    job, begin, end = (np.array(col) for col in zip(*rows, strict=True))
    n = job.shape[0]
    return LabelColumns(
        np.zeros(n, np.int32), np.zeros(n, np.int32), job.astype(np.int32), np.full(n, market, np.int32),
        begin.astype(np.float64), end.astype(np.float64),
    )


@pytest.fixture
def morning() -> LabelColumns:
    # 07:00-07:10 wake up, 07:30-07:40 coffee, 08:00-08:01 leave; idle between.
    return labels((WAKE, 7 * H, 7 * H + 600), (COFFEE, 7.5 * H, 7.5 * H + 600), (LEAVE, 8 * H, 8 * H + 60))


def at(targets, t: float) -> int:  # type: ignore[no-untyped-def]
    hits = np.flatnonzero(targets.times == t)
    assert hits.size == 1, f"no anticipation point at {t}"
    return int(hits[0])


def test_next_job_is_the_first_label_beginning_after_t_and_expected_in_is_its_distance(morning: LabelColumns) -> None:
    tg = anticipation_targets(morning, grid_s=900.0)
    i = at(tg, 7.25 * H)  # grid point between wake-up and coffee
    assert tg.next_job[i] == COFFEE
    assert tg.expected_in_s[i] == pytest.approx(0.25 * H)
    assert tg.next_begin[i] == 7.5 * H


def test_a_label_end_is_an_anticipation_point_while_the_job_is_still_current(morning: LabelColumns) -> None:
    tg = anticipation_targets(morning, grid_s=900.0)
    i = at(tg, 7 * H + 599)
    assert tg.kind[i] == END
    assert tg.current_job[i] == WAKE
    assert tg.context_job[i] == WAKE and tg.context_since_s[i] == 0.0
    assert tg.next_job[i] == COFFEE


def test_unlabelled_time_is_idle_for_recognition_and_the_context_is_the_last_job_with_its_age(morning: LabelColumns) -> None:
    tg = anticipation_targets(morning, grid_s=900.0)
    i = at(tg, 7.25 * H)
    assert tg.kind[i] == GRID
    assert tg.current_job[i] == IDLE
    assert tg.context_job[i] == WAKE
    assert tg.context_since_s[i] == pytest.approx(0.25 * H - 600)


def test_points_without_a_next_job_or_too_far_from_it_are_skipped() -> None:
    lb = labels((WAKE, 0.0, 600.0), (SLEEP, 30 * H, 31 * H))
    tg = anticipation_targets(lb, grid_s=900.0, max_wait_s=12 * H)
    assert tg.size > 0
    assert (tg.expected_in_s <= 12 * H).all()
    assert (tg.times < 30 * H).all()  # nothing after the last label begins
    assert not ((tg.times > 600.0) & (tg.times < 18 * H)).any()  # next label more than 12 h away


def test_same_job_labels_that_touch_are_one_occurrence_but_different_jobs_are_not() -> None:
    lb = labels((SLEEP, 0.0, 100.0), (SLEEP, 130.0, 500.0), (WAKE, 500.0, 600.0), (SLEEP, 2000.0, 2100.0))
    occ = merge_occurrences(lb, merge_gap_s=60.0)
    assert occ.job.tolist() == [SLEEP, WAKE, SLEEP]
    assert occ.begin.tolist() == [0.0, 500.0, 2000.0]
    assert occ.end.tolist() == [500.0, 600.0, 2100.0]


def test_the_current_job_is_the_most_recent_of_overlapping_labels() -> None:
    # resident A sleeps 0-8 h; resident B makes coffee 2-2.1 h: at 2.05 h coffee is current,
    # at 3 h sleep still is.
    lb = labels((SLEEP, 0.0, 8 * H), (COFFEE, 2 * H, 2.1 * H), (WAKE, 8 * H, 8.1 * H))
    tg = anticipation_targets(lb, grid_s=180.0)
    assert tg.current_job[at(tg, 2 * H + 180)] == COFFEE
    assert tg.current_job[at(tg, 3 * H)] == SLEEP
    assert tg.context_job[at(tg, 3 * H)] == COFFEE  # most recently begun, ended 0.9 h ago


def test_a_training_window_keeps_no_point_whose_next_job_begins_after_the_cut(morning: LabelColumns) -> None:
    cut = 7.75 * H
    tg = anticipation_targets(morning, grid_s=300.0, until=cut, target_until=cut)
    assert tg.size > 0
    assert (tg.times < cut).all()
    assert (tg.next_begin < cut).all()
    assert set(tg.next_job.tolist()) == {COFFEE}  # points after coffee would need 08:00's label


def test_recognised_context_is_the_latest_tick_that_named_a_job() -> None:
    ticks = np.array([0.0, 60.0, 120.0, 180.0, 240.0])
    recognised = np.array([IDLE, WAKE, WAKE, IDLE, IDLE], np.int32)
    job, since = recognised_context(ticks, recognised, np.array([30.0, 120.0, 250.0]))
    assert job.tolist() == [-1, WAKE, WAKE]
    assert math.isnan(since[0])
    assert since[1:].tolist() == [0.0, 130.0]
