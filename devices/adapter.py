"""The adapter API: how a smart-product protocol becomes canonical readings.

An ``Adapter`` is a frozen, declarative description (name, topic filters, options) that is
registered through the ``genius.devices`` entry-point group. It holds no per-home state:
each edge asks it for a fresh ``AdapterSession`` that learns the home's devices from
discovery messages (zigbee2mqtt's ``bridge/devices``, Home Assistant discovery configs)
and turns every message into an ``AdapterResult``.

A session's ``handle`` never returns silently on bad input: it raises ``PayloadError`` with
a short ``reason`` so the edge can dead-letter the raw bytes.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from .definitions import DeviceDefinition
from .errors import PayloadError
from .readings import AdapterResult
from .wire import DeviceProfile

__all__ = [
    "Adapter",
    "AdapterSession",
    "DefinitionsAdapter",
    "decode_json",
    "first_session",
    "topic_matches",
]

MAX_PAYLOAD_BYTES = 64 * 1024


def topic_matches(filter_: str, topic: str) -> bool:
    """MQTT topic-filter matching (``+`` one level, ``#`` the rest)."""
    if filter_ == "#":
        return not topic.startswith("$")
    fparts = filter_.split("/")
    tparts = topic.split("/")
    for i, f in enumerate(fparts):
        if f == "#":
            return True
        if i >= len(tparts):
            return False
        if f != "+" and f != tparts[i]:
            return False
    return len(fparts) == len(tparts)


def decode_json(payload: bytes, *, topic: str | None = None, limit: int = MAX_PAYLOAD_BYTES) -> Any:
    """Decode a firmware JSON payload; ``PayloadError`` (``size``/``json``) when it isn't one."""
    if len(payload) > limit:
        raise PayloadError(f"payload of {len(payload)} bytes exceeds {limit}", reason="size", topic=topic)
    try:
        return json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise PayloadError(f"not JSON: {exc}", reason="json", topic=topic) from exc


class AdapterSession(ABC):
    """Per-edge state of one adapter. Not thread-safe; one event loop drives it."""

    adapter: Adapter

    def subscriptions(self) -> list[str]:
        """Topic filters to subscribe to now (discovery may add more through results)."""
        return list(self.adapter.topics)

    def matches(self, topic: str) -> bool:
        return any(topic_matches(f, topic) for f in self.subscriptions())

    @abstractmethod
    def handle(self, topic: str, payload: bytes, *, ts: float) -> AdapterResult:
        """Turn one message into readings/profiles; raise ``PayloadError`` when it can't."""

    def profiles(self) -> list[DeviceProfile]:
        """Every device this session knows of now (the edge publishes them retained)."""
        return []


@dataclass(frozen=True, slots=True)
class Adapter(ABC):
    """A protocol a family of smart products speaks. Subclasses are frozen dataclasses."""

    name: str
    topics: tuple[str, ...]
    description: str = ""

    @abstractmethod
    def new_session(self) -> AdapterSession: ...


class _DefinitionsSession(AdapterSession):
    def __init__(self, adapter: DefinitionsAdapter) -> None:
        self.adapter = adapter
        self._seen: dict[str, DeviceProfile] = {}

    def subscriptions(self) -> list[str]:
        return [d.match.pattern for d in self.adapter.definitions]

    def handle(self, topic: str, payload: bytes, *, ts: float) -> AdapterResult:
        for definition in self.adapter.definitions:
            device = definition.match.device_of(topic)
            if device is None:
                continue
            data = decode_json(payload, topic=topic)
            readings = definition.readings(device, data, ts=ts)
            result = AdapterResult(readings=readings)
            if device not in self._seen:
                try:
                    profile = DeviceProfile(
                        device=device,
                        adapter=self.adapter.name,
                        vendor=definition.vendor,
                        model=definition.model,
                        description=definition.description,
                        capabilities=tuple(sorted({e.capability.value for e in definition.exposes})),
                    )
                except ValidationError as exc:  # the name comes from the topic: empty, too long …
                    raise PayloadError(f"bad device name {device!r:.80} in {topic!r:.120}", reason="device_name",
                                       topic=topic) from exc
                self._seen[device] = profile
                result.profiles.append(profile)
            return result
        raise PayloadError(f"no definition matches {topic!r}", reason="unknown_device", topic=topic)

    def profiles(self) -> list[DeviceProfile]:
        return list(self._seen.values())


@dataclass(frozen=True, slots=True)
class DefinitionsAdapter(Adapter):
    """Serves plain JSON devices declared as ``DeviceDefinition`` (third-party plugins)."""

    definitions: tuple[DeviceDefinition, ...] = field(default=())

    @classmethod
    def of(cls, definitions: Iterable[DeviceDefinition], *, name: str = "definitions") -> DefinitionsAdapter:
        defs = tuple(definitions)
        return cls(name=name, topics=tuple(d.match.pattern for d in defs), definitions=defs,
                   description="JSON devices declared with DeviceDefinition")

    def new_session(self) -> AdapterSession:
        return _DefinitionsSession(self)


def first_session(sessions: Sequence[AdapterSession], topic: str) -> AdapterSession | None:
    """The session that owns ``topic``: the first, in registry order, that matches it."""
    for s in sessions:
        if s.matches(topic):
            return s
    return None
