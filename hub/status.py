"""The hub's status report, read from its database alone (no broker needed).

``status_report`` returns plain data (the ``genius hub status --json`` document);
``render_status`` draws it as rich tables for people.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from .store import Store

__all__ = ["render_status", "status_report"]


async def status_report(db: Path | str, *, max_gaps: int = 100) -> dict[str, Any]:
    """``{"edges": [...], "customers": [...], "dead_letters": {reason: count}}``.

    Each edge: ``edge_id``, ``customer_id``, ``role``, ``online`` (None before any status),
    ``last_seen``, ``events`` (stored), ``duplicates``, ``high_seq``, ``contiguous`` (highest
    seq stored with nothing missing below), ``gaps`` ([from, to] pairs, at most ``max_gaps``),
    ``backlog`` (as the edge last reported), ``version``, ``devices`` (inventory size).
    Raises ``StorageError`` when there is no hub database at ``db``.
    """
    async with Store(db, readonly=True) as store:
        edges = await store.edges(max_gaps=max_gaps)
        customers = await store.customers()
        dead = await store.dead_letter_counts()
    return {
        "edges": [
            {
                "edge_id": e.edge_id,
                "customer_id": e.customer_id,
                "role": e.role,
                "online": e.online,
                "last_seen": e.last_seen,
                "events": e.events,
                "duplicates": e.duplicates,
                "high_seq": e.high_seq,
                "contiguous": e.contiguous,
                "gaps": [list(g) for g in e.gaps],
                "backlog": e.backlog,
                "version": e.version,
                "devices": len(e.inventory),
            }
            for e in edges
        ],
        "customers": [
            {"customer_id": c.customer_id, "edges": c.edges, "events": c.events, "first_seen": c.first_seen}
            for c in customers
        ],
        "dead_letters": dead,
    }


def render_status(report: dict[str, Any], console: Console) -> None:
    edges = Table(title="Edges")
    for col in ("customer", "edge", "role", "online", "last seen (UTC)", "events", "dups", "contiguous", "high seq", "gaps",
                "backlog"):
        edges.add_column(col, justify="left" if col in ("customer", "edge", "role", "gaps", "last seen (UTC)") else "right")
    for e in report["edges"]:
        online = {True: "[green]online[/]", False: "[red]offline[/]", None: "?"}[e["online"]]
        gaps = ", ".join(f"{a}-{b}" for a, b in e["gaps"][:5]) + (" …" if len(e["gaps"]) > 5 else "")
        seen = datetime.fromtimestamp(e["last_seen"], tz=UTC).strftime("%Y-%m-%d %H:%M:%S")
        edges.add_row(
            e["customer_id"], e["edge_id"], e["role"] or "-", online, seen, f"{e['events']:,}", f"{e['duplicates']:,}",
            str(e["contiguous"]), str(e["high_seq"]), gaps or "-", "-" if e["backlog"] is None else str(e["backlog"]),
        )
    console.print(edges)
    customers = Table(title="Customers")
    for col in ("customer", "edges", "events"):
        customers.add_column(col)
    for c in report["customers"]:
        customers.add_row(c["customer_id"], str(c["edges"]), f"{c['events']:,}")
    console.print(customers)
    dead = Table(title="Dead letters")
    dead.add_column("reason")
    dead.add_column("count", justify="right")
    for reason, n in sorted(report["dead_letters"].items()):
        dead.add_row(reason, f"{n:,}")
    if not report["dead_letters"]:
        dead.add_row("-", "0")
    console.print(dead)
