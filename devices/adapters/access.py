"""Venue access readers: a hotel's key-card reader or a gym's member gate.

There is no common firmware standard for these, so Genius defines a small JSON document a
venue's integration publishes on ``venue/<reader>/access``::

    {"event": "arrival" | "departure" | "entry" | "exit", "ts": 1700000000.0}

It becomes the ``checkin`` capability (text) of device ``<reader>``. A venue edge forwards
these only for customers who consented (DESIGN.md, "Data flow").
"""

from __future__ import annotations

from devices.definitions import DeviceDefinition, Topic, checkin, define

__all__ = ["ACCESS_READER"]

ACCESS_READER: DeviceDefinition = define(
    vendor="genius",
    model="access-reader",
    description="Venue key-card / member-card reader (hotel reception, gym gate)",
    match=Topic("venue/+/access"),
    exposes=(checkin(path="event"),),
)
