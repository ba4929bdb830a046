"""``genius dataset``: import real labelled datasets into the one format, and describe a dataset."""

from __future__ import annotations

import argparse
import collections
import json
from pathlib import Path
from typing import Any

__all__ = ["register"]

# --source defaults to ../shared/datasets/<name> next to the repository
_SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "datasets"


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("dataset", help="import real labelled datasets; describe a dataset")
    sub = parser.add_subparsers(dest="dataset_command", metavar="ACTION", required=True)

    imp = sub.add_parser("import", help="convert a real dataset into the Genius format")
    which = imp.add_subparsers(dest="dataset_name", metavar="NAME", required=True)
    ordonez = which.add_parser("ordonez", help="Ordonez ADL (UCI), one home = one customer")
    ordonez.add_argument("--home", choices=("A", "B"), type=str.upper, required=True)
    ordonez.add_argument("--source", type=Path, default=_SHARED / "ordonez_adl", metavar="DIR",
                         help="dataset folder (default ../shared/datasets/ordonez_adl)")
    ordonez.add_argument("--out", type=Path, required=True, metavar="DIR")
    ordonez.add_argument("--json", action="store_true", help="print the summary as JSON")
    ordonez.set_defaults(handler=_import_ordonez)
    aras = which.add_parser("aras", help="ARAS, each resident = one customer sharing the home's events")
    aras.add_argument("--house", choices=("A", "B"), type=str.upper, required=True)
    aras.add_argument("--source", type=Path, default=_SHARED / "aras", metavar="DIR",
                      help="dataset folder holding House<X>/ (default ../shared/datasets/aras)")
    aras.add_argument("--out", type=Path, required=True, metavar="DIR")
    aras.add_argument("--json", action="store_true", help="print the summary as JSON")
    aras.set_defaults(handler=_import_aras)

    info = sub.add_parser("info", help="summarise a dataset directory")
    info.add_argument("path", type=Path, metavar="DIR")
    info.add_argument("--json", action="store_true", help="machine-readable output")
    info.set_defaults(handler=_info)


def _import_ordonez(args: argparse.Namespace) -> int:
    from simulations.importers import import_ordonez

    return _write(args, import_ordonez(args.source, home=args.home))


def _import_aras(args: argparse.Namespace) -> int:
    from simulations.importers import import_aras

    return _write(args, import_aras(args.source, house=args.house))


def _write(args: argparse.Namespace, dataset: Any) -> int:
    from models.dataset import save

    save(dataset, args.out)
    summary = _summary(dataset)
    summary["out"] = str(args.out)
    _show(summary, as_json=args.json)
    return 0


def _info(args: argparse.Namespace) -> int:
    from models.dataset import load

    _show(_summary(load(args.path)), as_json=args.json)
    return 0


def _summary(dataset: Any) -> dict[str, Any]:
    jobs = collections.Counter(dataset.jobs[j] for j in dataset.labels.job.tolist())
    markets = collections.Counter(dataset.markets[m] for m in dataset.labels.market.tolist())
    return {
        "source": dataset.source,
        "customers": len(dataset),
        "events": dataset.events.size,
        "labels": dataset.labels.size,
        "devices": len(dataset.devices),
        "rooms": len(dataset.rooms),
        "jobs": dict(jobs.most_common()),
        "markets": dict(markets.most_common()),
        "licence": dataset.meta.get("licence"),
    }


def _show(summary: dict[str, Any], *, as_json: bool) -> None:
    if as_json:
        print(json.dumps(summary))
        return
    print(f"{summary['source']}: {summary['customers']} customers, {summary['events']:,} events, "
          f"{summary['labels']:,} labels, {summary['devices']} devices in {summary['rooms']} rooms")
    print("jobs:    " + ", ".join(f"{k} {v}" for k, v in summary["jobs"].items()))
    print("markets: " + ", ".join(f"{k} {v}" for k, v in summary["markets"].items()))
    if summary.get("licence"):
        print(f"licence: {summary['licence']}")
    if summary.get("out"):
        print(f"written to {summary['out']}")
