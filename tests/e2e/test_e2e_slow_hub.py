"""A hub slower than its edges, behind Mosquitto's default limits, loses nothing.

Mosquitto (``max_queued_messages 1000``) drops QoS 1 messages queued past its limit for a
slow subscriber: here the hub, which acknowledges deliveries only after its commit. The
edges' end-to-end acks make it whole: what the broker dropped the hub never acknowledges, so
the edges send it again, and each event is stored once.

The hub runs in the test's event loop (the real ``Hub`` service and store) so that one of its
``on_committed`` hooks can slow it: it holds the first commit until the edges have committed
everything and had two seconds to send it (the broker has then dropped), then sleeps after
every commit.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import aiomqtt
import pytest

from devices.topics import PREFIX
from e2e_kit import E2E, Feed, assert_feed_stored, device_client, e2e, home_feed, publish  # noqa: F401 (fixture)
from hub.pipeline import CommitSummary
from hub.service import Hub
from hub.settings import HubSettings
from simulations.brokers import Mosquitto


class Tap:
    """Counts the event batches on the hub broker (QoS 0, so it never holds the broker back)."""

    def __init__(self) -> None:
        self.batches = 0

    async def run(self, broker: Mosquitto, ready: asyncio.Event) -> None:
        async with aiomqtt.Client(broker.host, broker.port, max_queued_incoming_messages=0) as client:
            await client.subscribe(f"{PREFIX}/+/+/events", qos=0)
            ready.set()
            async for _ in client.messages:
                self.batches += 1


@contextlib.asynccontextmanager
async def slow_hub(broker: Mosquitto, db: Path, *, delay_s: float) -> AsyncIterator[tuple[Hub, asyncio.Event]]:
    """A running hub whose commits wait for ``release``, then take ``delay_s`` more each."""
    settings = HubSettings.load(broker={"url": broker.url, "client_id": "genius-hub-slow", "reconnect_max_s": 1.0},
                                store={"path": db})
    release = asyncio.Event()

    async def slow(_: CommitSummary) -> None:
        await release.wait()
        await asyncio.sleep(delay_s)

    async with Hub(settings) as hub, asyncio.TaskGroup() as tg:
        hub.on_committed.append(slow)
        task = tg.create_task(hub.run())
        try:
            async with asyncio.timeout(10):
                await hub.ready.wait()
            yield hub, release
        finally:
            task.cancel()


async def _slow_hub_loses_nothing(e2e: E2E, feeds: list[Feed], *, batch: int, delay_s: float, timeout: float) -> None:
    broker = e2e.broker(extra="log_type notice\n")  # Mosquitto's defaults; notices say when it drops
    rig = e2e.adopt_hub(broker, e2e.tmp / "hub.db")
    tap, tapping = Tap(), asyncio.Event()
    async with slow_hub(broker, rig.db, delay_s=delay_s) as (hub, release), asyncio.TaskGroup() as tg:
        tap_task = tg.create_task(tap.run(broker, tapping))
        await tapping.wait()
        # Small batches: many messages per event, the broker's queue limit is in messages.
        edges = [e2e.start_feed_edge(f, uplink={"batch_max_events": batch}) for f in feeds]
        async with contextlib.AsyncExitStack() as stack:
            clients = [await stack.enter_async_context(device_client(edge.local)) for edge in edges]
            for client, feed in zip(clients, feeds):
                await publish(client, feed.discovery, retain=True)
            for edge, feed in zip(edges, feeds):
                await e2e.devices_known(edge, feed.discovered, timeout=60)
            async with asyncio.TaskGroup() as publishing:
                for client, feed in zip(clients, feeds):
                    publishing.create_task(publish(client, feed.stream))

        async def all_committed() -> bool:
            return all(edge.committed() >= feed.events for edge, feed in zip(edges, feeds))

        await e2e.eventually(all_committed, timeout=120, what="every event committed by its edge")
        # The edges send all of it (their windows hold it) while the hub takes nothing, so the
        # broker keeps 1,000 messages for the hub and drops the rest.
        await asyncio.sleep(2.0)
        release.set()
        await e2e.all_delivered(timeout=timeout, events={f.edge_id: f.events for f in feeds})
        tap_task.cancel()
        assert hub.stats.events_stored == sum(f.events for f in feeds)
        connections = hub.stats.connections

    dropped = (broker.workdir / "mosquitto.log").read_text()
    assert "Outgoing messages are being dropped for client genius-hub-slow" in dropped  # it did drop
    assert tap.batches > sum(-(-f.events // batch) for f in feeds)  # so some batches went twice
    for edge, feed in zip(e2e.edges, feeds):
        await assert_feed_stored(e2e, feed, edge)
    assert connections >= 1
    assert await e2e.stop_all() == {edge.process.name: 0 for edge in e2e.edges}


async def test_slow_hub_behind_default_mosquitto_loses_nothing_and_stores_each_event_once(e2e: E2E) -> None:
    await _slow_hub_loses_nothing(e2e, [home_feed(6), home_feed(7)], batch=2, delay_s=0.05, timeout=50)


@pytest.mark.slow
async def test_slow_hub_behind_default_mosquitto_loses_nothing_at_scale(e2e: E2E) -> None:
    feeds = [home_feed(i, days=3) for i in range(8, 12)]
    await _slow_hub_loses_nothing(e2e, feeds, batch=5, delay_s=0.1, timeout=400)
