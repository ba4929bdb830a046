"""The subscriber on the home's own broker: every message goes through the pipeline.

It subscribes to the filters the adapter sessions ask for, adds filters when discovery
asks for more, and reconnects with jittered, capped backoff. The session is persistent
(stable client id, ``clean_session=False``) so QoS 1 device messages published while the
agent restarts are kept by the local broker. When the outbox cannot commit as fast as
devices publish, the loop waits for room (aiomqtt's bounded queue then fills, and what it
cannot hold is dead-lettered as ``queue_full``).

Local limits come first: a message over ``max_payload_bytes`` (``payload_too_large``) or
past its topic's token bucket (``rate_limited``; a topic is one device's) is dead-lettered
before any adapter reads it, so one misbehaving product can neither fill the outbox nor
starve the others of the loop.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence

import aiomqtt

from .backoff import Backoff
from .deadletters import DeadLetters
from .mqtt import NODELAY, counting_queue, payload_bytes, raise_if_cancelled
from .pipeline import Pipeline
from .settings import BrokerSettings, LocalSettings

__all__ = ["DeviceRateLimiter", "LocalSubscriber"]

log = logging.getLogger(__name__)
_SUBSCRIBE_CHUNK = 100
DISCOVERY_GRACE_S = 5.0
_BURST = 500  # queued messages handled per event-loop turn


class DeviceRateLimiter:
    """A token bucket per topic (``rate`` messages/s, ``burst``), at most ``max_topics`` of them.

    Topics are chosen by devices: past ``max_topics`` the buckets start over (full), which
    forgives a little but never grows without bound.
    """

    def __init__(self, *, rate: float, burst: float, max_topics: int = 50_000) -> None:
        self.rate = rate
        self.burst = burst
        self.max_topics = max_topics
        self._buckets: dict[str, list[float]] = {}  # topic -> [tokens, updated]

    def allow(self, topic: str, *, now: float) -> bool:
        bucket = self._buckets.get(topic)
        if bucket is None:
            if len(self._buckets) >= self.max_topics:
                self._buckets.clear()
            bucket = self._buckets[topic] = [self.burst, now]
        tokens = min(self.burst, bucket[0] + (now - bucket[1]) * self.rate)
        bucket[1] = now
        if tokens >= 1.0:
            bucket[0] = tokens - 1.0
            return True
        bucket[0] = tokens
        return False


class LocalSubscriber:
    """Feeds local broker messages to a ``Pipeline`` until cancelled."""

    def __init__(
        self,
        broker: BrokerSettings,
        pipeline: Pipeline,
        *,
        client_id: str,
        settings: LocalSettings,
        dead_letters: DeadLetters,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.broker = broker
        self.pipeline = pipeline
        self.client_id = client_id
        self.settings = settings
        self.dead_letters = dead_letters
        self._clock = clock
        self.ready = asyncio.Event()  # set while connected and subscribed
        self.connects = 0
        self._filters: list[str] = []
        self._monotonic = monotonic
        self.rates = DeviceRateLimiter(rate=settings.device_messages_per_s, burst=settings.device_burst)

    async def run(self) -> None:
        backoff = Backoff(initial=self.settings.backoff_initial_s, cap=self.settings.backoff_max_s)
        while True:
            try:
                async with aiomqtt.Client(
                    **self.broker.client_kwargs(),
                    identifier=self.client_id,
                    clean_session=False,
                    queue_type=counting_queue(self.dead_letters, source="local"),
                    max_queued_incoming_messages=self.settings.max_queued_messages,
                    socket_options=NODELAY,
                ) as client:
                    self.connects += 1
                    backoff.reset()
                    log.info("connected to local broker %s", self.broker.url)
                    await self._consume(client)
            except aiomqtt.MqttError as exc:
                log.warning("local broker %s: %s; reconnecting", self.broker.url, exc)
            finally:
                self.ready.clear()
            await asyncio.sleep(backoff.next())

    async def _consume(self, client: aiomqtt.Client) -> None:
        self._filters = []
        await self._subscribe(client, self.pipeline.subscriptions())
        # What the broker kept for this session arrives before the retained discovery that
        # tells the adapters which topics are theirs: give discovery a moment to come back.
        self.pipeline.hold_unrouted(until=self._clock() + DISCOVERY_GRACE_S)
        self.ready.set()
        handle = self.pipeline.handle
        outbox = self.pipeline.outbox
        clock = self._clock
        admit = self.admit
        # aiomqtt reads one packet per event-loop turn and its iterator costs a task and a wait
        # per message, so taking one message per turn never shrinks a backlog: under a burst
        # its queue only grew until it overflowed (bench/edge_ingest.py). Each turn therefore
        # also takes what is already queued, up to _BURST, before the loop reads again.
        queue: asyncio.Queue[aiomqtt.Message] = client._queue  # noqa: SLF001 (as hub.ingest does)
        async for first in client.messages:
            message = first
            for _ in range(_BURST):
                topic, payload = str(message.topic), payload_bytes(message.payload)
                if admit(topic, payload):
                    changes = handle(topic, payload, ts=clock())
                    if changes.subscribe:
                        await self._subscribe(client, changes.subscribe)
                        raise_if_cancelled()
                    if changes.unsubscribe:
                        await self._unsubscribe(client, changes.unsubscribe)
                        raise_if_cancelled()
                    if outbox.full:
                        await outbox.wait_room()
                try:
                    message = queue.get_nowait()
                except asyncio.QueueEmpty:
                    break

    def admit(self, topic: str, payload: bytes) -> bool:
        """Whether a local message is within the limits; dead-letters it (with why) if not."""
        limit = self.settings.max_payload_bytes
        if len(payload) > limit:
            self.dead_letters.record(source="local", reason="payload_too_large", topic=topic, payload=payload[:1024],
                                     detail=f"{len(payload)} bytes > local.max_payload_bytes {limit}")
            return False
        if not self.rates.allow(topic, now=self._monotonic()):
            self.dead_letters.record(source="local", reason="rate_limited", topic=topic, payload=payload,
                                     detail=f"over local.device_messages_per_s {self.settings.device_messages_per_s:g}")
            return False
        return True

    async def _subscribe(self, client: aiomqtt.Client, filters: Sequence[str]) -> None:
        new = [f for f in dict.fromkeys(filters) if f not in self._filters]
        for i in range(0, len(new), _SUBSCRIBE_CHUNK):
            chunk = new[i : i + _SUBSCRIBE_CHUNK]
            await client.subscribe([(f, self.settings.qos) for f in chunk])
            self._filters.extend(chunk)
        if new:
            log.info("subscribed to %d local filters (%d in all)", len(new), len(self._filters))

    async def _unsubscribe(self, client: aiomqtt.Client, filters: Sequence[str]) -> None:
        # A filter stays while any session still wants it.
        wanted = set(self.pipeline.subscriptions())
        gone = [f for f in dict.fromkeys(filters) if f in self._filters and f not in wanted]
        if gone:
            await client.unsubscribe(gone)
            self._filters = [f for f in self._filters if f not in gone]

    @property
    def filters(self) -> list[str]:
        return list(self._filters)
