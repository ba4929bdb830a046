"""The pydantic-settings recipe every Genius process shares: keyword values > env > TOML > defaults.

    class HubSettings(TomlSettings):
        model_config = settings_config("GENIUS_HUB_")
        ...

    path = config_path(config, "GENIUS_HUB_CONFIG")   # --config, else $GENIUS_HUB_CONFIG, else none
    settings = HubSettings.from_sources(path, **overrides)

``settings_config`` is the one configuration of the class: the env prefix, ``__`` between nested keys
(``GENIUS_HUB_BROKER__URL``), ``extra="forbid"`` (a typo is an error, never a silent
default) and frozen instances; ``SECTION`` is the same for each nested section model. ``TomlSettings`` reads, highest priority first, the keyword
values, the environment, then the TOML file given to ``from_sources`` (no file: no TOML
source); nested values merge across sources. Each process keeps its own ``load`` (its error
messages, its ``None`` handling) on top of these.
"""

from __future__ import annotations

import contextvars
import os
from pathlib import Path
from typing import Any, Self

from pydantic import ConfigDict
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, TomlConfigSettingsSource

__all__ = ["SECTION", "TomlSettings", "config_path", "settings_config"]

# The model config of every nested section (``[outbox]``, ``[broker]`` …): as strict as the
# settings class itself about unknown keys, and as immutable.
SECTION = ConfigDict(extra="forbid", frozen=True)

# pydantic-settings picks sources on the class, but the TOML path is chosen at run time
# (``--config``): a context variable carries it into ``settings_customise_sources``.
_TOML_FILE: contextvars.ContextVar[Path | None] = contextvars.ContextVar("genius_settings_toml", default=None)


def settings_config(env_prefix: str) -> SettingsConfigDict:
    """The model config of a process's settings class (env prefix, ``__`` nesting, forbid, frozen)."""
    return SettingsConfigDict(env_prefix=env_prefix, env_nested_delimiter="__", extra="forbid", frozen=True)


def config_path(config: Path | str | None, env_var: str) -> Path | None:
    """The TOML file to read: ``config`` if given, else ``$env_var`` if set and not empty, else None."""
    if config is None and os.environ.get(env_var):
        config = os.environ[env_var]
    return Path(config) if config is not None else None


class TomlSettings(BaseSettings):
    """Settings read from keyword values, then the environment, then an optional TOML file."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        path = _TOML_FILE.get()
        if path is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
        return tuple(sources)

    @classmethod
    def from_sources(cls, toml_file: Path | None, /, **values: Any) -> Self:
        """Build from ``values`` > env > ``toml_file`` > defaults.

        Raises what pydantic raises: ``ValidationError`` for invalid settings, ``ValueError``
        for undecodable env values or TOML (``tomllib.TOMLDecodeError``).
        """
        token = _TOML_FILE.set(toml_file)
        try:
            return cls(**values)
        finally:
            _TOML_FILE.reset(token)
