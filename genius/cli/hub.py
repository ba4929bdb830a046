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

    from .hub_security import register_security

    register_security(sub)  # init-certs, broker-config, provision-edge, rotate-key


def _run(args: argparse.Namespace) -> int:
    from hub.entry import settings_from_args
    from hub.service import serve

    return asyncio.run(serve(settings_from_args(args)))


def _status(args: argparse.Namespace) -> int:
    from hub.status import render_status, status_report

    report = asyncio.run(status_report(args.db, max_gaps=args.max_gaps))
    if args.json:
        json.dump(report, sys.stdout, indent=2, sort_keys=True)
        sys.stdout.write("\n")
    else:
        render_status(report, Console())
    return 0
