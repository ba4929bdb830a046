"""PersonalLayer: a Bayesian multiplier over the global next-job probabilities."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.personalise import Context, PersonalLayer, sacrifice

JOBS = ("make_coffee", "make_tea", "shower", "leave_home")
COFFEE, TEA, SHOWER, LEAVE = range(4)
MORNING = Context.at(7 * 3600.0, last_job=SHOWER, job_since_s=60.0)
GLOBAL = np.array([0.6, 0.1, 0.1, 0.2])


def test_context_buckets_the_hour_the_last_job_and_its_age() -> None:
    assert MORNING == Context(7, SHOWER, 1)
    assert Context.at(7 * 3600.0, last_job=SHOWER, job_since_s=0.0).since == 0
    assert Context.at(7 * 3600.0, last_job=SHOWER, job_since_s=7200.0).since == 3
    assert Context.at(23.5 * 3600.0, tz_offset_s=3600.0).hour == 0
    assert Context.at(0.0, last_job=SHOWER) == Context(0, -1, -1)  # no age: no job known


def test_without_evidence_the_global_model_passes_through() -> None:
    layer = PersonalLayer(JOBS)
    assert np.allclose(layer.adjust(GLOBAL, MORNING), GLOBAL)


def test_a_tea_drinker_moves_the_morning_towards_tea_and_more_evidence_moves_it_further() -> None:
    layer = PersonalLayer(JOBS)
    seen = []
    for _ in range(20):
        layer.observe(MORNING, TEA, GLOBAL)
        seen.append(layer.adjust(GLOBAL, MORNING)[TEA])
    assert seen[0] > GLOBAL[TEA]
    assert all(b >= a for a, b in zip(seen, seen[1:], strict=False))
    assert seen[-1] > 0.8
    assert layer.evidence(MORNING) == 20


def test_a_customer_who_behaves_as_the_global_model_expects_is_left_alone() -> None:
    layer = PersonalLayer(JOBS)
    rng = np.random.default_rng(0)
    for job in rng.choice(4, size=2000, p=GLOBAL):
        layer.observe(MORNING, int(job), GLOBAL)
    assert np.allclose(layer.adjust(GLOBAL, MORNING), GLOBAL, atol=0.04)


def test_evidence_in_one_hour_reaches_other_hours_only_through_the_coarser_buckets() -> None:
    layer = PersonalLayer(JOBS)
    for _ in range(10):
        layer.observe(MORNING, TEA, GLOBAL)
    evening = Context.at(19 * 3600.0, last_job=SHOWER, job_since_s=60.0)
    morning_tea = layer.adjust(GLOBAL, MORNING)[TEA]
    evening_tea = layer.adjust(GLOBAL, evening)[TEA]
    assert GLOBAL[TEA] < evening_tea < morning_tea


def test_dismissing_a_job_lowers_it_and_accepting_raises_it() -> None:
    layer = PersonalLayer(JOBS)
    for _ in range(3):
        layer.feedback(MORNING, COFFEE, "dismissed")
    assert layer.adjust(GLOBAL, MORNING)[COFFEE] < GLOBAL[COFFEE]
    other = PersonalLayer(JOBS)
    other.feedback(MORNING, SHOWER, "accepted")
    other.feedback(MORNING, SHOWER, "done")
    assert other.adjust(GLOBAL, MORNING)[SHOWER] > GLOBAL[SHOWER]
    with pytest.raises(ValueError):
        other.feedback(MORNING, SHOWER, "maybe")  # type: ignore[arg-type]


def test_unknown_jobs_are_ignored() -> None:
    layer = PersonalLayer(JOBS)
    layer.observe(MORNING, 17, GLOBAL)
    layer.feedback(MORNING, -1, "accepted")
    assert layer.observations == 0
    assert np.allclose(layer.adjust(GLOBAL, MORNING), GLOBAL)


def test_state_round_trips_through_json_and_follows_job_names_into_a_new_catalogue() -> None:
    layer = PersonalLayer(JOBS, strength=2.0)
    for job in (TEA, TEA, LEAVE):
        layer.observe(MORNING, job, GLOBAL)
    state = json.loads(json.dumps(layer.to_dict()))
    again = PersonalLayer.from_dict(state)
    assert again.strength == 2.0 and again.observations == 3
    assert np.allclose(again.adjust(GLOBAL, MORNING), layer.adjust(GLOBAL, MORNING))
    grown = PersonalLayer.from_dict(state, jobs=("make_tea", "new_job", "leave_home", "make_coffee", "shower"))
    p = grown.adjust(np.array([0.1, 0.1, 0.2, 0.5, 0.1]), MORNING)
    assert p[0] > 0.1  # tea evidence followed the name to its new index
    with pytest.raises(ValueError):
        PersonalLayer.from_dict({"format": "other"})


def test_sacrifice_is_the_probability_not_given_to_what_happened() -> None:
    assert sacrifice(np.array([0.7, 0.3]), 0) == pytest.approx(0.3)
    assert sacrifice(np.array([0.0, 1.0]), 1) == 0.0


@settings(max_examples=60, deadline=None)
@given(
    p=st.lists(st.floats(0.001, 1.0), min_size=4, max_size=4),
    observed=st.lists(st.integers(0, 3), max_size=30),
    hour=st.integers(0, 23),
    since=st.one_of(st.just(math.nan), st.floats(0, 1e6)),
)
def test_adjusted_probabilities_are_always_a_distribution(p: list[float], observed: list[int], hour: int, since: float) -> None:
    pg = np.array(p) / sum(p)
    layer = PersonalLayer(JOBS)
    ctx = Context.at(hour * 3600.0, last_job=observed[0] if observed else -1, job_since_s=since)
    for job in observed:
        layer.observe(ctx, job, pg)
    out = layer.adjust(pg, ctx)
    assert np.isfinite(out).all() and (out > 0).all()
    assert out.sum() == pytest.approx(1.0)
