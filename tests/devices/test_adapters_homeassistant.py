"""Home Assistant MQTT discovery: the supported subset, inversions, units, subscriptions, removal."""

from __future__ import annotations

import json
from typing import Any

import pytest

from devices import PayloadError
from devices.adapters import HomeAssistantAdapter
from devices.adapters.homeassistant import ADAPTER, expand, parse_template


def _config(  # type: ignore[no-untyped-def]
    session, component: str, object_id: str, conf: dict[str, Any], *, node: str | None = None
):
    topic = f"homeassistant/{component}/{node + '/' if node else ''}{object_id}/config"
    return session.handle(topic, json.dumps(conf).encode(), ts=1.0)


def _value(session, topic: str, payload: bytes) -> Any:  # type: ignore[no-untyped-def]
    (reading,) = session.handle(topic, payload, ts=2.0).readings
    return reading.value


@pytest.mark.parametrize(("template", "path"), [
    (None, None),
    ("{{ value }}", None),
    ("{{value}}", None),
    ("{{ value_json.temperature }}", ("temperature",)),
    ("{{value_json.temperature}}", ("temperature",)),
    ("{{ value_json.ENERGY.Total }}", ("ENERGY", "Total")),
    ("{{value_json['ENERGY']['Total']}}", ("ENERGY", "Total")),
    ('{{ value_json["a b"].c }}', ("a b", "c")),
])
def test_supported_value_templates(template: str | None, path: tuple[str, ...] | None) -> None:
    assert parse_template(template) == path


@pytest.mark.parametrize("template", [
    "{{ value_json.t | float }}", "{{ value | int }}", "{% if value == 'on' %}ON{% endif %}",
    "{{ value_json.t * 2 }}", "{{ states('sensor.x') }}", "{{ value_json[0] }}",
])
def test_other_templates_are_unsupported(template: str) -> None:
    with pytest.raises(PayloadError) as info:
        parse_template(template)
    assert info.value.reason == "unsupported"


def test_abbreviations_and_base_topic_expand() -> None:
    conf = expand({"~": "home/den", "stat_t": "~/state", "avty_t": "status/~", "dev_cla": "motion", "pl_on": "1",
                   "dev": {"ids": ["x"], "mf": "Acme", "sa": "Den"}, "avty": [{"t": "~/avail"}]})
    assert conf["state_topic"] == "home/den/state"
    assert conf["availability_topic"] == "status/home/den"
    assert conf["device_class"] == "motion" and conf["payload_on"] == "1"
    assert conf["device"] == {"identifiers": ["x"], "manufacturer": "Acme", "suggested_area": "Den"}
    assert conf["availability"] == [{"topic": "home/den/avail"}]
    assert "~" not in conf


def test_door_and_lock_binary_sensors_are_inverted_to_canonical() -> None:
    session = ADAPTER.new_session()
    _config(session, "binary_sensor", "front_door", {"stat_t": "esp/door", "dev_cla": "door"})
    _config(session, "binary_sensor", "front_lock", {"stat_t": "esp/lock", "dev_cla": "lock"})
    assert _value(session, "esp/door", b"ON") is False  # HA on = open; canonical contact true = closed
    assert _value(session, "esp/door", b"OFF") is True
    assert _value(session, "esp/lock", b"ON") is False  # HA on = unlocked; canonical lock true = locked
    assert _value(session, "esp/lock", b"OFF") is True


def test_motion_occupancy_and_presence_classes_are_occupancy() -> None:
    session = ADAPTER.new_session()
    for i, cls in enumerate(("motion", "occupancy", "presence")):
        result = _config(session, "binary_sensor", f"s{i}", {"stat_t": f"esp/s{i}", "dev_cla": cls, "pl_on": "yes",
                                                            "pl_off": "no"})
        assert result.profiles[0].capabilities == ("occupancy",)
        assert _value(session, f"esp/s{i}", b"yes") is True


@pytest.mark.parametrize(("unit", "raw", "kwh"), [("Wh", b"1500", 1.5), ("kWh", b"1.5", 1.5), ("MWh", b"0.0015", 1.5),
                                                  (None, b"1.5", 1.5)])
def test_energy_is_converted_to_kwh_by_unit(unit: str | None, raw: bytes, kwh: float) -> None:
    session = ADAPTER.new_session()
    conf = {"stat_t": "meter/energy", "dev_cla": "energy", **({"unit_of_meas": unit} if unit else {})}
    _config(session, "sensor", "meter", conf)
    assert _value(session, "meter/energy", raw) == pytest.approx(kwh)


def test_fahrenheit_and_kilowatt_sensors_are_converted() -> None:
    session = ADAPTER.new_session()
    _config(session, "sensor", "t", {"stat_t": "x/t", "dev_cla": "temperature", "unit_of_meas": "°F"})
    _config(session, "sensor", "p", {"stat_t": "x/p", "dev_cla": "power", "unit_of_meas": "kW"})
    assert _value(session, "x/t", b"212") == pytest.approx(100.0)
    assert _value(session, "x/p", b"1.2") == pytest.approx(1200.0)


def test_switch_uses_state_on_before_payload_on() -> None:
    session = ADAPTER.new_session()
    _config(session, "switch", "pump", {"stat_t": "pump/state", "pl_on": "run", "pl_off": "stop", "stat_on": "running",
                                         "stat_off": "stopped"})
    assert _value(session, "pump/state", b"running") is True
    assert _value(session, "pump/state", b"stopped") is False
    with pytest.raises(PayloadError) as info:
        session.handle("pump/state", b"run", ts=1.0)
    assert info.value.reason == "value"


def test_sensor_state_without_a_value_reads_nothing() -> None:
    session = ADAPTER.new_session()
    _config(session, "sensor", "t", {"stat_t": "x/t", "dev_cla": "temperature"})
    for payload in (b"", b"unknown", b"unavailable", b"None"):
        assert session.handle("x/t", payload, ts=1.0).readings == []


def test_discovery_subscribes_then_matches_the_state_topic() -> None:
    session = ADAPTER.new_session()
    assert not session.matches("living/sensor/state")
    result = _config(session, "sensor", "lux", {"stat_t": "living/sensor/state", "dev_cla": "illuminance",
                                                "avty_t": "living/status"}, node="esp1")
    assert result.subscribe == ["living/sensor/state", "living/status"]
    assert session.matches("living/sensor/state") and session.matches("living/status")
    assert {"living/sensor/state", "living/status"} <= set(session.subscriptions())
    assert session.handle("living/status", b"offline", ts=1.0).availability[0].device == "esp1_lux"


def test_changed_config_moves_the_subscription() -> None:
    session = ADAPTER.new_session()
    _config(session, "sensor", "t", {"stat_t": "old/t", "dev_cla": "temperature"})
    moved = _config(session, "sensor", "t", {"stat_t": "new/t", "dev_cla": "temperature"})
    assert (moved.subscribe, moved.unsubscribe) == (["new/t"], ["old/t"])
    same = _config(session, "sensor", "t", {"stat_t": "new/t", "dev_cla": "temperature", "name": "renamed"})
    assert (same.subscribe, same.unsubscribe) == ([], [])


def test_empty_config_removes_the_entity_and_its_profile() -> None:
    session = ADAPTER.new_session()
    _config(session, "sensor", "t", {"stat_t": "x/t", "dev_cla": "temperature"})
    removed = session.handle("homeassistant/sensor/t/config", b"", ts=1.0)
    assert removed.unsubscribe == ["x/t"]
    assert session.profiles() == []
    with pytest.raises(PayloadError) as info:
        session.handle("x/t", b"20", ts=1.0)
    assert info.value.reason == "unknown_device"


def test_unsupported_config_is_a_dead_letter_and_subscribes_nothing() -> None:
    session = ADAPTER.new_session()
    with pytest.raises(PayloadError) as info:
        _config(session, "sensor", "t", {"stat_t": "x/t", "dev_cla": "temperature", "val_tpl": "{{ value | float }}"})
    assert info.value.reason == "unsupported"
    assert session.subscriptions() == list(ADAPTER.topics)


def test_components_without_canonical_meaning_are_ignored() -> None:
    session = ADAPTER.new_session()
    for component, conf in (("light", {"stat_t": "l/state"}), ("sensor", {"stat_t": "v/state", "dev_cla": "voltage"}),
                            ("binary_sensor", {"stat_t": "s/state", "dev_cla": "smoke"})):
        result = _config(session, component, "x", conf)
        assert (result.subscribe, result.profiles) == ([], [])


def test_custom_discovery_prefix() -> None:
    adapter = HomeAssistantAdapter(discovery_prefix="ha/discovery")
    session = adapter.new_session()
    result = session.handle("ha/discovery/sensor/h/config", b'{"stat_t":"h/s","dev_cla":"humidity"}', ts=1.0)
    assert result.subscribe == ["h/s"]
    assert _value(session, "h/s", b"55") == 55.0


def test_entities_sharing_a_device_name_share_one_profile() -> None:
    session = ADAPTER.new_session()
    _config(session, "sensor", "x", {"stat_t": "x/t", "dev_cla": "temperature"})
    both = _config(session, "binary_sensor", "x", {"stat_t": "x/m", "dev_cla": "motion"})
    assert [p.capabilities for p in both.profiles] == [("occupancy", "temperature")]
    one_left = session.handle("homeassistant/sensor/x/config", b"", ts=1.0)
    assert [p.capabilities for p in one_left.profiles] == [("occupancy",)]
    assert [p.device for p in session.profiles()] == ["x"]
