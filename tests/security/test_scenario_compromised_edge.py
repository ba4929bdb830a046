"""Proof: three customers on one secured hub, one of them with a compromised edge.

Alice and Bob run real ``EdgeAgent``s (signing with their provisioned keys) through a real
Mosquitto started from the generated config, into a real ``Hub``. Mallory's edge is taken
over: with its own (valid) broker login and signing key it tries every cross-tenant trick
while the others work. Afterwards:

* Alice's and Bob's event counts and values are exact, and nothing of theirs reached Mallory;
* every attack is visible: the ones the broker's ACL refuses never reach any subscriber (a
  hub-role observer records everything), the rest are dead letters with their reason.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
from security_kit import SecureBroker, batch_doc, drain, encode, settle, start_secure_broker

from devices import DefinitionsAdapter, DeviceDefinition, Topic, power
from devices.signing import sign_document
from devices.topics import (
    ack_topic,
    anticipations_topic,
    control_topic,
    events_topic,
    feedback_topic,
    status_topic,
)
from edge import EdgeAgent, EdgeSettings
from hub.service import Hub
from hub.settings import HubSettings
from simulations.brokers import Mosquitto

HONEST = {"alice": "alice-home", "bob": "bob-home"}
N = 150  # device messages per honest customer
EVIL = "evil-device"  # the device name on everything Mallory sends


def _agent(secure: SecureBroker, local: Mosquitto, tmp_path: Path, customer: str, root: str) -> EdgeAgent:
    edge = HONEST[customer]
    creds = secure.edges[edge]
    settings = EdgeSettings.load(
        None,
        customer=customer,
        edge=edge,
        local_broker=local.url,
        hub_broker={"url": secure.broker.url, "username": creds.username, "password": creds.password},
        outbox={"path": tmp_path / f"{edge}.db"},
        uplink={"resend_after_s": 1.0, "status_interval_s": 1.0, "backoff_initial_s": 0.1, "backoff_max_s": 1.0,
                "shutdown_timeout_s": 3.0, "signing": {"key_id": creds.key_id, "key": creds.key.hex()}},
        local={"backoff_initial_s": 0.1, "backoff_max_s": 1.0},
    )
    meter = DeviceDefinition(vendor="test", model="meter", match=Topic(f"{root}/+/state"), exposes=(power(path="p"),))
    return EdgeAgent(settings, sessions=[DefinitionsAdapter.of([meter]).new_session()])


async def _wait(predicate: Callable[[], Any], *, timeout: float, what: str) -> None:
    async with asyncio.timeout(timeout):
        while not await predicate():
            await asyncio.sleep(0.1)


class Attacker:
    """Mallory's edge, taken over: its real login and key, and a record of every attempt."""

    def __init__(self, secure: SecureBroker) -> None:
        self.secure = secure
        self.creds = secure.edges["mallory-home"]
        self.acl_refused: list[tuple[str, bytes]] = []  # the broker must drop these
        self.expected_dead: Counter[str] = Counter()  # the hub must dead-letter these, by reason
        self.received: list[tuple[str, bytes]] = []
        self.broker_disconnects = 0

    def signed(self, doc: dict[str, Any], *, key: bytes | None = None, key_id: str | None = None) -> bytes:
        return encode(sign_document(doc, key_id=key_id or self.creds.key_id, key=key or self.creds.key))

    def doc(self, customer: str, edge: str, first: int, n: int = 3, **kw: Any) -> dict[str, Any]:
        return batch_doc(customer, edge, first, n, sent_at=kw.pop("sent_at", None) or _now(), device=EVIL, **kw)

    async def run(self, hub_now: Callable[[], float]) -> None:
        c = self.secure.edge_client("mallory-home")
        async with c:
            # Reading: other tenants' anticipations, acks, controls, events, everything.
            await c.subscribe([("#", 1), ("genius/v1/#", 1), (anticipations_topic("alice"), 1),
                               (ack_topic("bob", "bob-home"), 1), ("genius/v1/+/+/events", 1),
                               (control_topic("alice", "alice-home"), 1), ("genius/v1/mallory/#", 1)])
            # Writing as someone else: every one of these the ACL must drop.
            for customer, edge in [("alice", "alice-home"), ("bob", "bob-home"), ("alice", "mallory-home")]:
                self.acl_refused.append((events_topic(customer, edge), self.signed(self.doc(customer, edge, 10_001))))
            self.acl_refused += [
                (events_topic("mallory", "alice-home"), self.signed(self.doc("mallory", "alice-home", 10_001))),
                (ack_topic("alice", "alice-home"), b'{"stored_through":1000000,"ts":1.0}'),
                (control_topic("bob", "bob-home"), json.dumps({"command": "purge", "ts": _now()}).encode()),
                (status_topic("bob", "bob-home"), b'{"state":"offline","ts":1.0,"evil-device":1}'),
                (feedback_topic("bob"), b'{"anticipation_id":"x","verdict":"dismissed","ts":1.0,"evil-device":1}'),
                (anticipations_topic("alice"), b'{"evil-device":true}'),
            ]
            for topic, payload in self.acl_refused:
                await c.publish(topic, payload, qos=1)
            # Writing as itself, with forged, missing, replayed and stale signatures.
            own = events_topic("mallory", "mallory-home")
            first = self.signed(self.doc("mallory", "mallory-home", 1))
            await c.publish(own, first, qos=1)  # the one honest-looking batch: stored
            attempts = {
                "unsigned": encode(self.doc("mallory", "mallory-home", 4)),
                "signature": self.signed(self.doc("mallory", "mallory-home", 4), key=bytes(32)),
                "unknown_key": self.signed(self.doc("mallory", "mallory-home", 4), key_id="alice-home.00000000"),
                "replay": first,
                "skew": self.signed(self.doc("mallory", "mallory-home", 4, sent_at=hub_now() - 3600)),
                # Its own topic, a payload claiming Alice's edge (a signature cannot help it).
                "identity": self.signed(self.doc("alice", "alice-home", 4)),
                "payload_too_large": self.signed(self.doc("mallory", "mallory-home", 4, n=2_000)),
            }
            for reason, payload in attempts.items():
                await c.publish(own, payload, qos=1)
                self.expected_dead[reason] += 1
            # Flooding: valid, signed, far past its rate (200 events/s, burst 600).
            for i in range(20):
                await c.publish(own, self.signed(self.doc("mallory", "mallory-home", 100 + i * 100, n=100)), qos=1)
            self.received += await drain(c, quiet_s=1.0)
        # Oversized past the broker's max_packet_size: Mosquitto refuses it by disconnecting.
        c2 = self.secure.edge_client("mallory-home")
        try:
            async with c2:
                await c2.publish(own, b"x" * 1_100_000, qos=1)
                await asyncio.sleep(0.5)
                await c2.publish(own, b"{}", qos=1)
        except aiomqtt.MqttError:
            self.broker_disconnects += 1
        settle(c2)


def _now() -> float:
    import time

    return time.time()


@pytest.fixture
def secure(tmp_path: Path, mosquitto_factory: Callable[..., Mosquitto]) -> SecureBroker:
    return start_secure_broker(
        tmp_path, mosquitto_factory, [("alice", "alice-home"), ("bob", "bob-home"), ("mallory", "mallory-home")]
    )


async def test_a_compromised_edge_cannot_touch_other_tenants_and_every_attempt_is_visible(
    secure: SecureBroker, mosquitto: Mosquitto, tmp_path: Path, prefix: str
) -> None:
    settings = HubSettings.load(
        broker={"url": secure.broker.url, "username": secure.hub[0], "password": secure.hub[1],
                "client_id": secure.hub[0]},
        store={"path": secure.db},
        security={"max_skew_s": 120.0},
        limits={"max_payload_bytes": 65_536, "events_per_s": 200.0, "events_burst": 600},
    )
    roots = {c: f"{prefix}/{c}" for c in HONEST}
    agents = {c: _agent(secure, mosquitto, tmp_path, c, roots[c]) for c in HONEST}
    attacker = Attacker(secure)
    hub = Hub(settings)
    async with hub, secure.observer_client() as observer, aiomqtt.Client(mosquitto.host, mosquitto.port) as devices:
        await observer.subscribe("genius/v1/#", qos=1)
        async with asyncio.TaskGroup() as tg:
            tasks = [tg.create_task(hub.run())] + [tg.create_task(a.run()) for a in agents.values()]
            async with asyncio.timeout(15):
                await hub.ready.wait()
                for a in agents.values():
                    await a.ready.wait()
                    while a.uplink is None or not a.uplink.connected.is_set():
                        await asyncio.sleep(0.05)
            # Retained anticipations for each customer, published by a hub-role identity (not the
            # hub's own: one username is one client id, and a second login would take its session).
            for c in ("alice", "bob", "mallory"):
                doc = {"id": f"a-{c}", "customer_id": c, "market": "home:weekday", "ts": _now(), "model": "m@1",
                       "jobs": []}
                await observer.publish(anticipations_topic(c), json.dumps(doc).encode(), qos=1, retain=True)

            async def honest() -> None:
                for i in range(N):
                    for c, root in roots.items():
                        await devices.publish(f"{root}/meter/state", json.dumps({"p": float(i)}).encode(), qos=1)
                    if i % 10 == 0:
                        await asyncio.sleep(0.01)

            async with asyncio.TaskGroup() as work:
                work.create_task(honest())
                work.create_task(attacker.run(_now))

            async def settled() -> bool:
                edges = {e.edge_id: e.events for e in await hub.store.edges()}
                dead = await hub.store.dead_letter_counts()
                return (all(edges.get(e) == N for e in HONEST.values())
                        and sum(dead.values()) >= sum(attacker.expected_dead.values()) + 1)

            await _wait(settled, timeout=30, what="honest events stored and attacks dead-lettered")
            await asyncio.sleep(0.5)  # anything late would show up now
            seen_by_observer = await drain(observer, quiet_s=0.3)
            for t in tasks:
                t.cancel()

        # Honest customers: exact counts and values, in order, nothing else on their edges.
        for customer, edge in HONEST.items():
            frame = await hub.store.events_for(customer)
            assert sorted(frame.seq.tolist()) == list(range(1, N + 1))
            by_seq = dict(zip(frame.seq.tolist(), frame.value))
            assert [by_seq[s] for s in range(1, N + 1)] == [float(i) for i in range(N)]
            assert set(frame.device) == {"meter"} and set(frame.edge_id) == {edge}
        edges = {e.edge_id: e for e in await hub.store.edges()}
        assert {e.customer_id for e in edges.values()} == {"alice", "bob", "mallory"}
        assert set(edges) == {"alice-home", "bob-home", "mallory-home"}

        # Every hub-level attack is a dead letter with its reason, all from Mallory's edge.
        letters = await hub.store.dead_letters(limit=10_000)
        assert {(d.customer_id, d.edge_id) for d in letters} == {("mallory", "mallory-home")}
        by_reason = Counter(d.reason for d in letters)
        rate_limited = by_reason.pop("rate_limited", 0)
        assert by_reason == attacker.expected_dead
        assert rate_limited >= 5  # 2,000 flood events sent in well under 4 s, against a burst of 600 at 200/s
        # Mallory's accepted events are only Mallory's own (its first batch and part of the flood).
        assert edges["mallory-home"].events == 3 + 100 * (20 - rate_limited)

        # Every write the ACL had to refuse reached nobody: not the observer, not the hub.
        evil = [(t, p) for t, p in seen_by_observer if EVIL.encode() in p or b"stored_through\":1000000" in p]
        assert all(t == events_topic("mallory", "mallory-home") for t, _ in evil)
        refused_payloads = {p for _, p in attacker.acl_refused}
        assert not [x for x in seen_by_observer if x[1] in refused_payloads]
        assert attacker.broker_disconnects == 1  # the oversized packet cost it its connection

        # Nothing of Alice's or Bob's reached Mallory: only its own customer's topics.
        assert attacker.received, "Mallory should at least see its own anticipations and acks"
        assert all(t.startswith("genius/v1/mallory/") for t, _ in attacker.received)
        assert {t for t, _ in attacker.received} >= {anticipations_topic("mallory"), ack_topic("mallory", "mallory-home")}
