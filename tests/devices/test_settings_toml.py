"""The shared settings recipe: keyword values > env > TOML > defaults, ``__`` nesting, unknown keys refused."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel, ValidationError

from devices.settings_toml import SECTION, TomlSettings, config_path, settings_config


class _Section(BaseModel):
    model_config = SECTION
    size: int = 1
    name: str = "default"


class _Demo(TomlSettings):
    model_config = settings_config("GENIUS_DEMO_")
    level: str = "default"
    section: _Section = _Section()


def test_values_beat_env_which_beats_toml_which_beats_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    toml = tmp_path / "demo.toml"
    toml.write_text('level = "toml"\n[section]\nsize = 3\nname = "toml"\n')
    assert _Demo.from_sources(None).level == "default"
    assert _Demo.from_sources(toml).section == _Section(size=3, name="toml")
    monkeypatch.setenv("GENIUS_DEMO_LEVEL", "env")
    monkeypatch.setenv("GENIUS_DEMO_SECTION__SIZE", "5")
    from_env = _Demo.from_sources(toml)
    assert (from_env.level, from_env.section.size, from_env.section.name) == ("env", 5, "toml")  # nested merge
    assert _Demo.from_sources(toml, level="value").level == "value"
    assert _Demo.from_sources(None).level == "env"  # no file: no TOML source (and none left behind)


def test_unknown_keys_are_refused_at_every_level_and_settings_are_frozen(tmp_path: Path) -> None:
    toml = tmp_path / "demo.toml"
    toml.write_text("[section]\nsise = 3\n")
    with pytest.raises(ValidationError, match="sise"):
        _Demo.from_sources(toml)
    with pytest.raises(ValidationError, match="colour"):
        _Demo.from_sources(None, colour="red")
    with pytest.raises(ValidationError, match="frozen"):
        _Demo.from_sources(None).level = "x"  # type: ignore[misc]


def test_config_path_takes_the_argument_then_the_env_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GENIUS_DEMO_CONFIG", raising=False)
    assert config_path(None, "GENIUS_DEMO_CONFIG") is None
    monkeypatch.setenv("GENIUS_DEMO_CONFIG", "/etc/demo.toml")
    assert config_path(None, "GENIUS_DEMO_CONFIG") == Path("/etc/demo.toml")
    assert config_path("here.toml", "GENIUS_DEMO_CONFIG") == Path("here.toml")
    monkeypatch.setenv("GENIUS_DEMO_CONFIG", "")
    assert config_path(None, "GENIUS_DEMO_CONFIG") is None
