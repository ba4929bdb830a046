"""The real edge agent delivering to the real hub: devices → edge → Mosquitto → hub → SQLite."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path

import aiomqtt

from devices import DefinitionsAdapter, DeviceDefinition, Topic, occupancy, temperature
from edge import EdgeAgent, EdgeSettings
from simulations.brokers import Mosquitto

from .helpers import running_hub, settings_for


async def test_edge_agent_readings_are_stored_once_acked_and_fused_into_the_context(
    mosquitto_factory: Callable[..., Mosquitto], tmp_path: Path
) -> None:
    local, hub_broker = mosquitto_factory(), mosquitto_factory()
    sensor = DeviceDefinition(vendor="test", model="pir-th", match=Topic("home/+/state"),
                              exposes=(temperature(path="t"), occupancy(path="occ")))
    settings = EdgeSettings.load(
        None, customer="dana", edge="dana-home", local_broker=local.url, hub_broker=hub_broker.url,
        outbox={"path": tmp_path / "outbox.db"},
        uplink={"resend_after_s": 1.0, "status_interval_s": 1.0, "backoff_initial_s": 0.1, "backoff_max_s": 1.0},
    )
    agent = EdgeAgent(settings, sessions=[DefinitionsAdapter.of([sensor]).new_session()])
    async with running_hub(settings_for(hub_broker.url, tmp_path / "hub.db", "hub-e2e")) as hub:
        async with asyncio.TaskGroup() as tg:
            task = tg.create_task(agent.run())
            try:
                async with asyncio.timeout(15):
                    await agent.ready.wait()
                async with aiomqtt.Client(local.host, local.port) as dev:
                    for i in range(100):
                        doc = {"t": 20 + i / 10, "occ": i % 2 == 0}
                        await dev.publish(f"home/pir{i % 4}/state", json.dumps(doc).encode(), qos=1)
                async with asyncio.timeout(20):  # 200 readings stored, and the edge's outbox emptied by acks
                    while not (hub.stats.events_stored == 200 and agent.outbox is not None
                               and agent.outbox.count == 0):
                        await asyncio.sleep(0.05)
            finally:
                task.cancel()
        [edge] = await hub.store.edges(customer_id="dana")
        assert (edge.edge_id, edge.events, edge.contiguous, edge.gaps) == ("dana-home", 200, 200, [])
        snap = hub.snapshot("dana")
        assert {x["device"] for x in snap["latest"]} == {"pir0", "pir1", "pir2", "pir3"}
        assert snap["edges"][0]["edge_id"] == "dana-home"
        frame = await hub.store.events_for("dana")
        temps = [v for c, v in zip(frame.capability, frame.value) if c == "temperature"]
        assert temps == [20 + i / 10 for i in range(100)]
