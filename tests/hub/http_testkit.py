"""Operator API test kit: a real hub (real Mosquitto, real SQLite) serving HTTP on a free port."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from hub.http.tokens import create_token
from hub.service import Hub
from hub.settings import HubSettings
from simulations.brokers import Mosquitto

from .helpers import forget_session, running_hub


@dataclass
class Api:
    hub: Hub
    url: str
    operator: str  # tokens
    viewer: str

    def client(self, token: str | None = None) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.AsyncClient(base_url=self.url, headers=headers, timeout=10)


def http_settings(broker: Mosquitto, db: Path, client_id: str, **http: Any) -> HubSettings:
    return HubSettings.load(
        broker={"url": broker.url, "client_id": client_id}, store={"path": db},
        ingest={"context_persist_s": 0.0},
        http={"listen": "127.0.0.1:0", "stream_interval_s": 0.25, **http},
    )


@contextlib.asynccontextmanager
async def running_api(broker: Mosquitto, db: Path, client_id: str, **http: Any) -> AsyncIterator[Api]:
    async with running_hub(http_settings(broker, db, client_id, **http)) as hub:
        assert hub.http is not None
        import asyncio

        async with asyncio.timeout(10):
            await hub.http.ready.wait()
        operator, _ = await create_token(hub.store, role="operator", name="alice")
        viewer, _ = await create_token(hub.store, role="viewer", name="grafana")
        yield Api(hub, hub.http.url, operator, viewer)
    await forget_session(broker.host, broker.port, client_id)
