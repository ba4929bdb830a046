"""``genius edge run`` (the edge agent) and ``genius edge status`` (its outbox, offline)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import sys
from pathlib import Path
from typing import Any

from devices.errors import ConfigError
from devices.registry import load_registry
from edge.settings import ROLES, EdgeSettings

__all__ = ["register"]


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("edge", help="the edge agent that runs beside the smart products")
    sub = parser.add_subparsers(dest="edge_command", metavar="ACTION", required=True)

    run = sub.add_parser(
        "run",
        help="run the edge agent until SIGTERM",
        description="Every option may also come from --config (TOML) or GENIUS_EDGE_* variables.",
    )
    run.add_argument("--config", type=Path, help="TOML settings file (or $GENIUS_EDGE_CONFIG)")
    run.add_argument("--customer", help="customer id")
    run.add_argument("--edge", help="edge id")
    run.add_argument("--local-broker", metavar="URL", help="mqtt://[user:pass@]host:port of the home's broker")
    run.add_argument("--hub-broker", metavar="URL", help="mqtt://[user:pass@]host:port of the hub's broker")
    run.add_argument("--outbox", type=Path, metavar="PATH", help="SQLite outbox file")
    run.add_argument("--adapters", metavar="A,B", help="adapters to enable (default: every registered one)")
    run.add_argument("--role", choices=ROLES, help="what this edge is (default home)")
    run.set_defaults(handler=_run)

    status = sub.add_parser("status", help="what an outbox holds (no broker needed)")
    status.add_argument("--outbox", type=Path, metavar="PATH", required=True)
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.set_defaults(handler=_status)


def settings_from_args(args: argparse.Namespace) -> EdgeSettings:
    """CLI flags over env over TOML over defaults."""
    return EdgeSettings.load(
        args.config,
        customer=args.customer,
        edge=args.edge,
        local_broker=args.local_broker,
        hub_broker=args.hub_broker,
        outbox={"path": args.outbox} if args.outbox is not None else None,
        adapters=args.adapters,
        role=args.role,
    )


def _run(args: argparse.Namespace) -> int:
    from edge.agent import serve

    settings = settings_from_args(args)
    registry = load_registry(strict=args.strict)
    sessions = registry.sessions(settings.adapters)
    asyncio.run(serve(settings, sessions=sessions))
    return 0


def _status(args: argparse.Namespace) -> int:
    path: Path = args.outbox
    if not path.exists():
        raise ConfigError(f"no outbox at {path}")
    report = outbox_report(path)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"outbox {path}", show_header=False)
    for key in ("events", "first_seq", "next_seq", "overflow_dropped", "dead_letters"):
        table.add_row(key, str(report[key]))
    for reason, n in sorted(report["dead_letters_by_reason"].items()):
        table.add_row(f"  dead letters: {reason}", str(n))
    Console(file=sys.stdout).print(table)
    return 0


def outbox_report(path: Path) -> dict[str, Any]:
    """A read-only summary of an outbox file (safe while the agent runs: WAL readers don't block)."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
        count, lo = db.execute("SELECT count(*), min(seq) FROM events").fetchone()
        reasons = dict(db.execute("SELECT source || ':' || reason, count(*) FROM dead_letters GROUP BY 1").fetchall())
    finally:
        db.close()
    next_seq = int(meta.get("next_seq", 1))
    return {
        "events": int(count),
        "first_seq": int(lo) if lo is not None else next_seq,
        "next_seq": next_seq,
        "overflow_dropped": int(meta.get("overflow_dropped", 0)),
        "dead_letters": int(meta.get("dead_letters", 0)),
        "dead_letters_by_reason": reasons,
        "size_bytes": path.stat().st_size,
    }
