"""Customer data rights on a real hub database: export everything, forget everything, touch no one else."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from devices.topics import devices_topic, events_topic, feedback_topic, status_topic
from hub.rights import (
    NON_PERSONAL,
    Subject,
    customer_tables,
    export_customer,
    forget_customer,
    mark_broker_cleared,
    subject_hash,
    subject_of,
    unclassified_tables,
)
from hub.security.registry import provision_edge
from hub.store import Store

from . import fake_edge as fe
from .helpers import feed, open_pipeline

INVENTORY = [
    {"device": "dev1", "adapter": "zigbee2mqtt", "room": "living", "capabilities": ["occupancy"],
     "privacy": {"occupancy": "coarse"}},
    {"device": "dev2", "adapter": "tasmota", "capabilities": ["power"], "privacy": {"power": "share"}},
]
# A table another part of the hub might add later: discovered by its customer_id column.
LATER_TABLE = "CREATE TABLE later_personal (id INTEGER PRIMARY KEY, customer_id TEXT NOT NULL, note TEXT)"


async def _populate(db: Path) -> None:
    """Two customers, each with two edges, events, status, inventory, feedback, a dead letter, keys."""
    for cid in ("alice", "bob"):
        for edge in ("home", "car"):
            provision_edge(db, customer_id=cid, edge_id=f"{cid}-{edge}", now=1_700_000_000.0)
    async with Store(db) as store:
        pipeline = await open_pipeline(store)
        for cid in ("alice", "bob"):
            for edge in (f"{cid}-home", f"{cid}-car"):
                await feed(
                    store, pipeline,
                    (events_topic(cid, edge), fe.seq_batch(cid, edge, 1, 20)),
                    (status_topic(cid, edge), json.dumps({"state": "online", "ts": 1_700_000_000.0}).encode()),
                    (devices_topic(cid, edge), json.dumps(INVENTORY).encode()),
                    (events_topic(cid, edge), b"{not json"),
                    (f"genius/v1/{cid}/{edge}/bogus", f"{cid}'s diary".encode()),  # names no customer
                )
            await feed(store, pipeline, (feedback_topic(cid), json.dumps(
                {"anticipation_id": f"a-{cid}", "verdict": "accepted", "ts": 1_700_000_100.0, "job": "cook"}).encode()))
        async with store.transaction() as conn:
            await conn.execute(LATER_TABLE)
            await conn.executemany("INSERT INTO later_personal (customer_id, note) VALUES (?, ?)",
                                   [("alice", "likes tea"), ("bob", "likes coffee")])


def _count(db: Path, table: str, where: str, args: list[Any]) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute(f'SELECT COUNT(*) FROM "{table}" WHERE {where}', args).fetchone()[0])


async def _subjects(db: Path) -> tuple[list[Any], dict[str, Subject]]:
    async with Store(db) as store:
        tables = await customer_tables(store.db)
        return tables, {cid: await subject_of(store.db, cid) for cid in ("alice", "bob")}


async def test_export_holds_every_section_and_every_personal_table(tmp_path: Path) -> None:
    db = tmp_path / "hub.db"
    await _populate(db)
    async with Store(db) as store:
        doc = await export_customer(store, "alice", now=1.0)
        tables = await customer_tables(store.db)
    json.dumps(doc)  # one JSON document
    assert doc["found"] is True
    assert len(doc["events"]) == 40 and {e["edge_id"] for e in doc["events"]} == {"alice-home", "alice-car"}
    # Canonical values come back in their wire types (booleans are stored 0/1).
    contact = next(e for e in doc["events"] if e["seq"] == 2 and e["edge_id"] == "alice-home")
    assert (contact["capability"], contact["value"]) == ("contact", True) and contact["value"] is True
    assert doc["context"] is not None and doc["context"]["state"]["edges"]
    assert [f["anticipation_id"] for f in doc["feedback"]] == ["a-alice"]
    assert doc["privacy"]["alice-home"] == {"dev1": {"occupancy": "coarse"}, "dev2": {"power": "share"}}
    assert {d["edge_id"] for d in doc["dead_letters"]} >= {"alice-home", "alice-car"}
    assert sorted(d["raw"] for d in doc["dead_letters"] if d["topic"].endswith("/bogus")) == ["alice's diary"] * 2
    assert [r["note"] for r in doc["tables"]["later_personal"]] == ["likes tea"]
    # Every personal table holding alice's rows is in the export (raw, or rendered as a section).
    _, subjects = await _subjects(db)
    for table in tables:
        where, args = subjects["alice"].where(table)
        if _count(db, table.name, where, args):
            assert table.name in doc["tables"] or table.name in ("events", "context_state"), table.name
            if table.name in doc["tables"]:
                assert len(doc["tables"][table.name]) == _count(db, table.name, where, args)
    # Nothing of bob's, and no credentials.
    text = json.dumps(doc)
    assert "bob" not in text and "likes coffee" not in text
    assert all(k["secret"] == "[redacted]" for k in doc["tables"]["edge_keys"])
    assert all(u["password_hash"] == "[redacted]" for u in doc["tables"]["broker_users"])


async def test_export_of_an_unknown_customer_is_empty(tmp_path: Path) -> None:
    db = tmp_path / "hub.db"
    await _populate(db)
    async with Store(db) as store:
        doc = await export_customer(store, "carol")
    assert doc["found"] is False and doc["events"] == [] and all(rows == [] for rows in doc["tables"].values())


async def test_forget_leaves_nothing_of_the_customer_and_everyone_else_untouched(tmp_path: Path) -> None:
    db = tmp_path / "hub.db"
    await _populate(db)
    tables, subjects = await _subjects(db)
    before_bob = {t.name: _count(db, t.name, *subjects["bob"].where(t)) for t in tables}
    assert before_bob["events"] == 40 and before_bob["later_personal"] == 1
    async with Store(db) as store:
        report = await forget_customer(store, "alice", now=5.0)
    assert set(report.edges) == {"alice-home", "alice-car"}
    assert report.rows["events"] == 40 and report.rows["later_personal"] == 1
    for table in tables:  # table by table, with alice's identities as they were
        assert _count(db, table.name, *subjects["alice"].where(table)) == 0, table.name
        assert _count(db, table.name, *subjects["bob"].where(table)) == before_bob[table.name], table.name
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT subject, rows, edges FROM erasures").fetchall()
    assert len(rows) == 1 and rows[0][0] == subject_hash("alice")
    assert json.loads(rows[0][1])["events"] == 40
    async with Store(db) as store:
        await mark_broker_cleared(store, report.erasure_id)
        assert (await export_customer(store, "alice"))["found"] is False
    # Once the broker side is done, the name appears nowhere in the database.
    with sqlite3.connect(db) as conn:
        dump = "\n".join(conn.iterdump())
    assert "alice" not in dump and "likes tea" not in dump
    assert "bob-home" in dump
    with sqlite3.connect(db) as conn:
        raws = [bytes(r[0]) for r in conn.execute("SELECT raw FROM dead_letters WHERE topic LIKE '%/bogus'")]
    assert raws == [b"bob's diary"] * 2


async def test_every_table_is_personal_or_declared_not(tmp_path: Path) -> None:
    db = tmp_path / "hub.db"
    await _populate(db)
    async with Store(db) as store:
        await forget_customer(store, "nobody")  # creates the erasures table too
        assert await unclassified_tables(store.db) == []
        names = {t.name for t in await customer_tables(store.db)}
        assert {"events", "edges", "customers", "feedback", "dead_letters", "edge_keys", "broker_users"} <= names
        async with store.transaction() as conn:
            await conn.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, who TEXT)")
        # A table the rights code cannot attribute is reported, so its author must classify it.
        assert await unclassified_tables(store.db) == ["notes"]
    assert "notes" not in NON_PERSONAL


async def test_forget_again_erases_nothing_and_carries_the_pending_broker_work(tmp_path: Path) -> None:
    db = tmp_path / "hub.db"
    await _populate(db)
    async with Store(db) as store:
        first = await forget_customer(store, "alice")
        second = await forget_customer(store, "alice")
    assert second.rows == {}
    # The broker side of the first erasure was never done: the second one carries its edges.
    assert set(second.edges) == set(first.edges) == {"alice-home", "alice-car"}
    with sqlite3.connect(db) as conn:
        pending = [r[0] for r in conn.execute("SELECT edges FROM erasures ORDER BY id")]
    assert pending[0] is None and set(json.loads(pending[1])) == {"alice-home", "alice-car"}
