"""Personalisation: a Bayesian layer over the global model's next-job probabilities.

One :class:`PersonalLayer` per (customer, market). It learns, per context bucket, how much
more or less often this customer does each job than the global model expects there, and
multiplies the global probabilities by that::

    p(j) ∝ p_global(j) · θ_b(j)

``θ_b(j)`` is the posterior mean of a Gamma-Poisson rate multiplier: the customer did ``n_b(j)``
of the jobs in bucket ``b`` where the global model expected ``e_b(j) = Σ p_global(j)``, so
``θ_b(j) = (κ · θ_parent(j) + n_b(j)) / (κ + e_b(j))`` with ``κ`` the prior strength. With no
evidence ``θ = θ_parent`` (1 at the top: the global model as it is); with much evidence
``θ → n/e``, the customer's own rate — the layer's weight grows with evidence, and a customer
the global model already fits (``n ≈ e``) is left alone. Buckets back off from the finest
to the coarsest::

    market  →  hour of day  →  last job  →  last job × hour  →  last job × hour × time since it

(the layer itself is per market; hour is the local hour, 24 buckets; time since the last job
is *now*, under 15 min, under 1 h, under 4 h, later).

``observe(context, job, p_global)`` after every anticipation, once the customer has done the
next job (recognised); ``feedback`` for explicit verdicts: *accepted* and *done* count as
evidence for the job, *dismissed* counts as an expectation that did not happen (lowers that
job in those buckets). State is a JSON-able dict (:meth:`to_dict` / :meth:`from_dict`),
keyed by job names so it survives a model whose catalogue grows. Pure; no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal, NamedTuple

import numpy as np
from numpy.typing import NDArray

__all__ = ["FORMAT", "Context", "PersonalLayer", "Verdict", "sacrifice"]

FORMAT = "genius.personal/1"
Verdict = Literal["accepted", "dismissed", "done"]
_DAY = 86400.0
_SINCE_EDGES_S = (900.0, 3600.0, 14400.0)


def sacrifice(p: NDArray[np.floating], actual: int) -> float:
    """``1 - p[actual]``: how much the anticipation missed what the customer actually did next."""
    return float(1.0 - p[actual])


class Context(NamedTuple):
    """What the layer conditions on, besides the market it belongs to."""

    hour: int  # local hour of day, 0..23
    last_job: int = -1  # recognised current/last job (index into the layer's jobs), -1 none
    since: int = -1  # -1 no job yet, 0 going on now, 1 < 15 min, 2 < 1 h, 3 < 4 h, 4 later

    @classmethod
    def at(cls, t: float, *, last_job: int = -1, job_since_s: float = math.nan, tz_offset_s: float = 0.0) -> Context:
        """The context at epoch time ``t`` after ``last_job`` ended ``job_since_s`` ago."""
        hour = int(((t + tz_offset_s) % _DAY) // 3600.0) % 24
        if last_job < 0 or math.isnan(job_since_s):
            return cls(hour, -1, -1)
        since = 0 if job_since_s <= 0.0 else 1 + sum(job_since_s >= edge for edge in _SINCE_EDGES_S)
        return cls(hour, int(last_job), since)

    def buckets(self) -> tuple[str, ...]:
        """Bucket keys from the coarsest (the whole market) to the finest."""
        h, j, s = self.hour, self.last_job, self.since
        return ("*", f"h{h}", f"j{j}", f"h{h}j{j}", f"h{h}j{j}s{s}")


class PersonalLayer:
    """One customer's evidence in one market over a job catalogue (see the module docstring)."""

    def __init__(self, jobs: Sequence[str], *, strength: float = 1.0) -> None:
        if strength <= 0:
            raise ValueError("strength must be positive")
        self.jobs = tuple(jobs)
        self.strength = float(strength)
        self._n: dict[str, NDArray[np.float64]] = {}
        self._e: dict[str, NDArray[np.float64]] = {}
        self.observations = 0

    @property
    def n_jobs(self) -> int:
        return len(self.jobs)

    def multiplier(self, context: Context) -> NDArray[np.float64]:
        """``θ(j)`` for ``context``: the factor each job's global probability is multiplied by."""
        theta = np.ones(self.n_jobs)
        k = self.strength
        for key in context.buckets():
            n = self._n.get(key)
            if n is None:
                continue
            theta = (k * theta + n) / (k + self._e[key])
        return theta

    def adjust(self, p_global: NDArray[np.floating], context: Context) -> NDArray[np.float64]:
        """The personalised next-job probabilities (sum to 1) for ``p_global`` ``(J,)``."""
        p = np.asarray(p_global, np.float64) * self.multiplier(context)
        total = p.sum()
        if not total > 0.0:
            return np.asarray(p_global, np.float64)
        return p / total

    def observe(self, context: Context, job: int, p_global: NDArray[np.floating]) -> None:
        """The customer did ``job`` next after an anticipation in ``context`` whose global
        probabilities were ``p_global``. Unknown jobs (outside the catalogue) are ignored."""
        if not 0 <= job < self.n_jobs:
            return
        p = np.asarray(p_global, np.float64)
        for key in context.buckets():
            n, e = self._counts(key)
            n[job] += 1.0
            e += p
        self.observations += 1

    def feedback(self, context: Context, job: int, verdict: Verdict) -> None:
        """An explicit verdict on an anticipated ``job``: accepted/done raise it, dismissed lowers it."""
        if not 0 <= job < self.n_jobs:
            return
        if verdict not in ("accepted", "dismissed", "done"):
            raise ValueError(f"unknown verdict {verdict!r}")
        for key in context.buckets():
            n, e = self._counts(key)
            if verdict == "dismissed":
                e[job] += 1.0
            else:
                n[job] += 1.0

    def evidence(self, context: Context) -> float:
        """Observations in the finest bucket of ``context``."""
        n = self._n.get(context.buckets()[-1])
        return 0.0 if n is None else float(n.sum())

    def _counts(self, key: str) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        n = self._n.get(key)
        if n is None:
            n = self._n[key] = np.zeros(self.n_jobs)
            self._e[key] = np.zeros(self.n_jobs)
        return n, self._e[key]

    # ----------------------------------------------------------------- state
    def to_dict(self) -> dict[str, Any]:
        """JSON-able state: counts per bucket as ``{job: [observed, expected]}``, zeros left out."""
        buckets: dict[str, dict[str, list[float]]] = {}
        for key, n in self._n.items():
            e = self._e[key]
            row = {self.jobs[j]: [round(float(n[j]), 6), round(float(e[j]), 6)] for j in np.flatnonzero((n > 0) | (e > 0))}
            if row:
                buckets[key] = row
        return {
            "format": FORMAT,
            "jobs": list(self.jobs),
            "strength": self.strength,
            "observations": self.observations,
            "buckets": buckets,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, jobs: Sequence[str] | None = None) -> PersonalLayer:
        """Restore a layer; with ``jobs`` (a newer catalogue) counts follow the job names and
        jobs the catalogue no longer has are dropped."""
        if data.get("format") != FORMAT:
            raise ValueError(f"not a personal layer state ({data.get('format')!r})")
        layer = cls(jobs if jobs is not None else data["jobs"], strength=float(data["strength"]))
        layer.observations = int(data.get("observations", 0))
        index = {name: j for j, name in enumerate(layer.jobs)}
        for key, row in data["buckets"].items():
            n, e = layer._counts(key)
            for name, (observed, expected) in row.items():
                j = index.get(name)
                if j is not None:
                    n[j], e[j] = float(observed), float(expected)
        return layer
