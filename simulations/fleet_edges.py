"""``EdgeRunner``: one simulated edge's real ``EdgeAgent``, which a fault can crash and restart.

Many runners share one process and event loop. ``crash(down_s)`` cancels the agent's task
mid-stream (what SIGTERM does to ``genius edge run``: its outbox commits what it holds and
the hub link says offline), keeps it down for ``down_s`` wall seconds while the devices go
on publishing to the local broker (which keeps them: the agent's session is persistent),
then starts a new ``EdgeAgent`` on the same outbox file: seqs continue from the outbox and
everything the hub has not acknowledged is sent again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from edge import EdgeAgent, EdgeSettings

from .fleet_topics import EdgeNamespace

__all__ = ["EdgeRunner"]

log = logging.getLogger(__name__)


class EdgeRunner:
    """Runs ``EdgeAgent``s for one edge, one at a time, until cancelled."""

    def __init__(
        self,
        settings: EdgeSettings,
        namespace: EdgeNamespace,
        *,
        clock: Callable[[], float],
        skew_s: float = 0.0,
    ) -> None:
        self.settings = settings
        self.namespace = namespace
        self.clock = clock
        self.skew_s = skew_s
        self.agent: EdgeAgent | None = None
        self.incarnations = 0
        self.crashes = 0
        self.up = asyncio.Event()  # set while an agent runs
        self._crash = asyncio.Event()
        self._down_s = 0.0

    @property
    def edge_id(self) -> str:
        return self.settings.edge

    @property
    def customer_id(self) -> str:
        return self.settings.customer

    async def run(self) -> None:
        while True:
            agent = self.agent = EdgeAgent(self.settings, sessions=self.namespace.sessions(), clock=self.clock)
            self.incarnations += 1
            self.up.set()
            try:
                async with asyncio.TaskGroup() as tg:
                    task = tg.create_task(agent.run(), name=f"edge-{self.edge_id}")
                    await self._crash.wait()
                    self._crash.clear()
                    task.cancel()
            finally:
                self.up.clear()
            log.info("edge %s crashed (incarnation %d); down for %.1fs", self.edge_id, self.incarnations, self._down_s)
            await asyncio.sleep(self._down_s)

    def crash(self, *, down_s: float) -> None:
        """Cancel the running agent now and start a new one ``down_s`` wall seconds later."""
        self._down_s = down_s
        self.crashes += 1
        self._crash.set()

    def ready(self) -> bool:
        """Subscribed to the local broker and connected to the hub broker."""
        agent = self.agent
        return (
            self.up.is_set() and agent is not None and agent.ready.is_set()
            and agent.uplink is not None and agent.uplink.connected.is_set()
        )

    def settled(self) -> bool:
        """Running, with nothing pending or unacknowledged: the hub holds every event committed so far."""
        agent = self.agent
        if not self.ready() or agent is None or agent.outbox is None or agent.uplink is None:
            return False
        outbox = agent.outbox
        return outbox.pending == 0 and outbox.count == 0 and agent.uplink.acked >= outbox.last_seq

    def readings(self) -> int:
        """Readings the running agent has normalised (a progress signal; resets on restart)."""
        agent = self.agent
        return agent.pipeline.counters.readings if agent is not None and agent.pipeline is not None else 0
