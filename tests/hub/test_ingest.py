"""The hub over a real Mosquitto: ingest, acks, dead letters, context, persistent session, backpressure."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from devices.topics import ack_topic, events_topic, feedback_topic, status_topic
from hub.pipeline import CommitSummary
from simulations.brokers import Mosquitto

from . import fake_edge as fe
from .helpers import forget_session, running_hub, settings_for


def _count(db: Path, sql: str = "SELECT COUNT(*) FROM events") -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute(sql).fetchone()[0])


async def test_batches_are_stored_once_when_published_twice_and_replayed(
    mosquitto: Mosquitto, tmp_path: Path, prefix: str
) -> None:
    c, e = f"{prefix}-c", f"{prefix}-e"
    db = tmp_path / "hub.db"
    async with running_hub(settings_for(mosquitto.url, db, f"hub-{prefix}")) as hub:
        async with fe.client(mosquitto.host, mosquitto.port) as pub:
            payloads = list(fe.batches(c, e, 1000, 100).values())
            await fe.publish(pub, c, e, payloads + payloads)  # everything twice
            await fe.publish(pub, c, e, [fe.seq_batch(c, e, 950, 100)])  # a replay reaching past the end
            ack = await fe.wait_ack(pub, c, e, through=1049)
        assert ack["stored_through"] == 1049 and ack["gaps"] == []
        assert _count(db) == 1049
        [edge] = await hub.store.edges(customer_id=c)
        assert (edge.events, edge.duplicates) == (1049, 1000 + 51)
    await forget_session(mosquitto.host, mosquitto.port, f"hub-{prefix}")


async def test_out_of_order_batches_ack_with_gaps_then_close_them(
    mosquitto: Mosquitto, tmp_path: Path, prefix: str
) -> None:
    c, e = f"{prefix}-c", f"{prefix}-e"
    async with running_hub(settings_for(mosquitto.url, tmp_path / "hub.db", f"hub-{prefix}")):
        async with fe.client(mosquitto.host, mosquitto.port) as pub:
            await fe.publish(pub, c, e, [fe.seq_batch(c, e, 1, 10), fe.seq_batch(c, e, 31, 10), fe.seq_batch(c, e, 51, 5)])
            await pub.subscribe(ack_topic(c, e), qos=1)
            async with asyncio.timeout(10):
                async for msg in pub.messages:  # acks arrive per commit; wait for the one that saw all three
                    ack = json.loads(msg.payload)  # type: ignore[arg-type]
                    if ack["gaps"] == [[11, 30], [41, 50]]:
                        break
            assert ack["stored_through"] == 10
            await fe.publish(pub, c, e, [fe.seq_batch(c, e, 11, 20), fe.seq_batch(c, e, 41, 10)])
            ack = await fe.wait_ack(pub, c, e, through=55)
        assert ack == {"stored_through": 55, "ts": ack["ts"], "gaps": []}
    await forget_session(mosquitto.host, mosquitto.port, f"hub-{prefix}")


async def test_ack_is_retained_and_published_only_after_the_commit(
    mosquitto: Mosquitto, tmp_path: Path, prefix: str
) -> None:
    c, e = f"{prefix}-c", f"{prefix}-e"
    db = tmp_path / "hub.db"
    async with running_hub(settings_for(mosquitto.url, db, f"hub-{prefix}")):
        async with fe.client(mosquitto.host, mosquitto.port) as pub:
            await pub.subscribe(ack_topic(c, e), qos=1)
            await fe.publish(pub, c, e, list(fe.batches(c, e, 2000, 200).values()))
            async with asyncio.timeout(10):
                async for msg in pub.messages:
                    through = json.loads(msg.payload)["stored_through"]  # type: ignore[arg-type]
                    # Read the database the moment the ack arrives: it must already hold it all.
                    assert _count(db, "SELECT COUNT(*) FROM events WHERE seq <= %d" % through) == through
                    if through == 2000:
                        break
    # A late subscriber (an edge that restarts) gets the retained ack at once.
    async with fe.client(mosquitto.host, mosquitto.port) as late:
        assert (await fe.wait_ack(late, c, e, through=2000, timeout=5))["stored_through"] == 2000
    await forget_session(mosquitto.host, mosquitto.port, f"hub-{prefix}")


async def test_bad_messages_are_dead_lettered_and_the_good_ones_around_them_stored(
    mosquitto: Mosquitto, tmp_path: Path, prefix: str
) -> None:
    c, e = f"{prefix}-c", f"{prefix}-e"
    db = tmp_path / "hub.db"
    async with running_hub(settings_for(mosquitto.url, db, f"hub-{prefix}")) as hub:
        async with fe.client(mosquitto.host, mosquitto.port) as pub:
            topic = events_topic(c, e)
            await pub.publish(topic, fe.seq_batch(c, e, 1, 10), qos=1)
            await pub.publish(topic, b"\xff\xfe not json", qos=1)
            await pub.publish(topic, fe.batch(c, e, [fe.event(11, capability="switch", value=3.5)]), qos=1)
            await pub.publish(topic, fe.seq_batch(f"{prefix}-other", e, 11, 5), qos=1)  # payload says another customer
            await pub.publish(events_topic(f"{prefix}-other", e), fe.seq_batch(f"{prefix}-other", e, 11, 5), qos=1)
            await pub.publish(status_topic(c, e), b'{"state": "online"}', qos=1)  # no ts
            await pub.publish(feedback_topic(c), b"[]", qos=1)
            await pub.publish(topic, fe.seq_batch(c, e, 11, 10), qos=1)
            await fe.wait_ack(pub, c, e, through=20)
        assert hub.dead_letters.counts == {"json": 1, "schema": 3, "identity": 2}
        counts = await hub.store.dead_letter_counts()
        assert counts == {"json": 1, "schema": 3, "identity": 2}
        assert _count(db) == 20
    await forget_session(mosquitto.host, mosquitto.port, f"hub-{prefix}")


async def test_context_follows_status_devices_events_and_the_last_will(
    mosquitto: Mosquitto, tmp_path: Path, prefix: str
) -> None:
    c, e = f"{prefix}-c", f"{prefix}-e"
    commits: list[CommitSummary] = []
    async with running_hub(settings_for(mosquitto.url, tmp_path / "hub.db", f"hub-{prefix}")) as hub:
        hub.on_committed.append(commits.append)
        async with fe.client(mosquitto.host, mosquitto.port) as pub:
            await fe.publish_status(pub, c, e, {"state": "online", "backlog": 7, "ts": 1.0, "version": "0.1"})
            await fe.publish_devices(pub, c, e, [{"device": "pir", "adapter": "z2m", "room": "kitchen",
                                                   "capabilities": ["occupancy"]}])
            now = 1_800_000_000.0
            events = [fe.event(1, ts=now, device="pir", capability="occupancy", value=True, room="kitchen"),
                      fe.event(2, ts=now, device="th", capability="temperature", value=19.5, room="kitchen")]
            await fe.publish(pub, c, e, [fe.batch(c, e, events)])
            await fe.wait_ack(pub, c, e, through=2)
            snap = hub.snapshot(c)
            assert snap["occupied_rooms"] == ["kitchen"] and snap["home"] is True
            assert {(x["device"], x["value"]) for x in snap["latest"]} == {("pir", True), ("th", 19.5)}
            [edge] = snap["edges"]
            assert (edge["online"], edge["backlog"], edge["devices"][0]["device"]) == (True, 7, "pir")
            assert commits and commits[-1].customers == frozenset({c})
            # The edge dies: the broker publishes its retained last will.
            await fe.publish_status(pub, c, e, {"state": "offline", "ts": 2.0})
            async with asyncio.timeout(5):
                while (await hub.store.edges(customer_id=c))[0].online is not False:  # committed
                    await asyncio.sleep(0.02)
        assert hub.snapshot(c)["edges"][0]["online"] is False
    await forget_session(mosquitto.host, mosquitto.port, f"hub-{prefix}")


async def test_broker_keeps_messages_for_the_hub_while_it_is_down(
    mosquitto: Mosquitto, tmp_path: Path, prefix: str
) -> None:
    c, e = f"{prefix}-c", f"{prefix}-e"
    db = tmp_path / "hub.db"
    settings = settings_for(mosquitto.url, db, f"hub-{prefix}")
    async with running_hub(settings):
        async with fe.client(mosquitto.host, mosquitto.port) as pub:
            await fe.publish(pub, c, e, [fe.seq_batch(c, e, 1, 10)])
            await fe.wait_ack(pub, c, e, through=10)
    async with fe.client(mosquitto.host, mosquitto.port) as pub:  # hub is down: publish once, no resend
        await fe.publish(pub, c, e, [fe.seq_batch(c, e, 11, 10), fe.seq_batch(c, e, 21, 10)])
    async with running_hub(settings) as hub:
        async with fe.client(mosquitto.host, mosquitto.port) as pub:
            await fe.wait_ack(pub, c, e, through=30)
        assert hub.stats.events_stored == 20
    assert _count(db) == 30
    await forget_session(mosquitto.host, mosquitto.port, f"hub-{prefix}")


async def _slow_hub_loses_nothing(
    mosquitto_factory: Callable[..., Mosquitto], tmp_path: Path, *, batches: int, size: int, delay: float
) -> fe.AckView:
    """Edges publish far faster than the hub commits; the broker (defaults) drops what overflows."""
    broker = mosquitto_factory()  # Mosquitto's defaults: max_queued_messages 1000, 20 in flight
    c, e = "slow-c", "slow-e"
    total = batches * size
    first_round_published = asyncio.Event()
    async with running_hub(settings_for(broker.url, tmp_path / "hub.db", "hub-slow")) as hub:

        async def slow(_: CommitSummary) -> None:
            await first_round_published.wait()  # no PUBACK until the edge has sent everything once
            await asyncio.sleep(delay)  # and a hub slower than its edges after that

        hub.on_committed.append(slow)
        view = await fe.deliver(broker.host, broker.port, c, e, fe.batches(c, e, total, size), total=total,
                                quiet_s=1.0, timeout=240, on_published=lambda _: first_round_published.set())
        assert view.stored_through == total
        [edge] = await hub.store.edges()
        assert (edge.events, edge.contiguous, edge.gaps) == (total, total, [])
        assert hub.stats.events_stored == total
        return view


async def test_slow_hub_behind_default_mosquitto_loses_nothing_once_edges_resend(
    mosquitto_factory: Callable[..., Mosquitto], tmp_path: Path
) -> None:
    view = await _slow_hub_loses_nothing(mosquitto_factory, tmp_path, batches=1500, size=4, delay=0.05)
    assert view.rounds >= 2 and view.resent > 0  # the broker did drop some: the resend made it whole


@pytest.mark.slow
async def test_slow_hub_behind_default_mosquitto_loses_nothing_at_scale(
    mosquitto_factory: Callable[..., Mosquitto], tmp_path: Path
) -> None:
    view = await _slow_hub_loses_nothing(mosquitto_factory, tmp_path, batches=20_000, size=50, delay=0.1)
    assert view.resent > 0


async def test_a_backlog_larger_than_the_hub_queues_is_taken_in_bounded_bites(
    mosquitto_factory: Callable[..., Mosquitto], tmp_path: Path
) -> None:
    broker = mosquitto_factory()
    c, e = "bl-c", "bl-e"
    settings = settings_for(broker.url, tmp_path / "hub.db", "hub-backlog")
    async with running_hub(settings):
        pass  # creates the persistent session
    async with fe.client(broker.host, broker.port) as pub:  # a backlog while the hub is down
        await fe.publish(pub, c, e, list(fe.batches(c, e, 3000, 10).values()))
    small = settings.model_copy(update={
        "broker": settings.broker.model_copy(update={"max_queued_incoming": 20}),
        "ingest": settings.ingest.model_copy(update={"queue_messages": 4}),
    })
    async with running_hub(small) as hub:
        async with fe.client(broker.host, broker.port) as pub:
            await fe.wait_ack(pub, c, e, through=3000, timeout=60)
        assert hub.stats.overflows >= 1  # it did overflow, reconnected, and lost nothing
        assert hub.stats.events_stored == 3000


async def test_hub_reconnects_after_the_broker_restarts_and_takes_what_was_kept(
    mosquitto_factory: Callable[..., Mosquitto], tmp_path: Path
) -> None:
    broker = mosquitto_factory()
    c, e = "rc-c", "rc-e"
    async with running_hub(settings_for(broker.url, tmp_path / "hub.db", "hub-rc")) as hub:
        async with fe.client(broker.host, broker.port) as pub:
            await fe.publish(pub, c, e, [fe.seq_batch(c, e, 1, 10)])
            await fe.wait_ack(pub, c, e, through=10)
        broker.restart()  # persistence keeps the hub's session and the retained ack
        async with fe.client(broker.host, broker.port) as pub:
            await fe.publish(pub, c, e, [fe.seq_batch(c, e, 11, 10)])
            await fe.wait_ack(pub, c, e, through=20, timeout=20)
        assert hub.stats.connections >= 2 and hub.stats.events_stored == 20


async def test_a_failing_hook_is_counted_and_ingest_goes_on(
    mosquitto: Mosquitto, tmp_path: Path, prefix: str
) -> None:
    c, e = f"{prefix}-c", f"{prefix}-e"
    seen: list[int] = []

    def broken(_: CommitSummary) -> None:
        raise RuntimeError("boom")

    async def counting(summary: CommitSummary) -> None:
        seen.append(summary.stored)

    async with running_hub(settings_for(mosquitto.url, tmp_path / "hub.db", f"hub-{prefix}")) as hub:
        hub.on_committed.extend([broken, counting])
        async with fe.client(mosquitto.host, mosquitto.port) as pub:
            await fe.publish(pub, c, e, [fe.seq_batch(c, e, 1, 10)])
            await fe.wait_ack(pub, c, e, through=10)
            await fe.publish(pub, c, e, [fe.seq_batch(c, e, 11, 10)])
            await fe.wait_ack(pub, c, e, through=20)
        async with asyncio.timeout(5):  # hooks run right after the commit, beside the ack
            while sum(seen) < 20:
                await asyncio.sleep(0.01)
        assert sum(hub.stats.hook_errors.values()) >= 2 and sum(seen) == 20
    await forget_session(mosquitto.host, mosquitto.port, f"hub-{prefix}")


async def test_stopping_while_a_hook_runs_is_clean_and_settles_each_group_once(
    mosquitto: Mosquitto, tmp_path: Path, prefix: str
) -> None:
    c, e = f"{prefix}-c", f"{prefix}-e"
    calls: list[int] = []

    async def stuck(summary: CommitSummary) -> None:
        calls.append(summary.stored)
        await asyncio.Event().wait()  # cancelled by the shutdown

    async with running_hub(settings_for(mosquitto.url, tmp_path / "hub.db", f"hub-{prefix}")) as hub:
        hub.on_committed.append(stuck)
        async with fe.client(mosquitto.host, mosquitto.port) as pub:
            await fe.publish(pub, c, e, [fe.seq_batch(c, e, 1, 10)])
            await fe.wait_ack(pub, c, e, through=10)
            await fe.publish(pub, c, e, [fe.seq_batch(c, e, 11, 10)])  # waits behind the stuck hook
            async with asyncio.timeout(5):
                while hub.stats.messages < 2:
                    await asyncio.sleep(0.01)
    # The shutdown flush committed the second batch too, without hooks (nor the first hook again).
    assert hub.stats.events_stored == 20
    assert calls == [10]
    await forget_session(mosquitto.host, mosquitto.port, f"hub-{prefix}")
