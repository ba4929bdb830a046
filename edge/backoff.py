"""Jittered, capped exponential backoff for reconnect loops."""

from __future__ import annotations

import random
from collections.abc import Callable

__all__ = ["Backoff"]


class Backoff:
    """Delays ``initial·2ⁿ`` capped at ``cap``, each scaled by a random factor in [0.5, 1].

    The jitter spreads a fleet of edges that lost the same hub so they do not reconnect in
    lock-step; ``reset()`` after a connection that worked.
    """

    def __init__(self, *, initial: float = 0.5, cap: float = 30.0, rng: Callable[[], float] = random.random) -> None:
        if initial <= 0 or cap < initial:
            raise ValueError(f"need 0 < initial <= cap, got {initial}, {cap}")
        self.initial = initial
        self.cap = cap
        self._rng = rng
        self._attempt = 0

    def next(self) -> float:
        """The delay before the next attempt."""
        base = min(self.cap, self.initial * 2.0 ** min(self._attempt, 60))
        self._attempt += 1
        return base * (0.5 + 0.5 * self._rng())

    def reset(self) -> None:
        self._attempt = 0

    @property
    def attempts(self) -> int:
        return self._attempt
