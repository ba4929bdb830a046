"""Anticipator: the hub's API over an artifact — predictions, context feedback, explanations."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from devices.errors import ModelError
from models.dataset import Dataset
from models.features import EventWindow, compute_features, features_at
from models.inference import Anticipator, Reason, RecognitionState, because
from models.samples import build_samples, customer_window


@pytest.fixture(scope="module")
def model(small_artifact: Path) -> Anticipator:
    return Anticipator.load(small_artifact)


@pytest.fixture(scope="module")
def rows(model: Anticipator, small_dataset: Dataset) -> np.ndarray:
    return build_samples(model.schema, small_dataset, part="test", fraction=0.7).features[:50]


def test_load_describes_the_model(model: Anticipator, small_dataset: Dataset) -> None:
    assert model.model_id == "genius-test@0.1.0" and model.name == "genius-test" and model.version == "0.1.0"
    assert model.jobs == small_dataset.jobs and model.markets == small_dataset.markets
    assert model.schema.n_features == model.meta.heads["next_job"].input_width


def test_predict_gives_distributions_over_jobs_and_positive_times(model: Anticipator, rows: np.ndarray) -> None:
    p = model.predict(rows)
    n, j = rows.shape[0], len(model.jobs)
    assert p.recognition.shape == (n, j + 1) and p.next_job.shape == (n, j) and p.expected_in_s.shape == (n, j)
    assert np.allclose(p.recognition.sum(axis=1), 1.0, atol=1e-5)
    assert np.allclose(p.next_job.sum(axis=1), 1.0, atol=1e-5)
    assert (p.next_job > 0).all()  # calibrated: every job stays possible
    assert (p.expected_in_s >= 0).all() and np.isfinite(p.expected_in_s).all()
    single = model.predict(rows[0])
    assert np.allclose(single.next_job[0], p.next_job[0], atol=1e-6)


def test_predict_refuses_rows_of_the_wrong_width(model: Anticipator) -> None:
    with pytest.raises(ValueError, match="features must be"):
        model.predict(np.zeros((1, 3), np.float32))


def test_with_context_sets_the_job_inputs_as_the_feature_kernels_do(model: Anticipator, small_dataset: Dataset) -> None:
    schema = model.schema
    window = customer_window(schema, small_dataset, small_dataset.customer(0))
    t = float(window.ts[len(window.ts) // 2])
    for job, since in ((2, 0.0), (1, 5400.0), (-1, math.nan)):
        want = compute_features(schema, window, [t], jobs=[job], job_since_s=[since])[0]
        got = model.with_context(features_at(schema, window, t), job, since)[0]
        assert np.allclose(got, want, atol=1e-6)


def test_anticipate_runs_recognition_feeds_it_back_and_predicts(model: Anticipator, small_dataset: Dataset) -> None:
    window = customer_window(model.schema, small_dataset, small_dataset.customer(1))
    t = float(window.ts[-1])
    state = RecognitionState(job=0, at=t - 600.0)
    prediction, x = model.anticipate(window, t, market=0, state=state)
    assert prediction.next_job.shape == (1, len(model.jobs))
    recognised = int(prediction.recognition[0].argmax())
    expected = (recognised, t) if recognised < len(model.jobs) else (0, t - 600.0)
    assert (state.job, state.at) == expected
    assert np.allclose(model.next_job(x), prediction.next_job)


def test_unknown_devices_and_rooms_contribute_nothing_and_never_crash(model: Anticipator) -> None:
    schema = model.schema
    hub_devices = ["not-in-the-catalogue", schema.devices[0]]
    dev = schema.index_of("devices", hub_devices)
    assert dev.tolist() == [-1, 0]
    window = EventWindow.from_arrays([10.0, 20.0], dev, [-1, -1], [0, 0], [1.0, 1.0])
    prediction, x = model.anticipate(window, 30.0)
    assert np.isfinite(prediction.next_job).all()
    assert x[0] == 1.0  # the known device's 5-minute count; the unknown one went nowhere


def test_explanations_name_signals_whose_removal_lowers_the_job(model: Anticipator, rows: np.ndarray) -> None:
    explained = 0
    for x in rows[:20]:
        job = int(model.next_job(x)[0].argmax())
        reasons = model.explain(x, job, top=3)
        assert len(reasons) <= 3
        assert all(r.weight > 0 for r in reasons)
        assert [r.weight for r in reasons] == sorted((r.weight for r in reasons), reverse=True)
        groups = {g.name: g for g in model.groups}
        neutral = np.asarray(model.meta.neutral, np.float32)
        for reason in reasons:
            occluded = x.copy()
            cols = groups[reason.group].columns
            occluded[cols] = neutral[cols]
            drop = model.next_job(x)[0, job] - model.next_job(occluded)[0, job]
            assert drop == pytest.approx(reason.weight, abs=1e-5)
        explained += bool(reasons)
    assert explained > 0


def test_explain_checks_its_inputs(model: Anticipator, rows: np.ndarray) -> None:
    with pytest.raises(ValueError):
        model.explain(rows[0], len(model.jobs))
    with pytest.raises(ValueError):
        model.explain(rows[0][:5], 0)
    assert model.explain(np.asarray(model.meta.neutral, np.float32), 0) == []  # nothing to blame


def test_because_turns_reasons_into_sentences() -> None:
    reasons = [
        Reason("room:kitchen", 0.3, "5m"),
        Reason("time_of_day", 0.2, "morning"),
        Reason("day_of_week", 0.1, "weekday"),
        Reason("job", 0.1, "wake_up"),
        Reason("device:kitchen/kettle", 0.05, "on"),
        Reason("device:front_door", 0.04, "ago:7200"),
        Reason("market", 0.03, "home:weekend"),
    ]
    assert because(reasons, "make_coffee") == [
        "activity in the kitchen in the last 5 min",
        "it is a weekday morning",
        "you usually make coffee after wake up",
        "the kitchen kettle is on",
        "front door active 2 h ago",
        "you are at home at the weekend",
    ]
    assert because([Reason("day_of_week", 0.1, "weekend")], "x") == ["it is the weekend"]


def test_a_folder_without_its_heads_is_a_model_error(small_artifact: Path, tmp_path: Path) -> None:
    (tmp_path / "meta.json").write_bytes((small_artifact / "meta.json").read_bytes())
    with pytest.raises(ModelError, match="cannot load"):
        Anticipator.load(tmp_path)


def test_the_shipped_model_loads_by_default_and_anticipates() -> None:
    model = Anticipator.load()
    assert model.model_id == "genius-sim@1.0.0"
    window = EventWindow.from_arrays([0.0, 60.0], [0, 1], [0, 1], [0, 0], [1.0, 1.0])
    prediction, _ = model.anticipate(window, 120.0, market=0)
    assert prediction.next_job.shape == (1, len(model.jobs))
