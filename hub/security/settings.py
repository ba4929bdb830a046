"""The hub's ``security`` and ``limits`` settings sections (nested in ``HubSettings``).

Defaults keep a hub without a key registry working exactly as before (nothing to verify,
limits far above honest traffic), and turn verification on for every edge that has been
provisioned a signing key (``genius hub provision-edge``).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["LimitsSettings", "SecuritySettings", "SigningMode"]

_SECTION = ConfigDict(extra="forbid", frozen=True)

SigningMode = Literal["off", "registered", "required"]


class SecuritySettings(BaseModel):
    """Batch signatures, replay protection and the key registry.

    ``signing``: ``off`` checks nothing; ``registered`` (default) requires a valid signature
    from every edge that has a key in the registry and lets edges without one through
    unsigned; ``required`` also refuses edges that have no key.
    """

    model_config = _SECTION
    signing: SigningMode = "registered"
    # A signature seen again within this window is a replay. Must cover max_skew_s on both
    # sides: a batch older than the skew is refused by its sent_at anyway.
    replay_window_s: float = Field(900.0, gt=0)
    # sent_at of a signed batch may differ from the hub's clock by at most this much.
    max_skew_s: float = Field(300.0, gt=0)
    # Signatures remembered at most (oldest forgotten first; ~150 bytes each).
    replay_cache_entries: int = Field(1_000_000, ge=1)
    # The hub re-reads the key registry at most this often (rotations, new edges).
    key_reload_s: float = Field(5.0, ge=0)


class LimitsSettings(BaseModel):
    """Hostile-input limits; going past one is a dead letter with its reason, never a crash.

    Defaults sit far above honest traffic (a home sends about one event a second, a busy
    venue tens) and within the wire contract's own limits, so they stop floods and
    oversized documents without shaping anyone.
    """

    model_config = _SECTION
    # Largest message accepted on any hub topic (the broker's message_size_limit should match).
    max_payload_bytes: int = Field(1_048_576, ge=1_024)
    # Events in one batch (the contract allows 10,000; edges send 500 by default).
    max_events_per_batch: int = Field(10_000, ge=1, le=10_000)
    # Device and room names, and text values (the contract allows 128 and 256).
    max_name_chars: int = Field(128, ge=1, le=128)
    max_text_chars: int = Field(256, ge=1, le=256)
    # Event timestamps at most this far ahead of the hub's clock (a year by default: device
    # clocks are often wrong by months, fixtures use fixed future instants; set it to a day
    # or so in production) …
    max_future_s: float = Field(365 * 86_400.0, gt=0)
    # … and at most this far behind it (dataset replays carry timestamps from years ago).
    max_past_s: float = Field(20 * 365 * 86_400.0, gt=0)
    # Token bucket per edge: sustained events per second and burst size. A refused batch is
    # not acknowledged, so its edge sends it again later: the limit delays, it never loses.
    events_per_s: float = Field(2_000.0, gt=0)
    events_burst: int = Field(100_000, ge=1)
