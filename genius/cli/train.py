"""``genius train``: learn the recognition, next-job and expected-time heads, write an artifact."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from devices.errors import ConfigError

__all__ = ["register"]

_LABELS = {
    "features": "features at anticipation points",
    "recognition": "recognition head",
    "cross-fit": "cross-fitted recognition",
    "contexts": "recognised contexts",
    "next_job": "next-job head",
    "expected_in": "expected-time head",
}


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train a model on a labelled dataset and write an ONNX artifact",
        description="Train the three heads (recognition, next job, expected time) on a dataset in the Genius "
                    "format (docs/datasets.md) and write an artifact folder (docs/models.md).",
    )
    parser.add_argument("--data", type=Path, required=True, metavar="DIR", help="dataset directory")
    parser.add_argument("--out", type=Path, required=True, metavar="PATH", help="artifact folder to write")
    parser.add_argument("--seed", type=int, default=0, metavar="S", help="random seed (default 0)")
    parser.add_argument("--name", default=None, help="model name (default: genius-<dataset source>)")
    parser.add_argument("--version", default="1.0.0", help="model version (default 1.0.0)")
    parser.add_argument("--train-split", type=float, default=None, metavar="F",
                        help="train on the first F of each customer's days only (default: all of them)")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.set_defaults(handler=_train)


def _train(args: argparse.Namespace) -> int:
    from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

    from models.artifact import ARTIFACTS, export
    from models.dataset import load
    from models.train import train

    if args.train_split is not None and not 0.0 < args.train_split < 1.0:
        raise ConfigError("--train-split must be between 0 and 1")
    dataset = load(args.data)
    out = args.out.resolve()
    if dataset.source != "simulation" and (out == ARTIFACTS or ARTIFACTS in out.parents):
        raise ConfigError(
            f"refusing to write a model trained on {dataset.source!r} under {ARTIFACTS}: "
            "only models trained on simulated data ship with Genius"
        )
    tasks: dict[str, TaskID] = {}
    columns = (TextColumn("{task.description:<32}"), BarColumn(), TextColumn("{task.completed:>5.0f}/{task.total:<5.0f}"), TimeElapsedColumn())
    with Progress(*columns, transient=True, disable=args.json or not sys.stderr.isatty()) as progress:

        def advance(task: str, done: float, total: float) -> None:
            if task not in tasks:
                tasks[task] = progress.add_task(_LABELS.get(task, task), total=total)
            progress.update(tasks[task], completed=done, total=total)

        model = train(dataset, seed=args.seed, fraction=args.train_split, progress=advance)
    source = dataset.source.split(":")[0]
    name = args.name or f"genius-{'sim' if source == 'simulation' else source}"
    trained_on = {"data": str(args.data), "source": dataset.source, "seed_data": dataset.meta.get("seed"),
                  "days": dataset.meta.get("days"), "licence": dataset.meta.get("licence")}
    export(model, out, name=name, version=args.version, trained_on=trained_on)
    summary = {
        "model": f"{name}@{args.version}",
        "out": str(out),
        "points": model.stats["points"],
        "train_s": model.stats["train_s"],
        "validation": {head: model.heads[head].validation for head in model.heads},
        "bytes": sum(p.stat().st_size for p in out.iterdir()),
    }
    if args.json:
        print(json.dumps(summary))
    else:
        nj = model.heads["next_job"].validation
        print(f"{summary['model']}: {summary['points']:,} anticipation points from {len(dataset)} customers, "
              f"trained in {summary['train_s']} s; next-job validation top-1 {nj.get('top1', float('nan')):.3f}, "
              f"log-loss {nj.get('log_loss', float('nan')):.3f}; {summary['bytes'] / 1024:.0f} KB written to {out}")
    return 0
