"""The customer's privacy policy, applied to every reading before it can get a ``seq``.

``share`` forwards a reading as it is; ``local`` never lets it leave the edge (it gets no
seq and is only counted); ``coarse`` forwards at reduced resolution, at most one event per
(device, capability) per window (60 s by default), timestamped at the window's start:

* booleans (occupancy, contact …): whether the value was true at any time in the window;
* numbers: the window's mean rounded to the capability's resolution (0.5 °C, 10 W …);
* text (action, media …): one event per window whose value is the first value seen if it
  is in the allow list, else ``"activity"``.

A coarse window is emitted once it is over: when a reading for a later window arrives or
when ``due(now)`` finds it closed (the agent calls it every second). A reading for a window
already emitted is dropped and counted as ``late``, never sent as a second event.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from devices.capabilities import KIND
from devices.readings import Reading

from .settings import DeviceSettings, Policy, PrivacySettings

__all__ = ["Coarsener", "PolicyResolver", "PrivacyCounters", "PrivacyFilter"]

GRACE_S = 2.0  # how long after a window ends late readings may still join it


class PolicyResolver:
    """``policy(device, capability)``: device+capability, device, capability, default."""

    def __init__(self, privacy: PrivacySettings, devices: Mapping[str, DeviceSettings]) -> None:
        self._privacy = privacy
        self._devices = dict(devices)
        self._cache: dict[tuple[str, str], Policy] = {}

    def policy(self, device: str, capability: str) -> Policy:
        key = (device, capability)
        found = self._cache.get(key)
        if found is None:
            found = self._resolve(device, capability)
            if len(self._cache) > 100_000:  # device names come from firmware; stay bounded
                self._cache.clear()
            self._cache[key] = found
        return found

    def _resolve(self, device: str, capability: str) -> Policy:
        override = self._devices.get(device)
        if override is not None and override.privacy is not None:
            if isinstance(override.privacy, str):
                return override.privacy
            if capability in override.privacy:
                return override.privacy[capability]
            if "*" in override.privacy:
                return override.privacy["*"]
        return self._privacy.capabilities.get(capability, self._privacy.default)

    def for_profile(self, device: str, capabilities: tuple[str, ...]) -> dict[str, Policy]:
        """Capability → policy for one device's inventory entry."""
        return {cap: self.policy(device, cap) for cap in capabilities}


@dataclass(slots=True)
class _Window:
    index: int  # floor(ts / window_s)
    kind: str
    room: str | None
    any_true: bool = False
    total: float = 0.0
    count: int = 0
    text: str | None = None


class Coarsener:
    """Aggregates coarse readings into at most one event per (device, capability) per window."""

    def __init__(
        self,
        *,
        window_s: float = 60.0,
        resolution: Mapping[str, float] | None = None,
        allowed_text: tuple[str, ...] | frozenset[str] = (),
        grace_s: float = GRACE_S,
    ) -> None:
        self.window_s = window_s
        self.resolution = dict(resolution or {})
        self.allowed_text = frozenset(allowed_text)
        self.grace_s = grace_s
        self._open: dict[tuple[str, str], _Window] = {}
        self._emitted: dict[tuple[str, str], int] = {}  # last window index emitted per key
        self.late = 0

    def offer(self, reading: Reading, out: list[Reading]) -> None:
        """Fold ``reading`` into its window; append any window it closes to ``out``."""
        key = (reading.device, reading.capability)
        index = math.floor(reading.ts / self.window_s)
        current = self._open.get(key)
        if current is not None and index != current.index:
            if index < current.index:
                self.late += 1
                return
            out.append(self._close(key, current))
            current = None
        if current is None:
            if index <= self._emitted.get(key, -1):
                self.late += 1
                return
            current = _Window(index=index, kind=KIND[reading.capability], room=reading.room)
            self._open[key] = current
        value = reading.value
        if reading.room is not None:
            current.room = reading.room
        if current.kind == "bool":
            current.any_true = current.any_true or bool(value)
        elif current.kind == "number":
            current.total += float(value)
            current.count += 1
        elif current.text is None:
            current.text = value if value in self.allowed_text else "activity"  # type: ignore[assignment]

    def due(self, now: float, out: list[Reading]) -> None:
        """Append to ``out`` every window that ended more than ``grace_s`` before ``now``."""
        closed = [k for k, w in self._open.items() if (w.index + 1) * self.window_s + self.grace_s <= now]
        for key in closed:
            out.append(self._close(key, self._open[key]))

    def drain(self, out: list[Reading]) -> None:
        """Emit every open window now (graceful shutdown: a partial window is better than none)."""
        for key in list(self._open):
            out.append(self._close(key, self._open[key]))

    def clear(self) -> None:
        """Forget open windows (a purge erases what has not been queued yet too)."""
        self._open.clear()

    @property
    def open_windows(self) -> int:
        return len(self._open)

    def _close(self, key: tuple[str, str], w: _Window) -> Reading:
        del self._open[key]
        self._emitted[key] = w.index
        ts = w.index * self.window_s
        value: bool | float | str
        if w.kind == "bool":
            value = w.any_true
        elif w.kind == "number":
            step = self.resolution.get(key[1], 1.0)
            value = float(round(w.total / w.count / step) * step)
            value = round(value, 6)  # 0.1 steps: 21.5000000001 → 21.5 on the wire
        else:
            value = w.text or "activity"
        return Reading(ts, key[0], key[1], value, w.room)


@dataclass(slots=True)
class PrivacyCounters:
    shared: int = 0
    coarse_in: int = 0
    coarse_out: int = 0
    local: int = 0


@dataclass
class PrivacyFilter:
    """Applies the policy: ``apply`` appends what may be queued (now) to ``out``."""

    resolver: PolicyResolver
    coarsener: Coarsener
    counters: PrivacyCounters = field(default_factory=PrivacyCounters)

    @classmethod
    def from_settings(cls, privacy: PrivacySettings, devices: Mapping[str, DeviceSettings]) -> PrivacyFilter:
        return cls(
            resolver=PolicyResolver(privacy, devices),
            coarsener=Coarsener(
                window_s=privacy.window_s, resolution=privacy.resolution, allowed_text=privacy.allowed_text
            ),
        )

    def apply(self, reading: Reading, out: list[Reading]) -> None:
        policy = self.resolver.policy(reading.device, reading.capability)
        if policy == "share":
            self.counters.shared += 1
            out.append(reading)
        elif policy == "local":
            self.counters.local += 1
        else:
            self.counters.coarse_in += 1
            before = len(out)
            self.coarsener.offer(reading, out)
            self.counters.coarse_out += len(out) - before

    def due(self, now: float, out: list[Reading]) -> None:
        before = len(out)
        self.coarsener.due(now, out)
        self.counters.coarse_out += len(out) - before

    def drain(self, out: list[Reading]) -> None:
        before = len(out)
        self.coarsener.drain(out)
        self.counters.coarse_out += len(out) - before
