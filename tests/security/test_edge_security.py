"""Edge side: batches signed with the provisioned key, and local limits per device."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
from collections.abc import Callable
from pathlib import Path

import aiomqtt
import pytest
from security_kit import start_secure_broker

from devices import DefinitionsAdapter, DeviceDefinition, Topic, power

from devices.errors import ConfigError
from devices.signing import verify_payload
from devices.wire import decode_batch
from edge.batch import encode_batch
from edge.deadletters import DeadLetters
from edge.local import DeviceRateLimiter, LocalSubscriber
from edge import EdgeAgent
from edge.settings import BrokerSettings, EdgeSettings, LocalSettings, SigningSettings, UplinkSettings
from hub.service import Hub
from hub.settings import HubSettings
from simulations.brokers import Mosquitto


class Tick:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _subscriber(clock: Callable[[], float], **local: object) -> tuple[LocalSubscriber, DeadLetters]:
    dead = DeadLetters()
    sub = LocalSubscriber(BrokerSettings(url="mqtt://127.0.0.1:1"), None,  # type: ignore[arg-type]
                          client_id="x", settings=LocalSettings(**local), dead_letters=dead,  # type: ignore[arg-type]
                          monotonic=clock)
    return sub, dead


def test_an_oversized_local_message_is_dead_lettered_before_any_adapter_reads_it() -> None:
    sub, dead = _subscriber(Tick(), max_payload_bytes=1024)
    assert sub.admit("home/tv/state", b"x" * 1024)
    assert not sub.admit("home/tv/state", b"x" * 1025)
    assert dead.by_reason == {("local", "payload_too_large"): 1}


def test_a_flooding_device_is_throttled_while_other_devices_pass() -> None:
    tick = Tick()
    sub, dead = _subscriber(tick, device_messages_per_s=10.0, device_burst=20)
    flood = [sub.admit("home/broken/state", b"{}") for _ in range(100)]
    assert flood.count(True) == 20  # the burst, then nothing until tokens come back
    assert all(sub.admit(f"home/sensor{i}/state", b"{}") for i in range(50))  # others unaffected
    tick.now += 1.0
    assert [sub.admit("home/broken/state", b"{}") for _ in range(12)].count(True) == 10
    assert dead.by_reason[("local", "rate_limited")] == 82


def test_rate_limiter_memory_stays_bounded_under_topic_spraying() -> None:
    limiter = DeviceRateLimiter(rate=1.0, burst=1.0, max_topics=100)
    assert all(limiter.allow(f"t/{i}", now=0.0) for i in range(1000))
    assert len(limiter._buckets) <= 100  # noqa: SLF001


def test_uplink_signing_settings_load_from_toml_and_reject_bad_keys(tmp_path: Path) -> None:
    key = "ab" * 32
    toml = tmp_path / "edge.toml"
    toml.write_text(
        'customer = "alice"\nedge = "a1"\nlocal_broker = "mqtt://127.0.0.1:1883"\nhub_broker = "mqtt://127.0.0.1:1884"\n'
        f'[outbox]\npath = "{tmp_path / "o.db"}"\n[uplink.signing]\nkey_id = "a1.0001"\nkey = "{key}"\n'
    )
    settings = EdgeSettings.load(toml)
    assert settings.uplink.signing is not None and settings.uplink.signing.key_bytes == bytes.fromhex(key)
    assert key not in repr(settings)  # a SecretStr never shows in logs
    for bad in ({"key_id": "a1", "key": "zz" * 32}, {"key_id": "a:1", "key": key}, {"key_id": "a1", "key": "ab"}):
        with pytest.raises(ValueError):
            SigningSettings(**bad)  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        EdgeSettings.load(toml, uplink={"signing": {"key_id": "a1", "key": "nothex"}})


def test_the_uplink_signs_every_batch_it_encodes() -> None:
    from edge.uplink import Uplink

    key = bytes(range(32))
    uplink = object.__new__(Uplink)  # _encode needs only these attributes
    uplink.customer, uplink.edge = "alice", "a1"
    uplink.settings = UplinkSettings(signing=SigningSettings(key_id="a1.k", key=key.hex()))  # type: ignore[arg-type]
    uplink._clock = lambda: 1_800_000_000.5  # noqa: SLF001

    class Box:
        names = ["motion", "occupancy"]
        names_json = [json.dumps(n) for n in names]

    uplink.outbox = Box()  # type: ignore[assignment]
    payload = uplink._encode([(1, 1_800_000_000.0, 0, 1, True, None)])  # noqa: SLF001
    assert verify_payload(payload, keys={"a1.k": key}) == "a1.k"
    assert decode_batch(payload, customer_id="alice", edge_id="a1").events[0].seq == 1
    unsigned = encode_batch(customer_id="alice", edge_id="a1", sent_at=1.0, rows=[], names_json=[], names=[])
    assert b"signature" not in unsigned


async def test_an_edge_delivers_signed_batches_over_tls_to_a_hub_that_holds_its_key(
    tmp_path: Path, mosquitto: Mosquitto, mosquitto_factory: Callable[..., Mosquitto], prefix: str
) -> None:
    secure = start_secure_broker(tmp_path, mosquitto_factory, [("alice", "a1")])
    creds = secure.edges["a1"]
    settings = EdgeSettings.load(
        None, customer="alice", edge="a1", local_broker=mosquitto.url,
        hub_broker={"url": f"mqtts://127.0.0.1:{secure.tls_port}", "username": creds.username,
                    "password": creds.password, "ca_file": str(secure.certs.ca_cert)},
        outbox={"path": tmp_path / "outbox.db"},
        uplink={"signing": {"key_id": creds.key_id, "key": creds.key.hex()}, "backoff_initial_s": 0.1},
    )
    assert settings.hub_broker.tls and settings.hub_broker.port == secure.tls_port
    meter = DeviceDefinition(vendor="t", model="m", match=Topic(f"{prefix}/+/state"), exposes=(power(path="p"),))
    agent = EdgeAgent(settings, sessions=[DefinitionsAdapter.of([meter]).new_session()])
    hub = Hub(HubSettings.load(
        broker={"url": secure.broker.url, "username": secure.hub[0], "password": secure.hub[1], "client_id": secure.hub[0]},
        store={"path": secure.db}, security={"signing": "required"},
    ))
    async with hub, aiomqtt.Client(mosquitto.host, mosquitto.port) as devices, asyncio.TaskGroup() as tg:
        tasks = [tg.create_task(hub.run()), tg.create_task(agent.run())]
        try:
            async with asyncio.timeout(20):
                await agent.ready.wait()
                for i in range(20):
                    await devices.publish(f"{prefix}/meter/state", json.dumps({"p": float(i)}).encode(), qos=1)
                while [e.events for e in await hub.store.edges()] != [20]:
                    await asyncio.sleep(0.1)
        finally:
            for t in tasks:
                t.cancel()
    assert hub.guard.verified >= 1 and hub.dead_letters.counts == {}


async def test_a_flooding_product_cannot_crowd_out_the_others_in_a_running_edge(
    tmp_path: Path, mosquitto: Mosquitto, mosquitto_factory: Callable[..., Mosquitto], prefix: str
) -> None:
    hub_side = mosquitto_factory()
    settings = EdgeSettings.load(
        None, customer="alice", edge="a1", local_broker=mosquitto.url, hub_broker=hub_side.url,
        outbox={"path": tmp_path / "outbox.db"},
        local={"device_messages_per_s": 5.0, "device_burst": 50, "backoff_initial_s": 0.1},
    )
    meter = DeviceDefinition(vendor="t", model="m", match=Topic(f"{prefix}/+/state"), exposes=(power(path="p"),))
    agent = EdgeAgent(settings, sessions=[DefinitionsAdapter.of([meter]).new_session()])
    async with aiomqtt.Client(mosquitto.host, mosquitto.port) as devices, asyncio.TaskGroup() as tg:
        task = tg.create_task(agent.run())
        try:
            async with asyncio.timeout(20):
                await agent.ready.wait()
                for i in range(1000):  # a broken plug, as fast as the broker takes it …
                    await devices.publish(f"{prefix}/plug/state", json.dumps({"p": float(i)}).encode(), qos=1)
                    if i % 50 == 0:  # … while an honest meter reports now and then
                        await devices.publish(f"{prefix}/meter/state", json.dumps({"p": float(i)}).encode(), qos=1)
                limited = ("local", "rate_limited")
                while agent.pipeline is None or agent.pipeline.counters.messages + agent.dead_letters.by_reason[limited] < 1020:
                    await asyncio.sleep(0.05)
        finally:
            task.cancel()
    assert agent.pipeline is not None and agent.outbox is not None
    queued = agent.outbox.next_seq - 1
    meter_events = 20
    # The flood got its burst (plus what refilled meanwhile), the meter got everything.
    assert agent.pipeline.counters.messages == queued
    assert meter_events + 50 <= queued <= meter_events + 50 + 5 * 20
    assert agent.dead_letters.by_reason[("local", "rate_limited")] == 1020 - queued
    with contextlib.closing(sqlite3.connect(tmp_path / "outbox.db")) as db:
        refused = dict(db.execute("SELECT topic, COUNT(*) FROM dead_letters GROUP BY topic").fetchall())
    assert set(refused) == {f"{prefix}/plug/state"}  # not one of the meter's messages was refused
