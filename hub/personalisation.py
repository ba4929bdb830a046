"""Personal layers of the hub: one ``models.personalise.PersonalLayer`` per (customer, market).

``PersonalLayers`` caches layers in memory (bounded, least recently used dropped first) and
persists each one as JSON in ``personal_layers`` whenever it learns something, so a
restarted hub anticipates exactly as before. A stored layer made for another job catalogue
follows the job names (``PersonalLayer.from_dict(jobs=...)``); an unreadable one is logged
and replaced by a fresh layer rather than stopping anticipation.

``forget_customer`` deletes everything the anticipation tables hold about a customer
(they all carry ``customer_id``, so ``hub.rights`` erases them too).
"""

from __future__ import annotations

import json
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence

from models.personalise import PersonalLayer

from .store import Store

__all__ = ["ANTICIPATION_TABLES", "PersonalLayers", "forget_customer"]

log = logging.getLogger(__name__)

ANTICIPATION_TABLES = ("anticipations", "recognised_jobs", "sacrifice", "personal_layers", "declared_markets")


class PersonalLayers:
    """Load, cache and save the personal layers of (customer, market) pairs."""

    def __init__(
        self,
        store: Store,
        jobs: Sequence[str],
        *,
        strength: float = 1.0,
        max_cached: int = 10_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.jobs = tuple(jobs)
        self.strength = strength
        self._max = max(1, max_cached)
        self._clock = clock
        self._cache: OrderedDict[tuple[str, str], PersonalLayer] = OrderedDict()

    async def get(self, customer_id: str, market: str) -> PersonalLayer:
        """The layer of (customer, market): cached, else stored, else a fresh one."""
        key = (customer_id, market)
        layer = self._cache.get(key)
        if layer is not None:
            self._cache.move_to_end(key)
            return layer
        async with self.store.db.execute(
            "SELECT state FROM personal_layers WHERE customer_id = ? AND market = ?", key
        ) as cur:
            row = await cur.fetchone()
        layer = None
        if row is not None:
            try:
                layer = PersonalLayer.from_dict(json.loads(row[0]), jobs=self.jobs)
            except (ValueError, KeyError, TypeError) as exc:
                log.warning("personal layer of %s in %s is unreadable (%s); starting afresh", customer_id, market, exc)
        if layer is None:
            layer = PersonalLayer(self.jobs, strength=self.strength)
        self._cache[key] = layer
        while len(self._cache) > self._max:
            self._cache.popitem(last=False)
        return layer

    async def save(self, customer_id: str, market: str, layer: PersonalLayer) -> None:
        state = json.dumps(layer.to_dict(), separators=(",", ":"))
        async with self.store.transaction() as db:
            await db.execute(
                "INSERT OR REPLACE INTO personal_layers (customer_id, market, state, updated) VALUES (?,?,?,?)",
                (customer_id, market, state, self._clock()),
            )

    def forget(self, customer_id: str) -> None:
        """Drop the customer's cached layers (after an erasure)."""
        for key in [k for k in self._cache if k[0] == customer_id]:
            del self._cache[key]


async def forget_customer(store: Store, customer_id: str) -> dict[str, int]:
    """Delete the customer's rows from every anticipation table; rows deleted per table."""
    out: dict[str, int] = {}
    async with store.transaction() as db:
        for table in ANTICIPATION_TABLES:
            cur = await db.execute(f"DELETE FROM {table} WHERE customer_id = ?", (customer_id,))  # noqa: S608 - fixed names
            out[table] = cur.rowcount
    return out
