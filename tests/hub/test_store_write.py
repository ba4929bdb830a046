"""``Store.write``: one ingest group, all of it or none of it, whatever happens to the caller."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from devices.errors import StorageError
from hub.catalog import NewRows
from hub.store import Store, WriteGroup


def _group(edge_key: int, first_seq: int, n: int, *, customer: str = "alice") -> WriteGroup:
    new = NewRows(customers=[(1, customer, 1.0)], edges=[(edge_key, f"{customer}-home", 1, 1.0, 1.0)],
                  devices=[(1, edge_key, "lamp")])
    events = [(edge_key, s, 1_700_000_000.0 + s, 1, 0, s % 2 == 0, None) for s in range(first_seq, first_seq + n)]
    return WriteGroup(new=new, events=events)


async def _count(store: Store, table: str) -> int:
    async with store.db.execute(f"SELECT COUNT(*) FROM {table}") as cur:  # noqa: S608 (test tables)
        row = await cur.fetchone()
    assert row is not None
    return int(row[0])


async def test_a_group_that_fails_midway_leaves_nothing_behind_and_the_next_one_is_written(tmp_path: Path) -> None:
    async with Store(tmp_path / "hub.db") as store:
        bad = _group(1, 1, 10)
        # written after the events: SQLite refuses it (NOT NULL, no default to replace with)
        bad.progress.append((1, None, 10, 10, 0, "[[1,10]]", 1.0))  # type: ignore[arg-type]
        with pytest.raises(StorageError, match="write failed"):
            await store.write(bad)
        assert (await _count(store, "customers"), await _count(store, "events")) == (0, 0)
        assert not store.db.in_transaction
        await store.write(_group(1, 1, 10))
        assert (await _count(store, "customers"), await _count(store, "events")) == (1, 10)


async def test_a_cancelled_writer_cannot_leave_half_a_group_or_an_open_transaction(tmp_path: Path) -> None:
    async with Store(tmp_path / "hub.db") as store:
        task = asyncio.create_task(store.write(_group(1, 1, 50_000)))
        await asyncio.sleep(0)  # the group is handed to SQLite's thread, then its caller goes away
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        async with store.transaction() as db:  # the next writer starts cleanly after it
            await db.execute("UPDATE edges SET role = 'home'")
        assert await _count(store, "events") == 50_000  # the group was written whole
        await store.write(_group(1, 1, 50_000))  # and writing it again is harmless
        assert await _count(store, "events") == 50_000


async def test_a_read_only_store_refuses_a_group(tmp_path: Path) -> None:
    async with Store(tmp_path / "hub.db") as store:
        await store.write(_group(1, 1, 3))
    async with Store(tmp_path / "hub.db", readonly=True) as store:
        with pytest.raises(StorageError, match="read-only"):
            await store.write(_group(1, 4, 3))
