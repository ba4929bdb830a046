"""``EdgeSettings``: every option of one edge process, from CLI, env, TOML and defaults.

Precedence, highest first: values passed to ``EdgeSettings.load`` (the CLI's flags), then
``GENIUS_EDGE_*`` environment variables (nested with ``__``, e.g.
``GENIUS_EDGE_OUTBOX__MAX_EVENTS``), then the TOML file (``--config`` or
``GENIUS_EDGE_CONFIG``), then the defaults below. Unknown keys are errors everywhere::

    customer = "alice"
    edge = "alice-home"
    role = "home"
    local_broker = "mqtt://127.0.0.1:1884"
    hub_broker = { url = "mqtt://hub.example:1883", username = "alice-home", password = "…" }

    [outbox]
    path = "/var/lib/genius/edge.db"
    overflow = "drop_oldest"

    [privacy]
    default = "share"
    capabilities = { media = "coarse" }

    [devices.hall_motion]
    room = "hall"
    privacy = "coarse"                          # the whole device …
    [devices.tv]
    privacy = { media = "local", "*" = "share" }  # … or per capability
"""

from __future__ import annotations

import ssl
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import unquote, urlsplit

from pydantic import BaseModel, Field, SecretStr, ValidationError, field_validator, model_validator

from devices.capabilities import KIND
from devices.errors import ConfigError
from devices.settings_toml import SECTION, TomlSettings, config_path, settings_config
from devices.wire import ID_PATTERN

__all__ = [
    "ROLES",
    "BrokerSettings",
    "DeviceSettings",
    "EdgeSettings",
    "HomeSettings",
    "LocalSettings",
    "OutboxSettings",
    "Overflow",
    "Policy",
    "PrivacySettings",
    "Role",
    "SigningSettings",
    "UplinkSettings",
]

Policy = Literal["share", "coarse", "local"]
Overflow = Literal["drop_oldest", "drop_newest"]
Role = Literal["home", "venue", "holiday_home", "office", "car"]
ROLES: tuple[str, ...] = ("home", "venue", "holiday_home", "office", "car")
Identifier = Annotated[str, Field(pattern=ID_PATTERN)]
Name = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[^\x00-\x1f\x7f]+$")]

# 7 days offline at 5 events/s; about 95 MB of outbox at ~32 bytes per row.
SEVEN_DAYS_AT_5_PER_S = 7 * 86_400 * 5


class BrokerSettings(BaseModel):
    """An MQTT broker: ``mqtt[s]://[user[:password]@]host[:port]``, or the parts as a table.

    A password in the URL is moved into ``password`` (a ``SecretStr``) so it never shows in
    logs or reprs; ``url`` keeps only scheme, host and port. ``mqtts://`` (default port
    8883) connects with TLS, trusting ``ca_file`` (the hub's CA from ``genius hub
    init-certs``) or, without it, the system's CAs.
    """

    model_config = SECTION
    url: str
    username: str | None = None
    password: SecretStr | None = None
    keepalive: int = Field(30, ge=5, le=3600)
    ca_file: Path | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_url(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = {"url": value}
        if not isinstance(value, dict) or not isinstance(value.get("url"), str):
            return value
        parts = urlsplit(value["url"])
        if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
            raise ValueError(f"broker URL must look like mqtt://host:port or mqtts://host:port, not {value['url']!r}")
        try:
            port = parts.port or (8883 if parts.scheme == "mqtts" else 1883)
        except ValueError as exc:
            raise ValueError(f"bad port in broker URL {value['url']!r}") from exc
        out = dict(value)
        out["url"] = f"{parts.scheme}://{parts.hostname}:{port}"
        if parts.username is not None:
            out.setdefault("username", unquote(parts.username))
        if parts.password is not None:
            out.setdefault("password", unquote(parts.password))
        return out

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or "127.0.0.1"

    @property
    def port(self) -> int:
        return urlsplit(self.url).port or (8883 if self.tls else 1883)

    @property
    def tls(self) -> bool:
        return self.url.startswith("mqtts://")

    def client_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``aiomqtt.Client`` (host, port, credentials, keepalive, TLS)."""
        kwargs: dict[str, Any] = {
            "hostname": self.host,
            "port": self.port,
            "username": self.username,
            "password": self.password.get_secret_value() if self.password is not None else None,
            "keepalive": self.keepalive,
        }
        if self.tls:
            kwargs["tls_context"] = ssl.create_default_context(
                cafile=str(self.ca_file) if self.ca_file is not None else None
            )
        return kwargs


class DeviceSettings(BaseModel):
    """Per-device overrides: the room it is in, and its privacy policy.

    ``privacy`` is one policy for the whole device, or a table capability → policy where
    ``"*"`` covers the device's other capabilities.
    """

    model_config = SECTION
    room: Name | None = None
    privacy: Policy | dict[str, Policy] | None = None

    @field_validator("privacy")
    @classmethod
    def _known_capabilities(cls, value: Policy | dict[str, Policy] | None) -> Policy | dict[str, Policy] | None:
        if isinstance(value, dict):
            unknown = sorted(set(value) - set(KIND) - {"*"})
            if unknown:
                raise ValueError(f"unknown capabilities in privacy table: {unknown}")
        return value


DEFAULT_RESOLUTION: dict[str, float] = {
    "temperature": 0.5,
    "humidity": 5.0,
    "illuminance": 50.0,
    "power": 10.0,
    "energy": 0.1,
    "battery": 10.0,
}
DEFAULT_ALLOWED_TEXT: tuple[str, ...] = (
    "on", "off", "single", "double", "triple", "long", "hold", "release",
    "playing", "paused", "stopped", "idle",
)


class PrivacySettings(BaseModel):
    """The customer's privacy policy; device overrides live in ``devices``.

    A policy is resolved as: device+capability, device, ``capabilities[capability]``, then
    ``default``. ``coarse`` means at most one event per (device, capability) per
    ``window_s``, its timestamp floored to the window, numbers rounded to ``resolution``,
    text reduced to ``allowed_text`` or ``"activity"``.
    """

    model_config = SECTION
    default: Policy = "share"
    capabilities: dict[str, Policy] = Field(default_factory=dict)
    window_s: float = Field(60.0, gt=0, le=86_400)
    resolution: dict[str, float] = Field(default_factory=lambda: dict(DEFAULT_RESOLUTION))
    allowed_text: tuple[str, ...] = DEFAULT_ALLOWED_TEXT

    @field_validator("capabilities", "resolution")
    @classmethod
    def _known(cls, value: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(value) - set(KIND))
        if unknown:
            raise ValueError(f"unknown capabilities: {unknown}")
        return value

    @field_validator("resolution")
    @classmethod
    def _positive(cls, value: dict[str, float]) -> dict[str, float]:
        for cap, step in value.items():
            if not step > 0:
                raise ValueError(f"resolution of {cap} must be > 0, not {step}")
        return {**DEFAULT_RESOLUTION, **value}


class OutboxSettings(BaseModel):
    """The SQLite store-and-forward queue."""

    model_config = SECTION
    path: Path
    max_events: int = Field(SEVEN_DAYS_AT_5_PER_S, ge=1)
    overflow: Overflow = "drop_oldest"
    commit_interval_s: float = Field(0.05, gt=0, le=5)
    commit_max: int = Field(1000, ge=1, le=100_000)
    max_pending: int = Field(50_000, ge=1)  # readings waiting for a commit before the reader waits
    dead_letter_rows: int = Field(10_000, ge=1)  # the oldest dead letters go beyond this


class SigningSettings(BaseModel):
    """The edge's batch-signing key from ``genius hub provision-edge`` (``devices.signing``).

    In TOML: ``[uplink.signing]`` with ``key_id = "…"`` and ``key = "<64 hex>"``.
    """

    model_config = SECTION
    key_id: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    key: SecretStr

    @field_validator("key")
    @classmethod
    def _hex_key(cls, value: SecretStr) -> SecretStr:
        text = value.get_secret_value()
        if len(text) != 64 or any(c not in "0123456789abcdefABCDEF" for c in text):
            raise ValueError("signing key must be 64 hex characters")
        return value

    @property
    def key_bytes(self) -> bytes:
        return bytes.fromhex(self.key.get_secret_value())


class UplinkSettings(BaseModel):
    """Store-and-forward to the hub: batching, in-flight window, resend and reconnect."""

    model_config = SECTION
    # Sign every batch (HMAC-SHA256, devices.signing); a hub that holds this edge's key
    # refuses its unsigned batches.
    signing: SigningSettings | None = None
    batch_max_events: int = Field(500, ge=1, le=10_000)
    batch_max_delay_s: float = Field(0.2, ge=0, le=60)
    resend_after_s: float = Field(5.0, gt=0)
    resend_max_s: float = Field(60.0, gt=0)  # the resend timeout doubles up to this without progress
    gap_resend_interval_s: float = Field(1.0, ge=0)  # the same gap is resent at most this often
    max_inflight_events: int = Field(20_000, ge=1)
    max_inflight_batches: int = Field(8, ge=1, le=1000)  # far below paho's 65,535 unacked ids
    backoff_initial_s: float = Field(0.5, gt=0)
    backoff_max_s: float = Field(30.0, gt=0)
    status_interval_s: float = Field(10.0, gt=0)
    inventory_debounce_s: float = Field(1.0, ge=0)
    publish_timeout_s: float = Field(10.0, gt=0)
    shutdown_timeout_s: float = Field(5.0, gt=0)


class HomeSettings(BaseModel):
    """Anticipations as Home Assistant entities on the local broker, and feedback (``edge.home``)."""

    model_config = SECTION
    enabled: bool = True
    discovery_prefix: str = Field("homeassistant", pattern=r"^[A-Za-z0-9_/-]{1,64}$")
    # Local topics of the entities' state, attributes, availability and feedback command;
    # ``genius/{edge}`` when unset.
    topic_base: str | None = Field(None, pattern=r"^[A-Za-z0-9_/-]{1,128}$")
    feedback_queue: int = Field(1_000, ge=1)  # feedback waiting for the hub broker
    retry_initial_s: float = Field(0.5, gt=0)
    retry_max_s: float = Field(30.0, gt=0)
    availability_poll_s: float = Field(0.25, gt=0, le=10)
    shutdown_timeout_s: float = Field(3.0, gt=0)  # to say "offline" on a graceful stop


class LocalSettings(BaseModel):
    """The subscriber on the home's own broker."""

    model_config = SECTION
    max_queued_messages: int = Field(20_000, ge=1)
    backoff_initial_s: float = Field(0.5, gt=0)
    backoff_max_s: float = Field(30.0, gt=0)
    qos: int = Field(1, ge=0, le=1)  # QoS of the local subscriptions
    # A misbehaving product must not fill the outbox or stall the others: a local message
    # larger than this, or past its topic's rate (token bucket per topic: a device), is
    # dead-lettered before any adapter reads it. Honest devices send a few per second.
    max_payload_bytes: int = Field(1_048_576, ge=256)
    device_messages_per_s: float = Field(200.0, gt=0)
    device_burst: int = Field(2_000, ge=1)
    # PUBACK a device message only once its outcome is committed (edge.acks), so a crash
    # loses nothing the broker thinks was delivered. The broker sends at most its
    # max_inflight_messages (Mosquitto: 20) before it waits for PUBACKs: commit as soon as
    # commit_unacked wait (keep it below that window), and stop reading at max_unacked.
    manual_ack: bool = True
    commit_unacked: int = Field(10, ge=1)
    max_unacked: int = Field(2_000, ge=1)


class EdgeSettings(TomlSettings):
    """Everything one edge process needs. Load once with ``EdgeSettings.load`` and pass down."""

    model_config = settings_config("GENIUS_EDGE_")

    customer: Identifier
    edge: Identifier
    role: Role = "home"
    local_broker: BrokerSettings
    hub_broker: BrokerSettings
    adapters: tuple[str, ...] | None = None  # None: every registered adapter
    outbox: OutboxSettings
    uplink: UplinkSettings = Field(default_factory=UplinkSettings)
    local: LocalSettings = Field(default_factory=LocalSettings)
    home: HomeSettings = Field(default_factory=HomeSettings)
    privacy: PrivacySettings = Field(default_factory=PrivacySettings)
    devices: dict[str, DeviceSettings] = Field(default_factory=dict)
    dead_letter_window_s: float = Field(60.0, gt=0)

    @field_validator("adapters", mode="before")
    @classmethod
    def _comma_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(v.strip() for v in value.split(",") if v.strip())
        return value

    @property
    def client_id_base(self) -> str:
        """Stable per edge, so brokers keep its sessions across restarts."""
        return f"genius-edge-{self.customer}-{self.edge}"

    @classmethod
    def load(cls, config: Path | str | None = None, /, **values: Any) -> EdgeSettings:
        """Settings from ``values`` > env > TOML ``config`` (or ``$GENIUS_EDGE_CONFIG``) > defaults.

        ``values`` whose value is ``None`` are left out, so unset CLI flags do not mask env or
        TOML. Nested values merge (``outbox={"path": p}`` keeps ``[outbox] max_events``).
        Raises ``ConfigError`` for a missing or malformed file and for invalid settings.
        """
        path = config_path(config, "GENIUS_EDGE_CONFIG")
        if path is not None:
            _check_toml(path)
        given = {k: v for k, v in values.items() if v is not None}
        try:
            return cls.from_sources(path, **given)
        except ValidationError as exc:
            raise ConfigError(_describe(exc)) from exc
        except ValueError as exc:  # pydantic-settings' SettingsError for undecodable env values
            raise ConfigError(str(exc)) from exc


def _check_toml(path: Path) -> None:
    try:
        with path.open("rb") as fh:
            tomllib.load(fh)
    except FileNotFoundError as exc:
        raise ConfigError(f"config file {path} does not exist") from exc
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc


def _describe(exc: ValidationError) -> str:
    parts = []
    # Wrong values first: "Field required" for every missing key is the less telling news.
    errors = sorted(exc.errors(), key=lambda e: e["type"] == "missing")
    for err in errors[:5]:
        loc = ".".join(str(x) for x in err["loc"]) or "settings"
        parts.append(f"{loc}: {err['msg']}")
    more = exc.error_count() - 5
    return "invalid edge settings: " + "; ".join(parts) + (f" (+{more} more)" if more > 0 else "")
