"""A test-only fake edge: builds ``EventBatch`` JSON and delivers it the way an edge does.

``deliver`` publishes batches at QoS 1, watches the retained ``ack`` and resends whatever
the ack does not cover (after a quiet period, or when the ack reports gaps), until every
seq is covered or the time is up: at-least-once on the wire, as DESIGN.md asks of edges.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import aiomqtt

from devices.topics import ack_topic, devices_topic, events_topic, status_topic

CAPS: tuple[tuple[str, Any], ...] = (
    ("occupancy", True),
    ("temperature", 21.5),
    ("contact", True),
    ("power", 12.0),
    ("action", "single"),
    ("occupancy", False),
    ("humidity", 40.0),
    ("switch", True),
)


def event(seq: int, *, ts: float | None = None, device: str | None = None, capability: str | None = None,
          value: Any = None, room: str | None = "living") -> dict[str, Any]:
    cap, default = CAPS[seq % len(CAPS)]
    return {
        "seq": seq,
        "ts": float(1_700_000_000 + seq) if ts is None else float(ts),
        "device": device or f"dev{seq % 7}",
        "capability": capability or cap,
        "value": default if value is None and capability is None else value,
        "room": room,
    }


def batch(customer: str, edge: str, events: Sequence[dict[str, Any]], *, sent_at: float = 1_700_000_000.0) -> bytes:
    return json.dumps(
        {"schema": "genius.events/1", "customer_id": customer, "edge_id": edge, "sent_at": sent_at,
         "events": list(events)}
    ).encode()


def seq_batch(customer: str, edge: str, first: int, n: int, **kw: Any) -> bytes:
    return batch(customer, edge, [event(s, **kw) for s in range(first, first + n)])


def batches(customer: str, edge: str, total: int, size: int) -> dict[int, bytes]:
    """``{first_seq: payload}`` covering seqs 1..total in batches of ``size``."""
    return {first: seq_batch(customer, edge, first, min(size, total - first + 1)) for first in range(1, total + 1, size)}


@dataclass
class AckView:
    stored_through: int = 0
    gaps: list[list[int]] | None = None
    count: int = 0  # acks seen
    rounds: int = 0  # publish rounds (1 = nothing had to be resent)
    resent: int = 0  # batches published again


def client(url_host: str, port: int, ident: str | None = None) -> aiomqtt.Client:
    c = aiomqtt.Client(url_host, port, identifier=ident, timeout=10, max_inflight_messages=100)
    c.pending_calls_threshold = 10_000  # many concurrent publishes are the point here
    return c


async def wait_ack(
    c: aiomqtt.Client, customer: str, edge: str, *, through: int, timeout: float = 10.0
) -> dict[str, Any]:
    """Subscribe to the edge's retained ack and return the first one with ``stored_through >= through``."""
    topic = ack_topic(customer, edge)
    await c.subscribe(topic, qos=1)
    try:
        async with asyncio.timeout(timeout):
            async for msg in c.messages:
                if msg.topic.value != topic:
                    continue
                doc = json.loads(msg.payload)  # type: ignore[arg-type]
                if doc["stored_through"] >= through:
                    return doc
    finally:
        await c.unsubscribe(topic)
    raise AssertionError("unreachable")


async def publish(c: aiomqtt.Client, customer: str, edge: str, payloads: Sequence[bytes], *, window: int = 100) -> None:
    """Publish at QoS 1, up to ``window`` at once (as fast as the broker takes them), in order of start."""
    topic = events_topic(customer, edge)
    for i in range(0, len(payloads), window):
        async with asyncio.TaskGroup() as tg:
            for p in payloads[i : i + window]:
                tg.create_task(c.publish(topic, p, qos=1))


async def publish_status(c: aiomqtt.Client, customer: str, edge: str, doc: dict[str, Any]) -> None:
    await c.publish(status_topic(customer, edge), json.dumps(doc).encode(), qos=1, retain=True)


async def publish_devices(c: aiomqtt.Client, customer: str, edge: str, docs: list[dict[str, Any]]) -> None:
    await c.publish(devices_topic(customer, edge), json.dumps(docs).encode(), qos=1, retain=True)


async def deliver(
    host: str,
    port: int,
    customer: str,
    edge: str,
    payloads: dict[int, bytes],
    *,
    total: int,
    quiet_s: float = 1.0,
    timeout: float = 60.0,
    shuffle: bool = False,
    max_rounds: int = 200,
    on_published: Callable[[int], None] | None = None,
) -> AckView:
    """Publish every batch, then resend what the ack does not cover until ``total`` is covered.

    ``payloads`` maps each batch's first seq to its JSON; batches are consecutive runs.
    """
    view = AckView()
    topic = ack_topic(customer, edge)
    lasts = {first: first + len(json.loads(p)["events"]) - 1 for first, p in payloads.items()}
    async with client(host, port) as c:
        await c.subscribe(topic, qos=1)
        async with asyncio.timeout(timeout):
            todo = sorted(payloads)
            for _ in range(max_rounds):
                if shuffle:
                    random.shuffle(todo)
                view.rounds += 1
                if view.rounds > 1:
                    view.resent += len(todo)
                await publish(c, customer, edge, [payloads[f] for f in todo])
                if on_published is not None:
                    on_published(view.rounds)
                try:  # take acks until everything is covered or they stop coming
                    async with asyncio.timeout(quiet_s):
                        async for msg in c.messages:
                            doc = json.loads(msg.payload)  # type: ignore[arg-type]
                            view.stored_through = max(view.stored_through, doc["stored_through"])
                            view.gaps = doc.get("gaps", [])
                            view.count += 1
                            if view.stored_through >= total:
                                return view
                except TimeoutError:
                    pass
                todo = [f for f in sorted(payloads) if _uncovered(f, lasts[f], view)]
    raise AssertionError(f"not covered after {max_rounds} rounds: {view}")


def _uncovered(first: int, last: int, view: AckView) -> bool:
    """Whether a batch may hold seqs the hub lacks: it overlaps a gap or lies above them all."""
    if last <= view.stored_through:
        return False
    gaps = view.gaps or []
    if any(first <= b and a <= last for a, b in gaps):
        return True
    return not gaps or last > gaps[-1][1]
