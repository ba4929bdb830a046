"""Customers: residents with individual habits, a home, and the venues they visit.

``Population.generate(n, seed)`` is deterministic: customer ``i`` depends only on
``(seed, i)``, so growing ``n`` keeps the first customers as they were.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .people import ATYPICAL, ResidentSpec, draw_resident
from .places import PlaceSpec, build_gym, build_holiday_home, build_home, build_hotel

__all__ = ["CustomerSpec", "Population"]

# Population mix. Atypical archetypes (night owls, shift workers) are a minority on purpose.
_ARCHETYPE_P = {"regular": 0.5, "early_bird": 0.17, "family": 0.18, "night_owl": 0.09, "shift_worker": 0.06}
_N_HOTELS, _N_HOLIDAY, _N_GYMS = 6, 8, 4


@dataclass(frozen=True)
class CustomerSpec:
    """Everything fixed about one simulated customer. ``seed`` drives all its randomness."""

    customer_id: str
    seed: int
    residents: tuple[ResidentSpec, ...]
    home: PlaceSpec
    hotel: PlaceSpec
    holiday_home: PlaceSpec
    gym: PlaceSpec

    @property
    def atypical(self) -> bool:
        """True when the household's habits deliberately differ from the population's."""
        return any(r.archetype in ATYPICAL for r in self.residents)

    @property
    def archetype(self) -> str:
        return self.residents[0].archetype

    @property
    def places(self) -> tuple[PlaceSpec, ...]:
        return (self.home, self.hotel, self.holiday_home, self.gym)

    @property
    def edges(self) -> dict[str, str]:
        """edge id -> role."""
        return {p.edge_id: p.role for p in self.places}

    def place(self, role: str) -> PlaceSpec:
        for p in self.places:
            if p.role == role:
                return p
        raise KeyError(role)


class Population:
    """Factory of customers (no state: a namespace with one classmethod)."""

    @classmethod
    def generate(cls, n: int, seed: int, *, prefix: str = "c") -> list[CustomerSpec]:
        """``n`` customers for ``seed``; ids are ``{prefix}{i:04d}`` and edges ``{id}-{role}``."""
        return [cls.customer(i, seed, prefix=prefix) for i in range(n)]

    @classmethod
    def customer(cls, index: int, seed: int, *, prefix: str = "c") -> CustomerSpec:
        cid = f"{prefix}{index:04d}"
        ss = np.random.SeedSequence([seed, index])
        rng = np.random.default_rng(ss)
        archetype = str(rng.choice(list(_ARCHETYPE_P), p=list(_ARCHETYPE_P.values())))
        n_residents = int(rng.choice([1, 2, 3], p=[0.55, 0.35, 0.10]))
        if archetype == "family":
            n_residents = max(n_residents, 2)
        residents = [draw_resident(rng, name=f"{cid}-r0", archetype=archetype)]
        for k in range(1, n_residents):
            # Housemates follow the population, not the first resident's archetype.
            other = str(rng.choice(["regular", "early_bird", "family"], p=[0.6, 0.2, 0.2]))
            residents.append(draw_resident(rng, name=f"{cid}-r{k}", archetype=other))
        people = tuple(residents)
        return CustomerSpec(
            customer_id=cid,
            seed=int(ss.generate_state(1)[0]),
            residents=people,
            home=build_home(rng, f"{cid}-home", people),
            hotel=build_hotel(rng, f"{cid}-hotel", f"hotel-{int(rng.integers(_N_HOTELS))}"),
            holiday_home=build_holiday_home(rng, f"{cid}-holiday", f"holiday-{int(rng.integers(_N_HOLIDAY))}"),
            gym=build_gym(rng, f"{cid}-gym", f"gym-{int(rng.integers(_N_GYMS))}"),
        )
