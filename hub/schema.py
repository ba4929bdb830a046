"""The hub's SQLite schema as an ordered list of migrations.

``PRAGMA user_version`` records how many migrations a database has had. Later work adds a
table by appending a ``Migration`` (never by editing one that has shipped).

Every key is an integer handed out in insertion order (DESIGN.md, "Identities"): events are
keyed ``(edge_key, seq)`` in a ``WITHOUT ROWID`` table, so a batch from one edge appends to
the end of one b-tree range. Names (edges, devices, rooms, capabilities) live in small
dictionary tables. ``events.value`` uses SQLite's dynamic typing: 0/1 for boolean
capabilities, REAL for numbers, TEXT for text; the capability says how to read it back.
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["MIGRATIONS", "Migration", "SCHEMA_VERSION"]


class Migration(NamedTuple):
    version: int
    name: str
    sql: str


_INITIAL = """
CREATE TABLE customers (
    customer_key INTEGER PRIMARY KEY,
    customer_id  TEXT NOT NULL UNIQUE,
    first_seen   REAL NOT NULL
);
CREATE TABLE edges (
    edge_key     INTEGER PRIMARY KEY,
    edge_id      TEXT NOT NULL UNIQUE,
    customer_key INTEGER NOT NULL REFERENCES customers(customer_key),
    role         TEXT,
    first_seen   REAL NOT NULL,
    last_seen    REAL NOT NULL,
    online       INTEGER,             -- NULL until a status arrives
    status_ts    REAL,
    backlog      INTEGER,
    version      TEXT,
    status       TEXT,                -- last EdgeStatus JSON
    inventory    TEXT                 -- last list of DeviceProfile JSON
);
CREATE INDEX edges_customer ON edges(customer_key);
CREATE TABLE capabilities (
    capability INTEGER PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE
);
CREATE TABLE devices (
    device_key INTEGER PRIMARY KEY,
    edge_key   INTEGER NOT NULL REFERENCES edges(edge_key),
    name       TEXT NOT NULL,
    UNIQUE (edge_key, name)
);
CREATE TABLE rooms (
    room_key INTEGER PRIMARY KEY,
    edge_key INTEGER NOT NULL REFERENCES edges(edge_key),
    name     TEXT NOT NULL,
    UNIQUE (edge_key, name)
);
CREATE TABLE events (
    edge_key   INTEGER NOT NULL,
    seq        INTEGER NOT NULL,
    ts         REAL NOT NULL,
    device_key INTEGER NOT NULL,
    capability INTEGER NOT NULL,
    value,
    room_key   INTEGER,
    PRIMARY KEY (edge_key, seq)
) WITHOUT ROWID;
-- Per edge: the stored seq ranges (an interval set, JSON [[from,to],...]) and counters,
-- written in the same transaction as the events they describe.
CREATE TABLE edge_progress (
    edge_key   INTEGER PRIMARY KEY REFERENCES edges(edge_key),
    contiguous INTEGER NOT NULL,
    high_seq   INTEGER NOT NULL,
    events     INTEGER NOT NULL,
    duplicates INTEGER NOT NULL,
    ranges     TEXT NOT NULL,
    updated    REAL NOT NULL
);
CREATE TABLE dead_letters (
    id          INTEGER PRIMARY KEY,
    ts          REAL NOT NULL,
    topic       TEXT NOT NULL,
    customer_id TEXT,
    edge_id     TEXT,
    reason      TEXT NOT NULL,
    detail      TEXT NOT NULL,
    raw         BLOB NOT NULL
);
CREATE INDEX dead_letters_reason ON dead_letters(reason);
CREATE TABLE feedback (
    id              INTEGER PRIMARY KEY,
    customer_key    INTEGER NOT NULL REFERENCES customers(customer_key),
    anticipation_id TEXT NOT NULL,
    verdict         TEXT NOT NULL,
    job             TEXT,
    ts              REAL NOT NULL,
    received        REAL NOT NULL
);
CREATE INDEX feedback_customer ON feedback(customer_key, ts);
-- The digital context of each customer, as the fuser last saw it (rebuilt from here on start).
CREATE TABLE context_state (
    customer_key INTEGER PRIMARY KEY REFERENCES customers(customer_key),
    state        TEXT NOT NULL,
    updated      REAL NOT NULL
);
"""

# Operator API (hub.http): bearer tokens (only a hash of each is kept) and the audit log of
# reads of customer data. Audit rows carry customer_id so export/erase find them.
_OPERATOR = """
CREATE TABLE api_tokens (
    token_key  INTEGER PRIMARY KEY,
    token_id   TEXT NOT NULL UNIQUE,   -- public part of the token, names it in the audit log
    name       TEXT NOT NULL,
    role       TEXT NOT NULL CHECK (role IN ('operator', 'viewer')),
    hash       TEXT NOT NULL,          -- sha256 of the whole token, hex
    created    REAL NOT NULL,
    revoked    REAL
);
CREATE TABLE audit_log (
    id          INTEGER PRIMARY KEY,
    ts          REAL NOT NULL,
    token_id    TEXT NOT NULL,
    token_name  TEXT NOT NULL,
    role        TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    resource    TEXT NOT NULL,         -- context, events, anticipations, stream …
    detail      TEXT NOT NULL DEFAULT ''
);
CREATE INDEX audit_log_customer ON audit_log(customer_id, ts);
"""

# Anticipation (hub.anticipation, hub.markets, hub.personalisation). Every table carries
# customer_id so export/erase (hub.rights) find the rows with no change there.
_ANTICIPATION = """
CREATE TABLE anticipations (
    seq         INTEGER PRIMARY KEY,
    id          TEXT NOT NULL UNIQUE,   -- Anticipation.id (what feedback names)
    customer_id TEXT NOT NULL,
    market      TEXT NOT NULL,
    ts          REAL NOT NULL,
    model       TEXT NOT NULL,
    jobs        TEXT NOT NULL,          -- JSON list of JobForecast
    context     TEXT NOT NULL,          -- JSON: personal-layer context (hour, last_job, since)
    latency_s   REAL                    -- newest committed event that triggered it to publish
);
CREATE INDEX anticipations_customer ON anticipations(customer_id, ts);
CREATE TABLE recognised_jobs (
    id          INTEGER PRIMARY KEY,
    customer_id TEXT NOT NULL,
    market      TEXT NOT NULL,
    job         TEXT NOT NULL,
    begin       REAL NOT NULL,
    probability REAL NOT NULL           -- recognition head's probability when it switched
);
CREATE INDEX recognised_jobs_customer ON recognised_jobs(customer_id, begin);
CREATE TABLE sacrifice (
    id              INTEGER PRIMARY KEY,
    customer_id     TEXT NOT NULL,
    market          TEXT NOT NULL,
    ts              REAL NOT NULL,
    job             TEXT NOT NULL,
    anticipation_id TEXT NOT NULL,
    probability     REAL NOT NULL,      -- what that anticipation gave the job
    sacrifice       REAL NOT NULL       -- 1 - probability
);
CREATE INDEX sacrifice_customer ON sacrifice(customer_id, ts);
CREATE TABLE personal_layers (
    customer_id TEXT NOT NULL,
    market      TEXT NOT NULL,
    state       TEXT NOT NULL,          -- models.personalise.PersonalLayer.to_dict() JSON
    updated     REAL NOT NULL,
    PRIMARY KEY (customer_id, market)
);
CREATE TABLE declared_markets (
    customer_id TEXT PRIMARY KEY,
    market      TEXT NOT NULL,
    until       REAL,                   -- NULL: until withdrawn
    declared    REAL NOT NULL
);
"""

# Customer API tokens (hub.http.tokens): a customer's own bearer token, good only for that
# customer's routes (``/api/me/…``). customer_id makes hub.rights export and erase them.
_CUSTOMER_TOKENS = """
CREATE TABLE customer_tokens (
    token_key   INTEGER PRIMARY KEY,
    token_id    TEXT NOT NULL UNIQUE,   -- public part of the token
    customer_id TEXT NOT NULL,
    name        TEXT NOT NULL,
    secret      TEXT NOT NULL,          -- sha256 of the whole token, hex (never the token; not exported)
    created     REAL NOT NULL,
    revoked     REAL
);
CREATE INDEX customer_tokens_customer ON customer_tokens(customer_id);
"""

MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "initial", _INITIAL),
    Migration(2, "operator api tokens and audit log", _OPERATOR),
    Migration(3, "anticipations, recognised jobs, sacrifice, personal layers, declared markets", _ANTICIPATION),
    Migration(4, "customer api tokens", _CUSTOMER_TOKENS),
)
SCHEMA_VERSION = MIGRATIONS[-1].version
