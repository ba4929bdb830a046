"""Alarms: what in the fleet needs an operator now. Pure rules over plain figures.

Kinds (thresholds in ``AlarmSettings``):

* ``edge_offline`` — an edge is not online (last will, or never reported) and has not been
  heard from for ``offline_after_s``;
* ``gap`` — an edge has missing seqs that stayed missing for ``gap_grace_s`` (edges resend,
  so a short-lived gap is normal; ``genius hub status`` has no history and shows every gap);
* ``dead_letter_burst`` — ``dead_letter_burst`` or more dead letters within
  ``dead_letter_window_s``;
* ``ingest_lag`` — an edge reports ``backlog_events`` or more waiting in its outbox, or (live
  hub only) the hub holds queued messages and has not committed for ``stall_s``.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal

from ..store import Store
from .fleet import EdgeRow, dead_letters_since, read_edges
from .settings import AlarmSettings

__all__ = ["Alarm", "AlarmKind", "GapTracker", "alarms_from_db", "evaluate_alarms"]

AlarmKind = Literal["edge_offline", "gap", "dead_letter_burst", "ingest_lag"]


@dataclass(frozen=True, slots=True)
class Alarm:
    kind: AlarmKind
    severity: Literal["warning", "critical"]
    subject: str  # an edge id, or "hub"
    customer_id: str | None
    since: float | None
    message: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class GapTracker:
    """Remembers since when each edge has had a gap open (the live hub's history)."""

    def __init__(self) -> None:
        self._since: dict[str, float] = {}

    def update(self, edges: Iterable[EdgeRow], *, now: float) -> dict[str, float]:
        current = {e.edge_id for e in edges if e.gaps}
        self._since = {edge: self._since.get(edge, now) for edge in current}
        return dict(self._since)


def evaluate_alarms(
    edges: Iterable[EdgeRow],
    *,
    now: float,
    settings: AlarmSettings,
    dead_letters_in_window: int = 0,
    gap_since: Mapping[str, float] | None = None,
    stalled_s: float | None = None,
) -> list[Alarm]:
    """Every alarm that holds now, edges first (by edge id), then hub-wide ones.

    ``gap_since`` None means no history: any open gap is an alarm. ``stalled_s``: how long
    the hub has held queued messages without committing (None when it is not stalled).
    """
    out: list[Alarm] = []
    for e in sorted(edges, key=lambda r: r.edge_id):
        quiet = now - e.last_seen
        if e.online is not True and quiet >= settings.offline_after_s:
            out.append(Alarm(
                "edge_offline", "critical", e.edge_id, e.customer_id, e.last_seen,
                f"edge {e.edge_id} offline, last seen {_ago(quiet)} ago",
            ))
        if e.gaps:
            since = None if gap_since is None else gap_since.get(e.edge_id, now)
            if since is None or now - since >= settings.gap_grace_s:
                out.append(Alarm(
                    "gap", "warning", e.edge_id, e.customer_id, since,
                    f"edge {e.edge_id}: {e.missing} events missing in {e.gaps} gap(s) below seq {e.high_seq}",
                ))
        if e.backlog is not None and e.backlog >= settings.backlog_events:
            out.append(Alarm(
                "ingest_lag", "warning", e.edge_id, e.customer_id, None,
                f"edge {e.edge_id} reports {e.backlog} events waiting to reach the hub",
            ))
    if dead_letters_in_window >= settings.dead_letter_burst:
        out.append(Alarm(
            "dead_letter_burst", "warning", "hub", None, now - settings.dead_letter_window_s,
            f"{dead_letters_in_window} dead letters in the last {_ago(settings.dead_letter_window_s)}",
        ))
    if stalled_s is not None and stalled_s >= settings.stall_s:
        out.append(Alarm(
            "ingest_lag", "critical", "hub", None, now - stalled_s,
            f"hub has messages waiting and no commit for {_ago(stalled_s)}",
        ))
    return out


async def alarms_from_db(store: Store, *, settings: AlarmSettings | None = None, now: float | None = None) -> list[Alarm]:
    """Alarms from the database alone (``genius hub status``): no gap history, no stall check."""
    settings = settings or AlarmSettings()
    now = time.time() if now is None else now
    edges = await read_edges(store)
    burst = await dead_letters_since(store, now - settings.dead_letter_window_s)
    return evaluate_alarms(edges, now=now, settings=settings, dead_letters_in_window=burst)


def _ago(seconds: float) -> str:
    seconds = max(seconds, 0.0)
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172_800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"
