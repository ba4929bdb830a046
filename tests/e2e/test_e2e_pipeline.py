"""Simulated smart homes → real edges → real hub: every event stored once, with its canonical value."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack

from e2e_kit import E2E, assert_feed_stored, device_client, e2e, home_feed, publish  # noqa: F401 (fixture)


async def test_simulated_homes_reach_the_hub_once_each_with_the_simulators_canonical_values(e2e: E2E) -> None:
    feeds = [home_feed(0), home_feed(1)]  # one simulated day of two customers' homes
    assert set.union(*(f.protocols for f in feeds)) == {"zigbee2mqtt", "tasmota", "shelly", "homeassistant"}
    e2e.start_hub()
    edges = [e2e.start_feed_edge(f) for f in feeds]
    async with AsyncExitStack() as stack:
        clients = [await stack.enter_async_context(device_client(edge.local)) for edge in edges]
        # Retained discovery first, as devices announce themselves when they start.
        for client, feed in zip(clients, feeds):
            await publish(client, feed.discovery, retain=True)
        for edge, feed in zip(edges, feeds):
            await e2e.devices_known(edge, feed.discovered)
        # Then both homes' whole day, as fast as the local brokers take it.
        async with asyncio.TaskGroup() as tg:
            for client, feed in zip(clients, feeds):
                tg.create_task(publish(client, feed.stream))
    await e2e.all_delivered(timeout=60, events={f.edge_id: f.events for f in feeds})

    for edge, feed in zip(edges, feeds):
        entry = await assert_feed_stored(e2e, feed, edge)
        assert entry["customer_id"] == feed.customer_id and entry["online"] is True
        report = edge.report()
        assert report is not None and report["dead_letters"] == 0, report
    assert e2e.hub is not None and (await e2e.hub.status_json())["dead_letters"] == {}
    assert await e2e.stop_all() == {"edge-c0000-home": 0, "edge-c0001-home": 0, "hub": 0}
