"""The SQLite outbox: the edge's durable store-and-forward queue (DESIGN.md "Delivery").

Contract:

* ``put`` buffers readings in memory; ``run`` commits them in one transaction every
  ``commit_interval_s`` (50 ms) or as soon as ``commit_max`` (1,000) are waiting. Only a
  committed event counts as accepted: it survives ``kill -9`` (WAL with
  ``synchronous=NORMAL`` survives process crashes; a power cut may lose the last
  transactions, which then never had a seq anyone saw).
* Each committed event gets the next ``seq``: 1-based, one per event, never reused. The
  next seq lives in ``meta`` and is written in the same transaction as the rows, so it
  survives restarts even when every row has been acknowledged and deleted.
* Rows leave only by ``ack`` (the hub committed everything up to a seq), by ``purge``
  (customer erasure) or by overflow. Rows on disk are therefore always the contiguous range
  ``first_seq .. next_seq - 1``.
* What the local subscriber needs to acknowledge device messages only once they are safe
  (``edge.acks``) rides in the same transactions: each ``flush`` closes an ``epoch``, and
  ``durable_epoch`` says which is committed; the keys of recently received messages
  (``note_received``, table ``received``) let a redelivery after a crash be recognised;
  and messages held while discovery comes back (``track_held``, table ``held``) are kept
  on disk exactly as the pipeline holds them, so they are not lost with the process.
* Bounded disk: at most ``max_events`` rows. ``drop_oldest`` deletes the oldest rows (the
  hub sees a gap), ``drop_newest`` refuses new readings (they get no seq); both are counted
  in ``overflow_dropped``, persisted, and logged.

Rows are compact (integer key, REAL ts, interned device/capability/room ids, the value as
SQLite's own INTEGER/REAL/TEXT), about 32 bytes each: 3 million events are ~100 MB.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiosqlite

from devices.errors import StorageError
from devices.readings import Reading

from .backoff import Backoff
from .deadletters import DEAD_LETTERS_SCHEMA, DeadLetters
from .settings import Overflow, OutboxSettings

__all__ = ["HeldMessage", "Outbox", "Row"]

log = logging.getLogger(__name__)

# (seq, ts, device id, capability id, value, room id or None)
Row = tuple[int, float, int, int, Any, int | None]

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS names (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY,
    ts REAL NOT NULL,
    device INTEGER NOT NULL,
    capability INTEGER NOT NULL,
    value NOT NULL,
    room INTEGER
);
CREATE TABLE IF NOT EXISTS received (id INTEGER PRIMARY KEY, key INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS held (id INTEGER PRIMARY KEY, topic TEXT NOT NULL, payload BLOB NOT NULL, ts REAL NOT NULL);
""" + DEAD_LETTERS_SCHEMA

HeldMessage = tuple[str, bytes, float]  # (topic, payload, ts) of a local message waiting for discovery


class Outbox:
    """Durable, bounded, ordered queue of events awaiting the hub's acknowledgement."""

    def __init__(
        self,
        db: aiosqlite.Connection,
        *,
        path: Path,
        max_events: int,
        overflow: Overflow,
        commit_interval_s: float,
        commit_max: int,
        max_pending: int,
        dead_letters: DeadLetters,
        monotonic: Callable[[], float] = time.monotonic,
        received_rows: int = 10_000,
    ) -> None:
        self._db = db
        self.path = path
        self.max_events = max_events
        self.overflow_policy: Overflow = overflow
        self.commit_interval_s = commit_interval_s
        self.commit_max = commit_max
        self.max_pending = max_pending
        self.dead_letters = dead_letters
        self._monotonic = monotonic
        self._lock = asyncio.Lock()
        self._pending: list[tuple[float, str, str, Any, str | None]] = []
        self._first_pending_at = 0.0
        self._wake = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()
        self.next_seq = 1
        self.first_seq = 1  # lowest seq still on disk (== next_seq when empty)
        self.overflow_dropped = 0
        self.last_purge_ts = 0.0
        self.names: list[str] = [""]  # id -> name (id 0 unused)
        self.names_json: list[str] = ['""']  # id -> the name as a JSON string literal
        self._ids: dict[str, int] = {}
        self.on_commit: list[Callable[[], None]] = []  # called after every commit (uplink wakes)
        self.on_overflow: list[Callable[[int], None]] = []  # called with the count just dropped
        self.on_durable: list[Callable[[], None]] = []  # called after every flush, committed or empty
        self.commits = 0
        # Epochs: what was put (or noted) while ``epoch`` was E is on disk once durable_epoch >= E.
        self.epoch = 1
        self.durable_epoch = 0
        self._urgent = False
        self.received_rows = received_rows
        self.received_loaded: list[int] = []  # keys on disk at open, oldest first
        self._received: list[int] = []
        self.held_loaded: list[HeldMessage] = []  # held messages on disk at open
        self._held_source: Callable[[], Sequence[HeldMessage]] | None = None
        self._held_dirty = False

    # ------------------------------------------------------------------ lifecycle

    @classmethod
    @asynccontextmanager
    async def open(
        cls,
        settings: OutboxSettings,
        *,
        dead_letters: DeadLetters | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> AsyncIterator[Outbox]:
        """Open (creating if needed) the outbox at ``settings.path``; commit what is pending on exit."""
        path = Path(settings.path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            db = await aiosqlite.connect(path, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise StorageError(f"cannot open outbox {path}: {exc}") from exc
        try:
            dl = dead_letters or DeadLetters(max_rows=settings.dead_letter_rows)
            box = cls(
                db,
                path=path,
                max_events=settings.max_events,
                overflow=settings.overflow,
                commit_interval_s=settings.commit_interval_s,
                commit_max=settings.commit_max,
                max_pending=settings.max_pending,
                dead_letters=dl,
                monotonic=monotonic,
            )
            await box._setup()
            dl.notify = box.kick
            try:
                yield box
            finally:
                try:
                    async with asyncio.timeout(10.0):
                        await box.flush()
                except (TimeoutError, StorageError) as exc:
                    log.error("outbox %s: last commit on close failed: %r", path, exc)
        finally:
            await db.close()

    async def _setup(self) -> None:
        try:
            await self._db.execute("PRAGMA journal_mode=WAL")
            await self._db.execute("PRAGMA synchronous=NORMAL")
            await self._db.executescript(SCHEMA)
            meta = dict(await self._db.execute_fetchall("SELECT key, value FROM meta"))
            self.next_seq = int(meta.get("next_seq", 1))
            self.overflow_dropped = int(meta.get("overflow_dropped", 0))
            self.dead_letters.persisted_total = int(meta.get("dead_letters", 0))
            self.last_purge_ts = float(meta.get("last_purge_ts", 0.0))
            rows = await self._db.execute_fetchall("SELECT min(seq), max(seq) FROM events")
            lo, hi = next(iter(rows))
            if hi is not None and hi >= self.next_seq:  # cannot happen unless meta was edited by hand
                log.error("outbox %s: max seq %d >= next_seq %d; moving next_seq on", self.path, hi, self.next_seq)
                self.next_seq = int(hi) + 1
            self.first_seq = int(lo) if lo is not None else self.next_seq
            for name_id, name in await self._db.execute_fetchall("SELECT id, name FROM names ORDER BY id"):
                self._intern_loaded(int(name_id), str(name))
            rows = await self._db.execute_fetchall("SELECT key FROM received ORDER BY id")
            self.received_loaded = [int(k) for (k,) in rows]
            rows = await self._db.execute_fetchall("SELECT topic, payload, ts FROM held ORDER BY id")
            self.held_loaded = [(str(t), bytes(p), float(ts)) for t, p, ts in rows]
        except sqlite3.Error as exc:
            raise StorageError(f"cannot open outbox {self.path}: {exc}") from exc
        log.info(
            "outbox %s: %d events queued (seq %d..%d), next seq %d",
            self.path, self.count, self.first_seq, self.next_seq - 1, self.next_seq,
        )

    def _intern_loaded(self, name_id: int, name: str) -> None:
        while len(self.names) <= name_id:
            self.names.append("")
            self.names_json.append('""')
        self.names[name_id] = name
        self.names_json[name_id] = json.dumps(name, ensure_ascii=False)
        self._ids[name] = name_id

    # ------------------------------------------------------------------ producer side

    @property
    def count(self) -> int:
        """Committed events on disk, waiting for the hub's ack."""
        return self.next_seq - self.first_seq

    @property
    def pending(self) -> int:
        """Readings buffered for the next group commit."""
        return len(self._pending)

    @property
    def backlog(self) -> int:
        return self.count + len(self._pending)

    @property
    def last_seq(self) -> int:
        """The highest committed seq (0 before the first)."""
        return self.next_seq - 1

    def put(self, readings: Iterable[Reading]) -> None:
        """Buffer validated readings for the next commit (no await: the hot path).

        Callers should ``await wait_room()`` when ``full`` so memory stays bounded when the
        disk is slower than the devices.
        """
        pending = self._pending
        before = len(pending)
        pending.extend((r.ts, r.device, r.capability, r.value, r.room) for r in readings)
        if before == 0 and pending:
            self._first_pending_at = self._monotonic()
            self._wake.set()
        elif len(pending) >= self.commit_max:
            self._wake.set()
        if len(pending) >= self.max_pending:
            self._room.clear()

    @property
    def full(self) -> bool:
        return len(self._pending) >= self.max_pending

    async def wait_room(self) -> None:
        """Wait until the pending buffer is below ``max_pending``."""
        while len(self._pending) >= self.max_pending:
            self._room.clear()
            await self._room.wait()

    def kick(self) -> None:
        """Ask for a commit within ``commit_interval_s`` even with no readings (dead letters)."""
        if not self._pending and not self._wake.is_set():
            self._first_pending_at = self._monotonic()
        self._wake.set()

    def commit_soon(self) -> None:
        """Ask for a commit now, without waiting for ``commit_interval_s`` or ``commit_max``.

        The local subscriber asks when enough device messages wait for their PUBACK: the
        broker sends only so many unacknowledged, so waiting for more would only wait.
        """
        self._urgent = True
        self.kick()

    def note_received(self, key: int) -> None:
        """Record a received message's key in the next commit (``received_loaded`` after a restart)."""
        self._received.append(key)

    def track_held(self, source: Callable[[], Sequence[HeldMessage]]) -> None:
        """``source()`` is the list of held messages; ``held_changed`` says it changed."""
        self._held_source = source

    def held_changed(self) -> None:
        """The held messages changed: the next commit writes them as they are then."""
        self._held_dirty = True
        self.kick()

    async def run(self) -> None:
        """Group-commit loop; runs until cancelled, then commits what is left (bounded in time)."""
        retry = Backoff(initial=0.5, cap=30.0)
        try:
            while True:
                await self._wake.wait()
                self._wake.clear()
                delay = self._first_pending_at + self.commit_interval_s - self._monotonic()
                if len(self._pending) < self.commit_max and delay > 0 and not self._urgent:
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(delay):
                            await self._wake.wait()
                    self._wake.clear()
                try:
                    await self.flush()
                    retry.reset()
                except StorageError as exc:
                    pause = retry.next()
                    log.error("outbox commit failed, retrying in %.1fs: %s", pause, exc)
                    await asyncio.sleep(pause)
                    self._wake.set()
        finally:
            with contextlib.suppress(TimeoutError, StorageError):
                async with asyncio.timeout(5.0):
                    await self.flush()

    async def flush(self) -> int:
        """Commit every pending reading (and dead letter) now; the number of events queued.

        Closes the current ``epoch``: once this returns, ``durable_epoch`` covers it.
        """
        async with self._lock:
            epoch = self.epoch
            self.epoch += 1
            self._urgent = False
            held_dirty = self._held_dirty and self._held_source is not None
            if (not self._pending and not self.dead_letters.pending and not self.dead_letters.unbuffered
                    and not self._received and not held_dirty):
                self.durable_epoch = epoch  # nothing of this epoch needed the disk
                committed = False
                queued = 0
            else:
                batch, self._pending = self._pending, []
                received, self._received = self._received, []
                held = list(self._held_source()) if held_dirty and self._held_source is not None else None
                self._held_dirty = False
                self._room.set()
                try:
                    queued = await self._commit_to_end(batch, received, held, epoch)
                except sqlite3.Error as exc:
                    self._restore(batch, received, held)
                    with contextlib.suppress(sqlite3.Error):
                        await self._db.execute("ROLLBACK")
                    await self._reload_names()
                    raise StorageError(f"outbox commit failed: {exc}") from exc
                committed = True
        if committed:
            for callback in self.on_commit:
                callback()
        for callback in self.on_durable:
            callback()
        return queued

    def _restore(
        self, batch: list[tuple[float, str, str, Any, str | None]], received: list[int], held: list[HeldMessage] | None
    ) -> None:
        """A commit did not reach the disk: what it carried is pending again, first."""
        self._pending[:0] = batch  # keep order: these came first
        self._received[:0] = received
        if held is not None:
            self._held_dirty = True

    async def _commit_to_end(
        self,
        batch: list[tuple[float, str, str, Any, str | None]],
        received: list[int],
        held: list[HeldMessage] | None,
        epoch: int,
    ) -> int:
        """``_commit``, finished even when the caller is cancelled half-way.

        A commit is all-or-nothing on disk, but ``next_seq`` in memory moves only after it: a
        cancellation between the two (an agent stopped mid-commit) would reuse seqs on the next
        commit (UNIQUE constraint) or leave the transaction open. So the commit runs to its end
        in its own task and the cancellation is honoured afterwards.
        """
        commit = asyncio.ensure_future(self._commit(batch, received, held, epoch))
        try:
            return await asyncio.shield(commit)
        except asyncio.CancelledError:
            if not commit.done():
                await asyncio.wait([commit])
            failed = not commit.cancelled() and commit.exception() is not None
            if commit.cancelled() or failed:
                self._restore(batch, received, held)  # nothing reached the disk: keep it for the last flush
                with contextlib.suppress(sqlite3.Error):
                    if self._db.in_transaction:
                        await self._db.execute("ROLLBACK")
            raise

    async def _commit(
        self,
        batch: list[tuple[float, str, str, Any, str | None]],
        received: list[int],
        held: list[HeldMessage] | None,
        epoch: int,
    ) -> int:
        db = self._db
        n = len(batch)
        count = self.count
        drop_old = skip_new = drop_new = 0
        if count + n > self.max_events:
            if self.overflow_policy == "drop_newest":
                keep = max(0, self.max_events - count)
                drop_new = n - keep
                batch = batch[:keep]
                n = keep
            else:
                excess = count + n - self.max_events
                drop_old = min(excess, count)
                skip_new = excess - drop_old  # a single commit larger than the whole outbox
        seq0 = self.next_seq
        await db.execute("BEGIN")
        new_names: list[tuple[int, str]] = []
        ids = self._ids
        rows: list[Row] = []
        seq = seq0 + skip_new
        for ts, device, capability, value, room in batch[skip_new:]:
            d = ids.get(device) or self._new_name(device, new_names)
            c = ids.get(capability) or self._new_name(capability, new_names)
            r = None if room is None else (ids.get(room) or self._new_name(room, new_names))
            rows.append((seq, ts, d, c, value, r))
            seq += 1
        if new_names:
            await db.executemany("INSERT INTO names (id, name) VALUES (?, ?)", new_names)
        if drop_old:
            await db.execute("DELETE FROM events WHERE seq < ?", (self.first_seq + drop_old,))
        if rows:
            await db.executemany("INSERT INTO events VALUES (?, ?, ?, ?, ?, ?)", rows)
        dropped = drop_old + skip_new + drop_new
        await self.dead_letters.write(db)
        if received:
            await db.executemany("INSERT INTO received (key) VALUES (?)", [(k,) for k in received])
            await db.execute("DELETE FROM received WHERE id <= (SELECT max(id) FROM received) - ?",
                             (self.received_rows,))
        if held is not None:
            await db.execute("DELETE FROM held")
            if held:
                await db.executemany("INSERT INTO held (topic, payload, ts) VALUES (?, ?, ?)", held)
        await db.executemany(
            "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
            [
                ("next_seq", seq0 + n),
                ("overflow_dropped", self.overflow_dropped + dropped),
                ("dead_letters", self.dead_letters.persisted_total),
            ],
        )
        await db.execute("COMMIT")
        self.commits += 1
        self.durable_epoch = epoch
        self.next_seq = seq0 + n
        # Rows stay contiguous: overflow only ever removes a prefix.
        self.first_seq = seq0 + skip_new if skip_new else self.first_seq + drop_old
        if dropped:
            self.overflow_dropped += dropped
            log.warning(
                "outbox full (%d events): %s dropped %d (%d in total)",
                self.max_events, self.overflow_policy, dropped, self.overflow_dropped,
                extra={"overflow_policy": self.overflow_policy, "dropped": dropped},
            )
            for callback in self.on_overflow:
                callback(dropped)
        return n - skip_new

    def _new_name(self, name: str, new_names: list[tuple[int, str]]) -> int:
        name_id = len(self.names)
        self._intern_loaded(name_id, name)
        new_names.append((name_id, name))
        return name_id

    async def _reload_names(self) -> None:
        self.names, self.names_json, self._ids = [""], ['""'], {}
        with contextlib.suppress(sqlite3.Error):
            for name_id, name in await self._db.execute_fetchall("SELECT id, name FROM names ORDER BY id"):
                self._intern_loaded(int(name_id), str(name))

    # ------------------------------------------------------------------ consumer side

    async def read(self, start: int, *, stop: int | None = None, limit: int = 500) -> list[Row]:
        """Committed rows with ``start <= seq < stop``, in seq order, at most ``limit``."""
        stop = self.next_seq if stop is None else min(stop, self.next_seq)
        if stop <= start:
            return []
        async with self._lock:
            try:
                rows = await self._db.execute_fetchall(
                    "SELECT seq, ts, device, capability, value, room FROM events"
                    " WHERE seq >= ? AND seq < ? ORDER BY seq LIMIT ?",
                    (start, stop, limit),
                )
            except sqlite3.Error as exc:
                raise StorageError(f"outbox read failed: {exc}") from exc
        return rows  # type: ignore[return-value]

    async def ack(self, stored_through: int) -> int:
        """Delete every row with ``seq <= stored_through`` (the hub committed them); how many."""
        through = min(stored_through, self.next_seq - 1)
        if through < self.first_seq:
            return 0
        async with self._lock:
            try:
                await self._db.execute("DELETE FROM events WHERE seq <= ?", (through,))
            except sqlite3.Error as exc:
                raise StorageError(f"outbox delete failed: {exc}") from exc
            deleted = through - self.first_seq + 1
            self.first_seq = through + 1
        return deleted

    async def purge(self, *, ts: float | None = None) -> int:
        """Erase every queued event and dead letter (customer erasure); the seq counter stays."""
        async with self._lock:
            dropped_pending = len(self._pending)
            self._pending = []
            self._room.set()
            self.dead_letters.discard_buffered()  # their raw payloads are the customer's too
            try:
                await self._db.execute("BEGIN")
                await self._db.execute("DELETE FROM events")
                await self._db.execute("DELETE FROM dead_letters")
                if ts is not None:
                    await self._db.execute(
                        "INSERT OR REPLACE INTO meta (key, value) VALUES ('last_purge_ts', ?)", (ts,)
                    )
                await self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                with contextlib.suppress(sqlite3.Error):
                    await self._db.execute("ROLLBACK")
                raise StorageError(f"outbox purge failed: {exc}") from exc
            erased = self.count + dropped_pending
            self.first_seq = self.next_seq
            if ts is not None:
                self.last_purge_ts = ts
        log.warning("outbox purged on the hub's request: %d events erased", erased)
        return erased

    async def rebase(self, stored_through: int) -> int:
        """The hub already holds seqs we have not assigned (this edge's database was replaced).

        Renumber the queued rows to follow ``stored_through`` and continue from there, so no
        new event reuses a seq the hub has stored. Returns the shift applied (0 if none).
        """
        if stored_through < self.next_seq:
            return 0
        async with self._lock:
            shift = stored_through + 1 - self.first_seq
            new_next = self.next_seq + shift
            try:
                await self._db.execute("BEGIN")
                # The new range starts above the old one, so no key collides while updating.
                await self._db.execute("UPDATE events SET seq = seq + ?", (shift,))
                await self._db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('next_seq', ?)", (new_next,))
                await self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                with contextlib.suppress(sqlite3.Error):
                    await self._db.execute("ROLLBACK")
                raise StorageError(f"outbox rebase failed: {exc}") from exc
            log.warning(
                "hub holds seqs up to %d but this outbox was at %d: renumbered %d queued events by +%d",
                stored_through, self.next_seq - 1, self.count, shift,
            )
            self.first_seq += shift
            self.next_seq = new_next
        return shift

    async def dead_letter_rows(self, *, limit: int = 1000) -> list[tuple[Any, ...]]:
        """The newest dead letters (ts, source, topic, payload, reason, detail), newest first."""
        async with self._lock:
            rows = await self._db.execute_fetchall(
                "SELECT ts, source, topic, payload, reason, detail FROM dead_letters ORDER BY id DESC LIMIT ?",
                (limit,),
            )
        return list(rows)
