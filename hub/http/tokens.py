"""Bearer tokens for the operator API: created once, stored only as a hash.

A staff token reads ``gt_<token_id>_<secret>``: ``token_id`` (12 hex) is public and names
the token in the audit log; ``secret`` is 32 random bytes (urlsafe base64). The store keeps
the sha256 of the whole token, so a copy of the database does not let anyone in. A plain
hash (not a slow KDF) is right here because the secret is random, not a password.

Roles: ``viewer`` sees the fleet (edges, metrics, alarms, dead-letter counts); ``operator``
also sees customers (context, events, anticipations), and every such read is audited.

A **customer** token (``gc_<token_id>_<secret>``, table ``customer_tokens``) is bound to one
customer and opens only that customer's own routes (``/api/me/…``), never a staff route.
It is created by the operator (``genius customer token``) and handed to the customer's
app; erasing the customer deletes it (the row carries ``customer_id``).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import sqlite3
import time
from dataclasses import dataclass
from typing import Literal, get_args

from devices.errors import ConfigError, StorageError
from devices.topics import validate_id

from ..store import Store

__all__ = [
    "CUSTOMER", "ROLES", "Role", "TokenInfo", "create_customer_token", "create_token", "hash_token", "list_tokens",
    "revoke_customer_tokens", "verify_token",
]

Role = Literal["operator", "viewer"]
ROLES: tuple[Role, ...] = get_args(Role)
CUSTOMER: Literal["customer"] = "customer"
_TOKEN = re.compile(r"g([tc])_([0-9a-f]{12})_[A-Za-z0-9_-]{20,100}")


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """Who a request is (never the secret)."""

    token_id: str
    name: str
    role: Role | Literal["customer"]
    created: float
    customer_id: str | None = None  # set for a customer token only: the one customer it may act for

    @property
    def is_operator(self) -> bool:
        return self.role == "operator"

    @property
    def is_staff(self) -> bool:
        """An operator or viewer token (a customer token opens no staff route)."""
        return self.role in ROLES


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def create_token(store: Store, *, role: Role, name: str | None = None, now: float | None = None) -> tuple[str, TokenInfo]:
    """Store a new token's hash; returns ``(token, info)``. The token is never retrievable again."""
    if role not in ROLES:
        raise ConfigError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    token_id = secrets.token_hex(6)
    token = f"gt_{token_id}_{secrets.token_urlsafe(32)}"
    info = TokenInfo(token_id, name or f"{role}-{token_id}", role, time.time() if now is None else now)
    try:
        async with store.transaction() as db:
            await db.execute(
                "INSERT INTO api_tokens (token_id, name, role, hash, created) VALUES (?,?,?,?,?)",
                (info.token_id, info.name, info.role, hash_token(token), info.created),
            )
    except sqlite3.Error as exc:
        raise StorageError(f"cannot store the token: {exc}") from exc
    return token, info


async def create_customer_token(
    store: Store, customer_id: str, *, name: str | None = None, now: float | None = None
) -> tuple[str, TokenInfo]:
    """Store a new token for ``customer_id``'s own routes; returns ``(token, info)`` (shown once).

    ``ConfigError`` when ``customer_id`` is not a valid customer id (DESIGN.md, "Identities").
    """
    try:
        validate_id(customer_id, what="customer id")
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    token_id = secrets.token_hex(6)
    token = f"gc_{token_id}_{secrets.token_urlsafe(32)}"
    info = TokenInfo(token_id, name or f"customer-{token_id}", CUSTOMER, time.time() if now is None else now,
                     customer_id=customer_id)
    try:
        async with store.transaction() as db:
            await db.execute(
                "INSERT INTO customer_tokens (token_id, customer_id, name, secret, created) VALUES (?,?,?,?,?)",
                (info.token_id, customer_id, info.name, hash_token(token), info.created),
            )
    except sqlite3.Error as exc:
        raise StorageError(f"cannot store the token: {exc}") from exc
    return token, info


async def revoke_customer_tokens(store: Store, customer_id: str, *, now: float | None = None) -> int:
    """Revoke every live token of the customer; returns how many."""
    async with store.transaction() as db:
        cur = await db.execute(
            "UPDATE customer_tokens SET revoked = ? WHERE customer_id = ? AND revoked IS NULL",
            (time.time() if now is None else now, customer_id),
        )
        return cur.rowcount


async def verify_token(store: Store, token: str | None) -> TokenInfo | None:
    """The token's identity, or None when it is missing, malformed, unknown, revoked or wrong."""
    if not token:
        return None
    match = _TOKEN.fullmatch(token.strip())
    if match is None:
        return None
    kind, token_id = match.groups()
    if kind == "c":
        sql = "SELECT name, 'customer', secret, created, customer_id FROM customer_tokens"
    else:
        sql = "SELECT name, role, hash, created, NULL FROM api_tokens"
    async with store.db.execute(f"{sql} WHERE token_id = ? AND revoked IS NULL", (token_id,)) as cur:
        row = await cur.fetchone()
    if row is None:
        return None
    name, role, stored, created, customer_id = row
    if not hmac.compare_digest(stored, hash_token(token.strip())):
        return None
    return TokenInfo(token_id, name, role, created, customer_id=customer_id)


async def list_tokens(store: Store) -> list[TokenInfo]:
    """Tokens that are not revoked (ids, names and roles; hashes stay in the database)."""
    async with store.db.execute(
        "SELECT token_id, name, role, created FROM api_tokens WHERE revoked IS NULL ORDER BY token_key"
    ) as cur:
        return [TokenInfo(*row) for row in await cur.fetchall()]
