"""The anticipation loop closes through the home: hub anticipation → edge → Home Assistant entity →
a press in HA → edge → hub broker → the hub's feedback table. Real hub, real edge, two real brokers.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path

import aiomqtt

from devices.topics import anticipations_topic
from edge import EdgeAgent, EdgeSettings
from hub.service import Hub
from hub.settings import HubSettings
from simulations.brokers import Mosquitto


async def test_feedback_pressed_in_home_assistant_is_stored_by_the_hub(
    mosquitto_factory: Callable[..., Mosquitto], prefix: str, tmp_path: Path
) -> None:
    local, hub_broker = mosquitto_factory(), mosquitto_factory()
    customer = prefix
    hub = Hub(HubSettings.load(broker={"url": hub_broker.url, "client_id": f"hub-{prefix}"},
                               store={"path": tmp_path / "hub.db"}))
    edge = EdgeAgent(EdgeSettings.load(
        None, customer=customer, edge="home", local_broker=local.url, hub_broker=hub_broker.url,
        outbox={"path": tmp_path / "outbox.db"},
        uplink={"backoff_initial_s": 0.1, "backoff_max_s": 1.0},
        home={"retry_initial_s": 0.1, "retry_max_s": 1.0},
    ), sessions=[])
    anticipation = {
        "id": "ant-42", "customer_id": customer, "market": "home:weekend", "ts": 1_700_000_000.0,
        "model": "sim@1",
        "jobs": [{"job": "water_plants", "probability": 0.8, "expected_in_s": 120.0, "because": ["saturday 10:00"]}],
    }
    async with hub, asyncio.TaskGroup() as tg:
        tasks = [tg.create_task(hub.run()), tg.create_task(edge.run())]
        try:
            async with asyncio.timeout(15):
                await hub.ready.wait()
                await edge.ready.wait()
            # What the hub's anticipation service publishes (retained, for every edge of the customer).
            async with aiomqtt.Client(hub_broker.host, hub_broker.port) as c:
                await c.publish(anticipations_topic(customer), json.dumps(anticipation).encode(), qos=1, retain=True)
            assert edge.home is not None
            topics = edge.home.topics
            # Home Assistant: sees the entity, then presses "done".
            async with aiomqtt.Client(local.host, local.port) as ha:
                await ha.subscribe(topics.state, qos=1)
                async with asyncio.timeout(15):
                    async for msg in ha.messages:
                        if msg.payload == b"water_plants":
                            break
                await ha.publish(topics.command, b"done", qos=1)
            async with asyncio.timeout(15):
                while not (stored := await hub.store.feedback_for(customer)):
                    await asyncio.sleep(0.05)
        finally:
            for task in tasks:
                task.cancel()
    [fb] = stored
    assert (fb.anticipation_id, fb.verdict, fb.job) == ("ant-42", "done", "water_plants")
