"""Tasmota: ESP8266/ESP32 plugs, relays and sensor boards (https://tasmota.github.io/docs/MQTT/).

Tasmota builds every topic from its *FullTopic* (default ``%prefix%/%topic%/``) plus a last
segment: ``%prefix%`` is ``tele`` (periodic telemetry, LWT), ``stat`` (state after a change)
or ``cmnd`` (commands, not read), ``%topic%`` names the device. The adapter reads:

- ``tele/<topic>/SENSOR``: ``{"Time":…, "ENERGY":{"Total": kWh, "Power": W, …},
  "AM2301":{"Temperature":…, "Humidity":…}, "BH1750":{"Illuminance": lx}, "TempUnit":"C"}``.
  Every sensor object with ``Temperature``/``Humidity``/``Illuminance`` is read (°F converted
  when ``TempUnit`` is ``F``). When two sensors give one capability (an AM2301 and a DS18B20),
  the first in sorted key order reads as ``<topic>``, the others as ``<topic>_<sensor>``.
  Multi-channel meters publish ``Power``/``Total`` as lists: channel N>1 is ``<topic>_N``.
- ``tele/<topic>/STATE`` and ``stat/<topic>/RESULT``: ``POWER``/``POWER1``…``POWER8`` → switch.
- ``stat/<topic>/POWER``, ``stat/<topic>/POWER1``…``POWER8``: plain ``ON``/``OFF`` → switch.
  Relay 1 (``POWER`` or ``POWER1``) is the device ``<topic>``, relay N>1 is ``<topic>_N``.
- ``tele/<topic>/LWT``: ``Online``/``Offline`` → availability.

Any other ``tele``/``stat`` subtopic (``INFO1``, ``STATUS…``, ``UPTIME`` …) is owned and empty.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ..adapter import Adapter, AdapterSession
from ..definitions import Expose, energy, humidity, illuminance, power, switch, temperature
from ..errors import DefinitionError, PayloadError
from ..readings import AdapterResult, Availability, Reading
from ..wire import DeviceProfile
from ._common import ProfileBook, check_name, empty, json_object, slug, text_payload

__all__ = ["ADAPTER", "TasmotaAdapter"]

_POWER_KEY = re.compile(r"^POWER([1-8]?)$")
_SWITCH = switch(path="POWER", true_values=frozenset({"on"}), false_values=frozenset({"off"}))
_ENERGY = energy(path="Total")  # kWh
_POWER = power(path="Power")  # W
_SENSOR_FIELDS: tuple[tuple[str, Expose], ...] = (
    ("Temperature", temperature(path="Temperature")),
    ("Humidity", humidity(path="Humidity")),
    ("Illuminance", illuminance(path="Illuminance")),
)
_FIRST_SEEN = {"description": "Tasmota device"}
_FAHRENHEIT = temperature(path="Temperature", scale=5 / 9, offset=-32 * 5 / 9)


@dataclass(frozen=True, slots=True)
class TasmotaAdapter(Adapter):
    """Tasmota devices under ``full_topic`` (Tasmota's FullTopic setting, same placeholders)."""

    name: str = "tasmota"
    topics: tuple[str, ...] = ()
    description: str = "Tasmota plugs, relays and sensors (tele/stat topics)"
    full_topic: str = "%prefix%/%topic%/"
    prefixes: tuple[str, str] = ("tele", "stat")

    def __post_init__(self) -> None:
        parts = self.full_topic.strip("/").split("/")
        if parts.count("%prefix%") != 1 or parts.count("%topic%") != 1:
            raise DefinitionError(f"full_topic {self.full_topic!r} needs %prefix% and %topic% once each")
        if not self.topics:
            filters = []
            for prefix in self.prefixes:
                segs = [prefix if p == "%prefix%" else "+" if p.startswith("%") else p for p in parts]
                filters.append("/".join(segs) + "/+")
            object.__setattr__(self, "topics", tuple(filters))

    def new_session(self) -> TasmotaSession:
        return TasmotaSession(self)


class TasmotaSession(AdapterSession):
    adapter: TasmotaAdapter

    def __init__(self, adapter: TasmotaAdapter) -> None:
        self.adapter = adapter
        parts = adapter.full_topic.strip("/").split("/")
        self._len = len(parts) + 1
        self._prefix_at = parts.index("%prefix%")
        self._topic_at = parts.index("%topic%")
        self._fixed = [(i, p) for i, p in enumerate(parts) if not p.startswith("%")]
        self._tele, self._stat = adapter.prefixes
        self._book = ProfileBook(adapter.name)

    def profiles(self) -> list[DeviceProfile]:
        return self._book.profiles()

    def handle(self, topic: str, payload: bytes, *, ts: float) -> AdapterResult:
        parts = topic.split("/")
        if len(parts) != self._len or any(parts[i] != p for i, p in self._fixed):
            raise PayloadError("not a Tasmota topic", reason="unknown_device", topic=topic)
        prefix, device, command = parts[self._prefix_at], parts[self._topic_at], parts[-1]
        check_name(device, topic=topic)
        if prefix == self._tele:
            if command == "SENSOR":
                data = json_object(payload, topic=topic, what="Tasmota")
                result = AdapterResult(readings=self._sensor(device, data, topic, ts))
            elif command == "STATE":
                data = json_object(payload, topic=topic, what="Tasmota")
                result = AdapterResult(readings=self._relays(device, data, topic, ts))
            elif command == "LWT":
                return AdapterResult(availability=[Availability(device, _lwt(payload, topic))])
            else:
                return empty()
        elif prefix == self._stat:
            if _POWER_KEY.match(command):
                result = AdapterResult(readings=self._relays(device, {command: text_payload(payload, topic=topic)},
                                                             topic, ts))
            elif command == "RESULT":
                data = json_object(payload, topic=topic, what="Tasmota")
                result = AdapterResult(readings=self._relays(device, data, topic, ts))
            else:
                return empty()
        else:
            return empty()  # cmnd/…: our own or someone's command, not a state
        return self._book.observe_all(result, topic=topic, first_seen=_FIRST_SEEN)

    def _relays(self, device: str, data: dict[str, Any], topic: str, ts: float) -> list[Reading]:
        out = []
        for key, raw in data.items():
            m = _POWER_KEY.match(key)
            if m is None:
                continue
            relay = int(m.group(1) or 1)
            try:
                value = _SWITCH.convert(raw)
            except ValueError as exc:
                raise PayloadError(f"{key}: {exc}", reason="value", topic=topic) from exc
            out.append(Reading(ts, _channel(device, relay), "switch", value, None))
        return out

    def _sensor(self, device: str, data: dict[str, Any], topic: str, ts: float) -> list[Reading]:
        unit = data.get("TempUnit", "C")
        if unit not in ("C", "F"):
            raise PayloadError(f"TempUnit {unit!r} is not C or F", reason="value", topic=topic)
        out: list[Reading] = []
        energy_doc = data.get("ENERGY")
        if energy_doc is not None:
            if not isinstance(energy_doc, dict):
                raise PayloadError("ENERGY is not an object", reason="schema", topic=topic)
            for expose in (_POWER, _ENERGY):
                out.extend(_channels(device, expose, energy_doc.get(expose.path), topic, ts))
        claimed: set[str] = set()
        for key in sorted(data):
            doc = data[key]
            if key == "ENERGY" or not isinstance(doc, dict):
                continue
            for field, expose in _SENSOR_FIELDS:
                raw = doc.get(field)
                if raw is None:
                    continue
                if field == "Temperature" and unit == "F":
                    expose = _FAHRENHEIT
                cap = expose.capability.value
                name = device if cap not in claimed else f"{device}_{slug(key)}"
                claimed.add(cap)
                out.append(Reading(ts, check_name(name, topic=topic), cap, _convert(expose, raw, key, topic), None))
        return out


def _channels(device: str, expose: Expose, raw: Any, topic: str, ts: float) -> list[Reading]:
    if raw is None:
        return []
    values = raw if isinstance(raw, list) else [raw]
    cap = expose.capability.value
    return [Reading(ts, _channel(device, i), cap, _convert(expose, v, f"ENERGY.{expose.path}", topic), None)
            for i, v in enumerate(values, start=1) if v is not None]


def _convert(expose: Expose, raw: Any, where: str, topic: str) -> bool | float | str:
    try:
        return expose.convert(raw)
    except ValueError as exc:
        raise PayloadError(f"{where}: {exc}", reason="value", topic=topic) from exc


def _channel(device: str, n: int) -> str:
    return device if n == 1 else f"{device}_{n}"



def _lwt(payload: bytes, topic: str) -> bool:
    text = text_payload(payload, topic=topic)
    if text == "Online":
        return True
    if text == "Offline":
        return False
    raise PayloadError(f"LWT is not Online/Offline: {text[:40]!r}", reason="value", topic=topic)


ADAPTER = TasmotaAdapter()
