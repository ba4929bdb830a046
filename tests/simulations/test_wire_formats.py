"""The simulator's wire payloads parse through the real adapters into exactly its canonical events."""

from __future__ import annotations

import math
from datetime import date

import pytest

from simulations import CustomerSimulation, Population, to_epoch

adapter_mod = pytest.importorskip("devices.adapters.zigbee2mqtt", reason="built-in adapters not present yet")

from devices import load_registry  # noqa: E402
from devices.adapter import AdapterSession, first_session  # noqa: E402

START = to_epoch(date(2024, 3, 4))
DAY = 86400.0


def _norm(value: object) -> object:
    return round(value, 6) if isinstance(value, float) else value


def _sessions() -> list[AdapterSession]:
    # the venue reader is a plain JSON device declared with DeviceDefinition
    return load_registry(strict=True).sessions()


@pytest.mark.parametrize("index", [0, 1, 2, 3])
def test_every_message_parses_through_the_real_adapters_into_its_events(index: int) -> None:
    sim = CustomerSimulation(Population.customer(index, 21))
    sessions: dict[str, list[AdapterSession]] = {}
    adapters_used: set[str] = set()
    messages = readings = 0
    for msg, events in sim.run_with_events(START, START + 10 * DAY):
        if msg.edge_id not in sessions:
            sessions[msg.edge_id] = _sessions()  # each edge has its own adapter sessions
        session = first_session(sessions[msg.edge_id], msg.topic)
        assert session is not None, msg.topic
        result = session.handle(msg.topic, msg.payload, ts=msg.ts)
        got = sorted((r.device, r.capability, _norm(r.value)) for r in result.readings)
        want = sorted((e.device, e.capability, _norm(e.value)) for e in events)
        assert got == want, (msg.topic, msg.payload[:300])
        for r in result.readings:
            assert r.room is None or r.room == events[0].room
            assert math.isclose(r.ts, msg.ts)
        adapters_used.add(session.adapter.name)
        messages += 1
        readings += len(result.readings)
    assert {"zigbee2mqtt", "tasmota", "shelly", "homeassistant"} <= adapters_used
    assert readings == sum(1 for _ in sim.events(START, START + 10 * DAY))
    assert messages > 1000


def test_discovery_documents_declare_every_device_the_home_publishes() -> None:
    sim = CustomerSimulation(Population.customer(0, 21))
    sessions = _sessions()
    profiles = set()
    for msg in sim.run(START, START + 1, discovery=True):
        if msg.edge_id != sim.spec.home.edge_id or not msg.retain:
            continue
        session = first_session(sessions, msg.topic)
        assert session is not None, msg.topic
        profiles.update(p.device for p in session.handle(msg.topic, msg.payload, ts=msg.ts).profiles)
    z2m = {d.wire_id for d in sim.spec.home.devices if d.protocol == "zigbee2mqtt"}
    assert z2m <= profiles
    assert "living-lux_illuminance" in profiles
