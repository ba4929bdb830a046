"""Small pieces every built-in adapter shares: names, plain-text payloads, profile bookkeeping.

Kept private: third-party adapters build on ``devices.adapter`` and ``devices.definitions``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ..adapter import MAX_PAYLOAD_BYTES, decode_json
from ..capabilities import KIND
from ..definitions import Expose, to_bool, to_number
from ..errors import PayloadError
from ..readings import AdapterResult, Reading
from ..wire import DeviceProfile

__all__ = [
    "Converter", "ProfileBook", "check_name", "converter", "empty", "json_object", "optional_name", "slug",
    "text_payload",
]

Converter = Callable[[Any], "bool | float | str"]

_NAME_OK = re.compile(r"[^\x00-\x1f\x7f]{1,128}")  # the wire contract's Name; used with fullmatch
_SLUG_SEP = re.compile(r"[^a-z0-9]+")


def check_name(name: str, *, topic: str | None = None, what: str = "device") -> str:
    """``name`` if it is a valid wire ``Name`` (1–128 printable characters), else ``PayloadError``."""
    if not _NAME_OK.fullmatch(name):
        raise PayloadError(f"{what} name {name[:40]!r} is not 1-128 printable characters", reason="schema", topic=topic)
    return name


def optional_name(name: object) -> str | None:
    """A valid wire ``Name`` or ``None``; for metadata (rooms) where a bad value must not sink a reading."""
    return name if isinstance(name, str) and _NAME_OK.fullmatch(name) else None


def slug(text: str) -> str:
    """``"Kitchen Fridge"`` → ``"kitchen_fridge"``: lower case, runs of other characters become one ``_``."""
    return _SLUG_SEP.sub("_", text.lower()).strip("_")


def text_payload(payload: bytes, *, topic: str, limit: int = 4096) -> str:
    """A short plain-text firmware payload (``Online``, ``ON``, ``true`` …), stripped.

    ``PayloadError`` with reason ``size`` when longer than ``limit`` and ``value`` when not UTF-8.
    """
    if len(payload) > min(limit, MAX_PAYLOAD_BYTES):
        raise PayloadError(f"text payload of {len(payload)} bytes", reason="size", topic=topic)
    try:
        return payload.decode("utf-8").strip()
    except UnicodeDecodeError as exc:
        raise PayloadError(f"not UTF-8 text: {exc}", reason="value", topic=topic) from exc


def json_object(payload: bytes, *, topic: str, what: str) -> dict[str, Any]:
    """A firmware payload that must be one JSON object; ``PayloadError`` otherwise."""
    data = decode_json(payload, topic=topic)
    if not isinstance(data, dict):
        raise PayloadError(f"{what} payload is not a JSON object", reason="schema", topic=topic)
    return data


def converter(expose: Expose) -> Converter:
    """A plain function equal to ``expose.convert`` (same helpers, same errors), for hot paths.

    ``Expose.convert`` looks its capability's kind up on every call; a session that converts
    tens of thousands of values a second resolves it once, when it builds its tables.
    """
    kind = KIND[expose.capability.value]
    if kind == "bool":
        true_values, false_values, invert = expose.true_values, expose.false_values, expose.invert

        def to_canonical_bool(raw: Any) -> bool:
            value = raw if raw is True or raw is False else to_bool(raw, true_values=true_values,
                                                                     false_values=false_values)
            return (not value) if invert else value

        return to_canonical_bool
    if kind == "number":
        scale, offset = expose.scale, expose.offset
        if scale == 1.0 and offset == 0.0:
            return to_number

        def to_canonical_number(raw: Any) -> float:
            return to_number(raw) * scale + offset

        return to_canonical_number
    return expose.convert


def empty() -> AdapterResult:
    """The result of a message an adapter owns but that carries no readings (commands, bridge logs)."""
    return AdapterResult()


class ProfileBook:
    """The devices one session has seen, and the capabilities each has shown.

    ``observe`` is on the hot path: for a known device and capability it is two dict/set
    lookups. It returns a profile only when it is new or has grown, so the edge republishes
    its retained device list only when something changed.
    """

    __slots__ = ("_adapter", "_caps", "_meta", "_profiles")

    def __init__(self, adapter: str) -> None:
        self._adapter = adapter
        self._profiles: dict[str, DeviceProfile] = {}
        self._caps: dict[str, set[str]] = {}
        self._meta: dict[str, dict[str, str | None]] = {}

    def declare(
        self,
        device: str,
        capabilities: Iterable[str] = (),
        *,
        vendor: str | None = None,
        model: str | None = None,
        description: str | None = None,
        room: str | None = None,
        topic: str | None = None,
    ) -> DeviceProfile | None:
        """Record what discovery says about ``device``; the profile if it is new or changed."""
        check_name(device, topic=topic)
        meta = {"vendor": _text(vendor), "model": _text(model), "description": _text(description),
                "room": optional_name(room)}
        caps = set(capabilities)
        old = self._profiles.get(device)
        self._meta[device] = meta
        self._caps[device] = caps
        profile = self._build(device)
        if old == profile:
            return None
        self._profiles[device] = profile
        return profile

    def observe(
        self, reading: Reading, *, topic: str | None = None, first_seen: Mapping[str, str | None] | None = None
    ) -> DeviceProfile | None:
        """Note a reading; the device's profile when the device or this capability is new to it.

        ``first_seen`` (``vendor``/``model``/``description``) describes a device seen for the first time.
        """
        caps = self._caps.get(reading.device)
        if caps is not None and reading.capability in caps:
            return None
        if caps is None:
            check_name(reading.device, topic=topic)
            caps = self._caps[reading.device] = set()
            meta = dict.fromkeys(("vendor", "model", "description"), None)
            if first_seen:
                meta.update({k: _text(first_seen.get(k)) for k in meta})
            self._meta[reading.device] = {**meta, "room": optional_name(reading.room)}
        caps.add(reading.capability)
        profile = self._profiles[reading.device] = self._build(reading.device)
        return profile

    def observe_all(
        self, result: AdapterResult, *, topic: str | None = None, first_seen: Mapping[str, str | None] | None = None
    ) -> AdapterResult:
        """``observe`` every reading of ``result``, appending each changed profile once (its final form)."""
        changed: dict[str, DeviceProfile] | None = None
        for reading in result.readings:
            profile = self.observe(reading, topic=topic, first_seen=first_seen)
            if profile is not None:
                if changed is None:
                    changed = {}
                changed[profile.device] = profile
        if changed:
            result.profiles.extend(changed.values())
        return result

    def knows(self, device: str) -> bool:
        return device in self._caps

    def forget(self, device: str) -> None:
        self._profiles.pop(device, None)
        self._caps.pop(device, None)
        self._meta.pop(device, None)

    def profiles(self) -> list[DeviceProfile]:
        return list(self._profiles.values())

    def _build(self, device: str) -> DeviceProfile:
        meta = self._meta[device]
        return DeviceProfile(device=device, adapter=self._adapter, capabilities=tuple(sorted(self._caps[device])),
                             **meta)


def _text(value: object) -> str | None:
    # Discovery metadata is free text from firmware: keep strings, drop anything else.
    return value[:256] if isinstance(value, str) and value else None
