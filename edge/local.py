"""The subscriber on the home's own broker: every message goes through the pipeline.

It subscribes to the filters the adapter sessions ask for, adds filters when discovery
asks for more, and reconnects with jittered, capped backoff. The session is persistent
(stable client id, ``clean_session=False``) so QoS 1 device messages published while the
agent restarts are kept by the local broker, and acknowledged only once their outcome is
committed (``edge.acks``: manual PUBACKs, in order; a redelivery after a crash is
recognised and not handled twice). So nothing the broker counts as delivered dies with
the process. When the outbox cannot commit as fast as devices publish, the loop waits for
room; if aiomqtt's bounded queue still overflows, what it could not hold was not
acknowledged: the subscriber settles what it has and reconnects, and the broker sends the
rest again. (With ``local.manual_ack = false`` paho acknowledges on arrival, as before,
and what the queue cannot hold is dead-lettered as ``queue_full``.)

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
from typing import Any

import aiomqtt
import paho.mqtt.client as mqtt

from .acks import LocalAcks
from .backoff import Backoff
from .deadletters import DeadLetters
from .mqtt import NODELAY, cancel_requests, counting_queue, payload_bytes, raise_if_cancelled
from .pipeline import Pipeline
from .settings import BrokerSettings, LocalSettings

__all__ = ["DeviceRateLimiter", "LocalOverflow", "LocalSubscriber"]

log = logging.getLogger(__name__)
_SUBSCRIBE_CHUNK = 100
DISCOVERY_GRACE_S = 5.0  # wall seconds after a connection that unrouted messages wait for discovery
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


class LocalOverflow(aiomqtt.MqttError):
    """aiomqtt's queue could not hold a delivery (not acknowledged): reconnect so it comes again."""


class _Delivery(aiomqtt.Message):
    """aiomqtt's message plus the DUP flag paho read (aiomqtt leaves it out)."""

    dup = False


class _GuardedQueue(asyncio.Queue[aiomqtt.Message]):
    """aiomqtt's incoming queue, bounded, remembering that it refused a message."""

    overflowed = False

    def put_nowait(self, item: aiomqtt.Message) -> None:
        if self.full():
            self.overflowed = True
            return
        super().put_nowait(item)


def _manual_acks(client: aiomqtt.Client) -> Any:
    """Switch ``client``'s paho client to manual PUBACKs and keep the DUP flag; the paho client.

    aiomqtt 2.5 has no option for either: its ``_on_message`` only converts and enqueues, so
    ours does the same with the flag (checked against aiomqtt 2.5.1, as ``hub.ingest`` is).
    """
    paho = client._client  # noqa: SLF001
    queue = client._queue  # noqa: SLF001
    paho.manual_ack_set(True)

    def on_message(_paho: mqtt.Client, _userdata: Any, message: mqtt.MQTTMessage) -> None:
        delivery = _Delivery._from_paho_message(message)  # noqa: SLF001
        delivery.dup = bool(message.dup)
        queue.put_nowait(delivery)

    paho.on_message = on_message
    return paho


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
        self.acks: LocalAcks | None = None  # with local.manual_ack, made when ``run`` starts

    async def run(self) -> None:
        if self.settings.manual_ack and self.acks is None:
            self.acks = LocalAcks(self.pipeline.outbox, commit_after=self.settings.commit_unacked,
                                  max_unacked=self.settings.max_unacked)
        backoff = Backoff(initial=self.settings.backoff_initial_s, cap=self.settings.backoff_max_s)
        while True:
            try:
                client = aiomqtt.Client(
                    **self.broker.client_kwargs(),
                    identifier=self.client_id,
                    clean_session=False,
                    queue_type=_GuardedQueue if self.acks is not None else counting_queue(
                        self.dead_letters, source="local"),
                    max_queued_incoming_messages=self.settings.max_queued_messages,
                    socket_options=NODELAY,
                )
                paho = _manual_acks(client) if self.acks is not None else None
                async with client:
                    self.connects += 1
                    backoff.reset()
                    log.info("connected to local broker %s", self.broker.url)
                    if self.acks is None:
                        await self._consume(client)
                    else:
                        self.acks.connected(paho)
                        try:
                            await self._consume(client)
                        finally:
                            self.acks.disconnected()
            except aiomqtt.MqttError as exc:
                log.warning("local broker %s: %s; reconnecting", self.broker.url, exc)
            finally:
                self.ready.clear()
            await asyncio.sleep(backoff.next())

    async def _consume(self, client: aiomqtt.Client) -> None:
        self._filters = []
        since = cancel_requests()
        await self._subscribe(client, self.pipeline.subscriptions())
        raise_if_cancelled(since=since)
        # What the broker kept for this session arrives before the retained discovery that
        # tells the adapters which topics are theirs: give discovery a moment to come back.
        # The grace is wall time: the agent's clock may run faster (a simulated fleet), and
        # discovery takes as long as the broker takes to send it. Until it ends, nothing
        # unrouted is dead-lettered; then the pipeline's next tick dead-letters what is left.
        pipeline = self.pipeline
        pipeline.hold_unrouted(until=float("inf"))
        grace = asyncio.get_running_loop().call_later(
            DISCOVERY_GRACE_S, lambda: pipeline.hold_unrouted(until=self._clock()))
        try:
            await self._consume_messages(client)
        finally:
            grace.cancel()  # cut short: the next connection's grace ends the hold

    async def _consume_messages(self, client: aiomqtt.Client) -> None:
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
        acks = self.acks
        async for first in client.messages:
            message = first
            for taken in range(1, _BURST + 1):
                topic, payload = str(message.topic), payload_bytes(message.payload)
                # A DUP message whose key is known was handled before a crash or a lost link:
                # it only needs its PUBACK. Anything else is handled.
                again = acks is not None and message.qos > 0 and acks.seen(
                    message.mid, topic, payload, dup=getattr(message, "dup", False))
                if not again and admit(topic, payload):
                    changes = handle(topic, payload, ts=clock())
                    if changes.subscribe:
                        await self._subscribe(client, changes.subscribe)
                        raise_if_cancelled()
                    if changes.unsubscribe:
                        await self._unsubscribe(client, changes.unsubscribe)
                        raise_if_cancelled()
                    if outbox.full:
                        await outbox.wait_room()
                if acks is not None:
                    acks.owe(message.mid, message.qos)
                    if acks.unacked >= acks.max_unacked:
                        await acks.wait_room()
                if taken == _BURST:
                    break  # the rest waits for the next turn (taking one more here would drop it)
                try:
                    message = queue.get_nowait()
                except asyncio.QueueEmpty:
                    break
            if acks is not None and queue.empty() and getattr(queue, "overflowed", False):
                # aiomqtt could not hold a delivery and it was not acknowledged: acknowledge what
                # was handled on this connection (so each round makes progress), then reconnect
                # and the broker sends the rest again.
                await acks.settle()
                raise LocalOverflow("local incoming queue overflowed; reconnecting for redelivery")

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
