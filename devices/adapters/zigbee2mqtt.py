"""zigbee2mqtt: Zigbee devices bridged to MQTT (https://www.zigbee2mqtt.io).

Topics under the base topic (default ``zigbee2mqtt``):

- ``bridge/devices`` (retained): every device, with ``definition.exposes``. The session turns
  it into a per-friendly-name lookup table (payload key → capability helper), so a device
  message costs one dict lookup per key.
- ``<friendly_name>``: the device's state as JSON. Friendly names may contain ``/``; the first
  segment is then the room (``kitchen/motion`` → room ``kitchen``). A device seen before
  ``bridge/devices`` is still read, through the default table of well-known keys.
- ``<friendly_name>/availability``: ``online``/``offline`` (legacy) or ``{"state": "online"}``.
- ``bridge/state``, ``bridge/info``, ``bridge/logging``, ``bridge/event``, requests and
  responses, ``<name>/set``, ``<name>/get``: owned but carry no readings (empty result).
- ``bridge/groups``: group names; a group's state message is not a device and reads as empty.

Exposes that z2m publishes on an ``endpoint`` (multi-gang switches: ``state_l1``) become the
device ``<friendly_name>_<endpoint>``. z2m ``presence`` (mmWave) is room occupancy, so it maps
to ``occupancy``; ``illuminance_lux`` wins over ``illuminance`` when a device has both (older
z2m published raw values in ``illuminance``). Unknown keys (``linkquality``, ``voltage``,
``update`` …) are ignored.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, NamedTuple

from ..adapter import Adapter, AdapterSession, decode_json
from ..capabilities import KIND, Capability
from ..definitions import (
    Expose,
    action,
    battery,
    contact,
    energy,
    humidity,
    illuminance,
    lock,
    occupancy,
    power,
    switch,
    temperature,
)
from ..errors import PayloadError
from ..readings import AdapterResult, Availability, Reading
from ..wire import DeviceProfile
from ._common import Converter, ProfileBook, check_name, converter, empty, optional_name, text_payload

__all__ = ["ADAPTER", "Zigbee2MqttAdapter"]

log = logging.getLogger(__name__)

# bridge/devices lists every device with its full exposes; real networks publish hundreds of KB.
BRIDGE_LIST_LIMIT = 8 * 1024 * 1024

# z2m expose name → capability helper for the plain (non-"state") exposes.
_BY_NAME: dict[str, Expose] = {
    "occupancy": occupancy(),
    "presence": occupancy(path="presence"),
    "contact": contact(),  # z2m: true = closed, as canonical
    "temperature": temperature(),
    "humidity": humidity(),
    "illuminance_lux": illuminance(path="illuminance_lux"),
    "illuminance": illuminance(),
    "power": power(),
    "energy": energy(),  # kWh in z2m
    "action": action(),
    "battery": battery(),
}
_EXPOSE_TYPES = {"bool": ("binary",), "number": ("numeric",), "text": ("enum", "text")}
_HELPERS = {
    Capability.OCCUPANCY: occupancy, Capability.CONTACT: contact, Capability.TEMPERATURE: temperature,
    Capability.HUMIDITY: humidity, Capability.ILLUMINANCE: illuminance, Capability.POWER: power,
    Capability.ENERGY: energy, Capability.ACTION: action, Capability.BATTERY: battery,
    Capability.SWITCH: switch, Capability.LOCK: lock,
}
_CONTAINERS = frozenset({"switch", "light", "lock", "fan", "cover", "climate"})
_COMMAND_SEGMENTS = frozenset({"set", "get"})
# Unlisted friendly names whose default table is kept; past that each is rebuilt per message, so
# a flood of made-up topic names cannot grow the session without bound.
MAX_UNLISTED = 4096


class _Field(NamedTuple):
    convert: Converter  # expose.convert, resolved once
    capability: str
    device: str
    room: str | None
    skip_empty: bool  # z2m publishes action "" right after an action
    lenient: bool  # default table only: a key we guessed at may hold another device's value shape
    shadowed_by: str | None  # skip this key when that key is in the same payload


class _Table(NamedTuple):
    fields: dict[str, _Field]
    group: bool = False
    declared: bool = False  # from bridge/devices: its profiles already list every capability


@dataclass(frozen=True, slots=True)
class Zigbee2MqttAdapter(Adapter):
    """zigbee2mqtt under ``base_topic``; ``topics`` is derived from it when not given."""

    name: str = "zigbee2mqtt"
    topics: tuple[str, ...] = ()
    description: str = "Zigbee devices through zigbee2mqtt (bridge/devices discovery)"
    base_topic: str = "zigbee2mqtt"

    def __post_init__(self) -> None:
        if not self.topics:
            object.__setattr__(self, "topics", (f"{self.base_topic}/#",))

    def new_session(self) -> Zigbee2MqttSession:
        return Zigbee2MqttSession(self)


class Zigbee2MqttSession(AdapterSession):
    """One home's zigbee2mqtt: the device tables learnt from ``bridge/devices``."""

    adapter: Zigbee2MqttAdapter

    def __init__(self, adapter: Zigbee2MqttAdapter) -> None:
        self.adapter = adapter
        self._prefix = adapter.base_topic + "/"
        self._bridge = self._prefix + "bridge/"
        self._tables: dict[str, _Table] = {}  # friendly name → table, from bridge/devices and bridge/groups
        self._unlisted: dict[str, _Table] = {}  # friendly names seen before bridge/devices lists them
        self._book = ProfileBook(adapter.name)

    def matches(self, topic: str) -> bool:
        return topic.startswith(self._prefix)

    def profiles(self) -> list[DeviceProfile]:
        return self._book.profiles()

    def handle(self, topic: str, payload: bytes, *, ts: float) -> AdapterResult:
        if not topic.startswith(self._prefix):
            raise PayloadError(f"not a {self.adapter.base_topic} topic", reason="unknown_device", topic=topic)
        name = topic[len(self._prefix):]
        table = self._tables.get(name)
        if table is None:
            if topic.startswith(self._bridge):
                return self._bridge_message(topic[len(self._bridge):], payload, topic)
            parts = name.split("/")
            if len(parts) > 1 and parts[-1] == "availability":
                return self._availability("/".join(parts[:-1]), payload, topic)
            if len(parts) > 1 and (parts[-1] in _COMMAND_SEGMENTS or parts[-2] in _COMMAND_SEGMENTS):
                return empty()
            table = self._unlisted.get(name) or self._unlisted_table(name, topic)
        if table.group:
            return empty()
        return self._state(table, payload, topic, ts)

    # -- device state (the hot path) ---------------------------------------------------------

    def _state(self, table: _Table, payload: bytes, topic: str, ts: float) -> AdapterResult:
        data = decode_json(payload, topic=topic)
        if type(data) is not dict:
            raise PayloadError("device state is not a JSON object", reason="schema", topic=topic)
        fields = table.fields
        readings: list[Reading] = []
        for key, raw in data.items():
            f = fields.get(key)
            if f is None or raw is None:
                continue
            convert, capability, device, room, skip_empty, lenient, shadowed_by = f
            if (shadowed_by is not None and shadowed_by in data) or (skip_empty and raw == ""):
                continue
            try:
                value = convert(raw)
            except ValueError as exc:
                if lenient:
                    continue
                raise PayloadError(f"{key}: {exc}", reason="value", topic=topic) from exc
            readings.append(Reading(ts, device, capability, value, room))
        result = AdapterResult(readings=readings)
        if table.declared:
            return result  # bridge/devices already announced every capability of this device
        return self._book.observe_all(result, topic=topic)

    def _unlisted_table(self, name: str, topic: str) -> _Table:
        check_name(name, topic=topic)
        room = _room_of(name)
        fields = {
            key: _Field(converter(expose), expose.capability.value, name, room, KIND[expose.capability] == "text",
                        key == "state", "illuminance_lux" if key == "illuminance" else None)
            for key, expose in _DEFAULT_FIELDS.items()
        }
        table = _Table(fields)
        if len(self._unlisted) < MAX_UNLISTED:
            self._unlisted[name] = table
        return table

    # -- availability ---------------------------------------------------------------------

    def _availability(self, name: str, payload: bytes, topic: str) -> AdapterResult:
        check_name(name, topic=topic)
        return AdapterResult(availability=[Availability(name, _online(payload, topic))])

    # -- bridge -----------------------------------------------------------------------------

    def _bridge_message(self, sub: str, payload: bytes, topic: str) -> AdapterResult:
        if sub == "devices":
            return self._bridge_devices(decode_json(payload, topic=topic, limit=BRIDGE_LIST_LIMIT), topic)
        if sub == "groups":
            return self._bridge_groups(decode_json(payload, topic=topic, limit=BRIDGE_LIST_LIMIT), topic)
        return empty()  # state, info, logging, event, request/…, response/…: nothing canonical

    def _bridge_devices(self, data: Any, topic: str) -> AdapterResult:
        if not isinstance(data, list):
            raise PayloadError("bridge/devices is not a JSON list", reason="schema", topic=topic)
        tables: dict[str, _Table] = {}
        declared: list[tuple[str, set[str], dict[str, str | None]]] = []
        for item in data:
            if not isinstance(item, dict):
                raise PayloadError("bridge/devices entry is not an object", reason="schema", topic=topic)
            name = item.get("friendly_name")
            if not isinstance(name, str) or not name:
                raise PayloadError("bridge/devices entry without friendly_name", reason="schema", topic=topic)
            if item.get("type") == "Coordinator":
                continue
            check_name(name, topic=topic)
            definition = item.get("definition")
            if definition is None:
                exposes: list[Any] = []
                meta = {"vendor": None, "model": _str(item.get("model_id")), "description": None}
            elif isinstance(definition, dict):
                exposes = definition.get("exposes") or []
                if not isinstance(exposes, list):
                    raise PayloadError(f"{name}: exposes is not a list", reason="schema", topic=topic)
                meta = {k: _str(definition.get(k)) for k in ("vendor", "model", "description")}
            else:
                raise PayloadError(f"{name}: definition is not an object", reason="schema", topic=topic)
            fields = _fields_from_exposes(name, exposes, topic)
            tables[name] = _Table(fields, declared=True)
            caps: dict[str, set[str]] = {name: set()}
            for f in fields.values():
                caps.setdefault(f.device, set()).add(f.capability)
            declared.extend((device, device_caps, meta) for device, device_caps in caps.items())
        for name, table in self._tables.items():
            if table.group:
                tables.setdefault(name, table)
        gone = {f.device for t in self._tables.values() if not t.group for f in t.fields.values()}
        gone |= {n for n, t in self._tables.items() if not t.group}
        self._tables = tables
        for name in tables:
            self._unlisted.pop(name, None)
        result = AdapterResult()
        for device, device_caps, meta in declared:
            gone.discard(device)
            profile = self._book.declare(device, device_caps, room=_room_of(device), **meta)
            if profile is not None:
                result.profiles.append(profile)
        for device in gone:
            self._book.forget(device)
        log.debug("zigbee2mqtt bridge lists %d devices (%d profiles changed, %d gone)", len(tables),
                  len(result.profiles), len(gone))
        return result

    def _bridge_groups(self, data: Any, topic: str) -> AdapterResult:
        if not isinstance(data, list):
            raise PayloadError("bridge/groups is not a JSON list", reason="schema", topic=topic)
        groups: list[str] = []
        for item in data:
            name = item.get("friendly_name") if isinstance(item, dict) else None
            if not isinstance(name, str) or not name:
                raise PayloadError("bridge/groups entry without friendly_name", reason="schema", topic=topic)
            groups.append(name)
        self._tables = {n: t for n, t in self._tables.items() if not t.group}
        for name in groups:
            self._tables.setdefault(name, _Table({}, group=True))
        return empty()


def _fields_from_exposes(name: str, exposes: list[Any], topic: str) -> dict[str, _Field]:
    fields: dict[str, _Field] = {}
    lux_devices: set[str] = set()
    for parent, expose in _walk(exposes, None, None, topic):
        made = _expose_for(parent, expose)
        if made is None:
            continue
        prop = made.path
        endpoint = expose.get("endpoint") or expose.get("_endpoint")
        device = f"{name}_{endpoint}" if isinstance(endpoint, str) and endpoint else name
        check_name(device, topic=topic)
        if expose["name"] == "illuminance_lux":
            lux_devices.add(device)
        cap = made.capability.value
        fields[prop] = _Field(converter(made), cap, device, _room_of(name), KIND[cap] == "text", False, None)
    # A device exposing both publishes raw values in "illuminance" and lux in "illuminance_lux".
    return {
        prop: f for prop, f in fields.items()
        if not (f.capability == "illuminance" and f.device in lux_devices and not prop.startswith("illuminance_lux"))
    }


def _walk(
    exposes: list[Any], parent: str | None, endpoint: str | None, topic: str
) -> Iterator[tuple[str | None, dict[str, Any]]]:
    """(container type, expose) for every leaf expose; containers pass their endpoint down."""
    for e in exposes:
        if not isinstance(e, dict):
            raise PayloadError("expose is not an object", reason="schema", topic=topic)
        etype = e.get("type")
        ep = e.get("endpoint", endpoint)
        if isinstance(etype, str) and etype in _CONTAINERS:
            features = e.get("features")
            if not isinstance(features, list):
                raise PayloadError(f"{etype} expose without a features list", reason="schema", topic=topic)
            yield from _walk(features, etype, ep, topic)
        elif isinstance(e.get("name"), str):
            # Composite and list exposes nest their values one level down: nothing canonical there.
            if etype not in ("composite", "list"):
                yield parent, ({**e, "_endpoint": ep} if ep and "endpoint" not in e else e)


def _expose_for(parent: str | None, e: dict[str, Any]) -> Expose | None:
    """The capability helper for one z2m expose, or ``None`` when it has no canonical meaning."""
    name, etype = e["name"], e.get("type")
    prop = e.get("property", name)
    if not isinstance(prop, str) or not prop:
        return None
    if name == "state" and etype == "binary":
        if parent == "lock":
            return _binary(Capability.LOCK, prop, e)
        if parent in (None, "switch", "light"):
            return _binary(Capability.SWITCH, prop, e)
        return None  # fan/cover/climate states are not on/off switches
    base = _BY_NAME.get(name)
    if base is None or etype not in _EXPOSE_TYPES[KIND[base.capability]]:
        return None
    if etype == "binary":
        return _binary(base.capability, prop, e)
    return _expose(base.capability, prop)


def _binary(capability: Capability, prop: str, e: dict[str, Any]) -> Expose:
    on, off = e.get("value_on", True), e.get("value_off", False)
    if isinstance(on, bool) and isinstance(off, bool):
        # JSON booleans keep their own meaning: z2m's contact has value_on=false (the "on",
        # i.e. alarming, state is open) yet true still means closed, as canonical.
        return _expose(capability, prop)
    return _expose(capability, prop, str(on).lower(), str(off).lower())


@lru_cache(maxsize=4096)
def _expose(capability: Capability, path: str, on: str | None = None, off: str | None = None) -> Expose:
    # Many devices share a model: build each helper once (a bridge list can hold hundreds).
    helper = _HELPERS[capability]
    if on is None or off is None:
        return helper(path=path)
    return helper(path=path, true_values=frozenset({on}), false_values=frozenset({off}))


def _online(payload: bytes, topic: str) -> bool:
    text = text_payload(payload, topic=topic)
    if text.startswith("{"):
        data = decode_json(payload, topic=topic)
        state = data.get("state") if isinstance(data, dict) else None
    else:
        state = text
    if state == "online":
        return True
    if state == "offline":
        return False
    raise PayloadError(f"availability is not online/offline: {text[:40]!r}", reason="value", topic=topic)


def _room_of(name: str) -> str | None:
    head, sep, _ = name.partition("/")
    return optional_name(head) if sep else None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


# Keys read from devices that bridge/devices has not listed (yet): the common z2m names.
_DEFAULT_FIELDS: dict[str, Expose] = {
    **_BY_NAME,
    "state": switch(path="state", true_values=frozenset({"on"}), false_values=frozenset({"off"})),
}

ADAPTER = Zigbee2MqttAdapter()
