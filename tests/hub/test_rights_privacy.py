"""Privacy holds end to end: a real edge and a real hub; nothing finer than allowed is stored.

``share`` arrives as read; ``coarse`` arrives at most once per (device, capability, window),
timestamped at the window's start, numbers rounded to the capability's resolution; ``local``
never reaches the hub store.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Callable
from pathlib import Path

import aiomqtt

from devices import DefinitionsAdapter, DeviceDefinition, Topic, occupancy, power, temperature
from edge import EdgeAgent, EdgeSettings
from edge.settings import DEFAULT_RESOLUTION
from simulations.brokers import Mosquitto

from .helpers import running_hub, settings_for

WINDOW_S = 1.0
READINGS = 12


async def test_coarse_and_local_hold_from_the_device_to_the_hub_store(
    mosquitto_factory: Callable[..., Mosquitto], prefix: str, tmp_path: Path
) -> None:
    local, hub_broker = mosquitto_factory(), mosquitto_factory()
    sensor = DeviceDefinition(vendor="test", model="multi", match=Topic(f"{prefix}/+/state"),
                              exposes=(temperature(path="t"), occupancy(path="occ"), power(path="p")))
    settings = EdgeSettings.load(
        None, customer=prefix, edge="e1", local_broker=local.url, hub_broker=hub_broker.url,
        outbox={"path": tmp_path / "outbox.db"},
        uplink={"resend_after_s": 1.0, "status_interval_s": 1.0, "backoff_initial_s": 0.1, "backoff_max_s": 1.0},
        privacy={"window_s": WINDOW_S},
        devices={"lamp": {"privacy": "share"}, "pir": {"privacy": "coarse"}, "diary": {"privacy": "local"}},
        home={"enabled": False},
    )
    agent = EdgeAgent(settings, sessions=[DefinitionsAdapter.of([sensor]).new_session()], tick_s=0.1)
    async with running_hub(settings_for(hub_broker.url, tmp_path / "hub.db", f"hub-{prefix}")) as hub:
        async with asyncio.TaskGroup() as tg:
            task = tg.create_task(agent.run())
            try:
                async with asyncio.timeout(15):
                    await agent.ready.wait()
                async with aiomqtt.Client(local.host, local.port) as dev:
                    for i in range(READINGS):
                        for device, doc in (("lamp", {"t": 20.13 + i / 100, "p": 13.7}),
                                            ("pir", {"t": 21.26, "occ": i % 3 == 0, "p": 47.0}),
                                            ("diary", {"t": 22.01, "occ": True, "p": 1.0})):
                            await dev.publish(f"{prefix}/{device}/state", json.dumps(doc).encode(), qos=1)
                        await asyncio.sleep(0.15)
                # Every coarse window closes (window + grace) and all of it is acknowledged.
                async with asyncio.timeout(20):
                    while not (hub.stats.events_stored >= 2 * READINGS + 1 and agent.outbox is not None
                               and agent.outbox.count == 0 and not agent.privacy.coarsener.open_windows):
                        await asyncio.sleep(0.1)
            finally:
                task.cancel()
        frame = await hub.store.events_for(prefix)
        [edge] = await hub.store.edges(customer_id=prefix)
    rows = list(frame.rows())
    by_device: dict[str, list[tuple[float, str, object]]] = {}
    for ts, _edge, _seq, device, capability, value, _room in rows:
        by_device.setdefault(device, []).append((ts, capability, value))
    assert "diary" not in by_device  # local: never at the hub
    # share: every reading, as read.
    lamp_temps = [v for _, c, v in by_device["lamp"] if c == "temperature"]
    assert lamp_temps == [20.13 + i / 100 for i in range(READINGS)]
    # coarse: floored timestamps, rounded values, one per (capability, window).
    pir = by_device["pir"]
    assert pir and len(pir) < 3 * READINGS
    windows = [(c, ts) for ts, c, _ in pir]
    assert len(windows) == len(set(windows))
    for ts, capability, value in pir:
        assert math.isclose(ts % WINDOW_S, 0.0, abs_tol=1e-9) or math.isclose(ts % WINDOW_S, WINDOW_S), ts
        if capability in DEFAULT_RESOLUTION:
            step = DEFAULT_RESOLUTION[capability]
            assert math.isclose(value / step, round(value / step), abs_tol=1e-9), (capability, value)  # type: ignore[operator]
    assert {v for _, c, v in pir if c == "temperature"} == {21.5}
    assert {v for _, c, v in pir if c == "power"} == {50.0}
    # The inventory the hub keeps (and exports) says what each device's policy is.
    policies = {d["device"]: d.get("privacy", {}) for d in edge.inventory}
    assert set(policies.get("pir", {}).values()) <= {"coarse"}
    assert "diary" not in policies or set(policies["diary"].values()) == {"local"}
