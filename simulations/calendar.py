"""A customer's calendar: which days are business trips, holidays, hosting evenings.

Per block of 28 days most customers get at least one of each, so over four weeks every
market occurs for most of them. Trips never overlap (one free day between trips).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from .people import ResidentSpec

__all__ = ["Calendar", "Trip", "plan_calendar"]


@dataclass(frozen=True, slots=True)
class Trip:
    """Away from ``depart`` (day index) until ``back`` (day index, the day of return)."""

    kind: Literal["business", "leisure"]
    residents: tuple[int, ...]
    depart: int
    back: int

    def covers(self, day: int) -> bool:
        return self.depart <= day <= self.back


@dataclass(frozen=True, slots=True)
class Calendar:
    n_days: int
    weekday0: int  # weekday of day 0 (0 = Monday)
    trips: tuple[Trip, ...]
    hosting: frozenset[int]

    def weekday(self, day: int) -> int:
        return (self.weekday0 + day) % 7

    def weekend(self, day: int) -> bool:
        return self.weekday(day) >= 5

    def trip(self, resident: int, day: int) -> Trip | None:
        for t in self.trips:
            if resident in t.residents and t.covers(day):
                return t
        return None


def _free(trips: list[Trip], first: int, last: int) -> bool:
    return all(last < t.depart - 1 or first > t.back + 1 for t in trips)


def plan_calendar(
    rng: np.random.Generator, residents: tuple[ResidentSpec, ...], *, n_days: int, weekday0: int
) -> Calendar:
    """Draw trips and hosting evenings for ``n_days`` days starting on weekday ``weekday0``."""
    trips: list[Trip] = []
    hosting: set[int] = set()
    everyone = tuple(range(len(residents)))
    workers = [i for i, r in enumerate(residents) if r.work != "none"] or [0]
    for block in range(0, n_days, 28):
        days = range(block, min(block + 28, n_days))
        if not days:
            break
        # holidays first: the whole household leaves on a Friday or Saturday
        for _ in range(int(rng.choice([0, 1, 2], p=[0.08, 0.8, 0.12]))):
            starts = [d for d in days if (weekday0 + d) % 7 in (4, 5)]
            for _try in range(10):
                if not starts:
                    break
                d0 = int(rng.choice(starts))
                d1 = min(d0 + int(rng.integers(2, 4)), n_days - 1)
                if d1 > d0 and _free(trips, d0, d1):
                    trips.append(Trip("leisure", everyone, d0, d1))
                    break
        for _ in range(int(rng.choice([0, 1, 2], p=[0.08, 0.62, 0.30]))):
            who = int(rng.choice(workers))
            starts = [d for d in days if (weekday0 + d) % 7 <= 3]
            for _try in range(10):
                if not starts:
                    break
                d0 = int(rng.choice(starts))
                nights = int(rng.integers(1, 4))
                d1 = min(d0 + nights, d0 + 4 - (weekday0 + d0) % 7, n_days - 1)  # back by Friday
                if d1 > d0 and _free(trips, d0, d1):
                    trips.append(Trip("business", (who,), d0, d1))
                    break
        for _ in range(int(rng.choice([0, 1, 2, 3], p=[0.06, 0.4, 0.37, 0.17]))):
            wanted = [d for d in days if (weekday0 + d) % 7 in (4, 5, 6)] if rng.random() < 0.75 else list(days)
            free = [d for d in wanted if d not in hosting and all(not t.covers(d) for t in trips)]
            if free:
                hosting.add(int(rng.choice(free)))
    trips.sort(key=lambda t: t.depart)
    return Calendar(n_days=n_days, weekday0=weekday0, trips=tuple(trips), hosting=frozenset(hosting))
