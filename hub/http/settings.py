"""The hub's ``http`` settings section: the operator API, dashboard and alarm thresholds.

The API is off unless ``listen`` is set (``genius hub run --http 127.0.0.1:8080``, or
``GENIUS_HUB_HTTP__LISTEN``). Alarm thresholds live here too; ``genius hub status`` uses the
defaults.
"""

from __future__ import annotations

from pydantic import BaseModel, Field, field_validator

from devices.settings_toml import SECTION

__all__ = ["AlarmSettings", "HttpSettings", "parse_listen"]


def parse_listen(value: str) -> tuple[str, int]:
    """``"HOST:PORT"`` → ``(host, port)``; ``ValueError`` unless the port is 0..65535."""
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"{value!r} must look like HOST:PORT (e.g. 127.0.0.1:8080)")
    return host.strip("[]"), int(port)


class AlarmSettings(BaseModel):
    """When something in the fleet deserves an operator's attention (see ``hub.http.alarms``)."""

    model_config = SECTION
    # An edge not online and not heard from for this long.
    offline_after_s: float = Field(300.0, gt=0)
    # A gap (missing seqs) is an alarm once it has stayed open this long (edges resend).
    gap_grace_s: float = Field(30.0, ge=0)
    # At least this many dead letters within the window.
    dead_letter_burst: int = Field(20, ge=1)
    dead_letter_window_s: float = Field(60.0, gt=0)
    # Ingest lag: an edge reports at least this many events waiting in its outbox …
    backlog_events: int = Field(5_000, ge=1)
    # … or the hub holds queued messages and has not committed for this long.
    stall_s: float = Field(30.0, gt=0)


class HttpSettings(BaseModel):
    """Operator HTTP API and dashboard, served in the hub's own process and event loop."""

    model_config = SECTION
    listen: str | None = None  # "HOST:PORT"; None: no HTTP server
    # Live updates (dashboard SSE) at most this often; the fleet view is re-read as often.
    stream_interval_s: float = Field(1.0, ge=0.25)
    # Throughput history kept for the chart (samples, one per stream interval).
    history_samples: int = Field(600, ge=10, le=100_000)
    # How long shutdown lets open requests and streams finish.
    shutdown_grace_s: float = Field(2.0, gt=0)
    # Most rows one API call returns (events, dead letters, anticipations).
    max_rows: int = Field(1_000, ge=1)
    alarms: AlarmSettings = AlarmSettings()

    @field_validator("listen")
    @classmethod
    def _check_listen(cls, value: str | None) -> str | None:
        if value is not None:
            parse_listen(value)
        return value
