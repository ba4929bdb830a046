"""zigbee2mqtt: discovery tables, the default table before discovery, rooms, availability, commands."""

from __future__ import annotations

import json

import pytest
from test_adapters_fixtures import FIXTURES, replay

from devices import PayloadError
from devices.adapters import Zigbee2MqttAdapter
from devices.adapters.zigbee2mqtt import ADAPTER

BRIDGE = next(f for f in FIXTURES["zigbee2mqtt"] if f.path.stem == "bridge_and_devices")
BRIDGE_DEVICES = next(m for m in BRIDGE.messages if m.topic.endswith("bridge/devices"))


def _state(session, name: str, doc: dict, *, base: str = "zigbee2mqtt"):  # type: ignore[no-untyped-def]
    return session.handle(f"{base}/{name}", json.dumps(doc).encode(), ts=10.0)


def test_bridge_devices_become_profiles_with_capabilities_and_rooms() -> None:
    session = ADAPTER.new_session()
    result = session.handle(BRIDGE_DEVICES.topic, BRIDGE_DEVICES.payload, ts=1.0)
    profiles = {p.device: p for p in result.profiles}
    assert "Coordinator" not in profiles
    assert profiles["kitchen/motion"].capabilities == ("battery", "illuminance", "occupancy")
    assert profiles["kitchen/motion"].room == "kitchen"
    assert (profiles["kitchen/plug"].vendor, profiles["kitchen/plug"].model) == ("Xiaomi", "ZNCZ02LM")
    assert profiles["living/remote"].capabilities == ("action", "battery")
    assert profiles["bedroom/wall_l1"].capabilities == ("switch",)
    assert profiles["my_sensor"].capabilities == ()
    assert {p.device for p in session.profiles()} == set(profiles)


def test_republished_bridge_devices_announce_nothing_new() -> None:
    session = ADAPTER.new_session()
    session.handle(BRIDGE_DEVICES.topic, BRIDGE_DEVICES.payload, ts=1.0)
    again = session.handle(BRIDGE_DEVICES.topic, BRIDGE_DEVICES.payload, ts=2.0)
    assert again.profiles == []


def test_removed_device_leaves_the_profile_list() -> None:
    session = ADAPTER.new_session()
    session.handle(BRIDGE_DEVICES.topic, BRIDGE_DEVICES.payload, ts=1.0)
    fewer = [d for d in BRIDGE_DEVICES.doc if d["friendly_name"] != "hall/door"]
    session.handle(BRIDGE_DEVICES.topic, json.dumps(fewer).encode(), ts=2.0)
    assert "hall/door" not in {p.device for p in session.profiles()}
    assert "kitchen/motion" in {p.device for p in session.profiles()}


def test_illuminance_lux_wins_over_raw_illuminance() -> None:
    session = ADAPTER.new_session()
    session.handle(BRIDGE_DEVICES.topic, BRIDGE_DEVICES.payload, ts=1.0)
    listed = _state(session, "kitchen/motion", {"illuminance": 5, "illuminance_lux": 40})
    unlisted = _state(ADAPTER.new_session(), "hall/motion", {"illuminance": 5, "illuminance_lux": 40})
    only_raw = _state(ADAPTER.new_session(), "hall/motion", {"illuminance": 5})
    for result, lux in ((listed, 40.0), (unlisted, 40.0), (only_raw, 5.0)):
        assert [(r.capability, r.value) for r in result.readings] == [("illuminance", lux)]


def test_device_publishing_before_bridge_list_is_still_read() -> None:
    session = ADAPTER.new_session()
    result = _state(session, "garage/plug", {"state": "ON", "power": 3.5, "energy": 1.25, "linkquality": 9})
    assert sorted((r.device, r.capability, r.value, r.room) for r in result.readings) == [
        ("garage/plug", "energy", 1.25, "garage"),
        ("garage/plug", "power", 3.5, "garage"),
        ("garage/plug", "switch", True, "garage"),
    ]
    assert [p.capabilities for p in result.profiles] == [("energy", "power", "switch")]


def test_contact_true_means_closed_despite_value_on_false() -> None:
    session = ADAPTER.new_session()
    session.handle(BRIDGE_DEVICES.topic, BRIDGE_DEVICES.payload, ts=1.0)
    assert _state(session, "hall/door", {"contact": True}).readings[0].value is True
    assert _state(session, "hall/door", {"contact": False}).readings[0].value is False


def test_empty_action_after_a_press_is_skipped() -> None:
    session = ADAPTER.new_session()
    assert [r.value for r in _state(session, "living/remote", {"action": "single"}).readings] == ["single"]
    assert _state(session, "living/remote", {"action": ""}).readings == []
    assert _state(session, "living/remote", {"action": None}).readings == []


def test_availability_in_legacy_and_json_form() -> None:
    session = ADAPTER.new_session()
    for payload, online in ((b"online", True), (b"offline", False), (b'{"state":"online"}', True),
                            (b'{"state":"offline"}', False)):
        result = session.handle("zigbee2mqtt/kitchen/motion/availability", payload, ts=1.0)
        assert [(a.device, a.online) for a in result.availability] == [("kitchen/motion", online)]


@pytest.mark.parametrize("topic", [
    "zigbee2mqtt/bridge/state", "zigbee2mqtt/bridge/info", "zigbee2mqtt/bridge/logging",
    "zigbee2mqtt/bridge/event", "zigbee2mqtt/bridge/request/permit_join", "zigbee2mqtt/bridge/response/networkmap",
    "zigbee2mqtt/kitchen/plug/set", "zigbee2mqtt/kitchen/plug/get", "zigbee2mqtt/kitchen/plug/set/state",
])
def test_owned_topics_without_readings_give_an_empty_result(topic: str) -> None:
    result = ADAPTER.new_session().handle(topic, b'{"state":"ON","level":"info"}', ts=1.0)
    assert (result.readings, result.availability, result.profiles) == ([], [], [])


def test_group_state_is_not_a_device() -> None:
    session = ADAPTER.new_session()
    session.handle("zigbee2mqtt/bridge/groups", b'[{"id":1,"friendly_name":"all_lights","members":[]}]', ts=1.0)
    assert _state(session, "all_lights", {"state": "ON"}).readings == []
    session.handle(BRIDGE_DEVICES.topic, BRIDGE_DEVICES.payload, ts=2.0)  # groups survive a device list
    assert _state(session, "all_lights", {"state": "ON"}).readings == []


def test_bad_values_of_known_keys_are_payload_errors() -> None:
    session = ADAPTER.new_session()
    session.handle(BRIDGE_DEVICES.topic, BRIDGE_DEVICES.payload, ts=1.0)
    cases = [("kitchen/motion", {"occupancy": "perhaps"}), ("living/climate", {"temperature": "warm"}),
             ("kitchen/motion", {"battery": True}), ("living/remote", {"action": 3}),
             ("kitchen/plug", {"state": "ajar"})]
    for name, doc in cases:
        with pytest.raises(PayloadError) as info:
            _state(session, name, doc)
        assert info.value.reason == "value", (name, doc)


def test_custom_base_topic_is_subscribed_and_read() -> None:
    adapter = Zigbee2MqttAdapter(name="z2m-garage", base_topic="garage/z2m")
    session = adapter.new_session()
    assert adapter.topics == ("garage/z2m/#",)
    assert session.matches("garage/z2m/door") and not session.matches("zigbee2mqtt/door")
    result = _state(session, "door", {"contact": True}, base="garage/z2m")
    assert [(r.device, r.value) for r in result.readings] == [("door", True)]
    with pytest.raises(PayloadError):
        session.handle("zigbee2mqtt/door", b'{"contact":true}', ts=1.0)


def test_bridge_list_larger_than_the_default_payload_limit_is_accepted() -> None:
    many = [{**BRIDGE_DEVICES.doc[1], "friendly_name": f"room{i}/motion", "ieee_address": f"0x{i:016x}"}
            for i in range(150)]
    payload = json.dumps(many).encode()
    assert len(payload) > 64 * 1024
    result = ADAPTER.new_session().handle("zigbee2mqtt/bridge/devices", payload, ts=1.0)
    assert len(result.profiles) == 150
