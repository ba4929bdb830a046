"""The hub's name → integer-key dictionaries (customers, edges, devices, rooms, capabilities).

Held in memory so the hot path never asks SQLite for a key: a new name gets the next key at
once and its row rides in the same transaction as the first events that use it. Keys are
handed out in insertion order (DESIGN.md, "Identities").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

__all__ = ["Catalog", "EdgeEntry", "NewRows"]


class EdgeEntry(NamedTuple):
    edge_key: int
    edge_id: str
    customer_key: int
    customer_id: str


@dataclass(slots=True)
class NewRows:
    """Dictionary rows created since the last commit."""

    customers: list[tuple[int, str, float]] = field(default_factory=list)
    edges: list[tuple[int, str, int, float, float]] = field(default_factory=list)
    devices: list[tuple[int, int, str]] = field(default_factory=list)
    rooms: list[tuple[int, int, str]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.customers or self.edges or self.devices or self.rooms)


class Catalog:
    """Name ↔ key maps. ``customer``/``edge``/``device``/``room`` create missing entries."""

    def __init__(self) -> None:
        self.customers: dict[str, int] = {}
        self.edges: dict[str, EdgeEntry] = {}
        self.edges_by_key: dict[int, EdgeEntry] = {}
        # edge_key -> name -> key (nested, so the hot path hashes a str, not a tuple)
        self.devices: dict[int, dict[str, int]] = {}
        self.rooms: dict[int, dict[str, int]] = {}
        self.capabilities: dict[str, int] = {}
        self.capability_names: dict[int, str] = {}
        self.device_names: dict[int, str] = {}
        self.room_names: dict[int, str] = {}
        self.pending = NewRows()
        self._next_customer = 1
        self._next_edge = 1
        self._next_device = 1
        self._next_room = 1

    # -- loading -------------------------------------------------------------------------
    def load_customer(self, key: int, customer_id: str) -> None:
        self.customers[customer_id] = key
        self._next_customer = max(self._next_customer, key + 1)

    def load_edge(self, entry: EdgeEntry) -> None:
        self.edges[entry.edge_id] = entry
        self.edges_by_key[entry.edge_key] = entry
        self._next_edge = max(self._next_edge, entry.edge_key + 1)

    def load_device(self, key: int, edge_key: int, name: str) -> None:
        self.devices.setdefault(edge_key, {})[name] = key
        self.device_names[key] = name
        self._next_device = max(self._next_device, key + 1)

    def load_room(self, key: int, edge_key: int, name: str) -> None:
        self.rooms.setdefault(edge_key, {})[name] = key
        self.room_names[key] = name
        self._next_room = max(self._next_room, key + 1)

    def load_capability(self, code: int, name: str) -> None:
        self.capabilities[name] = code
        self.capability_names[code] = name

    # -- lookups that create -------------------------------------------------------------
    def customer(self, customer_id: str, *, now: float) -> int:
        key = self.customers.get(customer_id)
        if key is None:
            key = self._next_customer
            self._next_customer += 1
            self.customers[customer_id] = key
            self.pending.customers.append((key, customer_id, now))
        return key

    def register_edge(self, edge_id: str, customer_id: str, *, now: float, seen: float | None = None) -> EdgeEntry:
        """The edge's entry, registering it to ``customer_id`` the first time it is seen.

        ``seen`` is when the edge was last heard from (``now`` unless the message was an old,
        retained one). The caller checks ``entry.customer_id``: an edge belongs to one customer.
        """
        entry = self.edges.get(edge_id)
        if entry is None:
            customer_key = self.customer(customer_id, now=now)
            entry = EdgeEntry(self._next_edge, edge_id, customer_key, customer_id)
            self._next_edge += 1
            self.edges[edge_id] = entry
            self.edges_by_key[entry.edge_key] = entry
            self.pending.edges.append((entry.edge_key, edge_id, customer_key, now, now if seen is None else seen))
        return entry

    def device(self, edge_key: int, name: str) -> int:
        names = self.devices.setdefault(edge_key, {})
        key = names.get(name)
        if key is None:
            key = self._next_device
            self._next_device += 1
            names[name] = key
            self.device_names[key] = name
            self.pending.devices.append((key, edge_key, name))
        return key

    def room(self, edge_key: int, name: str) -> int:
        names = self.rooms.setdefault(edge_key, {})
        key = names.get(name)
        if key is None:
            key = self._next_room
            self._next_room += 1
            names[name] = key
            self.room_names[key] = name
            self.pending.rooms.append((key, edge_key, name))
        return key

    def take_pending(self) -> NewRows:
        pending, self.pending = self.pending, NewRows()
        return pending
