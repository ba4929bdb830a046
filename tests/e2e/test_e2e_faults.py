"""Faults between real edges and a real hub: a hub broker outage, ``kill -9`` of either process.

The contract (DESIGN.md "Delivery"): every event an edge has committed reaches the hub's
store exactly once, whatever dies in between; the hub's ack is what empties the outbox.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import pytest

from e2e_kit import (  # noqa: F401 (fixture)
    E2E,
    EdgeRig,
    Feed,
    assert_feed_stored,
    device_client,
    e2e,
    home_feed,
    publish,
)


async def _hub_events(e2e: E2E, edge: EdgeRig) -> int:
    assert e2e.hub is not None
    record = (await e2e.hub.edges()).get(edge.edge_id)
    return 0 if record is None else record.events


async def _has_events(e2e: E2E, edge: EdgeRig) -> bool:
    return await _hub_events(e2e, edge) > 0


async def _at_least(e2e: E2E, edge: EdgeRig, n: int) -> bool:
    return await _hub_events(e2e, edge) >= n


async def _unacked(edge: EdgeRig) -> bool:
    report = edge.report()
    return report is not None and report["events"] > 0


async def _paced(edge: EdgeRig, feed: Feed, *, parts: int, pause_s: float) -> None:
    """Publish the feed's stream in ``parts`` bursts ``pause_s`` apart (devices keep talking)."""
    async with device_client(edge.local) as dev:
        for part in feed.slices(parts):
            await publish(dev, part)
            await asyncio.sleep(pause_s)


async def _discovered(e2e: E2E, edge: EdgeRig, feed: Feed) -> None:
    async with device_client(edge.local) as dev:
        await publish(dev, feed.discovery, retain=True)
    await e2e.devices_known(edge, feed.discovered)


async def test_hub_broker_down_for_ten_seconds_while_devices_publish_loses_nothing_and_doubles_nothing(
    e2e: E2E,
) -> None:
    feed = home_feed(2)  # about 2,600 messages, 3,300 events
    e2e.start_hub()
    edge = e2e.start_feed_edge(feed)
    await _discovered(e2e, edge, feed)
    hub_broker = e2e.hub_broker
    assert hub_broker is not None
    first, *during, last = feed.slices(13)
    async with device_client(edge.local) as dev:
        await publish(dev, first)
        await e2e.eventually(lambda: _has_events(e2e, edge), timeout=20, what="the first events at the hub")
        hub_broker.stop()  # graceful: Mosquitto keeps the hub's persistent session on disk
        down_at = time.monotonic()
        backlog = []
        for part in during:  # eleven bursts a second apart: the devices do not know
            await publish(dev, part)
            await asyncio.sleep(1.0)
            report = edge.report()
            backlog.append(0 if report is None else report["events"])
        assert time.monotonic() - down_at >= 10.0
        hub_broker.start()
        await publish(dev, last)
    # While the broker was away the outbox kept what the edge committed, and it grew.
    assert backlog[-1] > backlog[0] > 0, backlog
    await e2e.all_delivered(timeout=60, events={feed.edge_id: feed.events})
    await assert_feed_stored(e2e, feed, edge)
    assert await e2e.stop_all() == {edge.process.name: 0, "hub": 0}


async def test_kill_9_of_the_edge_mid_stream_then_restart_delivers_every_committed_event_once(e2e: E2E) -> None:
    feed = home_feed(3, days=2)  # about 4,000 messages
    e2e.start_hub()
    # The real command line (`genius --strict edge run`): readings carry their arrival time. The
    # home broker queues without limit for the edge while it is down (Mosquitto's default of
    # 1,000 would drop the rest, which no edge could ever see).
    local = e2e.broker(max_queued_messages=0)
    edge = e2e.start_edge(feed.customer_id, feed.edge_id, local=local)
    await _discovered(e2e, edge, feed)
    async with asyncio.TaskGroup() as tg:
        tg.create_task(_paced(edge, feed, parts=20, pause_s=0.1))
        await e2e.eventually(
            lambda: _at_least(e2e, edge, feed.events // 4), timeout=30, what="a quarter of the events at the hub"
        )
        # Kill it while it holds committed events the hub has not acknowledged (an edge that
        # keeps up acks within milliseconds, so look closely).
        await e2e.eventually(lambda: _unacked(edge), timeout=20, every=0.002, what="an unacknowledged commit")
        edge.process.kill9()
        at_kill = edge.report()
        assert at_kill is not None
        await asyncio.sleep(1.0)  # devices go on publishing; the local broker keeps QoS 1 for the edge
        edge.process.start()
    await e2e.all_delivered(timeout=60)

    # Usually it died holding committed events the hub had not acknowledged yet (``_unacked``
    # above); the hub's ack can still win that race by microseconds, which is no failure of
    # the edge, so it is not asserted. Either way every seq the outbox ever handed out is stored once, the restart continuing the count.
    committed = edge.committed()
    assert committed > at_kill["next_seq"] - 1
    assert e2e.hub is not None
    assert await e2e.hub.stored_rows(feed.edge_id) == (committed, committed)
    status = await e2e.hub.status_json()
    [entry] = status["edges"]
    assert (entry["events"], entry["high_seq"], entry["contiguous"], entry["gaps"]) == (committed, committed,
                                                                                      committed, [])
    # Every stored event is one the simulated devices meant (timestamps are arrival times here).
    meant = Counter((d, c, v) for d, c, _, v in feed.expected.elements())
    stored = Counter((d, c, v) for d, c, _, v in (await e2e.hub.events(feed.customer_id)).elements())
    assert not stored - meant, list((stored - meant).items())[:5]
    # Everything published while it was down was kept for its persistent session and read on
    # restart, Home Assistant states too (their discovery comes back after them): no dead letter.
    report = edge.report()
    assert report is not None and report["dead_letters"] == 0, report
    # What it had received but not committed when it died is lost (aiomqtt acknowledges QoS 1
    # on arrival; the contract covers committed events): at most about a commit interval's worth.
    lost = feed.events - committed
    assert 0 <= lost < 0.02 * feed.events, lost
    assert await e2e.stop_all() == {edge.process.name: 0, "hub": 0}


@pytest.mark.parametrize("kills", [1, pytest.param(3, marks=pytest.mark.slow)])
async def test_kill_9_of_the_hub_mid_ingest_then_restart_stores_every_committed_event_once(
    e2e: E2E, kills: int
) -> None:
    feed = home_feed(4, days=2)
    hub = e2e.start_hub()
    edge = e2e.start_feed_edge(feed)
    await _discovered(e2e, edge, feed)
    stored_at_kill = []
    assert hub.process is not None
    async with asyncio.TaskGroup() as tg:
        tg.create_task(_paced(edge, feed, parts=40, pause_s=0.1))
        for k in range(kills):
            await e2e.eventually(
                lambda k=k: _at_least(e2e, edge, feed.events * (k + 1) // (kills + 2)), timeout=30,
                what="events at the hub before the kill",
            )
            hub.process.kill9()
            stored_at_kill.append(await _hub_events(e2e, edge))
            await asyncio.sleep(1.0)  # the edge goes on committing and sending; the broker keeps them
            hub.process.start()
    await e2e.all_delivered(timeout=60, events={feed.edge_id: feed.events})

    assert 0 < stored_at_kill[0] < feed.events, stored_at_kill  # it died mid-ingest
    # Readings keep their simulated time here, so the hub's events must be the simulator's, exactly.
    await assert_feed_stored(e2e, feed, edge)
    assert hub.process.starts == kills + 1
    assert await e2e.stop_all() == {edge.process.name: 0, "hub": 0}
