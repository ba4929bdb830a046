"""Prometheus text exposition (format 0.0.4), written by hand: a few families, no dependency.

``IngestMetrics`` is an ``on_committed`` hook counting batches and observing ingest latency;
``render_metrics`` writes every family from the hub's live counters and the fleet monitor.

Ingest latency is measured per stored batch from its newest event's timestamp (the edge's
clock) to the hub's commit: what an operator means by "how fresh is the data that lands",
including the edge's batching, any outbox backlog and clock skew (negative values count as 0).

Anticipation figures come from ``hub.anticipation`` when it offers ``metrics() ->
AnticipationFigures`` (the hook for the anticipation service); without it they are 0.
"""

from __future__ import annotations

import bisect
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ..pipeline import CommitSummary
    from ..service import Hub
    from .monitor import FleetSnapshot

__all__ = [
    "AnticipationFigures", "AnticipationSource", "Histogram", "IngestMetrics", "anticipation_figures",
    "render_metrics",
]

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 3600.0)
ANTICIPATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class Histogram:
    """Cumulative-bucket histogram (Prometheus semantics: ``le`` buckets, sum, count)."""

    def __init__(self, buckets: Sequence[float]) -> None:
        self.bounds = tuple(sorted(buckets))
        self.counts = [0] * (len(self.bounds) + 1)  # last: +Inf only
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        value = max(float(value), 0.0)
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.sum += value
        self.count += 1

    def cumulative(self) -> list[tuple[str, int]]:
        out, total = [], 0
        for bound, n in zip((*self.bounds, math.inf), self.counts):
            total += n
            out.append(("+Inf" if bound == math.inf else _num(bound), total))
        return out


@dataclass(slots=True)
class AnticipationFigures:
    published: int = 0
    latency: Histogram = field(default_factory=lambda: Histogram(ANTICIPATION_BUCKETS))
    # Mean sacrifice (1 - probability the last anticipation gave to what the customer did) by market.
    sacrifice: Mapping[str, float] = field(default_factory=dict)


class AnticipationSource(Protocol):
    def metrics(self) -> AnticipationFigures: ...


def anticipation_figures(hub: Hub) -> AnticipationFigures:
    """The anticipation service's figures, or zeros while the hub has none."""
    source = getattr(hub, "anticipation", None)
    metrics = getattr(source, "metrics", None)
    if callable(metrics):
        figures = metrics()
        if isinstance(figures, AnticipationFigures):
            return figures
    return AnticipationFigures()


class IngestMetrics:
    """``on_committed`` hook: batches stored and their ingest latency."""

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self.batches = 0
        self.latency = Histogram(LATENCY_BUCKETS)
        self._clock = clock

    def __call__(self, summary: CommitSummary) -> None:
        now = self._clock()
        for _customer, _edge, events in summary.batches:
            self.batches += 1
            if events:
                self.latency.observe(now - max(e.ts for e in events))


def render_metrics(hub: Hub, ingest: IngestMetrics, fleet: FleetSnapshot | None) -> str:
    stats = hub.stats
    w = _Writer()
    w.family("genius_hub_up", "gauge", "1 while the hub process serves", [((), 1)])
    w.family("genius_hub_broker_connected", "gauge", "1 once subscribed to the hub broker",
             [((), int(hub.ready.is_set()))])
    w.family("genius_hub_events_ingested_total", "counter", "events stored (duplicates excluded) since start",
             [((), stats.events_stored)])
    w.family("genius_hub_messages_total", "counter", "MQTT messages taken from the broker since start",
             [((), stats.messages)])
    w.family("genius_hub_batches_total", "counter", "event batches that stored something since start",
             [((), ingest.batches)])
    w.family("genius_hub_duplicates_total", "counter", "duplicate events received (already stored)",
             [((), stats.duplicates)])
    w.family("genius_hub_commits_total", "counter", "store transactions committed", [((), stats.commits)])
    w.histogram("genius_hub_ingest_latency_seconds",
                "newest event timestamp of a batch (edge clock) to its commit at the hub", ingest.latency)
    dead = sorted(hub.dead_letters.counts.items())
    w.family("genius_hub_dead_letters_total", "counter", "dead letters by reason (all time, from the store)",
             [((("reason", r),), n) for r, n in dead])
    if fleet is not None:
        states = {"online": 0, "offline": 0, "unknown": 0}
        for e in fleet.edges:
            states["unknown" if e.online is None else "online" if e.online else "offline"] += 1
        w.family("genius_hub_edges", "gauge", "edges by last reported state",
                 [((("state", s),), n) for s, n in states.items()])
        w.family("genius_hub_edge_backlog_events", "gauge", "events waiting in edge outboxes, as last reported",
                 [((), sum(e.backlog or 0 for e in fleet.edges))])
        w.family("genius_hub_gaps", "gauge", "open seq gaps over all edges", [((), sum(e.gaps for e in fleet.edges))])
        w.family("genius_hub_missing_events", "gauge", "seqs missing below each edge's highest",
                 [((), sum(e.missing for e in fleet.edges))])
        w.family("genius_hub_edge_overflow_dropped", "gauge", "events edges dropped from full outboxes (reported)",
                 [((), sum(e.overflow_dropped for e in fleet.edges))])
        w.family("genius_hub_alarms", "gauge", "alarms now, by kind",
                 [((("kind", k),), n) for k, n in sorted(fleet.alarm_counts().items())])
    figures = anticipation_figures(hub)
    w.family("genius_hub_anticipations_published_total", "counter", "anticipations published",
             [((), figures.published)])
    w.histogram("genius_hub_anticipation_latency_seconds", "commit to anticipation published", figures.latency)
    w.family("genius_hub_sacrifice", "gauge", "mean sacrifice (1 - p given to what the customer did), by market",
             [((("market", m),), v) for m, v in sorted(figures.sacrifice.items())])
    return w.text()


class _Writer:
    def __init__(self) -> None:
        self._lines: list[str] = []

    def family(self, name: str, kind: str, help_: str, samples: Iterable[tuple[tuple[tuple[str, str], ...], float]]) -> None:
        self._lines.append(f"# HELP {name} {help_}")
        self._lines.append(f"# TYPE {name} {kind}")
        for labels, value in samples:
            self._lines.append(f"{name}{_labels(labels)} {_num(value)}")

    def histogram(self, name: str, help_: str, h: Histogram) -> None:
        self._lines.append(f"# HELP {name} {help_}")
        self._lines.append(f"# TYPE {name} histogram")
        for le, n in h.cumulative():
            self._lines.append(f'{name}_bucket{{le="{le}"}} {n}')
        self._lines.append(f"{name}_sum {_num(h.sum)}")
        self._lines.append(f"{name}_count {h.count}")

    def text(self) -> str:
        return "\n".join(self._lines) + "\n"


def _labels(labels: tuple[tuple[str, str], ...]) -> str:
    if not labels:
        return ""
    inner = ",".join(f'{k}="{_escape(v)}"' for k, v in labels)
    return "{" + inner + "}"


def _escape(value: Any) -> str:
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _num(value: float) -> str:
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, int):
        return str(value)
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))
