"""Bearer tokens for the operator API: created once, stored only as a hash.

A token reads ``gt_<token_id>_<secret>``: ``token_id`` (12 hex) is public and names the
token in the audit log; ``secret`` is 32 random bytes (urlsafe base64). The store keeps the
sha256 of the whole token, so a copy of the database does not let anyone in. A plain hash
(not a slow KDF) is right here because the secret is random, not a password.

Roles: ``viewer`` sees the fleet (edges, metrics, alarms, dead-letter counts); ``operator``
also sees customers (context, events, anticipations), and every such read is audited.
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

from ..store import Store

__all__ = ["ROLES", "Role", "TokenInfo", "create_token", "hash_token", "list_tokens", "verify_token"]

Role = Literal["operator", "viewer"]
ROLES: tuple[Role, ...] = get_args(Role)
_TOKEN = re.compile(r"gt_([0-9a-f]{12})_[A-Za-z0-9_-]{20,100}")


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """Who a request is (never the secret)."""

    token_id: str
    name: str
    role: Role
    created: float

    @property
    def is_operator(self) -> bool:
        return self.role == "operator"


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


async def verify_token(store: Store, token: str | None) -> TokenInfo | None:
    """The token's identity, or None when it is missing, malformed, unknown, revoked or wrong."""
    if not token:
        return None
    match = _TOKEN.fullmatch(token.strip())
    if match is None:
        return None
    async with store.db.execute(
        "SELECT name, role, hash, created FROM api_tokens WHERE token_id = ? AND revoked IS NULL", (match.group(1),)
    ) as cur:
        row = await cur.fetchone()
    if row is None:
        return None
    name, role, stored, created = row
    if not hmac.compare_digest(stored, hash_token(token.strip())):
        return None
    return TokenInfo(match.group(1), name, role, created)


async def list_tokens(store: Store) -> list[TokenInfo]:
    """Tokens that are not revoked (ids, names and roles; hashes stay in the database)."""
    async with store.db.execute(
        "SELECT token_id, name, role, created FROM api_tokens WHERE revoked IS NULL ORDER BY token_key"
    ) as cur:
        return [TokenInfo(*row) for row in await cur.fetchall()]
