"""``Store``: the hub's SQLite database (aiosqlite, WAL) and every query on it.

One connection per ``Store``. Writes go through ``transaction()`` (serialised by a lock, so
later features may add their own writes beside ingest) or ``write(group)``, which puts one
ingest group (dictionary rows, events, progress, dead letters, context…) in one
transaction. ``synchronous=NORMAL`` under WAL: a committed group survives the hub process
being killed; a power cut may lose the last commits, which edges resend because their acks
never covered them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sqlite3
import urllib.parse
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import aiosqlite
import numpy as np
import numpy.typing as npt

from devices.capabilities import KIND, Capability
from devices.errors import StorageError

from .catalog import Catalog, EdgeEntry, NewRows
from .deadletters import DeadLetter
from .progress import EdgeProgress, SeqRanges
from .schema import MIGRATIONS, SCHEMA_VERSION

__all__ = [
    "CustomerRecord",
    "EdgeRecord",
    "EventFrame",
    "FeedbackRecord",
    "Store",
    "WriteGroup",
    "decode_value",
]

log = logging.getLogger(__name__)

EventRow = tuple[int, int, float, int, int, bool | float | str, int | None]
CACHE_KIB = 16 * 1024  # SQLite page cache of the hub's connection


@dataclass(slots=True)
class WriteGroup:
    """Everything one ingest commit writes, in one transaction."""

    new: NewRows = field(default_factory=NewRows)
    events: list[EventRow] = field(default_factory=list)
    progress: list[tuple[int, int, int, int, int, str, float]] = field(default_factory=list)
    last_seen: list[tuple[float, int]] = field(default_factory=list)
    # (online, status_ts, backlog, version, status JSON, role, seen, edge_key)
    statuses: list[tuple[int, float, int, str | None, str, str | None, float, int]] = field(default_factory=list)
    inventories: list[tuple[str, float, int]] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    feedback: list[tuple[int, str, str, str | None, float, float]] = field(default_factory=list)
    context: list[tuple[int, str, float]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(
            self.new or self.events or self.progress or self.last_seen or self.statuses
            or self.inventories or self.dead_letters or self.feedback or self.context
        )


@dataclass(frozen=True, slots=True)
class EdgeRecord:
    edge_id: str
    customer_id: str
    role: str | None
    first_seen: float
    last_seen: float
    online: bool | None
    status_ts: float | None
    backlog: int | None
    version: str | None
    events: int
    duplicates: int
    high_seq: int
    contiguous: int
    gaps: list[tuple[int, int]]
    inventory: list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class CustomerRecord:
    customer_id: str
    first_seen: float
    edges: int
    events: int


@dataclass(frozen=True, slots=True)
class FeedbackRecord:
    customer_id: str
    anticipation_id: str
    verdict: str
    job: str | None
    ts: float
    received: float


@dataclass(frozen=True, slots=True)
class EventFrame:
    """One customer's events as columns, ordered by ``ts`` (ties by edge, then seq).

    Numeric columns are numpy arrays (ready for feature kernels); names are lists.
    ``capability_code`` indexes ``capabilities`` (the store's code → name map).
    """

    ts: npt.NDArray[np.float64]
    seq: npt.NDArray[np.int64]
    capability_code: npt.NDArray[np.int64]
    edge_id: list[str]
    device: list[str]
    capability: list[str]
    value: list[bool | float | str]
    room: list[str | None]
    capabilities: dict[int, str]

    def __len__(self) -> int:
        return int(self.ts.shape[0])

    def rows(self) -> Iterator[tuple[float, str, int, str, str, bool | float | str, str | None]]:
        """``(ts, edge_id, seq, device, capability, value, room)`` per event."""
        for i in range(len(self)):
            yield (
                float(self.ts[i]), self.edge_id[i], int(self.seq[i]), self.device[i],
                self.capability[i], self.value[i], self.room[i],
            )


def decode_value(capability: str, raw: Any) -> bool | float | str:
    """A stored value back in its wire type (bools are stored 0/1)."""
    kind = KIND.get(capability)
    if kind == "bool":
        return bool(raw)
    if kind == "number":
        return float(raw)
    return raw if isinstance(raw, str) else str(raw)


class Store:
    """The hub database. ``async with Store(path) as store`` opens, migrates, and closes it.

    ``readonly=True`` opens an existing database without migrating or writing (the status
    command, while a hub may be running); a missing file is then a ``StorageError``.
    """

    def __init__(self, path: Path | str, *, readonly: bool = False, busy_timeout_s: float = 10.0) -> None:
        self.path = Path(path)
        self.readonly = readonly
        self._busy_timeout_ms = int(busy_timeout_s * 1000)
        self._db: aiosqlite.Connection | None = None
        self._write_lock = asyncio.Lock()

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        await self.close()

    @property
    def db(self) -> aiosqlite.Connection:
        if self._db is None:
            raise StorageError(f"store {self.path} is not open")
        return self._db

    async def open(self) -> None:
        if self._db is not None:
            return
        try:
            if self.readonly:
                if not self.path.is_file():
                    raise StorageError(f"no hub database at {self.path}")
                uri = f"file:{urllib.parse.quote(str(self.path.resolve()))}?mode=ro"
                self._db = await aiosqlite.connect(uri, uri=True, isolation_level=None)
            else:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._db = await aiosqlite.connect(self.path, isolation_level=None)
            await self._db.execute(f"PRAGMA busy_timeout = {self._busy_timeout_ms}")
            if not self.readonly:
                await self._db.execute("PRAGMA journal_mode = WAL")
                await self._db.execute("PRAGMA synchronous = NORMAL")
                # Ingest appends at the end of each edge's key range: its working set is those
                # pages and the b-tree's inner ones. 16 MiB holds them (a larger cache only
                # fills with written pages and shows as resident memory).
                await self._db.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
                await self._migrate()
            else:
                version = await self._user_version()
                if version != SCHEMA_VERSION:
                    raise StorageError(
                        f"hub database {self.path} has schema version {version}, this code expects {SCHEMA_VERSION}"
                    )
        except sqlite3.Error as exc:
            await self.close()
            raise StorageError(f"cannot open hub database {self.path}: {exc}") from exc
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        db, self._db = self._db, None
        if db is not None:
            await db.close()

    async def _user_version(self) -> int:
        async with self.db.execute("PRAGMA user_version") as cur:
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def _migrate(self) -> None:
        version = await self._user_version()
        if version > SCHEMA_VERSION:
            raise StorageError(f"hub database {self.path} is newer (v{version}) than this code (v{SCHEMA_VERSION})")
        for migration in MIGRATIONS:
            if migration.version <= version:
                continue
            log.info("migrating %s to v%d (%s)", self.path, migration.version, migration.name)
            # executescript commits first; the migration and its version bump are one script.
            await self.db.executescript(
                f"BEGIN IMMEDIATE;\n{migration.sql}\nPRAGMA user_version = {migration.version};\nCOMMIT;"
            )
        await self._seed_capabilities()

    async def _seed_capabilities(self) -> None:
        """Give every known capability a stable small-int code (new ones get the next code)."""
        async with self.db.execute("SELECT name FROM capabilities") as cur:
            known = {row[0] for row in await cur.fetchall()}
        missing = [c.value for c in Capability if c.value not in known]
        if missing:
            async with self.transaction() as db:
                for name in missing:
                    await db.execute(
                        "INSERT INTO capabilities (capability, name) "
                        "SELECT COALESCE(MAX(capability), -1) + 1, ? FROM capabilities",
                        (name,),
                    )

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """One write transaction (``BEGIN IMMEDIATE`` … ``COMMIT``), rolled back on error."""
        if self.readonly:
            raise StorageError("store is open read-only")
        async with self._write_lock:
            db = self.db
            try:
                await db.execute("BEGIN IMMEDIATE")
                yield db
                await db.commit()
            except BaseException:
                # A cancellation can land while BEGIN or COMMIT is queued in SQLite's thread:
                # settle first (a no-op queued behind them has run once it returns), then roll
                # back whatever is still open, so the next transaction can BEGIN. If COMMIT
                # already ran there is nothing to roll back; the writer's retry is idempotent.
                with contextlib.suppress(sqlite3.Error):
                    await asyncio.shield(_settle(db))
                raise

    async def write(self, group: WriteGroup) -> None:
        """Write one ingest group atomically; ``StorageError`` if SQLite refuses.

        The whole transaction (``BEGIN IMMEDIATE`` … ``COMMIT``, or ``ROLLBACK`` on error) is
        one call in SQLite's thread: one hand-over between threads per group rather than one
        per statement, and a caller cancelled meanwhile cannot leave it half done (the call
        runs to its end before anything queued after it; writing a group again is harmless).
        """
        if self.readonly:
            raise StorageError("store is open read-only")
        db = self.db
        try:
            async with self._write_lock:
                await db._execute(_write_group, db._conn, group)  # noqa: SLF001 (aiosqlite's thread)
        except sqlite3.Error as exc:
            raise StorageError(f"hub database write failed: {exc}") from exc

    async def set_edge_role(self, edge_id: str, role: str | None) -> bool:
        """Record an edge's declared role (home, car, venue:gym …); False if the edge is unknown."""
        async with self.transaction() as db:
            cur = await db.execute("UPDATE edges SET role = ? WHERE edge_id = ?", (role, edge_id))
            return cur.rowcount == 1

    # -- state the hub reloads on start ----------------------------------------------------
    async def load_catalog(self) -> Catalog:
        catalog = Catalog()
        db = self.db
        async with db.execute("SELECT customer_key, customer_id FROM customers") as cur:
            for key, cid in await cur.fetchall():
                catalog.load_customer(key, cid)
        async with db.execute(
            "SELECT e.edge_key, e.edge_id, e.customer_key, c.customer_id FROM edges e JOIN customers c USING (customer_key)"
        ) as cur:
            for row in await cur.fetchall():
                catalog.load_edge(EdgeEntry(*row))
        async with db.execute("SELECT device_key, edge_key, name FROM devices") as cur:
            for key, edge_key, name in await cur.fetchall():
                catalog.load_device(key, edge_key, name)
        async with db.execute("SELECT room_key, edge_key, name FROM rooms") as cur:
            for key, edge_key, name in await cur.fetchall():
                catalog.load_room(key, edge_key, name)
        async with db.execute("SELECT capability, name FROM capabilities") as cur:
            for code, name in await cur.fetchall():
                catalog.load_capability(code, name)
        return catalog

    async def load_progress(self) -> dict[int, EdgeProgress]:
        out: dict[int, EdgeProgress] = {}
        async with self.db.execute("SELECT edge_key, events, duplicates, ranges FROM edge_progress") as cur:
            for edge_key, events, duplicates, ranges in await cur.fetchall():
                out[edge_key] = EdgeProgress(edge_key, SeqRanges.from_json(ranges), events, duplicates)
        # The floor (seqs the edge no longer holds) comes from its last reported status.
        async with self.db.execute(
            "SELECT edge_key, json_extract(status, '$.oldest_seq') FROM edges"
            " WHERE status IS NOT NULL AND json_valid(status)"
        ) as cur:
            for edge_key, oldest in await cur.fetchall():
                if isinstance(oldest, int):
                    out.setdefault(edge_key, EdgeProgress(edge_key)).lower_floor_to(oldest)
        return out

    async def load_context(self) -> dict[str, dict[str, Any]]:
        """Each customer's persisted context state (``ContextFuser.restore`` reads these)."""
        out: dict[str, dict[str, Any]] = {}
        async with self.db.execute(
            "SELECT c.customer_id, s.state FROM context_state s JOIN customers c USING (customer_key)"
        ) as cur:
            for cid, state in await cur.fetchall():
                out[cid] = json.loads(state)
        return out

    # -- queries -----------------------------------------------------------------------------
    async def dead_letter_counts(self) -> dict[str, int]:
        async with self.db.execute("SELECT reason, COUNT(*) FROM dead_letters GROUP BY reason ORDER BY reason") as cur:
            return {reason: int(n) for reason, n in await cur.fetchall()}

    async def dead_letters(self, *, reason: str | None = None, limit: int = 100) -> list[DeadLetter]:
        sql = "SELECT ts, topic, customer_id, edge_id, reason, detail, raw FROM dead_letters"
        args: tuple[Any, ...] = ()
        if reason is not None:
            sql += " WHERE reason = ?"
            args = (reason,)
        sql += " ORDER BY id DESC LIMIT ?"
        async with self.db.execute(sql, (*args, limit)) as cur:
            return [DeadLetter(*row) for row in await cur.fetchall()]

    async def edges(self, *, customer_id: str | None = None, max_gaps: int = 100) -> list[EdgeRecord]:
        sql = """
            SELECT e.edge_id, c.customer_id, COALESCE(e.role, CASE WHEN json_valid(e.status) THEN json_extract(e.status, '$.role') END),
                   e.first_seen, e.last_seen, e.online, e.status_ts,
                   e.backlog, e.version, e.inventory,
                   COALESCE(p.events, 0), COALESCE(p.duplicates, 0), p.ranges
            FROM edges e JOIN customers c USING (customer_key)
            LEFT JOIN edge_progress p USING (edge_key)
        """
        args: tuple[Any, ...] = ()
        if customer_id is not None:
            sql += " WHERE c.customer_id = ?"
            args = (customer_id,)
        sql += " ORDER BY c.customer_id, e.edge_id"
        async with self.db.execute(sql, args) as cur:
            rows = await cur.fetchall()
        out = []
        for (edge_id, cid, role, first, last, online, status_ts, backlog, version, inventory,
             events, dups, ranges_json) in rows:
            ranges = SeqRanges.from_json(ranges_json) if ranges_json else SeqRanges()
            out.append(
                EdgeRecord(
                    edge_id=edge_id, customer_id=cid, role=role, first_seen=first, last_seen=last,
                    online=None if online is None else bool(online), status_ts=status_ts, backlog=backlog,
                    version=version, events=int(events), duplicates=int(dups), high_seq=ranges.high,
                    contiguous=ranges.contiguous, gaps=ranges.gaps(limit=max_gaps),
                    inventory=json.loads(inventory) if inventory else [],
                )
            )
        return out

    async def customers(self) -> list[CustomerRecord]:
        sql = """
            SELECT c.customer_id, c.first_seen, COUNT(e.edge_key), COALESCE(SUM(p.events), 0)
            FROM customers c LEFT JOIN edges e USING (customer_key)
            LEFT JOIN edge_progress p USING (edge_key)
            GROUP BY c.customer_key ORDER BY c.customer_id
        """
        async with self.db.execute(sql) as cur:
            return [CustomerRecord(cid, first, int(n), int(ev)) for cid, first, n, ev in await cur.fetchall()]

    async def feedback_for(self, customer_id: str) -> list[FeedbackRecord]:
        sql = """
            SELECT c.customer_id, f.anticipation_id, f.verdict, f.job, f.ts, f.received
            FROM feedback f JOIN customers c USING (customer_key) WHERE c.customer_id = ? ORDER BY f.id
        """
        async with self.db.execute(sql, (customer_id,)) as cur:
            return [FeedbackRecord(*row) for row in await cur.fetchall()]

    async def events_for(
        self, customer_id: str, *, since: float | None = None, until: float | None = None, limit: int | None = None
    ) -> EventFrame:
        """The customer's events (all their edges) with ``since <= ts < until``, oldest first.

        Scans each edge's key range (there is no ts index: it would slow ingest by a third),
        so keep ``since`` recent for large histories.
        """
        sql = """
            SELECT ev.ts, e.edge_id, ev.seq, d.name, ev.capability, cap.name, ev.value, r.name
            FROM edges e JOIN customers c USING (customer_key)
            JOIN events ev ON ev.edge_key = e.edge_key
            JOIN devices d ON d.device_key = ev.device_key
            JOIN capabilities cap ON cap.capability = ev.capability
            LEFT JOIN rooms r ON r.room_key = ev.room_key
            WHERE c.customer_id = ? AND ev.ts >= ? AND ev.ts < ?
            ORDER BY ev.ts, ev.edge_key, ev.seq
        """
        args: list[Any] = [customer_id, -1.0 if since is None else since, float("inf") if until is None else until]
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        async with self.db.execute(sql, args) as cur:
            rows = await cur.fetchall()
        async with self.db.execute("SELECT capability, name FROM capabilities") as cur:
            capabilities = {int(code): name for code, name in await cur.fetchall()}
        return EventFrame(
            ts=np.fromiter((r[0] for r in rows), dtype=np.float64, count=len(rows)),
            seq=np.fromiter((r[2] for r in rows), dtype=np.int64, count=len(rows)),
            capability_code=np.fromiter((r[4] for r in rows), dtype=np.int64, count=len(rows)),
            edge_id=[r[1] for r in rows],
            device=[r[3] for r in rows],
            capability=[r[5] for r in rows],
            value=[decode_value(r[5], r[6]) for r in rows],
            room=[r[7] for r in rows],
            capabilities=capabilities,
        )

    # -- anticipation (hub.anticipation owns these tables and queries) --------------------------
    async def anticipations_for(self, customer_id: str, *, limit: int = 20) -> list[Any]:
        """The customer's latest ``devices.wire.Anticipation``s, newest first."""
        from .anticipation import anticipations_for

        return await anticipations_for(self, customer_id, limit=limit)

    async def sacrifice_series(self, customer_id: str) -> list[dict[str, Any]]:
        """``{"ts", "market", "job", "sacrifice"}`` per recognised job, oldest first."""
        from .anticipation import sacrifice_series

        return await sacrifice_series(self, customer_id)

    async def current_markets(self) -> dict[str, str]:
        """Each customer's market as their latest anticipation named it."""
        from .anticipation import current_markets

        return await current_markets(self)


def _write_group(db: sqlite3.Connection, g: WriteGroup) -> None:
    """One ingest group in one transaction (runs in SQLite's thread; see ``Store.write``)."""
    db.execute("BEGIN IMMEDIATE")
    try:
        _write_rows(db, g)
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.rollback()
        raise


def _write_rows(db: sqlite3.Connection, g: WriteGroup) -> None:
    new = g.new
    if new.customers:
        db.executemany("INSERT OR IGNORE INTO customers (customer_key, customer_id, first_seen) VALUES (?,?,?)", new.customers)
    if new.edges:
        db.executemany(
            "INSERT OR IGNORE INTO edges (edge_key, edge_id, customer_key, first_seen, last_seen) VALUES (?,?,?,?,?)", new.edges
        )
    if new.devices:
        db.executemany("INSERT OR IGNORE INTO devices (device_key, edge_key, name) VALUES (?,?,?)", new.devices)
    if new.rooms:
        db.executemany("INSERT OR IGNORE INTO rooms (room_key, edge_key, name) VALUES (?,?,?)", new.rooms)
    if g.events:
        # OR IGNORE is a second line of defence: progress already filtered duplicates out.
        db.executemany("INSERT OR IGNORE INTO events VALUES (?,?,?,?,?,?,?)", g.events)
    if g.progress:
        db.executemany(
            "INSERT OR REPLACE INTO edge_progress (edge_key, contiguous, high_seq, events, duplicates, ranges, updated)"
            " VALUES (?,?,?,?,?,?,?)",
            g.progress,
        )
    if g.last_seen:
        db.executemany("UPDATE edges SET last_seen = MAX(last_seen, ?) WHERE edge_key = ?", g.last_seen)
    if g.statuses:
        db.executemany(
            # A status without a role (the last will, an older edge) keeps the role it had.
            "UPDATE edges SET online = ?, status_ts = ?, backlog = ?, version = ?, status = ?, role = COALESCE(?, role),"
            " last_seen = MAX(last_seen, ?) WHERE edge_key = ?",
            g.statuses,
        )
    if g.inventories:
        db.executemany(
            "UPDATE edges SET inventory = ?, last_seen = MAX(last_seen, ?) WHERE edge_key = ?", g.inventories
        )
    if g.dead_letters:
        db.executemany(
            "INSERT INTO dead_letters (ts, topic, customer_id, edge_id, reason, detail, raw) VALUES (?,?,?,?,?,?,?)",
            g.dead_letters,
        )
    if g.feedback:
        db.executemany(
            "INSERT INTO feedback (customer_key, anticipation_id, verdict, job, ts, received) VALUES (?,?,?,?,?,?)",
            g.feedback,
        )
    if g.context:
        db.executemany(
            "INSERT OR REPLACE INTO context_state (customer_key, state, updated) VALUES (?,?,?)", g.context
        )


async def _settle(db: aiosqlite.Connection) -> None:
    await db.execute("SELECT 1")
    if db.in_transaction:
        await db.rollback()
