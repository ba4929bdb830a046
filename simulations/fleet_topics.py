"""``EdgeNamespace``: one edge's devices on a local broker shared by many simulated edges.

Every simulated place publishes the real firmware topics (``zigbee2mqtt/…``, ``tele/…``,
``shellyplus…/status/…``, ``homeassistant/…``, ``venue/…``), so two edges on one broker
would read each other's devices. Rather than one local broker per edge (hundreds of
processes for a fleet), each edge gets a topic root ``{root}/{edge_id}/`` on one shared
local broker: the simulator's messages are published under it (``localise``), and the
edge's adapters are the built-in ones configured with that root (``sessions``): zigbee2mqtt
``base_topic``, Tasmota ``FullTopic``, Shelly topic-prefix root, Home Assistant
``discovery_prefix`` and the venue reader's topic. These are the settings a real install
changes when several bridges share a broker, so device names, rooms and readings are
exactly what the edge would read unprefixed (``tests/simulations/test_fleet_topics.py``).

Home Assistant discovery documents name absolute state and availability topics, so
``localise`` moves those inside the root too.
"""

from __future__ import annotations

import json

from devices.adapter import AdapterSession, DefinitionsAdapter
from devices.adapters.access import ACCESS_READER
from devices.adapters.homeassistant import HomeAssistantAdapter
from devices.adapters.shelly import ShellyAdapter
from devices.adapters.tasmota import TasmotaAdapter
from devices.adapters.zigbee2mqtt import Zigbee2MqttAdapter
from devices.definitions import DeviceDefinition, Topic, define

from .payloads import WireMessage

__all__ = ["DEFAULT_ROOT", "EdgeNamespace"]

DEFAULT_ROOT = "genius-sim"
_HA_TOPIC_KEYS = ("_t", "_topic")  # abbreviated and full discovery keys naming topics


class EdgeNamespace:
    """Topic root ``{root}/{edge_id}`` and adapter sessions that read devices under it."""

    def __init__(self, edge_id: str, *, root: str = DEFAULT_ROOT) -> None:
        self.edge_id = edge_id
        self.prefix = f"{root.strip('/')}/{edge_id}"

    def sessions(self) -> list[AdapterSession]:
        """Fresh sessions of the built-in adapters, in registry order, rooted at ``prefix``."""
        p = self.prefix
        adapters = (
            Zigbee2MqttAdapter(base_topic=f"{p}/zigbee2mqtt"),
            TasmotaAdapter(full_topic=f"{p}/%prefix%/%topic%/"),
            ShellyAdapter(root=p),
            DefinitionsAdapter.of([self.access_reader()], name="access"),
            HomeAssistantAdapter(discovery_prefix=f"{p}/homeassistant"),
        )
        return [a.new_session() for a in adapters]

    def access_reader(self) -> DeviceDefinition:
        return define(
            vendor=ACCESS_READER.vendor,
            model=ACCESS_READER.model,
            description=ACCESS_READER.description,
            match=Topic(f"{self.prefix}/{ACCESS_READER.match.pattern}"),
            exposes=ACCESS_READER.exposes,
        )

    def topic(self, topic: str) -> str:
        return f"{self.prefix}/{topic}"

    def localise(self, msg: WireMessage) -> tuple[str, bytes]:
        """The topic and payload ``msg`` has on the shared broker."""
        topic = self.topic(msg.topic)
        if msg.topic.startswith("homeassistant/") and msg.topic.endswith("/config") and msg.payload:
            return topic, self._ha_config(msg.payload)
        return topic, msg.payload

    def _ha_config(self, payload: bytes) -> bytes:
        conf = json.loads(payload)
        if not isinstance(conf, dict):
            return payload
        if isinstance(conf.get("~"), str):
            conf["~"] = self.topic(conf["~"])  # every "~/…" topic follows the base
        else:
            for key, value in list(conf.items()):
                if key.endswith(_HA_TOPIC_KEYS) and isinstance(value, str) and not value.startswith("~"):
                    conf[key] = self.topic(value)
        return json.dumps(conf, separators=(",", ":")).encode()
