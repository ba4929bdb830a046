"""Key rotation over a real broker: batches signed with the old key and still in flight
(queued in the hub's persistent session while the hub is down) are stored after the
rotation; once the grace period is over the old key is refused."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

from security_kit import SecureBroker, batch_doc, encode, start_secure_broker

from devices.signing import sign_document
from devices.topics import events_topic
from hub.security import rotate_key
from hub.service import Hub
from hub.settings import HubSettings
from simulations.brokers import Mosquitto


def _hub(secure: SecureBroker) -> Hub:
    return Hub(HubSettings.load(
        broker={"url": secure.broker.url, "username": secure.hub[0], "password": secure.hub[1],
                "client_id": secure.hub[0]},
        store={"path": secure.db},
        security={"key_reload_s": 0.0},
    ))


async def _run_until(hub: Hub, predicate: Callable[[], object], *, timeout: float = 15.0) -> None:
    async with hub, asyncio.TaskGroup() as tg:
        task = tg.create_task(hub.run())
        try:
            async with asyncio.timeout(timeout):
                await hub.ready.wait()
                while not await predicate():  # type: ignore[misc]
                    await asyncio.sleep(0.05)
        finally:
            task.cancel()


async def test_batches_in_flight_across_a_rotation_are_not_lost(
    tmp_path: Path, mosquitto_factory: Callable[..., Mosquitto]
) -> None:
    secure = start_secure_broker(tmp_path, mosquitto_factory, [("alice", "a1")])
    creds = secure.edges["a1"]
    topic = events_topic("alice", "a1")

    hub = _hub(secure)
    await _run_until(hub, lambda: _true())  # creates the hub's persistent session, then stops
    async with secure.edge_client("a1") as edge:
        # Hub down: these wait in its session, signed with the key about to be replaced.
        for first in (1, 11, 21):
            doc = batch_doc("alice", "a1", first, 10, sent_at=time.time())
            await edge.publish(topic, encode(sign_document(doc, key_id=creds.key_id, key=creds.key)), qos=1)
        new_id, new_key = rotate_key(secure.db, edge_id="a1", grace_s=3.0)
        doc = batch_doc("alice", "a1", 31, 10, sent_at=time.time())
        await edge.publish(topic, encode(sign_document(doc, key_id=new_id, key=new_key)), qos=1)

    hub = _hub(secure)

    async def stored_40() -> bool:
        return [e.events for e in await hub.store.edges()] == [40]

    await _run_until(hub, stored_40)
    assert hub.dead_letters.counts == {}

    await asyncio.sleep(3.1)  # the grace period is over: the old key no longer verifies
    hub = _hub(secure)

    async def refused() -> bool:
        return hub.dead_letters.counts == {"unknown_key": 1}

    async with secure.edge_client("a1") as edge:
        doc = batch_doc("alice", "a1", 41, 10, sent_at=time.time())
        await edge.publish(topic, encode(sign_document(doc, key_id=creds.key_id, key=creds.key)), qos=1)
    await _run_until(hub, refused)


async def _true() -> bool:
    return True
