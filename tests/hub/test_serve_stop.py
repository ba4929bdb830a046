"""``serve`` stops the hub on SIGTERM even when one cancellation is swallowed (CPython gh-86296)."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest

from hub import service
from hub.settings import HubSettings


async def test_sigterm_stops_a_hub_whose_first_cancellation_was_swallowed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    swallowed = []

    async def run(self: service.Hub) -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            swallowed.append(True)  # what aiomqtt's wait_for does on 3.11 when a reply races it
        await asyncio.sleep(3600)  # carries on as if nothing happened

    monkeypatch.setattr(service.Hub, "run", run)
    monkeypatch.setattr(service, "RECANCEL_S", 0.2)
    settings = HubSettings.load(broker={"url": "mqtt://127.0.0.1:1"}, store={"path": tmp_path / "hub.db"})

    async def serve() -> int:  # its own task: serve cancels the task it runs in
        return await service.serve(settings)

    hub = asyncio.create_task(serve())
    await asyncio.sleep(0.1)
    os.kill(os.getpid(), signal.SIGTERM)
    done, _ = await asyncio.wait({hub}, timeout=10)  # wait, unlike await, does not cancel it
    if not done:
        hub.cancel()
        with pytest.raises(asyncio.CancelledError):
            await hub
    assert done and hub.result() == 0 and swallowed == [True]
