"""Anticipation in the real hub over a real broker: publish, debounce, feedback, sacrifice, schema."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import aiomqtt
import pytest

from devices.errors import SchemaMismatch
from devices.topics import anticipations_topic, events_topic, feedback_topic
from devices.wire import Feedback
from hub.service import Hub
from models.schema import FeatureSchema
from simulations.brokers import Mosquitto

from .anticipation_kit import batch, hub_settings, model_path, morning_events, next_anticipation
from .helpers import running_hub

__all__ = ["model_path"]  # the fixture, imported for pytest

_SIGNALS = ("kitchen", "coffee", "kettle", "bedroom", "hallway", "fridge", "morning", "afternoon", "evening",
            "night", "weekday", "weekend", "home", "nothing else")


async def test_committed_events_give_a_retained_anticipation_with_three_explained_jobs(
    mosquitto: Mosquitto, tmp_path: Path, prefix: str, model_path: Path
) -> None:
    customer, edge = f"{prefix}-ann", f"{prefix}-ann-home"
    settings = hub_settings(mosquitto.url, tmp_path / "hub.db", f"{prefix}-hub", model_path)
    async with running_hub(settings) as hub:
        assert hub.anticipation is not None
        async with aiomqtt.Client(mosquitto.host, mosquitto.port) as c:
            await c.publish(events_topic(customer, edge), batch(customer, edge, morning_events(1)), qos=1)
            await c.subscribe(anticipations_topic(customer), qos=1)
            live = await next_anticipation(c, anticipations_topic(customer))
        # retained: a client that subscribes later still gets it
        async with aiomqtt.Client(mosquitto.host, mosquitto.port) as late:
            await late.subscribe(anticipations_topic(customer), qos=1)
            retained = await next_anticipation(late, anticipations_topic(customer), timeout=5)
        assert retained.id == live.id
        assert live.customer_id == customer and live.model == hub.anticipation.model.model_id
        assert live.market in ("home:weekday", "home:weekend")
        assert len(live.jobs) == 3 and len({j.job for j in live.jobs}) == 3
        assert all(0.0 <= j.probability <= 1.0 and j.expected_in_s >= 0.0 for j in live.jobs)
        assert [j.probability for j in live.jobs] == sorted((j.probability for j in live.jobs), reverse=True)
        assert live.jobs[0].because, "the top job must say why"
        words = " ".join(s for j in live.jobs for s in j.because)
        assert any(w in words for w in _SIGNALS), words
        stored = await hub.store.anticipations_for(customer, limit=5)
        assert [a.id for a in stored] == [live.id] and stored[0].jobs == live.jobs
        assert (await hub.store.current_markets())[customer] == live.market


async def test_a_burst_of_batches_gives_few_anticipations(
    mosquitto: Mosquitto, tmp_path: Path, prefix: str, model_path: Path
) -> None:
    customer, edge = f"{prefix}-bo", f"{prefix}-bo-home"
    settings = hub_settings(mosquitto.url, tmp_path / "hub.db", f"{prefix}-hub", model_path, debounce_s=0.5)
    async with running_hub(settings) as hub:
        assert hub.anticipation is not None
        async with aiomqtt.Client(mosquitto.host, mosquitto.port) as c:
            for k in range(20):  # 20 batches inside ~1 s, each one commit
                await c.publish(events_topic(customer, edge), batch(customer, edge, morning_events(1 + 12 * k)), qos=1)
                await asyncio.sleep(0.05)
            async with asyncio.timeout(15):
                while hub.stats.events_stored < 240 or hub.anticipation.figures.published < 1:
                    await asyncio.sleep(0.05)
            await asyncio.sleep(1.5)  # anything still debounced has run by now
        published = hub.anticipation.figures.published
        assert 1 <= published <= 3, published
        assert len(await hub.store.anticipations_for(customer, limit=50)) == published


async def test_feedback_raises_that_job_in_that_market_and_survives_a_restart(
    mosquitto: Mosquitto, tmp_path: Path, prefix: str, model_path: Path
) -> None:
    customer, edge = f"{prefix}-fb", f"{prefix}-fb-home"
    settings = hub_settings(mosquitto.url, tmp_path / "hub.db", f"{prefix}-hub", model_path)
    topic = anticipations_topic(customer)
    async with running_hub(settings) as hub:
        assert hub.anticipation is not None
        async with aiomqtt.Client(mosquitto.host, mosquitto.port) as c:
            await c.subscribe(topic, qos=1)
            await c.publish(events_topic(customer, edge), batch(customer, edge, morning_events(1)), qos=1)
            first = await next_anticipation(c, topic)
            third = first.jobs[2]
            for _ in range(3):
                fb = Feedback(anticipation_id=first.id, verdict="accepted", ts=first.ts, job=third.job)
                await c.publish(feedback_topic(customer), fb.model_dump_json().encode(), qos=1)
            async with asyncio.timeout(10):
                while not (layer := await hub.anticipation.layers.get(customer, first.market)).to_dict()["buckets"]:
                    await asyncio.sleep(0.05)
            hub.anticipation.request(customer)
            second = await next_anticipation(c, topic, not_ids=(first.id,))
    after = {j.job: j for j in second.jobs}
    assert second.market == first.market
    assert third.job in after and after[third.job].probability > third.probability + 0.05
    assert any("accepted" in s for s in after[third.job].because), after[third.job].because

    async with running_hub(settings) as hub:  # same database: the layer was persisted
        assert hub.anticipation is not None
        async with aiomqtt.Client(mosquitto.host, mosquitto.port) as c:
            await c.subscribe(topic, qos=1)
            await next_anticipation(c, topic)  # the retained one from before the restart
            hub.anticipation.request(customer)
            restarted = await next_anticipation(c, topic, not_ids=(second.id,))
    again = {j.job: j for j in restarted.jobs}
    assert third.job in again and again[third.job].probability > third.probability + 0.05


async def test_a_recognised_job_beginning_records_sacrifice_against_the_last_anticipation(
    mosquitto: Mosquitto, tmp_path: Path, prefix: str, model_path: Path
) -> None:
    customer, edge = f"{prefix}-sa", f"{prefix}-sa-home"
    # The head never switches on its own here (the test drives the beginning of a job).
    settings = hub_settings(mosquitto.url, tmp_path / "hub.db", f"{prefix}-hub", model_path,
                            confirm_runs=1000, switch_p=1.0)
    async with running_hub(settings) as hub:
        service = hub.anticipation
        assert service is not None
        async with aiomqtt.Client(mosquitto.host, mosquitto.port) as c:
            await c.subscribe(anticipations_topic(customer), qos=1)
            await c.publish(events_topic(customer, edge), batch(customer, edge, morning_events(1)), qos=1)
            antic = await next_anticipation(c, anticipations_topic(customer))
        state = service._customers[customer]  # noqa: SLF001 - the seam the recognition head drives
        assert state.last is not None and state.last.id == antic.id
        top = antic.jobs[0]
        job = service.model.jobs.index(top.job)
        await service.job_began(customer, state, job, market=antic.market, t=antic.ts + 60, probability=0.9)
        series = await hub.store.sacrifice_series(customer)
        assert len(series) == 1 and series[0]["job"] == top.job and series[0]["market"] == antic.market
        assert series[0]["sacrifice"] == pytest.approx(1.0 - top.probability, abs=1e-6)
        assert service.metrics().sacrifice[antic.market] == pytest.approx(1.0 - top.probability, abs=1e-6)
        layer = await service.layers.get(customer, antic.market)
        assert layer.observations == 1
        async with hub.store.db.execute("SELECT job, market FROM recognised_jobs WHERE customer_id = ?",
                                        (customer,)) as cur:
            assert await cur.fetchall() == [(top.job, antic.market)]


async def test_recognition_switches_only_with_hysteresis(
    mosquitto: Mosquitto, tmp_path: Path, prefix: str, model_path: Path
) -> None:
    import numpy as np

    from hub.anticipation import _Customer, _Run

    settings = hub_settings(mosquitto.url, tmp_path / "hub.db", f"{prefix}-hub", model_path,
                            confirm_runs=2, switch_p=0.9)
    async with Hub(settings) as hub:
        service = hub.anticipation
        assert service is not None
        n = len(service.model.jobs)
        began: list[int] = []

        async def record(customer_id: str, state: _Customer, job: int, **_: object) -> None:
            began.append(job)

        service.job_began = record  # type: ignore[method-assign]
        state = _Customer()

        def run(job: int, p: float) -> _Run:
            rec = np.full(n + 1, (1.0 - p) / n, np.float32)
            rec[job] = p
            return _Run(0.0, "home:weekday", rec, np.zeros(1, np.float32), np.zeros(n), np.zeros(n, np.float32))

        for job, p in [(1, 0.5), (2, 0.5), (1, 0.5), (1, 0.5), (3, 0.95), (n, 0.8), (n, 0.8), (1, 0.5)]:
            await service._recognise("c", state, run(job, p))  # noqa: SLF001
        # 1 flickers with 2, then holds for two runs; 3 is certain at once; idle ends it; one run of 1 is not enough
        assert began == [1, 3]
        assert state.job == -1 and state.candidate == 1


def _mismatched_copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    meta = json.loads((dst / "meta.json").read_text())
    meta["schema"]["code_hash"] = "0" * 16
    meta["schema_hash"] = FeatureSchema.model_validate(meta["schema"]).hash
    (dst / "meta.json").write_text(json.dumps(meta))
    return dst


async def test_an_artifact_for_other_feature_code_stops_the_hub_at_start(
    mosquitto: Mosquitto, tmp_path: Path, prefix: str, model_path: Path
) -> None:
    bad = _mismatched_copy(model_path, tmp_path / "stale-model")
    settings = hub_settings(mosquitto.url, tmp_path / "hub.db", f"{prefix}-hub", bad)
    with pytest.raises(SchemaMismatch, match="feature code changed"):
        async with Hub(settings):
            pass


async def test_anticipation_can_be_disabled(mosquitto: Mosquitto, tmp_path: Path, prefix: str,
                                            model_path: Path) -> None:
    settings = hub_settings(mosquitto.url, tmp_path / "hub.db", f"{prefix}-hub", model_path, enabled=False)
    async with Hub(settings) as hub:
        assert hub.anticipation is None and hub.on_committed == []


async def test_the_timer_anticipates_a_quiet_customer_again_and_bad_feedback_is_counted(
    mosquitto: Mosquitto, tmp_path: Path, prefix: str, model_path: Path
) -> None:
    customer, edge = f"{prefix}-qt", f"{prefix}-qt-home"
    settings = hub_settings(mosquitto.url, tmp_path / "hub.db", f"{prefix}-hub", model_path, interval_s=0.5)
    topic = anticipations_topic(customer)
    async with running_hub(settings) as hub:
        service = hub.anticipation
        assert service is not None
        async with aiomqtt.Client(mosquitto.host, mosquitto.port) as c:
            await c.subscribe(topic, qos=1)
            await c.publish(events_topic(customer, edge), batch(customer, edge, morning_events(1)), qos=1)
            first = await next_anticipation(c, topic)
            second = await next_anticipation(c, topic, not_ids=(first.id,))  # no new events: the timer
            assert second.ts > first.ts
            for fb in (Feedback(anticipation_id=first.id, verdict="done", ts=first.ts, job="fly_to_the_moon"),
                       Feedback(anticipation_id="no-such-anticipation", verdict="accepted", ts=first.ts)):
                await c.publish(feedback_topic(customer), fb.model_dump_json().encode(), qos=1)
            async with asyncio.timeout(10):
                while sum(service.skipped[k] for k in ("feedback_unknown_job", "feedback_unknown_anticipation")) < 2:
                    await asyncio.sleep(0.05)
        assert service.skipped["feedback_unknown_job"] == 1 and service.skipped["feedback_unknown_anticipation"] == 1
        assert (await service.layers.get(customer, first.market)).to_dict()["buckets"] == {}


async def test_erasing_a_customer_removes_anticipation_rows_and_memory(
    mosquitto: Mosquitto, tmp_path: Path, prefix: str, model_path: Path
) -> None:
    from hub.markets import declare_market
    from hub.rights import forget_customer

    customer, edge = f"{prefix}-er", f"{prefix}-er-home"
    settings = hub_settings(mosquitto.url, tmp_path / "hub.db", f"{prefix}-hub", model_path)
    async with running_hub(settings) as hub:
        service = hub.anticipation
        assert service is not None
        async with aiomqtt.Client(mosquitto.host, mosquitto.port) as c:
            await c.subscribe(anticipations_topic(customer), qos=1)
            await c.publish(events_topic(customer, edge), batch(customer, edge, morning_events(1)), qos=1)
            antic = await next_anticipation(c, anticipations_topic(customer))
            await declare_market(hub.store, customer, "hosting")
            state = service._customers[customer]  # noqa: SLF001
            await service.job_began(customer, state, 0, market=antic.market, t=antic.ts + 1, probability=1.0)
            report = await forget_customer(hub.store, customer)
            hub.drop_customer(customer)
            await c.publish(anticipations_topic(customer), b"", qos=1, retain=True)
        for table in ("anticipations", "recognised_jobs", "sacrifice", "personal_layers", "declared_markets"):
            assert report.rows.get(table, 0) >= 1, (table, report.rows)
            async with hub.store.db.execute(f"SELECT COUNT(*) FROM {table} WHERE customer_id = ?", (customer,)) as cur:
                assert (await cur.fetchone()) == (0,)
        assert customer not in service._customers and customer not in service.markets  # noqa: SLF001


def test_the_personal_note_credits_the_customer_only_for_what_they_taught() -> None:
    from hub.anticipation import _personal_note
    from models.personalise import Context, PersonalLayer

    jobs = ("wake_up", "make_tea", "shower")
    layer = PersonalLayer(jobs)
    ctx = Context.at(7 * 3600.0, last_job=0, job_since_s=600.0)
    for _ in range(3):
        layer.feedback(ctx, 1, "accepted")
        layer.feedback(ctx, 2, "dismissed")
    theta = layer.multiplier(ctx)
    up = _personal_note(layer, ctx, 1, 0.4, 0.02, jobs, theta=float(theta[1]), rising=1)
    assert up is not None and "3 times around 07:00 after wake up" in up and "+40 pts" in up
    down = _personal_note(layer, ctx, 2, -0.2, 0.02, jobs, theta=float(theta[2]), rising=1)
    assert down is not None and "dismissed" in down
    crowded = _personal_note(layer, ctx, 0, -0.1, 0.02, jobs, theta=float(theta[0]), rising=1)
    assert crowded is not None and "make tea" in crowded and "dismissed" not in crowded
    assert _personal_note(layer, ctx, 0, 0.01, 0.02, jobs, theta=1.0, rising=1) is None
