"""The subscriber on the home's own broker: every message goes through the pipeline.

It subscribes to the filters the adapter sessions ask for, adds filters when discovery
asks for more, and reconnects with jittered, capped backoff. The session is persistent
(stable client id, ``clean_session=False``) so QoS 1 device messages published while the
agent restarts are kept by the local broker. When the outbox cannot commit as fast as
devices publish, the loop waits for room (aiomqtt's bounded queue then fills, and what it
cannot hold is dead-lettered as ``queue_full``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence

import aiomqtt

from .backoff import Backoff
from .deadletters import DeadLetters
from .mqtt import NODELAY, counting_queue, payload_bytes
from .pipeline import Pipeline
from .settings import BrokerSettings, LocalSettings

__all__ = ["LocalSubscriber"]

log = logging.getLogger(__name__)
_SUBSCRIBE_CHUNK = 100


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
        self.ready.set()
        handle = self.pipeline.handle
        outbox = self.pipeline.outbox
        clock = self._clock
        async for message in client.messages:
            changes = handle(str(message.topic), payload_bytes(message.payload), ts=clock())
            if changes.subscribe:
                await self._subscribe(client, changes.subscribe)
            if changes.unsubscribe:
                await self._unsubscribe(client, changes.unsubscribe)
            if outbox.full:
                await outbox.wait_room()

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
