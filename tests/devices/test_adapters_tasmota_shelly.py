"""Tasmota and Shelly Gen2: topic layouts, relay/channel naming, unit conversions, availability."""

from __future__ import annotations

import json

import pytest

from devices import DefinitionError, PayloadError
from devices.adapters import ShellyAdapter, TasmotaAdapter
from devices.adapters.shelly import ADAPTER as SHELLY
from devices.adapters.tasmota import ADAPTER as TASMOTA


def _readings(result):  # type: ignore[no-untyped-def]
    return sorted((r.device, r.capability, r.value) for r in result.readings)


# -- Tasmota ----------------------------------------------------------------------------------


def test_tasmota_default_full_topic_subscribes_to_tele_and_stat() -> None:
    assert TASMOTA.topics == ("tele/+/+", "stat/+/+")


def test_tasmota_custom_full_topic_moves_prefix_and_topic() -> None:
    adapter = TasmotaAdapter(full_topic="home/%prefix%/%topic%/")
    assert adapter.topics == ("home/tele/+/+", "home/stat/+/+")
    session = adapter.new_session()
    assert _readings(session.handle("home/stat/lamp/POWER", b"ON", ts=1.0)) == [("lamp", "switch", True)]
    with pytest.raises(PayloadError) as info:
        session.handle("stat/lamp/POWER", b"ON", ts=1.0)
    assert info.value.reason == "unknown_device"


def test_tasmota_topic_first_layout_is_supported() -> None:
    adapter = TasmotaAdapter(full_topic="tasmota/%topic%/%prefix%/")
    assert adapter.topics == ("tasmota/+/tele/+", "tasmota/+/stat/+")
    result = adapter.new_session().handle("tasmota/plug7/tele/LWT", b"Offline", ts=1.0)
    assert [(a.device, a.online) for a in result.availability] == [("plug7", False)]


def test_tasmota_full_topic_without_placeholders_fails_at_declaration() -> None:
    with pytest.raises(DefinitionError):
        TasmotaAdapter(full_topic="tasmota/%topic%/")


def test_tasmota_fahrenheit_is_converted_to_celsius() -> None:
    payload = json.dumps({"SI7021": {"Temperature": 68.0, "Humidity": 50}, "TempUnit": "F"}).encode()
    (temp,) = [r for r in TASMOTA.new_session().handle("tele/den/SENSOR", payload, ts=1.0).readings
               if r.capability == "temperature"]
    assert temp.value == pytest.approx(20.0)


def test_tasmota_relays_name_devices_by_number() -> None:
    session = TASMOTA.new_session()
    assert _readings(session.handle("stat/strip/POWER1", b"ON", ts=1.0)) == [("strip", "switch", True)]
    assert _readings(session.handle("stat/strip/POWER", b"OFF", ts=1.0)) == [("strip", "switch", False)]
    assert _readings(session.handle("stat/strip/POWER8", b"ON", ts=1.0)) == [("strip_8", "switch", True)]


def test_tasmota_commands_and_other_subtopics_are_owned_but_empty() -> None:
    session = TASMOTA.new_session()
    for topic in ("tele/strip/UPTIME", "stat/strip/STATUS", "stat/strip/POWER9", "tele/strip/HASS_STATE"):
        result = session.handle(topic, b'{"Uptime":"0T00:10:00"}', ts=1.0)
        assert result.readings == [] and result.availability == []


def test_tasmota_energy_total_and_power_are_kwh_and_watts() -> None:
    payload = b'{"Time":"2024-01-01T00:00:00","ENERGY":{"Total":12.5,"Today":0.4,"Power":"60","Voltage":230}}'
    assert _readings(TASMOTA.new_session().handle("tele/pc/SENSOR", payload, ts=1.0)) == [
        ("pc", "energy", 12.5), ("pc", "power", 60.0)]


# -- Shelly -----------------------------------------------------------------------------------


def test_shelly_subscribes_status_online_and_rpc_events() -> None:
    assert SHELLY.topics == ("+/status/+", "+/online", "+/events/rpc")
    rooted = ShellyAdapter(root="shellies")
    assert rooted.topics == ("shellies/+/status/+", "shellies/+/online", "shellies/+/events/rpc")


def test_shelly_energy_is_reported_in_kwh() -> None:
    payload = b'{"id":0,"output":true,"apower":1200.5,"aenergy":{"total":4500.0}}'
    result = SHELLY.new_session().handle("shellyplusplugs-e8db84aabbcc/status/switch:0", payload, ts=1.0)
    assert _readings(result) == [("shellyplusplugs-e8db84aabbcc", "energy", 4.5),
                                 ("shellyplusplugs-e8db84aabbcc", "power", 1200.5),
                                 ("shellyplusplugs-e8db84aabbcc", "switch", True)]
    (profile,) = result.profiles
    assert (profile.vendor, profile.model) == ("Shelly", "shellyplusplugs")


def test_shelly_with_root_prefix_reads_the_id_segment() -> None:
    session = ShellyAdapter(root="shellies").new_session()
    result = session.handle("shellies/shellyplus1-a1b2c3/status/switch:0", b'{"id":0,"output":false}', ts=1.0)
    assert _readings(result) == [("shellyplus1-a1b2c3", "switch", False)]
    with pytest.raises(PayloadError):
        session.handle("shellyplus1-a1b2c3/status/switch:0", b'{"id":0,"output":false}', ts=1.0)


def test_shelly_channel_n_is_its_own_device() -> None:
    result = SHELLY.new_session().handle("shellypro4pm-c8f09e000001/status/switch:3", b'{"id":3,"output":true}', ts=1.0)
    assert _readings(result) == [("shellypro4pm-c8f09e000001_3", "switch", True)]


def test_shelly_malformed_component_id_is_a_schema_error() -> None:
    with pytest.raises(PayloadError) as info:
        SHELLY.new_session().handle("shellyplus1-a1b2c3/status/switch:x", b'{"output":true}', ts=1.0)
    assert info.value.reason == "schema"


def test_shelly_online_is_availability() -> None:
    session = SHELLY.new_session()
    assert session.handle("shellyplus1-a1b2c3/online", b"false", ts=1.0).availability[0].online is False
    assert session.handle("shellyplus1-a1b2c3/online", b"true", ts=1.0).availability[0].online is True
