"""Fault injection for fleet runs: what can go wrong between devices, edges, brokers and hub.

``FaultPlan.parse("broker,offline=0.5,crash=4,duplicates=0.05,reorder,skew=3600,malformed=0.01")``
(or ``"all"``) says which faults to inject and how hard:

=============  =========================================================================
``broker=N``   the hub's Mosquitto restarts N times, alternately stopped (SIGTERM, it saves
               its persistence) and killed (SIGKILL: what it had not saved is lost)
``offline=F``  a fraction F of the edges lose their link to the hub broker for a window
               (``LinkProxy`` between edge and broker refuses and cuts connections)
``crash=N``    N times an edge agent is crashed and restarted from its outbox (``EdgeRunner``)
``duplicates`` probability P that a local device message is published twice, and that
               an edge's batch is published again on the hub broker (``HubReplayer``)
``reorder``    probability P that a local message is swapped with its edge's next one, and
               that a copy of an edge's batch reaches the hub seconds late (after newer ones);
               the report counts the swaps and the late copies that newer batches overtook
``skew=S``     a third of the edges run with clocks up to ±S seconds wrong
``malformed``  rate R of malformed payloads on real device topics (edge dead letters) and
               of malformed batches on real edges' event topics (hub dead letters)
=============  =========================================================================

``FaultInjector`` plays a plan over a run, in wall time, and logs what it did.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import heapq
import json
import logging
import random
import time
from collections import Counter
from collections.abc import Callable, Coroutine
from dataclasses import asdict, dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit

import aiomqtt

from devices.errors import ConfigError
from devices.topics import PREFIX
from edge.settings import BrokerSettings

from .brokers import LOOPBACK, Mosquitto
from .fleet_edges import EdgeRunner
from .fleet_feed import FAULT_MARK

__all__ = ["FaultEvent", "FaultInjector", "FaultPlan", "HubReplayer", "LinkProxy"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class FaultPlan:
    """Which faults a fleet run injects, and how hard. The default injects none."""

    broker_restarts: int = 0
    offline_fraction: float = 0.0
    crashes: int = 0
    duplicate_p: float = 0.0
    reorder_p: float = 0.0
    skew_max_s: float = 0.0
    malformed_rate: float = 0.0

    @classmethod
    def everything(cls) -> FaultPlan:
        return cls(broker_restarts=2, offline_fraction=0.3, crashes=3, duplicate_p=0.05, reorder_p=0.05,
                   skew_max_s=3600.0, malformed_rate=0.01)

    @classmethod
    def parse(cls, spec: str) -> FaultPlan:
        """``"all"``, ``"none"`` or a comma list of ``name[=value]`` (see the module docstring)."""
        plan = cls()
        defaults = cls.everything()
        fields = {
            "broker": ("broker_restarts", int), "offline": ("offline_fraction", float), "crash": ("crashes", int),
            "duplicates": ("duplicate_p", float), "reorder": ("reorder_p", float), "skew": ("skew_max_s", float),
            "malformed": ("malformed_rate", float),
        }
        for item in (p.strip() for p in spec.split(",")):
            if not item or item == "none":
                continue
            if item == "all":
                plan = defaults
                continue
            name, _, value = item.partition("=")
            if name not in fields:
                raise ConfigError(f"unknown fault {name!r}: use all, none or {', '.join(fields)}")
            attr, kind = fields[name]
            try:
                parsed = kind(value) if value else getattr(defaults, attr)
            except ValueError as exc:
                raise ConfigError(f"fault {name}: {value!r} is not a {kind.__name__}") from exc
            if parsed < 0 or (kind is float and attr.endswith(("_p", "_fraction", "_rate")) and parsed > 1):
                raise ConfigError(f"fault {name}: {value!r} is out of range")
            plan = replace(plan, **{attr: parsed})
        return plan

    @property
    def any(self) -> bool:
        return any(v for v in asdict(self).values())

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v}


@dataclass(frozen=True, slots=True)
class FaultEvent:
    at_s: float  # wall seconds into the run
    kind: str
    target: str
    detail: str = ""


class LinkProxy:
    """A TCP relay on loopback between one edge and the hub broker; ``cut`` takes the link down.

    While cut, open connections are aborted (the broker sees the edge vanish and publishes
    its last will) and new ones are closed as soon as they are accepted.
    """

    def __init__(self, upstream: str, *, name: str = "") -> None:
        parts = urlsplit(upstream)
        self.upstream = (parts.hostname or LOOPBACK, parts.port or 1883)
        self.name = name
        self.online = True
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def url(self) -> str:
        return f"mqtt://{LOOPBACK}:{self.port}"

    async def __aenter__(self) -> LinkProxy:
        self._server = await asyncio.start_server(self._handle, LOOPBACK, 0)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    async def __aexit__(self, *exc: object) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
        self._abort_all()
        if server is not None:
            await server.wait_closed()

    def cut(self) -> None:
        self.online = False
        self._abort_all()

    def restore(self) -> None:
        self.online = True

    def _abort_all(self) -> None:
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.online:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            writer.transport.abort()  # the broker is down: the edge sees a refused link and retries
            return
        pair = {writer, up_writer}
        self._writers |= pair
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self._pipe(reader, up_writer))
                tg.create_task(self._pipe(up_reader, writer))
        finally:
            self._writers -= pair
            for w in pair:
                w.transport.abort()

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.transport.abort()  # one side gone: take the other down too, as a network would


@dataclass(slots=True)
class ReplayCounters:
    seen: int = 0
    duplicated: int = 0
    delayed: int = 0
    overtaken: int = 0  # late copies published after a newer batch of their edge had passed
    malformed: Counter[str] = field(default_factory=Counter)


class HubReplayer:
    """A client on the hub broker that republishes edges' batches (now or late) and malformed ones.

    Copies are exact: the hub must store each ``(edge, seq)`` once whatever arrives twice
    or out of order. Malformed batches carry ``FAULT_MARK`` and go to real edges' topics.
    """

    def __init__(
        self,
        broker: str,
        *,
        duplicate_p: float,
        reorder_p: float,
        malformed_rate: float,
        seed: int = 0,
        late_s: tuple[float, float] = (0.5, 3.0),
        max_held: int = 1000,
    ) -> None:
        self.broker = BrokerSettings.model_validate(broker)
        self.duplicate_p = duplicate_p
        self.reorder_p = reorder_p
        self.malformed_rate = malformed_rate
        self.rng = random.Random(seed)
        self.late_s = late_s
        self.max_held = max_held
        self.counters = ReplayCounters()
        self.connected = asyncio.Event()
        self._held: list[tuple[float, int, str, bytes]] = []
        self._newest: dict[str, int] = {}  # events topic -> highest seq seen on it
        self._held_seq: dict[int, int] = {}  # order of a late copy -> its highest seq
        self._outbox: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue(maxsize=10_000)
        self._order = 0
        self._wake = asyncio.Event()

    async def run(self) -> None:
        """Until cancelled; reconnects (the hub broker restarts too)."""
        while True:
            try:
                client_id = f"genius-fault-replayer-{id(self):x}"
                async with aiomqtt.Client(**self.broker.client_kwargs(), identifier=client_id) as client:
                    await client.subscribe(f"{PREFIX}/+/+/events", qos=1)
                    self.connected.set()
                    async with asyncio.TaskGroup() as tg:
                        tg.create_task(self._receive(client))
                        tg.create_task(self._release())
                        tg.create_task(self._send(client))
            except* aiomqtt.MqttError:
                log.info("replayer lost the hub broker; reconnecting")
            finally:
                self.connected.clear()
            await asyncio.sleep(0.3)

    async def _receive(self, client: aiomqtt.Client) -> None:
        rng = self.rng
        async for message in client.messages:
            topic = str(message.topic)
            payload = message.payload if isinstance(message.payload, bytes) else b""
            if FAULT_MARK in payload:
                continue  # our own malformed batch
            self.counters.seen += 1
            high = _high_seq(payload)
            if high > self._newest.get(topic, 0):
                self._newest[topic] = high
            if self.duplicate_p and rng.random() < self.duplicate_p:
                self._queue(topic, payload)
                self.counters.duplicated += 1
            if self.reorder_p and rng.random() < self.reorder_p and len(self._held) < self.max_held:
                due = time.monotonic() + rng.uniform(*self.late_s)
                self._order += 1
                heapq.heappush(self._held, (due, self._order, topic, payload))
                self._held_seq[self._order] = high
                self.counters.delayed += 1
                self._wake.set()
            if self.malformed_rate and rng.random() < self.malformed_rate:
                kind, bad = self._malformed(payload)
                self._queue(topic, bad)
                self.counters.malformed[kind] += 1

    def _late(self, order: int, topic: str, payload: bytes) -> None:
        """Publish a late copy; count it as overtaken if a newer batch of its edge went first."""
        if self._newest.get(topic, 0) > self._held_seq.pop(order, 0):
            self.counters.overtaken += 1
        self._queue(topic, payload)

    def _queue(self, topic: str, payload: bytes) -> None:
        with contextlib.suppress(asyncio.QueueFull):  # a copy more or less changes nothing
            self._outbox.put_nowait((topic, payload))

    async def _send(self, client: aiomqtt.Client) -> None:
        while True:
            topic, payload = await self._outbox.get()
            await client.publish(topic, payload, qos=1)

    async def _release(self) -> None:
        while True:
            self._wake.clear()
            now = time.monotonic()
            while self._held and self._held[0][0] <= now:
                _, order, topic, payload = heapq.heappop(self._held)
                self._late(order, topic, payload)
            timeout = self._held[0][0] - now if self._held else None
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._wake.wait()

    def _malformed(self, payload: bytes) -> tuple[str, bytes]:
        kind = self.rng.choice(("json", "schema", "identity"))
        if kind == "json":
            return kind, b'{"' + FAULT_MARK + b'": '
        if kind == "schema":
            return kind, json.dumps({"schema": "genius.events/1", FAULT_MARK.decode(): True}).encode()
        batch = json.loads(payload)
        batch["customer_id"] = FAULT_MARK.decode()  # a valid id, but not the topic's customer
        return kind, json.dumps(batch).encode()

    @property
    def malformed(self) -> int:
        return sum(self.counters.malformed.values())

    async def flush(self, *, timeout: float = 10.0) -> None:
        """Release every late copy now and wait (bounded) until all copies are published."""
        for _, order, topic, payload in sorted(self._held):
            self._late(order, topic, payload)
        self._held.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                while not self._outbox.empty():
                    await asyncio.sleep(0.05)


def _high_seq(payload: bytes) -> int:
    """The highest seq in an edge's batch (0 if it is not one)."""
    try:
        events = json.loads(payload).get("events")
        return max((int(e["seq"]) for e in events), default=0) if isinstance(events, list) else 0
    except (ValueError, TypeError, KeyError, AttributeError):
        return 0


class FaultInjector:
    """Plays a ``FaultPlan`` over ``duration_s`` wall seconds against the running parts."""

    def __init__(
        self,
        plan: FaultPlan,
        *,
        duration_s: float,
        runners: dict[str, EdgeRunner],
        links: dict[str, LinkProxy],
        hub_broker: Mosquitto | None,
        seed: int = 0,
    ) -> None:
        self.plan = plan
        self.duration_s = duration_s
        self.runners = runners
        self.links = links
        self.hub_broker = hub_broker
        self.rng = random.Random(seed)
        self.log: list[FaultEvent] = []
        self.broker_kills = 0
        self._t0 = 0.0

    def _note(self, kind: str, target: str, detail: str = "") -> None:
        event = FaultEvent(round(time.monotonic() - self._t0, 2), kind, target, detail)
        self.log.append(event)
        log.info("fault at %.1fs: %s %s %s", event.at_s, kind, target, detail)

    async def run(self) -> None:
        """Inject every planned fault, then heal; returns when the last one is over."""
        self._t0 = time.monotonic()
        d, rng, plan = self.duration_s, self.rng, self.plan
        actions: list[tuple[float, Callable[[], Coroutine[Any, Any, None]]]] = []
        if plan.broker_restarts and self.hub_broker is not None:
            n = plan.broker_restarts
            for k in range(n):
                restart = functools.partial(self._broker, kill=k % 2 == 1, down_s=min(1.0, d / 20))
                actions.append(((k + 1) * d / (n + 1), restart))
        if plan.offline_fraction and self.links:
            edges = sorted(self.links)
            for edge in rng.sample(edges, max(1, round(plan.offline_fraction * len(edges)))):
                length = rng.uniform(0.1, 0.25) * d
                window = functools.partial(self._offline, edge, length)
                actions.append((rng.uniform(0.05, 0.9) * d - length / 2, window))
        if plan.crashes and self.runners:
            # Homes carry nearly all the traffic: a venue edge is idle unless its customer is there.
            edges = sorted(e for e, r in self.runners.items() if r.settings.role == "home") or sorted(self.runners)
            for _ in range(plan.crashes):
                crash = functools.partial(self._crash, rng.choice(edges), rng.uniform(0.3, 1.5))
                actions.append((rng.uniform(0.1, 0.85) * d, crash))
        async with asyncio.TaskGroup() as tg:
            for at, action in sorted(actions, key=lambda a: a[0]):
                await asyncio.sleep(max(0.0, self._t0 + at - time.monotonic()))
                tg.create_task(action())
        self.heal()

    def heal(self) -> None:
        for link in self.links.values():
            link.restore()

    async def _broker(self, *, kill: bool, down_s: float) -> None:
        broker = self.hub_broker
        assert broker is not None
        if kill:
            self.broker_kills += 1
            self._note("broker", "hub", "killed (SIGKILL)")
            await asyncio.to_thread(broker.kill)
        else:
            self._note("broker", "hub", "stopped (SIGTERM)")
            await asyncio.to_thread(broker.stop)
        await asyncio.sleep(down_s)
        await asyncio.to_thread(broker.start)
        self._note("broker", "hub", "started")

    async def _offline(self, edge: str, length: float) -> None:
        self._note("offline", edge, f"link to the hub cut for {length:.1f}s")
        self.links[edge].cut()
        await asyncio.sleep(length)
        self.links[edge].restore()
        self._note("online", edge)

    async def _crash(self, edge: str, down_s: float) -> None:
        self._note("crash", edge, f"agent cancelled, restarted after {down_s:.1f}s")
        self.runners[edge].crash(down_s=down_s)
