"""Erasure against a running hub and through the CLI: memory, database and broker all forget."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiomqtt

from devices.topics import ack_topic, anticipations_topic, control_topic, devices_topic, status_topic
from hub.rights import Subject, customer_tables, forget_customer, subject_of
from hub.service import Hub
from hub.store import Store
from simulations.brokers import Mosquitto

from . import fake_edge as fe
from .helpers import settings_for

REPO = Path(__file__).resolve().parents[2]


@asynccontextmanager
async def _hub(broker: Mosquitto, db: Path, client_id: str) -> AsyncIterator[Hub]:
    hub = Hub(settings_for(broker.url, db, client_id))
    hub.erasure_poll_s = 0.1
    async with hub, asyncio.TaskGroup() as tg:
        task = tg.create_task(hub.run())
        try:
            async with asyncio.timeout(10):
                await hub.ready.wait()
            yield hub
        finally:
            task.cancel()


async def _fill(broker: Mosquitto, customers: list[str]) -> None:
    """Each customer: one edge with 30 events, a retained status and inventory, acknowledged."""
    async with fe.client(broker.host, broker.port) as c:
        for cid in customers:
            edge = f"{cid}-home"
            await fe.publish_status(c, cid, edge, {"state": "online", "ts": 1_700_000_000.0})
            await fe.publish_devices(c, cid, edge, [{"device": "dev1", "adapter": "zigbee2mqtt"}])
            await fe.publish(c, cid, edge, [fe.seq_batch(cid, edge, 1, 30)])
            await fe.wait_ack(c, cid, edge, through=30)
        await c.publish(anticipations_topic(customers[0]), b'{"placeholder": true}', qos=1, retain=True)


async def _retained(broker: Mosquitto, topics: list[str], *, quiet_s: float = 0.5) -> dict[str, bytes]:
    """The retained messages the broker holds on ``topics`` (collected until quiet)."""
    out: dict[str, bytes] = {}
    async with fe.client(broker.host, broker.port) as c:
        await c.subscribe([(t, 1) for t in topics])
        try:
            async with asyncio.timeout(quiet_s * 4):
                while True:
                    async with asyncio.timeout(quiet_s):
                        msg = await anext(c.messages)
                    if msg.retain:
                        out[msg.topic.value] = bytes(msg.payload)  # type: ignore[arg-type]
        except TimeoutError:
            pass
    return out


async def _leftovers(db: Path, subject: Subject) -> dict[str, int]:
    """Rows matching the customer's former identities, per personal table (only non-zero)."""
    out = {}
    async with Store(db, readonly=True) as store:
        for table in await customer_tables(store.db):
            where, args = subject.where(table)
            async with store.db.execute(f'SELECT COUNT(*) FROM "{table.name}" WHERE {where}', args) as cur:
                row = await cur.fetchone()
            if row and row[0]:
                out[table.name] = int(row[0])
    return out


async def _wait_applied(db: Path, *, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while True:
            with sqlite3.connect(db) as conn:
                if conn.execute("SELECT COUNT(*) FROM erasures WHERE hub_applied IS NULL").fetchone()[0] == 0:
                    return
            await asyncio.sleep(0.05)


async def test_running_hub_forgets_in_memory_database_and_broker(mosquitto: Mosquitto, prefix: str, tmp_path: Path) -> None:
    db = tmp_path / "hub.db"
    alice, bob = f"{prefix}a", f"{prefix}b"
    async with _hub(mosquitto, db, f"hub-{prefix}") as hub:
        await _fill(mosquitto, [alice, bob])
        async with Store(db, readonly=True) as store:
            subject = await subject_of(store.db, alice)
        assert subject.edge_ids == (f"{alice}-home",)
        async with fe.client(mosquitto.host, mosquitto.port, f"edge-{prefix}") as edge:
            await edge.subscribe(control_topic(alice, f"{alice}-home"), qos=1)
            # What the CLI does: erase on the database, on its own connection.
            async with Store(db) as store:
                report = await forget_customer(store, alice)
            assert report.rows["events"] == 30
            await _wait_applied(db)
            async with asyncio.timeout(10):
                purge = json.loads(bytes((await anext(edge.messages)).payload))  # type: ignore[arg-type]
        assert purge["command"] == "purge"
        assert alice not in hub.catalog.customers and alice not in hub.context.customers
        assert f"{alice}-home" not in hub.catalog.edges
        assert bob in hub.catalog.customers and hub.snapshot(bob)
        assert await _leftovers(db, subject) == {}
        with sqlite3.connect(db) as conn:
            assert conn.execute("SELECT edges FROM erasures").fetchone()[0] is None  # broker side done
    left = await _retained(mosquitto, [f"genius/v1/{alice}/#", f"genius/v1/{bob}/#"])
    assert not any(t.startswith(f"genius/v1/{alice}/") for t in left), left
    assert {status_topic(bob, f"{bob}-home"), devices_topic(bob, f"{bob}-home"), ack_topic(bob, f"{bob}-home")} <= set(left)
    # A restarted hub does not bring the customer back.
    async with _hub(mosquitto, db, f"hub-{prefix}") as hub:
        assert alice not in hub.catalog.customers and bob in hub.catalog.customers


def _genius(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "genius", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=60, check=False)


async def test_cli_exports_then_forgets_with_the_broker_side(mosquitto: Mosquitto, prefix: str, tmp_path: Path) -> None:
    db = tmp_path / "hub.db"
    alice, bob = f"{prefix}a", f"{prefix}b"
    async with _hub(mosquitto, db, f"hub-{prefix}"):
        await _fill(mosquitto, [alice, bob])
    out = tmp_path / "alice.json"
    done = await asyncio.to_thread(_genius, "customer", "export", alice, "--db", str(db), "--out", str(out))
    assert done.returncode == 0, done.stderr
    doc = json.loads(out.read_text())
    assert doc["customer_id"] == alice and len(doc["events"]) == 30 and bob not in out.read_text()
    with sqlite3.connect(db) as conn:  # the export is an audited operator read
        assert conn.execute("SELECT resource FROM audit_log WHERE customer_id = ?", (alice,)).fetchall() == [("export",)]
    async with Store(db, readonly=True) as store:
        subject = await subject_of(store.db, alice)
    async with fe.client(mosquitto.host, mosquitto.port, f"edge-{prefix}") as edge:
        await edge.subscribe(control_topic(alice, f"{alice}-home"), qos=1)
        done = await asyncio.to_thread(_genius, "customer", "forget", alice, "--db", str(db), "--broker", mosquitto.url)
        assert done.returncode == 0, done.stderr
        async with asyncio.timeout(10):
            purge = json.loads(bytes((await anext(edge.messages)).payload))  # type: ignore[arg-type]
    assert purge["command"] == "purge"
    report = json.loads(done.stdout)
    assert report["rows"]["events"] == 30 and report["edges"] == [f"{alice}-home"]
    assert await _leftovers(db, subject) == {}  # the audit entry of the export included
    left = await _retained(mosquitto, [f"genius/v1/{alice}/#"])
    assert left == {}
    bad = await asyncio.to_thread(_genius, "customer", "forget", "Not An Id", "--db", str(db))
    assert bad.returncode == 2 and "customer id" in bad.stderr
