"""Normalise: one local message → adapter session → checked readings → privacy → outbox.

This is the edge's hot path. ``handle`` never raises for bad input: a payload the adapter
rejects, a topic no session owns, a reading that would break the wire contract (NaN, a
bool where a number belongs, a control character in a device name …) is dead-lettered
with its reason, and the rest of the message still counts. A reading that broke the
contract would otherwise make the hub reject the whole batch it travels in.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from devices.adapter import AdapterSession, first_session
from devices.capabilities import KIND
from devices.errors import PayloadError
from devices.readings import AdapterResult, Reading

from .deadletters import DeadLetters
from .inventory import Inventory
from .outbox import HeldMessage, Outbox
from .privacy import PrivacyFilter
from .settings import DeviceSettings

__all__ = ["Pipeline", "PipelineCounters", "SubscriptionChanges", "reading_problem"]

log = logging.getLogger(__name__)

_NAME = re.compile(r"[^\x00-\x1f\x7f]{1,128}")
MAX_HELD = 10_000  # unrouted messages held while discovery comes back (see ``hold_unrouted``)
_TS_MAX = 32503680000.0  # year 3000, as the wire contract


def reading_problem(reading: Reading, *, valid_names: set[str] | None = None) -> str | None:
    """Why ``reading`` would break the wire contract, or ``None`` if it is fine."""
    kind = KIND.get(reading.capability)
    if kind is None:
        return f"unknown capability {reading.capability!r}"
    value = reading.value
    vtype = type(value)
    if kind == "bool":
        if vtype is not bool:
            return f"{reading.capability} needs a bool, got {value!r}"
    elif kind == "number":
        if (vtype is not float and vtype is not int) or not math.isfinite(value) or abs(value) > 1e12:  # type: ignore[arg-type]
            return f"{reading.capability} needs a finite number, got {value!r}"
    elif vtype is not str or len(value) > 256:  # type: ignore[arg-type]
        return f"{reading.capability} needs text of at most 256 characters, got {value!r:.80}"
    ts = reading.ts
    if (type(ts) is not float and type(ts) is not int) or not (0.0 <= ts < _TS_MAX):
        return f"bad timestamp {ts!r}"
    for name in (reading.device, reading.room):
        if name is None or (valid_names is not None and name in valid_names):
            continue
        if type(name) is not str or not _NAME.fullmatch(name):
            return f"bad device or room name {name!r:.80}"
        if valid_names is not None and len(valid_names) < 100_000:
            valid_names.add(name)
    return None


@dataclass(slots=True)
class PipelineCounters:
    messages: int = 0
    readings: int = 0
    rejected_messages: int = 0


@dataclass(frozen=True, slots=True)
class SubscriptionChanges:
    """Topic filters discovery asked the local subscriber to add or drop."""

    subscribe: tuple[str, ...] = ()
    unsubscribe: tuple[str, ...] = ()


_NO_CHANGES = SubscriptionChanges()


class Pipeline:
    """Routes local messages through adapter sessions into the outbox, applying the edge's policy."""

    def __init__(
        self,
        sessions: Sequence[AdapterSession],
        *,
        outbox: Outbox,
        privacy: PrivacyFilter,
        inventory: Inventory,
        dead_letters: DeadLetters,
        devices: Mapping[str, DeviceSettings],
    ) -> None:
        self.sessions = list(sessions)
        self.outbox = outbox
        self.privacy = privacy
        self.inventory = inventory
        self.dead_letters = dead_letters
        self.rooms = {name: d.room for name, d in devices.items() if d.room is not None}
        self.counters = PipelineCounters()
        self._routes: dict[str, AdapterSession | None] = {}
        self._valid_names: set[str] = set()
        self._out: list[Reading] = []
        # Held messages live on disk too (the outbox writes them with its next commit), so the
        # local subscriber may acknowledge them: what an earlier run held is held again until
        # the first connection's discovery grace is over.
        self._held: list[HeldMessage] = list(outbox.held_loaded)
        self._hold_until = float("inf") if self._held else float("-inf")
        outbox.track_held(lambda: self._held)

    def subscriptions(self) -> list[str]:
        """Every topic filter the sessions want now, without duplicates, in order."""
        seen: dict[str, None] = {}
        for session in self.sessions:
            for f in session.subscriptions():
                seen.setdefault(f, None)
        return list(seen)

    def route(self, topic: str) -> AdapterSession | None:
        try:
            return self._routes[topic]
        except KeyError:
            session = first_session(self.sessions, topic)
            if len(self._routes) >= 50_000:  # topics come from devices; keep the cache bounded
                self._routes.clear()
            self._routes[topic] = session
            return session

    def handle(self, topic: str, payload: bytes, *, ts: float) -> SubscriptionChanges:
        """Process one local message; the subscription changes discovery asked for."""
        self.counters.messages += 1
        session = self.route(topic)
        if session is None:
            if ts < self._hold_until and len(self._held) < MAX_HELD:
                self._held.append((topic, payload, ts))
                self.outbox.held_changed()
            else:
                self._reject("unrouted", topic, payload, "no adapter session matches this topic")
            return _NO_CHANGES
        changes = self._dispatch(session, topic, payload, ts)
        if changes is not _NO_CHANGES and self._held:
            changes = self._release_held(changes)
        return changes

    def hold_unrouted(self, *, until: float) -> None:
        """Hold messages no session routes until ``until`` (on the clock of ``handle``'s ``ts``).

        A persistent local session is handed what the broker queued for it as soon as it
        connects, before the retained discovery documents that its subscriptions bring back;
        and some sessions learn the topics they own only from those (Home Assistant state
        topics). Held messages are handled once discovery claims their topic; what is still
        unrouted at ``until`` (``tick``) is dead-lettered as ``unrouted``. The outbox keeps
        the held messages on disk as they are at each commit, so a stop or a crash keeps them
        for the next run (held again until its first grace is over).
        """
        self._hold_until = until

    def _dispatch(self, session: AdapterSession, topic: str, payload: bytes, ts: float) -> SubscriptionChanges:
        try:
            result = session.handle(topic, payload, ts=ts)
        except PayloadError as exc:
            self._reject(exc.reason, topic, payload, str(exc))
            return _NO_CHANGES
        except Exception as exc:  # a third-party adapter can raise anything; the loop must live
            self._reject("adapter_error", topic, payload, f"{type(exc).__name__}: {exc}")
            return _NO_CHANGES
        if result.readings:
            self._queue(result, topic, payload)
        if result.profiles:
            self.inventory.update(result.profiles)
        for availability in result.availability:
            self.inventory.set_available(availability.device, availability.online)
        if result.subscribe or result.unsubscribe:
            self._routes.clear()  # a session's filters changed: routes must be recomputed
            return SubscriptionChanges(tuple(result.subscribe), tuple(result.unsubscribe))
        return _NO_CHANGES

    def _release_held(self, changes: SubscriptionChanges) -> SubscriptionChanges:
        """Handle the held messages a session owns now; every subscription change, merged."""
        subscribe, unsubscribe = list(changes.subscribe), list(changes.unsubscribe)
        again = True
        while again and self._held:  # a released message may be discovery that claims more
            again = False
            held, self._held = self._held, []
            self.outbox.held_changed()
            for topic, payload, ts in held:
                session = self.route(topic)
                if session is None:
                    self._held.append((topic, payload, ts))
                    continue
                more = self._dispatch(session, topic, payload, ts)
                if more is not _NO_CHANGES:
                    subscribe.extend(more.subscribe)
                    unsubscribe.extend(more.unsubscribe)
                    again = True
        return SubscriptionChanges(tuple(subscribe), tuple(unsubscribe))

    def _reject_held(self) -> None:
        held, self._held = self._held, []
        if held:
            self.outbox.held_changed()
        for topic, payload, _ in held:
            self._reject("unrouted", topic, payload, "no adapter session claimed this topic after reconnecting")

    def _queue(self, result: AdapterResult, topic: str, payload: bytes) -> None:
        out = self._out
        rooms = self.rooms
        apply = self.privacy.apply
        for reading in result.readings:
            room = rooms.get(reading.device)
            if room is not None and room != reading.room:
                reading = Reading(reading.ts, reading.device, reading.capability, reading.value, room)
            problem = reading_problem(reading, valid_names=self._valid_names)
            if problem is not None:
                self._reject("reading", topic, payload, problem)
                continue
            apply(reading, out)
        self.counters.readings += len(result.readings)
        if out:
            self.outbox.put(out)
            out.clear()

    def tick(self, now: float) -> int:
        """Queue coarse windows that have closed by ``now``; how many were queued.

        Held unrouted messages whose grace has passed are dead-lettered.
        """
        if self._held and now >= self._hold_until:
            self._reject_held()
        out: list[Reading] = []
        self.privacy.due(now, out)
        if out:
            self.outbox.put(out)
        return len(out)

    def clear_held(self) -> int:
        """Forget the held messages (customer erasure); how many."""
        n = len(self._held)
        self._held = []
        self.outbox.held_changed()
        return n

    def drain(self) -> int:
        """Queue every open coarse window now (shutdown); held messages stay held, on disk."""
        out: list[Reading] = []
        self.privacy.drain(out)
        if out:
            self.outbox.put(out)
        return len(out)

    def _reject(self, reason: str, topic: str, payload: bytes, detail: str) -> None:
        self.counters.rejected_messages += 1
        self.dead_letters.record(source="local", reason=reason, topic=topic, payload=payload, detail=detail)
