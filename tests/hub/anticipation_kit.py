"""Test kit for hub anticipation: a model artifact, events the model knows, hub settings.

``model_path`` is the shipped artifact when there is one; otherwise a tiny model is trained
once per test session from a few simulated customers (about half a minute), so these tests
run before (and independently of) the shipped artifact; ``GENIUS_TEST_MODEL`` names another.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from devices.topics import anticipations_topic, events_topic
from devices.wire import Anticipation
from hub.service import Hub
from hub.settings import HubSettings
from models.artifact import default_artifact
from simulations.brokers import Mosquitto

_TRAINED: list[Path] = []


@pytest.fixture(scope="session")
def model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if os.environ.get("GENIUS_TEST_MODEL"):  # a prepared artifact saves the training
        return Path(os.environ["GENIUS_TEST_MODEL"])
    shipped = default_artifact()
    if (shipped / "meta.json").is_file():
        return shipped
    if not _TRAINED:
        from models.artifact import export
        from models.train import TrainConfig, train
        from simulations.export import simulate_dataset

        dataset = simulate_dataset(4, 10, 7)
        model = train(dataset, config=TrainConfig(updates=400, max_epochs=8, min_epochs=2))
        folder = tmp_path_factory.mktemp("model") / "genius-test-0.0.1"
        _TRAINED.append(export(model, folder, name="genius-test", version="0.0.1", trained_on={"note": "tests"}))
    return _TRAINED[0]


def hub_settings(url: str, db: Path, client_id: str, model: Path, **anticipation: Any) -> HubSettings:
    section = {"model_path": model, "debounce_s": 0.2, "feedback_poll_s": 0.1, **anticipation}
    return HubSettings.load(broker={"url": url, "client_id": client_id}, store={"path": db}, anticipation=section)


def morning_events(first_seq: int, *, now: float | None = None, n: int = 12) -> list[dict[str, Any]]:
    """Kitchen and bedroom activity of the last minutes, with devices the simulated model knows."""
    now = time.time() if now is None else now
    plan = [
        ("bedroom/motion", "occupancy", True, "bedroom"),
        ("hallway/motion", "occupancy", True, "hallway"),
        ("kitchen/motion", "occupancy", True, "kitchen"),
        ("kitchen/coffee_machine", "power", 900.0, "kitchen"),
        ("kettle", "power", 1800.0, "kitchen"),
        ("kitchen/fridge", "contact", False, "kitchen"),
    ]
    out = []
    for i in range(n):
        device, cap, value, room = plan[i % len(plan)]
        out.append({"seq": first_seq + i, "ts": now - (n - i) * 5.0, "device": device, "capability": cap,
                    "value": value, "room": room})
    return out


def batch(customer: str, edge: str, events: list[dict[str, Any]]) -> bytes:
    return json.dumps({"schema": "genius.events/1", "customer_id": customer, "edge_id": edge,
                       "sent_at": time.time(), "events": events}).encode()


async def next_anticipation(
    c: aiomqtt.Client, topic: str, *, timeout: float = 15.0, not_ids: tuple[str, ...] = ()
) -> Anticipation:
    """The next anticipation on ``topic`` whose id is not in ``not_ids`` (within ``timeout``)."""
    async with asyncio.timeout(timeout):
        async for msg in c.messages:
            if msg.topic.value == topic and msg.payload:
                antic = Anticipation.model_validate_json(msg.payload)  # type: ignore[arg-type]
                if antic.id not in not_ids:
                    return antic
    raise AssertionError("unreachable")


@contextlib.asynccontextmanager
async def first_anticipation(
    broker: Mosquitto, db: Path, client_id: str, model: Path, customer: str, edge: str, **anticipation: Any
) -> AsyncIterator[tuple[Hub, aiomqtt.Client, Anticipation]]:
    """A running hub, a client subscribed to the customer's anticipations, and the first one.

    The first comes from a batch of ``morning_events(1)``; the retained topic is cleared after.
    """
    from .helpers import running_hub

    topic = anticipations_topic(customer)
    async with running_hub(hub_settings(broker.url, db, client_id, model, **anticipation)) as hub:
        assert hub.anticipation is not None
        async with aiomqtt.Client(broker.host, broker.port) as c:
            await c.subscribe(topic, qos=1)
            await c.publish(events_topic(customer, edge), batch(customer, edge, morning_events(1)), qos=1)
            yield hub, c, await next_anticipation(c, topic)
            await c.publish(topic, b"", qos=1, retain=True)  # leave the broker clean
