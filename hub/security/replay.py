"""``ReplayCache``: signatures seen within a window, bounded in size."""

from __future__ import annotations

from collections import OrderedDict

__all__ = ["ReplayCache"]


class ReplayCache:
    """Remembers each signature for ``window_s``; ``seen`` says whether it came before.

    Entries are kept in insertion order, and insertion times only grow (a wall clock that
    steps back only makes entries live longer), so expiry pops from the front. Past
    ``max_entries`` the oldest are forgotten: an attacker flooding distinct signatures
    must still produce valid ones, which needs the key.
    """

    def __init__(self, *, window_s: float, max_entries: int = 1_000_000) -> None:
        self.window_s = window_s
        self.max_entries = max_entries
        self._seen: OrderedDict[str, float] = OrderedDict()

    def __len__(self) -> int:
        return len(self._seen)

    def seen(self, signature: str, *, now: float) -> bool:
        """True if ``signature`` was recorded within the window; records it otherwise."""
        self._expire(now)
        if signature in self._seen:
            return True
        self._seen[signature] = now
        while len(self._seen) > self.max_entries:
            self._seen.popitem(last=False)
        return False

    def _expire(self, now: float) -> None:
        horizon = now - self.window_s
        seen = self._seen
        while seen:
            sig, ts = next(iter(seen.items()))
            if ts >= horizon:
                break
            seen.popitem(last=False)
