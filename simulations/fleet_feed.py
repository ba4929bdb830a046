"""``Feeder``: the simulated customers' devices, publishing on the local broker in simulated time.

Every device message of every customer is published (QoS 1) under its edge's topic root
when the ``SimClock`` reaches its timestamp, retained discovery first. The ``FeedLedger``
records what was published and the canonical events each message must become: the ground
truth the fleet report compares with the hub's store. Local faults are injected here:
a message published twice (a device repeating itself: both copies are real readings),
two messages of one edge swapped, and malformed payloads on real device topics (marked
with ``FAULT_MARK`` so the report can tell them from good messages an edge rejected).
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import random
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

import aiomqtt

from edge.settings import BrokerSettings

from .customer import CustomerSimulation, SimEvent
from .fleet_clock import SimClock
from .fleet_topics import EdgeNamespace
from .payloads import WireMessage, announce

__all__ = ["FAULT_MARK", "EventKey", "FeedLedger", "Feeder", "LocalFaults", "event_key", "malformed_payload"]

log = logging.getLogger(__name__)

FAULT_MARK = b"genius-fault"
EventKey = tuple[str, str, str, bool | float | str]  # (edge, device, capability, value)
_MAX_INFLIGHT = 64
_SLEEP_MIN_S = 0.005  # a loop busy with many edges wakes a sleeper late; don't sleep for less


def malformed_payload(topic: str) -> bytes:
    """A payload no adapter can read (truncated JSON, not a number either), marked as injected."""
    del topic  # one shape breaks every adapter's decoder; the topic is kept for future variety
    return b'{"' + FAULT_MARK + b'": '


def event_key(edge_id: str, device: str, capability: str, value: bool | float | str) -> EventKey:
    """What identifies an event's content regardless of when it was stamped (floats to 6 places)."""
    if isinstance(value, float):
        value = round(value, 6)
    return (edge_id, device, capability, value)


@dataclass(frozen=True, slots=True)
class LocalFaults:
    duplicate_p: float = 0.0  # a data message published twice
    reorder_p: float = 0.0  # a data message held back behind its edge's next one
    malformed_rate: float = 0.0  # after a data message, a malformed one on the same topic


@dataclass(slots=True)
class FeedLedger:
    """What the devices published, and the events the hub should end up holding."""

    messages: Counter[str] = field(default_factory=Counter)  # per edge, every publish
    expected: Counter[EventKey] = field(default_factory=Counter)
    malformed: Counter[str] = field(default_factory=Counter)  # per edge
    duplicated: int = 0
    reordered: int = 0  # messages published after a newer one of the same edge
    first_ts: float | None = None
    last_ts: float | None = None
    max_lag_s: float = 0.0  # simulated seconds a message went out after its timestamp

    @property
    def expected_events(self) -> int:
        return sum(self.expected.values())


class Feeder:
    """Publishes ``sims``' messages in ``[start, end)`` as ``clock`` reaches them.

    Retained discovery of every place goes first (``announced`` is set once the broker has
    it all), then the feeder waits for ``go()``: the caller lets the edges learn their
    devices first, as real edges find discovery already retained when devices report.
    The plan covers ``[start, end)`` (the simulator plans whole windows: the same window gives
    the same days); only messages in ``[feed_from, until)`` are published. ``run`` returns once
    the last one is out.
    """

    def __init__(
        self,
        sims: Iterable[CustomerSimulation],
        spaces: dict[str, EdgeNamespace],
        *,
        broker: str,
        clock: SimClock,
        start: float,
        end: float,
        feed_from: float | None = None,
        until: float | None = None,
        faults: LocalFaults = LocalFaults(),
        seed: int = 0,
        client_id: str = "genius-sim-devices",
    ) -> None:
        self.sims = list(sims)
        self.spaces = spaces
        self.broker = BrokerSettings.model_validate(broker)  # mqtt://[user:password@]host:port
        self.clock = clock
        self.start = start
        self.end = end
        self.feed_from = start if feed_from is None else feed_from
        self.until = end if until is None else min(until, end)
        self.faults = faults
        self.rng = random.Random(seed)
        self.client_id = client_id
        self.ledger = FeedLedger()
        self.retained: Counter[str] = Counter()  # discovery messages per edge
        self.announced = asyncio.Event()
        self.done = asyncio.Event()
        self._go = asyncio.Event()

    def _stream(self) -> Iterator[tuple[WireMessage, list[SimEvent]]]:
        streams = (s.run_with_events(self.start, self.end, discovery=False) for s in self.sims)
        return heapq.merge(*streams, key=lambda p: p[0].ts)

    def go(self) -> None:
        """Start the device traffic (after ``announced``; the clock should be running)."""
        self._go.set()

    async def run(self) -> None:
        """Publish every place's retained discovery, set ``announced``, wait for ``go``, then feed."""
        client = aiomqtt.Client(**self.broker.client_kwargs(), identifier=self.client_id,
                                max_inflight_messages=_MAX_INFLIGHT)
        client.pending_calls_threshold = _MAX_INFLIGHT + 16  # our own window bounds them
        async with client:
            window = asyncio.BoundedSemaphore(_MAX_INFLIGHT)
            async with asyncio.TaskGroup() as tg:

                async def publish(topic: str, payload: bytes, retain: bool) -> None:
                    try:
                        await client.publish(topic, payload, qos=1, retain=retain)
                    finally:
                        window.release()

                async def send(msg: WireMessage, payload: bytes | None = None) -> None:
                    topic, body = self.spaces[msg.edge_id].localise(msg)
                    await window.acquire()  # tasks start in order, so paho sends in order
                    tg.create_task(publish(topic, body if payload is None else payload, msg.retain))
                    self.ledger.messages[msg.edge_id] += 1

                for sim in self.sims:
                    for place in sim.spec.places:
                        for msg in announce(place, self.start):
                            topic, body = self.spaces[msg.edge_id].localise(msg)
                            await client.publish(topic, body, qos=1, retain=True)  # one by one: all acked
                            self.ledger.messages[msg.edge_id] += 1
                            self.retained[msg.edge_id] += 1
                self.announced.set()
                await self._go.wait()
                await self._feed(send)
        self.done.set()

    async def _feed(self, send: _Send) -> None:
        faults, rng, ledger, clock = self.faults, self.rng, self.ledger, self.clock
        held: dict[str, tuple[WireMessage, list[SimEvent]]] = {}
        for msg, events in self._stream():
            if msg.ts < self.feed_from:
                continue
            if msg.ts >= self.until:
                break
            if ledger.first_ts is None:
                ledger.first_ts = msg.ts
            wait = clock.wall_until(msg.ts)
            if wait > _SLEEP_MIN_S:  # what is due within a few ms goes out now, in one burst
                await asyncio.sleep(wait)
            ledger.max_lag_s = max(ledger.max_lag_s, clock.now() - msg.ts)
            ledger.last_ts = msg.ts
            if faults.reorder_p and msg.edge_id not in held and rng.random() < faults.reorder_p:
                held[msg.edge_id] = (msg, events)  # goes out right after this edge's next message
                continue
            await self._data(send, msg, events)
            late = held.pop(msg.edge_id, None)
            if late is not None:
                await self._data(send, *late)
                ledger.reordered += 1  # published after a newer message of its edge: swapped
        for late in held.values():  # nothing newer came for this edge: it just goes out last
            await self._data(send, *late)

    async def _data(self, send: _Send, msg: WireMessage, events: list[SimEvent]) -> None:
        faults, ledger = self.faults, self.ledger
        copies = 2 if faults.duplicate_p and self.rng.random() < faults.duplicate_p else 1
        for _ in range(copies):
            await send(msg)
            for e in events:
                ledger.expected[event_key(e.edge_id, e.device, e.capability, e.value)] += 1
        ledger.duplicated += copies - 1
        if faults.malformed_rate and self.rng.random() < faults.malformed_rate:
            await send(msg, malformed_payload(msg.topic))
            ledger.malformed[msg.edge_id] += 1


class _Send(Protocol):  # ``send`` inside ``Feeder.run``
    async def __call__(self, msg: WireMessage, payload: bytes | None = None, /) -> None: ...
