"""Malformed input on both sides of a running edge and hub: dead letters and counters, no crash, no loss.

Hypothesis generates the bad input up front (a fixed number of examples, then published
interleaved with a simulated home's good traffic): bytes and JSON on the adapters' own topics
of the home's local broker, and broken ``EventBatch`` documents straight on the hub broker.
An oracle keeps only input that *must* be refused (a fresh adapter session raises
``PayloadError``; ``decode_wire_batch`` raises ``ValidationFailed``), so every example has to
come back as exactly one dead letter on its side.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import aiomqtt
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from devices.adapter import AdapterSession, first_session
from devices.errors import PayloadError, ValidationFailed
from devices.registry import load_registry
from devices.topics import events_topic
from e2e_kit import E2E, Feed, assert_feed_stored, device_client, e2e, home_feed, publish  # noqa: F401 (fixture)
from hub.store import Store
from hub.validation import decode_wire_batch

T = TypeVar("T")

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
# Keys the adapters read (zigbee2mqtt, Tasmota, Shelly Gen2), to reach their value converters.
KEYS = ("occupancy", "contact", "temperature", "humidity", "power", "energy", "state", "action", "battery",
        "illuminance", "ENERGY", "POWER", "Power", "Total", "output", "apower", "aenergy", "tC")


def harvest(strategy: st.SearchStrategy[T], n: int, *, derandomize: bool = True) -> list[T]:
    """``n`` examples of ``strategy``, drawn by Hypothesis (deterministic unless told otherwise)."""
    out: list[T] = []

    @settings(max_examples=n, database=None, derandomize=derandomize, phases=[Phase.generate], deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(strategy)
    def collect(example: T) -> None:
        out.append(example)

    collect()
    return out


def local_oracle(feed: Feed) -> Callable[[tuple[str, bytes]], bool]:
    """True for a (topic, payload) the home's adapters must refuse (after its discovery)."""
    sessions: list[AdapterSession] = load_registry(strict=True).sessions()
    for msg in feed.discovery:
        session = first_session(sessions, msg.topic)
        assert session is not None
        session.handle(msg.topic, msg.payload, ts=msg.ts)

    def refused(item: tuple[str, bytes]) -> bool:
        topic, payload = item
        session = first_session(sessions, topic)
        assert session is not None, topic
        try:
            session.handle(topic, payload, ts=1.0)
        except PayloadError:
            return True
        return False

    return refused


def local_garbage(feed: Feed) -> st.SearchStrategy[tuple[str, bytes]]:
    """Bad payloads on one state topic of each device family the home has."""
    families = ("zigbee2mqtt/", "tele/", "/status/switch:", "/sensor/illuminance/state")
    topics = sorted({next(m.topic for m in feed.stream if f in m.topic and "bridge" not in m.topic) for f in families})
    payloads = st.one_of(
        st.binary(max_size=120),
        st.text(max_size=40).map(str.encode),
        JSON.map(lambda v: json.dumps(v).encode()),
        st.dictionaries(st.sampled_from(KEYS), JSON, min_size=1, max_size=3).map(lambda d: json.dumps(d).encode()),
    )
    return st.tuples(st.sampled_from(topics), payloads).filter(local_oracle(feed))


def hub_garbage(customer: str, edge: str) -> st.SearchStrategy[tuple[str, bytes]]:
    """Broken ``EventBatch`` documents on the real edge's events topic and on a stranger's."""
    event = {"seq": 10**12, "ts": 1.7e9, "device": "fuzz", "capability": "power", "value": 1.0, "room": "r"}
    batch: dict[str, Any] = {"schema": "genius.events/1", "customer_id": customer, "edge_id": edge,
                             "sent_at": 1.7e9, "events": [event]}

    def with_key(doc: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
        return {**doc, key: value}

    def dumps(doc: Any) -> bytes:
        return json.dumps(doc).encode()

    documents = st.one_of(
        st.binary(max_size=200),
        JSON.map(dumps),
        st.tuples(st.sampled_from([*batch, "extra"]), JSON).map(lambda kv: dumps(with_key(batch, *kv))),
        st.sampled_from(list(batch)).map(lambda k: dumps({x: v for x, v in batch.items() if x != k})),
        st.tuples(st.sampled_from([*event, "extra"]), JSON).map(
            lambda kv: dumps(with_key(batch, "events", [with_key(event, *kv)]))),
        st.sampled_from(["customer_id", "edge_id"]).map(lambda k: dumps(with_key(batch, k, "someone-else"))),
    )
    topics = st.sampled_from([events_topic(customer, edge), events_topic(customer, "stranger")])

    def refused(item: tuple[str, bytes]) -> bool:
        topic, payload = item
        _, _, c, e, _ = topic.split("/")
        try:
            decode_wire_batch(payload, customer_id=c, edge_id=e)
        except ValidationFailed:
            return True
        return False

    return st.tuples(topics, documents).filter(refused)


async def _malformed_input_on_both_sides(e2e: E2E, *, local_n: int, hub_n: int, derandomize: bool) -> None:
    feed = home_feed(5)
    local_bad = harvest(local_garbage(feed), local_n, derandomize=derandomize)
    hub_bad = harvest(hub_garbage(feed.customer_id, feed.edge_id), hub_n, derandomize=derandomize)
    assert len(local_bad) == local_n and len(hub_bad) == hub_n
    # The bad local messages go in among the good ones, at random places.
    rng = random.Random(5)
    mixed: list[tuple[str, bytes]] = [(m.topic, m.payload) for m in feed.stream]
    for item in local_bad:
        mixed.insert(rng.randrange(len(mixed) + 1), item)

    hub = e2e.start_hub()
    edge = e2e.start_feed_edge(feed)
    async with device_client(edge.local) as dev:
        await publish(dev, feed.discovery, retain=True)
        await e2e.devices_known(edge, feed.discovered)
        assert hub.broker is not None
        async with device_client(hub.broker) as intruder, asyncio.TaskGroup() as tg:
            tg.create_task(_spread(dev, mixed, parts=20))
            tg.create_task(_spread(intruder, hub_bad, parts=20))
    await e2e.all_delivered(timeout=60, events={feed.edge_id: feed.events})
    assert edge.process.alive and hub.process is not None and hub.process.alive

    # Not one good event lost or doubled among the bad ones …
    await assert_feed_stored(e2e, feed, edge)

    # … every bad local message is one dead letter at the edge, counted by reason …
    async def edge_counted() -> bool:
        report = edge.report()
        return report is not None and report["dead_letters"] >= local_n

    await e2e.eventually(edge_counted, timeout=10, what="the edge's dead letters")
    report = edge.report()
    assert report is not None
    assert report["dead_letters"] == local_n == sum(report["dead_letters_by_reason"].values())
    assert set(report["dead_letters_by_reason"]) <= {"local:json", "local:schema", "local:value", "local:size"}

    # … the edge tells the hub how many it has, and every bad batch is one dead letter at the hub.
    async def hub_counted() -> bool:
        status = await hub.status_json()
        return sum(status["dead_letters"].values()) >= hub_n and await _edge_reported(hub.db, feed.edge_id) >= local_n

    await e2e.eventually(hub_counted, timeout=10, what="the hub's dead letters and the edge's status")
    status = await hub.status_json()
    assert sum(status["dead_letters"].values()) == hub_n, status["dead_letters"]
    assert await _edge_reported(hub.db, feed.edge_id) == local_n
    assert [e["edge_id"] for e in status["edges"]] == [feed.edge_id]  # the stranger never became an edge
    assert await e2e.stop_all() == {edge.process.name: 0, "hub": 0}


async def _spread(client: aiomqtt.Client, items: list[tuple[str, bytes]], *, parts: int) -> None:
    size = -(-len(items) // parts)
    for i in range(0, len(items), size):
        await publish(client, items[i : i + size])
        await asyncio.sleep(0.05)


async def _edge_reported(db: Path, edge_id: str) -> int:
    """The dead-letter count in the last status the edge published, as the hub stored it."""
    async with Store(db, readonly=True) as store:
        async with store.db.execute("SELECT status FROM edges WHERE edge_id = ?", (edge_id,)) as cur:
            row = await cur.fetchone()
    return 0 if row is None or row[0] is None else int(json.loads(row[0]).get("dead_letters", 0))


async def test_malformed_local_payloads_and_hub_batches_become_dead_letters_and_lose_no_good_event(
    e2e: E2E,
) -> None:
    await _malformed_input_on_both_sides(e2e, local_n=150, hub_n=100, derandomize=True)


@pytest.mark.slow
async def test_many_random_malformed_inputs_become_dead_letters_and_lose_no_good_event(e2e: E2E) -> None:
    await _malformed_input_on_both_sides(e2e, local_n=2000, hub_n=1500, derandomize=False)
