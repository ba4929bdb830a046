"""Feature transforms that run inside the exported ONNX graph (see ``models.artifact``).

Activation counts are heavy-tailed (a motion sensor can fire dozens of times in five
minutes, a door twice); standardising them raw lets a few busy rows dominate. ``log1p`` of
the count columns, which are a prefix of the feature vector, fixes that and keeps the ONNX
model's input the raw feature vector the kernels write.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray
from sklearn.base import BaseEstimator, TransformerMixin

__all__ = ["ContextExpand", "CountLog"]


class CountLog(TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """``log1p(max(x, 0))`` on the first ``n_counts`` columns, the rest unchanged."""

    def __init__(self, n_counts: int = 0) -> None:
        self.n_counts = n_counts

    def fit(self, x: NDArray[np.floating], y: Any = None) -> CountLog:
        self.n_features_in_ = int(np.shape(x)[1])
        return self

    def transform(self, x: NDArray[np.floating]) -> NDArray[np.float32]:
        out = np.array(x, dtype=np.float32, copy=True)
        k = self.n_counts
        out[:, :k] = np.log1p(np.maximum(out[:, :k], 0.0))
        return out


class ContextExpand(TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """Append smooth time-of-day indicators and their products with chosen columns.

    From the ``tod_sin``/``tod_cos`` columns (at ``time_col``) it appends ``k`` bumps
    ``exp(kappa · (cos(θ − θ_i) − 1))``, ``θ_i`` evenly spaced around the day — 1 at ``θ_i``,
    falling off over a few hours — so a linear layer can weigh any time of day on its own (a
    single sine cannot say "mornings and evenings"). Then, for each column in ``interact``
    (the recognised-job one-hots, the weekend flag), that column times every bump: "after
    wake_up, in the morning" gets its own weight, which is what a Markov × time-of-day table
    knows, but learnt with shrinkage instead of counted.

    Everything is a matrix product, an exponential and an elementwise product, so the ONNX
    graph (``models.artifact``) computes it exactly.
    """

    def __init__(self, time_col: int = 0, interact: tuple[int, ...] = (), k: int = 8, kappa: float = 4.0) -> None:
        self.time_col = time_col
        self.interact = interact
        self.k = k
        self.kappa = kappa

    def fit(self, x: NDArray[np.floating], y: Any = None) -> ContextExpand:
        self.n_features_in_ = int(np.shape(x)[1])
        return self

    def matrices(self) -> tuple[NDArray[np.float32], NDArray[np.float32], NDArray[np.float32]]:
        """``(time (F, k), pick (F, m·k), tile (k, m·k))``: ``cos(θ − θ_i) = x @ time``,
        products ``= (x @ pick) * (bumps @ tile)`` for the ``m`` interacting columns."""
        width, k, m = self.n_features_in_, self.k, len(self.interact)
        theta = np.arange(k) * (2.0 * np.pi / k)
        time = np.zeros((width, k), np.float32)
        time[self.time_col] = np.sin(theta)
        time[self.time_col + 1] = np.cos(theta)
        pick = np.zeros((width, m * k), np.float32)
        tile = np.zeros((k, m * k), np.float32)
        for a, col in enumerate(self.interact):
            pick[col, a * k : (a + 1) * k] = 1.0
            tile[np.arange(k), a * k + np.arange(k)] = 1.0
        return time, pick, tile

    def transform(self, x: NDArray[np.floating]) -> NDArray[np.float32]:
        x = np.asarray(x, dtype=np.float32)
        time, pick, tile = self.matrices()
        bumps = np.exp(np.float32(self.kappa) * (x @ time - np.float32(1.0)))
        parts = [x, bumps]
        if self.interact:
            parts.append((x @ pick) * (bumps @ tile))
        return np.concatenate(parts, axis=1).astype(np.float32, copy=False)
