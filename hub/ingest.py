"""MQTT ingest: subscribe with a persistent session, group-commit, then acknowledge.

Flow, and why:

* The hub connects with a fixed client id and ``clean_session=False`` (MQTT 3.1.1) and
  subscribes at QoS 1, so the broker keeps its messages while the hub is down.
* **Manual PUBACK.** aiomqtt 2.5 acknowledges QoS 1 on arrival and queues without bound
  (or, bounded, discards after acking). We switch its paho client to manual acks
  (``manual_ack_set(True)`` before connecting; aiomqtt's ``_on_message`` only enqueues) and
  send ``ack(mid, qos)`` only after the message's group is committed, so whatever was not
  committed when the hub died is redelivered on reconnect. A PUBACK is only sent on the
  connection the message came in on (``generation``); a message received on an older
  connection is redelivered by the broker and deduplicated.
* **Bounded memory.** The broker's in-flight window (Mosquitto ``max_inflight_messages``,
  default 20) throttles what it sends us unacknowledged, but Mosquitto 2.0.11 (measured
  here) keeps it only for live traffic: a backlog queued for the session is released past
  the window once PUBACKs flow (20, then 400, then 580 unacknowledged in one test), up to
  its ``max_queued_messages``. So aiomqtt's queue is bounded too (``max_queued_incoming``):
  when it is full aiomqtt discards a message (unacknowledged, thanks to manual acks); the
  hub notices, commits and acknowledges what it holds, then reconnects so the broker
  redelivers what was discarded.
* **Group commit, pipelined.** The builder takes what is already waiting, up to
  ``group_max_events`` or ``group_max_s``, routes it (``Pipeline``) and seals it; the
  committer writes each sealed group in one transaction (``Store.write``, in SQLite's own
  thread) while the builder decodes the next one. Shutdown commits what is in hand.
* **End-to-end ack.** After each commit the retained ``…/ack`` of every edge touched is
  published (``stored_through`` = highest contiguous seq, plus gaps): an edge deletes from
  its outbox only what that covers, and resends the rest. This is what makes delivery
  whole even when a broker drops messages (``max_queued_messages``).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiomqtt
from aiomqtt import ProtocolVersion

from devices.errors import StorageError
from devices.topics import PREFIX

from .pipeline import CommitSummary, Incoming, Pipeline, Sealed
from .settings import HubSettings
from .store import Store

__all__ = ["CommitHook", "Ingest", "IngestStats", "IncomingOverflow", "SUBSCRIPTIONS", "backoff_delay"]

log = logging.getLogger(__name__)

SUBSCRIPTIONS: tuple[str, ...] = (
    f"{PREFIX}/+/+/events",
    f"{PREFIX}/+/+/status",
    f"{PREFIX}/+/+/devices",
    f"{PREFIX}/+/feedback",
)
ACK_PUBLISH_CHUNK = 64

CommitHook = Callable[[CommitSummary], Awaitable[None] | None]


@dataclass(slots=True)
class IngestStats:
    """Counters since the hub started (dead letters by reason are in ``DeadLetters.counts``)."""

    messages: int = 0
    events_stored: int = 0
    duplicates: int = 0
    dead_letters: int = 0
    commits: int = 0
    connections: int = 0
    acks_published: int = 0
    overflows: int = 0
    last_commit: float | None = None
    hook_errors: Counter[str] = field(default_factory=Counter)


class IncomingOverflow(aiomqtt.MqttError):
    """aiomqtt had to discard a delivery: reconnect so the broker redelivers it."""


@dataclass(slots=True)
class _Group:
    """A sealed group with the deliveries it settles."""

    sealed: Sealed
    to_puback: list[Incoming]
    taken: int
    committed: bool = False  # written, PUBACKed, acks queued, queue items marked done
    hooked: bool = False  # hooks called (never twice, even if a flush meets the group again)


def _incoming(message: aiomqtt.Message, generation: int) -> Incoming:
    payload = message.payload
    if not isinstance(payload, bytes):
        payload = b"" if payload is None else str(payload).encode()
    return Incoming(message.topic.value, payload, message.mid, message.qos, generation, bool(message.retain))


class _QuietDiscards(logging.Filter):
    """Drop aiomqtt's per-message "queue is full" warning: the hub counts and logs overflows."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Message queue is full")


_MQTT_LOG = logging.getLogger("hub.mqtt")
_MQTT_LOG.addFilter(_QuietDiscards())


class _GuardedQueue(asyncio.Queue[aiomqtt.Message]):
    """aiomqtt's incoming queue, bounded, remembering that it refused a message.

    aiomqtt catches the ``QueueFull`` and discards the message; with manual acks it was
    never acknowledged, so the broker still owes it to us after a reconnect.
    """

    overflowed = False

    def put_nowait(self, item: aiomqtt.Message) -> None:
        if self.full():
            self.overflowed = True
        super().put_nowait(item)


def backoff_delay(attempt: int, *, low: float, high: float) -> float:
    """Jittered, capped exponential backoff (half to full of ``low * 2**attempt``, at most ``high``)."""
    return min(high, low * (2 ** min(attempt, 30))) * random.uniform(0.5, 1.0)


class Ingest:
    """The MQTT side of the hub: ``run()`` owns the connection loop and the writer."""

    def __init__(
        self,
        settings: HubSettings,
        store: Store,
        pipeline: Pipeline,
        *,
        hooks: list[CommitHook],
        stats: IngestStats | None = None,
        clock: Callable[[], float] = time.time,
        ready: asyncio.Event | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.pipeline = pipeline
        self.hooks = hooks
        self.stats = stats or IngestStats()
        self._clock = clock
        self._queue: asyncio.Queue[Incoming] = asyncio.Queue(maxsize=settings.ingest.queue_messages)
        self._client: aiomqtt.Client | None = None
        self._generation = 0
        # Messages taken since the last seal: to PUBACK once committed, and to task_done.
        self._to_puback: list[Incoming] = []
        self._taken = 0
        # Sealed groups on their way to the committer, in seal order. One may wait while
        # another is written, so decoding overlaps SQLite's work (it runs in its own thread).
        self._sealed: asyncio.Queue[_Group] = asyncio.Queue(maxsize=1)
        self._handoff: _Group | None = None  # sealed, being put on the queue
        self._writing: _Group | None = None  # being written (retried by the flush if cut short)
        # Acks of committed state only (never of memory running ahead of the database).
        self._acks_committed: dict[int, tuple[str, bytes]] = {}
        self._acks_pending: dict[int, tuple[str, bytes]] = {}
        self._acks_wakeup = asyncio.Event()
        self.ready = ready or asyncio.Event()  # set once subscribed

    def prime_acks(self, acks: dict[int, tuple[str, bytes]]) -> None:
        """Acks of what the database held at start; republished on every (re)connection."""
        self._acks_committed.update(acks)

    async def run(self) -> None:
        """Receive, build and commit until cancelled; then commit what is in hand."""
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self._connection_loop(), name="hub-mqtt")
                tg.create_task(self._builder(), name="hub-builder")
                tg.create_task(self._committer(), name="hub-committer")
        finally:
            await self._flush()

    # -- MQTT connection -----------------------------------------------------------------------
    def _make_client(self) -> aiomqtt.Client:
        b = self.settings.broker
        client = aiomqtt.Client(
            b.host,
            b.port,
            identifier=b.client_id,
            clean_session=False,
            protocol=ProtocolVersion.V311,
            keepalive=b.keepalive_s,
            username=b.username,
            password=b.password.get_secret_value() if b.password is not None else None,
            max_queued_incoming_messages=b.max_queued_incoming,
            queue_type=_GuardedQueue,
            logger=_MQTT_LOG,
            timeout=b.connect_timeout_s,
        )
        if self.settings.ingest.manual_ack:
            # aiomqtt has no option for this; its paho client does (checked against
            # aiomqtt 2.5.1: _on_message only enqueues, paho sends no PUBACK when manual).
            client._client.manual_ack_set(True)  # noqa: SLF001
        return client

    async def _connection_loop(self) -> None:
        b = self.settings.broker
        attempt = 0
        while True:
            client = self._make_client()
            try:
                async with client:
                    self._generation += 1
                    generation = self._generation
                    self._client = client
                    self.stats.connections += 1
                    attempt = 0
                    await client.subscribe([(topic, 1) for topic in SUBSCRIPTIONS])
                    log.info("hub connected to %s as %s (connection %d)", b.url, b.client_id, generation)
                    # Republish what is committed: a crash between commit and ack, or an
                    # ack lost with the last connection, must not leave an edge waiting.
                    for key, ack in self._acks_committed.items():
                        self._acks_pending.setdefault(key, ack)
                    self._acks_wakeup.set()
                    self.ready.set()
                    async with asyncio.TaskGroup() as tg:
                        tg.create_task(self._receive(client, generation), name="hub-receive")
                        tg.create_task(self._acker(client), name="hub-acker")
            except* aiomqtt.MqttError as group:
                log.warning("hub lost broker %s: %s", b.url, "; ".join(str(e) for e in group.exceptions))
            finally:
                self._client = None
            delay = backoff_delay(attempt, low=b.reconnect_min_s, high=b.reconnect_max_s)
            attempt += 1
            await asyncio.sleep(delay)

    async def _receive(self, client: aiomqtt.Client, generation: int) -> None:
        incoming = client._queue  # noqa: SLF001 (the _GuardedQueue made in _make_client)
        async for message in client.messages:
            await self._queue.put(_incoming(message, generation))
            if isinstance(incoming, _GuardedQueue) and incoming.overflowed:
                # Take what aiomqtt kept, let the writer commit and PUBACK all of it on this
                # connection (so each round makes progress), then reconnect for the rest.
                self.stats.overflows += 1
                for _ in range(incoming.qsize()):
                    await self._queue.put(_incoming(incoming.get_nowait(), generation))
                await self._queue.join()
                raise IncomingOverflow("incoming queue overflowed; reconnecting for redelivery")

    async def _acker(self, client: aiomqtt.Client) -> None:
        while True:
            await self._acks_wakeup.wait()
            self._acks_wakeup.clear()
            pending, self._acks_pending = self._acks_pending, {}
            items = list(pending.items())
            try:
                for i in range(0, len(items), ACK_PUBLISH_CHUNK):
                    async with asyncio.TaskGroup() as tg:
                        for _, (topic, payload) in items[i : i + ACK_PUBLISH_CHUNK]:
                            tg.create_task(client.publish(topic, payload, qos=1, retain=True))
                    self.stats.acks_published += len(items[i : i + ACK_PUBLISH_CHUNK])
            except BaseException:
                for key, ack in pending.items():  # newer acks queued meanwhile win
                    self._acks_pending.setdefault(key, ack)
                raise

    # -- builder and committer --------------------------------------------------------------
    async def _builder(self) -> None:
        """Take what is waiting (up to the group budget), route it, seal it, hand it over."""
        loop = asyncio.get_running_loop()
        max_events = self.settings.ingest.group_max_events
        max_s = self.settings.ingest.group_max_s
        while True:
            self._take(await self._queue.get())
            deadline = loop.time() + max_s
            while self.pipeline.pending_events < max_events and loop.time() < deadline:
                # Yield after every message: acks, PUBACKs and arrivals then flow while a
                # large group is being built (one batch of 500 takes a couple of ms).
                await asyncio.sleep(0)
                try:
                    msg = self._queue.get_nowait()
                except asyncio.QueueEmpty:
                    break
                self._take(msg)
            self._handoff = self._seal()
            await self._sealed.put(self._handoff)  # waits while the committer is busy: backpressure
            self._handoff = None

    async def _committer(self) -> None:
        while True:
            self._writing = await self._sealed.get()
            await self._write(self._writing)
            self._writing = None

    def _take(self, msg: Incoming) -> None:
        self._taken += 1
        self.stats.messages += 1
        self.pipeline.process(msg)
        if msg.qos > 0:
            self._to_puback.append(msg)

    def _seal(self, *, force_context: bool = False) -> _Group:
        group = _Group(self.pipeline.seal(force_context=force_context), self._to_puback, self._taken)
        self._to_puback = []
        self._taken = 0
        return group

    async def _write(self, group: _Group, *, hooks: bool = True) -> None:
        """Commit one group (retrying a failing commit), then PUBACK, ack and call the hooks.

        Safe to call again for a group whose first call was cut short: each step runs once.
        """
        sealed = group.sealed
        if not group.committed:
            retries = self.settings.ingest.commit_retries
            attempt = 0
            while sealed.group:
                try:
                    await self.store.write(sealed.group)
                    break
                except StorageError as exc:
                    if attempt >= retries:
                        log.error("hub cannot commit (%s); stopping without acknowledging", exc)
                        raise
                    log.warning("hub commit failed (%s); retrying", exc)
                    await asyncio.sleep(backoff_delay(attempt, low=0.1, high=2.0))
                    attempt += 1
            group.committed = True
            self._after_commit(sealed, group.to_puback)
            for _ in range(group.taken):
                self._queue.task_done()
        if hooks and not group.hooked:
            group.hooked = True
            await self._run_hooks(sealed.summary)

    def _after_commit(self, sealed: Sealed, to_puback: list[Incoming]) -> None:
        client = self._client
        if client is not None:
            paho = client._client  # noqa: SLF001
            generation = self._generation
            for msg in to_puback:
                if msg.generation == generation:
                    paho.ack(msg.mid, msg.qos)
        if sealed.acks:
            self._acks_committed.update(sealed.acks)
            self._acks_pending.update(sealed.acks)
            self._acks_wakeup.set()
        summary = sealed.summary
        self.stats.events_stored += summary.stored
        self.stats.duplicates += summary.duplicates
        self.stats.dead_letters += summary.dead_letters
        if sealed.group:
            self.stats.commits += 1
            self.stats.last_commit = self._clock()

    async def _run_hooks(self, summary: CommitSummary) -> None:
        if not (summary.batches or summary.feedback) or not self.hooks:
            return
        for hook in list(self.hooks):
            try:
                result: Any = hook(summary)
                if inspect.isawaitable(result):
                    await result
            except Exception:  # a broken hook must not stop ingest
                name = getattr(hook, "__qualname__", repr(hook))
                self.stats.hook_errors[name] += 1
                log.exception("on_committed hook %s failed", name)

    async def _flush(self) -> None:
        """After the tasks stopped: commit, in order, every group and message still in hand.

        Writes are idempotent, so a group whose commit was cut short is simply written again.
        ``on_committed`` hooks are not called for what the flush commits: the hub is stopping,
        and a slow hook must not hold the commit past ``flush_timeout_s``.
        """
        groups = [g for g in (self._writing,) if g is not None]
        while not self._sealed.empty():
            groups.append(self._sealed.get_nowait())
        if self._handoff is not None:
            groups.append(self._handoff)
        self._writing = self._handoff = None
        while not self._queue.empty():
            self._take(self._queue.get_nowait())
        groups.append(self._seal(force_context=True))
        try:
            async with asyncio.timeout(self.settings.ingest.flush_timeout_s):
                for group in groups:
                    await self._write(group, hooks=False)
        except TimeoutError:
            log.error("hub shutdown: commit did not finish in time; the broker will redeliver")
        except StorageError as exc:
            log.error("hub shutdown: final commit failed (%s); the broker will redeliver", exc)
        st = self.stats
        log.info(
            "hub ingest stopped: %d messages, %d events stored, %d duplicates, %d dead letters, %d commits,"
            " %d acks published, %d connections, %d overflows",
            st.messages, st.events_stored, st.duplicates, st.dead_letters, st.commits, st.acks_published,
            st.connections, st.overflows,
        )
