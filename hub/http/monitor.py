"""``FleetMonitor``: one periodic look at the fleet, shared by the API, metrics and streams.

Every ``stream_interval_s`` it reads the edges (the API's read-only connection), samples the
hub's counters into a bounded throughput history, evaluates the alarms and publishes an
immutable ``FleetSnapshot``. However many dashboards are open, the database is read once
per interval.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .alarms import Alarm, GapTracker, evaluate_alarms
from .fleet import EdgeRow, read_edges
from .metrics import IngestMetrics, anticipation_figures
from .settings import HttpSettings

if TYPE_CHECKING:
    from ..service import Hub
    from ..store import Store

__all__ = ["FleetMonitor", "FleetSnapshot", "Sample"]

log = logging.getLogger(__name__)

RATE_WINDOW_S = 3.0


@dataclass(frozen=True, slots=True)
class Sample:
    """Counters at one instant (the throughput chart plots differences of these)."""

    ts: float
    events: int
    messages: int
    batches: int
    dead_letters: int
    anticipations: int

    def to_json(self) -> dict[str, Any]:
        return {"ts": self.ts, "events": self.events, "messages": self.messages, "batches": self.batches,
                "dead_letters": self.dead_letters, "anticipations": self.anticipations}


@dataclass(frozen=True, slots=True)
class FleetSnapshot:
    ts: float
    seq: int
    edges: tuple[EdgeRow, ...]
    alarms: tuple[Alarm, ...]
    sample: Sample
    rate: float  # events stored per second over the last RATE_WINDOW_S
    dead_letters: dict[str, int] = field(default_factory=dict)

    def alarm_counts(self) -> Counter[str]:
        return Counter(a.kind for a in self.alarms)

    def summary(self, *, max_edges: int = 500) -> dict[str, Any]:
        """The fleet document streamed to dashboards (fleet-level: fit for viewers)."""
        states = Counter("unknown" if e.online is None else "online" if e.online else "offline" for e in self.edges)
        return {
            "ts": self.ts,
            "seq": self.seq,
            "counters": self.sample.to_json(),
            "rate": self.rate,
            "edges": {"online": states["online"], "offline": states["offline"], "unknown": states["unknown"],
                      "total": len(self.edges), "backlog": sum(e.backlog or 0 for e in self.edges),
                      "gaps": sum(e.gaps for e in self.edges), "missing": sum(e.missing for e in self.edges),
                      "overflow_dropped": sum(e.overflow_dropped for e in self.edges)},
            "edge_rows": [e.to_json() for e in self.edges[:max_edges]],
            "alarms": [a.to_json() for a in self.alarms],
            "dead_letters": dict(self.dead_letters),
        }


class FleetMonitor:
    """Samples the hub every ``settings.stream_interval_s``; ``latest`` and ``wait_newer`` read it."""

    def __init__(
        self, hub: Hub, reader: Store, ingest: IngestMetrics, settings: HttpSettings,
        *, clock: Callable[[], float] = time.time,
    ) -> None:
        self.hub = hub
        self.reader = reader
        self.ingest = ingest
        self.settings = settings
        self.history: deque[Sample] = deque(maxlen=settings.history_samples)
        self.latest: FleetSnapshot | None = None
        self._clock = clock
        self._gaps = GapTracker()
        self._changed = asyncio.Condition()
        self._commit_mark: tuple[int, int, float] | None = None  # (commits, messages, when commits last moved)
        self._closed = False

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        interval = self.settings.stream_interval_s
        while True:
            started = loop.time()
            try:
                await self.refresh()
            except Exception:  # a failed read must not stop the API; the next tick retries
                log.exception("fleet monitor could not read the hub store")
            # A large fleet makes a refresh slow (about 0.3 s for 10,000 edges here): keep the
            # monitor's share of the hub's time to a third or less by refreshing less often.
            await asyncio.sleep(max(interval, 2 * (loop.time() - started)))

    async def refresh(self) -> FleetSnapshot:
        now = self._clock()
        edges = tuple(await read_edges(self.reader))
        stats = self.hub.stats
        dead = dict(self.hub.dead_letters.counts)
        sample = Sample(now, stats.events_stored, stats.messages, self.ingest.batches, sum(dead.values()),
                        anticipation_figures(self.hub).published)
        # Rate over a trailing window, not one interval: batches arrive in bursts that one
        # short interval would alias into spikes and zeros.
        window = max(RATE_WINDOW_S, 2 * self.settings.stream_interval_s)
        base = next((s for s in self.history if s.ts >= now - window), self.history[-1] if self.history else None)
        rate = (sample.events - base.events) / (now - base.ts) if base and now > base.ts else 0.0
        self.history.append(sample)
        window_start = now - self.settings.alarms.dead_letter_window_s
        burst = sample.dead_letters - next((s.dead_letters for s in self.history if s.ts >= window_start),
                                           sample.dead_letters)
        alarms = evaluate_alarms(
            edges, now=now, settings=self.settings.alarms, dead_letters_in_window=burst,
            gap_since=self._gaps.update(edges, now=now), stalled_s=self._stalled(stats.commits, stats.messages, now),
        )
        seq = self.latest.seq + 1 if self.latest else 1
        snap = FleetSnapshot(now, seq, edges, tuple(alarms), sample, max(rate, 0.0), dead)
        self.latest = snap
        async with self._changed:
            self._changed.notify_all()
        return snap

    def _stalled(self, commits: int, messages: int, now: float) -> float | None:
        """Seconds since the last commit while newer messages wait (None: not stalled)."""
        mark = self._commit_mark
        if mark is None or commits != mark[0]:
            self._commit_mark = (commits, messages, now)
            return None
        return now - mark[2] if messages > mark[1] else None

    async def close(self) -> None:
        """Wake every waiter for good (the server is stopping: streams end now)."""
        self._closed = True
        async with self._changed:
            self._changed.notify_all()

    async def wait_newer(self, seq: int, *, timeout: float) -> FleetSnapshot | None:
        """The first snapshot newer than ``seq``; None after ``timeout`` or once closed."""
        try:
            async with asyncio.timeout(timeout):
                async with self._changed:
                    await self._changed.wait_for(
                        lambda: self._closed or (self.latest is not None and self.latest.seq > seq)
                    )
        except TimeoutError:
            return None
        return None if self._closed else self.latest
