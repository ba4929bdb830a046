"""``genius customer export ID`` and ``genius customer forget ID``: a customer's data rights.

Both work on the hub database directly (``hub.rights``); an export is written to the audit
log (``audit_log``, as operator reads through the API are). ``forget`` may run while the hub
runs: the hub notices the erasure record within a few seconds, drops the customer from
memory, erases again whatever it committed meanwhile, and clears the broker side itself.
``--broker`` does the broker side from here (for a hub that is stopped): each edge of the
customer is told to purge its outbox and the customer's retained topics are cleared. Use a
broker identity other than the running hub's: the hub broker takes the username as client id.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

__all__ = ["register"]


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("customer", help="export or erase everything held about one customer")
    sub = parser.add_subparsers(dest="customer_command", metavar="SUBCOMMAND", required=True)

    export = sub.add_parser("export", help="one JSON document of everything the hub holds about the customer")
    export.add_argument("customer_id")
    export.add_argument("--db", metavar="PATH", required=True, help="hub SQLite database")
    export.add_argument("--out", metavar="FILE", type=Path, help="write here instead of stdout")
    export.set_defaults(handler=_export)

    forget = sub.add_parser("forget", help="erase the customer from the hub (and the broker, with --broker)")
    forget.add_argument("customer_id")
    forget.add_argument("--db", metavar="PATH", required=True, help="hub SQLite database")
    forget.add_argument("--broker", metavar="URL", help="hub broker, mqtt://user:password@host:port")
    forget.add_argument("--timeout", type=float, default=15.0, help="seconds for the broker side (default 15)")
    forget.set_defaults(handler=_forget)


def _customer_id(value: str) -> str:
    from devices.errors import ConfigError
    from devices.topics import validate_id

    try:
        return validate_id(value, what="customer id")
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc


def _export(args: argparse.Namespace) -> int:
    _customer_id(args.customer_id)
    doc = asyncio.run(_export_doc(Path(args.db), args.customer_id))
    text = json.dumps(doc, indent=2, sort_keys=True) + "\n"
    if args.out is not None:
        args.out.write_text(text)
    else:
        sys.stdout.write(text)
    if not doc["found"]:
        print(f"genius: nothing held about customer {args.customer_id!r}", file=sys.stderr)
    return 0


async def _export_doc(db: Path, customer_id: str) -> dict[str, Any]:
    import getpass

    from devices.errors import StorageError
    from hub.rights import export_customer, record_access
    from hub.store import Store

    if not db.is_file():
        raise StorageError(f"no hub database at {db}")
    async with Store(db) as store:
        doc = await export_customer(store, customer_id)
        if doc["found"]:  # an operator read everything about the customer: audited
            await record_access(store, customer_id, resource="export", actor=getpass.getuser(),
                                detail=f"{len(doc['events'])} events")
    return doc


def _forget(args: argparse.Namespace) -> int:
    _customer_id(args.customer_id)
    report = asyncio.run(_forget_async(Path(args.db), args.customer_id, broker=args.broker, timeout=args.timeout))
    json.dump(report, sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")
    return 0


async def _forget_async(db: Path, customer_id: str, *, broker: str | None, timeout: float) -> dict[str, Any]:
    import aiomqtt

    from devices.errors import ConfigError, StorageError
    from hub.rights import clear_broker, forget_customer, mark_broker_cleared
    from hub.store import Store

    if not db.is_file():
        raise StorageError(f"no hub database at {db}")
    async with Store(db) as store:
        report = await forget_customer(store, customer_id)
        out = report.as_dict()
        out["broker"] = "left to the running hub (or pass --broker)"
        if broker is not None and report.edges:
            parts = urlsplit(broker)
            if parts.scheme not in ("mqtt", "tcp") or not parts.hostname:
                raise ConfigError(f"broker url {broker!r} must look like mqtt://user:password@host:port")
            try:
                async with asyncio.timeout(timeout), aiomqtt.Client(
                    parts.hostname, parts.port or 1883,
                    username=unquote(parts.username) if parts.username else None,
                    password=unquote(parts.password) if parts.password else None,
                    timeout=timeout,
                ) as client:
                    sent = await clear_broker(client.publish, customer_id, report.edges, now=report.ts)
            except (aiomqtt.MqttError, TimeoutError) as exc:
                raise StorageError(
                    f"customer erased from the database (erasure {report.erasure_id}) but the broker side failed: {exc};"
                    " a running hub will clear it, or run forget again with --broker"
                ) from exc
            await mark_broker_cleared(store, report.erasure_id)
            out["broker"] = f"{sent} messages published (purge to {len(report.edges)} edges, retained topics cleared)"
    return out
