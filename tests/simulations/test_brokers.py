"""Both brokers Genius runs on (Mosquitto for tests and production, amqtt embedded for the
demo) deliver QoS 1 and retained messages the way the pipeline relies on."""

from __future__ import annotations

import asyncio

import aiomqtt
import pytest

from simulations.brokers import EmbeddedBroker, Mosquitto


async def _roundtrip(host: str, port: int, topic: str) -> tuple[bytes, bytes]:
    async with aiomqtt.Client(host, port, identifier=f"pub-{topic}") as pub:
        await pub.publish(f"{topic}/retained", b"kept", qos=1, retain=True)
    async with aiomqtt.Client(host, port, identifier=f"sub-{topic}") as sub:
        await sub.subscribe(f"{topic}/#", qos=1)
        async with asyncio.timeout(10):
            retained = await anext(aiter(sub.messages))
            async with aiomqtt.Client(host, port, identifier=f"pub2-{topic}") as pub:
                await pub.publish(f"{topic}/live", b"fresh", qos=1)
            live = await anext(aiter(sub.messages))
    return bytes(retained.payload), bytes(live.payload)  # type: ignore[arg-type]


async def test_embedded_broker_delivers_retained_and_live_qos1(prefix: str) -> None:
    async with EmbeddedBroker() as broker:
        assert broker.url.startswith("mqtt://127.0.0.1:")
        assert await _roundtrip(broker.host, broker.port, prefix) == (b"kept", b"fresh")


async def test_mosquitto_delivers_retained_and_live_qos1(mosquitto: Mosquitto, prefix: str) -> None:
    assert await _roundtrip(mosquitto.host, mosquitto.port, prefix) == (b"kept", b"fresh")


def test_mosquitto_restart_keeps_port_and_retained_messages(mosquitto_factory, prefix: str) -> None:  # type: ignore[no-untyped-def]
    broker = mosquitto_factory()
    port = broker.port
    asyncio.run(_publish_retained(broker, prefix))
    broker.restart()
    assert broker.port == port and broker.running
    got = asyncio.run(_read_retained(broker, prefix))
    assert got == b"persisted"


async def _publish_retained(broker: Mosquitto, topic: str) -> None:
    async with aiomqtt.Client(broker.host, broker.port) as c:
        await c.publish(f"{topic}/r", b"persisted", qos=1, retain=True)


async def _read_retained(broker: Mosquitto, topic: str) -> bytes:
    async with aiomqtt.Client(broker.host, broker.port) as c:
        await c.subscribe(f"{topic}/r", qos=1)
        async with asyncio.timeout(10):
            msg = await anext(aiter(c.messages))
    return bytes(msg.payload)  # type: ignore[arg-type]


pytestmark = pytest.mark.timeout(60)
