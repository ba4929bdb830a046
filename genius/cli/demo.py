"""``genius demo``: three simulated customers, their edges and a hub, live in the terminal.

    genius demo                      # 120 s at 120x (4 simulated hours), then a summary
    genius demo --for 0              # until Ctrl-C (or the simulated week ends)
    genius demo --broker embedded    # the in-process amqtt broker even when Mosquitto is installed
    genius demo --json               # a JSON summary at the end (plain progress on stderr)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
import time
from pathlib import Path
from typing import Any

__all__ = ["register"]


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="watch three simulated customers through real edges and a real hub",
        description="Starts an MQTT broker (Mosquitto when installed, else an embedded one), the hub with SQLite, "
                    "and an edge agent per home, hotel room, holiday home and gym of three simulated customers, "
                    "one of them on a business trip; shows what the hub knows of each, live, in accelerated time.",
    )
    parser.add_argument("--for", dest="duration", type=float, default=120.0, metavar="SECONDS",
                        help="wall seconds to run, 0 for until Ctrl-C (default 120)")
    parser.add_argument("--speed", type=float, default=120.0, metavar="X",
                        help="simulated seconds per wall second (default 120)")
    parser.add_argument("--broker", default="auto", metavar="embedded|mosquitto|URL",
                        help="auto (default: Mosquitto if installed, else embedded), embedded, mosquitto, "
                             "or mqtt://host:port of an existing broker")
    parser.add_argument("--db", type=Path, default=None, metavar="PATH",
                        help="hub SQLite database (default: in a temporary directory)")
    parser.add_argument("--seed", type=int, default=0, metavar="S", help="population seed (default 0)")
    parser.add_argument("--customers", type=int, default=3, metavar="N", help="simulated customers (default 3)")
    parser.add_argument("--http", default=None, metavar="HOST:PORT",
                        help="serve the hub's dashboard here too, when the hub has one (hub.http)")
    parser.add_argument("--plain", action="store_true",
                        help="periodic plain summaries instead of the live view (the default when not a terminal)")
    parser.add_argument("--every", type=float, default=10.0, metavar="SECONDS",
                        help="seconds between plain summaries (default 10)")
    parser.add_argument("--json", action="store_true", help="print a JSON summary at the end")
    parser.set_defaults(handler=_demo)


def _demo(args: argparse.Namespace) -> int:
    from devices.errors import ConfigError
    from simulations.demo import DemoConfig

    if args.duration < 0 or not args.speed > 0 or args.customers < 1:
        raise ConfigError("--for must be >= 0, --speed and --customers positive")
    if args.http is not None:
        from hub.settings import HubSettings

        if "http" not in HubSettings.model_fields:
            raise ConfigError("this hub has no HTTP dashboard (hub.http); run without --http")
    if args.verbose == 0:
        logging.getLogger().setLevel(logging.ERROR)  # warnings would tear the live view
        # paho's socket errors on reconnects, and aiomqtt's never-retrieved "unexpected
        # disconnection" futures when the embedded amqtt broker closes a session: -v shows them.
        for noisy in ("mqtt", "hub.mqtt", "asyncio"):
            logging.getLogger(noisy).setLevel(logging.CRITICAL)
    config = DemoConfig(duration_s=args.duration or None, speed=args.speed, broker=args.broker, db=args.db,
                        seed=args.seed, customers=args.customers, http=args.http)
    live = sys.stdout.isatty() and not args.plain and not args.json
    summary = asyncio.run(_main(config, live=live, every=args.every, as_json=args.json))
    if args.json:
        print(json.dumps(summary, indent=2, default=str))
    else:
        print(f"genius demo: stopped at simulated {summary['sim_time']} UTC after {summary['wall_s']} s; "
              f"the hub stored {summary['events_stored']:,} events")
        for cid, c in summary["customers"].items():
            print(f"  {cid}: {c['market']} ({c['why']}), {c['events_stored']:,} events")
    return 0


async def _main(config: Any, *, live: bool, every: float, as_json: bool) -> dict[str, Any]:
    from rich.console import Console
    from rich.live import Live
    from rich.logging import RichHandler

    from simulations.demo import run_demo
    from simulations.demo_view import DemoFrame, plain_lines, render_frame

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    out = sys.stderr if as_json else sys.stdout

    def say(line: str) -> None:
        print(f"genius demo: {line}", file=out, flush=True)

    last_plain = [float("-inf")]

    def plain(frame: DemoFrame) -> None:
        now = time.monotonic()
        if now - last_plain[0] >= every:
            last_plain[0] = now
            print("\n".join(plain_lines(frame)), file=out, flush=True)

    try:
        if not live:
            say("starting (plain summaries; Ctrl-C or SIGTERM stops)")
            return await run_demo(config, show=plain, stop=stop, say=say)
        console = Console()
        root = logging.getLogger()
        handlers = root.handlers[:]
        # Log records go through the live console, which prints them above the panels.
        root.handlers = [RichHandler(console=console, show_path=False, rich_tracebacks=False)]
        try:
            with Live(console=console, refresh_per_second=4, screen=False, transient=False) as view:

                def draw(frame: DemoFrame) -> None:
                    view.update(render_frame(frame))

                return await run_demo(config, show=draw, stop=stop, say=lambda line: view.console.print(line))
        finally:
            root.handlers = handlers
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
