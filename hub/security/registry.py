"""The key registry: broker identities and edge signing keys, in the hub's SQLite database.

Two tables beside the hub's own (created here with ``IF NOT EXISTS``, so a hub database
gains them the first time an edge is provisioned and a hub without them works as before):

* ``broker_users``: one row per broker identity (the hub, each edge) with its customer and
  edge, and the password only as Mosquitto's ``$7$`` PBKDF2-SHA512 hash.
* ``edge_keys``: each edge's HMAC signing keys by key id. The hub must hold the key itself
  to verify an HMAC, so this table is as secret as the keys (keep the database 0600).
  ``expires`` is NULL for the current key; a rotated-out key keeps being accepted until
  its ``expires`` (the grace period for batches already in flight).

Everything here is synchronous ``sqlite3``: the CLI uses it, and the hub's ``KeyRing``
re-reads a few hundred rows at most every ``key_reload_s``, cheaper than a thread hop.
"""

from __future__ import annotations

import logging
import secrets
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from urllib.parse import quote

from devices.errors import ConfigError, StorageError
from devices.signing import new_key
from devices.topics import validate_id

from .passwords import hash_password

__all__ = [
    "REGISTRY_SCHEMA",
    "BrokerUser",
    "EdgeCredentials",
    "EdgeKeys",
    "KeyRing",
    "add_hub_user",
    "broker_users",
    "load_keys",
    "provision_edge",
    "rotate_key",
]

log = logging.getLogger(__name__)

REGISTRY_SCHEMA = """
CREATE TABLE IF NOT EXISTS broker_users (
    username      TEXT PRIMARY KEY,
    role          TEXT NOT NULL CHECK (role IN ('hub', 'edge')),
    customer_id   TEXT,
    edge_id       TEXT UNIQUE,
    password_hash TEXT NOT NULL,
    created       REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS edge_keys (
    key_id  TEXT PRIMARY KEY,
    edge_id TEXT NOT NULL,
    secret  BLOB NOT NULL,
    created REAL NOT NULL,
    expires REAL
);
CREATE INDEX IF NOT EXISTS edge_keys_edge ON edge_keys(edge_id);
"""


@dataclass(frozen=True, slots=True)
class BrokerUser:
    username: str
    role: Literal["hub", "edge"]
    customer_id: str | None
    edge_id: str | None
    password_hash: str


@dataclass(frozen=True, slots=True)
class EdgeCredentials:
    """What ``provision_edge`` hands out once: the broker login and the signing key."""

    customer_id: str
    edge_id: str
    username: str
    password: str
    key_id: str
    key: bytes

    def as_dict(self) -> dict[str, str]:
        return {
            "customer_id": self.customer_id, "edge_id": self.edge_id, "username": self.username,
            "password": self.password, "key_id": self.key_id, "key": self.key.hex(),
        }


@dataclass(slots=True)
class EdgeKeys:
    """One edge's customer and the signing keys the hub accepts now (key id → key, expiry)."""

    customer_id: str
    keys: dict[str, tuple[bytes, float | None]] = field(default_factory=dict)

    def valid(self, now: float) -> dict[str, bytes]:
        return {kid: key for kid, (key, expires) in self.keys.items() if expires is None or expires > now}


@contextmanager
def _connect(path: Path | str, *, create: bool) -> Iterator[sqlite3.Connection]:
    path = Path(path)
    if not create and not path.is_file():
        raise StorageError(f"no hub database at {path}")
    try:
        db = sqlite3.connect(path, timeout=10.0, isolation_level=None)
    except sqlite3.Error as exc:
        raise StorageError(f"cannot open hub database {path}: {exc}") from exc
    try:
        if create:
            db.execute("PRAGMA journal_mode = WAL")
            db.executescript(REGISTRY_SCHEMA)
        yield db
    except sqlite3.Error as exc:
        raise StorageError(f"key registry in {path}: {exc}") from exc
    finally:
        db.close()


def _key_id(edge_id: str) -> str:
    # Unique across the registry, readable in dead letters; never reused (random part).
    return f"{edge_id[:40]}.{secrets.token_hex(4)}"


def add_hub_user(path: Path | str, *, username: str = "genius-hub", password: str | None = None) -> tuple[str, str]:
    """Create (or replace) the hub's broker identity; returns ``(username, password)``."""
    password = password or secrets.token_urlsafe(24)
    with _connect(path, create=True) as db:
        db.execute(
            "INSERT OR REPLACE INTO broker_users (username, role, customer_id, edge_id, password_hash, created)"
            " VALUES (?, 'hub', NULL, NULL, ?, ?)",
            (username, hash_password(password), time.time()),
        )
    return username, password


def provision_edge(path: Path | str, *, customer_id: str, edge_id: str, now: float | None = None) -> EdgeCredentials:
    """Register an edge: a broker login (username = edge id) and a first signing key.

    ``ConfigError`` if the ids are malformed or the edge is already provisioned (use
    ``rotate_key`` for a new key). The password and key are returned once, never stored
    in the clear (the password) or shown again.
    """
    try:
        validate_id(customer_id, what="customer id")
        validate_id(edge_id, what="edge id")
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    now = time.time() if now is None else now
    password = secrets.token_urlsafe(24)
    key, key_id = new_key(), _key_id(edge_id)
    with _connect(path, create=True) as db:
        try:
            db.execute("BEGIN IMMEDIATE")
            db.execute(
                "INSERT INTO broker_users (username, role, customer_id, edge_id, password_hash, created)"
                " VALUES (?, 'edge', ?, ?, ?, ?)",
                (edge_id, customer_id, edge_id, hash_password(password), now),
            )
            db.execute("INSERT INTO edge_keys (key_id, edge_id, secret, created, expires) VALUES (?,?,?,?,NULL)",
                       (key_id, edge_id, key, now))
            db.execute("COMMIT")
        except sqlite3.IntegrityError as exc:
            db.execute("ROLLBACK")
            raise ConfigError(f"edge {edge_id!r} (or user {edge_id!r}) is already provisioned") from exc
    log.info("provisioned edge %s for customer %s (key %s)", edge_id, customer_id, key_id)
    return EdgeCredentials(customer_id, edge_id, edge_id, password, key_id, key)


def rotate_key(path: Path | str, *, edge_id: str, grace_s: float = 3600.0, now: float | None = None) -> tuple[str, bytes]:
    """Give an edge a new current key; its old keys stay valid for ``grace_s``. ``(key_id, key)``."""
    now = time.time() if now is None else now
    key, key_id = new_key(), _key_id(edge_id)
    with _connect(path, create=True) as db:
        db.execute("BEGIN IMMEDIATE")
        row = db.execute("SELECT 1 FROM broker_users WHERE edge_id = ? AND role = 'edge'", (edge_id,)).fetchone()
        if row is None:
            db.execute("ROLLBACK")
            raise ConfigError(f"edge {edge_id!r} is not provisioned")
        db.execute(
            "UPDATE edge_keys SET expires = MIN(COALESCE(expires, ?), ?) WHERE edge_id = ?",
            (now + grace_s, now + grace_s, edge_id),
        )
        db.execute("DELETE FROM edge_keys WHERE edge_id = ? AND expires IS NOT NULL AND expires <= ?", (edge_id, now))
        db.execute("INSERT INTO edge_keys (key_id, edge_id, secret, created, expires) VALUES (?,?,?,?,NULL)",
                   (key_id, edge_id, key, now))
        db.execute("COMMIT")
    log.info("rotated signing key of edge %s to %s (old keys valid %.0fs more)", edge_id, key_id, grace_s)
    return key_id, key


def broker_users(path: Path | str) -> list[BrokerUser]:
    """Every broker identity (hub first), for the password and ACL files."""
    with _connect(path, create=True) as db:
        rows = db.execute(
            "SELECT username, role, customer_id, edge_id, password_hash FROM broker_users"
            " ORDER BY role DESC, customer_id, edge_id"
        ).fetchall()
    return [BrokerUser(*row) for row in rows]


def load_keys(path: Path | str) -> dict[str, EdgeKeys]:
    """edge id → its customer and keys; empty if the database has no registry (yet)."""
    path = Path(path)
    if not path.is_file():
        return {}
    try:
        db = sqlite3.connect(f"file:{quote(str(path.resolve()))}?mode=ro", uri=True, timeout=5.0)
    except sqlite3.Error as exc:
        raise StorageError(f"cannot open hub database {path}: {exc}") from exc
    try:
        rows = db.execute(
            "SELECT u.edge_id, u.customer_id, k.key_id, k.secret, k.expires FROM broker_users u"
            " LEFT JOIN edge_keys k ON k.edge_id = u.edge_id WHERE u.role = 'edge'"
        ).fetchall()
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return {}
        raise StorageError(f"cannot read the key registry in {path}: {exc}") from exc
    finally:
        db.close()
    out: dict[str, EdgeKeys] = {}
    for edge_id, customer_id, key_id, secret, expires in rows:
        entry = out.setdefault(edge_id, EdgeKeys(customer_id))
        if key_id is not None:
            entry.keys[key_id] = (bytes(secret), expires)
    return out


class KeyRing:
    """The hub's view of the registry, re-read at most every ``reload_s`` (and on demand).

    ``source`` is a seam: tests pass a function returning the mapping; the hub passes
    ``lambda: load_keys(db_path)``.
    """

    def __init__(
        self,
        source: Callable[[], dict[str, EdgeKeys]],
        *,
        reload_s: float = 5.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._source = source
        self.reload_s = reload_s
        self._monotonic = monotonic
        self._edges: dict[str, EdgeKeys] = {}
        self._loaded = float("-inf")
        self.reloads = 0
        self.reload_errors = 0

    def get(self, edge_id: str) -> EdgeKeys | None:
        """The edge's registry entry (None: not provisioned), refreshing if it is stale."""
        if self._monotonic() - self._loaded >= self.reload_s:
            self.reload()
        return self._edges.get(edge_id)

    def refresh_for(self, edge_id: str, key_id: str) -> EdgeKeys | None:
        """Re-read now if ``key_id`` is unknown and the last read is older than a second."""
        entry = self._edges.get(edge_id)
        if (entry is None or key_id not in entry.keys) and self._monotonic() - self._loaded >= min(1.0, self.reload_s):
            self.reload()
        return self._edges.get(edge_id)

    def reload(self) -> None:
        self._loaded = self._monotonic()
        try:
            self._edges = self._source()
            self.reloads += 1
        except StorageError:  # keep the keys we have: a locked database must not open the door
            self.reload_errors += 1
            log.exception("could not re-read the key registry; keeping the previous keys")

    def __len__(self) -> int:
        return len(self._edges)
