"""Fixtures for the edge tests: settings factories over real brokers and a temp outbox."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from edge import EdgeSettings
from simulations.brokers import Mosquitto

# Timings shrunk so resends, status refreshes and reconnects happen within a test's seconds.
FAST_UPLINK = {
    "resend_after_s": 1.0,
    "status_interval_s": 1.0,
    "inventory_debounce_s": 0.1,
    "backoff_initial_s": 0.1,
    "backoff_max_s": 1.0,
    "shutdown_timeout_s": 3.0,
}
FAST_LOCAL = {"backoff_initial_s": 0.1, "backoff_max_s": 1.0}


@pytest.fixture
def hub_broker(mosquitto_factory: Callable[..., Mosquitto]) -> Mosquitto:
    """A broker of its own for the hub side: hub tests subscribe to ``genius/v1/+/+/…`` on the
    shared broker, so edge tests keep their hub traffic (and retained documents) off it."""
    return mosquitto_factory()


@pytest.fixture
def edge_settings(
    mosquitto: Mosquitto, hub_broker: Mosquitto, prefix: str, tmp_path: Path
) -> Callable[..., EdgeSettings]:
    """``edge_settings(**overrides)``: customer ``prefix``, edge ``e1``; local devices on the
    shared broker, the hub side on ``hub_broker``."""

    def make(*, hub: Mosquitto | None = None, uplink: dict[str, Any] | None = None, **over: Any) -> EdgeSettings:
        outbox = {"path": tmp_path / "outbox.db", **over.pop("outbox", {})}
        return EdgeSettings.load(
            None,
            customer=prefix,
            edge="e1",
            local_broker=mosquitto.url,
            hub_broker=(hub or hub_broker).url,
            outbox=outbox,
            uplink={**FAST_UPLINK, **(uplink or {})},
            local=FAST_LOCAL,
            **over,
        )

    return make
