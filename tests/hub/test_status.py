"""``genius hub status`` reads each edge's declared role from what the edge reported."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from devices.topics import status_topic
from hub.status import status_report
from hub.store import Store

from .helpers import feed, open_pipeline

C, E = "alice", "alice-car"


def _status(**doc: object) -> tuple[str, bytes]:
    return status_topic(C, E), json.dumps({"state": "online", "ts": 1.0, **doc}).encode()


async def test_status_reports_the_role_the_edge_declared(tmp_path: Path) -> None:
    db = tmp_path / "hub.db"
    async with Store(db) as store:
        await feed(store, await open_pipeline(store), _status(role="car"))
    [edge] = (await status_report(db))["edges"]
    assert edge["edge_id"] == E and edge["role"] == "car"
    with sqlite3.connect(db) as conn:  # stored in its column, not only inside the status JSON
        assert conn.execute("SELECT role FROM edges WHERE edge_id = ?", (E,)).fetchone() == ("car",)


async def test_a_new_role_replaces_the_old_and_a_status_without_one_keeps_it(tmp_path: Path) -> None:
    db = tmp_path / "hub.db"
    async with Store(db) as store:
        p = await open_pipeline(store)
        await feed(store, p, _status(role="home"))
        await feed(store, p, _status(role="holiday_home"))
        await feed(store, p, (status_topic(C, E), json.dumps({"state": "offline", "ts": 2.0}).encode()))  # last will
    [edge] = (await status_report(db))["edges"]
    assert (edge["role"], edge["online"]) == ("holiday_home", False)


async def test_an_edge_that_declared_no_role_has_none(tmp_path: Path) -> None:
    db = tmp_path / "hub.db"
    async with Store(db) as store:
        await feed(store, await open_pipeline(store), _status())
    [edge] = (await status_report(db))["edges"]
    assert "role" in edge and edge["role"] is None


async def test_a_database_written_before_roles_were_stored_reads_them_from_the_status(tmp_path: Path) -> None:
    db = tmp_path / "hub.db"
    async with Store(db) as store:
        await feed(store, await open_pipeline(store), _status(role="office"))
    with sqlite3.connect(db) as conn:  # what an older hub left: the role only inside the JSON
        conn.execute("UPDATE edges SET role = NULL")
    [edge] = (await status_report(db))["edges"]
    assert edge["role"] == "office"
