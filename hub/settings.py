"""``HubSettings``: the one settings class of the hub process.

Sources, highest priority first: keyword arguments (the CLI), ``GENIUS_HUB_*`` environment
variables (nested with ``__``, e.g. ``GENIUS_HUB_BROKER__URL``), a TOML file, defaults.
Unknown keys anywhere are an error (``extra="forbid"``), so a typo never silently falls
back to a default.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, SecretStr, ValidationError, field_validator

from devices.errors import ConfigError
from devices.settings_toml import SECTION, TomlSettings, config_path, settings_config

from .http.settings import HttpSettings
from .security.settings import LimitsSettings, SecuritySettings

__all__ = ["AnticipationSettings", "BrokerSettings", "ContextSettings", "HubSettings", "IngestSettings", "StoreSettings"]


class BrokerSettings(BaseModel):
    """The hub's MQTT broker and the hub's persistent session on it."""

    model_config = SECTION
    url: str = "mqtt://127.0.0.1:1883"
    # Fixed client id + clean_session=False: the broker keeps QoS 1 messages for the hub
    # while it is down. Two hubs must never share one id.
    client_id: str = Field("genius-hub", min_length=1, max_length=64)
    username: str | None = None
    password: SecretStr | None = None
    keepalive_s: int = Field(30, ge=5, le=3600)
    connect_timeout_s: float = Field(10.0, gt=0)
    reconnect_min_s: float = Field(0.2, gt=0)
    reconnect_max_s: float = Field(30.0, gt=0)
    # Bound on aiomqtt's own incoming queue (messages). Past it a delivery is discarded
    # unacknowledged and the hub reconnects to have the broker redeliver (see hub.ingest).
    max_queued_incoming: int = Field(2_000, ge=10)

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("mqtt", "tcp") or not parts.hostname:
            raise ValueError(f"broker url {value!r} must look like mqtt://host:port")
        return value

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or "127.0.0.1"

    @property
    def port(self) -> int:
        return urlsplit(self.url).port or 1883


class StoreSettings(BaseModel):
    model_config = SECTION
    path: Path = Path("genius-hub.db")
    busy_timeout_s: float = Field(10.0, gt=0)


class IngestSettings(BaseModel):
    """Group commit, backpressure and acknowledgement."""

    model_config = SECTION
    # Messages waiting between the MQTT receiver and the writer (backpressure point).
    queue_messages: int = Field(256, ge=1)
    # One transaction takes what is already waiting, up to this many events or this long.
    group_max_events: int = Field(20_000, ge=1)
    group_max_s: float = Field(0.05, gt=0)
    # PUBACK QoS 1 deliveries only after their batch is committed (paho manual ack).
    manual_ack: bool = True
    ack_max_gaps: int = Field(64, ge=0)
    dead_letter_warn_window_s: float = Field(60.0, gt=0)
    # How long shutdown may spend committing what is in hand.
    flush_timeout_s: float = Field(10.0, gt=0)
    # The context is persisted with the commits at most this often (a crash loses at most
    # this much of it; the next events refresh it).
    context_persist_s: float = Field(5.0, ge=0)
    # A commit that fails is retried this many times before the hub stops (nothing is acked).
    commit_retries: int = Field(3, ge=0)


class ContextSettings(BaseModel):
    """How the digital context reads occupancy and home/away (see ``hub.context``)."""

    model_config = SECTION
    occupancy_window_s: float = Field(300.0, ge=0)
    away_after_s: float = Field(1800.0, gt=0)
    door_keywords: tuple[str, ...] = ("door", "entrance", "entry", "hall")


class AnticipationSettings(BaseModel):
    """The anticipation service (``hub.anticipation``): model, when to anticipate, markets."""

    model_config = SECTION
    enabled: bool = True
    # None: the artifact shipped in models/artifacts/ (skipped with a warning while none is
    # shipped); a path that is given must load, and any schema mismatch stops the hub.
    model_path: Path | None = None
    # Anticipate this long after the last commit touching a customer (a burst → one run) …
    debounce_s: float = Field(2.0, ge=0)
    # … and every this often for each customer active within active_s.
    interval_s: float = Field(60.0, gt=0)
    active_s: float = Field(6 * 3600.0, gt=0)
    top: int = Field(3, ge=1, le=20)
    # Events kept per customer in memory (the window is since_cap_s of the model's schema).
    max_events: int = Field(20_000, ge=10)
    max_customers: int = Field(10_000, ge=1)
    # Events held in memory over all customers (about 34 bytes each, up to twice that with
    # the buffers' headroom); past it the least recently active customers' events are
    # dropped from memory and read again from the store before their next anticipation.
    max_rows_total: int = Field(2_000_000, ge=1_000)
    # The customers' wall clock (the simulated households live on UTC).
    tz_offset_s: float = 0.0
    # A recognised job switches after this many consecutive runs name it, or at once when
    # its probability reaches switch_p (hysteresis against a flickering head).
    confirm_runs: int = Field(2, ge=1)
    switch_p: float = Field(0.6, gt=0, le=1)
    personal_strength: float = Field(1.0, gt=0)
    # A personal-layer move smaller than this (probability points) is not mentioned in because.
    personal_note_min: float = Field(0.02, ge=0)
    feedback_poll_s: float = Field(1.0, gt=0)


class HubSettings(TomlSettings):
    model_config = settings_config("GENIUS_HUB_")

    broker: BrokerSettings = BrokerSettings()
    store: StoreSettings = StoreSettings()
    ingest: IngestSettings = IngestSettings()
    context: ContextSettings = ContextSettings()
    # Batch signatures, replay protection (hub.security); limits on hostile input.
    security: SecuritySettings = SecuritySettings()
    limits: LimitsSettings = LimitsSettings()
    # Operator API, metrics and dashboard (hub.http); off unless http.listen is set.
    http: HttpSettings = HttpSettings()
    anticipation: AnticipationSettings = AnticipationSettings()
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @classmethod
    def load(cls, config: Path | str | None = None, **overrides: Any) -> HubSettings:
        """Settings from ``overrides`` > env > ``config`` TOML (or ``$GENIUS_HUB_CONFIG``) > defaults.

        ``overrides`` are nested dicts by section (``broker={"url": ...}``), deep-merged over
        the other sources. Raises ``ConfigError`` for a missing
        file, bad TOML or an invalid/unknown setting.
        """
        path = config_path(config, "GENIUS_HUB_CONFIG")
        if path is not None and not path.is_file():
            raise ConfigError(f"hub config file {str(path)!r} does not exist")
        try:
            return cls.from_sources(path, **overrides)
        except ValidationError as exc:
            raise ConfigError(f"invalid hub settings: {exc}") from exc
        except ValueError as exc:  # tomllib.TOMLDecodeError is a ValueError
            raise ConfigError(f"cannot read hub config {str(path)!r}: {exc}") from exc
