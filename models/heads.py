"""The three heads of a Genius model and what each takes as input.

* ``recognition`` — the job going on now: ``features[:, :layout.job]`` (never its own
  output, the job block) → ``J + 1`` probabilities, the last one ``idle``;
* ``next_job`` — the job that comes next: the whole feature row → ``J`` probabilities;
* ``expected_in`` — seconds until the next job begins, given which job it is: learnt on the
  feature row with a one-hot job appended (:func:`expected_in_rows`) → ``log1p(seconds)``;
  exported as one graph from the feature row to ``J`` estimates (``models.artifact``).

Shared by training and inference, so both build inputs the same way; numpy only.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.typing import NDArray

__all__ = ["HEADS", "IDLE_LABEL", "HeadName", "expected_in_rows"]

HeadName = Literal["recognition", "next_job", "expected_in"]
HEADS: tuple[HeadName, ...] = ("recognition", "next_job", "expected_in")
IDLE_LABEL = "idle"


def expected_in_rows(features: NDArray[np.float32], n_jobs: int, jobs: NDArray[np.integer] | None = None) -> NDArray[np.float32]:
    """Inputs of the expected-time head: each feature row with a one-hot job appended.

    With ``jobs`` (one per row) the result has one row per input row; without, ``n_jobs``
    rows per input row (row ``i * n_jobs + j`` asks "if job ``j`` is next").
    """
    n, width = features.shape
    if jobs is not None:
        out = np.zeros((n, width + n_jobs), np.float32)
        out[:, :width] = features
        out[np.arange(n), width + np.asarray(jobs, np.intp)] = 1.0
        return out
    out = np.zeros((n * n_jobs, width + n_jobs), np.float32)
    out[:, :width] = np.repeat(features, n_jobs, axis=0)
    out[np.arange(n * n_jobs), width + np.tile(np.arange(n_jobs), n)] = 1.0
    return out
