"""Feedback is applied on arrival: the commit that stores it wakes the feedback loop (no poll wait)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from devices.topics import feedback_topic
from devices.wire import Feedback
from simulations.brokers import Mosquitto

from .anticipation_kit import first_anticipation, model_path

__all__ = ["model_path"]

HOUR = 3600.0  # the slow poll: far longer than any wait below, so only a commit can wake the loop


async def test_feedback_alone_teaches_the_layer_at_its_commit_not_the_next_poll(
    mosquitto: Mosquitto, tmp_path: Path, prefix: str, model_path: Path
) -> None:
    customer, edge = f"{prefix}-fa", f"{prefix}-fa-home"
    async with first_anticipation(mosquitto, tmp_path / "hub.db", f"{prefix}-hub", model_path, customer, edge,
                                  feedback_poll_s=HOUR) as (hub, c, antic):
        service = hub.anticipation
        assert service is not None
        assert not (await service.layers.get(customer, antic.market)).to_dict()["buckets"]
        fb = Feedback(anticipation_id=antic.id, verdict="accepted", ts=antic.ts, job=antic.jobs[1].job)
        # Feedback alone: the commit that stores it must call the hooks and wake the reader.
        await c.publish(feedback_topic(customer), fb.model_dump_json().encode(), qos=1)
        async with asyncio.timeout(15):
            while not (buckets := (await service.layers.get(customer, antic.market)).to_dict()["buckets"]):
                await asyncio.sleep(0.02)
        assert any(antic.jobs[1].job in jobs for jobs in buckets.values()), buckets


async def test_apply_feedback_drains_more_than_one_page_and_counts_each_row_once(
    mosquitto: Mosquitto, tmp_path: Path, prefix: str, model_path: Path
) -> None:
    from hub import anticipation

    customer, edge = f"{prefix}-fp", f"{prefix}-fp-home"
    async with first_anticipation(mosquitto, tmp_path / "hub.db", f"{prefix}-hub", model_path, customer, edge,
                                  feedback_poll_s=HOUR) as (hub, _, antic):
        service = hub.anticipation
        assert service is not None
        rows = anticipation._FEEDBACK_PAGE + 7  # noqa: SLF001 - more than one page
        async with hub.store.transaction() as db:
            async with db.execute("SELECT customer_key FROM customers WHERE customer_id = ?", (customer,)) as cur:
                (key,) = await cur.fetchone()  # type: ignore[misc]
            await db.executemany(
                "INSERT INTO feedback (customer_key, anticipation_id, verdict, job, ts, received) VALUES (?,?,?,?,?,?)",
                [(key, antic.id, "dismissed", antic.jobs[0].job, antic.ts, antic.ts)] * rows,
            )
        assert await service.apply_feedback() == rows
        assert await service.apply_feedback() == 0  # the cursor moved past every row
