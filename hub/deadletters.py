"""Dead letters: bad input is kept with its reason, counted, and logged without flooding.

The ingest pipeline calls ``DeadLetters.add``; the rows ride in the next commit (the same
transaction as the good events of that group), so a dead letter is as durable as an event.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from typing import NamedTuple

__all__ = ["DeadLetter", "DeadLetters"]

log = logging.getLogger(__name__)

MAX_DETAIL = 2_000


class DeadLetter(NamedTuple):
    ts: float
    topic: str
    customer_id: str | None
    edge_id: str | None
    reason: str
    detail: str
    raw: bytes


class DeadLetters:
    """Pending dead-letter rows, counters by reason, one WARNING per (source, reason) per window."""

    def __init__(
        self,
        *,
        warn_window_s: float = 60.0,
        clock: Callable[[], float] = time.time,
        counts: Counter[str] | None = None,
    ) -> None:
        self.counts: Counter[str] = counts if counts is not None else Counter()
        self._pending: list[DeadLetter] = []
        self._warn_window_s = warn_window_s
        self._clock = clock
        self._warned: dict[tuple[str, str], tuple[float, int]] = {}

    def add(
        self,
        *,
        topic: str,
        reason: str,
        detail: str,
        raw: bytes,
        customer_id: str | None = None,
        edge_id: str | None = None,
    ) -> DeadLetter:
        now = self._clock()
        letter = DeadLetter(now, topic, customer_id, edge_id, reason, detail[:MAX_DETAIL], bytes(raw))
        self._pending.append(letter)
        self.counts[reason] += 1
        self._warn(edge_id or customer_id or topic, reason, detail, now)
        return letter

    def drain(self) -> list[DeadLetter]:
        """Take the rows not yet written (the writer puts them in its next transaction)."""
        pending, self._pending = self._pending, []
        return pending

    def restore(self, letters: list[DeadLetter]) -> None:
        """Put back rows whose transaction failed, ahead of any newer ones."""
        self._pending[:0] = letters

    def _warn(self, source: str, reason: str, detail: str, now: float) -> None:
        key = (source, reason)
        since, suppressed = self._warned.get(key, (float("-inf"), 0))
        if now - since < self._warn_window_s:
            self._warned[key] = (since, suppressed + 1)
            return
        if len(self._warned) > 10_000:  # sources are attacker-controlled: keep this bounded
            self._warned.clear()
        self._warned[key] = (now, 0)
        log.warning(
            "dead letter from %s (%s): %s%s",
            source,
            reason,
            detail[:200],
            f" [{suppressed} more suppressed]" if suppressed else "",
            extra={"source": source, "reason": reason},
        )
