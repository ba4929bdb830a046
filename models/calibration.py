"""Probability calibration of a classifier head: temperature plus a floor toward the prior.

``p = (1 - floor) · softmax(log p_raw / T) + floor · prior``. The temperature fixes over- or
under-confidence; the floor keeps every job possible (log-loss stays finite, a job the
training data never showed after some context is unlikely, not impossible). Both are fitted
on a chronologically later validation slice than the one the head learnt from.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

__all__ = ["Calibration", "log_loss"]

_TINY = 1e-12


def log_loss(p: NDArray[np.floating], y: NDArray[np.integer], *, clip: float = 1e-6) -> float:
    """Mean ``-log p[y]`` with probabilities clipped to ``[clip, 1]``."""
    if y.shape[0] == 0:
        return float("nan")
    picked = p[np.arange(y.shape[0]), y]
    return float(-np.log(np.clip(picked, clip, 1.0)).mean())


@dataclass(frozen=True, slots=True)
class Calibration:
    """Fitted calibration of one head; JSON-able through :meth:`to_dict`."""

    temperature: float
    floor: float
    prior: tuple[float, ...]

    def apply(self, p: NDArray[np.floating]) -> NDArray[np.float32]:
        """Calibrated probabilities for raw rows ``p`` ``(n, K)``; rows sum to 1."""
        p = np.asarray(p, dtype=np.float64)
        if self.temperature != 1.0:
            logits = np.log(np.maximum(p, _TINY)) / self.temperature
            logits -= logits.max(axis=1, keepdims=True)
            p = np.exp(logits)
            p /= p.sum(axis=1, keepdims=True)
        if self.floor > 0.0:
            p = (1.0 - self.floor) * p + self.floor * np.asarray(self.prior)
        return p.astype(np.float32)

    @classmethod
    def identity(cls, n_classes: int) -> Calibration:
        return cls(1.0, 0.0, tuple([1.0 / n_classes] * n_classes))

    @classmethod
    def fit(cls, p: NDArray[np.floating], y: NDArray[np.integer], prior: NDArray[np.floating]) -> Calibration:
        """The (temperature, floor) on a small grid that minimises log-loss of ``p`` against ``y``."""
        prior_t = tuple(float(v) for v in prior)
        if y.shape[0] == 0:
            return cls(1.0, 0.01, prior_t)
        best = (np.inf, 1.0, 0.01)
        for temperature in (0.7, 0.85, 1.0, 1.15, 1.3, 1.5, 1.75, 2.0, 2.5, 3.0, 4.0):
            for floor in (0.005, 0.01, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4):
                loss = log_loss(cls(temperature, floor, prior_t).apply(p), y)
                if loss < best[0]:
                    best = (loss, temperature, floor)
        return cls(best[1], best[2], prior_t)

    def to_dict(self) -> dict[str, object]:
        return {"temperature": self.temperature, "floor": self.floor, "prior": list(self.prior)}

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> Calibration:
        prior = data["prior"]
        assert isinstance(prior, list)
        return cls(float(data["temperature"]), float(data["floor"]), tuple(float(v) for v in prior))  # type: ignore[arg-type]
