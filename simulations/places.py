"""Homes and venues: rooms and the devices in them, each speaking a real protocol.

A ``PlaceSpec`` is what one edge sees: its id and role, its rooms and its devices. Devices
carry their wire identity (zigbee2mqtt friendly name, Tasmota topic, Shelly topic prefix,
Home Assistant discovery object id, venue reader id) and the sensor parameters the
simulator uses (PIR timeout, miss and false-trigger rates, report periods, appliance watts).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from .catalogue import EdgeRole
from .people import ResidentSpec

__all__ = [
    "DeviceKind",
    "DeviceSpec",
    "PlaceSpec",
    "Protocol",
    "build_gym",
    "build_holiday_home",
    "build_home",
    "build_hotel",
]

Protocol = Literal["zigbee2mqtt", "tasmota", "shelly", "homeassistant", "access"]
DeviceKind = Literal["motion", "contact", "climate", "button", "plug", "illuminance", "access"]

# appliance -> (typical watts low, high, standby watts)
APPLIANCE_WATTS: dict[str, tuple[float, float, float]] = {
    "coffee_machine": (1100.0, 1500.0, 1.5),
    "kettle": (1800.0, 2400.0, 0.0),
    "tv": (60.0, 180.0, 0.6),
    "washer": (180.0, 450.0, 1.0),  # motor; heating phases draw ~2000 W (see sensors)
    "dishwasher": (120.0, 300.0, 0.8),
    "stove": (1200.0, 2600.0, 0.0),
    "desk": (45.0, 160.0, 0.0),
}


@dataclass(frozen=True, slots=True)
class DeviceSpec:
    """One device of a place. ``key`` is unique within the place and names it in effects."""

    key: str
    kind: DeviceKind
    protocol: Protocol
    room: str
    wire_id: str
    appliance: str | None = None
    watts: float = 0.0  # appliance draw when on (plugs)
    standby: float = 0.0
    timeout: float = 90.0  # PIR: seconds without motion before occupancy false
    miss_p: float = 0.05  # PIR: probability a movement is not detected
    false_per_day: float = 0.3  # PIR/contact: spurious triggers per day
    report_s: float = 600.0  # periodic report (Tasmota TelePeriod, climate heartbeat, lux period)
    battery_s: float = 0.0  # battery report period (0 = mains powered)
    ieee: str = ""  # zigbee IEEE address / MAC for discovery documents


@dataclass(frozen=True)
class PlaceSpec:
    """One edge's place: a home, a hotel room, a holiday home, a gym."""

    edge_id: str
    role: EdgeRole
    venue: str
    rooms: tuple[str, ...]
    devices: tuple[DeviceSpec, ...]
    _by_key: dict[str, DeviceSpec] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        keys = [d.key for d in self.devices]
        if len(set(keys)) != len(keys):
            raise ValueError(f"{self.edge_id}: duplicate device keys")
        self._by_key.update({d.key: d for d in self.devices})

    @property
    def edge_role(self) -> str:
        """The role its edge agent declares: hotels and gyms are ``venue`` edges."""
        return "venue" if self.role in ("hotel", "gym") else self.role

    def device(self, key: str) -> DeviceSpec | None:
        return self._by_key.get(key)

    def motion(self, room: str) -> DeviceSpec | None:
        return self._by_key.get(f"{room}_motion")

    def base_room(self, preferred: tuple[str, ...] = ("living", "room", "office", "kitchen")) -> str:
        for room in preferred:
            if room in self.rooms:
                return room
        return self.rooms[0]


def _hex(rng: np.random.Generator, n: int) -> str:
    return "".join(f"{int(b):02x}" for b in rng.integers(0, 256, size=n))


def _z2m(rng: np.random.Generator, key: str, kind: DeviceKind, room: str, name: str, **kw: float | str | None) -> DeviceSpec:
    battery = 0.0 if kind == "plug" else float(rng.uniform(2.5, 4.0)) * 3600.0
    return DeviceSpec(key=key, kind=kind, protocol="zigbee2mqtt", room=room, wire_id=f"{room}/{name}",
                      battery_s=battery, ieee="0x" + _hex(rng, 8), **kw)  # type: ignore[arg-type]


def _motion(rng: np.random.Generator, room: str) -> DeviceSpec:
    return _z2m(rng, f"{room}_motion", "motion", room, "motion",
                timeout=float(rng.choice([60.0, 75.0, 90.0])), miss_p=float(rng.uniform(0.02, 0.08)),
                false_per_day=float(rng.uniform(0.05, 0.6)))


def _contact(rng: np.random.Generator, key: str, room: str) -> DeviceSpec:
    return _z2m(rng, key, "contact", room, key, false_per_day=0.0)


def _climate(rng: np.random.Generator, room: str) -> DeviceSpec:
    return _z2m(rng, f"{room}_climate", "climate", room, "climate", report_s=float(rng.uniform(2400.0, 3600.0)))


def _plug(rng: np.random.Generator, appliance: str, room: str, protocol: Protocol) -> DeviceSpec:
    lo, hi, standby = APPLIANCE_WATTS[appliance]
    watts = float(rng.uniform(lo, hi))
    if protocol == "zigbee2mqtt":
        return _z2m(rng, appliance, "plug", room, appliance, appliance=appliance, watts=watts, standby=standby)
    if protocol == "tasmota":
        # Tasmota's Topic is user-set; most installs name it after the appliance.
        return DeviceSpec(key=appliance, kind="plug", protocol="tasmota", room=room, wire_id=f"{appliance}",
                          appliance=appliance, watts=watts, standby=standby,
                          report_s=float(rng.choice([600.0, 900.0, 1200.0])), ieee=_hex(rng, 6).upper())
    mac = _hex(rng, 6)
    return DeviceSpec(key=appliance, kind="plug", protocol="shelly", room=room, wire_id=f"shelly-{appliance}",
                      appliance=appliance, watts=watts, standby=standby, report_s=3600.0, ieee=mac)


def build_home(rng: np.random.Generator, edge_id: str, residents: tuple[ResidentSpec, ...]) -> PlaceSpec:
    """A home sized for its residents, with a seeded mix of protocols (every protocol present)."""
    rooms = ["hallway", "kitchen", "living", "bedroom", "bathroom"]
    if any(r.remote_days for r in residents) or rng.random() < 0.3:
        rooms.append("office")
    washer_room = "utility" if rng.random() < 0.4 else "bathroom"
    if washer_room == "utility":
        rooms.append("utility")
    devices: list[DeviceSpec] = [_motion(rng, room) for room in rooms]
    devices += [_contact(rng, "front_door", "hallway"), _contact(rng, "fridge", "kitchen"),
                _contact(rng, "bathroom_door", "bathroom")]
    devices += [_climate(rng, "bathroom"), _climate(rng, "living")]
    if rng.random() < 0.5:
        devices.append(_climate(rng, "bedroom"))
    devices.append(_z2m(rng, "bedside_button", "button", "bedroom", "button"))
    drinks = {r.drink for r in residents}
    plugs: list[tuple[str, str, tuple[Protocol, ...]]] = [
        ("kettle", "kitchen", ("tasmota", "zigbee2mqtt")),
        ("tv", "living", ("tasmota", "zigbee2mqtt", "shelly")),
        ("washer", washer_room, ("zigbee2mqtt", "tasmota", "shelly")),
        ("stove", "kitchen", ("shelly",)),  # a metered circuit, not a plug
    ]
    if "coffee" in drinks or rng.random() < 0.2:
        plugs.append(("coffee_machine", "kitchen", ("zigbee2mqtt", "tasmota")))
    if "office" in rooms:
        plugs.append(("desk", "office", ("shelly", "zigbee2mqtt")))
    if any(r.dishwasher for r in residents):
        plugs.append(("dishwasher", "kitchen", ("tasmota", "zigbee2mqtt", "shelly")))
    chosen = [str(rng.choice(choices)) for _, _, choices in plugs]
    if "tasmota" not in chosen:
        chosen[0] = "tasmota"  # the kettle, so every home exercises every adapter
    for (appliance, room, _), protocol in zip(plugs, chosen):
        devices.append(_plug(rng, appliance, room, protocol))  # type: ignore[arg-type]
    devices.append(DeviceSpec(key="living_lux", kind="illuminance", protocol="homeassistant", room="living",
                              wire_id="living-lux", report_s=float(rng.choice([300.0, 600.0])), ieee=_hex(rng, 6)))
    return PlaceSpec(edge_id=edge_id, role="home", venue="home", rooms=tuple(rooms), devices=tuple(devices))


def _reader(rng: np.random.Generator, venue: str, room: str) -> DeviceSpec:
    return DeviceSpec(key="reader", kind="access", protocol="access", room=room, wire_id=f"{venue}-reader",
                      ieee=_hex(rng, 6))


def build_hotel(rng: np.random.Generator, edge_id: str, venue: str) -> PlaceSpec:
    """A business hotel room: key-card reception reader, room motion and door, kettle, TV, alarm button."""
    rooms = ("lobby", "room")
    devices = (
        _reader(rng, venue, "lobby"),
        _motion(rng, "room"),
        _contact(rng, "room_door", "room"),
        _plug(rng, "kettle", "room", "tasmota"),
        _plug(rng, "tv", "room", str(rng.choice(["zigbee2mqtt", "shelly"]))),  # type: ignore[arg-type]
        _z2m(rng, "bedside_button", "button", "room", "alarm"),
    )
    return PlaceSpec(edge_id=edge_id, role="hotel", venue=venue, rooms=rooms, devices=devices)


def build_holiday_home(rng: np.random.Generator, edge_id: str, venue: str) -> PlaceSpec:
    rooms = ("hallway", "kitchen", "living", "bedroom", "bathroom")
    devices = (
        _contact(rng, "front_door", "hallway"),
        *(_motion(rng, room) for room in ("hallway", "kitchen", "living", "bedroom", "bathroom")),
        _plug(rng, "kettle", "kitchen", "tasmota"),
        _plug(rng, "coffee_machine", "kitchen", "zigbee2mqtt"),
        _plug(rng, "tv", "living", "zigbee2mqtt"),
        _plug(rng, "stove", "kitchen", "shelly"),
        _climate(rng, "bathroom"),
    )
    return PlaceSpec(edge_id=edge_id, role="holiday_home", venue=venue, rooms=rooms, devices=devices)


def build_gym(rng: np.random.Generator, edge_id: str, venue: str) -> PlaceSpec:
    rooms = ("entrance", "lockers", "floor")
    devices = (
        _reader(rng, venue, "entrance"),
        _contact(rng, "locker", "lockers"),
        _motion(rng, "floor"),
    )
    return PlaceSpec(edge_id=edge_id, role="gym", venue=venue, rooms=rooms, devices=devices)
