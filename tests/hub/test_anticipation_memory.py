"""The anticipation service's memory is bounded over all customers, and bounding it loses nothing."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiomqtt
import numpy as np

from devices.topics import events_topic
from simulations.brokers import Mosquitto

from .anticipation_kit import batch, hub_settings, model_path, morning_events
from .helpers import running_hub

__all__ = ["model_path"]  # the fixture, imported for pytest


async def test_past_max_rows_total_the_least_recent_customers_give_up_memory_and_are_read_again(
    mosquitto: Mosquitto, tmp_path: Path, prefix: str, model_path: Path
) -> None:
    customers = [f"{prefix}-m{k}" for k in range(3)]
    settings = hub_settings(mosquitto.url, tmp_path / "hub.db", f"{prefix}-hub", model_path,
                            max_rows_total=1_000, debounce_s=3600.0, interval_s=3600.0)
    async with running_hub(settings) as hub:
        service = hub.anticipation
        assert service is not None
        async with aiomqtt.Client(mosquitto.host, mosquitto.port) as c:
            for customer in customers:  # 600 known events each: the third pushes past 1,000
                await c.publish(events_topic(customer, f"{customer}-home"),
                                batch(customer, f"{customer}-home", morning_events(1, n=600)), qos=1)
        async with asyncio.timeout(15):
            while hub.stats.events_stored < 1_800:
                await asyncio.sleep(0.05)
        assert service.shed >= 1
        held = {c: len(service._customers[c].events) for c in customers}  # noqa: SLF001
        assert sum(held.values()) <= 1_000, held
        assert held[customers[0]] == 0 and held[customers[2]] == 600  # least recently active first

        # The shed customer is read back from the store: the same window as never shedding.
        antic = await service.anticipate(customers[0])
        assert antic is not None and antic.customer_id == customers[0]
        state = service._customers[customers[0]]  # noqa: SLF001
        assert len(state.events) == 600
        assert np.array_equal(state.events.column("seq"), np.arange(1, 601))
