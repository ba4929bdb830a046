"""Anticipations as Home Assistant entities on the local broker; feedback from HA to the hub broker.

A real edge agent between two real Mosquitto brokers (local and hub); the test plays the hub
(publishing the retained anticipation) and Home Assistant (reading discovery, pressing).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiomqtt

from devices.topics import anticipations_topic, feedback_topic
from devices.wire import Feedback
from edge import EdgeAgent, EdgeSettings
from simulations.brokers import Mosquitto

from edge_testkit import edge_settings, hub_broker, running  # noqa: F401 (fixtures)

ANTICIPATION = {
    "id": "ant-1",
    "market": "home:weekday",
    "ts": 1_700_000_000.0,
    "model": "casas@1",
    "jobs": [
        {"job": "make_tea", "probability": 0.2, "expected_in_s": 900.0, "because": ["kettle idle"]},
        {"job": "cook_dinner", "probability": 0.7, "expected_in_s": 600.0,
         "because": ["kitchen occupied", "18:00 on a weekday"]},
    ],
}


def _settings(make: Callable[..., EdgeSettings], prefix: str, **home: Any) -> EdgeSettings:
    return make(home={"discovery_prefix": f"{prefix}/ha", "topic_base": f"{prefix}/genius",
                      "retry_initial_s": 0.1, "retry_max_s": 0.5, "availability_poll_s": 0.05, **home})


class Watcher:
    """A client on one broker remembering the last payload (and retain flag) per topic."""

    def __init__(self, client: aiomqtt.Client) -> None:
        self.client = client
        self.last: dict[str, bytes] = {}
        self.count: dict[str, int] = {}
        self._changed = asyncio.Event()

    async def run(self) -> None:
        async for msg in self.client.messages:
            topic = msg.topic.value
            self.last[topic] = bytes(msg.payload)  # type: ignore[arg-type]
            self.count[topic] = self.count.get(topic, 0) + 1
            self._changed.set()

    async def until(self, predicate: Callable[[], bool], *, timeout: float = 15.0, what: str = "") -> None:
        async with asyncio.timeout(timeout):
            while not predicate():
                self._changed.clear()
                await self._changed.wait()

    def json(self, topic: str) -> Any:
        return json.loads(self.last[topic])


@contextlib.asynccontextmanager
async def watching(broker: Mosquitto, *topics: str, ident: str | None = None) -> AsyncIterator[Watcher]:
    async with aiomqtt.Client(broker.host, broker.port, identifier=ident) as client:
        await client.subscribe([(t, 1) for t in topics])
        watcher = Watcher(client)
        async with asyncio.TaskGroup() as tg:
            task = tg.create_task(watcher.run())
            try:
                yield watcher
            finally:
                task.cancel()


async def _anticipate(broker: Mosquitto, customer: str, doc: dict[str, Any] | None = None) -> None:
    async with aiomqtt.Client(broker.host, broker.port) as c:
        payload = json.dumps({"customer_id": customer, **(doc or ANTICIPATION)}).encode()
        await c.publish(anticipations_topic(customer), payload, qos=1, retain=True)


async def test_anticipation_appears_as_ha_entities_with_discovery_json(
    edge_settings: Callable[..., EdgeSettings], mosquitto: Mosquitto, hub_broker: Mosquitto, prefix: str,  # noqa: F811
) -> None:
    await _anticipate(hub_broker, prefix)
    agent = EdgeAgent(_settings(edge_settings, prefix), sessions=[])
    async with watching(mosquitto, f"{prefix}/ha/#", f"{prefix}/genius/#") as ha, running(agent):
        assert agent.home is not None
        t = agent.home.topics
        await ha.until(lambda: ha.last.get(t.state) == b"cook_dinner" and t.attributes in ha.last)
        sensor, select = ha.json(f"{prefix}/ha/sensor/genius_e1/next_job/config"), ha.json(
            f"{prefix}/ha/select/genius_e1/feedback/config")
        assert sensor["state_topic"] == t.state and sensor["json_attributes_topic"] == t.attributes
        assert select["command_topic"] == t.command and select["options"] == ["accept", "dismiss", "done"]
        for conf in (sensor, select):
            assert conf["availability_topic"] == f"{prefix}/genius/availability"
            assert (conf["payload_available"], conf["payload_not_available"]) == ("online", "offline")
            assert conf["device"]["identifiers"] == [f"genius_{prefix}_e1"] and conf["unique_id"]
        attributes = ha.json(t.attributes)
        assert attributes["probability"] == 0.7 and attributes["expected_in_s"] == 600.0
        assert attributes["because"] == ["kitchen occupied", "18:00 on a weekday"]
        assert (attributes["market"], attributes["model"], attributes["anticipation_id"]) == (
            "home:weekday", "casas@1", "ant-1")
        await ha.until(lambda: ha.last.get(t.availability) == b"online")
        # A new anticipation replaces the state; a cleared one (erasure) shows none.
        await _anticipate(hub_broker, prefix, {**ANTICIPATION, "id": "ant-2", "jobs": [ANTICIPATION["jobs"][0]]})
        await ha.until(lambda: ha.last.get(t.state) == b"make_tea")
        async with aiomqtt.Client(hub_broker.host, hub_broker.port) as c:
            await c.publish(anticipations_topic(prefix), b"", qos=1, retain=True)
        await ha.until(lambda: ha.last.get(t.state) == b"none")
    # A graceful stop marks the entities unavailable (retained).
    async with watching(mosquitto, f"{prefix}/genius/availability") as after:
        await after.until(lambda: after.last.get(f"{prefix}/genius/availability") == b"offline", timeout=5)


async def test_discovery_is_announced_again_when_home_assistant_comes_online(
    edge_settings: Callable[..., EdgeSettings], mosquitto: Mosquitto, prefix: str,  # noqa: F811
) -> None:
    agent = EdgeAgent(_settings(edge_settings, prefix), sessions=[])
    config = f"{prefix}/ha/sensor/genius_e1/next_job/config"
    async with running(agent):
        assert agent.home is not None
        async with asyncio.timeout(10):
            await agent.home.ready.wait()  # announced once: the watcher below sees the retained copy
        async with watching(mosquitto, config) as ha:
            await ha.until(lambda: ha.count.get(config, 0) >= 1)
            await _announce_again(agent, mosquitto, prefix, ha, config)


async def _announce_again(agent: EdgeAgent, mosquitto: Mosquitto, prefix: str, ha: Watcher, config: str) -> None:
    assert agent.home is not None
    before, announced = ha.count[config], agent.home.announcements
    async with aiomqtt.Client(mosquitto.host, mosquitto.port) as c:
        await c.publish(f"{prefix}/ha/status", b"online", qos=1)
    await ha.until(lambda: ha.count.get(config, 0) > before)
    assert agent.home.announcements == announced + 1
    assert ha.json(config)["name"] == "Next job"


async def test_availability_follows_the_hub_broker(
    edge_settings: Callable[..., EdgeSettings], mosquitto: Mosquitto, hub_broker: Mosquitto, prefix: str,  # noqa: F811
) -> None:
    agent = EdgeAgent(_settings(edge_settings, prefix), sessions=[])
    availability = f"{prefix}/genius/availability"
    async with running(agent), watching(mosquitto, availability) as ha:
        await ha.until(lambda: ha.last.get(availability) == b"online")
        await asyncio.to_thread(hub_broker.stop)
        await ha.until(lambda: ha.last.get(availability) == b"offline", what="offline when the hub is gone")
        await asyncio.to_thread(hub_broker.start)
        await ha.until(lambda: ha.last.get(availability) == b"online", what="online again")


async def test_feedback_pressed_in_ha_reaches_the_hub_broker_even_after_an_outage(
    edge_settings: Callable[..., EdgeSettings], mosquitto: Mosquitto, hub_broker: Mosquitto, prefix: str,  # noqa: F811
) -> None:
    await _anticipate(hub_broker, prefix)
    agent = EdgeAgent(_settings(edge_settings, prefix), sessions=[])
    hub_id = f"hubside-{prefix}"
    # The hub's side: a persistent QoS 1 session on the feedback topic, as the real hub has.
    async with aiomqtt.Client(hub_broker.host, hub_broker.port, identifier=hub_id, clean_session=False) as c:
        await c.subscribe(feedback_topic(prefix), qos=1)
    async with running(agent), watching(mosquitto, f"{prefix}/genius/next_job/state") as ha:
        home = agent.home
        assert home is not None
        await ha.until(lambda: ha.last.get(home.topics.state) == b"cook_dinner")
        await asyncio.to_thread(hub_broker.stop)
        async with aiomqtt.Client(mosquitto.host, mosquitto.port) as c:
            await c.publish(home.topics.command, b"accept", qos=1)
            await c.publish(home.topics.command, b"maybe", qos=1)  # not an option: dead letter
        async with asyncio.timeout(10):
            while len(home.feedback) < 1:
                await asyncio.sleep(0.02)
        assert home.sent == 0  # held while the hub broker is away
        await asyncio.to_thread(hub_broker.start)
        async with asyncio.timeout(15):
            while home.sent < 1:
                await asyncio.sleep(0.05)
        assert not home.feedback
        assert agent.dead_letters.by_reason[("home", "schema")] == 1
    async with aiomqtt.Client(hub_broker.host, hub_broker.port, identifier=hub_id, clean_session=False) as c:
        async with asyncio.timeout(10):
            msg = await anext(c.messages)
    fb = Feedback.model_validate_json(bytes(msg.payload))  # type: ignore[arg-type]
    assert (fb.anticipation_id, fb.verdict, fb.job) == ("ant-1", "accepted", "cook_dinner")
