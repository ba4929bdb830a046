"""``ContextFuser``: one digital context per customer, fused from all of the customer's edges.

Per customer it keeps the latest value of every (edge, device, capability), per room the
last activity and the last occupancy activation, the edges (online from their status, or
offline from their retained last will; reported backlog; device inventory), and from these
answers *which rooms are occupied* and *is anyone home*.

Update cost is O(1) per event with no allocation beyond a tuple, since it runs in the
ingest hot path; ``snapshot`` does the thinking when someone asks.

Occupied room: an occupancy sensor in it reads on, or one turned on within
``occupancy_window_s``.

Anyone home (``home``, with the ``home_basis`` that decided it), first rule that applies:

1. ``presence``: the customer has presence sensors → home iff any reads true.
2. ``occupancy``: some room is occupied → home.
3. ``door``: the customer has door contacts (a contact whose device or room name holds one
   of ``door_keywords``) → home if anything moved more than ``DOOR_GRACE_S`` after the last
   door event (someone is inside, perhaps asleep); else away once ``occupancy_window_s``
   has passed since the door with nothing moving; else home (just arrived or leaving).
4. ``activity``: home iff something moved within ``away_after_s``.
5. ``none``: no signal at all → ``home`` is ``None``.

"Moved" means an activity event: occupancy turning on, a contact, switch, lock, button
(action), media or check-in event. Temperature and other ambient readings are not activity.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from devices.wire import DeviceProfile, EdgeStatus

from .settings import ContextSettings
from .validation import WireEvent

__all__ = ["ContextFuser", "CustomerContext", "EdgeContext"]

DOOR_GRACE_S = 60.0
ACTIVITY = frozenset({"occupancy", "contact", "switch", "lock", "action", "media", "checkin"})

Value = bool | float | str


@dataclass(slots=True)
class EdgeContext:
    online: bool | None = None
    status_ts: float | None = None
    backlog: int | None = None
    version: str | None = None
    last_seen: float | None = None
    devices: list[dict[str, Any]] = field(default_factory=list)


@dataclass(slots=True)
class CustomerContext:
    """Mutable state of one customer (``ContextFuser.snapshot`` renders it)."""

    # (edge_id, device, capability) -> (ts, value, room)
    latest: dict[tuple[str, str, str], tuple[float, Value, str | None]] = field(default_factory=dict)
    # (edge_id, room) -> [last_activity, last_activation]
    rooms: dict[tuple[str, str], list[float]] = field(default_factory=dict)
    edges: dict[str, EdgeContext] = field(default_factory=dict)
    last_activity: float | None = None  # excluding door contacts (see the door rule)
    last_door: float | None = None

    def to_state(self) -> dict[str, Any]:
        return {
            "latest": [[e, d, c, ts, v, r] for (e, d, c), (ts, v, r) in self.latest.items()],
            "rooms": [[e, r, a, o] for (e, r), (a, o) in self.rooms.items()],
            "edges": {
                eid: {
                    "online": ec.online, "status_ts": ec.status_ts, "backlog": ec.backlog,
                    "version": ec.version, "last_seen": ec.last_seen, "devices": ec.devices,
                }
                for eid, ec in self.edges.items()
            },
            "last_activity": self.last_activity,
            "last_door": self.last_door,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> CustomerContext:
        ctx = cls()
        for e, d, c, ts, v, r in state.get("latest", []):
            ctx.latest[(e, d, c)] = (ts, v, r)
        for e, r, a, o in state.get("rooms", []):
            ctx.rooms[(e, r)] = [a, o]
        for eid, ec in state.get("edges", {}).items():
            ctx.edges[eid] = EdgeContext(**ec)
        ctx.last_activity = state.get("last_activity")
        ctx.last_door = state.get("last_door")
        return ctx


class ContextFuser:
    """Per-customer digital context, updated per batch, rendered by ``snapshot``."""

    def __init__(self, settings: ContextSettings | None = None, *, clock: Callable[[], float] = time.time) -> None:
        self.settings = settings or ContextSettings()
        self._clock = clock
        self._customers: dict[str, CustomerContext] = {}
        self._dirty: set[str] = set()
        self._door_cache: dict[tuple[str, str, str | None], bool] = {}
        self._keywords = tuple(k.lower() for k in self.settings.door_keywords)

    @property
    def customers(self) -> list[str]:
        return sorted(self._customers)

    def customer(self, customer_id: str) -> CustomerContext:
        ctx = self._customers.get(customer_id)
        if ctx is None:
            ctx = self._customers[customer_id] = CustomerContext()
        return ctx

    # -- updates (hot path) ------------------------------------------------------------------
    def apply_events(self, customer_id: str, edge_id: str, events: Sequence[WireEvent]) -> None:
        """Fold a batch of events (wire structs, any order) into the customer's context.

        A batch whose timestamps ascend (the usual case) is folded per key, not per event:
        only the newest event of each (device, capability), and of each device's
        occupancy-on, can change anything. A device's room is read from those events.
        """
        ctx = self.customer(customer_id)
        ts = [e.ts for e in events]
        if ts == sorted(ts):
            self._fold_ascending(ctx, edge_id, events)
        else:
            self._fold_each(ctx, edge_id, events)
        edge = ctx.edges.get(edge_id)
        if edge is None:
            edge = ctx.edges[edge_id] = EdgeContext()
        edge.last_seen = self._clock()
        self._dirty.add(customer_id)

    def _fold_ascending(self, ctx: CustomerContext, edge_id: str, events: Sequence[WireEvent]) -> None:
        newest = {(e.device, e.capability): e for e in events}  # ascending: last is newest
        switched_on = {e.device: e for e in events if e.value is True and e.capability == "occupancy"}
        latest = ctx.latest
        activity = ctx.last_activity or 0.0
        door = ctx.last_door or 0.0
        for (device, cap), e in newest.items():
            ts = e.ts
            room = e.room
            key = (edge_id, device, cap)
            cur = latest.get(key)
            if cur is None or ts >= cur[0]:
                latest[key] = (ts, e.value, room)
            if cap not in ACTIVITY or cap == "occupancy":  # occupancy: only turning on counts
                continue
            if cap == "contact" and self._is_door(edge_id, device, room):
                door = max(door, ts)
                continue
            activity = max(activity, ts)
            if room is not None:
                self._room(ctx, edge_id, room, ts, activation=False)
        for device, e in switched_on.items():
            ts = e.ts
            activity = max(activity, ts)
            room = e.room
            if room is not None:
                self._room(ctx, edge_id, room, ts, activation=True)
        ctx.last_activity = activity or None
        ctx.last_door = door or None

    def _fold_each(self, ctx: CustomerContext, edge_id: str, events: Sequence[WireEvent]) -> None:
        latest = ctx.latest
        activity = ctx.last_activity or 0.0
        door = ctx.last_door or 0.0
        for e in events:
            ts = e.ts
            cap = e.capability
            device = e.device
            room = e.room
            key = (edge_id, device, cap)
            cur = latest.get(key)
            if cur is None or ts >= cur[0]:
                latest[key] = (ts, e.value, room)
            if cap not in ACTIVITY or (cap == "occupancy" and e.value is not True):
                continue
            if cap == "contact" and self._is_door(edge_id, device, room):
                door = max(door, ts)
                continue
            activity = max(activity, ts)
            if room is not None:
                self._room(ctx, edge_id, room, ts, activation=cap == "occupancy")
        ctx.last_activity = activity or None
        ctx.last_door = door or None

    @staticmethod
    def _room(ctx: CustomerContext, edge_id: str, room: str, ts: float, *, activation: bool) -> None:
        state = ctx.rooms.get((edge_id, room))
        if state is None:
            state = ctx.rooms[(edge_id, room)] = [0.0, 0.0]
        if ts > state[0]:
            state[0] = ts
        if activation and ts > state[1]:
            state[1] = ts

    def apply_status(self, customer_id: str, edge_id: str, status: EdgeStatus, *, seen: float | None = None) -> None:
        """An edge's status (``seen``: when it was heard from; now unless given)."""
        edge = self.customer(customer_id).edges.setdefault(edge_id, EdgeContext())
        edge.online = status.state == "online"
        edge.status_ts = status.ts
        edge.backlog = status.backlog
        edge.version = status.version
        self._seen(edge, self._clock() if seen is None else seen)
        self._dirty.add(customer_id)

    def apply_devices(
        self, customer_id: str, edge_id: str, profiles: Iterable[DeviceProfile], *, seen: float | None = None
    ) -> None:
        """An edge's device inventory (``seen`` None: a retained copy, which says nothing about now)."""
        edge = self.customer(customer_id).edges.setdefault(edge_id, EdgeContext())
        edge.devices = [p.model_dump(mode="json", exclude_none=True) for p in profiles]
        if seen is not None:
            self._seen(edge, seen)
        self._dirty.add(customer_id)

    @staticmethod
    def _seen(edge: EdgeContext, ts: float) -> None:
        if edge.last_seen is None or ts > edge.last_seen:
            edge.last_seen = ts

    def _is_door(self, edge_id: str, device: str, room: str | None) -> bool:
        key = (edge_id, device, room)
        door = self._door_cache.get(key)
        if door is None:
            text = f"{device} {room or ''}".lower()
            door = any(k in text for k in self._keywords)
            if len(self._door_cache) > 100_000:
                self._door_cache.clear()
            self._door_cache[key] = door
        return door

    # -- persistence -------------------------------------------------------------------------
    def take_dirty(self) -> list[tuple[str, dict[str, Any]]]:
        """States of customers changed since the last call (the writer persists them)."""
        dirty, self._dirty = self._dirty, set()
        return [(cid, self._customers[cid].to_state()) for cid in sorted(dirty) if cid in self._customers]

    def forget(self, customer_id: str) -> bool:
        """Drop everything held about the customer (erasure); False if nothing was held."""
        self._dirty.discard(customer_id)
        return self._customers.pop(customer_id, None) is not None

    def mark_dirty(self, customer_ids: Iterable[str]) -> None:
        self._dirty.update(c for c in customer_ids if c in self._customers)

    @property
    def has_dirty(self) -> bool:
        return bool(self._dirty)

    def restore(self, states: dict[str, dict[str, Any]]) -> None:
        for cid, state in states.items():
            self._customers[cid] = CustomerContext.from_state(state)

    # -- reading -----------------------------------------------------------------------------
    def snapshot(self, customer_id: str, *, now: float | None = None) -> dict[str, Any]:
        """The customer's digital context as plain JSON-serialisable data.

        Keys: ``customer_id``, ``ts``, ``home`` (bool or None), ``home_basis``,
        ``occupied_rooms`` (room names), ``rooms`` (per edge and room: ``occupied``,
        ``last_activity``, ``last_activation``), ``last_activity``, ``latest`` (one entry per
        edge/device/capability), ``edges`` (``online``, ``backlog``, ``last_seen``, ``devices``…).
        An unknown customer gets an empty context with ``home`` None.
        """
        now = self._clock() if now is None else now
        ctx = self._customers.get(customer_id) or CustomerContext()
        window = self.settings.occupancy_window_s

        on_now: set[tuple[str, str]] = set()
        presence: list[bool] = []
        for (edge_id, _device, cap), (_ts, value, room) in ctx.latest.items():
            if cap == "occupancy" and value is True and room is not None:
                on_now.add((edge_id, room))
            elif cap == "presence":
                presence.append(value is True)

        rooms = []
        occupied: list[str] = []
        all_rooms = set(ctx.rooms) | on_now
        for edge_id, room in sorted(all_rooms):
            activity, activation = ctx.rooms.get((edge_id, room), [0.0, 0.0])
            is_occupied = (edge_id, room) in on_now or (activation > 0 and now - activation <= window)
            if is_occupied and room not in occupied:
                occupied.append(room)
            rooms.append({
                "edge_id": edge_id, "room": room, "occupied": is_occupied,
                "last_activity": activity or None, "last_activation": activation or None,
            })

        home, basis = self._home(ctx, presence=presence, occupied=bool(occupied), now=now)
        return {
            "customer_id": customer_id,
            "ts": now,
            "home": home,
            "home_basis": basis,
            "occupied_rooms": occupied,
            "rooms": rooms,
            "last_activity": ctx.last_activity,
            "last_door": ctx.last_door,
            "latest": [
                {"edge_id": e, "device": d, "capability": c, "value": v, "ts": ts, "room": r}
                for (e, d, c), (ts, v, r) in sorted(ctx.latest.items())
            ],
            "edges": [
                {
                    "edge_id": eid, "online": ec.online, "backlog": ec.backlog, "status_ts": ec.status_ts,
                    "version": ec.version, "last_seen": ec.last_seen, "devices": list(ec.devices),
                }
                for eid, ec in sorted(ctx.edges.items())
            ],
        }

    def _home(self, ctx: CustomerContext, *, presence: list[bool], occupied: bool, now: float) -> tuple[bool | None, str]:
        if presence:
            return any(presence), "presence"
        if occupied:
            return True, "occupancy"
        activity, door = ctx.last_activity, ctx.last_door
        if door is not None:
            if activity is not None and activity > door + DOOR_GRACE_S:
                return True, "door"
            return now - door < self.settings.occupancy_window_s, "door"
        if activity is not None:
            return now - activity <= self.settings.away_after_s, "activity"
        return None, "none"
