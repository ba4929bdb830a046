"""HubSettings: CLI overrides > GENIUS_HUB_* env > TOML > defaults; unknown keys refused."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from devices.errors import ConfigError
from hub.entry import add_run_arguments, settings_from_args
from hub.settings import HubSettings


def test_defaults_need_no_file() -> None:
    s = HubSettings.load()
    assert (s.broker.host, s.broker.port, s.broker.client_id) == ("127.0.0.1", 1883, "genius-hub")
    assert s.ingest.manual_ack is True


def test_precedence_is_arguments_then_env_then_toml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    toml = tmp_path / "hub.toml"
    toml.write_text('[broker]\nurl = "mqtt://127.0.0.1:1999"\nclient_id = "from-toml"\npassword = "s3cret"\n'
                    '[ingest]\ngroup_max_events = 5000\n[store]\npath = "toml.db"\n')
    monkeypatch.setenv("GENIUS_HUB_BROKER__CLIENT_ID", "from-env")
    monkeypatch.setenv("GENIUS_HUB_INGEST__GROUP_MAX_S", "0.2")
    parser = argparse.ArgumentParser()
    add_run_arguments(parser)
    s = settings_from_args(parser.parse_args(["--config", str(toml), "--db", str(tmp_path / "cli.db")]))
    assert s.broker.port == 1999 and s.broker.client_id == "from-env"
    assert (s.ingest.group_max_events, s.ingest.group_max_s) == (5000, 0.2)
    assert s.store.path == tmp_path / "cli.db"
    assert s.broker.password is not None and s.broker.password.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(s)


@pytest.mark.parametrize(
    "toml",
    ['[broker]\nurll = "mqtt://x"\n', '[nonsense]\nx = 1\n', '[broker]\nurl = "http://x"\n', "not = [toml"],
)
def test_bad_settings_are_a_config_error(tmp_path: Path, toml: str) -> None:
    path = tmp_path / "hub.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError):
        HubSettings.load(path)


def test_missing_config_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        HubSettings.load(tmp_path / "nope.toml")
