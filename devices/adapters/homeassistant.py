"""Home Assistant MQTT discovery (https://www.home-assistant.io/integrations/mqtt/#mqtt-discovery).

Anything that announces itself to Home Assistant (ESPHome, Tasmota, zigbee2mqtt, OpenMQTTGateway,
DIY firmware) publishes a retained JSON config on
``<discovery_prefix>/<component>/[<node_id>/]<object_id>/config``. The session reads the
config, answers with a ``DeviceProfile`` and a subscription to the entity's ``state_topic``
(and availability topics), then turns state messages into readings.

The supported subset (also in ``docs/plugins.md``):

- Abbreviated keys (``stat_t``, ``dev_cla``, ``unit_of_meas``, ``val_tpl``, ``pl_on``, ``pl_off``,
  ``json_attr_t``, ``uniq_id``, ``dev``, ``avty_t``, ``avty`` …, device ``ids``/``mf``/``mdl``/``sa``)
  are expanded, and ``~`` at the start or end of a ``*_topic`` value becomes the base topic.
- ``binary_sensor`` by ``device_class``: motion/occupancy/presence → occupancy;
  door/window/opening/garage_door → contact (HA "on" means open, so inverted); lock → lock
  (HA "on" means unlocked, so inverted).
- ``sensor`` by ``device_class``: temperature (°C/°F/K), humidity, illuminance, power (W/kW),
  energy (Wh/kWh/MWh → kWh), battery.
- ``switch`` → switch (``state_on``/``state_off``, defaulting to ``payload_on``/``payload_off``).
- ``value_template`` only in the forms ``{{ value }}``, ``{{ value_json.KEY }}``,
  ``{{ value_json.A.B }}`` (and the equivalent ``value_json['A']['B']``). Any other template
  makes the config a dead letter with reason ``unsupported``; so does a unit we cannot convert.
- Other components and device classes are owned and ignored (empty result).
- An empty config payload removes the entity and unsubscribes topics nobody else needs.

An entity's device is ``<node_id>_<object_id>`` (or ``<object_id>``), the discovery identity
Home Assistant itself uses, so two entities never share a reading stream; the HA device's
name, manufacturer, model and suggested area go into the profile.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any, NamedTuple

from ..adapter import Adapter, AdapterSession, decode_json, topic_matches
from ..capabilities import Capability
from ..definitions import Expose, battery, energy, humidity, illuminance, power, temperature
from ..errors import PayloadError
from ..readings import AdapterResult, Availability, Reading
from ..wire import DeviceProfile
from ._common import ProfileBook, check_name, empty, optional_name, text_payload

__all__ = ["ABBREVIATIONS", "ADAPTER", "DEVICE_ABBREVIATIONS", "HomeAssistantAdapter", "expand", "parse_template"]

log = logging.getLogger(__name__)

# The subset of Home Assistant's abbreviations (homeassistant/components/mqtt/abbreviations.py)
# that the supported components use.
ABBREVIATIONS: dict[str, str] = {
    "avty": "availability",
    "avty_mode": "availability_mode",
    "avty_t": "availability_topic",
    "avty_tpl": "availability_template",
    "cmd_t": "command_topic",
    "dev": "device",
    "dev_cla": "device_class",
    "ent_cat": "entity_category",
    "exp_aft": "expire_after",
    "frc_upd": "force_update",
    "ic": "icon",
    "json_attr_t": "json_attributes_topic",
    "json_attr_tpl": "json_attributes_template",
    "obj_id": "object_id",
    "pl_avail": "payload_available",
    "pl_not_avail": "payload_not_available",
    "pl_off": "payload_off",
    "pl_on": "payload_on",
    "stat_cla": "state_class",
    "stat_off": "state_off",
    "stat_on": "state_on",
    "stat_t": "state_topic",
    "t": "topic",
    "uniq_id": "unique_id",
    "unit_of_meas": "unit_of_measurement",
    "val_tpl": "value_template",
}
DEVICE_ABBREVIATIONS: dict[str, str] = {
    "cns": "connections",
    "ids": "identifiers",
    "mf": "manufacturer",
    "mdl": "model",
    "sa": "suggested_area",
    "sw": "sw_version",
    "hw": "hw_version",
}

_BINARY_CLASSES: dict[str, tuple[str, bool]] = {  # device_class → (capability, invert)
    "motion": ("occupancy", False),
    "occupancy": ("occupancy", False),
    "presence": ("occupancy", False),
    "door": ("contact", True),  # HA on = open; canonical true = closed
    "window": ("contact", True),
    "opening": ("contact", True),
    "garage_door": ("contact", True),
    "lock": ("lock", True),  # HA on = unlocked; canonical true = locked
}
# sensor device_class → unit → the helper that converts to the canonical unit.
_SENSOR_UNITS: dict[str, dict[str | None, Expose]] = {
    "temperature": {None: temperature(path="v"), "°C": temperature(path="v"), "C": temperature(path="v"),
                    "°F": temperature(path="v", scale=5 / 9, offset=-32 * 5 / 9),
                    "F": temperature(path="v", scale=5 / 9, offset=-32 * 5 / 9),
                    "K": temperature(path="v", offset=-273.15)},
    "humidity": {None: humidity(path="v"), "%": humidity(path="v")},
    "illuminance": {None: illuminance(path="v"), "lx": illuminance(path="v")},
    "power": {None: power(path="v"), "W": power(path="v"), "kW": power(path="v", scale=1000.0)},
    "energy": {None: energy(path="v"), "kWh": energy(path="v"), "Wh": energy(path="v", scale=0.001),
               "MWh": energy(path="v", scale=1000.0)},
    "battery": {None: battery(path="v"), "%": battery(path="v")},
}
_NO_VALUE = frozenset({"", "None", "none", "unknown", "unavailable", "null"})
_PATH_STEP = r"""\.[A-Za-z_]\w*|\[\s*'[^']*'\s*\]|\[\s*"[^"]*"\s*\]"""  # .key, ['key'] or ["key"]
_TEMPLATE = re.compile(rf"^\{{\{{\s*value(?P<json>_json(?P<path>(?:\s*(?:{_PATH_STEP}))+))?\s*\}}\}}$")
_PATH_PART = re.compile(r"\.([A-Za-z_]\w*)|\[\s*'([^']*)'\s*\]|\[\s*\"([^\"]*)\"\s*\]")
_MISSING = object()


def parse_template(template: str | None, *, topic: str | None = None) -> tuple[str, ...] | None:
    """The JSON path a supported ``value_template`` reads; ``None`` for the raw payload.

    ``PayloadError`` (reason ``unsupported``) for any other template.
    """
    if template is None:
        return None
    m = _TEMPLATE.match(template.strip()) if isinstance(template, str) else None
    if m is None:
        raise PayloadError(f"unsupported value_template {str(template)[:80]!r}", reason="unsupported", topic=topic)
    if m.group("json") is None:
        return None
    return tuple(a or b or c for a, b, c in _PATH_PART.findall(m.group("path")))


class _Avty(NamedTuple):
    topic: str
    path: tuple[str, ...] | None
    online: str
    offline: str


class _Entity(NamedTuple):
    config_topic: str
    device: str
    room: str | None
    capability: str
    state_topic: str
    path: tuple[str, ...] | None
    on: str | None  # bool capabilities: the rendered payload meaning HA "on"
    off: str | None
    invert: bool
    number: Expose | None  # number capabilities: unit conversion
    availability: tuple[_Avty, ...]
    meta: dict[str, str | None]  # profile metadata: vendor, model, description, room


@dataclass(frozen=True, slots=True)
class HomeAssistantAdapter(Adapter):
    """Entities announced through MQTT discovery under ``discovery_prefix``."""

    name: str = "homeassistant"
    topics: tuple[str, ...] = ()
    description: str = "Entities announced through Home Assistant MQTT discovery"
    discovery_prefix: str = "homeassistant"

    def __post_init__(self) -> None:
        if not self.topics:
            p = self.discovery_prefix
            object.__setattr__(self, "topics", (f"{p}/+/+/config", f"{p}/+/+/+/config", f"{p}/status"))

    def new_session(self) -> HomeAssistantSession:
        return HomeAssistantSession(self)


class HomeAssistantSession(AdapterSession):
    """The entities discovered so far, indexed by the state and availability topics they read."""

    adapter: HomeAssistantAdapter

    def __init__(self, adapter: HomeAssistantAdapter) -> None:
        self.adapter = adapter
        self._prefix = adapter.discovery_prefix.split("/")
        self._status = f"{adapter.discovery_prefix}/status"
        self._entities: dict[str, _Entity] = {}  # config topic → entity
        self._by_state: dict[str, list[_Entity]] = {}
        self._by_avty: dict[str, list[_Entity]] = {}
        self._book = ProfileBook(adapter.name)

    def subscriptions(self) -> list[str]:
        return [*self.adapter.topics, *self._by_state, *(t for t in self._by_avty if t not in self._by_state)]

    def matches(self, topic: str) -> bool:
        return (topic in self._by_state or topic in self._by_avty
                or any(topic_matches(f, topic) for f in self.adapter.topics))

    def profiles(self) -> list[DeviceProfile]:
        return self._book.profiles()

    def handle(self, topic: str, payload: bytes, *, ts: float) -> AdapterResult:
        if topic == self._status:
            return empty()  # Home Assistant's own birth/will message
        discovery = self._config_topic(topic)
        if discovery is not None:
            return self._config(topic, *discovery, payload)
        states, avty = self._by_state.get(topic), self._by_avty.get(topic)
        if states is None and avty is None:
            raise PayloadError("no discovered entity reads this topic", reason="unknown_device", topic=topic)
        result = AdapterResult()
        if states:
            result.readings = self._readings(states, payload, topic, ts)
        if avty:
            result.availability = self._availability(avty, payload, topic)
        return result

    # -- discovery ------------------------------------------------------------------------------

    def _config_topic(self, topic: str) -> tuple[str, str | None, str] | None:
        parts = topic.split("/")
        n = len(self._prefix)
        if parts[:n] != self._prefix or parts[-1] != "config" or len(parts) not in (n + 3, n + 4):
            return None
        rest = parts[n:-1]
        return (rest[0], rest[1], rest[2]) if len(rest) == 3 else (rest[0], None, rest[1])

    def _config(self, topic: str, component: str, node_id: str | None, object_id: str, payload: bytes) -> AdapterResult:
        if not payload.strip():
            return self._remove(topic)
        conf = decode_json(payload, topic=topic)
        if not isinstance(conf, dict):
            raise PayloadError("discovery config is not a JSON object", reason="schema", topic=topic)
        entity, meta = self._entity(topic, component, node_id, object_id, expand(conf))
        if entity is None:
            log.debug("ignoring discovery config %s (%s)", topic, meta.get("why"))
            return self._remove(topic)
        before = self._subscribed()
        self._drop(topic)
        self._entities[topic] = entity
        self._by_state.setdefault(entity.state_topic, []).append(entity)
        for a in entity.availability:
            self._by_avty.setdefault(a.topic, []).append(entity)
        result = _changes(before, self._subscribed())
        profile = self._declare(entity.device, topic)
        if profile is not None:
            result.profiles.append(profile)
        return result

    def _entity(
        self, topic: str, component: str, node_id: str | None, object_id: str, conf: dict[str, Any]
    ) -> tuple[_Entity | None, dict[str, Any]]:
        device_class = conf.get("device_class") if isinstance(conf.get("device_class"), str) else None
        number: Expose | None = None
        on = off = None
        invert = False
        if component == "binary_sensor" and device_class in _BINARY_CLASSES:
            capability, invert = _BINARY_CLASSES[device_class]
            on, off = _render(conf.get("payload_on", "ON")), _render(conf.get("payload_off", "OFF"))
        elif component == "sensor" and device_class in _SENSOR_UNITS:
            capability = device_class
            units = _SENSOR_UNITS[device_class]
            unit = conf.get("unit_of_measurement")
            number = units.get(unit) if isinstance(unit, str) or unit is None else None
            if number is None:
                raise PayloadError(f"unsupported unit {unit!r} for {device_class}", reason="unsupported", topic=topic)
        elif component == "switch":
            capability = Capability.SWITCH.value
            on = _render(conf.get("state_on", conf.get("payload_on", "ON")))
            off = _render(conf.get("state_off", conf.get("payload_off", "OFF")))
        else:
            return None, {"why": f"{component} with device_class {device_class!r} has no canonical capability"}
        state_topic = _topic(conf.get("state_topic"), topic, required=True)
        if state_topic is None:
            return None, {"why": "no state_topic"}
        path = parse_template(conf.get("value_template"), topic=topic)
        device = check_name(f"{node_id}_{object_id}" if node_id else object_id, topic=topic)
        dev = conf.get("device") if isinstance(conf.get("device"), dict) else {}
        name = conf.get("name") if isinstance(conf.get("name"), str) else None
        meta = {
            "vendor": dev.get("manufacturer"),
            "model": dev.get("model"),
            "description": " ".join(x for x in (dev.get("name"), name) if isinstance(x, str) and x) or None,
            "room": optional_name(dev.get("suggested_area")),
        }
        entity = _Entity(topic, device, meta["room"], capability, state_topic, path, on, off, invert, number,
                         _availability_of(conf, topic), meta)
        return entity, meta

    def _remove(self, config_topic: str) -> AdapterResult:
        before = self._subscribed()
        old = self._drop(config_topic)
        result = _changes(before, self._subscribed())
        if old is not None:
            profile = self._declare(old.device, config_topic)
            if profile is not None:
                result.profiles.append(profile)
        return result

    def _declare(self, device: str, topic: str) -> DeviceProfile | None:
        """(Re)declare ``device`` from every entity that still names it; forget it when none does."""
        entities = [e for e in self._entities.values() if e.device == device]
        if not entities:
            self._book.forget(device)
            return None
        meta = entities[-1].meta
        return self._book.declare(device, {e.capability for e in entities}, topic=topic, **meta)

    def _drop(self, config_topic: str) -> _Entity | None:
        old = self._entities.pop(config_topic, None)
        if old is not None:
            _unindex(self._by_state, old.state_topic, old)
            for a in old.availability:
                _unindex(self._by_avty, a.topic, old)
        return old

    def _subscribed(self) -> set[str]:
        return self._by_state.keys() | self._by_avty.keys()

    # -- state ------------------------------------------------------------------------------

    def _readings(self, entities: list[_Entity], payload: bytes, topic: str, ts: float) -> list[Reading]:
        text: str | None = None
        data: Any = _MISSING
        out = []
        for e in entities:
            if e.path is None:
                if text is None:
                    text = text_payload(payload, topic=topic, limit=65536)
                raw: Any = text
            else:
                if data is _MISSING:
                    data = decode_json(payload, topic=topic)
                raw = _lookup(data, e.path)
                if raw is _MISSING:
                    continue  # entities sharing a topic each read their own key
            if raw is None or (isinstance(raw, str) and raw.strip() in _NO_VALUE):
                continue
            out.append(Reading(ts, e.device, e.capability, _convert(e, raw, topic), e.room))
        return out

    def _availability(self, entities: list[_Entity], payload: bytes, topic: str) -> list[Availability]:
        out = []
        data: Any = _MISSING
        text: str | None = None
        for e in entities:
            for a in e.availability:
                if a.topic != topic:
                    continue
                if a.path is None:
                    rendered = text = text if text is not None else text_payload(payload, topic=topic)
                else:
                    if data is _MISSING:
                        data = decode_json(payload, topic=topic)
                    rendered = _render(_lookup(data, a.path))
                if rendered == a.online:
                    out.append(Availability(e.device, True))
                elif rendered == a.offline:
                    out.append(Availability(e.device, False))
                else:
                    raise PayloadError(f"availability {rendered[:40]!r} is neither {a.online!r} nor {a.offline!r}",
                                       reason="value", topic=topic)
        return out


def expand(conf: dict[str, Any]) -> dict[str, Any]:
    """Expand abbreviated keys (entity, device and availability) and ``~`` base-topic references."""
    out = {ABBREVIATIONS.get(k, k): v for k, v in conf.items()}
    dev = out.get("device")
    if isinstance(dev, dict):
        out["device"] = {DEVICE_ABBREVIATIONS.get(k, k): v for k, v in dev.items()}
    avty = out.get("availability")
    if isinstance(avty, list):
        out["availability"] = [{ABBREVIATIONS.get(k, k): v for k, v in a.items()} if isinstance(a, dict) else a
                               for a in avty]
    base = out.pop("~", None)
    if isinstance(base, str):
        for key, value in out.items():
            if key.endswith("topic"):
                out[key] = _tilde(value, base)
        if isinstance(out.get("availability"), list):
            out["availability"] = [{**a, "topic": _tilde(a.get("topic"), base)} if isinstance(a, dict) else a
                                   for a in out["availability"]]
    return out


def _tilde(value: Any, base: str) -> Any:
    # Home Assistant replaces a leading and a trailing "~", independently.
    if isinstance(value, str) and value:
        if value[0] == "~":
            value = base + value[1:]
        if value and value[-1] == "~":
            value = value[:-1] + base
    return value


def _availability_of(conf: dict[str, Any], topic: str) -> tuple[_Avty, ...]:
    online = _render(conf.get("payload_available", "online"))
    offline = _render(conf.get("payload_not_available", "offline"))
    out = []
    single = _topic(conf.get("availability_topic"), topic, required=False)
    if single is not None:
        out.append(_avty(single, conf.get("availability_template"), online, offline))
    items = conf.get("availability")
    if isinstance(items, list):
        for a in items:
            t = _topic(a.get("topic"), topic, required=False) if isinstance(a, dict) else None
            if t is not None:
                out.append(_avty(t, a.get("value_template"), _render(a.get("payload_available", online)),
                                 _render(a.get("payload_not_available", offline))))
    return tuple(x for x in out if x is not None)


def _avty(topic: str, template: Any, online: str, offline: str) -> _Avty | None:
    try:
        path = parse_template(template)
    except PayloadError:
        # Availability is a nicety: an entity whose availability template we can't read still reports.
        log.debug("ignoring availability %s with unsupported template %r", topic, template)
        return None
    return _Avty(topic, path, online, offline)


def _topic(value: Any, topic: str, *, required: bool) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value or "+" in value or "#" in value or "\x00" in value:
        if required:
            raise PayloadError(f"state topic {str(value)[:80]!r} is not a plain MQTT topic", reason="schema",
                               topic=topic)
        return None
    return value


def _render(value: Any) -> str:
    """A value the way a Jinja template prints it (``True``, ``1``, ``1.5``, text)."""
    if isinstance(value, str):
        return value
    if value is _MISSING or value is None:
        return ""
    return str(value)


def _lookup(data: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        if not isinstance(data, dict) or key not in data:
            return _MISSING
        data = data[key]
    return data


def _convert(e: _Entity, raw: Any, topic: str) -> bool | float:
    if e.number is not None:
        try:
            return e.number.convert(raw)
        except ValueError as exc:
            raise PayloadError(f"{e.device}: {exc}", reason="value", topic=topic) from exc
    rendered = _render(raw).strip()
    if rendered == e.on:
        state = True
    elif rendered == e.off:
        state = False
    else:
        raise PayloadError(f"{e.device}: {rendered[:40]!r} is neither {e.on!r} nor {e.off!r}", reason="value",
                           topic=topic)
    return state != e.invert


def _unindex(index: dict[str, list[_Entity]], key: str, entity: _Entity) -> None:
    entities = index.get(key, [])
    if entity in entities:
        entities.remove(entity)
    if not entities:
        index.pop(key, None)


def _changes(before: set[str], after: set[str]) -> AdapterResult:
    """The subscription changes between two sets of topics the session reads."""
    return AdapterResult(subscribe=sorted(after - before), unsubscribe=sorted(before - after))


ADAPTER = HomeAssistantAdapter()
