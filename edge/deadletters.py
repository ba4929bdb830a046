"""Dead letters: input the edge could not use, kept with the reason instead of vanishing.

``record`` is synchronous and cheap (it is called from the message loop); rows are buffered
and written by the outbox in the same transaction as its next group commit, so a flood of
bad payloads costs no extra fsync. The table keeps the newest ``max_rows`` rows; the total
ever recorded survives restarts in the outbox's ``meta`` table. Logging is rate-limited to
one WARNING per (source, reason) per window, naming how many were suppressed.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from typing import NamedTuple

import aiosqlite

__all__ = ["DEAD_LETTERS_SCHEMA", "DeadLetter", "DeadLetters"]

log = logging.getLogger(__name__)

DEAD_LETTERS_SCHEMA = """
CREATE TABLE IF NOT EXISTS dead_letters (
    id INTEGER PRIMARY KEY,
    ts REAL NOT NULL,
    source TEXT NOT NULL,
    topic TEXT,
    payload BLOB,
    reason TEXT NOT NULL,
    detail TEXT
);
"""
MAX_STORED_PAYLOAD = 64 * 1024


class DeadLetter(NamedTuple):
    ts: float
    source: str  # "local", "hub", "normalise" …
    topic: str | None
    payload: bytes | None
    reason: str  # short, stable, low-cardinality
    detail: str


class DeadLetters:
    """Counts, logs (rate-limited) and buffers dead letters until the outbox writes them."""

    def __init__(
        self,
        *,
        window_s: float = 60.0,
        max_rows: int = 10_000,
        max_buffered: int = 10_000,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.window_s = window_s
        self.max_rows = max_rows
        self.max_buffered = max_buffered
        self._clock = clock
        self._monotonic = monotonic
        self._buffer: list[DeadLetter] = []
        self._warned: dict[tuple[str, str], float] = {}
        self._suppressed: Counter[tuple[str, str]] = Counter()
        self.by_reason: Counter[tuple[str, str]] = Counter()  # this process, (source, reason)
        self.persisted_total = 0  # loaded from the outbox meta at open
        self.unbuffered = 0  # records whose row was not kept because the buffer was full
        self.notify: Callable[[], None] | None = None  # the outbox asks to be told, to commit soon

    @property
    def total(self) -> int:
        """Dead letters ever recorded by this edge (across restarts once committed)."""
        return self.persisted_total + len(self._buffer) + self.unbuffered

    def record(
        self, *, source: str, reason: str, topic: str | None = None, payload: bytes | None = None, detail: str = ""
    ) -> None:
        """Count and buffer one dead letter; never raises."""
        key = (source, reason)
        self.by_reason[key] += 1
        if len(self._buffer) < self.max_buffered:
            if payload is not None and len(payload) > MAX_STORED_PAYLOAD:
                payload = payload[:MAX_STORED_PAYLOAD]
            self._buffer.append(DeadLetter(self._clock(), source, topic, payload, reason, detail[:1000]))
        else:
            self.unbuffered += 1
        now = self._monotonic()
        last = self._warned.get(key)
        if last is None or now - last >= self.window_s:
            suppressed = self._suppressed.pop(key, 0)
            self._warned[key] = now
            log.warning(
                "dead letter from %s (%s) on %r: %s%s",
                source,
                reason,
                topic,
                detail,
                f" (+{suppressed} more like it in the last window)" if suppressed else "",
                extra={"source": source, "reason": reason, "topic": topic},
            )
        else:
            self._suppressed[key] += 1
        if self.notify is not None:
            self.notify()

    def discard_buffered(self) -> int:
        """Forget rows not written yet (customer erasure); the counts stay."""
        n = len(self._buffer)
        self.persisted_total += n + self.unbuffered
        self._buffer, self.unbuffered = [], 0
        return n

    @property
    def pending(self) -> int:
        return len(self._buffer)

    async def write(self, db: aiosqlite.Connection) -> int:
        """Insert buffered rows inside the caller's transaction; the count written."""
        if not self._buffer and not self.unbuffered:
            return 0
        rows, self._buffer = self._buffer, []
        written = len(rows) + self.unbuffered
        self.unbuffered = 0
        if rows:
            await db.executemany(
                "INSERT INTO dead_letters (ts, source, topic, payload, reason, detail) VALUES (?, ?, ?, ?, ?, ?)",
                rows,
            )
            await db.execute(
                "DELETE FROM dead_letters WHERE id <= (SELECT max(id) FROM dead_letters) - ?", (self.max_rows,)
            )
        self.persisted_total += written
        return written
