"""Test-only helpers for the edge: a fake hub that acknowledges like the real one, device
publishers, and the ``hub_broker`` / ``edge_settings`` fixtures (test modules import them:
a ``conftest.py`` here would shadow ``tests/conftest.py`` as the module ``conftest``).

``FakeHub`` subscribes (QoS 1, persistent session) to one edge's events, validates every
batch with ``devices.wire.decode_batch``, stores each seq once and publishes the retained
``ack`` the way DESIGN.md says the hub does: ``stored_through`` = highest contiguous seq
from 1, ``gaps`` = missing ranges below the highest seq seen.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from devices import DeviceDefinition, Topic, action, occupancy, power, switch, temperature
from devices.topics import ack_topic, control_topic, devices_topic, events_topic, status_topic
from devices.wire import decode_batch
from edge import EdgeAgent, EdgeSettings
from simulations.brokers import Mosquitto


def multi_sensor(root: str) -> DeviceDefinition:
    """A JSON device on ``{root}/<device>/state`` exposing one capability of each kind."""
    return DeviceDefinition(
        vendor="test",
        model="multi",
        match=Topic(f"{root}/+/state"),
        exposes=(
            temperature(path="t"),
            occupancy(path="occ"),
            power(path="p"),
            action(path="a"),
            switch(path="sw"),
        ),
    )


def contiguous(seqs: set[int], *, floor: int = 0) -> int:
    n = floor
    while n + 1 in seqs:
        n += 1
    return n


def gaps_of(seqs: set[int], *, floor: int = 0) -> list[list[int]]:
    out: list[list[int]] = []
    prev = floor
    for s in sorted(x for x in seqs if x > floor):
        if s > prev + 1:
            out.append([prev + 1, s - 1])
        prev = s
    return out


@dataclass
class FakeHub:
    host: str
    port: int
    customer: str
    edge: str
    ack: bool = True
    lose_first: Callable[[int], bool] | None = None  # seqs whose first delivery is "lost"
    honour_oldest_seq: bool = True  # seqs below the edge's oldest_seq are lost for good: stop waiting
    lost_below: int = 1
    stored: dict[int, dict[str, Any]] = field(default_factory=dict)
    deliveries: Counter[int] = field(default_factory=Counter)
    batches: list[tuple[float, int]] = field(default_factory=list)  # (monotonic arrival, size)
    statuses: list[dict[str, Any]] = field(default_factory=list)
    inventories: list[list[dict[str, Any]]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    acks_sent: int = 0
    _changed: asyncio.Event = field(default_factory=asyncio.Event)
    _client: aiomqtt.Client | None = None

    @property
    def seqs(self) -> set[int]:
        return set(self.stored)

    @property
    def stored_through(self) -> int:
        return contiguous(set(self.stored), floor=self.lost_below - 1)

    async def run(self) -> None:
        """Receive and acknowledge until cancelled; reconnects when the broker goes away."""
        while True:
            try:
                async with aiomqtt.Client(
                    self.host, self.port, identifier=f"fakehub-{self.customer}-{self.edge}", clean_session=False
                ) as client:
                    self._client = client
                    await client.subscribe(
                        [
                            (events_topic(self.customer, self.edge), 1),
                            (status_topic(self.customer, self.edge), 1),
                            (devices_topic(self.customer, self.edge), 1),
                        ]
                    )
                    async for message in client.messages:
                        await self._on_message(client, str(message.topic), bytes(message.payload))  # type: ignore[arg-type]
            except aiomqtt.MqttError:
                self._client = None
                await asyncio.sleep(0.1)

    async def _on_message(self, client: aiomqtt.Client, topic: str, payload: bytes) -> None:
        if topic.endswith("/status"):
            if payload:
                status = json.loads(payload)
                self.statuses.append(status)
                oldest = status.get("oldest_seq")
                if self.honour_oldest_seq and isinstance(oldest, int) and oldest > self.lost_below:
                    before = self.stored_through
                    self.lost_below = oldest
                    if self.ack and self.stored_through != before:
                        await self.publish_ack(client)
            self._changed.set()
            return
        if topic.endswith("/devices"):
            self.inventories.append(json.loads(payload))
            self._changed.set()
            return
        try:
            batch = decode_batch(payload, customer_id=self.customer, edge_id=self.edge)
        except Exception as exc:  # the test asserts there were none
            self.errors.append(f"{type(exc).__name__}: {exc}")
            return
        self.batches.append((time.monotonic(), len(batch.events)))
        for event in batch.events:
            self.deliveries[event.seq] += 1
            if self.lose_first is not None and self.deliveries[event.seq] == 1 and self.lose_first(event.seq):
                continue
            self.stored.setdefault(event.seq, event.model_dump())
        if self.ack:
            await self.publish_ack(client)
        self._changed.set()

    async def publish_ack(self, client: aiomqtt.Client | None = None, *, stored_through: int | None = None) -> None:
        client = client or self._client
        assert client is not None, "fake hub is not connected"
        seqs = set(self.stored)
        doc = {
            "stored_through": self.stored_through if stored_through is None else stored_through,
            "ts": time.time(),
            "gaps": gaps_of(seqs, floor=self.lost_below - 1),
        }
        await client.publish(ack_topic(self.customer, self.edge), json.dumps(doc), qos=1, retain=True)
        self.acks_sent += 1

    async def control(self, doc: dict[str, Any]) -> None:
        assert self._client is not None, "fake hub is not connected"
        await self._client.publish(control_topic(self.customer, self.edge), json.dumps(doc), qos=1)

    async def wait_for(self, predicate: Callable[[], bool], *, timeout: float = 20.0, what: str = "") -> None:
        """Wait until ``predicate()`` holds, re-checking on every message (and every 0.1 s)."""
        async with asyncio.timeout(timeout):
            while not predicate():
                self._changed.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(0.1):
                        await self._changed.wait()
        assert predicate(), what


@asynccontextmanager
async def background(coro_fn: Callable[[], Any]) -> AsyncIterator[asyncio.Task[Any]]:
    """Run ``coro_fn()`` as a task for the block's duration, cancelling it afterwards."""
    async with asyncio.TaskGroup() as tg:
        task = tg.create_task(coro_fn())
        try:
            yield task
        finally:
            task.cancel()


@asynccontextmanager
async def running(agent: EdgeAgent, *, timeout: float = 15.0) -> AsyncIterator[EdgeAgent]:
    """Run the agent in the background until the block ends; ready and connected on entry."""
    async with background(agent.run) as task:
        async with asyncio.timeout(timeout):
            while agent.uplink is None and not task.done():
                await asyncio.sleep(0.01)
            await agent.ready.wait()
            assert agent.uplink is not None
            await agent.uplink.connected.wait()
        yield agent


class Devices:
    """Publishes device JSON on the local broker at QoS 1."""

    def __init__(self, client: aiomqtt.Client, root: str) -> None:
        self.client = client
        self.root = root
        self.sent = 0

    async def publish(self, device: str, doc: dict[str, Any] | bytes, *, topic: str | None = None) -> None:
        payload = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
        await self.client.publish(topic or f"{self.root}/{device}/state", payload, qos=1)
        self.sent += 1


@asynccontextmanager
async def devices(host: str, port: int, root: str) -> AsyncIterator[Devices]:
    async with aiomqtt.Client(host, port) as client:
        yield Devices(client, root)


# Timings shrunk so resends, status refreshes and reconnects happen within a test's seconds.
FAST_UPLINK = {
    "resend_after_s": 1.0,
    "status_interval_s": 1.0,
    "inventory_debounce_s": 0.1,
    "backoff_initial_s": 0.1,
    "backoff_max_s": 1.0,
    "shutdown_timeout_s": 3.0,
}
FAST_LOCAL = {"backoff_initial_s": 0.1, "backoff_max_s": 1.0}


@pytest.fixture
def hub_broker(mosquitto_factory: Callable[..., Mosquitto]) -> Mosquitto:
    """A broker of its own for the hub side: hub tests subscribe to ``genius/v1/+/+/…`` on the
    shared broker, so edge tests keep their hub traffic (and retained documents) off it."""
    return mosquitto_factory()


@pytest.fixture
def edge_settings(
    mosquitto: Mosquitto, hub_broker: Mosquitto, prefix: str, tmp_path: Path
) -> Callable[..., EdgeSettings]:
    """``edge_settings(**overrides)``: customer ``prefix``, edge ``e1``; local devices on the
    shared broker, the hub side on ``hub_broker``."""

    def make(*, hub: Mosquitto | None = None, uplink: dict[str, Any] | None = None, **over: Any) -> EdgeSettings:
        outbox = {"path": tmp_path / "outbox.db", **over.pop("outbox", {})}
        return EdgeSettings.load(
            None,
            customer=prefix,
            edge="e1",
            local_broker=mosquitto.url,
            hub_broker=(hub or hub_broker).url,
            outbox=outbox,
            uplink={**FAST_UPLINK, **(uplink or {})},
            local=FAST_LOCAL,
            **over,
        )

    return make
