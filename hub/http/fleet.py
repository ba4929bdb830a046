"""Fleet-level reads from the hub database: one row per edge, dead letters in a window.

These run on the API's own read-only connection (WAL lets it read while ingest writes), so
a dashboard never queues behind a commit.
"""

from __future__ import annotations

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
    """Every edge (or one customer's), ordered by customer and edge id.

    SQLite's JSON functions pick the few status/inventory fields and range counts, and only
    an edge whose stored seqs are not one run from 1 has its ranges parsed here, so the
    fleet view of 10,000 edges stays cheap.
    """
    sql = """
        SELECT e.edge_id, c.customer_id, COALESCE(e.role, json_extract(e.status, '$.role')), e.online,
               e.last_seen, e.backlog, e.version,
               COALESCE(json_extract(e.status, '$.overflow_dropped'), 0), json_extract(e.status, '$.overflow_policy'),
               COALESCE(json_array_length(e.inventory), 0),
               COALESCE(p.events, 0), COALESCE(p.duplicates, 0), COALESCE(p.high_seq, 0), COALESCE(p.contiguous, 0),
               CASE WHEN p.high_seq IS NULL OR p.contiguous = p.high_seq THEN NULL ELSE p.ranges END
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
    for (edge_id, cid, role, online, last_seen, backlog, version, dropped, policy, devices, events, dups, high,
         contiguous, ranges_json) in rows:
        gaps = SeqRanges.from_json(ranges_json).gaps() if ranges_json else []
        out.append(EdgeRow(
            edge_id=edge_id, customer_id=cid, role=role, online=None if online is None else bool(online),
            last_seen=float(last_seen), backlog=backlog, version=version, events=int(events), duplicates=int(dups),
            high_seq=int(high), contiguous=int(contiguous), gaps=len(gaps), missing=sum(b - a + 1 for a, b in gaps),
            overflow_dropped=int(dropped or 0), overflow_policy=policy, devices=int(devices),
        ))
    return out


async def dead_letters_since(store: Store, ts: float) -> int:
    """Dead letters stored at or after ``ts`` (scans from the newest id backwards)."""
    async with store.db.execute("SELECT COUNT(*) FROM dead_letters WHERE ts >= ?", (ts,)) as cur:
        row = await cur.fetchone()
    return int(row[0]) if row else 0
