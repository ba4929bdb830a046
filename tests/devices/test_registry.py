"""The plugin registry: strict vs lenient broken plugins, duplicates, and adapter order."""

from __future__ import annotations

from importlib.metadata import EntryPoint, entry_points

import pytest

from devices import ENTRY_POINT_GROUP, RegistryError, Topic, define, first_session, load_registry, temperature
from devices.adapters import Zigbee2MqttAdapter

# Importable plugin objects for the entry points below (this module is on sys.path under pytest).
GARAGE = Zigbee2MqttAdapter(name="z2m-garage", base_topic="garage")
THERMO = define(vendor="acme", model="T-1", match=Topic("acme/+/thermo"), exposes=(temperature(path="t"),))
THERMO_AGAIN = define(vendor="acme", model="T-1", match=Topic("other/+/thermo"), exposes=(temperature(path="t"),))

BUILTINS = list(entry_points(group=ENTRY_POINT_GROUP))


def _ep(name: str, value: str) -> EntryPoint:
    return EntryPoint(name=name, value=value, group=ENTRY_POINT_GROUP)


def test_builtin_adapters_load_strictly() -> None:
    registry = load_registry(strict=True)
    assert set(registry.adapters) == {"zigbee2mqtt", "tasmota", "shelly", "ordonez", "homeassistant"}
    assert registry.skipped == {}


@pytest.mark.parametrize("value", ["genius_no_such_plugin:THING", "math:pi", "devices.adapters.zigbee2mqtt:MISSING"])
def test_broken_plugin_is_skipped_when_lenient_and_fatal_when_strict(value: str) -> None:
    source = lambda: [*BUILTINS, _ep("broken", value)]  # noqa: E731
    lenient = load_registry(source=source)
    assert "broken" in lenient.skipped
    assert "zigbee2mqtt" in lenient.adapters and "homeassistant" in lenient.adapters
    with pytest.raises(RegistryError) as info:
        load_registry(strict=True, source=source)
    assert info.value.plugin == "broken"


def test_duplicate_adapter_is_an_error_even_when_lenient() -> None:
    source = lambda: [*BUILTINS, _ep("zigbee2mqtt-copy", "devices.adapters.zigbee2mqtt:ADAPTER")]  # noqa: E731
    with pytest.raises(RegistryError, match="registered twice"):
        load_registry(source=source)


def test_duplicate_device_definition_is_an_error() -> None:
    source = lambda: [_ep("thermo", "test_registry:THERMO"), _ep("thermo2", "test_registry:THERMO_AGAIN")]  # noqa: E731
    with pytest.raises(RegistryError, match="acme/T-1"):
        load_registry(source=source)


def test_homeassistant_comes_last_whatever_the_install_order() -> None:
    scrambled = [*reversed(BUILTINS), _ep("garage", "test_registry:GARAGE"), _ep("thermo", "test_registry:THERMO")]
    registry = load_registry(strict=True, source=lambda: scrambled)
    assert list(registry.adapters) == ["zigbee2mqtt", "tasmota", "shelly", "ordonez", "z2m-garage", "homeassistant"]
    assert [s.adapter.name for s in registry.sessions()][-2:] == ["definitions", "homeassistant"]


def test_enabled_adapters_filter_sessions_and_unknown_names_fail() -> None:
    registry = load_registry(strict=True)
    assert [s.adapter.name for s in registry.sessions(["tasmota", "shelly"])] == ["tasmota", "shelly"]
    with pytest.raises(RegistryError, match="unknown adapters"):
        registry.sessions(["zwave"])


def test_zigbee2mqtt_owns_its_topics_even_when_ha_discovery_announces_them() -> None:
    sessions = load_registry(strict=True).sessions()
    ha = next(s for s in sessions if s.adapter.name == "homeassistant")
    ha.handle("homeassistant/sensor/0x1/temperature/config",
              b'{"stat_t":"zigbee2mqtt/den/climate","dev_cla":"temperature","val_tpl":"{{ value_json.temperature }}"}',
              ts=1.0)
    assert ha.matches("zigbee2mqtt/den/climate")
    owner = first_session(sessions, "zigbee2mqtt/den/climate")
    assert owner is not None and owner.adapter.name == "zigbee2mqtt"
