"""``genius hub init-certs / provision-edge / broker-config / rotate-key`` end to end: the
generated ``mosquitto.conf`` runs a real Mosquitto, and provisioning a new edge takes effect
after a SIGHUP (Mosquitto re-reads the password and ACL files)."""

from __future__ import annotations

import asyncio
import json
import signal
import ssl
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
from security_kit import drain

from devices.topics import events_topic
from genius.cli import main
from hub.security import load_keys
from simulations.brokers import Mosquitto, free_port


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert main(list(args)) == 0
    return capsys.readouterr().out


async def test_generated_broker_config_runs_mosquitto_and_picks_up_new_edges_on_sighup(
    tmp_path: Path, mosquitto_factory: Callable[..., Mosquitto], capsys: pytest.CaptureFixture[str]
) -> None:
    db, out, certs = tmp_path / "hub.db", tmp_path / "broker", tmp_path / "certs"
    port, tls_port = free_port(), free_port()
    _cli(capsys, "hub", "init-certs", "--out", str(certs))
    alice: dict[str, Any] = json.loads(_cli(capsys, "hub", "provision-edge", "--customer", "alice", "--edge", "a1",
                                            "--db", str(db), "--json"))
    _cli(capsys, "hub", "broker-config", "--out", str(out), "--db", str(db), "--port", str(port),
         "--tls-port", str(tls_port), "--certs", str(certs), "--no-persistence")
    hub_login = tomllib.loads((out / "hub-broker.toml").read_text())["broker"]
    assert (out / "passwd").stat().st_mode & 0o077 == 0  # secrets are not world-readable
    assert alice["password"] not in (out / "passwd").read_text()  # hashes only

    broker = mosquitto_factory(port=port, listener=False, persistence=False, extra=(out / "mosquitto.conf").read_text())
    ctx = ssl.create_default_context(cafile=str(certs / "ca.crt"))
    async with aiomqtt.Client(broker.host, port, username=hub_login["username"], password=hub_login["password"],
                              timeout=10) as hub, \
            aiomqtt.Client(broker.host, tls_port, username="a1", password=alice["password"], tls_context=ctx,
                           timeout=10) as edge:
        await hub.subscribe("genius/v1/#", qos=1)
        await edge.publish(events_topic("alice", "a1"), b"a1", qos=1)
        await edge.publish(events_topic("bob", "b1"), b"forged", qos=1)  # not its topic
        assert [p for _, p in await drain(hub, quiet_s=0.5)] == [b"a1"]

        # A new edge: unknown until the files are rewritten and Mosquitto re-reads them.
        bob = json.loads(_cli(capsys, "hub", "provision-edge", "--customer", "bob", "--edge", "b1", "--db", str(db),
                              "--broker-dir", str(out), "--json"))
        broker._proc.send_signal(signal.SIGHUP)  # type: ignore[union-attr]  # noqa: SLF001
        async with asyncio.timeout(10):
            while True:
                try:
                    async with aiomqtt.Client(broker.host, port, username="b1", password=bob["password"],
                                              timeout=5) as b1:
                        await b1.publish(events_topic("bob", "b1"), b"b1", qos=1)
                        break
                except aiomqtt.MqttError:
                    await asyncio.sleep(0.1)
        assert [p for _, p in await drain(hub, quiet_s=0.5)] == [b"b1"]

    rotated = json.loads(_cli(capsys, "hub", "rotate-key", "--edge", "b1", "--db", str(db), "--grace", "60", "--json"))
    keys = load_keys(db)["b1"].keys
    assert set(keys) == {bob["key_id"], rotated["key_id"]} and keys[rotated["key_id"]][1] is None
    assert main(["hub", "provision-edge", "--customer", "bob", "--edge", "b1", "--db", str(db)]) == 2  # once only
    assert main(["hub", "rotate-key", "--edge", "nobody", "--db", str(db)]) == 2


def test_provision_edge_prints_a_settings_snippet_the_edge_loads(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from edge.settings import EdgeSettings

    text = _cli(capsys, "hub", "provision-edge", "--customer", "carol", "--edge", "c1", "--db", str(tmp_path / "h.db"))
    doc = tomllib.loads(text.split("\n\n", 1)[1])
    settings = EdgeSettings.load(None, **doc, local_broker="mqtt://127.0.0.1:1883", outbox={"path": tmp_path / "o.db"})
    keys = load_keys(tmp_path / "h.db")["c1"]
    assert settings.uplink.signing is not None and keys.customer_id == "carol"
    assert keys.keys[settings.uplink.signing.key_id][0] == settings.uplink.signing.key_bytes
    assert settings.hub_broker.tls and settings.hub_broker.password is not None
