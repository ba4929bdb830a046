"""EdgeSettings: CLI over env over TOML over defaults; secrets hidden; mistakes are ConfigErrors."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from devices.errors import ConfigError
from edge import EdgeSettings
from edge.settings import SEVEN_DAYS_AT_5_PER_S

TOML = """
customer = "alice"
edge = "alice-home"
role = "holiday_home"
local_broker = "mqtt://zig:s%40cret@127.0.0.1:1884"
hub_broker = { url = "mqtt://hub.example:8883", username = "alice-home", password = "hub-pass" }
adapters = ["zigbee2mqtt"]

[outbox]
path = "/var/lib/genius/edge.db"
max_events = 1000

[uplink]
batch_max_events = 100

[privacy]
default = "coarse"
capabilities = { media = "local" }

[devices.hall_motion]
room = "hall"
privacy = "share"

[devices.tv]
privacy = { media = "local", "*" = "share" }
"""


@pytest.fixture
def toml_file(tmp_path: Path) -> Path:
    path = tmp_path / "edge.toml"
    path.write_text(TOML)
    return path


def test_toml_file_fills_every_section(toml_file: Path) -> None:
    s = EdgeSettings.load(toml_file)
    assert (s.customer, s.edge, s.role) == ("alice", "alice-home", "holiday_home")
    assert s.local_broker.url == "mqtt://127.0.0.1:1884" and s.local_broker.username == "zig"
    assert s.local_broker.client_kwargs()["password"] == "s@cret"
    assert s.hub_broker.port == 8883 and s.hub_broker.password is not None
    assert s.adapters == ("zigbee2mqtt",)
    assert s.outbox.max_events == 1000 and s.outbox.overflow == "drop_oldest"
    assert s.uplink.batch_max_events == 100 and s.uplink.batch_max_delay_s == 0.2
    assert s.privacy.default == "coarse" and s.privacy.capabilities == {"media": "local"}
    assert s.devices["hall_motion"].room == "hall"
    assert s.devices["tv"].privacy == {"media": "local", "*": "share"}


def test_passwords_never_show_in_reprs(toml_file: Path) -> None:
    s = EdgeSettings.load(toml_file)
    assert "s@cret" not in repr(s) and "hub-pass" not in repr(s) and "hub-pass" not in str(s.model_dump())


def test_env_overrides_toml_and_cli_values_override_env(toml_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GENIUS_EDGE_ROLE", "office")
    monkeypatch.setenv("GENIUS_EDGE_OUTBOX__OVERFLOW", "drop_newest")
    monkeypatch.setenv("GENIUS_EDGE_UPLINK__RESEND_AFTER_S", "2.5")
    monkeypatch.setenv("GENIUS_EDGE_ADAPTERS", "tasmota,shelly")
    monkeypatch.setenv("GENIUS_EDGE_DEVICES__LAMP__PRIVACY", "local")
    monkeypatch.setenv("GENIUS_EDGE_HUB_BROKER__PASSWORD", "from-env")
    s = EdgeSettings.load(toml_file, role="car", outbox={"path": "/tmp/cli.db"})
    assert s.role == "car"  # CLI beats env
    assert s.outbox.path == Path("/tmp/cli.db") and s.outbox.max_events == 1000  # sections merge
    assert s.outbox.overflow == "drop_newest" and s.uplink.resend_after_s == 2.5
    assert s.adapters == ("tasmota", "shelly")
    assert s.devices["lamp"].privacy == "local" and s.devices["tv"].privacy == {"media": "local", "*": "share"}
    assert s.hub_broker.password is not None and s.hub_broker.password.get_secret_value() == "from-env"


def test_config_file_can_come_from_the_environment(toml_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GENIUS_EDGE_CONFIG", str(toml_file))
    assert EdgeSettings.load().customer == "alice"


def test_defaults_size_the_outbox_for_seven_days_offline(tmp_path: Path) -> None:
    s = EdgeSettings.load(
        None, customer="c", edge="e", local_broker="mqtt://127.0.0.1", hub_broker="mqtt://127.0.0.1:1",
        outbox={"path": tmp_path / "o.db"},
    )
    assert s.outbox.max_events == SEVEN_DAYS_AT_5_PER_S == 3_024_000
    assert s.local_broker.port == 1883 and s.role == "home" and s.privacy.default == "share"
    assert s.client_id_base == "genius-edge-c-e"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ('customer = "Alice"', "customer"),
        ("unknown_key = 1", "unknown_key"),
        ('[outbox]\npath = "x"\noverflow = "drop_random"', "overflow"),
        ('[devices.tv]\nprivacy = { warp = "local" }', "warp"),
        ('local_broker = "http://x:1"', "local_broker"),
    ],
)
def test_invalid_settings_are_config_errors_naming_the_field(tmp_path: Path, text: str, fragment: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text + "\n")
    with pytest.raises(ConfigError) as info:
        EdgeSettings.load(path)
    assert fragment in str(info.value)


def test_missing_or_malformed_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        EdgeSettings.load(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("customer = \n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        EdgeSettings.load(bad)


def test_cli_flags_map_onto_settings(toml_file: Path) -> None:
    from genius.cli.edge import settings_from_args

    args = argparse.Namespace(
        config=toml_file, customer="bob", edge=None, local_broker=None, hub_broker="mqtt://127.0.0.1:1999",
        outbox=Path("/tmp/bob.db"), adapters="tasmota", role=None,
    )
    s = settings_from_args(args)
    assert (s.customer, s.edge, s.role) == ("bob", "alice-home", "holiday_home")
    assert s.hub_broker.url == "mqtt://127.0.0.1:1999" and s.hub_broker.password is None
    assert s.outbox.path == Path("/tmp/bob.db") and s.adapters == ("tasmota",)
