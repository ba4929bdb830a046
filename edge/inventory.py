"""The edge's device inventory, published retained on ``genius/v1/{c}/{e}/devices``.

Adapters describe devices (``DeviceProfile``); the inventory adds what the customer
configured (room overrides) and the privacy policy of each capability, so the hub knows
which capabilities it will never see. ``changed`` is set on every real change; the uplink
debounces it before publishing.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable, Mapping

from devices.wire import DeviceProfile

from .privacy import PolicyResolver
from .settings import DeviceSettings

__all__ = ["Inventory"]


class Inventory:
    """Latest profile per device with the edge's overrides applied."""

    def __init__(self, resolver: PolicyResolver, devices: Mapping[str, DeviceSettings]) -> None:
        self._resolver = resolver
        self._overrides = dict(devices)
        self._profiles: dict[str, DeviceProfile] = {}
        self.changed = asyncio.Event()
        self.version = 0

    def __len__(self) -> int:
        return len(self._profiles)

    def __contains__(self, device: object) -> bool:
        return device in self._profiles

    def get(self, device: str) -> DeviceProfile | None:
        return self._profiles.get(device)

    def update(self, profiles: Iterable[DeviceProfile]) -> bool:
        """Add or replace profiles; True if anything the hub would see changed."""
        dirty = False
        for profile in profiles:
            override = self._overrides.get(profile.device)
            room = override.room if override is not None and override.room is not None else profile.room
            previous = self._profiles.get(profile.device)
            available = profile.available if profile.available is not None else (
                previous.available if previous is not None else None
            )
            merged = profile.model_copy(
                update={
                    "room": room,
                    "available": available,
                    "privacy": self._resolver.for_profile(profile.device, profile.capabilities),
                }
            )
            if merged != previous:
                self._profiles[profile.device] = merged
                dirty = True
        if dirty:
            self._touch()
        return dirty

    def set_available(self, device: str, online: bool) -> bool:
        profile = self._profiles.get(device)
        if profile is None or profile.available is online:
            return False
        self._profiles[device] = profile.model_copy(update={"available": online})
        self._touch()
        return True

    def to_json(self) -> bytes:
        """The retained ``devices`` payload: a JSON list of ``DeviceProfile``, sorted by device."""
        docs = [
            json.loads(p.model_dump_json(exclude_none=True)) for _, p in sorted(self._profiles.items())
        ]
        return json.dumps(docs, separators=(",", ":"), ensure_ascii=False).encode()

    def _touch(self) -> None:
        self.version += 1
        self.changed.set()
