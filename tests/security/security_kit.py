"""Test-only helpers: a real Mosquitto started from ``hub.security`` config, and MQTT helpers.

``start_secure_broker`` provisions edges in a fresh hub database, writes the password and
ACL files, creates certificates and starts Mosquitto with ``broker_conf`` (plain and TLS
listeners on free loopback ports). ``observer`` is a second hub-role identity, so a test
can watch everything without taking the hub's own session.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiomqtt

from hub.security.broker import broker_conf, update_auth_files
from hub.security.certs import CertPaths, init_certs
from hub.security.registry import EdgeCredentials, add_hub_user, provision_edge
from simulations.brokers import Mosquitto, free_port


@dataclass
class SecureBroker:
    broker: Mosquitto
    db: Path
    certs: CertPaths
    tls_port: int
    edges: dict[str, EdgeCredentials] = field(default_factory=dict)
    hub: tuple[str, str] = ("", "")
    observer: tuple[str, str] = ("", "")

    @property
    def host(self) -> str:
        return self.broker.host

    @property
    def port(self) -> int:
        return self.broker.port

    def client(self, username: str | None, password: str | None, *, tls: bool = False, **kw: Any) -> aiomqtt.Client:
        ctx = ssl.create_default_context(cafile=str(self.certs.ca_cert)) if tls else None
        return aiomqtt.Client(
            self.host, self.tls_port if tls else self.port, username=username, password=password,
            tls_context=ctx, timeout=10, **kw,
        )

    def edge_client(self, edge: str, **kw: Any) -> aiomqtt.Client:
        c = self.edges[edge]
        return self.client(c.username, c.password, **kw)

    def observer_client(self, **kw: Any) -> aiomqtt.Client:
        return self.client(*self.observer, **kw)


def start_secure_broker(
    tmp_path: Path,
    mosquitto_factory: Callable[..., Mosquitto],
    edges: Sequence[tuple[str, str]],
    *,
    db: Path | None = None,
) -> SecureBroker:
    db = db or tmp_path / "hub.db"
    creds = {e: provision_edge(db, customer_id=c, edge_id=e) for c, e in edges}
    hub = add_hub_user(db, username="genius-hub")
    observer = add_hub_user(db, username="observer")
    auth = update_auth_files(tmp_path / "auth", db=db) if (tmp_path / "auth").is_dir() else None
    if auth is None:
        (tmp_path / "auth").mkdir()
        auth = update_auth_files(tmp_path / "auth", db=db)
    certs = init_certs(tmp_path / "certs")
    port, tls_port = free_port(), free_port()
    conf = broker_conf(passwd=auth.passwd, acl=auth.acl, port=port, tls_port=tls_port, certs=certs)
    broker = mosquitto_factory(port=port, listener=False, extra=conf)
    return SecureBroker(broker, db, certs, tls_port, creds, hub, observer)


async def watch(
    client: aiomqtt.Client, *, until: Callable[[str, bytes], bool], timeout: float = 10.0
) -> list[tuple[str, bytes]]:
    """Messages the (already subscribed) client receives until ``until(topic, payload)`` holds."""
    seen: list[tuple[str, bytes]] = []
    async with asyncio.timeout(timeout):
        async for msg in client.messages:
            payload = msg.payload if isinstance(msg.payload, bytes) else str(msg.payload).encode()
            seen.append((msg.topic.value, payload))
            if until(msg.topic.value, payload):
                return seen
    return seen


async def drain(client: aiomqtt.Client, *, quiet_s: float = 0.5, limit: int = 10_000) -> list[tuple[str, bytes]]:
    """Whatever the client receives until ``quiet_s`` passes without a message (bounded)."""
    seen: list[tuple[str, bytes]] = []
    with contextlib.suppress(TimeoutError):
        while len(seen) < limit:
            async with asyncio.timeout(quiet_s):
                msg = await anext(aiter(client.messages))
            payload = msg.payload if isinstance(msg.payload, bytes) else str(msg.payload).encode()
            seen.append((msg.topic.value, payload))
    return seen


def sentinel(tag: str) -> bytes:
    return json.dumps({"sentinel": tag}).encode()


def batch_doc(customer: str, edge: str, first: int, n: int, *, sent_at: float, ts: float | None = None,
              device: str = "motion", value: Any = True) -> dict[str, Any]:
    """An ``EventBatch`` document of ``n`` occupancy events from seq ``first`` (unsigned)."""
    base = sent_at if ts is None else ts
    events = [{"seq": s, "ts": base - (first + n - s) * 0.01, "device": device, "capability": "occupancy",
               "value": value, "room": "hall"} for s in range(first, first + n)]
    return {"schema": "genius.events/1", "customer_id": customer, "edge_id": edge, "sent_at": sent_at, "events": events}


def encode(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc).encode()


def settle(client: aiomqtt.Client) -> None:
    """Retrieve the exception of a client the broker refused or cut off, so asyncio does not
    log "Future exception was never retrieved" when the future is collected."""
    fut = client._disconnected  # noqa: SLF001 - aiomqtt keeps no public handle on it
    if fut.done() and not fut.cancelled():
        fut.exception()
