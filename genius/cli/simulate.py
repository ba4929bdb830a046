"""``genius simulate``: a labelled dataset of simulated customers (docs/datasets.md)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import date
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
    parser.add_argument("--out", type=Path, required=True, metavar="DIR", help="dataset directory to write")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.set_defaults(handler=_simulate)


def _simulate(args: argparse.Namespace) -> int:
    from rich.progress import Progress

    from models.dataset import save
    from simulations.export import DEFAULT_START, simulate_dataset

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
