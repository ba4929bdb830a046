"""Fixture payloads travel through a real Mosquitto and read the same as when handed over directly.

This is the path the edge takes: subscribe to what the sessions ask for (discovery adds topics
as it goes), route each message to the first session that matches, handle it. Retained
discovery (``bridge/devices``, HA configs) arrives before live traffic, as on a real broker.
"""

from __future__ import annotations

import asyncio
import json

import aiomqtt
from test_adapters_fixtures import FIXTURES, TS, Message

from devices import AdapterSession, PayloadError, Reading, first_session
from devices.adapters import HomeAssistantAdapter, OrdonezAdapter, ShellyAdapter, TasmotaAdapter, Zigbee2MqttAdapter
from simulations.brokers import Mosquitto


def _adapters(prefix: str) -> list:  # type: ignore[type-arg]
    return [
        Zigbee2MqttAdapter(base_topic=f"{prefix}/zigbee2mqtt"),
        TasmotaAdapter(full_topic=f"{prefix}/%prefix%/%topic%/"),
        ShellyAdapter(root=prefix),
        OrdonezAdapter(prefix=f"{prefix}/ordonez"),
        HomeAssistantAdapter(discovery_prefix=f"{prefix}/homeassistant"),
    ]


def _messages(prefix: str) -> tuple[list[Message], list[Message]]:
    """(retained discovery, live traffic), every topic moved under ``prefix``."""
    retained, live = [], []
    for name in ("zigbee2mqtt", "tasmota", "shelly", "ordonez"):
        for fixture in FIXTURES[name]:
            for m in fixture.messages:
                if m.error is not None:
                    continue
                moved = Message(f"{prefix}/{m.topic}", m.payload, m.doc, m.expect, None)
                (retained if m.topic.endswith("bridge/devices") else live).append(moved)
    config = {"stat_t": f"{prefix}/esp1/sensor/lux/state", "dev_cla": "illuminance", "unit_of_meas": "lx",
              "avty_t": f"{prefix}/esp1/status", "dev": {"ids": "esp1", "name": "esp1", "sa": "Hall"}}
    retained.append(Message(f"{prefix}/homeassistant/sensor/esp1/illuminance/config", json.dumps(config).encode(),
                            config, None, None))
    live.append(Message(f"{prefix}/esp1/sensor/lux/state", b"312.5", None, None, None))
    return retained, live


def _direct(prefix: str) -> list[Reading]:
    sessions = [a.new_session() for a in _adapters(prefix)]
    retained, live = _messages(prefix)
    out: list[Reading] = []
    for m in [*retained, *live]:
        session = first_session(sessions, m.topic)
        assert session is not None, m.topic
        try:
            out.extend(session.handle(m.topic, m.payload, ts=TS).readings)
        except PayloadError:
            pass
    return out


async def _through_broker(broker: Mosquitto, prefix: str) -> list[Reading]:
    sessions: list[AdapterSession] = [a.new_session() for a in _adapters(prefix)]
    retained, live = _messages(prefix)
    out: list[Reading] = []
    async with aiomqtt.Client(broker.host, broker.port, identifier=f"{prefix}-devices") as devices:
        for m in retained:
            await devices.publish(m.topic, m.payload, qos=1, retain=True)
        async with aiomqtt.Client(broker.host, broker.port, identifier=f"{prefix}-edge") as edge:
            for session in sessions:
                for f in session.subscriptions():
                    await edge.subscribe(f, qos=1)
            received = 0
            messages = aiter(edge.messages)
            async with asyncio.timeout(20):
                while received < len(retained):
                    msg = await anext(messages)
                    received += 1
                    result = _route(sessions, str(msg.topic), bytes(msg.payload))  # type: ignore[arg-type]
                    for t in result.subscribe if result else ():
                        await edge.subscribe(t, qos=1)  # discovery asked for more: SUBACK before live traffic
                    out.extend(result.readings if result else ())
                for m in live:
                    await devices.publish(m.topic, m.payload, qos=1)
                while received < len(retained) + len(live):
                    msg = await anext(messages)
                    received += 1
                    result = _route(sessions, str(msg.topic), bytes(msg.payload))  # type: ignore[arg-type]
                    out.extend(result.readings if result else ())
        for m in retained:
            await devices.publish(m.topic, b"", qos=1, retain=True)  # leave the shared broker clean
    return out


def _route(sessions: list[AdapterSession], topic: str, payload: bytes):  # type: ignore[no-untyped-def]
    session = first_session(sessions, topic)
    assert session is not None, f"no session owns {topic}"
    try:
        return session.handle(topic, payload, ts=TS)
    except PayloadError:
        return None


def _key(r: Reading) -> tuple[str, str, str, float]:
    return (r.device, r.capability, repr(r.value), r.ts)


async def test_fixture_traffic_through_mosquitto_reads_as_handed_over_directly(
    mosquitto: Mosquitto, prefix: str
) -> None:
    via_broker = await _through_broker(mosquitto, prefix)
    direct = _direct(prefix)
    assert len(direct) > 50
    assert sorted(via_broker, key=_key) == sorted(direct, key=_key)
    assert ("esp1_illuminance", 312.5, "Hall") in {(r.device, r.value, r.room) for r in via_broker}
    assert any(r.device == "bathroom_toilet" and r.value == "flush" for r in via_broker)
