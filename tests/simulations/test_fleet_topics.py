"""Edges sharing one local broker under per-edge topic roots read exactly what they would alone."""

from __future__ import annotations

import math
from datetime import date

import pytest

from devices.adapter import AdapterSession, first_session
from devices.errors import PayloadError
from simulations import CustomerSimulation, Population, to_epoch
from simulations.fleet_clock import SimClock
from simulations.fleet_feed import malformed_payload
from simulations.fleet_topics import EdgeNamespace

START = to_epoch(date(2024, 3, 4))
DAY = 86400.0


def _norm(value: object) -> object:
    return round(value, 6) if isinstance(value, float) else value


@pytest.mark.parametrize("index", [0, 1])
def test_prefixed_adapters_read_every_simulated_message_into_exactly_its_events(index: int) -> None:
    sim = CustomerSimulation(Population.customer(index, 21))
    spaces = {p.edge_id: EdgeNamespace(p.edge_id) for p in sim.spec.places}
    sessions: dict[str, list[AdapterSession]] = {e: ns.sessions() for e, ns in spaces.items()}
    adapters_used: set[str] = set()
    readings = 0
    for msg, events in sim.run_with_events(START, START + 4 * DAY):
        topic, payload = spaces[msg.edge_id].localise(msg)
        assert topic.startswith(f"genius-sim/{msg.edge_id}/")
        session = first_session(sessions[msg.edge_id], topic)
        assert session is not None, topic
        result = session.handle(topic, payload, ts=msg.ts)
        got = sorted((r.device, r.capability, _norm(r.value)) for r in result.readings)
        assert got == sorted((e.device, e.capability, _norm(e.value)) for e in events), topic
        for r in result.readings:
            assert r.room is None or r.room == events[0].room
        adapters_used.add(session.adapter.name)
        readings += len(result.readings)
    assert {"zigbee2mqtt", "tasmota", "shelly", "homeassistant"} <= adapters_used
    assert readings == sum(1 for _ in sim.events(START, START + 4 * DAY))


def test_an_edge_never_reads_another_edges_devices() -> None:
    sim = CustomerSimulation(Population.customer(0, 21))
    home, hotel = sim.spec.home.edge_id, sim.spec.hotel.edge_id
    hotel_sessions = EdgeNamespace(hotel).sessions()
    for msg in sim.run(START, START + DAY):
        if msg.edge_id == home:
            topic, _ = EdgeNamespace(home).localise(msg)
            assert first_session(hotel_sessions, topic) is None, topic


def test_malformed_payloads_on_every_device_topic_are_rejected_not_read() -> None:
    sim = CustomerSimulation(Population.customer(0, 21))
    spaces = {p.edge_id: EdgeNamespace(p.edge_id) for p in sim.spec.places}
    sessions = {e: ns.sessions() for e, ns in spaces.items()}
    seen: set[str] = set()
    for msg in sim.run(START, START + 2 * DAY):
        topic, payload = spaces[msg.edge_id].localise(msg)
        session = first_session(sessions[msg.edge_id], topic)
        assert session is not None
        if msg.retain:
            session.handle(topic, payload, ts=msg.ts)  # discovery first, as the broker delivers it
            continue
        with pytest.raises(PayloadError):
            session.handle(topic, malformed_payload(topic), ts=msg.ts)
        seen.add(session.adapter.name)
    assert {"zigbee2mqtt", "tasmota", "shelly", "homeassistant"} <= seen


def test_sim_clock_runs_speed_times_the_wall_and_skews_by_a_fixed_offset() -> None:
    wall = [100.0]
    clock = SimClock(1_000.0, speed=60.0, monotonic=lambda: wall[0])
    assert clock() == 1_000.0  # stands still until begin
    clock.begin()
    wall[0] += 2.5
    assert math.isclose(clock(), 1_150.0)
    assert math.isclose(clock.wall_until(1_210.0), 1.0)
    assert clock.wall_until(0.0) == 0.0
    assert math.isclose(clock.skewed(-30.0)(), 1_120.0)
    with pytest.raises(ValueError):
        SimClock(0.0, speed=0.0)
