"""The built-in adapters, each registered through the ``genius.devices`` entry-point group.

Each module exposes ``ADAPTER`` (an instance with the projects' default topics); build another
instance to change a prefix, e.g. ``Zigbee2MqttAdapter(name="z2m-garage", base_topic="garage")``.
"""

from .homeassistant import HomeAssistantAdapter
from .ordonez import OrdonezAdapter, SensorRow, parse_sensor_row, read_sensor_rows, replay_readings, row_readings
from .shelly import ShellyAdapter
from .tasmota import TasmotaAdapter
from .zigbee2mqtt import Zigbee2MqttAdapter

__all__ = [
    "HomeAssistantAdapter",
    "OrdonezAdapter",
    "SensorRow",
    "ShellyAdapter",
    "TasmotaAdapter",
    "Zigbee2MqttAdapter",
    "parse_sensor_row",
    "read_sensor_rows",
    "replay_readings",
    "row_readings",
]
