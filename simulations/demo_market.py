"""The market a customer is in now, read from the hub's side only (for ``genius demo``).

DESIGN.md derives the market from the edge's role, the calendar, presence and recent
activity. Until the hub's anticipation service publishes its own (``Anticipation.market``,
which the demo prefers when there is one), the demo reads it from what the hub knows:
the customer's context (``ContextFuser.snapshot``) and each edge's declared role:

1. the most recent venue check-in (``checkin`` capability) is a lodging ``arrival`` with no
   ``departure`` after it → ``travel:business`` (the customer sleeps at a venue: a hotel);
   a member-gate ``entry`` within the last 3 hours with no ``exit`` → ``venue:gym``;
2. else the edge where a room was last occupied is a ``holiday_home`` → ``travel:leisure``;
3. else ``home:weekend`` on Saturday and Sunday (UTC, as the simulated households live),
   ``home:weekday`` otherwise.

Nothing here reads the simulator's ground truth.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

__all__ = ["current_market"]

_GYM_VISIT_S = 3 * 3600.0


def _ago(now: float, ts: float) -> str:
    minutes = max(0, int((now - ts) // 60))
    return f"{minutes} min ago" if minutes < 120 else f"{minutes // 60} h ago"


def current_market(snapshot: Mapping[str, Any], roles: Mapping[str, str | None], *, now: float) -> tuple[str, str]:
    """``(market, why)`` for one customer from its hub context and its edges' roles."""
    checkins = [e for e in snapshot.get("latest", ()) if e.get("capability") == "checkin"]
    if checkins:
        last = max(checkins, key=lambda e: e["ts"])
        edge = last["edge_id"]
        if last["value"] == "arrival":
            return "travel:business", f"checked in at {edge} ({roles.get(edge) or 'venue'}) {_ago(now, last['ts'])}"
        if last["value"] == "entry" and now - last["ts"] <= _GYM_VISIT_S:
            return "venue:gym", f"entered {edge} {_ago(now, last['ts'])}"
    where: dict[str, float] = {}
    for room in snapshot.get("rooms", ()):
        seen = room.get("last_activation") or 0.0
        where[room["edge_id"]] = max(where.get(room["edge_id"], 0.0), seen)
    if where:
        edge = max(where, key=lambda e: where[e])
        if where[edge] and roles.get(edge) == "holiday_home":
            return "travel:leisure", f"rooms last occupied at {edge} (holiday home) {_ago(now, where[edge])}"
    weekend = datetime.fromtimestamp(now, timezone.utc).weekday() >= 5
    return ("home:weekend", "at home, a weekend day") if weekend else ("home:weekday", "at home, a weekday")
