"""Hub test helpers: a pipeline over a real store, and a hub running in the test's TaskGroup."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiomqtt

from devices.errors import ValidationFailed
from devices.wire import decode_batch
from hub.context import ContextFuser
from hub.deadletters import DeadLetters
from hub.pipeline import Incoming, Pipeline
from hub.service import Hub
from hub.settings import HubSettings
from hub.store import Store
from hub.validation import decode_wire_batch, event_dict


async def open_pipeline(store: Store, *, now: float = 1_800_000_000.0) -> Pipeline:
    catalog = await store.load_catalog()
    progress = await store.load_progress()
    context = ContextFuser(clock=lambda: now)
    context.restore(await store.load_context())
    return Pipeline(catalog, progress, context, DeadLetters(clock=lambda: now), clock=lambda: now,
                    context_persist_s=0.0)


async def feed(store: Store, pipeline: Pipeline, *messages: tuple[str, bytes]) -> None:
    """Process messages as one group and commit it."""
    for topic, payload in messages:
        pipeline.process(Incoming(topic, payload))
    await store.write(pipeline.seal().group)


@contextlib.asynccontextmanager
async def running_hub(settings: HubSettings) -> AsyncIterator[Hub]:
    """A hub running in the background for the body of the ``async with``; stopped after."""
    hub = Hub(settings)
    async with hub:
        async with asyncio.TaskGroup() as tg:
            task = tg.create_task(hub.run())
            try:
                async with asyncio.timeout(10):
                    await hub.ready.wait()
                yield hub
            finally:
                task.cancel()


async def forget_session(host: str, port: int, client_id: str) -> None:
    """Drop a persistent session from the broker (connect once with clean_session=True)."""
    with contextlib.suppress(aiomqtt.MqttError):
        async with aiomqtt.Client(host, port, identifier=client_id, clean_session=True, timeout=5):
            pass


def settings_for(url: str, db: Path, client_id: str, **ingest: object) -> HubSettings:
    return HubSettings.load(broker={"url": url, "client_id": client_id}, store={"path": db}, ingest=ingest)


def verdicts(payload: bytes, customer_id: str, edge_id: str) -> tuple[Any, Any]:
    """What the wire models and the hub's fast validator make of one batch: its events as
    dicts, or the dead-letter reason; equal when they agree (values and their types)."""
    try:
        expected: Any = [_typed(e.model_dump())
                         for e in decode_batch(payload, customer_id=customer_id, edge_id=edge_id).events]
    except ValidationFailed as exc:
        expected = exc.reason
    try:
        got: Any = [_typed(event_dict(e))
                    for e in decode_wire_batch(payload, customer_id=customer_id, edge_id=edge_id).events]
    except ValidationFailed as exc:
        got = exc.reason
    return expected, got


def _typed(event: dict[str, Any]) -> dict[str, Any]:
    """Values with their types (``1.0 == 1 == True`` must not hide a disagreement)."""
    return {k: (type(v).__name__, v) for k, v in event.items()}
