"""Fleet-level reads from the hub database: one row per edge, dead letters in a window.

These run on the API's own read-only connection (WAL lets it read while ingest writes), so
a dashboard never queues behind a commit.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from ..progress import SeqRanges
from ..store import Store

__all__ = ["EdgeRow", "dead_letters_since", "read_edges"]


@dataclass(frozen=True, slots=True)
class EdgeRow:
    """An edge as the fleet view shows it (no device inventory: that is customer data)."""

    edge_id: str
    customer_id: str
    role: str | None
    online: bool | None
    last_seen: float
    backlog: int | None
    version: str | None
    events: int
    duplicates: int
    high_seq: int
    contiguous: int
    gaps: int  # open gap ranges
    missing: int  # seqs missing below high_seq
    overflow_dropped: int  # events the edge's outbox dropped (as it last reported)
    overflow_policy: str | None
    devices: int

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


async def read_edges(store: Store, *, customer_id: str | None = None) -> list[EdgeRow]:
    sql = """
        SELECT e.edge_id, c.customer_id, e.role, e.online, e.last_seen, e.backlog, e.version,
               e.status, e.inventory, COALESCE(p.events, 0), COALESCE(p.duplicates, 0), p.ranges
        FROM edges e JOIN customers c USING (customer_key)
        LEFT JOIN edge_progress p USING (edge_key)
    """
    args: tuple[Any, ...] = ()
    if customer_id is not None:
        sql += " WHERE c.customer_id = ?"
        args = (customer_id,)
    async with store.db.execute(sql + " ORDER BY c.customer_id, e.edge_id", args) as cur:
        rows = await cur.fetchall()
    out = []
    for (edge_id, cid, role, online, last_seen, backlog, version, status, inventory, events, dups,
         ranges_json) in rows:
        ranges = SeqRanges.from_json(ranges_json) if ranges_json else SeqRanges()
        gaps = ranges.gaps()
        status_doc = _json_or_empty(status)
        out.append(EdgeRow(
            edge_id=edge_id, customer_id=cid, role=role or status_doc.get("role"), online=None if online is None else bool(online),
            last_seen=float(last_seen), backlog=backlog, version=version, events=int(events),
            duplicates=int(dups), high_seq=ranges.high, contiguous=ranges.contiguous, gaps=len(gaps),
            missing=sum(b - a + 1 for a, b in gaps),
            overflow_dropped=int(status_doc.get("overflow_dropped") or 0),
            overflow_policy=status_doc.get("overflow_policy"),
            devices=len(_json_or_empty(inventory, default=[])),
        ))
    return out


async def dead_letters_since(store: Store, ts: float) -> int:
    """Dead letters stored at or after ``ts`` (scans from the newest id backwards)."""
    async with store.db.execute("SELECT COUNT(*) FROM dead_letters WHERE ts >= ?", (ts,)) as cur:
        row = await cur.fetchone()
    return int(row[0]) if row else 0


def _json_or_empty(text: str | None, *, default: Any = None) -> Any:
    if not text:
        return {} if default is None else default
    try:
        return json.loads(text)
    except ValueError:
        return {} if default is None else default
