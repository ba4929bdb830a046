"""Store-and-forward to the hub, acknowledged end to end (DESIGN.md "Delivery").

Contract:

* Committed outbox rows go out in seq order as ``EventBatch`` JSON, QoS 1, on
  ``genius/v1/{c}/{e}/events``: at most ``batch_max_events`` (500) per batch, and no event
  waits more than ``batch_max_delay_s`` (200 ms) for its batch to fill. Batches only wait
  to fill while an earlier one is still unconfirmed by the broker (Nagle's rule): an edge
  with nothing in flight sends what is committed at once (once the connection's first ack
  is in), so batching adds latency only under load, where it saves the most messages.
* Only the hub's retained ``ack`` deletes rows (``seq <= stored_through``). A PUBACK only
  says the broker has the batch and deletes nothing.
* At most ``max_inflight_events`` sent-but-unacknowledged events and
  ``max_inflight_batches`` unconfirmed publishes: when the window is full, sending stops
  until acks arrive.
* Gaps the ack lists are resent at once (what the edge still holds); anything still
  unacknowledged ``resend_after_s`` after the last progress is resent from
  ``stored_through + 1`` in order (go-back-N); so is everything unacknowledged on every
  reconnect. Each timeout without progress doubles the wait (up to ``resend_max_s``), as
  TCP backs off its retransmission timer, so a hub that is away is not flooded.
  Duplicates on the wire are expected; the hub stores each seq once.
* The hub's ack cannot pass a seq the edge no longer holds (dropped by overflow, purged):
  the retained status carries ``oldest_seq`` so the hub can stop waiting for those.
* Connected, the edge keeps a retained ``status`` (online, backlog …) fresh every
  ``status_interval_s`` and on overflow; the MQTT last will is the retained offline status,
  and a graceful stop publishes it itself. The retained ``devices`` inventory is published
  on connect and, debounced, whenever it changes.
* ``control`` commands (``{"command": "purge"}``) are handed to ``on_control``.

Reconnects use jittered exponential backoff (0.5 s doubling to 30 s by default). The
session with the hub broker is persistent (stable client id) so a purge published while the
edge was away still arrives.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

import aiomqtt

from devices.errors import PayloadError, StorageError
from devices.signing import sign_payload
from devices.topics import ack_topic, control_topic, devices_topic, events_topic, status_topic
from devices.wire import Ack, decode

from .backoff import Backoff
from .batch import encode_batch
from .deadletters import DeadLetters
from .inventory import Inventory
from .mqtt import NODELAY, cancel_requests, counting_queue, payload_bytes, raise_if_cancelled
from .outbox import Outbox, Row
from .settings import BrokerSettings, UplinkSettings

__all__ = ["Uplink", "UplinkCounters"]

log = logging.getLogger(__name__)

State = Literal["online", "offline"]


@dataclass(slots=True)
class UplinkCounters:
    connects: int = 0
    batches: int = 0
    events: int = 0
    resent_events: int = 0  # events sent again (gap, timeout or reconnect)
    timeouts: int = 0  # go-back-N resends after resend_after_s without progress
    gap_resends: int = 0
    acks: int = 0
    acked_events: int = 0
    purges: int = 0


class Uplink:
    """The hub side of the edge: sends the outbox, applies acks and control commands."""

    def __init__(
        self,
        *,
        customer: str,
        edge: str,
        broker: BrokerSettings,
        settings: UplinkSettings,
        outbox: Outbox,
        inventory: Inventory,
        dead_letters: DeadLetters,
        status: Callable[[State], bytes],
        on_control: Callable[[dict[str, Any]], Awaitable[None]],
        client_id: str,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.customer = customer
        self.edge = edge
        self.broker = broker
        self.settings = settings
        self.outbox = outbox
        self.inventory = inventory
        self.dead_letters = dead_letters
        self._status = status
        self._on_control = on_control
        self.client_id = client_id
        self._clock = clock
        self._monotonic = monotonic
        self.topics = {
            "events": events_topic(customer, edge),
            "status": status_topic(customer, edge),
            "devices": devices_topic(customer, edge),
            "ack": ack_topic(customer, edge),
            "control": control_topic(customer, edge),
        }
        self.counters = UplinkCounters()
        self.connected = asyncio.Event()
        # Other parts of the edge (edge.home) use this connection: the hub broker takes the
        # username as the client id, so an edge has exactly one. Topic → handler of payloads
        # (an empty one is a retained topic being cleared); subscribed on every connection.
        self.handlers: dict[str, Callable[[bytes], Awaitable[None]]] = {}
        self._live: aiomqtt.Client | None = None
        self.acked = 0  # highest stored_through the hub has acknowledged
        self.next_send = 1  # next seq to send in order
        self._high_sent = 0  # highest seq ever sent in this connection (to count resends)
        self._deadline: float | None = None  # when unacknowledged events get resent
        self._rto = settings.resend_after_s  # current resend timeout (backs off without progress)
        self._waiting_since: float | None = None  # when a partial batch started waiting
        self._resend: deque[tuple[int, int]] = deque()
        self._gap_sent: dict[tuple[int, int], float] = {}
        self._wake = asyncio.Event()
        self._publishing = 0  # batches handed to the client and not yet confirmed (PUBACK)
        self._heard = False  # an ack arrived on this connection (the hub's retained one first)
        self._status_now = asyncio.Event()
        outbox.on_commit.append(self._wake.set)
        outbox.on_overflow.append(lambda _n: self._status_now.set())

    # ------------------------------------------------------------------ connection

    async def run(self) -> None:
        """Connect, deliver, reconnect on failure; until cancelled."""
        backoff = Backoff(initial=self.settings.backoff_initial_s, cap=self.settings.backoff_max_s)
        while True:
            try:
                async with self._client() as client:
                    self.counters.connects += 1
                    backoff.reset()
                    log.info("connected to hub broker %s as %s", self.broker.url, self.client_id)
                    await self._session(client)
            except* aiomqtt.MqttError as group:
                log.warning("hub broker %s: %s; reconnecting", self.broker.url, group.exceptions[0])
            await asyncio.sleep(backoff.next())

    def _client(self) -> aiomqtt.Client:
        client = aiomqtt.Client(
            **self.broker.client_kwargs(),
            identifier=self.client_id,
            clean_session=False,
            will=aiomqtt.Will(self.topics["status"], self._status("offline"), qos=1, retain=True),
            queue_type=counting_queue(self.dead_letters, source="hub"),
            max_queued_incoming_messages=1000,
            socket_options=NODELAY,
            max_inflight_messages=self.settings.max_inflight_batches + 4,
            timeout=self.settings.publish_timeout_s,
        )
        client.pending_calls_threshold = self.settings.max_inflight_batches + 16
        return client

    async def _session(self, client: aiomqtt.Client) -> None:
        try:
            await self._start_session(client)
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self._receive(client))
                tg.create_task(self._send(client))
                tg.create_task(self._status_loop(client))
                tg.create_task(self._inventory_loop(client))
        except asyncio.CancelledError:
            await self._say_offline(client)
            raise
        finally:
            self._live = None
            self.connected.clear()

    async def _start_session(self, client: aiomqtt.Client) -> None:
        # A stop landing on these aiomqtt waits could be swallowed (3.11): without the checks
        # the session's task group started anyway and the stopping agent waited forever. The
        # baseline: an earlier session's task group may have left a cancel request behind.
        since = cancel_requests()
        await client.subscribe(
            [(self.topics["ack"], 1), (self.topics["control"], 1), *((t, 1) for t in self.handlers)]
        )
        raise_if_cancelled(since=since)
        self._live = client
        await self._publish_status(client, "online")
        raise_if_cancelled(since=since)
        if len(self.inventory):
            self.inventory.changed.clear()
            await client.publish(self.topics["devices"], self.inventory.to_json(), qos=1, retain=True)
            raise_if_cancelled(since=since)
        # Everything not acknowledged goes again, in order, on every connection.
        self.next_send = max(self.acked + 1, self.outbox.first_seq)
        self._high_sent = self.next_send - 1
        self._deadline = None
        self._rto = self.settings.resend_after_s
        self._waiting_since = None
        self._heard = False
        self._resend.clear()
        self.connected.set()

    async def publish(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False) -> None:
        """Publish on the hub connection (returns once the broker has it at QoS 1).

        Raises ``aiomqtt.MqttError`` while disconnected: the caller keeps the message and retries.
        """
        client = self._live
        if client is None:
            raise aiomqtt.MqttError("not connected to the hub broker")
        await client.publish(topic, payload, qos=qos, retain=retain)

    async def _say_offline(self, client: aiomqtt.Client) -> None:
        with contextlib.suppress(aiomqtt.MqttError, TimeoutError):
            async with asyncio.timeout(self.settings.shutdown_timeout_s):
                await self._publish_status(client, "offline")
                log.info("published offline status")

    async def _publish_status(self, client: aiomqtt.Client, state: State) -> None:
        await client.publish(self.topics["status"], self._status(state), qos=1, retain=True)

    # ------------------------------------------------------------------ sending

    def _unacked(self) -> bool:
        return self.next_send - 1 > max(self.acked, self.outbox.first_seq - 1)

    async def _send(self, client: aiomqtt.Client) -> None:
        window = asyncio.BoundedSemaphore(self.settings.max_inflight_batches)
        async with asyncio.TaskGroup() as tg:
            while True:
                try:
                    payload, count = await self._next_batch()
                except StorageError as exc:
                    log.error("cannot read the outbox: %s; retrying", exc)
                    await asyncio.sleep(1.0)
                    continue
                await window.acquire()
                self._publishing += 1
                tg.create_task(self._publish_batch(client, payload, count, window))

    async def _publish_batch(
        self, client: aiomqtt.Client, payload: bytes, count: int, window: asyncio.BoundedSemaphore
    ) -> None:
        try:
            await client.publish(self.topics["events"], payload, qos=1)
            self.counters.batches += 1
            self.counters.events += count
        finally:
            window.release()
            self._publishing -= 1
            if not self._publishing:
                self._wake.set()  # a partial batch may go now

    async def _next_batch(self) -> tuple[bytes, int]:
        """Wait for the next batch to send: gap resends first, then rows in seq order."""
        s = self.settings
        outbox = self.outbox
        while True:
            now = self._monotonic()
            if self._deadline is not None and now >= self._deadline:
                if self._unacked():
                    self.counters.timeouts += 1
                    restart = max(self.acked + 1, outbox.first_seq)
                    log.info("no ack progress for %.1fs: resending from seq %d (go-back-N)", self._rto, restart)
                    self.next_send = restart
                    self._resend.clear()
                    self._rto = min(self._rto * 2, max(s.resend_max_s, s.resend_after_s))
                    self._deadline = now + self._rto
                else:
                    self._deadline = None
            while self._resend:
                a, b = self._resend[0]
                a = max(a, outbox.first_seq, self.acked + 1)
                b = min(b, self.next_send - 1)
                if a > b:
                    self._resend.popleft()
                    continue
                rows = await outbox.read(a, stop=b + 1, limit=s.batch_max_events)
                if not rows or rows[-1][0] >= b:
                    self._resend.popleft()
                else:
                    self._resend[0] = (rows[-1][0] + 1, b)
                if rows:
                    self.counters.resent_events += len(rows)
                    return self._encode(rows), len(rows)
            base = max(self.acked + 1, outbox.first_seq)
            start = max(self.next_send, base)
            stop = min(outbox.next_seq, base + s.max_inflight_events)
            available = stop - start
            timeout: float | None = None
            if available > 0:
                resending = start <= self._high_sent
                # Not before the first ack of a connection: it may move or renumber what we hold.
                idle = self._heard and not self._publishing
                if available >= s.batch_max_events or resending or idle or (
                    self._waiting_since is not None and now - self._waiting_since >= s.batch_max_delay_s
                ):
                    rows = await outbox.read(start, stop=stop, limit=s.batch_max_events)
                    if rows:
                        return self._sent(rows, now)
                    continue  # rows went away meanwhile (ack, purge, overflow): look again
                if self._waiting_since is None:
                    self._waiting_since = now
                timeout = self._waiting_since + s.batch_max_delay_s - now
            if self._deadline is not None:
                until_deadline = self._deadline - now
                timeout = until_deadline if timeout is None else min(timeout, until_deadline)
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(None if timeout is None else max(timeout, 0.0)):
                    await self._wake.wait()

    def _sent(self, rows: list[Row], now: float) -> tuple[bytes, int]:
        last = rows[-1][0]
        if rows[0][0] <= self._high_sent:
            self.counters.resent_events += min(last, self._high_sent) - rows[0][0] + 1
        self._high_sent = max(self._high_sent, last)
        if not self._unacked():
            self._deadline = now + self._rto
        self.next_send = last + 1
        self._waiting_since = None
        return self._encode(rows), len(rows)

    def _encode(self, rows: list[Row]) -> bytes:
        payload = encode_batch(
            customer_id=self.customer,
            edge_id=self.edge,
            sent_at=self._clock(),
            rows=rows,
            names_json=self.outbox.names_json,
            names=self.outbox.names,
        )
        signing = self.settings.signing
        if signing is not None:  # every send is signed afresh: a resend has a new sent_at
            payload = sign_payload(payload, key_id=signing.key_id, key=signing.key_bytes)
        return payload

    # ------------------------------------------------------------------ receiving

    async def _receive(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            topic = str(message.topic)
            payload = payload_bytes(message.payload)
            handler = self.handlers.get(topic)
            if not payload and handler is None:
                continue  # a retained message being cleared
            try:
                if handler is not None:
                    await handler(payload)
                elif topic == self.topics["ack"]:
                    await self._on_ack(decode(Ack, payload))
                elif topic == self.topics["control"]:
                    await self._control(payload, retained=bool(message.retain))
                else:
                    raise PayloadError(f"unexpected topic {topic!r}", reason="topic", topic=topic)
            except PayloadError as exc:
                self.dead_letters.record(source="hub", reason=exc.reason, topic=topic, payload=payload, detail=str(exc))
            except StorageError as exc:
                log.error("outbox failed while applying %s: %s", topic, exc)

    async def _on_ack(self, ack: Ack) -> None:
        """Apply the hub's acknowledgement: delete what it covers, queue its gaps for resending."""
        self.counters.acks += 1
        self._heard = True
        outbox = self.outbox
        through = ack.stored_through
        now = self._monotonic()
        if through >= outbox.next_seq:
            # The hub holds seqs this outbox never assigned: our database was replaced.
            shift = await outbox.rebase(through)
            if shift:
                self.next_send += shift
                self._high_sent += shift
        if through > self.acked:
            self.acked = through
            self.counters.acked_events += await outbox.ack(through)
            if self.next_send <= through:
                self.next_send = through + 1
            self._rto = self.settings.resend_after_s
            self._deadline = now + self._rto if self._unacked() else None
            self._wake.set()
        for a, b in ack.gaps:
            lo = max(a, outbox.first_seq, through + 1)
            hi = min(b, self.next_send - 1)
            if lo > hi:
                continue  # lost for good (overflow, purge) or not sent yet: nothing to resend
            last = self._gap_sent.get((a, b))
            if last is not None and now - last < self.settings.gap_resend_interval_s:
                continue  # already resent; the hub's ack for it has not caught up yet
            self._gap_sent[(a, b)] = now
            self._resend.append((lo, hi))
            self.counters.gap_resends += 1
            self._wake.set()
        if len(self._gap_sent) > 1000:
            horizon = now - self.settings.gap_resend_interval_s
            self._gap_sent = {k: t for k, t in self._gap_sent.items() if t >= horizon}

    async def _control(self, payload: bytes, *, retained: bool) -> None:
        try:
            doc = json.loads(payload)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise PayloadError(f"control is not JSON: {exc}", reason="json") from exc
        if not isinstance(doc, dict) or not isinstance(doc.get("command"), str):
            raise PayloadError("control needs an object with a 'command'", reason="schema")
        if doc["command"] != "purge":
            raise PayloadError(f"unknown control command {doc['command']!r}", reason="command")
        ts = doc.get("ts")
        if isinstance(ts, (int, float)) and not isinstance(ts, bool) and ts <= self.outbox.last_purge_ts:
            log.info("purge of ts %s already done (retained=%s); skipping", ts, retained)
            return
        await self._on_control(doc)
        self.counters.purges += 1
        self._resend.clear()
        self.next_send = max(self.next_send, self.outbox.first_seq)
        self._status_now.set()

    # ------------------------------------------------------------------ status and inventory

    async def _status_loop(self, client: aiomqtt.Client) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.settings.status_interval_s):
                    await self._status_now.wait()
            self._status_now.clear()
            await self._publish_status(client, "online")
            raise_if_cancelled()

    async def _inventory_loop(self, client: aiomqtt.Client) -> None:
        while True:
            await self.inventory.changed.wait()
            await asyncio.sleep(self.settings.inventory_debounce_s)  # let a discovery burst settle
            self.inventory.changed.clear()
            await client.publish(self.topics["devices"], self.inventory.to_json(), qos=1, retain=True)
            raise_if_cancelled()
            log.info("published inventory of %d devices", len(self.inventory))
