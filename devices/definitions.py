"""Declarative device definitions built from capability helpers (STYLE.md).

A definition is data: which topic a device publishes on and where in its JSON each
capability sits. Mistakes (an unknown capability, a bad topic pattern, a device segment
that is not a wildcard) fail when the definition is declared, not at the first message::

    KETTLE = DeviceDefinition(
        vendor="acme", model="K-1", match=Topic("acme/+/kettle/state"),
        exposes=(switch(path="heating"), power(path="watts"), temperature(path="water_c")),
    )
"""

from __future__ import annotations

import math
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .capabilities import KIND, Capability
from .errors import DefinitionError, PayloadError
from .readings import Reading

__all__ = [
    "DeviceDefinition",
    "Expose",
    "Topic",
    "action",
    "battery",
    "checkin",
    "contact",
    "define",
    "energy",
    "humidity",
    "illuminance",
    "lock",
    "media",
    "occupancy",
    "power",
    "presence",
    "switch",
    "temperature",
    "to_bool",
    "to_number",
]

_MISSING = object()
TRUE_WORDS = frozenset({"on", "true", "1", "yes", "open", "occupied", "detected", "locked", "closed", "home"})
FALSE_WORDS = frozenset({"off", "false", "0", "no", "clear", "unoccupied", "unlocked", "not_home", "away"})


def to_bool(raw: Any, *, true_values: frozenset[str] = TRUE_WORDS, false_values: frozenset[str] = FALSE_WORDS) -> bool:
    """Firmware booleans: JSON bools, 0/1, and the usual words (case-insensitive)."""
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, int) and raw in (0, 1):
        return bool(raw)
    if isinstance(raw, str):
        word = raw.strip().lower()
        if word in true_values:
            return True
        if word in false_values:
            return False
    raise ValueError(f"not a boolean: {raw!r}")


def to_number(raw: Any) -> float:
    """Firmware numbers: JSON numbers and numeric strings; never bools, never NaN/inf."""
    if isinstance(raw, bool):
        raise ValueError(f"not a number: {raw!r}")
    if isinstance(raw, (int, float)):
        value = float(raw)
    elif isinstance(raw, str):
        try:
            value = float(raw.strip())
        except ValueError:
            raise ValueError(f"not a number: {raw!r}") from None
    else:
        raise ValueError(f"not a number: {raw!r}")
    if not math.isfinite(value) or abs(value) > 1e12:
        raise ValueError(f"number out of range: {raw!r}")
    return value


class Expose(BaseModel):
    """One capability found at a dotted JSON ``path`` of a device's payload."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    capability: Capability
    path: str = Field(min_length=1)
    scale: float = 1.0
    offset: float = 0.0
    invert: bool = False  # for booleans whose firmware meaning is the opposite of canonical
    true_values: frozenset[str] = TRUE_WORDS
    false_values: frozenset[str] = FALSE_WORDS

    @model_validator(mode="after")
    def _check(self) -> Expose:
        kind = KIND[self.capability]
        if kind != "number" and (self.scale != 1.0 or self.offset != 0.0):
            raise ValueError(f"scale/offset only apply to numeric capabilities, not {self.capability}")
        if kind != "bool" and self.invert:
            raise ValueError(f"invert only applies to boolean capabilities, not {self.capability}")
        return self

    def lookup(self, obj: Any) -> Any:
        for key in self.path.split("."):
            if not isinstance(obj, dict) or key not in obj:
                return _MISSING
            obj = obj[key]
        return obj

    def convert(self, raw: Any) -> bool | float | str:
        """Turn a raw firmware value into the canonical one; ``ValueError`` if it can't."""
        kind = KIND[self.capability]
        if kind == "bool":
            value = to_bool(raw, true_values=self.true_values, false_values=self.false_values)
            return (not value) if self.invert else value
        if kind == "number":
            return to_number(raw) * self.scale + self.offset
        if not isinstance(raw, str) or not raw or len(raw) > 256:
            raise ValueError(f"not a short text: {raw!r}")
        return raw

    def extract(self, obj: Any) -> bool | float | str | None:
        """The canonical value at ``path`` in ``obj``, ``None`` when absent or JSON null."""
        raw = self.lookup(obj)
        if raw is _MISSING or raw is None:
            return None
        return self.convert(raw)


def _helper(capability: Capability):  # type: ignore[no-untyped-def]
    def make(*, path: str | None = None, **options: Any) -> Expose:
        try:
            return Expose(capability=capability, path=path or capability.value, **options)
        except ValueError as exc:
            raise DefinitionError(str(exc)) from exc

    make.__name__ = capability.value
    make.__doc__ = f"Expose ``{capability.value}`` read from ``path`` (default ``{capability.value!r}``)."
    return make


occupancy = _helper(Capability.OCCUPANCY)
contact = _helper(Capability.CONTACT)
temperature = _helper(Capability.TEMPERATURE)
humidity = _helper(Capability.HUMIDITY)
illuminance = _helper(Capability.ILLUMINANCE)
power = _helper(Capability.POWER)
energy = _helper(Capability.ENERGY)
switch = _helper(Capability.SWITCH)
action = _helper(Capability.ACTION)
lock = _helper(Capability.LOCK)
media = _helper(Capability.MEDIA)
presence = _helper(Capability.PRESENCE)
checkin = _helper(Capability.CHECKIN)
battery = _helper(Capability.BATTERY)


class Topic(BaseModel):
    """An MQTT topic pattern; the ``device`` wildcard segment (default: the first ``+``) names the device."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    pattern: str
    device_segment: int | None = None

    def __init__(self, pattern: str, /, **kwargs: Any) -> None:
        try:
            super().__init__(pattern=pattern, **kwargs)
        except ValueError as exc:
            raise DefinitionError(str(exc)) from exc

    @field_validator("pattern")
    @classmethod
    def _valid_filter(cls, value: str) -> str:
        parts = value.split("/")
        if not value or any(p in ("#",) for p in parts[:-1]) or any(
            ("+" in p and p != "+") or ("#" in p and p != "#") for p in parts
        ):
            raise ValueError(f"not a valid MQTT topic filter: {value!r}")
        return value

    @model_validator(mode="after")
    def _device_segment(self) -> Topic:
        parts = self.pattern.split("/")
        if self.device_segment is None:
            wild = [i for i, p in enumerate(parts) if p == "+"]
            if not wild:
                raise ValueError(f"topic {self.pattern!r} has no '+' segment to name the device")
            object.__setattr__(self, "device_segment", wild[0])
        elif not (0 <= self.device_segment < len(parts)) or parts[self.device_segment] != "+":
            raise ValueError(f"device_segment {self.device_segment} of {self.pattern!r} is not a '+'")
        return self

    def device_of(self, topic: str) -> str | None:
        """The device name if ``topic`` matches this pattern, else ``None``."""
        pat = self.pattern.split("/")
        got = topic.split("/")
        if pat[-1] == "#":
            if len(got) < len(pat) - 1:
                return None
        elif len(got) != len(pat):
            return None
        for p, g in zip(pat, got):
            if p == "#":
                break
            if p != "+" and p != g:
                return None
        assert self.device_segment is not None
        return got[self.device_segment]


class DeviceDefinition(BaseModel):
    """A smart product that publishes JSON on a topic: vendor, model, topic and exposes."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    vendor: str = Field(min_length=1)
    model: str = Field(min_length=1)
    match: Topic
    exposes: tuple[Expose, ...] = Field(min_length=1)
    description: str | None = None

    @model_validator(mode="after")
    def _unique_paths(self) -> DeviceDefinition:
        seen = set()
        for e in self.exposes:
            key = (e.capability, e.path)
            if key in seen:
                raise ValueError(f"{self.vendor}/{self.model}: {e.capability} at {e.path!r} declared twice")
            seen.add(key)
        return self

    @property
    def name(self) -> str:
        return f"{self.vendor}/{self.model}"

    def readings(self, device: str, payload: Any, *, ts: float, room: str | None = None) -> list[Reading]:
        """Readings from one decoded JSON payload; ``PayloadError`` if none can be made."""
        if not isinstance(payload, dict):
            raise PayloadError(f"{self.name}: payload is not a JSON object", reason="schema")
        out: list[Reading] = []
        for expose in self.exposes:
            try:
                value = expose.extract(payload)
            except ValueError as exc:
                raise PayloadError(f"{self.name} {expose.path}: {exc}", reason="value") from exc
            if value is not None:
                out.append(Reading(ts, device, expose.capability.value, value, room))
        return out


def define(**kwargs: Any) -> DeviceDefinition:
    """Declare a definition, turning pydantic's error into a ``DefinitionError``."""
    try:
        return DeviceDefinition(**kwargs)
    except ValueError as exc:
        raise DefinitionError(str(exc)) from exc
