"""Broker-level tenant isolation with a real Mosquitto started from ``hub.security`` config.

MQTT 3.1.1 gives no error for a publish the ACL denies (Mosquitto drops it after PUBACK)
nor for a subscription it will never serve, so each test checks the effect: a hub-role
observer sees the attacker's own allowed message (a sentinel published after the attacks)
and nothing else from it.
"""

from __future__ import annotations

import asyncio
import ssl
import subprocess
from collections.abc import Callable
from pathlib import Path

import aiomqtt
import pytest
from security_kit import SecureBroker, drain, sentinel, settle, start_secure_broker, watch

from devices.topics import ack_topic, anticipations_topic, control_topic, events_topic, feedback_topic, status_topic
from hub.security.passwords import hash_password, verify_password
from simulations.brokers import Mosquitto

EDGES = [("alice", "alice-home"), ("alice", "alice-car"), ("bob", "bob-home")]


@pytest.fixture
def secure(tmp_path: Path, mosquitto_factory: Callable[..., Mosquitto]) -> SecureBroker:
    return start_secure_broker(tmp_path, mosquitto_factory, EDGES)


async def test_an_edge_can_publish_only_under_its_own_customer_and_edge(secure: SecureBroker) -> None:
    async with secure.observer_client() as obs, secure.edge_client("alice-home") as attacker:
        await obs.subscribe("genius/v1/#", qos=1)
        forged = [
            events_topic("bob", "bob-home"),  # another customer's edge
            events_topic("alice", "alice-car"),  # the same customer's other edge
            events_topic("bob", "alice-home"),  # its own edge id under another customer
            status_topic("bob", "bob-home"),
            feedback_topic("bob"),
            ack_topic("bob", "bob-home"),  # a forged ack would make bob's edge drop events
            control_topic("bob", "bob-home"),  # a forged purge
            anticipations_topic("bob"),
            "genius/v1/bob/bob-home/events/extra",
            "other/topic",
        ]
        for topic in forged:
            await attacker.publish(topic, b'{"forged":true}', qos=1)
        await attacker.publish(feedback_topic("alice"), sentinel("own-feedback"), qos=1)
        await attacker.publish(events_topic("alice", "alice-home"), sentinel("own-events"), qos=1)
        seen = await watch(obs, until=lambda t, p: p == sentinel("own-events"))
        seen += await drain(obs, quiet_s=0.3)
    topics = [t for t, _ in seen]
    assert topics == [feedback_topic("alice"), events_topic("alice", "alice-home")]


async def test_an_edge_reads_only_its_own_customers_anticipations_and_its_own_ack(secure: SecureBroker) -> None:
    async with secure.client(*secure.hub) as hub:
        # Retained before anyone subscribes, and live after: neither may reach another tenant.
        await hub.publish(anticipations_topic("bob"), b'{"for":"bob"}', qos=1, retain=True)
        await hub.publish(ack_topic("alice", "alice-car"), b'{"stored_through":1}', qos=1, retain=True)
        async with secure.edge_client("alice-home") as attacker:
            await attacker.subscribe([("genius/v1/#", 1), ("#", 1), (anticipations_topic("bob"), 1),
                                      ("genius/v1/+/anticipations", 1), ("genius/v1/+/+/ack", 1),
                                      (ack_topic("alice", "alice-home"), 1), (anticipations_topic("alice"), 1)])
            await hub.publish(anticipations_topic("bob"), b'{"for":"bob","live":true}', qos=1)
            await hub.publish(events_topic("bob", "bob-home"), b'{"bob":"events"}', qos=1)
            await hub.publish(control_topic("bob", "bob-home"), b'{"command":"purge"}', qos=1)
            await hub.publish(anticipations_topic("alice"), b'{"for":"alice"}', qos=1)
            await hub.publish(ack_topic("alice", "alice-home"), b'{"stored_through":7}', qos=1)
            seen = await watch(attacker, until=lambda t, p: t == ack_topic("alice", "alice-home"))
            seen += await drain(attacker, quiet_s=0.3)
    got = {t for t, _ in seen}
    assert got == {anticipations_topic("alice"), ack_topic("alice", "alice-home")}
    assert all(b"bob" not in p for _, p in seen)


async def test_unknown_users_and_wrong_passwords_cannot_connect(secure: SecureBroker) -> None:
    for username, password in [(None, None), ("alice-home", "wrong"), ("mallory", "x"), ("genius-hub", "")]:
        client = secure.client(username, password)
        with pytest.raises(aiomqtt.MqttError):
            async with client:
                pass
        settle(client)


async def test_an_edge_cannot_take_over_the_hubs_session_by_client_id(secure: SecureBroker) -> None:
    async with secure.observer_client(identifier="observer") as obs:
        await obs.subscribe("genius/v1/#", qos=1)
        # use_username_as_clientid: the attacker's "observer" id becomes "alice-home".
        async with secure.edge_client("alice-home", identifier="observer") as attacker:
            await attacker.publish(events_topic("alice", "alice-home"), sentinel("still-connected"), qos=1)
            seen = await watch(obs, until=lambda t, p: p == sentinel("still-connected"))
    assert seen[-1][1] == sentinel("still-connected")


async def test_tls_listener_accepts_edges_with_the_ca_and_refuses_plain_mqtt(secure: SecureBroker) -> None:
    async with secure.observer_client(tls=True) as obs, secure.edge_client("bob-home", tls=True) as edge:
        await obs.subscribe(events_topic("bob", "bob-home"), qos=1)
        await edge.publish(events_topic("bob", "bob-home"), sentinel("over-tls"), qos=1)
        seen = await watch(obs, until=lambda t, p: p == sentinel("over-tls"))
    assert seen == [(events_topic("bob", "bob-home"), sentinel("over-tls"))]
    creds = secure.edges["bob-home"]
    plain = aiomqtt.Client(secure.host, secure.tls_port, username=creds.username, password=creds.password, timeout=3)
    with pytest.raises(aiomqtt.MqttError):  # plain MQTT to the TLS port
        async with plain:
            pass
    settle(plain)
    # TLS that does not trust our CA fails the handshake (checked with asyncio's own TLS:
    # paho leaks the socket of a failed handshake, which the warnings filter would report).
    with pytest.raises(ssl.SSLCertVerificationError):
        async with asyncio.timeout(5):
            _, writer = await asyncio.open_connection(secure.host, secure.tls_port, ssl=ssl.create_default_context())
            writer.close()
            await writer.wait_closed()


def test_password_hashes_match_mosquitto_passwd(tmp_path: Path) -> None:
    ours = hash_password("s3cret")
    assert verify_password("s3cret", ours) and not verify_password("other", ours)
    path = tmp_path / "passwd"
    subprocess.run(["mosquitto_passwd", "-c", "-b", str(path), "u", "s3cret"], check=True, capture_output=True)
    theirs = path.read_text().strip().split(":", 1)[1]
    assert theirs.startswith("$7$") and verify_password("s3cret", theirs)


def test_acl_gives_each_edge_only_its_own_topics(secure: SecureBroker) -> None:
    acl = secure.broker.config.read_text()
    assert "allow_anonymous false" in acl and "use_username_as_clientid true" in acl
    text = (secure.db.parent / "auth" / "acl").read_text()
    block = text.split("user alice-home\n", 1)[1].split("\n\n", 1)[0]
    assert "genius/v1/alice/alice-home/events" in block and "bob" not in block and "#" not in block
