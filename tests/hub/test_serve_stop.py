"""The hub stops, on SIGTERM or when one of its tasks fails, even when a cancellation is swallowed
(CPython gh-86296)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
from pathlib import Path

import pytest

from devices.errors import ConfigError
from hub import ingest, service
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


async def test_a_failed_hub_task_stops_a_sibling_whose_cancellation_was_swallowed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A busy --http port fails the hub while ingest swallows the group's cancellation (seen
    in CI: ``genius hub run`` then hung instead of exiting 2 with the error)."""
    swallowed = []

    async def run(self: ingest.Ingest) -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            swallowed.append(True)
        await asyncio.sleep(3600)

    monkeypatch.setattr(ingest.Ingest, "run", run)
    monkeypatch.setattr(service, "RECANCEL_S", 0.2)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        settings = HubSettings.load(
            broker={"url": "mqtt://127.0.0.1:1"}, store={"path": tmp_path / "hub.db"},
            anticipation={"enabled": False}, http={"listen": f"127.0.0.1:{busy.getsockname()[1]}"},
        )
        hub = asyncio.create_task(service.Hub(settings).run())
        done, _ = await asyncio.wait({hub}, timeout=10)  # wait, unlike a timeout, does not cancel it
    if not done:  # the bug: still running; a task cancel now ends the swallowing sleep too
        hub.cancel()
        with contextlib.suppress(BaseException):
            await hub
    assert done, "the hub kept running after its http task failed"
    failed = hub.exception()
    assert isinstance(failed, BaseExceptionGroup) and failed.subgroup(ConfigError) is not None
    assert "cannot listen" in str(failed.subgroup(ConfigError).exceptions[0]) and swallowed == [True]
