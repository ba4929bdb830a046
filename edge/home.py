"""``HomeBridge``: the customer's anticipations as Home Assistant entities, and feedback back.

Contract (Home Assistant MQTT discovery, https://www.home-assistant.io/integrations/mqtt/):

* The hub's retained ``genius/v1/{c}/anticipations`` reaches the edge on its one hub
  connection (``Uplink.handlers``). The bridge keeps the latest and publishes, retained, on
  the *local* broker:
  - a ``sensor`` "Next job": state = the most probable job (``none`` when there is none);
    JSON attributes = ``job``, ``probability``, ``expected_in_s``, ``because``, ``market``,
    ``model``, ``anticipation_id``, ``ts`` and all ``jobs``;
  - a ``select`` "Feedback" with options ``accept`` / ``dismiss`` / ``done`` (optimistic: it
    has no state topic, each choice is a command).
  Discovery configs are retained under ``{discovery_prefix}/{component}/genius_{edge}/…/config``
  and announced again whenever Home Assistant publishes ``online`` on
  ``{discovery_prefix}/status`` (its restart).
* Availability (retained ``{base}/availability``): ``online`` while the edge is connected to
  the hub broker, ``offline`` when it is not; the local connection's last will is
  ``offline`` too, so the entities go unavailable if the edge dies.
* A choice on the select's command topic becomes a ``Feedback`` (anticipation id, verdict
  ``accepted``/``dismissed``/``done``, ts, job) published QoS 1 on
  ``genius/v1/{c}/feedback`` through the hub connection. While the hub broker is away it
  waits in a bounded queue and is retried with backoff; it leaves the queue only once the
  broker has it (PUBACK; the hub's persistent session holds it from there). What the queue
  cannot hold, and commands that cannot become feedback, are dead letters with a reason.
  The queue is in memory: feedback given while the hub is away is lost if the edge
  restarts before it is sent (it is a preference signal, not an event the hub must count).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

import aiomqtt

from devices.errors import ValidationFailed
from devices.topics import feedback_topic
from devices.wire import Anticipation, Feedback, decode

from .backoff import Backoff
from .deadletters import DeadLetters
from .mqtt import NODELAY, payload_bytes
from .settings import BrokerSettings, HomeSettings

__all__ = ["VERDICTS", "HomeBridge", "HomeTopics"]

log = logging.getLogger(__name__)

# The select's options → the Feedback verdicts of the wire contract.
VERDICTS: dict[str, str] = {"accept": "accepted", "dismiss": "dismissed", "done": "done"}

HubPublish = Callable[..., Awaitable[None]]


class HomeTopics:
    """Every local-broker topic the bridge uses, derived from the settings and the edge id."""

    def __init__(self, settings: HomeSettings, *, edge: str) -> None:
        prefix = settings.discovery_prefix
        self.base = settings.topic_base or f"genius/{edge}"
        self.node = f"genius_{edge.replace('-', '_')}"
        self.sensor_config = f"{prefix}/sensor/{self.node}/next_job/config"
        self.select_config = f"{prefix}/select/{self.node}/feedback/config"
        self.ha_status = f"{prefix}/status"
        self.availability = f"{self.base}/availability"
        self.state = f"{self.base}/next_job/state"
        self.attributes = f"{self.base}/next_job/attributes"
        self.command = f"{self.base}/feedback/set"


class HomeBridge:
    """Publishes anticipations as HA entities on the local broker and sends feedback to the hub.

    ``on_anticipation`` is the uplink's handler for the anticipations topic; ``hub_publish``
    publishes on the hub connection (raising ``aiomqtt.MqttError`` while disconnected) and
    ``hub_connected`` says whether that connection is up. ``run`` until cancelled.
    """

    def __init__(
        self,
        *,
        customer: str,
        edge: str,
        broker: BrokerSettings,
        settings: HomeSettings,
        hub_publish: HubPublish,
        hub_connected: Callable[[], bool],
        dead_letters: DeadLetters,
        client_id: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.customer = customer
        self.edge = edge
        self.broker = broker
        self.settings = settings
        self.topics = HomeTopics(settings, edge=edge)
        self._hub_publish = hub_publish
        self._hub_connected = hub_connected
        self.dead_letters = dead_letters
        self.client_id = client_id
        self._clock = clock
        self.anticipation: Anticipation | None = None
        self.feedback: deque[Feedback] = deque()
        self.sent = 0  # feedback the hub broker has taken
        self.announcements = 0  # times the discovery configs were published
        self.available: bool | None = None  # last availability published
        self.ready = asyncio.Event()  # set once subscribed on the local broker
        self._changed = asyncio.Event()
        self._announce = asyncio.Event()
        self._queued = asyncio.Event()

    # -- hub side -------------------------------------------------------------------------------
    async def on_anticipation(self, payload: bytes) -> None:
        """The hub's retained anticipation (empty: cleared, e.g. after an erasure)."""
        if not payload:
            self.anticipation = None
        else:
            try:
                antic = decode(Anticipation, payload)
            except ValidationFailed as exc:
                self.dead_letters.record(source="home", reason=exc.reason, topic="anticipations", payload=payload,
                                         detail=f"anticipation: {exc}")
                return
            if antic.customer_id != self.customer:
                self.dead_letters.record(source="home", reason="identity", topic="anticipations", payload=payload,
                                         detail=f"anticipation for {antic.customer_id!r}, not {self.customer!r}")
                return
            self.anticipation = antic
        self._changed.set()

    def _enqueue(self, fb: Feedback) -> None:
        if len(self.feedback) >= self.settings.feedback_queue:
            dropped = self.feedback.popleft()
            self.dead_letters.record(source="home", reason="feedback_overflow", topic=feedback_topic(self.customer),
                                     payload=dropped.model_dump_json().encode(),
                                     detail=f"feedback queue full ({self.settings.feedback_queue})")
        self.feedback.append(fb)
        self._queued.set()

    async def _send_feedback(self) -> None:
        """Send queued feedback in order; each leaves the queue once the broker has it."""
        backoff = Backoff(initial=self.settings.retry_initial_s, cap=self.settings.retry_max_s)
        topic = feedback_topic(self.customer)
        while True:
            if not self.feedback:
                self._queued.clear()
                await self._queued.wait()
                continue
            fb = self.feedback[0]
            try:
                await self._hub_publish(topic, fb.model_dump_json(exclude_none=True).encode(), qos=1, retain=False)
                _honour_cancellation()
            except (aiomqtt.MqttError, TimeoutError) as exc:
                delay = backoff.next()
                log.info("feedback waits for the hub broker (%s); retry in %.1fs", exc, delay)
                await asyncio.sleep(delay)
                continue
            backoff.reset()
            if self.feedback and self.feedback[0] is fb:
                self.feedback.popleft()
            self.sent += 1

    # -- local side -------------------------------------------------------------------------------
    async def run(self) -> None:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._local_loop(), name="home-local")
            tg.create_task(self._send_feedback(), name="home-feedback")

    def _client(self) -> aiomqtt.Client:
        return aiomqtt.Client(
            **self.broker.client_kwargs(),
            identifier=self.client_id,
            clean_session=True,  # everything it publishes is retained; nothing to keep for it
            will=aiomqtt.Will(self.topics.availability, b"offline", qos=1, retain=True),
            socket_options=NODELAY,
            max_queued_incoming_messages=100,
            timeout=10.0,
        )

    async def _local_loop(self) -> None:
        backoff = Backoff(initial=self.settings.retry_initial_s, cap=self.settings.retry_max_s)
        while True:
            try:
                async with self._client() as client:
                    backoff.reset()
                    await self._session(client)
            except* aiomqtt.MqttError as group:
                log.warning("local broker %s: %s; reconnecting", self.broker.url, group.exceptions[0])
            finally:
                self.ready.clear()
                self.available = None
            await asyncio.sleep(backoff.next())

    async def _session(self, client: aiomqtt.Client) -> None:
        t = self.topics
        await client.subscribe([(t.ha_status, 1), (t.command, 1)])
        await self._publish_all(client)
        self.ready.set()
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self._receive(client))
                tg.create_task(self._publisher(client))
                tg.create_task(self._watch_hub(client))
        except asyncio.CancelledError:
            # A clean disconnect does not fire the last will: say it ourselves.
            with contextlib.suppress(aiomqtt.MqttError, TimeoutError):
                async with asyncio.timeout(self.settings.shutdown_timeout_s):
                    await self._publish_availability(client, False)
            raise

    async def _publish_all(self, client: aiomqtt.Client) -> None:
        t = self.topics
        self.announcements += 1
        await _publish(client, t.sensor_config, json.dumps(self.sensor_config()).encode())
        await _publish(client, t.select_config, json.dumps(self.select_config()).encode())
        await self._publish_availability(client, self._hub_connected())
        await self._publish_state(client)

    async def _publish_availability(self, client: aiomqtt.Client, online: bool) -> None:
        await _publish(client, self.topics.availability, b"online" if online else b"offline")
        self.available = online

    async def _publish_state(self, client: aiomqtt.Client) -> None:
        state, attributes = self.state()
        # Attributes first: whoever sees the new state then finds its attributes already there.
        await _publish(client, self.topics.attributes, json.dumps(attributes).encode())
        await _publish(client, self.topics.state, state.encode())

    async def _publisher(self, client: aiomqtt.Client) -> None:
        """The one task that publishes state changes and re-announcements (never the receiver)."""
        while True:
            await self._changed.wait()
            self._changed.clear()
            if self._announce.is_set():
                self._announce.clear()
                await self._publish_all(client)
            else:
                await self._publish_state(client)

    async def _watch_hub(self, client: aiomqtt.Client) -> None:
        """Availability follows the hub connection (polled: the uplink exposes a flag, not a callback)."""
        while True:
            online = self._hub_connected()
            if online != self.available:
                await self._publish_availability(client, online)
            await asyncio.sleep(self.settings.availability_poll_s)

    async def _receive(self, client: aiomqtt.Client) -> None:
        t = self.topics
        async for message in client.messages:
            topic = str(message.topic)
            payload = payload_bytes(message.payload)
            if topic == t.ha_status:
                if payload.strip().lower() == b"online":
                    log.info("Home Assistant is online: announcing the Genius entities again")
                    self._announce.set()
                    self._changed.set()
            elif topic == t.command:
                self._command(payload)

    def _command(self, payload: bytes) -> None:
        option = payload.decode(errors="replace").strip().lower()
        verdict = VERDICTS.get(option)
        if verdict is None:
            self.dead_letters.record(source="home", reason="schema", topic=self.topics.command, payload=payload,
                                     detail=f"feedback option must be one of {sorted(VERDICTS)}")
            return
        antic = self.anticipation
        if antic is None:
            self.dead_letters.record(source="home", reason="no_anticipation", topic=self.topics.command,
                                     payload=payload, detail="feedback with no anticipation showing")
            return
        top = _top(antic)
        self._enqueue(Feedback(anticipation_id=antic.id, verdict=verdict,  # type: ignore[arg-type]
                               ts=float(self._clock()), job=top.job if top is not None else None))

    # -- documents -------------------------------------------------------------------------------
    def _device(self) -> dict[str, Any]:
        return {
            "identifiers": [f"genius_{self.customer}_{self.edge}"],
            "name": f"Genius ({self.edge})",
            "manufacturer": "Genius",
            "model": "context engine",
        }

    def _availability(self) -> dict[str, Any]:
        return {"availability_topic": self.topics.availability, "payload_available": "online",
                "payload_not_available": "offline"}

    def sensor_config(self) -> dict[str, Any]:
        return {
            "name": "Next job",
            "unique_id": f"{self.topics.node}_next_job",
            "object_id": f"{self.topics.node}_next_job",
            "state_topic": self.topics.state,
            "json_attributes_topic": self.topics.attributes,
            "icon": "mdi:crystal-ball",
            **self._availability(),
            "device": self._device(),
        }

    def select_config(self) -> dict[str, Any]:
        return {
            "name": "Feedback",
            "unique_id": f"{self.topics.node}_feedback",
            "object_id": f"{self.topics.node}_feedback",
            "command_topic": self.topics.command,
            "options": list(VERDICTS),
            "optimistic": True,
            "icon": "mdi:thumbs-up-down",
            **self._availability(),
            "device": self._device(),
        }

    def state(self) -> tuple[str, dict[str, Any]]:
        """The sensor's state and JSON attributes for the current anticipation."""
        antic = self.anticipation
        top = _top(antic) if antic is not None else None
        if antic is None or top is None:
            return "none", {"anticipation_id": antic.id if antic else None, "jobs": []}
        return top.job, {
            "job": top.job,
            "probability": top.probability,
            "expected_in_s": top.expected_in_s,
            "because": list(top.because),
            "market": antic.market,
            "model": antic.model,
            "anticipation_id": antic.id,
            "ts": antic.ts,
            "jobs": [j.model_dump() for j in antic.jobs],
        }


async def _publish(client: aiomqtt.Client, topic: str, payload: bytes) -> None:
    await client.publish(topic, payload, qos=1, retain=True)
    _honour_cancellation()


def _honour_cancellation() -> None:
    """Raise if this task was cancelled while it awaited a publish.

    On Python 3.11 ``asyncio.wait_for`` (inside aiomqtt's publish) swallows a cancellation that
    lands as the PUBACK arrives; the task would then run on, and a TaskGroup waiting for it
    to stop would wait for ever (seen in tests on a loaded machine).
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


def _top(antic: Anticipation) -> Any:
    return max(antic.jobs, key=lambda j: j.probability, default=None)
