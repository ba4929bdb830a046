"""Sensor reports in the real wire formats of zigbee2mqtt, Tasmota, Shelly Gen2 and Home Assistant.

Shapes follow each project's documentation (zigbee2mqtt.io "MQTT topics and messages" and
device pages, tasmota.github.io "MQTT" / energy telemetry, shelly-api-docs "Gen2 MQTT" and
``Switch.GetStatus``, home-assistant.io "MQTT discovery" as ESPHome publishes it):

* zigbee2mqtt ``zigbee2mqtt/<room>/<name>`` JSON state. The simulated bridge runs with
  ``advanced.cache_state: false``, so a message carries what the device reported (a motion
  message has no battery key; batteries report on their own). Buttons send the legacy
  ``{"action": ""}`` right after an action. ``bridge/devices`` and ``bridge/state`` are
  retained at start.
* Tasmota ``tele/<topic>/SENSOR`` (``ENERGY``), ``tele/<topic>/STATE`` (``POWER``) and
  ``tele/<topic>/LWT``; ``Time`` is the device's local time (UTC here).
* Shelly Gen2 ``<prefix>/status/switch:0`` (full component status) and ``<prefix>/online``.
* Home Assistant discovery config (ESPHome's abbreviated form) plus its plain state topic.
* Venue readers (``venue/<reader>/access``) are not a standard: a small JSON document read by
  the ``devices.adapters.access.ACCESS_READER`` definition (a registered built-in).

No payload carries ground truth: no job, market or label ever appears in one.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from typing import NamedTuple

import numpy as np

from devices.adapters.access import ACCESS_READER

from .places import DeviceSpec, PlaceSpec
from .sensors import RELEASE, TASMOTA_STATE, Track

__all__ = ["ACCESS_READER", "WireMessage", "announce", "device_name", "encode"]



class WireMessage(NamedTuple):
    """One MQTT message a device would publish on the local broker of edge ``edge_id``."""

    ts: float
    edge_id: str
    topic: str
    payload: bytes
    retain: bool = False


_HA_OBJECT = {"illuminance": "illuminance"}


def device_name(device: DeviceSpec) -> str:
    """The device name the adapters give this device's readings (and the events carry)."""
    if device.protocol == "homeassistant":
        return f"{device.wire_id}_{_HA_OBJECT[device.kind]}"
    return device.wire_id


def _dumps(obj: object) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def _local(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts))


def _uptime(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 86400}T{s % 86400 // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


def _num(v: float) -> float | int:
    return int(v) if float(v).is_integer() else float(v)


def encode(track: Track, i: int) -> tuple[str, bytes]:
    """Topic and payload of row ``i`` of ``track``."""
    d = track.device
    if d.protocol == "zigbee2mqtt":
        return _z2m(track, i)
    if d.protocol == "tasmota":
        return _tasmota(track, i)
    if d.protocol == "shelly":
        return _shelly(track, i)
    if d.protocol == "homeassistant":
        return f"{d.wire_id}/sensor/{_HA_OBJECT[d.kind]}/state", f"{float(track.values['illuminance'][i]):.1f}".encode()
    value = track.texts[int(track.values["checkin"][i])]
    card = hashlib.blake2s(track.edge_id.encode(), digest_size=5).hexdigest()
    return f"venue/{d.wire_id}/access", _dumps({"event": value, "card": card, "ts": int(track.ts[i])})


def _z2m(track: Track, i: int) -> tuple[str, bytes]:
    topic = f"zigbee2mqtt/{track.device.wire_id}"
    kind = int(track.kind[i])
    body: dict[str, object] = {}
    if kind == RELEASE:
        body["action"] = ""
    for cap, col in track.values.items():
        v = float(col[i])
        if v != v:
            continue
        if cap in ("occupancy", "contact"):
            body[cap] = bool(v)
        elif cap == "switch":
            body["state"] = "ON" if v else "OFF"
        elif cap == "action":
            body["action"] = track.texts[int(v)]
        else:
            body[cap] = _num(v)
    for key, col in track.extra.items():
        v = float(col[i])
        if v == v:
            body[key] = _num(v)
    return topic, _dumps(dict(sorted(body.items())))


def _tasmota(track: Track, i: int) -> tuple[str, bytes]:
    topic = track.device.wire_id
    ts = float(track.ts[i])
    extra = track.extra
    if int(track.kind[i]) == TASMOTA_STATE:
        up = float(extra["uptime"][i])
        rssi = 60 + int(ts) % 30
        return f"tele/{topic}/STATE", _dumps({
            "Time": _local(ts), "Uptime": _uptime(up), "UptimeSec": int(up), "Heap": 26, "SleepMode": "Dynamic",
            "Sleep": 50, "LoadAvg": 19, "MqttCount": 1, "POWER": "ON" if track.values["switch"][i] else "OFF",
            "Wifi": {"AP": 1, "SSId": "home", "BSSId": "30:B5:C2:5D:7E:12", "Channel": 6, "Mode": "11n",
                     "RSSI": rssi, "Signal": rssi - 125, "LinkCount": 1, "Downtime": "0T00:00:04"},
        })
    power = _num(float(track.values["power"][i]))
    volts = _num(float(extra["voltage"][i]))
    apparent = round(float(volts) * float(extra["current"][i]))
    return f"tele/{topic}/SENSOR", _dumps({
        "Time": _local(ts),
        "ENERGY": {
            "TotalStartTime": "2023-11-02T09:12:44", "Total": float(track.values["energy"][i]),
            "Yesterday": float(extra["yesterday"][i]), "Today": float(extra["today"][i]), "Power": power,
            "ApparentPower": max(apparent, int(power)), "ReactivePower": int(0.05 * float(power)),
            "Factor": 0.99 if power else 0.0, "Voltage": volts, "Current": float(extra["current"][i]),
        },
    })


def _shelly(track: Track, i: int) -> tuple[str, bytes]:
    v = track.values
    apower = float(v["power"][i])
    tc = float(v["temperature"][i])
    ts = float(track.ts[i])
    return f"{track.device.wire_id}/status/switch:0", _dumps({
        "id": 0, "source": "timer", "output": bool(v["switch"][i]), "apower": apower,
        "voltage": float(track.extra["voltage"][i]), "current": float(track.extra["current"][i]),
        "aenergy": {"total": float(track.extra["wh"][i]), "by_minute": [round(apower * 1000 / 60, 3), 0.0, 0.0],
                    "minute_ts": int(ts // 60 * 60)},
        "temperature": {"tC": tc, "tF": round(tc * 9 / 5 + 32, 1)},
    })


# discovery and availability ---------------------------------------------------------------

_Z2M_DEFINITIONS: dict[str, tuple[str, str, str, str]] = {
    # kind -> (vendor, model, description, power source)
    "motion": ("SONOFF", "SNZB-03", "Motion sensor", "Battery"),
    "contact": ("Aqara", "MCCGQ11LM", "Door and window sensor", "Battery"),
    "climate": ("Aqara", "WSDCGQ11LM", "Temperature, humidity and pressure sensor", "Battery"),
    "button": ("Aqara", "WXKG11LM", "Wireless mini switch", "Battery"),
    "plug": ("Tuya", "TS011F_plug_1", "Smart plug (with power monitoring)", "Mains (single phase)"),
}


def _numeric(name: str, unit: str, description: str) -> dict[str, object]:
    return {"access": 1, "description": description, "label": name.replace("_", " ").capitalize(), "name": name,
            "property": name, "type": "numeric", "unit": unit}


_BATTERY_EXPOSES = [_numeric("battery", "%", "Remaining battery in %, can take up to 24 hours before reported"),
                    _numeric("voltage", "mV", "Voltage of the battery in millivolts")]
_LQI = _numeric("linkquality", "lqi", "Link quality (signal strength)")


def _exposes(kind: str) -> list[dict[str, object]]:
    if kind == "motion":
        return [{"access": 1, "description": "Indicates whether the device detected occupancy", "label": "Occupancy",
                 "name": "occupancy", "property": "occupancy", "type": "binary", "value_off": False,
                 "value_on": True}, *_BATTERY_EXPOSES, _LQI]
    if kind == "contact":
        return [{"access": 1, "description": "Indicates if the contact is closed (= true) or open (= false)",
                 "label": "Contact", "name": "contact", "property": "contact", "type": "binary",
                 "value_off": True, "value_on": False}, *_BATTERY_EXPOSES, _LQI]
    if kind == "climate":
        return [_numeric("temperature", "°C", "Measured temperature value"),
                _numeric("humidity", "%", "Measured relative humidity"),
                _numeric("pressure", "hPa", "The measured atmospheric pressure"), *_BATTERY_EXPOSES, _LQI]
    if kind == "button":
        return [{"access": 1, "description": "Triggered action (e.g. a button click)", "label": "Action",
                 "name": "action", "property": "action", "type": "enum",
                 "values": ["single", "double", "triple", "quadruple", "hold", "release"]}, *_BATTERY_EXPOSES, _LQI]
    return [{"features": [{"access": 7, "description": "On/off state of the switch", "label": "State", "name": "state",
                           "property": "state", "type": "binary", "value_off": "OFF", "value_on": "ON",
                           "value_toggle": "TOGGLE"}], "type": "switch"},
            _numeric("power", "W", "Instantaneous measured power"),
            _numeric("current", "A", "Instantaneous measured electrical current"),
            _numeric("voltage", "V", "Measured electrical potential value"),
            _numeric("energy", "kWh", "Sum of consumed energy"), _LQI]


def _bridge_devices(devices: list[DeviceSpec]) -> list[dict[str, object]]:
    out: list[dict[str, object]] = [{
        "definition": None, "disabled": False, "endpoints": {}, "friendly_name": "Coordinator",
        "ieee_address": "0x00124b0024c2f6a1", "interview_completed": True, "interviewing": False,
        "network_address": 0, "supported": True, "type": "Coordinator",
    }]
    for k, d in enumerate(devices):
        vendor, model, description, source = _Z2M_DEFINITIONS[d.kind]
        out.append({
            "date_code": "20230306", "definition": {
                "description": description, "exposes": _exposes(d.kind), "model": model, "options": [],
                "supports_ota": d.kind == "plug", "vendor": vendor},
            "disabled": False, "endpoints": {"1": {"bindings": [], "clusters": {"input": [], "output": []},
                                                   "configured_reportings": [], "scenes": []}},
            "friendly_name": d.wire_id, "ieee_address": d.ieee, "interview_completed": True, "interviewing": False,
            "manufacturer": vendor, "model_id": model, "network_address": 1000 + 37 * k, "power_source": source,
            "software_build_id": "1.0.0", "supported": True, "type": "Router" if d.kind == "plug" else "EndDevice",
        })
    return out


def announce(place: PlaceSpec, ts: float) -> Iterator[WireMessage]:
    """Retained discovery and availability messages a place's devices publish when they start."""
    edge = place.edge_id
    z2m = [d for d in place.devices if d.protocol == "zigbee2mqtt"]
    if z2m:
        yield WireMessage(ts, edge, "zigbee2mqtt/bridge/state", _dumps({"state": "online"}), True)
        yield WireMessage(ts, edge, "zigbee2mqtt/bridge/devices", _dumps(_bridge_devices(z2m)), True)
    for d in place.devices:
        if d.protocol == "tasmota":
            yield WireMessage(ts, edge, f"tele/{d.wire_id}/LWT", b"Online", True)
        elif d.protocol == "shelly":
            yield WireMessage(ts, edge, f"{d.wire_id}/online", b"true", True)
        elif d.protocol == "homeassistant":
            obj = _HA_OBJECT[d.kind]
            config = {
                "dev_cla": obj, "unit_of_meas": "lx", "stat_cla": "measurement", "name": "Illuminance",
                "stat_t": f"{d.wire_id}/sensor/{obj}/state", "avty_t": f"{d.wire_id}/status",
                "uniq_id": f"{d.ieee}sensor{obj}",
                "dev": {"ids": d.ieee, "name": d.wire_id, "sw": "esphome v2024.6.1 Jun 18 2024", "mdl": "esp32dev",
                        "mf": "espressif", "sa": d.room},
            }
            yield WireMessage(ts, edge, f"homeassistant/sensor/{d.wire_id}/{obj}/config", _dumps(config), True)
            yield WireMessage(ts, edge, f"{d.wire_id}/status", b"online", True)


def track_order(tracks: list[Track]) -> tuple[np.ndarray, np.ndarray]:
    """(track index, row index) of every report of ``tracks`` in time order (stable)."""
    if not tracks:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    ts = np.concatenate([t.ts for t in tracks])
    which = np.concatenate([np.full(len(t), k, np.int64) for k, t in enumerate(tracks)])
    row = np.concatenate([np.arange(len(t), dtype=np.int64) for t in tracks])
    order = np.argsort(ts, kind="stable")
    return which[order], row[order]
