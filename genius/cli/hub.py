"""``genius hub run``, ``genius hub status`` and the security commands (``hub_security``)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from rich.console import Console

__all__ = ["register"]


def register(subparsers: Any) -> None:
    from hub.entry import add_run_arguments

    parser = subparsers.add_parser("hub", help="run the hub or report on its database")
    sub = parser.add_subparsers(dest="hub_command", metavar="SUBCOMMAND", required=True)

    run = sub.add_parser("run", help="ingest from the hub broker until SIGTERM/Ctrl-C")
    add_run_arguments(run)
    run.set_defaults(handler=_run)

    status = sub.add_parser("status", help="edges, customers and dead letters, read from the database")
    status.add_argument("--db", metavar="PATH", required=True, help="hub SQLite database")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.add_argument("--max-gaps", type=int, default=100, help="gaps listed per edge (default 100)")
    status.set_defaults(handler=_status)

    token = sub.add_parser("token", help="API tokens for the operator dashboard and API")
    token_sub = token.add_subparsers(dest="token_command", metavar="ACTION", required=True)
    create = token_sub.add_parser("create", help="create a token (printed once; only its hash is stored)")
    create.add_argument("--role", choices=("operator", "viewer"), required=True,
                        help="viewer: fleet only; operator: also customers (audited)")
    create.add_argument("--name", help="who or what holds it (shown in the audit log)")
    create.add_argument("--db", metavar="PATH", required=True, help="hub SQLite database")
    create.add_argument("--json", action="store_true", help="machine-readable output")
    create.set_defaults(handler=_token_create)
    listing = token_sub.add_parser("list", help="tokens that exist (ids, names, roles; never secrets)")
    listing.add_argument("--db", metavar="PATH", required=True, help="hub SQLite database")
    listing.set_defaults(handler=_token_list)

    tail = sub.add_parser("tail", help="stream what the hub commits (events, dead letters, anticipations)")
    tail.add_argument("--db", metavar="PATH", required=True, help="hub SQLite database (polled, read-only)")
    tail.add_argument("--json", action="store_true", help="one JSON document per line")
    tail.add_argument("--poll", type=float, default=0.5, metavar="S", help="poll interval (default 0.5 s)")
    tail.add_argument("--count", type=int, metavar="N", help="stop after N items")
    tail.add_argument("--for", dest="for_s", type=float, metavar="S", help="stop after S seconds")
    tail.add_argument("--from-start", action="store_true", help="begin with what is already stored")
    tail.set_defaults(handler=_tail)

    from .hub_security import register_security

    register_security(sub)  # init-certs, broker-config, provision-edge, rotate-key


def _run(args: argparse.Namespace) -> int:
    from hub.entry import settings_from_args
    from hub.service import serve

    return asyncio.run(serve(settings_from_args(args)))


def _status(args: argparse.Namespace) -> int:
    from hub.status import render_status, status_report

    async def report_with_alarms() -> dict[str, Any]:
        from hub.http.alarms import alarms_from_db
        from hub.store import Store

        report = await status_report(args.db, max_gaps=args.max_gaps)
        async with Store(args.db, readonly=True) as store:
            report["alarms"] = [a.to_json() for a in await alarms_from_db(store)]
        return report

    report = asyncio.run(report_with_alarms())
    if args.json:
        json.dump(report, sys.stdout, indent=2, sort_keys=True)
        sys.stdout.write("\n")
    else:
        console = Console()
        render_status(report, console)
        _render_alarms(report["alarms"], console)
    return 0


def _render_alarms(alarms: list[dict[str, Any]], console: Console) -> None:
    from rich.table import Table

    table = Table(title="Alarms")
    for col in ("severity", "kind", "subject", "message"):
        table.add_column(col)
    for a in alarms:
        colour = "red" if a["severity"] == "critical" else "yellow"
        table.add_row(f"[{colour}]{a['severity']}[/]", a["kind"], a["subject"], a["message"])
    if not alarms:
        table.add_row("-", "none", "-", "-")
    console.print(table)


def _token_create(args: argparse.Namespace) -> int:
    from hub.http.tokens import create_token
    from hub.store import Store

    async def create() -> tuple[str, Any]:
        async with Store(args.db) as store:
            return await create_token(store, role=args.role, name=args.name)

    token, info = asyncio.run(create())
    if args.json:
        json.dump({"token": token, "token_id": info.token_id, "name": info.name, "role": info.role}, sys.stdout)
        sys.stdout.write("\n")
    else:
        print(token)
        print(f"({info.role} token {info.token_id} '{info.name}': shown once, only its hash is stored)", file=sys.stderr)
    return 0


def _token_list(args: argparse.Namespace) -> int:
    from hub.http.tokens import list_tokens
    from hub.store import Store

    async def listing() -> list[Any]:
        async with Store(args.db, readonly=True) as store:
            return await list_tokens(store)

    for info in asyncio.run(listing()):
        print(f"{info.token_id}  {info.role:<8}  {info.name}")
    return 0


def _tail(args: argparse.Namespace) -> int:
    """Print what the hub commits until Ctrl-C (or --count / --for)."""
    from hub.http.tail import tail

    async def follow() -> None:
        n = 0
        async with asyncio.timeout(args.for_s):
            async for item in tail(args.db, poll_s=args.poll, from_start=args.from_start):
                if args.json:
                    sys.stdout.write(json.dumps(item, separators=(",", ":"), default=str) + "\n")
                else:
                    sys.stdout.write(_tail_line(item) + "\n")
                sys.stdout.flush()
                n += 1
                if args.count is not None and n >= args.count:
                    return

    try:
        asyncio.run(follow())
    except TimeoutError:
        pass  # --for elapsed
    return 0


def _tail_line(item: dict[str, Any]) -> str:
    from datetime import UTC, datetime

    when = datetime.fromtimestamp(float(item.get("ts") or 0), tz=UTC).strftime("%Y-%m-%d %H:%M:%S")
    kind = item["kind"]
    if kind == "ingest":
        return (f"{when} ingest       {item['customer_id']}/{item['edge_id']} #{item['seq']} "
                f"{item['device']} {item['capability']}={item['value']}" + (f" ({item['room']})" if item["room"] else ""))
    if kind == "dead_letter":
        return f"{when} dead letter  {item['topic']} [{item['reason']}] {item['detail']}"
    jobs = item.get("jobs") or []
    top = ", ".join(f"{j.get('job')} {j.get('probability', 0):.0%}" for j in jobs[:3] if isinstance(j, dict))
    return f"{when} anticipation {item.get('customer_id')} [{item.get('market')}] {top}"
