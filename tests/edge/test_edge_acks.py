"""Manual PUBACKs on the local broker: a device message is acknowledged only once it is safe,
in arrival order, and a redelivery after a crash is stored once (``edge.acks``)."""

from __future__ import annotations

import asyncio
import json
import random
import sqlite3
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import aiomqtt
import pytest

from devices import DefinitionsAdapter
import edge.local as edge_local
from edge import EdgeAgent, EdgeSettings, Outbox, OutboxSettings
from edge.settings import BrokerSettings
from devices.readings import Reading
from edge.acks import LocalAcks, message_key
from edge_testkit import edge_settings, hub_broker, multi_sensor  # noqa: F401 (fixtures)
from simulations.brokers import Mosquitto


class _Recorder:
    """Stands in for paho's ``ack``: records what would be sent."""

    def __init__(self) -> None:
        self.acked: list[int] = []

    def ack(self, mid: int, qos: int) -> None:
        self.acked.append(mid)


def _reading(value: float) -> Reading:
    return Reading(1000.0, "plug", "power", value, None)


async def test_pubacks_wait_for_the_commit_that_covers_them_and_go_out_in_arrival_order(tmp_path: Path) -> None:
    async with Outbox.open(OutboxSettings(path=tmp_path / "o.db")) as box:
        acks = LocalAcks(box, commit_after=100)
        paho = _Recorder()
        acks.connected(paho)
        box.put([_reading(1.0)])
        acks.owe(1, 1)
        acks.owe(2, 1)  # a message that left nothing to commit (discovery) still waits its turn
        acks.owe(3, 0)  # QoS 0: nothing to acknowledge
        assert paho.acked == [] and acks.unacked == 2
        await box.flush()
        assert paho.acked == [1, 2]
        box.put([_reading(2.0)])
        acks.owe(4, 1)
        acks.connected(_Recorder())  # the link was lost: the broker sends message 4 again
        await box.flush()
        assert paho.acked == [1, 2] and acks.counters.dropped == 1 and acks.unacked == 0


async def test_a_known_dup_is_skipped_but_a_repeated_payload_without_dup_or_with_a_new_id_is_not(
    tmp_path: Path,
) -> None:
    path = tmp_path / "o.db"
    async with Outbox.open(OutboxSettings(path=path)) as box:
        acks = LocalAcks(box)
        assert not acks.seen(7, "t/a", b"1", dup=False)
        assert not acks.seen(8, "t/a", b"1", dup=False)  # the device said it again: a new reading
        await box.flush()
    assert message_key(7, "t/a", b"1") != message_key(8, "t/a", b"1") != message_key(7, "t/b", b"1")
    async with Outbox.open(OutboxSettings(path=path)) as box:  # the keys were committed: a restart knows them
        acks = LocalAcks(box)
        assert acks.seen(7, "t/a", b"1", dup=True) and acks.seen(8, "t/a", b"1", dup=True)
        assert not acks.seen(7, "t/a", b"1", dup=False)  # no DUP flag: not a resend
        assert not acks.seen(9, "t/a", b"1", dup=True)  # a resend of a message never handled
        assert acks.counters.redelivered == 2


def _power_values(outbox: Path) -> Counter[float]:
    db = sqlite3.connect(f"file:{outbox}?mode=ro", uri=True)
    try:
        rows = db.execute(
            "SELECT e.value FROM events e JOIN names n ON n.id = e.capability WHERE n.name = 'power'"
        ).fetchall()
    finally:
        db.close()
    return Counter(float(v) for (v,) in rows)


async def test_agents_cancelled_mid_stream_store_every_device_message_exactly_once(
    mosquitto_factory: Callable[..., Mosquitto], edge_settings: Callable[..., EdgeSettings], prefix: str,
    tmp_path: Path,
) -> None:
    """Five restarts while devices publish: what was committed but not acknowledged comes
    back with DUP and is skipped; what was received but not committed comes back and is
    stored; a payload a device really sent twice is stored twice."""
    # No queue limit: Mosquitto's default (1000) drops what a session misses past it.
    mosquitto = mosquitto_factory(max_queued_messages=0)
    settings = edge_settings().model_copy(update={"local_broker": BrokerSettings.model_validate(mosquitto.url)})
    expected: Counter[float] = Counter()
    rng = random.Random(7)
    redelivered = 0

    async def publish() -> None:
        async with aiomqtt.Client(mosquitto.host, mosquitto.port) as client:
            for i in range(1500):
                copies = 2 if i % 25 == 0 else 1
                for _ in range(copies):
                    await client.publish(f"{prefix}/d{i % 5}/state", json.dumps({"p": i}).encode(), qos=1)
                    expected[float(i)] += 1
                if i % 10 == 0:
                    await asyncio.sleep(0.005)

    def agent() -> EdgeAgent:
        return EdgeAgent(settings, sessions=[DefinitionsAdapter.of([multi_sensor(prefix)]).new_session()])

    async with asyncio.timeout(60):
        first = agent()
        async with asyncio.TaskGroup() as tg:
            run = tg.create_task(first.run())
            await first.ready.wait()
            feed = tg.create_task(publish())
            current = first
            for _ in range(5):
                await asyncio.sleep(rng.uniform(0.1, 0.4))
                run.cancel()
                await asyncio.wait([run])
                assert current.local is not None and current.local.acks is not None
                redelivered += current.local.acks.counters.redelivered
                current = agent()
                run = tg.create_task(current.run())
                await current.ready.wait()
            await feed
            for _ in range(200):  # bounded: a lost message would otherwise wait forever
                if _power_values(settings.outbox.path) == expected:
                    break
                await asyncio.sleep(0.1)
            await asyncio.sleep(0.5)  # anything stored twice would arrive now
            run.cancel()
        assert current.local is not None and current.local.acks is not None
        redelivered += current.local.acks.counters.redelivered
    assert _power_values(settings.outbox.path) == expected
    assert redelivered > 0, "no cancel landed between a commit and its PUBACKs: the DUP path went untested"


pytestmark = pytest.mark.timeout(120)


async def test_a_backlog_taken_in_bursts_loses_no_message_between_two_bursts(
    mosquitto_factory: Callable[..., Mosquitto], edge_settings: Callable[..., EdgeSettings], prefix: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The subscriber takes what aiomqtt queued in bursts; the message after a full burst is
    the next burst's first (it was once taken and dropped: never stored, never acknowledged)."""
    monkeypatch.setattr(edge_local, "_BURST", 5)  # bursts smaller than the broker sends: many boundaries
    subscribe = edge_local.LocalSubscriber._subscribe

    async def slow_subscribe(self: edge_local.LocalSubscriber, client: aiomqtt.Client, filters: list[str]) -> None:
        await asyncio.sleep(0.5)  # as a busy edge starting up: the broker's backlog piles up in aiomqtt's queue
        await subscribe(self, client, filters)

    monkeypatch.setattr(edge_local.LocalSubscriber, "_subscribe", slow_subscribe)
    mosquitto = mosquitto_factory(max_queued_messages=0)
    settings = edge_settings().model_copy(update={"local_broker": BrokerSettings.model_validate(mosquitto.url)})

    def agent() -> EdgeAgent:
        return EdgeAgent(settings, sessions=[DefinitionsAdapter.of([multi_sensor(prefix)]).new_session()])

    async with asyncio.timeout(60):
        first = agent()
        async with asyncio.TaskGroup() as tg:  # the persistent session exists; then the edge is down
            run = tg.create_task(first.run())
            await first.ready.wait()
            run.cancel()
        async with aiomqtt.Client(mosquitto.host, mosquitto.port) as client:
            for i in range(600):  # queued by the broker for the edge's session
                await client.publish(f"{prefix}/d{i % 5}/state", json.dumps({"p": i}).encode(), qos=1)
        second = agent()
        async with asyncio.TaskGroup() as tg:
            run = tg.create_task(second.run())
            for _ in range(200):
                if sum(_power_values(settings.outbox.path).values()) >= 600:
                    break
                await asyncio.sleep(0.05)
            run.cancel()
    assert _power_values(settings.outbox.path) == Counter(float(i) for i in range(600))
    assert second.local is not None and second.local.connects == 1  # no reconnect redelivered them
