"""``genius simulate``: a labelled dataset of simulated customers (docs/datasets.md), and
``genius simulate fleet``: simulated customers through real edges into a real hub, with faults.

    genius simulate --customers N --days D --seed S --out DIR
    genius simulate fleet --customers N --speed X --for SECONDS [--faults all] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import time
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

from devices.errors import ConfigError

__all__ = ["register"]


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "simulate",
        help="simulate customers and write a labelled dataset",
        description="Simulated customers (individual routines, homes, hotels, holiday homes, gyms) over D days, "
                    "written as a labelled dataset in the one Genius format (docs/datasets.md).",
    )
    parser.add_argument("--customers", type=int, default=100, metavar="N", help="number of customers (default 100)")
    parser.add_argument("--days", type=int, default=28, metavar="D", help="days to simulate (default 28)")
    parser.add_argument("--seed", type=int, default=0, metavar="S", help="random seed (default 0)")
    parser.add_argument("--start", type=date.fromisoformat, default=None, metavar="YYYY-MM-DD",
                        help="first day, UTC (default 2024-01-01, a Monday)")
    parser.add_argument("--prefix", default="c", help="customer id prefix (default 'c': c0000, c0001 …)")
    parser.add_argument("--out", type=Path, metavar="DIR", help="dataset directory to write (required)")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.set_defaults(handler=_simulate, simulate_parser=parser)
    sub = parser.add_subparsers(dest="simulate_command", metavar="fleet", required=False)
    _register_fleet(sub)


def _register_fleet(sub: Any) -> None:
    fleet = sub.add_parser(
        "fleet",
        help="drive simulated customers through real edges into a real hub, with faults",
        description="N simulated customers (home, hotel room, holiday home and gym edges each) through real "
                    "edge agents and a real hub over real Mosquitto brokers on loopback, in accelerated time, "
                    "with fault injection. Ends with the proof from the hub's own store: events sent vs stored, "
                    "duplicates, gaps, dead letters. Exit status 1 if anything good was lost.",
    )
    fleet.add_argument("--customers", type=int, default=5, metavar="N", help="simulated customers (default 5)")
    fleet.add_argument("--speed", type=float, default=600.0, metavar="X",
                       help="simulated seconds per wall second (default 600)")
    fleet.add_argument("--for", dest="duration", type=float, default=20.0, metavar="SECONDS",
                       help="wall seconds of device traffic, then drain and report (default 20)")
    fleet.add_argument("--seed", type=int, default=0, metavar="S", help="random seed (default 0)")
    fleet.add_argument("--start", type=_utc, default=None, metavar="YYYY-MM-DDTHH:MM",
                       help="simulated start, UTC (default 2024-01-08T06:00, a Monday morning)")
    fleet.add_argument("--broker", metavar="URL", default=None,
                       help="an existing hub broker (mqtt://host:port); default: our own Mosquitto on loopback")
    fleet.add_argument("--faults", default="none", metavar="SPEC",
                       help="all, none, or a comma list of broker[=N], offline[=FRACTION], crash[=N], "
                            "duplicates[=P], reorder[=P], skew[=SECONDS], malformed[=RATE] (default none)")
    fleet.add_argument("--workdir", type=Path, default=None, metavar="DIR",
                       help="keep brokers' data, the hub database and the outboxes here (default: a temporary directory)")
    fleet.add_argument("--drain-timeout", type=float, default=60.0, metavar="SECONDS",
                       help="longest wait for every edge to be acknowledged after the feed (default 60)")
    fleet.add_argument("--json", action="store_true", help="print the report as JSON")
    fleet.set_defaults(handler=_fleet)


def _utc(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def _fleet(args: argparse.Namespace) -> int:
    from simulations.brokers import find_mosquitto
    from simulations.fleet import FLEET_START, FleetConfig, run_fleet
    from simulations.fleet_faults import FaultPlan
    from simulations.fleet_report import render_report

    if args.customers < 1 or not args.speed > 0 or not args.duration > 0:
        raise ConfigError("--customers, --speed and --for must be positive")
    if find_mosquitto() is None:
        raise ConfigError("the fleet runs its own Mosquitto brokers: install Debian's 'mosquitto' (make mosquitto)")
    config = FleetConfig(
        customers=args.customers, speed=args.speed, duration_s=args.duration, seed=args.seed,
        start=args.start.timestamp() if args.start is not None else FLEET_START, hub_broker=args.broker,
        faults=FaultPlan.parse(args.faults), workdir=args.workdir, drain_timeout_s=args.drain_timeout,
    )
    if args.verbose == 0:
        # Faults provoke reconnect and dead-letter warnings, and paho's socket errors when a
        # link is cut, by design; -v shows them. Errors of our own parts still show.
        logging.getLogger().setLevel(logging.ERROR)
        for noisy in ("mqtt", "hub.mqtt"):
            logging.getLogger(noisy).setLevel(logging.CRITICAL)

    def progress(line: str) -> None:
        print(f"genius fleet: {line}", file=sys.stderr, flush=True)

    report = asyncio.run(run_fleet(config, progress=progress))
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
    else:
        print("\n".join(render_report(report)))
    return 0 if report.ok else 1


def _simulate(args: argparse.Namespace) -> int:
    from rich.progress import Progress

    from models.dataset import save
    from simulations.export import DEFAULT_START, simulate_dataset

    if args.out is None:
        args.simulate_parser.error("--out is required (or run `genius simulate fleet …`)")
    if args.customers < 1 or args.days < 1:
        raise ConfigError("--customers and --days must be at least 1")
    started = time.perf_counter()
    with Progress(transient=True, disable=args.json or not sys.stderr.isatty()) as progress:
        task = progress.add_task("simulating customers", total=args.customers)
        dataset = simulate_dataset(args.customers, args.days, args.seed, start=args.start or DEFAULT_START,
                                   prefix=args.prefix, progress=lambda k: progress.update(task, completed=k))
    simulated = time.perf_counter() - started
    save(dataset, args.out)
    summary = {
        "out": str(args.out),
        "customers": len(dataset),
        "days": args.days,
        "seed": args.seed,
        "events": dataset.events.size,
        "labels": dataset.labels.size,
        "atypical": sum(1 for info in dataset.meta["customer_info"].values() if info["atypical"]),
        "simulate_s": round(simulated, 2),
        "total_s": round(time.perf_counter() - started, 2),
    }
    if args.json:
        print(json.dumps(summary))
    else:
        print(f"{summary['customers']} customers x {args.days} days (seed {args.seed}): {summary['events']:,} events, "
              f"{summary['labels']:,} labels, {summary['atypical']} atypical; simulated in {summary['simulate_s']} s, "
              f"written to {args.out} in {summary['total_s']} s total")
    return 0
