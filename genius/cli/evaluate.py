"""``genius evaluate``: model against baselines on a chronological split, with a report folder."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from devices.errors import ConfigError

__all__ = ["register"]


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="evaluate a model against baselines and write a report",
        description="Chronological split per customer (first days train, the rest test); the model (trained on the "
                    "split, or --model) against majority, time-of-day, Markov and Markov x time-of-day baselines; "
                    "customer sacrifice week by week with personalisation on and off. Writes report.md, "
                    "summary.json and PNG plots (docs/models.md).",
    )
    parser.add_argument("--data", type=Path, required=True, metavar="DIR", help="dataset directory")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--model", type=Path, default=None, metavar="PATH", help="evaluate this artifact instead of training")
    source.add_argument("--train-split", type=float, default=0.7, metavar="F",
                        help="train on the first F of each customer's days, test on the rest (default 0.7)")
    parser.add_argument("--out", type=Path, required=True, metavar="DIR", help="report folder to write")
    parser.add_argument("--seed", type=int, default=0, metavar="S", help="random seed (default 0)")
    parser.add_argument("--no-personalisation", action="store_true", help="skip the sacrifice streaming")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.set_defaults(handler=_evaluate)


def _evaluate(args: argparse.Namespace) -> int:
    from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

    from models.dataset import load
    from models.evaluate import evaluate
    from models.report import jsonable, write_report

    if not 0.0 < args.train_split < 1.0:
        raise ConfigError("--train-split must be between 0 and 1")
    dataset = load(args.data)
    tasks: dict[str, TaskID] = {}
    columns = (TextColumn("{task.description:<32}"), BarColumn(), TextColumn("{task.completed:>5.0f}/{task.total:<5.0f}"), TimeElapsedColumn())
    with Progress(*columns, transient=True, disable=args.json or not sys.stderr.isatty()) as progress:

        def advance(task: str, done: float, total: float) -> None:
            if task not in tasks:
                tasks[task] = progress.add_task(task, total=total)
            progress.update(tasks[task], completed=done, total=total)

        evaluation = evaluate(
            dataset, model_path=args.model, fraction=args.train_split, seed=args.seed,
            personalise=not args.no_personalisation, progress=advance,
        )
    report = write_report(evaluation, args.out)
    s = evaluation.summary
    if args.json:
        print(json.dumps(jsonable({**s, "report": str(report)})))
        return 0
    print(f"{s['dataset']['source']}: {s['test_points']:,} test anticipations; report at {report}")
    for name, figures in (("model", s["model"]), *s["baselines"].items()):
        print(f"  {name:<12} top-1 {figures['top1']:.3f}  top-3 {figures['top3']:.3f}  log-loss {figures['log_loss']:.3f}"
              f"  macro-F1 {figures['macro_f1']:.3f}  ECE {figures['ece']:.3f}")
    beats = s["beats_best_baseline"]
    print(f"  beats the best baseline: top-1 {'yes' if beats['top1'] else 'NO'}, log-loss {'yes' if beats['log_loss'] else 'NO'}")
    pz = s.get("personalisation", {})
    for group in ("atypical", "typical"):
        if f"{group}_week4_reduction" in pz:
            print(f"  {group} customers: week-4 sacrifice {100 * pz[f'{group}_week4_reduction']:.1f} % lower with personalisation")
    return 0
