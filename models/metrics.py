"""Classification and timing metrics of next-job predictions (numpy only).

All take probabilities ``p`` ``(n, J)`` and true classes ``y`` ``(n,)``. Log-loss clips
probabilities to ``[1e-6, 1]`` (a baseline or model that gives the truth no probability at
all costs ``-log 1e-6 ≈ 13.8`` nats, not infinity). Macro-F1 averages over the classes that
occur in ``y`` (a class never true and never predicted says nothing). Expected calibration
error uses 15 equal-width confidence bins of the top-1 probability.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray

from models.calibration import log_loss

__all__ = ["CLIP", "Reliability", "confusion", "ece", "log_loss", "macro_f1", "reliability", "scores", "top_k"]

CLIP = 1e-6
_BINS = 15


def top_k(p: NDArray[np.floating], y: NDArray[np.integer], k: int) -> float:
    """Share of rows whose true class is among the ``k`` most probable."""
    if y.shape[0] == 0:
        return float("nan")
    k = min(k, p.shape[1])
    best = np.argpartition(-p, k - 1, axis=1)[:, :k]
    return float((best == y[:, None]).any(axis=1).mean())


def confusion(y: NDArray[np.integer], predicted: NDArray[np.integer], n_classes: int) -> NDArray[np.int64]:
    """``m[true, predicted]`` counts."""
    m = np.zeros((n_classes, n_classes), np.int64)
    np.add.at(m, (y, predicted), 1)
    return m


def macro_f1(p: NDArray[np.floating], y: NDArray[np.integer]) -> float:
    if y.shape[0] == 0:
        return float("nan")
    m = confusion(y, p.argmax(axis=1), p.shape[1])
    tp = np.diag(m).astype(np.float64)
    precision = np.divide(tp, m.sum(axis=0), out=np.zeros_like(tp), where=m.sum(axis=0) > 0)
    recall = np.divide(tp, m.sum(axis=1), out=np.zeros_like(tp), where=m.sum(axis=1) > 0)
    f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros_like(tp), where=(precision + recall) > 0)
    present = m.sum(axis=1) > 0
    return float(f1[present].mean())


class Reliability(NamedTuple):
    """Per confidence bin: mean confidence, accuracy and row count (empty bins NaN / 0)."""

    confidence: NDArray[np.float64]
    accuracy: NDArray[np.float64]
    count: NDArray[np.int64]


def reliability(p: NDArray[np.floating], y: NDArray[np.integer], *, bins: int = _BINS) -> Reliability:
    conf = p.max(axis=1)
    hit = (p.argmax(axis=1) == y).astype(np.float64)
    index = np.minimum((conf * bins).astype(np.int64), bins - 1)
    count = np.bincount(index, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        confidence = np.bincount(index, conf, minlength=bins) / count
        accuracy = np.bincount(index, hit, minlength=bins) / count
    return Reliability(confidence, accuracy, count)


def ece(p: NDArray[np.floating], y: NDArray[np.integer], *, bins: int = _BINS) -> float:
    """Expected calibration error: count-weighted mean |accuracy − confidence| over bins."""
    if y.shape[0] == 0:
        return float("nan")
    r = reliability(p, y, bins=bins)
    used = r.count > 0
    return float(np.sum(r.count[used] * np.abs(r.accuracy[used] - r.confidence[used])) / y.shape[0])


def scores(
    p: NDArray[np.floating],
    y: NDArray[np.integer],
    *,
    expected_in_s: NDArray[np.floating] | None = None,
    actual_in_s: NDArray[np.floating] | None = None,
) -> dict[str, float]:
    """Every next-job figure for one set of predictions; ``expected_in_abs_error_s`` is the
    median |predicted − actual| seconds for the job that actually came next."""
    out = {
        "n": float(y.shape[0]),
        "top1": top_k(p, y, 1),
        "top3": top_k(p, y, 3),
        "macro_f1": macro_f1(p, y),
        "log_loss": log_loss(p, y, clip=CLIP),
        "ece": ece(p, y),
    }
    if expected_in_s is not None and actual_in_s is not None and y.shape[0]:
        predicted = expected_in_s[np.arange(y.shape[0]), y]
        ok = np.isfinite(predicted)
        out["expected_in_abs_error_s"] = float(np.median(np.abs(predicted[ok] - actual_in_s[ok]))) if ok.any() else float("nan")
    return out
