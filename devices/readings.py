"""What adapters produce: canonical readings, before the edge gives them a ``seq``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from .wire import DeviceProfile

__all__ = ["AdapterResult", "Availability", "Reading"]


class Reading(NamedTuple):
    """One canonical reading. A NamedTuple because the edge makes tens of thousands per second."""

    ts: float
    device: str
    capability: str
    value: bool | float | str
    room: str | None = None


class Availability(NamedTuple):
    device: str
    online: bool


@dataclass(slots=True)
class AdapterResult:
    """Everything one incoming message meant.

    ``subscribe`` lists topic filters the session wants added (discovery announced them);
    ``unsubscribe`` those it no longer needs.
    """

    readings: list[Reading] = field(default_factory=list)
    profiles: list[DeviceProfile] = field(default_factory=list)
    availability: list[Availability] = field(default_factory=list)
    subscribe: list[str] = field(default_factory=list)
    unsubscribe: list[str] = field(default_factory=list)
