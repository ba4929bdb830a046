"""The customer's own mix of next jobs against the population's: a prior shift of the global head.

The next-job head is one model for every customer, so it learns the population's mix of jobs.
Two customers in the same context can still differ in how often they do each job — ARAS's two
residents share every sensor, so the head's answer for both is the same, yet one goes to the
toilet next far more often than the other, who changes clothes. When only the mix differs
(label shift: what a job looks like in the sensors is the same for everyone), Bayes' rule
gives the customer's probabilities from the global ones (Saerens et al., 2002)::

    p_c(j | x) ∝ p(j | x) · θ_c(b, j)^w

``θ_c(b, j)`` is how much more or less often customer ``c`` did job ``j`` next in time-of-day
bucket ``b`` than the population's rate there predicts: the posterior mean of a
Gamma–Poisson rate multiplier, as in :mod:`models.personalise`,
``θ_c(j) = (κ + n_c(j)) / (κ + e_c(j))`` over all of the customer's points, then
``θ_c(b, j) = (κ·θ_c(j) + n_c(b, j)) / (κ + e_c(b, j))`` per bucket, where ``n`` counts the
customer's next jobs and ``e = Σ r(b, j)`` what the population's rates ``r`` expected at the
same points. Little history leaves ``θ`` near 1 (the global head as it is); a customer the
population describes — or the only customer — gets exactly 1.

Training chooses the exponent ``w``, the strength ``κ`` and the buckets (1: the customer's
overall mix, or 8 × 3 h) on the chronologically last slice of each customer's training points
(:meth:`PriorShift.fit`), by log-loss — never on test data; ``w = 0`` (no shift) whenever
the shift does not help there. A shift sharpens or flattens the calibrated head, so a
temperature over the shifted probabilities is fitted on the same slice last (1 when no shift).
Pure numpy; JSON-able (carried by the artifact's next-job head).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray

from models.calibration import log_loss

__all__ = ["History", "PriorShift"]

_DAY = 86400.0
_WEIGHTS = (0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0)
_STRENGTHS = (2.0, 5.0, 20.0)
_BUCKETS = (1, 8)
_TEMPERATURES = (0.8, 0.85, 0.9, 0.95, 1.05, 1.1, 1.15, 1.2, 1.3)


class History(NamedTuple):
    """Customers' past anticipation points: who (dataset customer index), when, and the job
    that came next (``>= 0``)."""

    customer: NDArray[np.int32]
    times: NDArray[np.float64]
    job: NDArray[np.int32]

    def take(self, index: NDArray[np.bool_]) -> History:
        return History(self.customer[index], self.times[index], self.job[index])


def _bucket(times: NDArray[np.float64], buckets: int) -> NDArray[np.int64]:
    seconds = np.mod(np.asarray(times, np.float64), _DAY)
    return np.minimum((seconds * buckets / _DAY).astype(np.int64), buckets - 1)


def _rates(history: History, buckets: int, n_jobs: int) -> NDArray[np.float64]:
    """``(buckets, J)`` share of each bucket's next jobs that were each job."""
    counts = np.zeros((buckets, n_jobs), np.float64)
    np.add.at(counts, (_bucket(history.times, buckets), history.job.astype(np.int64)), 1.0)
    return counts / np.maximum(counts.sum(axis=1, keepdims=True), 1.0)


@dataclass(frozen=True, slots=True)
class PriorShift:
    """Fitted shift: exponent, strength, buckets, the population's rates ``(buckets, J)`` and
    the temperature applied after the shift."""

    weight: float
    strength: float
    population: tuple[tuple[float, ...], ...]  # r(b, j); len() is the number of buckets
    temperature: float = 1.0

    @property
    def buckets(self) -> int:
        return len(self.population)

    @property
    def n_jobs(self) -> int:
        return len(self.population[0])

    @classmethod
    def none(cls, n_jobs: int) -> PriorShift:
        """The identity (weight 0)."""
        return cls(0.0, 1.0, (tuple([1.0 / n_jobs] * n_jobs),))

    @classmethod
    def over(cls, history: History, *, weight: float, strength: float, buckets: int, n_jobs: int) -> PriorShift:
        """A shift whose population is ``history`` (the points the head learnt from)."""
        rates = _rates(history, buckets, n_jobs)
        return cls(weight, strength, tuple(tuple(float(v) for v in row) for row in rates))

    def multipliers(self, history: History, n_customers: int) -> NDArray[np.float64]:
        """``(n_customers, buckets, J)`` each customer's ``θ_c(b, j)`` from its ``history``."""
        n_jobs, k = self.n_jobs, self.strength
        rates = np.asarray(self.population, np.float64)
        b = _bucket(history.times, self.buckets)
        c = history.customer.astype(np.int64)
        n = np.zeros((n_customers, self.buckets, n_jobs), np.float64)
        np.add.at(n, (c, b, history.job.astype(np.int64)), 1.0)
        points = np.zeros((n_customers, self.buckets), np.float64)
        np.add.at(points, (c, b), 1.0)
        e = points[:, :, None] * rates[None, :, :]  # what the population's rates expected
        overall = (k + n.sum(axis=1)) / (k + e.sum(axis=1))  # θ_c(j)
        if self.buckets == 1:
            return overall[:, None, :]
        return (k * overall[:, None, :] + n) / (k + e)

    def apply(self, p: NDArray[np.floating], theta: NDArray[np.floating]) -> NDArray[np.float64]:
        """``p`` ``(n, J)`` times ``theta ** weight`` (``(J,)`` or ``(n, J)``), to the power
        ``1 / temperature``, renormalised."""
        p = np.asarray(p, np.float64)
        if self.weight == 0.0:
            return p
        q = p * np.asarray(theta, np.float64) ** self.weight
        if self.temperature != 1.0:
            q = np.maximum(q, 1e-300) ** (1.0 / self.temperature)
        return q / q.sum(axis=1, keepdims=True)

    def for_customers(
        self, p: NDArray[np.floating], customer: NDArray[np.integer], times: NDArray[np.float64], history: History
    ) -> NDArray[np.float64]:
        """Shift rows ``p`` ``(n, J)`` of customers ``customer`` at ``times`` by what each
        customer's ``history`` says (a customer with none keeps the global probabilities)."""
        if self.weight == 0.0 or p.shape[0] == 0:
            return np.asarray(p, np.float64)
        n_customers = int(max(np.max(customer, initial=-1), np.max(history.customer, initial=-1))) + 1
        theta = self.multipliers(history, n_customers)
        return self.apply(p, theta[np.asarray(customer, np.int64), _bucket(times, self.buckets)])

    @classmethod
    def fit(
        cls,
        p: NDArray[np.floating],
        y: NDArray[np.integer],
        customer: NDArray[np.integer],
        times: NDArray[np.float64],
        history: History,
    ) -> PriorShift:
        """The (weight, strength, buckets) on a small grid that minimise log-loss of the shifted
        ``p`` against ``y``.

        ``p`` ``(n, J)`` are the (calibrated) head's probabilities on validation points it did
        not learn from, at ``times``, for ``customer``; ``history`` the points it did learn
        from (the population, and each customer's past). Ties go to the simpler shift: none
        unless it helps, one bucket before eight, then the smaller weight. The temperature is
        chosen last, for the chosen shift (1 unless another does better).
        """
        n_jobs = int(np.shape(p)[1])
        best = cls.over(history, weight=0.0, strength=_STRENGTHS[-1], buckets=1, n_jobs=n_jobs)
        if np.shape(y)[0] == 0 or history.job.size == 0:
            return best
        best_loss = log_loss(np.asarray(p, np.float64), y)
        n_customers = int(max(np.max(customer), np.max(history.customer))) + 1
        for buckets in _BUCKETS:
            base = cls.over(history, weight=1.0, strength=1.0, buckets=buckets, n_jobs=n_jobs)
            for strength in _STRENGTHS:
                shift = PriorShift(1.0, strength, base.population)
                theta = shift.multipliers(history, n_customers)[np.asarray(customer, np.int64), _bucket(times, buckets)]
                for weight in _WEIGHTS:
                    loss = log_loss(PriorShift(weight, strength, base.population).apply(p, theta), y)
                    if loss < best_loss - 1e-6:
                        best, best_loss = PriorShift(weight, strength, base.population), loss
        if best.weight == 0.0:
            return best
        theta = best.multipliers(history, n_customers)[np.asarray(customer, np.int64), _bucket(times, best.buckets)]
        tempered = best
        for temperature in _TEMPERATURES:
            candidate = PriorShift(best.weight, best.strength, best.population, temperature)
            loss = log_loss(candidate.apply(p, theta), y)
            if loss < best_loss - 1e-6:
                tempered, best_loss = candidate, loss
        return tempered

    def with_population(self, history: History) -> PriorShift:
        """The same weight, strength and buckets over the population of ``history``
        (the head refit on every training point)."""
        shift = PriorShift.over(history, weight=self.weight, strength=self.strength, buckets=self.buckets, n_jobs=self.n_jobs)
        return PriorShift(shift.weight, shift.strength, shift.population, self.temperature)

    def to_dict(self) -> dict[str, object]:
        return {"weight": self.weight, "strength": self.strength, "population": [list(row) for row in self.population],
                "temperature": self.temperature}

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> PriorShift:
        population = data["population"]
        assert isinstance(population, list)
        return cls(float(data["weight"]), float(data["strength"]),  # type: ignore[arg-type]
                   tuple(tuple(float(v) for v in row) for row in population),
                   float(data.get("temperature", 1.0)))  # type: ignore[arg-type]
