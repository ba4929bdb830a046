"""Customer data rights: export everything held about one customer, and erase it.

Which tables hold customer data is *discovered*, not listed: a table is personal when it has
one of the identity columns ``customer_key``, ``customer_id``, ``edge_key``, ``edge_id``, and
a row belongs to a customer when any of them names the customer or one of the customer's
edges. So a table another part of the hub adds later (anticipations, personal layers, audit,
the security key registry) is exported and erased with no change here. A table with none of
those columns must be declared in ``NON_PERSONAL``; ``unclassified_tables`` lists any that is
neither, and a test fails on it.

Erasure (``forget_customer``) deletes every personal row of the customer in one transaction
and leaves one row in ``erasures``: when, a SHA-256 of the customer id (``subject_hash``:
pseudonymous, enough to answer "was X erased?" by hashing X again, not to list who was),
row counts per table, and — only until the broker side is done — the edge ids whose topics
must be cleared. The broker side (``clear_broker``) sends each edge ``{"command":"purge"}``
(QoS 1, not retained: the edge's session is persistent, and a retained purge would purge
again on every reconnect) and clears the customer's retained ``status``/``devices``/``ack``
and ``anticipations`` with empty retained payloads.

A running hub holds the customer in memory (catalog keys, progress, context, acks). It polls
``erasures`` (``ErasureWatcher``): for a record it has not applied it drops the customer from
memory, erases again by the keys it held (rows committed between the CLI's erasure and the
drop), clears the broker through its own connection, and marks the record applied. The
operator's authority is write access to the hub database, the same as for provisioning.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

import aiosqlite

from devices.topics import PREFIX, ack_topic, anticipations_topic, control_topic, devices_topic, status_topic

from .store import Store, decode_value

__all__ = [
    "ERASURES_SCHEMA",
    "EXPORT_SCHEMA",
    "IDENTITY_COLUMNS",
    "NON_PERSONAL",
    "CustomerTable",
    "ErasureReport",
    "ErasureWatcher",
    "Publish",
    "Subject",
    "clear_broker",
    "customer_tables",
    "erase_rows",
    "export_customer",
    "forget_customer",
    "mark_broker_cleared",
    "pending_erasures",
    "record_access",
    "subject_hash",
    "subject_of",
    "unclassified_tables",
]

log = logging.getLogger(__name__)

EXPORT_SCHEMA = "genius.customer-export/1"
IDENTITY_COLUMNS: tuple[str, ...] = ("customer_key", "customer_id", "edge_key", "edge_id")
# Tables with no identity column, each for a reason: shared dictionaries, operators' API
# tokens (staff, not customers), and the erasure log itself (a hash and counts once the
# broker side is done).
NON_PERSONAL: frozenset[str] = frozenset({"capabilities", "api_tokens", "erasures"})
# Columns never written to an export: credentials of the customer's edges.
REDACTED: frozenset[str] = frozenset({"secret", "password_hash", "password"})
# Rendered in their own sections (decoded), not repeated raw under "tables".
_RENDERED = frozenset({"events", "context_state"})

ERASURES_SCHEMA = """
CREATE TABLE IF NOT EXISTS erasures (
    id          INTEGER PRIMARY KEY,
    ts          REAL NOT NULL,
    subject     TEXT NOT NULL,      -- sha256 of the customer id
    rows        TEXT NOT NULL,      -- JSON {table: rows deleted}
    edges       TEXT,               -- JSON [edge_id] whose broker topics still need clearing; NULL once done
    hub_applied REAL                -- when a running hub dropped the customer from memory
);
"""


def subject_hash(customer_id: str) -> str:
    return hashlib.sha256(customer_id.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class CustomerTable:
    """A personal table and the identity columns its rows are matched on."""

    name: str
    columns: tuple[str, ...]
    identity: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Subject:
    """One customer's identities in the database: the key, and their edges' keys and ids."""

    customer_id: str
    customer_key: int | None
    edge_keys: tuple[int, ...] = ()
    edge_ids: tuple[str, ...] = ()

    def where(self, table: CustomerTable) -> tuple[str, list[Any]]:
        """``WHERE`` clause matching the subject's rows of ``table`` (any identity column)."""
        terms: list[str] = []
        args: list[Any] = []
        values: dict[str, tuple[Any, ...]] = {
            "customer_key": () if self.customer_key is None else (self.customer_key,),
            "customer_id": (self.customer_id,),
            "edge_key": self.edge_keys,
            "edge_id": self.edge_ids,
        }
        for col in table.identity:
            vals = values[col]
            if vals:
                terms.append(f'"{col}" IN ({",".join("?" * len(vals))})')
                args.extend(vals)
        if "topic" in table.columns:
            # A dead letter too broken to name its customer still came on the customer's topic.
            escaped = self.customer_id.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            terms.append("\"topic\" LIKE ? ESCAPE '\\'")
            args.append(f"{PREFIX}/{escaped}/%")
        return (" OR ".join(terms) or "0"), args


@dataclass(frozen=True, slots=True)
class ErasureReport:
    erasure_id: int
    customer_id: str
    subject: str
    ts: float
    edges: tuple[str, ...]
    rows: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "erasure_id": self.erasure_id, "customer_id": self.customer_id, "subject": self.subject,
            "ts": self.ts, "edges": list(self.edges), "rows": self.rows, "total": sum(self.rows.values()),
        }


async def _tables(db: aiosqlite.Connection) -> dict[str, tuple[str, ...]]:
    async with db.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
    ) as cur:
        names = [row[0] for row in await cur.fetchall()]
    out: dict[str, tuple[str, ...]] = {}
    for name in names:
        async with db.execute(f'PRAGMA table_info("{name}")') as cur:
            out[name] = tuple(row[1] for row in await cur.fetchall())
    return out


async def customer_tables(db: aiosqlite.Connection) -> list[CustomerTable]:
    """Every table with an identity column, in name order."""
    out = []
    for name, columns in (await _tables(db)).items():
        identity = tuple(c for c in IDENTITY_COLUMNS if c in columns)
        if identity:
            out.append(CustomerTable(name, columns, identity))
    return out


async def unclassified_tables(db: aiosqlite.Connection) -> list[str]:
    """Tables neither personal (no identity column) nor declared ``NON_PERSONAL``: must be empty."""
    return [
        name for name, columns in (await _tables(db)).items()
        if name not in NON_PERSONAL and not any(c in columns for c in IDENTITY_COLUMNS)
    ]


async def subject_of(
    db: aiosqlite.Connection, customer_id: str, *, edge_keys: Iterable[int] = (), edge_ids: Iterable[str] = (),
) -> Subject:
    """The customer's identities as the database holds them, plus any the caller knows of."""
    async with db.execute("SELECT customer_key FROM customers WHERE customer_id = ?", (customer_id,)) as cur:
        row = await cur.fetchone()
    key = int(row[0]) if row else None
    keys, ids = set(edge_keys), set(edge_ids)
    if key is not None:
        async with db.execute("SELECT edge_key, edge_id FROM edges WHERE customer_key = ?", (key,)) as cur:
            for edge_key, edge_id in await cur.fetchall():
                keys.add(int(edge_key))
                ids.add(edge_id)
    return Subject(customer_id, key, tuple(sorted(keys)), tuple(sorted(ids)))


# -- export -------------------------------------------------------------------------------------
def _jsonable(column: str, value: Any) -> Any:
    if column in REDACTED:
        return "[redacted]"
    if isinstance(value, bytes):
        try:
            return value.decode()
        except UnicodeDecodeError:
            return {"base64": base64.b64encode(value).decode()}
    return value


async def export_customer(store: Store, customer_id: str, *, now: float | None = None) -> dict[str, Any]:
    """One JSON-ready document of everything the hub holds about ``customer_id``.

    Sections: ``events`` (decoded, canonical values), ``context`` (the persisted digital
    context), ``feedback``, ``edges`` (with status and device inventory), ``privacy`` (each
    edge's per-device policy from its inventory), ``dead_letters``, and ``tables``: every
    personal table's rows (credentials redacted), so tables added later are included.
    ``found`` is False when the hub holds nothing about the customer.
    """
    db = store.db
    subject = await subject_of(db, customer_id)
    events = await store.events_for(customer_id)
    tables: dict[str, list[dict[str, Any]]] = {}
    for table in await customer_tables(db):
        if table.name in _RENDERED:
            continue
        where, args = subject.where(table)
        async with db.execute(f'SELECT * FROM "{table.name}" WHERE {where}', args) as cur:
            rows = await cur.fetchall()
        tables[table.name] = [{c: _jsonable(c, v) for c, v in zip(table.columns, row)} for row in rows]
    context: dict[str, Any] | None = None
    if subject.customer_key is not None:
        async with db.execute(
            "SELECT state, updated FROM context_state WHERE customer_key = ?", (subject.customer_key,)
        ) as cur:
            row = await cur.fetchone()
        if row is not None:
            context = {"state": json.loads(row[0]), "updated": row[1]}
    edges = await store.edges(customer_id=customer_id)
    return {
        "schema": EXPORT_SCHEMA,
        "customer_id": customer_id,
        "exported_at": time.time() if now is None else now,
        "found": subject.customer_key is not None or any(tables.values()),
        "edges": [
            {
                "edge_id": e.edge_id, "role": e.role, "first_seen": e.first_seen, "last_seen": e.last_seen,
                "online": e.online, "version": e.version, "events": e.events, "inventory": e.inventory,
            }
            for e in edges
        ],
        "privacy": {
            e.edge_id: {d.get("device", "?"): d.get("privacy", {}) for d in e.inventory} for e in edges
        },
        "events": [
            {"ts": ts, "edge_id": edge, "seq": seq, "device": dev, "capability": cap, "value": value, "room": room}
            for ts, edge, seq, dev, cap, value, room in events.rows()
        ],
        "context": context,
        "feedback": tables.get("feedback", []),
        "dead_letters": tables.get("dead_letters", []),
        "tables": tables,
    }


async def record_access(
    store: Store, customer_id: str, *, resource: str, actor: str, detail: str = "", now: float | None = None
) -> bool:
    """Write an operator access (an export) to ``audit_log``; False if the database has none.

    The CLI has no API token: ``token_id`` is ``"cli"`` and the name is the operator's login.
    """
    async with store.transaction() as db:
        async with db.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'audit_log'") as cur:
            if await cur.fetchone() is None:
                return False
        await db.execute(
            "INSERT INTO audit_log (ts, token_id, token_name, role, customer_id, resource, detail)"
            " VALUES (?,?,?,?,?,?,?)",
            (time.time() if now is None else now, "cli", actor, "operator", customer_id, resource, detail),
        )
    return True


# -- erasure ------------------------------------------------------------------------------------
async def erase_rows(db: aiosqlite.Connection, subject: Subject) -> dict[str, int]:
    """Delete the subject's rows from every personal table (inside the caller's transaction)."""
    deleted: dict[str, int] = {}
    for table in await customer_tables(db):
        where, args = subject.where(table)
        cur = await db.execute(f'DELETE FROM "{table.name}" WHERE {where}', args)
        if cur.rowcount:
            deleted[table.name] = cur.rowcount
    return deleted


async def forget_customer(
    store: Store,
    customer_id: str,
    *,
    edge_keys: Iterable[int] = (),
    edge_ids: Iterable[str] = (),
    now: float | None = None,
    hub_applied: bool = False,
) -> ErasureReport:
    """Erase the customer from every personal table in one transaction and log the erasure.

    ``edge_keys``/``edge_ids`` add identities the caller knows of beyond the database (a
    running hub's memory). ``hub_applied`` marks the record as already applied by the hub.
    """
    ts = time.time() if now is None else now
    async with store.transaction() as db:
        await db.execute(ERASURES_SCHEMA)
        # Edges an earlier erasure of the customer could not clear on the broker yet carry over.
        async with db.execute(
            "SELECT id, edges FROM erasures WHERE subject = ? AND edges IS NOT NULL", (subject_hash(customer_id),)
        ) as cur:
            earlier = await cur.fetchall()
        carried = [e for _, edges in earlier for e in json.loads(edges)]
        await db.executemany("UPDATE erasures SET edges = NULL WHERE id = ?", [(i,) for i, _ in earlier])
        subject = await subject_of(db, customer_id, edge_keys=edge_keys, edge_ids=[*edge_ids, *carried])
        rows = await erase_rows(db, subject)
        cur = await db.execute(
            "INSERT INTO erasures (ts, subject, rows, edges, hub_applied) VALUES (?,?,?,?,?)",
            (ts, subject_hash(customer_id), json.dumps(rows, sort_keys=True),
             json.dumps(list(subject.edge_ids)) if subject.edge_ids else None, ts if hub_applied else None),
        )
        erasure_id = int(cur.lastrowid or 0)
    log.warning(
        "erased customer %s: %d rows from %d tables (erasure %d)",
        subject_hash(customer_id)[:12], sum(rows.values()), len(rows), erasure_id,
    )
    return ErasureReport(erasure_id, customer_id, subject_hash(customer_id), ts, subject.edge_ids, rows)


async def mark_broker_cleared(store: Store, erasure_id: int) -> None:
    """Forget the edge ids of an erasure once its broker topics are cleared."""
    async with store.transaction() as db:
        await db.execute("UPDATE erasures SET edges = NULL WHERE id = ?", (erasure_id,))


async def pending_erasures(db: aiosqlite.Connection) -> list[tuple[int, str, list[str]]]:
    """``(id, subject, edge_ids)`` of erasures a running hub has not applied yet."""
    async with db.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'erasures'"
    ) as cur:
        if await cur.fetchone() is None:
            return []
    async with db.execute("SELECT id, subject, edges FROM erasures WHERE hub_applied IS NULL ORDER BY id") as cur:
        return [(int(i), s, json.loads(e) if e else []) for i, s, e in await cur.fetchall()]


# -- broker side ----------------------------------------------------------------------------------
class Publish(Protocol):
    def __call__(self, topic: str, payload: bytes, *, qos: int, retain: bool) -> Awaitable[None]: ...


async def clear_broker(publish: Publish, customer_id: str, edge_ids: Iterable[str], *, now: float | None = None) -> int:
    """Tell each edge to purge its outbox and clear the customer's retained topics; returns publishes.

    The purge is QoS 1 and not retained (edges keep a persistent session, so one that is away
    gets it on reconnect); each retained topic is cleared with an empty retained payload.
    """
    ts = time.time() if now is None else now
    purge = json.dumps({"command": "purge", "ts": ts}).encode()
    n = 0
    for edge_id in edge_ids:
        await publish(control_topic(customer_id, edge_id), purge, qos=1, retain=False)
        for topic in (status_topic(customer_id, edge_id), devices_topic(customer_id, edge_id),
                      ack_topic(customer_id, edge_id)):
            await publish(topic, b"", qos=1, retain=True)
        n += 4
    await publish(anticipations_topic(customer_id), b"", qos=1, retain=True)
    return n + 1


# -- the running hub ----------------------------------------------------------------------------
class HubMemory(Protocol):
    """What a running hub holds about customers in memory (``hub.service.Hub`` provides it)."""

    store: Store

    def drop_customer(self, customer_id: str) -> tuple[list[int], list[str]]: ...

    def customer_ids(self) -> list[str]: ...

    @property
    def publish(self) -> Publish | None: ...


class ErasureWatcher:
    """Applies erasures to a running hub: drop from memory, erase again, clear the broker.

    A group the hub sealed before the drop may commit rows under the old keys after the
    first pass, so the keys are kept and erased again for ``settle_s`` (every poll).
    """

    def __init__(self, hub: HubMemory, *, poll_s: float = 2.0, settle_s: float = 10.0,
                 clock: Callable[[], float] = time.time) -> None:
        self.hub = hub
        self.poll_s = poll_s
        self.settle_s = settle_s
        self._clock = clock
        self._settling: dict[str, tuple[float, list[int], list[str]]] = {}
        self.applied = 0

    async def run(self) -> None:
        while True:
            try:
                await self.poll()
            except Exception:  # a failing poll must not stop ingest; the next one retries
                log.exception("erasure watcher poll failed")
            await asyncio.sleep(self.poll_s)

    async def poll(self) -> int:
        """Apply every pending erasure once; returns how many were applied."""
        store = self.hub.store
        pending = await pending_erasures(store.db)
        by_hash = {subject_hash(c): c for c in self.hub.customer_ids()} if pending else {}
        applied = 0
        for erasure_id, subject, edges in pending:
            customer_id = by_hash.get(subject)
            if customer_id is not None:
                keys, ids = self.hub.drop_customer(customer_id)
                self._settling[customer_id] = (self._clock() + self.settle_s, keys, sorted({*ids, *edges}))
                await self._erase(customer_id, keys, ids)
            if edges and customer_id is not None and await self._clear(customer_id, edges):
                await mark_broker_cleared(store, erasure_id)
            async with store.transaction() as db:
                await db.execute("UPDATE erasures SET hub_applied = ? WHERE id = ?", (self._clock(), erasure_id))
            applied += 1
        now = self._clock()
        for customer_id, (until, keys, ids) in list(self._settling.items()):
            await self._erase(customer_id, keys, ids)
            if now >= until:
                del self._settling[customer_id]
        self.applied += applied
        return applied

    async def _erase(self, customer_id: str, keys: list[int], ids: list[str]) -> None:
        async with self.hub.store.transaction() as db:
            subject = await subject_of(db, customer_id, edge_keys=keys, edge_ids=ids)
            rows = await erase_rows(db, subject)
        if rows:
            log.info("erasure of %s: %d late rows removed", subject_hash(customer_id)[:12], sum(rows.values()))

    async def _clear(self, customer_id: str, edges: list[str]) -> bool:
        publish = self.hub.publish
        if publish is None:
            return False
        try:
            await clear_broker(publish, customer_id, edges, now=self._clock())
        except Exception as exc:  # noqa: BLE001 - not connected now: the CLI or a later poll clears it
            log.warning("erasure: could not clear broker topics (%s)", exc)
            return False
        return True
