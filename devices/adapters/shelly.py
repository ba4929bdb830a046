"""Shelly Gen2+ devices over MQTT (https://shelly-api-docs.shelly.cloud/gen2/ComponentsAndServices/Mqtt).

A Gen2 device publishes under its *topic prefix*, by default its id
(``shellyplus1pm-a8032ab12345``), which names the device here:

- ``<id>/status/<component>:<n>`` (``status_ntf`` enabled): the component's whole status.
  ``switch:n``: ``output`` → switch, ``apower`` → power (W), ``aenergy.total`` (Wh) → energy
  (kWh), ``temperature.tC`` → temperature (the relay's own temperature, °C).
  ``pm1:n``: power and energy; ``temperature:n`` (``tC``), ``humidity:n`` (``rh``),
  ``illuminance:n`` (``lux``), ``devicepower:n`` (``battery.percent``) as their capabilities.
  Other components (``sys``, ``wifi``, ``input`` …) are owned and empty.
- ``<id>/online``: ``true``/``false`` → availability.
- ``<id>/events/rpc``: ``NotifyStatus``/``NotifyFullStatus`` carry the same component objects
  (possibly partial) under ``params``; ``NotifyEvent`` and others are empty.

Component instance 0 is the device ``<id>``; instance n>0 is ``<id>_<n>``. Devices configured
with a longer topic prefix (``shellies/kitchen``) are read with ``root="shellies"``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..adapter import Adapter, AdapterSession
from ..definitions import Expose, battery, energy, humidity, illuminance, power, switch, temperature
from ..errors import PayloadError
from ..readings import AdapterResult, Availability, Reading
from ..wire import DeviceProfile
from ._common import ProfileBook, check_name, empty, json_object, text_payload

__all__ = ["ADAPTER", "ShellyAdapter"]

# Component type → the capability helpers for its status object (paths are Shelly's own).
COMPONENTS: dict[str, tuple[Expose, ...]] = {
    "switch": (
        switch(path="output"),
        power(path="apower"),
        energy(path="aenergy.total", scale=0.001),  # Wh → kWh
        temperature(path="temperature.tC"),
    ),
    "pm1": (power(path="apower"), energy(path="aenergy.total", scale=0.001)),
    "temperature": (temperature(path="tC"),),
    "humidity": (humidity(path="rh"),),
    "illuminance": (illuminance(path="lux"),),
    "devicepower": (battery(path="battery.percent"),),
}


@dataclass(frozen=True, slots=True)
class ShellyAdapter(Adapter):
    """Shelly Gen2 devices whose topic prefix is ``<root>/<id>`` (``root`` empty: just ``<id>``)."""

    name: str = "shelly"
    topics: tuple[str, ...] = ()
    description: str = "Shelly Gen2+ relays, plugs and sensors (status notifications)"
    root: str = ""

    def __post_init__(self) -> None:
        if not self.topics:
            base = f"{self.root.strip('/')}/+" if self.root.strip("/") else "+"
            object.__setattr__(self, "topics", (f"{base}/status/+", f"{base}/online", f"{base}/events/rpc"))

    def new_session(self) -> ShellySession:
        return ShellySession(self)


class ShellySession(AdapterSession):
    adapter: ShellyAdapter

    def __init__(self, adapter: ShellyAdapter) -> None:
        self.adapter = adapter
        root = adapter.root.strip("/")
        self._skip = len(root.split("/")) if root else 0
        self._root = root.split("/") if root else []
        self._book = ProfileBook(adapter.name)

    def profiles(self) -> list[DeviceProfile]:
        return self._book.profiles()

    def handle(self, topic: str, payload: bytes, *, ts: float) -> AdapterResult:
        parts = topic.split("/")
        if parts[: self._skip] != self._root or len(parts) < self._skip + 2:
            raise PayloadError("not a Shelly topic", reason="unknown_device", topic=topic)
        device, rest = parts[self._skip], parts[self._skip + 1:]
        check_name(device, topic=topic)
        if rest == ["online"]:
            return AdapterResult(availability=[Availability(device, _online(payload, topic))])
        if len(rest) == 2 and rest[0] == "status":
            data = json_object(payload, topic=topic, what="Shelly")
            readings = self._component(device, rest[1], data, topic, ts)
        elif rest == ["events", "rpc"]:
            data = json_object(payload, topic=topic, what="Shelly")
            readings = self._rpc(device, data, topic, ts)
        else:
            raise PayloadError("not a Shelly status topic", reason="unknown_device", topic=topic)
        # The id starts with the model: "shellyplus1pm-a8032ab12345".
        meta = {"vendor": "Shelly", "model": _model(device)}
        return self._book.observe_all(AdapterResult(readings=readings), topic=topic, first_seen=meta)

    def _rpc(self, device: str, data: dict[str, Any], topic: str, ts: float) -> list[Reading]:
        method = data.get("method")
        if not isinstance(method, str):
            raise PayloadError("RPC frame without a method name", reason="schema", topic=topic)
        if method not in ("NotifyStatus", "NotifyFullStatus"):
            return []
        params = data.get("params")
        if not isinstance(params, dict):
            raise PayloadError("NotifyStatus without params object", reason="schema", topic=topic)
        out: list[Reading] = []
        for key, status in params.items():
            if ":" in key:
                if not isinstance(status, dict):
                    raise PayloadError(f"{key} is not an object", reason="schema", topic=topic)
                out.extend(self._component(device, key, status, topic, ts))
        return out

    def _component(self, device: str, key: str, status: dict[str, Any], topic: str, ts: float) -> list[Reading]:
        kind, _, index = key.partition(":")
        exposes = COMPONENTS.get(kind)
        if exposes is None:
            return []
        if not index.isdigit() or len(index) > 4:
            raise PayloadError(f"component id {key!r} is not <type>:<n>", reason="schema", topic=topic)
        name = device if int(index) == 0 else f"{device}_{int(index)}"
        out = []
        for expose in exposes:
            try:
                value = expose.extract(status)
            except ValueError as exc:
                raise PayloadError(f"{key} {expose.path}: {exc}", reason="value", topic=topic) from exc
            if value is not None:
                out.append(Reading(ts, name, expose.capability.value, value, None))
        return out



def _online(payload: bytes, topic: str) -> bool:
    text = text_payload(payload, topic=topic)
    if text == "true":
        return True
    if text == "false":
        return False
    raise PayloadError(f"online is not true/false: {text[:40]!r}", reason="value", topic=topic)


def _model(device: str) -> str | None:
    head, sep, _ = device.rpartition("-")
    return head if sep and head else None


ADAPTER = ShellyAdapter()
