"""The ingest pipeline without MQTT: messages in, one ``WriteGroup`` per commit out.

``Pipeline.process`` validates and routes one message (events, status, devices, feedback),
updating the in-memory catalog, per-edge progress and context at once and accumulating the
rows to write. ``seal`` hands the accumulated rows over as one ``Sealed`` group. Nothing
here raises on bad input: it becomes a dead letter with a reason.

The in-memory state runs ahead of the database between ``process`` and a successful write;
the writer therefore retries a sealed group until it is written or the process ends (and a
restarted hub reloads everything from the database).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

from pydantic import TypeAdapter, ValidationError

from devices.errors import PayloadError, ValidationFailed
from devices.topics import HubTopic, ack_topic, parse_hub_topic
from devices.wire import DeviceProfile, EdgeStatus, Feedback, decode

from .catalog import Catalog, EdgeEntry
from .context import ContextFuser
from .deadletters import DeadLetters
from .progress import EdgeProgress
from .security.guard import BatchGuard
from .store import WriteGroup
from .validation import WireEvent, decode_wire_batch

__all__ = ["CommitSummary", "Incoming", "Pipeline", "Sealed"]

log = logging.getLogger(__name__)

_REFUSED_RAW_BYTES = 65_536  # raw bytes kept in a dead letter the security guard refused
_PROFILES: TypeAdapter[list[DeviceProfile]] = TypeAdapter(list[DeviceProfile])


class Incoming(NamedTuple):
    """One MQTT message as the writer sees it; ``generation`` names the connection it came on.

    ``retain`` marks a retained message replayed by the broker on subscribe (old news: it
    does not make an edge "seen" now).
    """

    topic: str
    payload: bytes
    mid: int = 0
    qos: int = 0
    generation: int = 0
    retain: bool = False


@dataclass(frozen=True, slots=True)
class CommitSummary:
    """What one commit stored, for ``Hub.on_committed`` hooks (e.g. anticipation).

    ``batches`` holds ``(customer_id, edge_id, new_events)`` for each batch that stored
    something (duplicates left out), in arrival order; events are wire structs
    (``hub.validation.WireEvent``: ``seq``, ``ts``, ``device``, ``capability``, ``value``, ``room``).
    ``feedback`` counts the feedback rows the commit stored.
    """

    customers: frozenset[str]
    batches: tuple[tuple[str, str, tuple[WireEvent, ...]], ...]
    stored: int
    duplicates: int
    dead_letters: int
    feedback: int = 0


@dataclass(slots=True)
class Sealed:
    """One group to write, and what to publish once it is committed.

    ``acks`` maps each edge the group touched to its ``ack`` (topic, payload), computed at
    seal time so it describes exactly what this group's commit makes durable.
    """

    group: WriteGroup
    summary: CommitSummary
    acks: dict[int, tuple[str, bytes]] = field(default_factory=dict)


class Pipeline:
    """Validate, dedupe and route messages; accumulate one group of writes."""

    def __init__(
        self,
        catalog: Catalog,
        progress: dict[int, EdgeProgress],
        context: ContextFuser,
        dead_letters: DeadLetters,
        *,
        clock: Callable[[], float] = time.time,
        ack_max_gaps: int = 64,
        context_persist_s: float = 5.0,
        guard: BatchGuard | None = None,
    ) -> None:
        self.catalog = catalog
        # Signature, replay and limit checks (hub.security); None checks only the contract.
        self.guard = guard
        self.progress = progress
        self.context = context
        self.dead_letters = dead_letters
        self._clock = clock
        self._ack_max_gaps = ack_max_gaps
        self._context_persist_s = context_persist_s
        self._context_saved = float("-inf")
        self._reset()

    def _reset(self) -> None:
        self._group = WriteGroup()
        self._touched: dict[int, None] = {}  # edge keys with events, in first-touch order
        self._batches: list[tuple[str, str, tuple[WireEvent, ...]]] = []
        self._stored = 0
        self._duplicates = 0
        self._dead = 0

    @property
    def pending_events(self) -> int:
        return len(self._group.events)

    # -- routing -------------------------------------------------------------------------------
    def process(self, msg: Incoming) -> int:
        """Route one message; returns the number of events it carried (for the group budget).

        Never raises: bad input, and even a bug met while handling a message, become a dead
        letter (reason ``internal`` for the latter) rather than a poison message that would
        stop the hub on every redelivery.
        """
        try:
            return self._route(msg)
        except Exception as exc:  # noqa: BLE001 - see the docstring
            log.exception("hub could not handle a message on %s", msg.topic)
            self._dead_letter(msg, None, reason="internal", detail=f"{type(exc).__name__}: {exc}")
            return 0

    def _route(self, msg: Incoming) -> int:
        try:
            topic = parse_hub_topic(msg.topic)
        except PayloadError as exc:
            self._dead_letter(msg, None, reason=exc.reason, detail=str(exc))
            return 0
        if self.guard is not None and (refusal := self.guard.check_size(msg.payload)) is not None:
            # Keep the evidence, not the whole flood (a dead letter is a database row).
            self._dead_letter(msg._replace(payload=msg.payload[:_REFUSED_RAW_BYTES]), topic,
                              reason=refusal.reason, detail=refusal.detail)
            return 0
        if topic.kind == "events" and topic.edge_id is not None:
            return self._events(msg, topic, topic.edge_id)
        if topic.kind == "status" and topic.edge_id is not None:
            self._status(msg, topic, topic.edge_id)
        elif topic.kind == "devices" and topic.edge_id is not None:
            self._devices(msg, topic, topic.edge_id)
        elif topic.kind == "feedback":
            self._feedback(msg, topic)
        else:
            self._dead_letter(msg, topic, reason="topic", detail=f"the hub does not take {topic.kind!r} messages")
        return 0

    def _events(self, msg: Incoming, topic: HubTopic, edge_id: str) -> int:
        try:
            batch = decode_wire_batch(msg.payload, customer_id=topic.customer_id, edge_id=edge_id)
        except ValidationFailed as exc:
            self._dead_letter(msg, topic, reason=exc.reason, detail=str(exc))
            return 0
        now = self._clock()
        if self.guard is not None and (refusal := self.guard.check_batch(batch, msg.payload, now=now)) is not None:
            self._dead_letter(msg._replace(payload=msg.payload[:_REFUSED_RAW_BYTES]), topic,
                              reason=refusal.reason, detail=refusal.detail)
            return 0
        entry = self._edge(msg, topic, edge_id, now)
        if entry is None:
            return 0
        events = batch.events
        edge_key = entry.edge_key
        catalog = self.catalog
        devices = catalog.devices.setdefault(edge_key, {})
        rooms = catalog.rooms.setdefault(edge_key, {})
        caps = catalog.capabilities
        # Rows first: nothing below may fail once progress has recorded the seqs as stored.
        rows = []
        append = rows.append
        for e in events:
            name = e.device
            device = devices.get(name) or catalog.device(edge_key, name)
            room = e.room
            room_key = None if room is None else (rooms.get(room) or catalog.room(edge_key, room))
            append((edge_key, e.seq, e.ts, device, caps[e.capability], e.value, room_key))
        progress = self.progress.get(edge_key)
        if progress is None:
            progress = self.progress[edge_key] = EdgeProgress(edge_key)
        keep = progress.accept([e.seq for e in events])
        if keep is None:
            new = events
        else:
            new = [events[i] for i in keep]
            rows = [rows[i] for i in keep]
        self._group.events.extend(rows)
        self._stored += len(new)
        self._duplicates += len(events) - len(new)
        if edge_key not in self._touched:
            self._touched[edge_key] = None
        if new:
            try:
                self.context.apply_events(entry.customer_id, edge_id, new)
            except Exception:  # the context is a cache of what is stored; storing matters more
                log.exception("context update failed for customer %s", entry.customer_id)
            self._batches.append((entry.customer_id, edge_id, tuple(new)))
        return len(events)

    def _status(self, msg: Incoming, topic: HubTopic, edge_id: str) -> None:
        if not msg.payload:  # a retained status being cleared: nothing to record
            return
        try:
            status = decode(EdgeStatus, msg.payload)
        except ValidationFailed as exc:
            self._dead_letter(msg, topic, reason=exc.reason, detail=f"status: {exc}")
            return
        now = self._clock()
        seen = min(status.ts, now) if msg.retain else now
        entry = self._edge(msg, topic, edge_id, now, seen=seen)
        if entry is None:
            return
        self._group.statuses.append(
            (int(status.state == "online"), status.ts, status.backlog, status.version, status.model_dump_json(),
             status.role, seen, entry.edge_key)
        )
        self.context.apply_status(entry.customer_id, edge_id, status, seen=seen)
        if status.oldest_seq is not None:
            progress = self.progress.get(entry.edge_key)
            if progress is None:
                progress = self.progress[entry.edge_key] = EdgeProgress(entry.edge_key)
            if progress.lower_floor_to(status.oldest_seq):
                self._touched.setdefault(entry.edge_key, None)  # publish the ack that passes the hole

    def _devices(self, msg: Incoming, topic: HubTopic, edge_id: str) -> None:
        if not msg.payload:
            return
        try:
            profiles = _PROFILES.validate_json(msg.payload)
        except ValidationError as exc:
            reason = "json" if any(e["type"] == "json_invalid" for e in exc.errors()) else "schema"
            self._dead_letter(msg, topic, reason=reason, detail=f"devices: {exc.errors()[0]['msg']}")
            return
        now = self._clock()
        entry = self._edge(msg, topic, edge_id, now, seen=0.0 if msg.retain else None)
        if entry is None:
            return
        for profile in profiles:
            self.catalog.device(entry.edge_key, profile.device)
        inventory = json.dumps([p.model_dump(mode="json", exclude_none=True) for p in profiles])
        seen = 0.0 if msg.retain else now  # last_seen only ever moves forward (MAX in SQL)
        self._group.inventories.append((inventory, seen, entry.edge_key))
        self.context.apply_devices(entry.customer_id, edge_id, profiles, seen=None if msg.retain else now)

    def _feedback(self, msg: Incoming, topic: HubTopic) -> None:
        try:
            fb = decode(Feedback, msg.payload)
        except ValidationFailed as exc:
            self._dead_letter(msg, topic, reason=exc.reason, detail=f"feedback: {exc}")
            return
        now = self._clock()
        key = self.catalog.customer(topic.customer_id, now=now)
        self._group.feedback.append((key, fb.anticipation_id, fb.verdict, fb.job, fb.ts, now))

    def _edge(
        self, msg: Incoming, topic: HubTopic, edge_id: str, now: float, *, seen: float | None = None
    ) -> EdgeEntry | None:
        """The edge's entry (registered on first sight), or None after dead-lettering a mismatch."""
        entry = self.catalog.register_edge(edge_id, topic.customer_id, now=now, seen=seen)
        if entry.customer_id != topic.customer_id:
            self._dead_letter(
                msg, topic, reason="identity",
                detail=f"edge {edge_id!r} belongs to customer {entry.customer_id!r}, not {topic.customer_id!r}",
            )
            return None
        return entry

    def _dead_letter(self, msg: Incoming, topic: HubTopic | None, *, reason: str, detail: str) -> None:
        self._dead += 1
        self.dead_letters.add(
            topic=msg.topic, reason=reason, detail=detail, raw=msg.payload,
            customer_id=topic.customer_id if topic else None, edge_id=topic.edge_id if topic else None,
        )

    # -- sealing -------------------------------------------------------------------------------
    def seal(self, *, force_context: bool = False) -> Sealed:
        """Take everything accumulated since the last seal as one group to write."""
        now = self._clock()
        group = self._group
        group.new = self.catalog.take_pending()
        for edge_key in self._touched:
            p = self.progress[edge_key]
            group.progress.append(
                (edge_key, p.contiguous, p.high_seq, p.events, p.duplicates, p.ranges.to_json(), now)
            )
            group.last_seen.append((now, edge_key))
        group.dead_letters = self.dead_letters.drain()
        # Context is persisted at most every context_persist_s (it is a cache of what the
        # events say; a crash loses at most that much of it, and the next events refresh it).
        if self.context.has_dirty and (force_context or now - self._context_saved >= self._context_persist_s):
            self._context_saved = now
            for cid, state in self.context.take_dirty():
                key = self.catalog.customer(cid, now=now)
                group.context.append((key, json.dumps(state, separators=(",", ":")), now))
            # customers first seen during this dump ride along in this group
            extra = self.catalog.take_pending()
            group.new.customers.extend(extra.customers)
        summary = CommitSummary(
            customers=frozenset(c for c, _, _ in self._batches),
            batches=tuple(self._batches),
            stored=self._stored,
            duplicates=self._duplicates,
            dead_letters=self._dead,
            feedback=len(group.feedback),
        )
        acks = {k: ack for k in self._touched if (ack := self.ack_for(k, now=now)) is not None}
        sealed = Sealed(group, summary, acks)
        self._reset()
        return sealed

    def ack_for(self, edge_key: int, *, now: float | None = None) -> tuple[str, bytes] | None:
        """The retained ``ack`` topic and payload for an edge from its progress in memory.

        Memory runs ahead of the database until the group is written: call this at seal
        time or when nothing is pending (start-up), never for an ack published later.
        """
        entry = self.catalog.edges_by_key.get(edge_key)
        progress = self.progress.get(edge_key)
        if entry is None or progress is None:
            return None
        doc = {
            "stored_through": progress.acked_through,
            "ts": self._clock() if now is None else now,
            "gaps": [list(g) for g in progress.ack_gaps(limit=self._ack_max_gaps)],
        }
        return ack_topic(entry.customer_id, entry.edge_id), json.dumps(doc, separators=(",", ":")).encode()
