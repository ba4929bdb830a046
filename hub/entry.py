"""Process entry for the hub, shared by ``genius hub run`` and ``python -m hub``.

``python -m hub`` is ``genius hub run`` without the rest of the CLI (the fault tests start
it as a subprocess and ``kill -9`` it).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from typing import Any

from devices.errors import GeniusError

from .service import serve
from .settings import HubSettings

__all__ = ["add_run_arguments", "main", "settings_from_args"]


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--broker", metavar="URL", help="hub MQTT broker, e.g. mqtt://127.0.0.1:1883")
    parser.add_argument("--db", metavar="PATH", help="hub SQLite database (created if missing)")
    parser.add_argument("--config", metavar="TOML", help="hub settings file (env GENIUS_HUB_* overrides it)")
    parser.add_argument("--client-id", metavar="ID", help="MQTT client id of the hub's persistent session")
    parser.add_argument("--http", metavar="HOST:PORT", help="serve the operator API and dashboard here")


def settings_from_args(args: argparse.Namespace) -> HubSettings:
    overrides: dict[str, Any] = {}
    if args.broker:
        overrides.setdefault("broker", {})["url"] = args.broker
    if getattr(args, "client_id", None):
        overrides.setdefault("broker", {})["client_id"] = args.client_id
    if args.db:
        overrides["store"] = {"path": args.db}
    if getattr(args, "http", None):
        overrides["http"] = {"listen": args.http}
    return HubSettings.load(args.config, **overrides)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hub", description="Run the Genius hub.")
    add_run_arguments(parser)
    parser.add_argument("-v", "--verbose", action="count", default=0)
    args = parser.parse_args(argv)
    level = logging.WARNING if args.verbose == 0 else logging.INFO if args.verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return asyncio.run(serve(settings_from_args(args)))
    except GeniusError as exc:
        print(f"hub: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


