"""Residents: each draws its own routine parameters, so no two customers are alike.

Times of day are hours after the day's midnight (a bed time of 25.5 is 01:30 the next day).
Archetypes set the centre of each draw; ``night_owl`` and ``shift_worker`` are the atypical
ones (their habits differ from the population's on purpose) and are flagged as such.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

__all__ = ["ARCHETYPES", "ATYPICAL", "Archetype", "ResidentSpec", "draw_resident"]

Archetype = Literal["regular", "early_bird", "family", "night_owl", "shift_worker"]
ARCHETYPES: tuple[str, ...] = ("regular", "early_bird", "family", "night_owl", "shift_worker")
ATYPICAL = frozenset({"night_owl", "shift_worker"})
Work = Literal["office", "hybrid", "remote", "shift", "none"]
Drink = Literal["coffee", "tea", "none"]


@dataclass(frozen=True, slots=True)
class ResidentSpec:
    """One person's habits. Probabilities are per day unless said otherwise."""

    name: str
    archetype: str
    wake: float  # workday wake time (h)
    weekend_delay: float  # extra sleep on free days (h)
    bed: float  # bed time (h, may exceed 24)
    jitter: float  # sd of anchor times (h): regularity, small = very regular
    drink: Drink
    second_drink_p: float  # afternoon coffee/tea
    breakfast_p: float
    morning_order: tuple[str, ...]  # order of shower / drink / breakfast in the morning
    shower_evening: bool
    shower_p: float
    shower_min: float  # mean shower length (min)
    work: Work
    remote_days: frozenset[int]  # weekdays (0 = Monday) worked from home
    leave_after: float  # hours between wake and leaving for work
    work_hours: float
    gym_days: frozenset[int]
    gym_evening: bool
    home_exercise_p: float
    cook_p: float
    dinner: float  # dinner time (h)
    eat_min: float
    dishwasher: bool
    dishes_p: float
    tv_p: float
    tv_hours: float
    laundry_days: frozenset[int]
    night_toilet: float  # expected bed_to_toilet visits per night
    button_p: float  # uses the bedside button
    speed: float  # duration multiplier (slow < 1 < quick is inverted: >1 = slower)
    weekend_out_p: float  # goes out on a free day

    @property
    def atypical(self) -> bool:
        return self.archetype in ATYPICAL


def _days(rng: np.random.Generator, k: int, *, pool: tuple[int, ...] = (0, 1, 2, 3, 4, 5, 6)) -> frozenset[int]:
    k = max(0, min(k, len(pool)))
    return frozenset(int(d) for d in rng.choice(pool, size=k, replace=False))


def draw_resident(rng: np.random.Generator, *, name: str, archetype: str) -> ResidentSpec:
    """Draw one resident's habits around the centre of ``archetype``."""
    u = rng.uniform
    if archetype == "night_owl":
        wake, bed = u(9.5, 11.5), u(25.0, 27.0)
        work = str(rng.choice(["remote", "none", "hybrid"], p=[0.6, 0.2, 0.2]))
        dinner = u(20.5, 22.5)
    elif archetype == "shift_worker":
        wake, bed = u(4.3, 5.3), u(21.0, 22.0)  # day-shift weeks; night weeks are shifted in the planner
        work, dinner = "shift", u(17.5, 19.0)
    elif archetype == "early_bird":
        wake, bed = u(5.0, 6.2), u(21.0, 22.3)
        work = str(rng.choice(["office", "hybrid", "none"], p=[0.5, 0.3, 0.2]))
        dinner = u(17.5, 19.0)
    else:  # regular, family
        wake, bed = u(6.2, 7.8), u(22.3, 23.8)
        work = str(rng.choice(["office", "hybrid", "remote", "none"], p=[0.45, 0.3, 0.15, 0.1]))
        dinner = u(18.3, 20.3)
    drink = str(rng.choice(["coffee", "tea", "none"], p=[0.55, 0.35, 0.10]))
    morning = ["shower", "drink", "breakfast"]
    rng.shuffle(morning)
    remote_days: frozenset[int]
    if work == "remote":
        remote_days = frozenset(range(5))
    elif work == "hybrid":
        remote_days = _days(rng, int(rng.integers(1, 4)), pool=(0, 1, 2, 3, 4))
    else:
        remote_days = frozenset()
    gym_days = _days(rng, int(rng.choice([0, 1, 2, 3], p=[0.15, 0.3, 0.35, 0.2])))
    return ResidentSpec(
        name=name,
        archetype=archetype,
        wake=float(wake),
        weekend_delay=float(u(0.3, 2.5)),
        bed=float(bed),
        jitter=float(rng.choice([u(0.08, 0.25), u(0.25, 0.6)], p=[0.6, 0.4])),
        drink=drink,  # type: ignore[arg-type]
        second_drink_p=float(u(0.0, 0.8)),
        breakfast_p=float(u(0.3, 1.0)),
        morning_order=tuple(morning),
        shower_evening=bool(rng.random() < 0.3),
        shower_p=float(u(0.5, 1.0)),
        shower_min=float(u(5.0, 18.0)),
        work=work,  # type: ignore[arg-type]
        remote_days=remote_days,
        leave_after=float(u(0.6, 1.5)),
        work_hours=float(u(7.5, 9.8)),
        gym_days=gym_days,
        gym_evening=bool(rng.random() < 0.6),
        home_exercise_p=float(u(0.0, 0.35)),
        cook_p=float(u(0.35, 0.95)),
        dinner=float(dinner),
        eat_min=float(u(15.0, 40.0)),
        dishwasher=bool(rng.random() < 0.6),
        dishes_p=float(u(0.4, 0.95)),
        tv_p=float(u(0.2, 0.95)),
        tv_hours=float(u(0.5, 3.0)),
        laundry_days=_days(rng, int(rng.integers(1, 3))),
        night_toilet=float(rng.choice([u(0.0, 0.2), u(0.3, 1.5)], p=[0.6, 0.4])),
        button_p=float(rng.choice([0.0, u(0.5, 0.98)], p=[0.3, 0.7])),
        speed=float(np.exp(rng.normal(0.0, 0.2))),
        weekend_out_p=float(u(0.2, 0.9)),
    )
