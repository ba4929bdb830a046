"""``tail``: what the hub stores as it happens, read by polling its database.

``genius hub tail`` uses this. Polling the store (not subscribing to the hub broker) is the
deliberate choice: it shows what the hub has actually *committed* (not what edges merely
sent: a batch that is dead-lettered shows as a dead letter, a duplicate not at all), it needs
no broker credentials, and it works beside a running hub thanks to WAL.

Each poll reads, per edge whose progress changed, the events above the highest seq already
shown (so a resend that fills an old gap is not shown again), the dead letters with a newer
id, and the rows of an ``anticipations`` table (when the anticipation service has one) with
a newer rowid. Items start from the moment ``tail`` starts.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from ..store import Store, decode_value

__all__ = ["tail"]

_EVENTS = """
    SELECT ev.ts, c.customer_id, e.edge_id, ev.seq, d.name, cap.name, ev.value, r.name
    FROM events ev JOIN edges e ON e.edge_key = ev.edge_key
    JOIN customers c ON c.customer_key = e.customer_key
    JOIN devices d ON d.device_key = ev.device_key
    JOIN capabilities cap ON cap.capability = ev.capability
    LEFT JOIN rooms r ON r.room_key = ev.room_key
    WHERE ev.edge_key = ? AND ev.seq > ? ORDER BY ev.seq LIMIT ?
"""


async def tail(
    db: Path | str, *, poll_s: float = 0.5, max_per_edge: int = 1_000, from_start: bool = False
) -> AsyncIterator[dict[str, Any]]:
    """Yield ``{"kind": "ingest"|"dead_letter"|"anticipation", …}`` documents until cancelled."""
    async with Store(db, readonly=True) as store:
        conn = store.db
        shown: dict[int, int] = {}
        if not from_start:
            async with conn.execute("SELECT edge_key, high_seq FROM edge_progress") as cur:
                shown = {k: int(h) for k, h in await cur.fetchall()}
        last_dead = 0 if from_start else await _scalar(store, "SELECT COALESCE(MAX(id), 0) FROM dead_letters")
        has_anticipations = await _scalar(
            store, "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'anticipations'"
        ) > 0
        last_ant = 0
        if has_anticipations and not from_start:
            last_ant = await _scalar(store, "SELECT COALESCE(MAX(rowid), 0) FROM anticipations")
        while True:
            async with conn.execute("SELECT edge_key, high_seq FROM edge_progress") as cur:
                progress = await cur.fetchall()
            for edge_key, high in progress:
                if high <= shown.get(edge_key, 0):
                    continue
                async with conn.execute(_EVENTS, (edge_key, shown.get(edge_key, 0), max_per_edge)) as cur:
                    rows = list(await cur.fetchall())
                for ts, cid, eid, seq, device, cap, value, room in rows:
                    yield {"kind": "ingest", "ts": ts, "customer_id": cid, "edge_id": eid, "seq": seq,
                           "device": device, "capability": cap, "value": decode_value(cap, value), "room": room}
                if rows:
                    shown[edge_key] = int(rows[-1][3])
            async with conn.execute(
                "SELECT id, ts, topic, customer_id, edge_id, reason, detail FROM dead_letters WHERE id > ? ORDER BY id",
                (last_dead,),
            ) as cur:
                for id_, ts, topic, cid, eid, reason, detail in await cur.fetchall():
                    last_dead = id_
                    yield {"kind": "dead_letter", "ts": ts, "topic": topic, "customer_id": cid, "edge_id": eid,
                           "reason": reason, "detail": detail[:200]}
            if has_anticipations:
                async with conn.execute("SELECT rowid, * FROM anticipations WHERE rowid > ? ORDER BY rowid",
                                        (last_ant,)) as cur:
                    names = [d[0] for d in cur.description]
                    for row in await cur.fetchall():
                        last_ant = row[0]
                        doc = {k: _maybe_json(v) for k, v in zip(names[1:], row[1:])}
                        yield {"kind": "anticipation", **doc}
            await asyncio.sleep(poll_s)


async def _scalar(store: Store, sql: str) -> int:
    async with store.db.execute(sql) as cur:
        row = await cur.fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def _maybe_json(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in ("[", "{"):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value
