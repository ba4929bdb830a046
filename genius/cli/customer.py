"""``genius customer export|forget|market|token``: a customer's data rights, market and token.

``market --db PATH --customer C`` shows the market the customer's next anticipation uses
and why (declared, or inferred from the context the hub last persisted); ``--declare M``
(one of ``hub.markets.known_markets()``, ``--until ISO`` or ``--for 3d``, else until
withdrawn) and ``--withdraw`` change it. A running hub reads declarations from the
database at every anticipation. ``token --db PATH --customer C`` prints a new customer
token (``/api/me/…`` routes only; shown once).

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
    parser = subparsers.add_parser("customer", help="a customer's data (export, forget), market and API token")
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

    market = sub.add_parser("market", help="the customer's market now and why; declare or withdraw one")
    market.add_argument("--db", metavar="PATH", required=True, help="hub SQLite database")
    market.add_argument("--customer", metavar="C", required=True, help="customer id")
    change = market.add_mutually_exclusive_group()
    change.add_argument("--declare", metavar="MARKET", help="declare this market (see the error for known ones)")
    change.add_argument("--withdraw", action="store_true", help="withdraw the declared market")
    until = market.add_mutually_exclusive_group()
    until.add_argument("--until", metavar="ISO", help="with --declare: until this time (ISO 8601; no offset = UTC)")
    until.add_argument("--for", dest="for_", metavar="DURATION", help="with --declare: for 30m, 12h, 3d, 2w …")
    market.add_argument("--json", action="store_true", help="print the report as JSON")
    market.set_defaults(handler=_market)

    token = sub.add_parser("token", help="a new API token for the customer's own routes (printed once)")
    token.add_argument("--db", metavar="PATH", required=True, help="hub SQLite database")
    token.add_argument("--customer", metavar="C", required=True, help="customer id")
    token.add_argument("--name", help="a label for the token (default customer-<id>)")
    token.add_argument("--json", action="store_true", help="print token, token_id, name, customer_id as JSON")
    token.set_defaults(handler=_token)


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


def _market(args: argparse.Namespace) -> int:
    from devices.errors import ConfigError

    _customer_id(args.customer)
    if (args.until or args.for_) and not args.declare:
        raise ConfigError("--until and --for go with --declare")
    doc = asyncio.run(_market_async(Path(args.db), args))
    if args.json:
        json.dump(doc, sys.stdout, indent=2, sort_keys=True)
        sys.stdout.write("\n")
        return 0
    if "withdrawn" in doc:
        print("declaration withdrawn" if doc["withdrawn"] else "no market was declared")
    why = doc["why"] if doc["source"] == "declared" else f"inferred: {doc['why']}"
    print(f"{doc['customer_id']}: {doc['market']} ({why})")
    held = doc["declared"]
    if held is not None:
        print(f"  declared {held['market']} until {held['until_iso'] or 'withdrawn'}")
        print(f"  inferred otherwise: {doc['inferred']['market']} ({doc['inferred']['why']})")
    return 0


async def _market_async(db: Path, args: argparse.Namespace) -> dict[str, Any]:
    import time

    from devices.errors import StorageError
    from hub.context import ContextFuser
    from hub.markets import check_market, declare_market, market_report, parse_duration, parse_until, withdraw_market
    from hub.store import Store

    if not db.is_file():
        raise StorageError(f"no hub database at {db}")
    now = time.time()
    customer = args.customer
    market: str | None = None
    until: float | None = None  # None: until withdrawn
    if args.declare:  # validate before touching the database
        market = check_market(args.declare, extra=_model_markets())
        if args.until:
            until = parse_until(args.until, now=now)
        elif args.for_:
            until = now + parse_duration(args.for_)
    async with Store(db) as store:
        withdrawn = None
        if market is not None:
            await declare_market(store, customer, market, until=until, now=now)
        elif args.withdraw:
            withdrawn = await withdraw_market(store, customer)
        context = ContextFuser()
        context.restore(await store.load_context())
        doc = await market_report(store, customer, context.snapshot(customer, now=now), now=now)
    if withdrawn is not None:
        doc["withdrawn"] = withdrawn
    return doc


def _model_markets() -> tuple[str, ...]:
    """The shipped model's markets (declarable too); none when no model is shipped."""
    from devices.errors import ModelError
    from models.artifact import default_artifact, read_meta

    try:
        return tuple(read_meta(default_artifact(), check_schema=False).markets)
    except ModelError:
        return ()


def _token(args: argparse.Namespace) -> int:
    from devices.errors import StorageError
    from hub.http.tokens import create_customer_token
    from hub.store import Store

    _customer_id(args.customer)
    db = Path(args.db)
    if not db.is_file():
        raise StorageError(f"no hub database at {db}")

    async def create() -> tuple[str, Any]:
        async with Store(db) as store:
            return await create_customer_token(store, args.customer, name=args.name)

    token, info = asyncio.run(create())
    if args.json:
        json.dump({"token": token, "token_id": info.token_id, "name": info.name, "customer_id": info.customer_id},
                  sys.stdout)
        sys.stdout.write("\n")
    else:
        print(token)
        print(f"(customer token {info.token_id} for {info.customer_id}: shown once, only its hash is stored)",
              file=sys.stderr)
    return 0
