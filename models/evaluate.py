"""Evaluation: the deployed heads against four baselines on a chronological split, plus what
personalisation does to each customer's sacrifice week by week.

Protocol (``docs/models.md``):

* **Split** — per customer, the first ``fraction`` of that customer's days train, the rest
  test; no shuffling. Training points whose next job begins in the test days are dropped.
* **Unlabelled time** — an explicit ``idle`` class for recognition; next-job targets skip
  nothing but the points with no next label within ``max_wait_s``.
* **Inputs at test time** — the recognised current/last job comes from the model's own
  recognition head run every ``tick_s`` seconds over the test days (no ground truth), and
  the baselines get exactly the same recognised job. The same figures with ground-truth
  job inputs for both are reported as ``oracle``.
* **Model** — trained on the training days with :func:`models.train.train` (or given), then
  exported and run through ONNX (:class:`models.inference.Anticipator`): what is evaluated
  are the heads a hub would run. Their next-job probabilities for a customer are shifted
  towards that customer's own mix of next jobs on the training days
  (:mod:`models.prior_shift`, chosen in training on a validation slice; the same labels the
  baselines count) — a hub learns that history online through its personal layer instead.
  The global head alone is reported as ``model_global``.
* **Personalisation** — each customer's anticipations over *all* days stream through a
  :class:`models.personalise.PersonalLayer` per (customer, market): each anticipation is
  scored (sacrifice ``1 − p[actual]``) before the layer learns its outcome, and the outcome
  is observed once the next job has begun. Reported per week, on and off, for the
  customers the dataset flags atypical and for the rest.
"""

from __future__ import annotations

import logging
import math
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from threadpoolctl import threadpool_limits

from models.artifact import export
from models.baselines import BASELINES, Baseline
from models.dataset import Dataset
from models.inference import Anticipator
from models.metrics import confusion, scores
from models.personalise import Context, PersonalLayer
from models.prior_shift import History
from models.samples import DAY, Recogniser, Samples, TargetRules, build_samples, chronological_cut, customer_days
from models.targets import IDLE
from models.train import Progress, TrainConfig, train

__all__ = ["Evaluation", "evaluate"]

log = logging.getLogger(__name__)

_CHUNK = 20000
_HELD_OUT_MIN = 4  # customers needed to stream held-out customers through personalisation
_HEADLINE = ("top1", "log_loss")


@dataclass
class Evaluation:
    """Figures (``summary``, JSON-able) and the arrays the report plots."""

    summary: dict[str, Any]
    jobs: tuple[str, ...]
    markets: tuple[str, ...]
    y: NDArray[np.int32]  # test next jobs
    p_model: NDArray[np.floating]  # (n, J) on the test points (prior-shifted per customer)
    p_baselines: dict[str, NDArray[np.float64]]
    market: NDArray[np.int32]
    confusion: NDArray[np.int64]
    weekly: dict[str, list[float]] = field(default_factory=dict)  # "<group>/<on|off>" -> mean sacrifice per week
    daily: dict[str, list[float]] = field(default_factory=dict)  # "<on|off>" -> top-1 per day of history
    split_day: float = 0.0  # mean day index of the cut (for the plots)


def evaluate(
    dataset: Dataset,
    *,
    model_path: str | Path | None = None,
    fraction: float = 0.7,
    config: TrainConfig | None = None,
    seed: int = 0,
    personalise: bool = True,
    progress: Progress | None = None,
) -> Evaluation:
    """Evaluate on ``dataset`` (see the module docstring); trains on the split unless ``model_path``."""
    with threadpool_limits(limits=1):
        return _evaluate(dataset, model_path, fraction, config or TrainConfig(), seed, personalise, progress)


def _evaluate(
    dataset: Dataset,
    model_path: str | Path | None,
    fraction: float,
    config: TrainConfig,
    seed: int,
    personalise: bool,
    progress: Progress | None,
) -> Evaluation:
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="genius-eval-") as tmp:
        if model_path is None:
            trained = train(dataset, config=config, seed=seed, fraction=fraction, progress=progress)
            folder = export(trained, Path(tmp) / "model", name="genius-eval", version="0", trained_on={"source": dataset.source})
            model = Anticipator.load(folder)
            model_info: dict[str, Any] = {"trained": f"first {fraction:g} of each customer's days", "seed": seed,
                                          "train_s": trained.stats["train_s"]}
        else:
            model = Anticipator.load(model_path)
            model_info = {"trained": f"given: {model.model_id}", "trained_on": model.meta.trained_on.get("data")}
    schema = model.schema
    rules = TargetRules(**{k: float(v) for k, v in model.meta.rules.items()}) if model.meta.rules else config.rules
    n_jobs = len(model.jobs)

    def customers_done(task: str) -> Callable[[int], None]:
        return lambda k: progress(task, k, len(dataset)) if progress is not None else None

    # All anticipation points with recognised job inputs; the test points are those after the cut.
    everything = build_samples(schema, dataset, part="all", rules=rules, recognise=_recogniser(model),
                               progress=customers_done("evaluation points"))
    cut = np.array([chronological_cut(c, fraction) for c in dataset])
    test_mask = everything.targets.times >= cut[everything.customer]
    test = everything.take(test_mask)
    known = test.targets.next_job >= 0
    test = test.take(known)
    y = test.targets.next_job
    p_all = _chunked(model.next_job, everything.features)
    p_global = p_all[test_mask][known]
    exp_model = np.concatenate(
        [model.expected_in(test.features[i : i + _CHUNK], y[i : i + _CHUNK]) for i in range(0, max(y.shape[0], 1), _CHUNK)]
    )

    train_points = build_samples(schema, dataset, part="train", fraction=fraction, rules=rules, features=False)
    train_points = train_points.take(train_points.targets.next_job >= 0)
    tr = train_points.targets
    # Each customer's own next jobs on the training days: the model's prior shift for that customer.
    own = History(train_points.customer, tr.times, tr.next_job)
    p_model = model.prior_shift.for_customers(p_global, test.customer, test.targets.times, own)
    baselines = {cls.name: cls(n_jobs).fit(tr.times, tr.context_job, tr.next_job, tr.expected_in_s) for cls in BASELINES}
    p_baselines = {name: b.predict_proba(test.targets.times, test.targets.context_job) for name, b in baselines.items()}

    summary: dict[str, Any] = {
        "dataset": {"source": dataset.source, "customers": len(dataset), "days": dataset.meta.get("days"),
                    "licence": dataset.meta.get("licence")},
        "protocol": {
            "split": f"chronological per customer: first {fraction:g} of each customer's days train, the rest test; no shuffling",
            "unlabelled": "recognition: explicit idle class; next job: points with no next label within "
                          f"{rules.max_wait_s / 3600:g} h are skipped",
            "anticipation_points": f"every label end and a {rules.grid_s / 60:g}-minute grid",
            "job_inputs": f"recognised by the model's recognition head every {rules.tick_s:g} s (no ground truth); "
                          "baselines get the same recognised job",
            "log_loss_clip": 1e-6,
        },
        "model_info": {**model_info, "model": model.model_id, "prior_shift": {
            "weight": model.prior_shift.weight, "strength": model.prior_shift.strength, "buckets": model.prior_shift.buckets,
            "temperature": model.prior_shift.temperature}},
        "test_points": int(y.shape[0]),
        "train_points": int(tr.size),
    }
    summary["model"] = _with_breakdown(p_model, y, test, expected=exp_model, markets=model.markets, customers=dataset.customers)
    summary["model_global"] = _with_breakdown(p_global, y, test, expected=exp_model, markets=model.markets, customers=dataset.customers)
    summary["baselines"] = {
        name: _with_breakdown(p, y, test, expected=_pick(baselines[name], test), markets=model.markets, customers=dataset.customers)
        for name, p in p_baselines.items()
    }
    summary["best_baseline"], summary["beats_best_baseline"] = _comparison(summary)
    summary["oracle"] = _oracle(model, schema, dataset, fraction, rules, baselines, own)
    summary["recognition"] = _recognition(model, test)

    evaluation = Evaluation(
        summary=summary, jobs=model.jobs, markets=model.markets, y=y, p_model=p_model, p_baselines=p_baselines,
        market=test.targets.market, confusion=confusion(y, p_model.argmax(axis=1), n_jobs),
        split_day=float(np.mean([(cut[c.index] - customer_days(c)[0]) / DAY for c in dataset])),
    )
    if personalise:
        if model_path is None and len(dataset) >= _HELD_OUT_MIN:
            with tempfile.TemporaryDirectory(prefix="genius-eval-") as tmp:
                streams, p_streams, mode = _held_out(dataset, config, seed, rules, Path(tmp), progress)
            stream_test = streams.targets.times >= cut[streams.customer]
        else:
            streams, p_streams, stream_test = everything, p_all, test_mask
            mode = "the evaluated model (it may have seen these customers' early days)"
        _personalisation(evaluation, dataset, streams, p_streams, stream_test, progress)
        evaluation.summary["personalisation"]["global_model"] = mode
    summary["evaluate_s"] = round(time.perf_counter() - started, 1)
    return evaluation


# ----------------------------------------------------------------------------- parts


def _recogniser(model: Anticipator) -> Recogniser:
    n_jobs = len(model.jobs)

    def recognise(customer: int, ticks: NDArray[np.float64], x: NDArray[np.float32]) -> NDArray[np.int32]:
        best = _chunked(model.recognise, x).argmax(axis=1)
        return np.where(best == n_jobs, IDLE, best).astype(np.int32)

    return recognise


def _chunked(fn: Callable[[NDArray[np.float32]], NDArray[Any]], x: NDArray[np.float32]) -> NDArray[Any]:
    if x.shape[0] <= _CHUNK:
        return fn(x)
    return np.concatenate([fn(x[i : i + _CHUNK]) for i in range(0, x.shape[0], _CHUNK)])


def _pick(baseline: Baseline, test: Samples) -> NDArray[np.float64]:
    return baseline.expected_in(test.targets.times, test.targets.context_job)


def _with_breakdown(
    p: NDArray[np.floating],
    y: NDArray[np.int32],
    test: Samples,
    *,
    expected: NDArray[np.floating],
    markets: tuple[str, ...],
    customers: tuple[str, ...],
) -> dict[str, Any]:
    """Overall figures plus the same per market and per customer."""
    actual = test.targets.expected_in_s
    if expected.ndim == 1:  # the model's estimate for the true job only: spread into a (n, J) view
        full = np.full(p.shape, np.nan)
        full[np.arange(y.shape[0]), y] = expected
        expected = full
    out: dict[str, Any] = scores(p, y, expected_in_s=expected, actual_in_s=actual)
    out["per_market"] = {}
    for m in np.unique(test.targets.market):
        sel = test.targets.market == m
        name = markets[m] if 0 <= m < len(markets) else "unknown"
        out["per_market"][name] = scores(p[sel], y[sel], expected_in_s=expected[sel], actual_in_s=actual[sel])
    out["per_customer"] = {}
    if len(customers) <= 10:  # a handful of homes or residents: each is its own result
        for c in np.unique(test.customer):
            sel = test.customer == c
            out["per_customer"][customers[c]] = scores(p[sel], y[sel], expected_in_s=expected[sel], actual_in_s=actual[sel])
    return out


def _comparison(summary: dict[str, Any]) -> tuple[dict[str, str], dict[str, bool]]:
    best: dict[str, str] = {}
    beats: dict[str, bool] = {}
    for metric in _HEADLINE:
        sign = 1.0 if metric == "top1" else -1.0
        name = max(summary["baselines"], key=lambda b: sign * summary["baselines"][b][metric])
        best[metric] = name
        beats[metric] = sign * summary["model"][metric] > sign * summary["baselines"][name][metric]
    for customer, figures in summary["model"]["per_customer"].items():
        for metric in _HEADLINE:
            sign = 1.0 if metric == "top1" else -1.0
            rival = max(sign * summary["baselines"][b]["per_customer"][customer][metric] for b in summary["baselines"])
            beats[f"{customer}/{metric}"] = sign * figures[metric] > rival
    return best, beats


def _oracle(
    model: Anticipator,
    schema: Any,
    dataset: Dataset,
    fraction: float,
    rules: TargetRules,
    baselines: dict[str, Baseline],
    own: History,
) -> dict[str, Any]:
    """Model and baselines with ground-truth job inputs on the test days (an upper bound)."""
    test = build_samples(schema, dataset, part="test", fraction=fraction, rules=rules)
    test = test.take(test.targets.next_job >= 0)
    y = test.targets.next_job
    p = model.prior_shift.for_customers(_chunked(model.next_job, test.features), test.customer, test.targets.times, own)
    out: dict[str, Any] = {"model": scores(p, y)}
    for name, b in baselines.items():
        out[name] = scores(b.predict_proba(test.targets.times, test.targets.context_job), y)
    return out


def _recognition(model: Anticipator, test: Samples) -> dict[str, float]:
    n_jobs = len(model.jobs)
    truth = np.where(test.targets.current_job >= 0, test.targets.current_job, n_jobs)
    p = _chunked(model.recognise, test.features)
    figures = scores(p, truth.astype(np.int64))
    busy = truth != n_jobs
    return {
        "top1": figures["top1"],
        "macro_f1": figures["macro_f1"],
        "top1_while_busy": float((p[busy].argmax(axis=1) == truth[busy]).mean()) if busy.any() else float("nan"),
        "idle_share": float(1.0 - busy.mean()) if busy.size else float("nan"),
    }


def _held_out(
    dataset: Dataset, config: TrainConfig, seed: int, rules: TargetRules, tmp: Path, progress: Progress | None
) -> tuple[Samples, NDArray[np.float32], str]:
    """Every customer's anticipations over all days, scored by a global model that never saw
    that customer: two folds of customers (atypical ones spread over both), each scored by a
    model trained on all days of the other fold — a new customer joining, as a hub sees it."""
    info = dataset.meta.get("customer_info", {})
    order = sorted(range(len(dataset)), key=lambda c: (not info.get(dataset.customers[c], {}).get("atypical", False), c))
    folds = [order[0::2], order[1::2]]
    parts: list[Samples] = []
    probabilities: list[NDArray[np.float32]] = []
    for k, (held, learn) in enumerate(((folds[0], folds[1]), (folds[1], folds[0]))):
        trained = train(dataset, config=config, seed=seed, customers=sorted(learn),
                        progress=(lambda task, done, total: progress(f"held-out fold {k + 1}: {task}", done, total))
                        if progress is not None else None)
        model = Anticipator.load(export(trained, tmp / f"fold{k}", name="genius-fold", version=str(k), trained_on={}))
        samples = build_samples(model.schema, dataset, part="all", rules=rules, recognise=_recogniser(model), customers=sorted(held))
        parts.append(samples)
        probabilities.append(_chunked(model.next_job, samples.features))
    mode = "held out: each customer scored by a model trained on all days of the other half of the customers"
    return Samples.concat(parts, parts[0].features.shape[1]), np.concatenate(probabilities), mode


def _personalisation(
    evaluation: Evaluation,
    dataset: Dataset,
    everything: Samples,
    p_all: NDArray[np.float32],
    test_mask: NDArray[np.bool_],
    progress: Progress | None,
) -> None:
    """Stream every customer's anticipations through PersonalLayers; fill weekly/daily figures."""
    info = dataset.meta.get("customer_info", {})
    atypical = np.array([bool(info.get(c, {}).get("atypical", False)) for c in dataset.customers])
    targets = everything.targets
    n = everything.size
    sac_on = np.full(n, np.nan)
    sac_off = np.full(n, np.nan)
    p_on = np.array(p_all, dtype=np.float64, copy=True)
    day = np.zeros(n, np.int64)
    for k, c in enumerate(np.unique(everything.customer), start=1):
        idx = np.flatnonzero(everything.customer == c)
        idx = idx[np.argsort(targets.times[idx], kind="stable")]
        day0 = customer_days(dataset.customer(int(c)))[0]
        day[idx] = ((targets.times[idx] - day0) // DAY).astype(np.int64)
        layers: dict[int, PersonalLayer] = {}
        pending = 0  # idx[pending:] not yet observed; next begins are sorted like the times
        for pos, i in enumerate(idx):
            t = targets.times[i]
            while pending < pos and targets.next_begin[idx[pending]] <= t:
                j = idx[pending]
                if targets.next_job[j] >= 0:
                    _layer(layers, targets.market[j], evaluation.jobs).observe(_context(targets, j), int(targets.next_job[j]), p_all[j])
                pending += 1
            y = int(targets.next_job[i])
            if y < 0:
                continue
            p = _layer(layers, targets.market[i], evaluation.jobs).adjust(p_all[i], _context(targets, i))
            p_on[i] = p
            sac_on[i] = 1.0 - p[y]
            sac_off[i] = 1.0 - float(p_all[i][y])
        if progress is not None:
            progress("personalisation", k, len(dataset))

    week = day // 7
    groups = {"atypical": atypical[everything.customer], "typical": ~atypical[everything.customer]}
    weeks = int(week.max()) + 1 if n else 0
    summary: dict[str, Any] = {"weeks": list(range(1, weeks + 1))}
    for group, members in groups.items():
        for state, sac in (("on", sac_on), ("off", sac_off)):
            means = [_mean(sac[members & (week == w)]) for w in range(weeks)]
            evaluation.weekly[f"{group}/{state}"] = means
            summary[f"{group}_{state}"] = [round(v, 4) for v in means]
        summary[f"{group}_customers"] = int(np.unique(everything.customer[members]).size)
    for group in groups:
        on, off = evaluation.weekly[f"{group}/on"], evaluation.weekly[f"{group}/off"]
        if weeks >= 4 and off[3] > 0:
            summary[f"{group}_week4_reduction"] = round(1.0 - on[3] / off[3], 4)
    scored = ~np.isnan(sac_on)
    hits_on = (p_on.argmax(axis=1) == targets.next_job) & scored
    hits_off = (p_all.argmax(axis=1) == targets.next_job) & scored
    days = int(day.max()) + 1 if n else 0
    evaluation.daily["on"] = [_mean(hits_on[scored & (day == d)]) for d in range(days)]
    evaluation.daily["off"] = [_mean(hits_off[scored & (day == d)]) for d in range(days)]
    # The personalised model on the test days (its layer warmed on the training days).
    sel = test_mask & scored
    summary["test_personalised"] = scores(p_on[sel], targets.next_job[sel])
    summary["test_global"] = scores(p_all[sel].astype(np.float64), targets.next_job[sel])
    if len(dataset) <= 10:
        summary["test_personalised_per_customer"] = {
            dataset.customers[c]: scores(p_on[sel & (everything.customer == c)], targets.next_job[sel & (everything.customer == c)])
            for c in np.unique(everything.customer[sel])
        }
    evaluation.summary["personalisation"] = summary


def _layer(layers: dict[int, PersonalLayer], market: int, jobs: tuple[str, ...]) -> PersonalLayer:
    layer = layers.get(int(market))
    if layer is None:
        layer = layers[int(market)] = PersonalLayer(jobs)
    return layer


def _context(targets: Any, i: int) -> Context:
    return Context.at(float(targets.times[i]), last_job=int(targets.context_job[i]), job_since_s=float(targets.context_since_s[i]))


def _mean(values: NDArray[np.floating]) -> float:
    return float(values.mean()) if values.size else math.nan

