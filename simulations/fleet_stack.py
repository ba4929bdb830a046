"""``SimStack``: a real hub and a real edge agent per place of some simulated customers.

One process, one event loop: the ``Hub`` (SQLite store, MQTT ingest, context) and one
``EdgeRunner`` per edge (home, hotel room, holiday home, gym of every customer), all on
one ``SimClock``. Edges read their devices from one shared local broker, each under its
``EdgeNamespace`` root, and reach the hub broker directly or through a ``LinkProxy`` URL
(``links``) that a fault can cut. The fleet run and ``genius demo`` both build on this.

Timers are tuned for short runs (reconnect backoff capped at 2 s, resend after 2 s without
an ack, at most 8 s) so a run recovers from its faults within seconds; the delivery
contract is unchanged.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from edge import EdgeSettings
from edge.settings import BrokerSettings
from hub.service import Hub
from hub.settings import HubSettings

from .fleet_clock import SimClock
from .fleet_edges import EdgeRunner
from .fleet_topics import EdgeNamespace
from .population import CustomerSpec

__all__ = ["SimStack"]

log = logging.getLogger(__name__)

_UPLINK = {"resend_after_s": 2.0, "resend_max_s": 8.0, "backoff_max_s": 2.0, "status_interval_s": 5.0}


class SimStack:
    """The hub and every edge of ``specs``; ``run`` until ``stop`` (edges first, then the hub).

    ``hub_settings`` adds sections to the hub's settings (e.g. ``{"http": {"listen": …}}``);
    ``stagger_s`` spaces the edges' starts (a broker that copes badly with many clients
    connecting at once, like the embedded one, gets them one by one).
    """

    def __init__(
        self,
        specs: Sequence[CustomerSpec],
        *,
        clock: SimClock,
        local_broker: str,
        hub_broker: str,
        workdir: Path,
        db: Path,
        links: Mapping[str, str] | None = None,
        skews: Mapping[str, float] | None = None,
        hub_client_id: str = "genius-sim-hub",
        hub_settings: Mapping[str, Any] | None = None,
        stagger_s: float = 0.0,
    ) -> None:
        self.specs = list(specs)
        self.clock = clock
        self.db = db
        links = links or {}
        skews = skews or {}
        self.spaces: dict[str, EdgeNamespace] = {}
        self.runners: dict[str, EdgeRunner] = {}
        for spec in self.specs:
            for place in spec.places:
                edge = place.edge_id
                space = self.spaces[edge] = EdgeNamespace(edge)
                settings = EdgeSettings(  # type: ignore[call-arg]
                    customer=spec.customer_id,
                    edge=edge,
                    role=place.edge_role,  # type: ignore[arg-type]
                    local_broker=local_broker,  # type: ignore[arg-type]
                    hub_broker=links.get(edge, hub_broker),  # type: ignore[arg-type]
                    outbox={"path": workdir / "edges" / f"{edge}.db"},  # type: ignore[arg-type]
                    uplink=_UPLINK,  # type: ignore[arg-type]
                    local={"backoff_max_s": 2.0},  # type: ignore[arg-type]
                )
                skew = float(skews.get(edge, 0.0))
                self.runners[edge] = EdgeRunner(settings, space, clock=clock.skewed(skew), skew_s=skew)
        hub_link = BrokerSettings.model_validate(hub_broker)  # credentials in the URL go to their fields
        password = hub_link.password.get_secret_value() if hub_link.password is not None else None
        sections: dict[str, Any] = {
            "broker": {"url": hub_link.url, "client_id": hub_client_id, "reconnect_max_s": 2.0,
                       "username": hub_link.username, "password": password},
            "store": {"path": db},
            # In simulated seconds: persist the context about every 5 wall seconds.
            "ingest": {"context_persist_s": 5.0 * clock.speed},
        }
        if "anticipation" in HubSettings.model_fields:
            # The hub anticipates on its (simulated) clock: past 120x, stretch its cadence so
            # each customer is anticipated at most about twice a wall second.
            stretch = max(1.0, clock.speed / 120.0)
            sections["anticipation"] = {"interval_s": 60.0 * stretch, "debounce_s": 2.0 * stretch}
        for name, values in (hub_settings or {}).items():
            sections[name] = {**sections.get(name, {}), **values}
        self.hub = Hub(HubSettings(**sections), clock=clock)
        self.stagger_s = stagger_s
        self._stopping = asyncio.Event()

    @property
    def customer_ids(self) -> list[str]:
        return [s.customer_id for s in self.specs]

    async def run(self) -> None:
        """Hub and edges until ``stop()`` (or cancellation); edges stop before the hub."""
        async with self.hub:
            async with asyncio.TaskGroup() as tg:
                hub_task = tg.create_task(self.hub.run(), name="hub")
                async with asyncio.TaskGroup() as edges:
                    tasks = []
                    for edge, runner in self.runners.items():
                        tasks.append(edges.create_task(runner.run(), name=f"runner-{edge}"))
                        if self.stagger_s:
                            await asyncio.sleep(self.stagger_s)
                    await self._stopping.wait()
                    for task in tasks:
                        task.cancel()
                hub_task.cancel()

    def stop(self) -> None:
        self._stopping.set()

    async def wait_ready(self, *, timeout: float = 30.0) -> None:
        """Until the hub is subscribed and every edge is connected on both sides."""
        try:
            async with asyncio.timeout(timeout):
                while not (self.hub.ready.is_set() and all(r.ready() for r in self.runners.values())):
                    await asyncio.sleep(0.05)
        except TimeoutError:
            late = [e for e, r in self.runners.items() if not r.ready()]
            raise TimeoutError(f"not ready after {timeout}s: hub {'ok' if self.hub.ready.is_set() else 'not subscribed'}, "
                               f"edges not connected: {late[:10]}") from None

    async def wait_discovered(self, retained: Mapping[str, int], *, timeout: float = 30.0, settle_s: float = 0.3) -> None:
        """Until each edge has read its ``retained`` discovery messages and subscribed to what they name.

        Devices of a real home were announced long before they report; without this, a state
        message published right after its discovery document could beat the edge's new
        subscription to the broker and never be delivered.
        """
        def read(edge: str) -> int:
            agent = self.runners[edge].agent
            return agent.pipeline.counters.messages if agent is not None and agent.pipeline is not None else 0

        async with asyncio.timeout(timeout):
            while any(read(edge) < n for edge, n in retained.items() if edge in self.runners):
                await asyncio.sleep(0.02)
        await asyncio.sleep(settle_s)  # the subscriptions discovery asked for are made right after

    async def wait_settled(self, *, timeout: float, quiet_s: float = 1.5) -> bool:
        """Until every edge runs with nothing unacknowledged and no reading came in for ``quiet_s``.

        False if that did not happen within ``timeout`` wall seconds.
        """
        deadline = time.monotonic() + timeout
        last = -1
        quiet_since = time.monotonic()
        while time.monotonic() < deadline:
            readings = sum(r.readings() for r in self.runners.values())
            now = time.monotonic()
            if readings != last:
                last, quiet_since = readings, now
            if now - quiet_since >= quiet_s and all(r.settled() for r in self.runners.values()):
                return True
            await asyncio.sleep(0.1)
        unsettled = [e for e, r in self.runners.items() if not r.settled()]
        log.warning("not settled after %.0fs: %d edges still hold unacknowledged events: %s",
                    timeout, len(unsettled), unsettled[:10])
        return False
