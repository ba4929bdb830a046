"""``models.prior_shift``: a customer's own mix of next jobs shifts the global head, chosen on
validation only when it helps; the only customer of a dataset (the population itself) is left
alone; the shift travels in the artifact."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from models.inference import Anticipator
from models.prior_shift import History, PriorShift
from models.train import TrainedModel

HOUR = 3600.0


def _two_residents(n: int, seed: int) -> tuple[History, np.ndarray]:
    """Two customers seen at the same times with a shared sensor picture (the global head can
    only give the population's mix), but customer 0 mostly does job 0 next and customer 1 job 1."""
    rng = np.random.default_rng(seed)
    times = np.repeat(np.arange(n) * 900.0, 2)
    customer = np.tile(np.array([0, 1], np.int32), n)
    favourite = customer  # job c is customer c's habit
    job = np.where(rng.random(2 * n) < 0.7, favourite, rng.integers(0, 3, 2 * n)).astype(np.int32)
    p_global = np.tile(np.array([0.4, 0.35, 0.25]), (2 * n, 1))
    return History(customer, times, job), p_global


def test_each_customers_own_mix_moves_the_shared_answer_towards_its_habit() -> None:
    history, _ = _two_residents(400, 0)
    held_out, p = _two_residents(200, 1)
    shift = PriorShift.fit(p, held_out.job, held_out.customer, held_out.times, history)
    assert shift.weight > 0.0
    shifted = shift.for_customers(p, held_out.customer, held_out.times, history)
    assert np.allclose(shifted.sum(axis=1), 1.0)
    assert (shifted[held_out.customer == 0].argmax(axis=1) == 0).all()
    assert (shifted[held_out.customer == 1].argmax(axis=1) == 1).all()
    before = -np.log(p[np.arange(p.shape[0]), held_out.job]).mean()
    after = -np.log(shifted[np.arange(p.shape[0]), held_out.job]).mean()
    assert after < before


def test_the_only_customer_is_the_population_so_nothing_moves() -> None:
    history, _ = _two_residents(300, 2)
    alone = history.take(history.customer == 0)
    shift = PriorShift.over(alone, weight=1.5, strength=2.0, buckets=8, n_jobs=3)
    assert np.allclose(shift.multipliers(alone, 1), 1.0)
    held_out, p = _two_residents(100, 3)
    solo = held_out.take(held_out.customer == 0)
    fitted = PriorShift.fit(p[: solo.job.size], solo.job, solo.customer, solo.times, alone)
    assert fitted.weight == 0.0
    assert np.array_equal(fitted.for_customers(p[: solo.job.size], solo.customer, solo.times, alone), p[: solo.job.size])


def test_a_customer_with_no_history_keeps_the_global_probabilities() -> None:
    history, p = _two_residents(200, 4)
    shift = PriorShift.over(history, weight=1.0, strength=5.0, buckets=1, n_jobs=3)
    newcomer = np.full(4, 2, np.int32)  # customer index 2 never seen
    out = shift.for_customers(p[:4], newcomer, np.zeros(4), history)
    assert np.allclose(out, p[:4])


def test_shrinkage_grows_with_evidence() -> None:
    history, _ = _two_residents(400, 5)
    few = history.take(np.arange(history.job.size) < 20)
    theta_few = PriorShift.over(history, weight=1.0, strength=5.0, buckets=1, n_jobs=3).multipliers(few, 2)
    theta_many = PriorShift.over(history, weight=1.0, strength=5.0, buckets=1, n_jobs=3).multipliers(history, 2)
    assert abs(np.log(theta_few[0, 0, 0])) < abs(np.log(theta_many[0, 0, 0]))


def test_a_shift_survives_json_and_the_trained_artifact_carries_it(small_model: TrainedModel, small_artifact: Path) -> None:
    history, _ = _two_residents(50, 6)
    shift = PriorShift.over(history, weight=1.25, strength=5.0, buckets=8, n_jobs=3)
    assert PriorShift.from_dict(shift.to_dict()) == shift
    trained = small_model.heads["next_job"].prior_shift
    assert trained is not None
    loaded = Anticipator.load(small_artifact).prior_shift
    assert loaded == trained
    assert loaded.n_jobs == len(small_model.jobs)
    assert "prior_shift_weight" in small_model.heads["next_job"].validation


def test_the_shipped_artifact_loads_with_a_shift_or_without_one() -> None:
    model = Anticipator.load()
    assert model.prior_shift.weight >= 0.0 and model.prior_shift.n_jobs == len(model.jobs)


def test_the_temperature_after_the_shift_is_kept_and_an_older_meta_reads_as_one() -> None:
    history, _ = _two_residents(100, 7)
    base = PriorShift.over(history, weight=1.0, strength=5.0, buckets=1, n_jobs=3)
    tempered = PriorShift(base.weight, base.strength, base.population, 1.2)
    assert PriorShift.from_dict(tempered.to_dict()) == tempered
    assert tempered.with_population(history).temperature == 1.2
    older = {k: v for k, v in base.to_dict().items() if k != "temperature"}
    assert PriorShift.from_dict(older).temperature == 1.0
    p = np.array([[0.6, 0.3, 0.1]])
    flatter = tempered.apply(p, np.ones(3))
    assert flatter[0, 0] < 0.6 and np.isclose(flatter.sum(), 1.0)  # T > 1 flattens


def test_no_shift_means_no_temperature_either() -> None:
    history, _ = _two_residents(300, 8)
    alone = history.take(history.customer == 0)
    held_out, p = _two_residents(100, 9)
    solo = held_out.take(held_out.customer == 0)
    fitted = PriorShift.fit(p[: solo.job.size], solo.job, solo.customer, solo.times, alone)
    assert fitted.weight == 0.0 and fitted.temperature == 1.0
