"""Training the three heads with scikit-learn: recognition, next job, expected time.

Every head is ``log1p(counts) → StandardScaler →`` a small model: tens of KB as ONNX, tens of
microseconds per row, and the same hyperparameters on every dataset — nothing here looks at
which dataset it is given. Per head:

* **recognition** — which job is going on now, an MLP: features without the job block
  (``features[:, :layout.job]``, so it never sees its own output) → ``J + 1`` classes, the
  last one ``idle``.
* **next_job** — which job comes next, a strongly regularised multinomial logistic
  regression over all features (with the recognised current/last job) and smooth
  time-of-day indicators → ``J`` classes, calibrated (:mod:`models.calibration`), plus how
  far to shift it towards a customer's own mix of jobs (:mod:`models.prior_shift`).
* **expected_in** — seconds until the next job begins *given* which job it is: features plus
  a one-hot of the job → ``log1p(seconds)``; at inference one row per job, so every job
  gets its own estimate.

MLP epochs are chosen on a chronologically later validation slice (the last
``validation_fraction`` of each customer's training points), with an update budget so a
small dataset gets more passes than a large one; then the head is refit on all training
points for that many epochs. The next-job calibration and prior-shift weight are fitted on
the same slice (by a fit that did not see it) and kept for the refit. Reproducible by ``seed``.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from devices.errors import ModelError
from models.calibration import Calibration, log_loss
from models.dataset import Dataset
from models.heads import HeadName, expected_in_rows
from models.prior_shift import History, PriorShift
from models.samples import Part, Recogniser, Samples, TargetRules, build_samples, chronological_cut, schema_for
from models.schema import FeatureSchema
from models.targets import IDLE
from models.transforms import ContextExpand, CountLog

__all__ = [
    "Head",
    "Progress",
    "TrainConfig",
    "TrainedModel",
    "neutral_vector",
    "train",
]

log = logging.getLogger(__name__)

Progress = Callable[[str, float, float], None]
"""``progress(task, completed, total)``: called as training advances (for a progress bar)."""


class TrainConfig(BaseModel):
    """Hyperparameters: the same for every dataset (no per-dataset tuning)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    next_job_c: float = 0.01  # inverse L2 strength of the next-job logistic regression
    time_bumps: int = 8
    recognition_hidden: tuple[int, ...] = (64,)
    regressor_hidden: tuple[int, ...] = (32,)
    alpha: float = 1e-3
    learning_rate: float = 1e-3
    batch_size: int = 256
    updates: int = 4000  # gradient steps per head fit: many epochs on small data, few on large
    min_epochs: int = 5
    max_epochs: int = 60
    patience: int = 6
    validation_fraction: float = 0.15
    grid_s: float = 900.0
    max_wait_s: float = 86400.0
    merge_gap_s: float = 60.0
    tick_s: float = 120.0
    context: Literal["recognised", "truth"] = "recognised"

    @property
    def rules(self) -> TargetRules:
        return TargetRules(self.grid_s, self.max_wait_s, self.merge_gap_s, self.tick_s)


@dataclass
class Head:
    """One fitted head: a scikit-learn pipeline and what to do with its output."""

    name: HeadName
    pipeline: Pipeline
    input_width: int
    epochs: int
    calibration: Calibration | None = None
    validation: dict[str, float] = field(default_factory=dict)
    classes: tuple[int, ...] = ()  # output column k is class classes[k] (classifiers)
    prior_shift: PriorShift | None = None  # next job: towards a customer's own mix (models.prior_shift)


@dataclass
class TrainedModel:
    """The three heads plus everything an artifact needs to describe them."""

    schema: FeatureSchema
    heads: dict[HeadName, Head]
    neutral: NDArray[np.float32]
    config: TrainConfig
    seed: int
    stats: dict[str, Any]

    @property
    def jobs(self) -> tuple[str, ...]:
        return self.schema.jobs

    @property
    def markets(self) -> tuple[str, ...]:
        return self.schema.markets


def neutral_vector(schema: FeatureSchema, features: NDArray[np.float32]) -> NDArray[np.float32]:
    """The value each column takes when its signal is absent, for explanation by occlusion.

    Activity counts and states 0, ``since`` 1.0 (never), market and job one-hots 0 and
    ``job.since`` 1.0 (none recognised); time of day and day of week the training mean
    (no information about the time).
    """
    lay = schema.layout
    neutral = np.zeros(schema.n_features, np.float32)
    neutral[lay.since : lay.state] = 1.0
    if features.shape[0]:
        neutral[lay.time : lay.market] = features[:, lay.time : lay.market].mean(axis=0)
    neutral[lay.job_since] = 1.0
    return neutral


def train(
    dataset: Dataset,
    *,
    config: TrainConfig | None = None,
    seed: int = 0,
    fraction: float | None = None,
    customers: list[int] | None = None,
    progress: Progress | None = None,
) -> TrainedModel:
    """Train all heads on ``dataset`` (all of it, or the first ``fraction`` of each customer's days;
    only the ``customers`` given, by index, when given).

    The recognition head learns from ground truth. The next-job and expected-time heads see
    the job inputs a hub would give them (``config.context``): by default the recognition
    head's own stream, cross-fitted — each half of a customer's days gets contexts from a
    recognition head trained on the other half, so the noise they learn to discount is the
    noise of unseen days.
    """
    config = config or TrainConfig()
    with threadpool_limits(limits=1):  # tiny matrices: threads only contend (2 shared cores)
        return _train(dataset, config, seed, fraction, customers, progress)


def _train(
    dataset: Dataset,
    config: TrainConfig,
    seed: int,
    fraction: float | None,
    customers: list[int] | None,
    progress: Progress | None,
) -> TrainedModel:
    schema = schema_for(dataset)
    n_jobs = len(schema.jobs)
    if n_jobs == 0:
        raise ModelError("the dataset has no jobs to anticipate")
    part: Part = "all" if fraction is None else "train"
    frac = 1.0 if fraction is None else fraction
    started = time.perf_counter()

    n_customers = len(dataset) if customers is None else len(customers)

    def customers_done(task: str) -> Callable[[int], None]:
        return lambda k: _tick(progress, task, k, n_customers)

    truth = build_samples(
        schema, dataset, part=part, fraction=frac, rules=config.rules, customers=customers, progress=customers_done("features")
    )
    known = truth.targets.next_job >= 0
    if int(known.sum()) < 2:
        raise ModelError(f"too few anticipation points to train on ({int(known.sum())})")
    log.info("%d anticipation points from %d customers in %.1f s", truth.size, n_customers, time.perf_counter() - started)
    heads: dict[HeadName, Head] = {"recognition": _fit_recognition(schema, truth, config, seed, progress)}

    samples = truth
    if config.context == "recognised":
        samples = build_samples(
            schema, dataset, part=part, fraction=frac, rules=config.rules, customers=customers,
            recognise=_cross_fitted(schema, dataset, truth, heads["recognition"], frac, config, seed, progress),
            progress=customers_done("contexts"),
        )
    val = _validation_mask(samples, config.validation_fraction)
    targets, x = samples.targets, samples.features
    heads["next_job"] = _fit_next_job(
        schema, x[known], targets.next_job[known].astype(np.int64), val[known],
        History(samples.customer[known], targets.times[known], targets.next_job[known]),
        config=config, seed=seed, progress=progress,
    )
    heads["expected_in"] = _fit_regressor(
        expected_in_rows(x[known], n_jobs, targets.next_job[known]), np.log1p(targets.expected_in_s[known]), val[known],
        n_counts=schema.layout.since, config=config, seed=seed, progress=progress,
    )
    stats = {
        "dataset": dataset.source,
        "customers": n_customers,
        "split": "all" if fraction is None else f"first {fraction:g} of each customer's days",
        "points": truth.size,
        "next_job_points": int(known.sum()),
        "validation_points": int(val.sum()),
        "idle_fraction": round(float((truth.targets.current_job < 0).mean()), 4),
        "context": config.context,
        "train_s": round(time.perf_counter() - started, 1),
    }
    return TrainedModel(schema, heads, neutral_vector(schema, truth.features), config, seed, stats)


def _fit_recognition(schema: FeatureSchema, samples: Samples, config: TrainConfig, seed: int, progress: Progress | None, *, task: HeadName = "recognition") -> Head:
    n_jobs = len(schema.jobs)
    lay = schema.layout
    y = np.where(samples.targets.current_job >= 0, samples.targets.current_job, n_jobs).astype(np.int64)
    return _fit_classifier(
        task, samples.features[:, : lay.job], y, n_jobs + 1, _validation_mask(samples, config.validation_fraction),
        n_counts=lay.since, hidden=config.recognition_hidden, config=config, seed=seed, progress=progress,
    )


def _cross_fitted(
    schema: FeatureSchema,
    dataset: Dataset,
    truth: Samples,
    full: Head,
    fraction: float,
    config: TrainConfig,
    seed: int,
    progress: Progress | None,
) -> Recogniser:
    """A recogniser that answers for each customer's early days with a head trained on its
    late days and the other way round (the full head where a half is too small to learn from)."""
    n_jobs = len(schema.jobs)
    lay = schema.layout
    boundary = np.array([chronological_cut(c, fraction / 2.0) for c in dataset])
    early = truth.targets.times < boundary[truth.customer]
    halves: list[Head] = []
    for mask in (~early, early):  # [0] learns late days (answers early ones), [1] the reverse
        part = truth.take(mask)
        enough = part.size >= 50 and np.unique(part.targets.current_job).size >= 2
        halves.append(_fit_recognition(schema, part, config, seed, None) if enough else full)
        _tick(progress, "cross-fit", len(halves), 2)

    def recognise(customer: int, ticks: NDArray[np.float64], x: NDArray[np.float32]) -> NDArray[np.int32]:
        rows = x[:, : lay.job]
        out = np.empty(ticks.shape[0], np.int32)
        in_early = ticks < boundary[customer]
        for head, sel in ((halves[0], in_early), (halves[1], ~in_early)):
            if sel.any():
                out[sel] = head.pipeline.predict_proba(rows[sel]).argmax(axis=1)
        return np.where(out == n_jobs, IDLE, out).astype(np.int32)

    return recognise


# --------------------------------------------------------------------------- fitting


def _validation_mask(samples: Samples, fraction: float) -> NDArray[np.bool_]:
    """The chronologically last ``fraction`` of each customer's points."""
    val = np.zeros(samples.size, np.bool_)
    if fraction <= 0:
        return val
    for c in np.unique(samples.customer):
        idx = np.flatnonzero(samples.customer == c)
        times = samples.targets.times[idx]
        cut = np.quantile(times, 1.0 - fraction)
        val[idx[times >= cut]] = True
    if val.all():
        val[:] = False
    return val


def _epochs(n: int, config: TrainConfig) -> tuple[int, int]:
    batch = max(1, min(config.batch_size, n))
    per_epoch = math.ceil(n / batch)
    epochs = min(config.max_epochs, max(config.min_epochs, math.ceil(config.updates / per_epoch)))
    return batch, epochs


def _mlp(kind: Literal["classifier", "regressor"], hidden: tuple[int, ...], n: int, config: TrainConfig, seed: int) -> tuple[Any, int]:
    batch, epochs = _epochs(n, config)
    cls = MLPClassifier if kind == "classifier" else MLPRegressor
    mlp = cls(
        hidden_layer_sizes=hidden, alpha=config.alpha, batch_size=batch,
        learning_rate_init=config.learning_rate, random_state=seed,
    )
    return mlp, epochs


def _prepare(x: NDArray[np.float32], n_counts: int) -> Pipeline:
    return Pipeline([("counts", CountLog(n_counts)), ("scale", StandardScaler())]).fit(x)


def _fit_next_job(
    schema: FeatureSchema,
    x: NDArray[np.float32],
    y: NDArray[np.int64],
    val: NDArray[np.bool_],
    history: History,
    *,
    config: TrainConfig,
    seed: int,
    progress: Progress | None,
) -> Head:
    """Multinomial logistic regression over count-logged, time-expanded, standardised features.

    Linear on purpose: on a few weeks of one home it generalises where an MLP memorises, and
    with smooth time-of-day inputs and the recognised job it holds what a Markov ×
    time-of-day table holds, with shrinkage instead of counts.

    The prior shift is chosen on the validation slice too: each customer's mix of next jobs
    before the slice (``history``: the same points, with customer and time) against the
    population's, applied to the calibrated probabilities on the slice. The shift kept for
    the refit carries the population's mix over all points.
    """
    name: HeadName = "next_job"
    n_jobs = len(schema.jobs)
    lay = schema.layout
    counts = np.bincount(y, minlength=n_jobs).astype(np.float64)
    prior = (counts + 1.0) / (counts.sum() + n_jobs)
    pipeline = Pipeline([
        ("counts", CountLog(lay.since)),
        ("expand", ContextExpand(lay.time, (), k=config.time_bumps)),
        ("scale", StandardScaler()),
        ("lr", LogisticRegression(C=config.next_job_c, max_iter=500, random_state=seed)),
    ])
    calibration, validation = Calibration(1.0, 0.01, tuple(prior)), {}
    shift = PriorShift.none(n_jobs)
    _tick(progress, name, 0, 2)
    if val.any() and np.unique(y[~val]).size >= 2:
        pipeline.fit(x[~val], y[~val])
        p = _full_proba(pipeline, x[val], n_jobs)
        calibration = Calibration.fit(p, y[val], prior)
        calibrated = calibration.apply(p)
        before, on = history.take(~val), history.take(val)
        shift = PriorShift.fit(calibrated, y[val], on.customer, on.times, before)
        shifted = shift.for_customers(calibrated, on.customer, on.times, before)
        validation = {
            "log_loss": log_loss(calibrated, y[val]),
            "top1": float((p.argmax(axis=1) == y[val]).mean()),
            "prior_shift_weight": shift.weight,
            "prior_shift_strength": shift.strength,
            "prior_shift_buckets": float(shift.buckets),
            "prior_shift_temperature": shift.temperature,
            "shifted_log_loss": log_loss(shifted, y[val]),
            "shifted_top1": float((shifted.argmax(axis=1) == y[val]).mean()),
        }
        pipeline.set_params(lr__warm_start=True)  # the refit starts where this one ended
    shift = shift.with_population(history)
    _tick(progress, name, 1, 2)
    pipeline.fit(x, y)
    _tick(progress, name, 2, 2)
    log.info("%s head: validation %s", name, validation)
    classes = tuple(int(c) for c in pipeline.classes_)
    return Head(name, pipeline, x.shape[1], 0, calibration, validation, classes, shift)


def _full_proba(pipeline: Pipeline, x: NDArray[np.float32], n_classes: int) -> NDArray[np.float64]:
    """Probabilities over all ``n_classes`` (a class absent from training gets 0 before calibration)."""
    p = np.zeros((x.shape[0], n_classes))
    p[:, pipeline.classes_] = pipeline.predict_proba(x)
    return p


def _fit_classifier(
    name: HeadName,
    x: NDArray[np.float32],
    y: NDArray[np.int64],
    n_classes: int,
    val: NDArray[np.bool_],
    *,
    n_counts: int,
    hidden: tuple[int, ...],
    config: TrainConfig,
    seed: int,
    progress: Progress | None,
) -> Head:
    classes = np.arange(n_classes)
    counts = np.bincount(y, minlength=n_classes).astype(np.float64)
    prior = (counts + 1.0) / (counts.sum() + n_classes)
    default = Calibration(1.0, 0.01, tuple(prior))
    fit_x, fit_y, val_x, val_y = x[~val], y[~val], x[val], y[val]
    pre = _prepare(fit_x, n_counts)
    mlp, budget = _mlp("classifier", hidden, fit_x.shape[0], config, seed)
    sx, svx = pre.transform(fit_x), pre.transform(val_x)
    best_loss, best_epoch, best_p = math.inf, budget, None
    epoch = 0
    total = budget * (2 if val_y.size else 1)
    for epoch in range(1, budget + 1):
        mlp.partial_fit(sx, fit_y, classes=classes)
        _tick(progress, name, epoch, total)
        if not val_y.size:
            continue
        p = mlp.predict_proba(svx)
        loss = log_loss(default.apply(p), val_y)
        if loss < best_loss:
            best_loss, best_epoch, best_p = loss, epoch, p
        elif epoch - best_epoch >= config.patience:
            break
    calibration, validation = default, {}
    if best_p is not None:
        calibration = Calibration.fit(best_p, val_y, prior)
        validation = {
            "log_loss": log_loss(calibration.apply(best_p), val_y),
            "top1": float((best_p.argmax(axis=1) == val_y).mean()),
            "epochs": float(best_epoch),
        }
        # Refit on every training point, validation slice included, for the chosen epochs.
        pre = _prepare(x, n_counts)
        mlp, _ = _mlp("classifier", hidden, x.shape[0], config, seed)
        sx = pre.transform(x)
        for k in range(best_epoch):
            mlp.partial_fit(sx, y, classes=classes)
            _tick(progress, name, epoch + k + 1, epoch + best_epoch)
    _tick(progress, name, 1, 1)
    log.info("%s head: %d epochs, validation %s", name, best_epoch, validation)
    pipeline = Pipeline([*pre.steps, ("mlp", mlp)])
    return Head(name, pipeline, x.shape[1], best_epoch, calibration, validation, tuple(range(n_classes)))


def _fit_regressor(
    x: NDArray[np.float32],
    y: NDArray[np.float64],
    val: NDArray[np.bool_],
    *,
    n_counts: int,
    config: TrainConfig,
    seed: int,
    progress: Progress | None,
) -> Head:
    name: HeadName = "expected_in"
    fit_x, fit_y, val_x, val_y = x[~val], y[~val], x[val], y[val]
    pre = _prepare(fit_x, n_counts)
    mlp, budget = _mlp("regressor", config.regressor_hidden, fit_x.shape[0], config, seed)
    sx, svx = pre.transform(fit_x), pre.transform(val_x)
    best_err, best_epoch = math.inf, budget
    epoch = 0
    total = budget * (2 if val_y.size else 1)
    validation: dict[str, float] = {}
    for epoch in range(1, budget + 1):
        mlp.partial_fit(sx, fit_y)
        _tick(progress, name, epoch, total)
        if not val_y.size:
            continue
        err = float(np.median(np.abs(np.expm1(mlp.predict(svx)) - np.expm1(val_y))))
        if err < best_err:
            best_err, best_epoch = err, epoch
        elif epoch - best_epoch >= config.patience:
            break
    if val_y.size:
        validation = {"median_abs_error_s": best_err, "epochs": float(best_epoch)}
        pre = _prepare(x, n_counts)
        mlp, _ = _mlp("regressor", config.regressor_hidden, x.shape[0], config, seed)
        sx = pre.transform(x)
        for k in range(best_epoch):
            mlp.partial_fit(sx, y)
            _tick(progress, name, epoch + k + 1, epoch + best_epoch)
    _tick(progress, name, 1, 1)
    log.info("%s head: %d epochs, validation %s", name, best_epoch, validation)
    return Head(name, Pipeline([*pre.steps, ("mlp", mlp)]), x.shape[1], best_epoch, None, validation)


def _tick(progress: Progress | None, task: str, done: float, total: float) -> None:
    if progress is not None:
        progress(task, done, total)
