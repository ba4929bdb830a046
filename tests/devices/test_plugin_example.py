"""The worked example of docs/plugins.md: an Acme kettle plugin loads through an entry point and reads."""

from __future__ import annotations

import tomllib
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

from devices import ENTRY_POINT_GROUP, PayloadError, first_session, load_registry

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "acme_kettle"
KETTLE_EP = EntryPoint(name="acme_kettle", value="acme_kettle:KETTLE", group=ENTRY_POINT_GROUP)


@pytest.fixture
def kettle_on_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(EXAMPLE))


def test_example_pyproject_declares_the_entry_point_the_test_uses() -> None:
    project = tomllib.loads((EXAMPLE / "pyproject.toml").read_text())["project"]
    assert project["entry-points"][ENTRY_POINT_GROUP] == {KETTLE_EP.name: KETTLE_EP.value}


@pytest.mark.usefixtures("kettle_on_path")
def test_kettle_payload_becomes_readings_through_registry_sessions() -> None:
    registry = load_registry(strict=True, source=lambda: [KETTLE_EP])
    assert list(registry.definitions) == ["Acme/K-1"]
    sessions = registry.sessions()
    session = first_session(sessions, "acme/k1/kettle")
    assert session is not None
    result = session.handle("acme/k1/kettle", b'{"heating": true, "watts": 2150, "water_c": 87.5, "fw": "1.4.2"}',
                            ts=100.0)
    assert sorted((r.device, r.capability, r.value) for r in result.readings) == [
        ("k1", "power", 2150.0), ("k1", "switch", True), ("k1", "temperature", 87.5)]
    assert [(p.device, p.vendor, p.model, p.capabilities) for p in result.profiles] == [
        ("k1", "Acme", "K-1", ("power", "switch", "temperature"))]
    with pytest.raises(PayloadError):
        session.handle("acme/k1/kettle", b'{"watts": "lots"}', ts=101.0)


@pytest.mark.usefixtures("kettle_on_path")
def test_kettle_plugin_sits_beside_the_builtin_adapters() -> None:
    from importlib.metadata import entry_points

    builtins = list(entry_points(group=ENTRY_POINT_GROUP))
    registry = load_registry(strict=True, source=lambda: [*builtins, KETTLE_EP])
    names = [s.adapter.name for s in registry.sessions()]
    assert names == ["zigbee2mqtt", "tasmota", "shelly", "ordonez", "definitions", "homeassistant"]
    owner = first_session(registry.sessions(), "acme/k1/kettle")
    assert owner is not None and owner.adapter.name == "definitions"
