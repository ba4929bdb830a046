"""Per-customer reads for the operator API (every caller audits first; see ``hub.http.audit``).

Anticipations and sacrifice are the anticipation service's data, read through its query
functions (``hub.anticipation.anticipations_for`` / ``sacrifice_series``) via
``CustomerQueries``; a hub built without that module answers with empty lists, so the API
and dashboard work on any hub. Tests inject their own ``CustomerQueries``.

Shapes the dashboard reads: an anticipation is ``devices.wire.Anticipation`` as JSON
(``id``, ``market``, ``ts``, ``model``, ``jobs`` of ``job``/``probability``/``expected_in_s``/
``because``); a sacrifice row has ``ts``, ``market`` and ``sacrifice`` (0..1). Rows may be
pydantic models, dataclasses, named tuples or dicts.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ..store import Store

__all__ = [
    "CustomerQueries", "anticipations", "customer_exists", "default_queries", "events", "privacy_policy", "sacrifice",
]


async def customer_exists(store: Store, customer_id: str) -> bool:
    async with store.db.execute("SELECT 1 FROM customers WHERE customer_id = ?", (customer_id,)) as cur:
        return await cur.fetchone() is not None


async def events(store: Store, customer_id: str, *, since: float | None, limit: int) -> list[dict[str, Any]]:
    frame = await store.events_for(customer_id, since=since, limit=limit)
    return [
        {"ts": ts, "edge_id": edge, "seq": seq, "device": device, "capability": cap, "value": value, "room": room}
        for ts, edge, seq, device, cap, value, room in frame.rows()
    ]


def privacy_policy(snapshot: dict[str, Any]) -> list[dict[str, Any]]:
    """Per device of every edge: its room, capabilities and privacy (as the edge's inventory says).

    A capability the inventory does not name is ``share`` (the edge's default policy).
    """
    out = []
    for edge in snapshot.get("edges", []):
        for dev in edge.get("devices", []):
            privacy = dev.get("privacy", {})
            out.append({
                "edge_id": edge["edge_id"], "device": dev.get("device"), "room": dev.get("room"),
                "adapter": dev.get("adapter"),
                "capabilities": {c: privacy.get(c, privacy.get("*", "share")) for c in dev.get("capabilities", [])},
                "privacy": privacy,
            })
    return out


@dataclass(frozen=True, slots=True)
class CustomerQueries:
    anticipations: Callable[[Store, str, int], Awaitable[Sequence[Any]]]
    sacrifice: Callable[[Store, str], Awaitable[Sequence[Any]]]


async def _nothing(*args: Any) -> list[Any]:
    return []


def default_queries() -> CustomerQueries:
    """The anticipation service's queries, or empty ones when the hub has no such module."""
    try:
        module = importlib.import_module("hub.anticipation")
    except ModuleNotFoundError as exc:
        if exc.name != "hub.anticipation":
            raise
        return CustomerQueries(_nothing, _nothing)

    async def recent(store: Store, customer_id: str, limit: int) -> Sequence[Any]:
        rows: Sequence[Any] = await module.anticipations_for(store, customer_id, limit=limit)
        return rows

    return CustomerQueries(recent, module.sacrifice_series)


async def anticipations(queries: CustomerQueries, store: Store, customer_id: str, *, limit: int) -> list[dict[str, Any]]:
    return [_plain(r) for r in await queries.anticipations(store, customer_id, limit)]


async def sacrifice(queries: CustomerQueries, store: Store, customer_id: str) -> list[dict[str, Any]]:
    return [_plain(r) for r in await queries.sacrifice(store, customer_id)]


def _plain(row: Any) -> Any:
    """Rows as JSON-able data, whatever shape the anticipation store hands back."""
    if hasattr(row, "model_dump"):
        return row.model_dump(mode="json")
    if hasattr(row, "_asdict"):
        return {k: _plain(v) for k, v in row._asdict().items()}
    if hasattr(row, "__dataclass_fields__"):
        return {k: _plain(getattr(row, k)) for k in row.__dataclass_fields__}
    if isinstance(row, dict):
        return {str(k): _plain(v) for k, v in row.items()}
    if isinstance(row, (list, tuple)):
        return [_plain(v) for v in row]
    if isinstance(row, float) and not math.isfinite(row):
        return None
    return row
