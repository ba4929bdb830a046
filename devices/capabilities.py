"""Canonical capabilities, their value kinds and units (DESIGN.md, "Capabilities").

A capability is a closed set; new ones are added to DESIGN.md first. ``battery`` (percent)
is the one addition over DESIGN.md, needed because zigbee2mqtt and Shelly report it.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

__all__ = [
    "BOOL_CAPABILITIES",
    "Capability",
    "KIND",
    "NUMBER_CAPABILITIES",
    "TEXT_CAPABILITIES",
    "UNITS",
    "ValueKind",
    "capability_kind",
]


class Capability(StrEnum):
    OCCUPANCY = "occupancy"
    CONTACT = "contact"  # true = closed
    TEMPERATURE = "temperature"
    HUMIDITY = "humidity"
    ILLUMINANCE = "illuminance"
    POWER = "power"
    ENERGY = "energy"
    SWITCH = "switch"
    ACTION = "action"
    LOCK = "lock"  # true = locked
    MEDIA = "media"
    PRESENCE = "presence"
    CHECKIN = "checkin"
    BATTERY = "battery"


ValueKind = Literal["bool", "number", "text"]

BOOL_CAPABILITIES = (
    Capability.OCCUPANCY,
    Capability.CONTACT,
    Capability.SWITCH,
    Capability.LOCK,
    Capability.PRESENCE,
)
NUMBER_CAPABILITIES = (
    Capability.TEMPERATURE,
    Capability.HUMIDITY,
    Capability.ILLUMINANCE,
    Capability.POWER,
    Capability.ENERGY,
    Capability.BATTERY,
)
TEXT_CAPABILITIES = (Capability.ACTION, Capability.MEDIA, Capability.CHECKIN)

KIND: dict[str, ValueKind] = {
    **{c.value: "bool" for c in BOOL_CAPABILITIES},
    **{c.value: "number" for c in NUMBER_CAPABILITIES},
    **{c.value: "text" for c in TEXT_CAPABILITIES},
}

UNITS: dict[str, str | None] = {
    "temperature": "°C",
    "humidity": "%",
    "illuminance": "lx",
    "power": "W",
    "energy": "kWh",
    "battery": "%",
}


def capability_kind(capability: str) -> ValueKind:
    """The value kind of a capability; ``KeyError`` for an unknown one."""
    return KIND[capability]
