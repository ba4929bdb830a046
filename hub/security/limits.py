"""``TokenBucket`` and ``RateLimiter``: events per second per source, bounded in memory."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["RateLimiter", "TokenBucket"]


@dataclass(slots=True)
class TokenBucket:
    """``rate`` tokens per second up to ``burst``; ``take(n)`` spends n if it can."""

    rate: float
    burst: float
    tokens: float
    updated: float

    def take(self, n: float, *, now: float) -> bool:
        """Spend ``n`` tokens if there are enough (then True); otherwise spend nothing.

        A request bigger than the whole bucket is allowed once the bucket is full, so a
        single large batch is not refused forever; it leaves the bucket in debt.
        """
        elapsed = now - self.updated
        if elapsed > 0:
            self.tokens = min(self.burst, self.tokens + elapsed * self.rate)
            self.updated = now
        if self.tokens >= n or (n > self.burst and self.tokens >= self.burst):
            self.tokens -= n
            return True
        return False


class RateLimiter:
    """One ``TokenBucket`` per key (edge id, device topic …), at most ``max_keys`` of them.

    Keys can be attacker-chosen (topics): past ``max_keys`` the buckets are dropped and
    start full again, which forgives a little but never grows without bound.
    """

    def __init__(self, *, rate: float, burst: float, max_keys: int = 100_000) -> None:
        self.rate = rate
        self.burst = burst
        self.max_keys = max_keys
        self._buckets: dict[str, TokenBucket] = {}

    def allow(self, key: str, n: float = 1.0, *, now: float) -> bool:
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self.max_keys:
                self._buckets.clear()
            bucket = self._buckets[key] = TokenBucket(self.rate, self.burst, self.burst, now)
        return bucket.take(n, now=now)
