"""The audit log: every read of a customer's data through the operator API leaves a row.

A row says who (token id and name, role), what (customer, resource, detail) and when. The
row is written *before* the data is returned: a read that cannot be audited is refused.
Rows carry ``customer_id``, so a customer's export includes them and erasure removes them.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass

from devices.errors import StorageError

from ..store import Store
from .tokens import TokenInfo

__all__ = ["AuditEntry", "audit_entries", "record_read"]


@dataclass(frozen=True, slots=True)
class AuditEntry:
    ts: float
    token_id: str
    token_name: str
    role: str
    customer_id: str
    resource: str
    detail: str


async def record_read(
    store: Store, who: TokenInfo, customer_id: str, resource: str, *, detail: str = "", now: float | None = None
) -> AuditEntry:
    """Append one audit row in its own transaction; ``StorageError`` if it cannot be written."""
    entry = AuditEntry(
        time.time() if now is None else now, who.token_id, who.name, who.role, customer_id, resource, detail[:500]
    )
    try:
        async with store.transaction() as db:
            await db.execute(
                "INSERT INTO audit_log (ts, token_id, token_name, role, customer_id, resource, detail)"
                " VALUES (?,?,?,?,?,?,?)",
                (entry.ts, entry.token_id, entry.token_name, entry.role, entry.customer_id, entry.resource, entry.detail),
            )
    except sqlite3.Error as exc:
        raise StorageError(f"cannot write the audit log: {exc}") from exc
    return entry


async def audit_entries(store: Store, *, customer_id: str | None = None, limit: int = 100) -> list[AuditEntry]:
    """Newest first; one customer's rows when ``customer_id`` is given."""
    sql = "SELECT ts, token_id, token_name, role, customer_id, resource, detail FROM audit_log"
    args: tuple[object, ...] = ()
    if customer_id is not None:
        sql += " WHERE customer_id = ?"
        args = (customer_id,)
    async with store.db.execute(sql + " ORDER BY id DESC LIMIT ?", (*args, limit)) as cur:
        return [AuditEntry(*row) for row in await cur.fetchall()]
