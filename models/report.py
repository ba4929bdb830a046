"""Evaluation report: ``report.md``, ``summary.json`` and PNG plots (matplotlib, Agg backend).

Plots: the next-job confusion matrix, a reliability diagram (model and best baseline),
accuracy against days of history (personalisation on and off), accuracy per market (model
and baselines) and the sacrifice curve (mean sacrifice per week, on and off, atypical and
typical customers).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from models.evaluate import Evaluation
from models.metrics import reliability

__all__ = ["jsonable", "write_report"]

_PLOTS = ("confusion.png", "reliability.png", "history.png", "markets.png", "sacrifice.png")


def write_report(evaluation: Evaluation, out: str | os.PathLike[str]) -> Path:
    """Write the report folder ``out``; returns the path of ``report.md``."""
    import matplotlib

    matplotlib.use("Agg")
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    _confusion(evaluation, folder / "confusion.png")
    _reliability(evaluation, folder / "reliability.png")
    _history(evaluation, folder / "history.png")
    _markets(evaluation, folder / "markets.png")
    _sacrifice(evaluation, folder / "sacrifice.png")
    (folder / "summary.json").write_text(json.dumps(jsonable(evaluation.summary), indent=1))
    path = folder / "report.md"
    path.write_text(_markdown(evaluation))
    return path


def jsonable(value: Any) -> Any:
    """``value`` with numpy scalars as Python ones and NaN as ``None`` (strict JSON)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


# ------------------------------------------------------------------------------ markdown


def _f(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.{digits}f}"


def _row(name: str, d: dict[str, Any]) -> str:
    minutes = d.get("expected_in_abs_error_s", math.nan) / 60.0
    return (f"| {name} | {_f(d['top1'])} | {_f(d['top3'])} | {_f(d['macro_f1'])} | {_f(d['log_loss'])} "
            f"| {_f(d['ece'])} | {_f(minutes, 1)} |")


_HEADER = ("| | top-1 | top-3 | macro-F1 | log-loss | ECE | expected-time median abs. error (min) |\n"
           "|---|---|---|---|---|---|---|")


def _markdown(ev: Evaluation) -> str:
    s = ev.summary
    proto = s["protocol"]
    lines = [
        f"# Evaluation: {s['dataset']['source']}",
        "",
        f"{s['dataset']['customers']} customers; {s['train_points']:,} training and {s['test_points']:,} test "
        f"anticipation points. Model: {s['model_info']['model']} ({s['model_info']['trained']}).",
        "",
        "## Protocol",
        f"- Split: {proto['split']}.",
        f"- Anticipation points: {proto['anticipation_points']}.",
        f"- Unlabelled time: {proto['unlabelled']}.",
        f"- Job inputs at test time: {proto['job_inputs']}.",
        f"- Log-loss clips probabilities at {proto['log_loss_clip']:g}; baselines use Laplace smoothing.",
        "",
        "## Next job: model against baselines",
        _HEADER,
        _row("**model**", s["model"]),
        *([_row("model, global head only", s["model_global"])] if "model_global" in s else []),
        *(_row(name, d) for name, d in s["baselines"].items()),
        "",
    ]
    shift = s["model_info"].get("prior_shift")
    if shift:
        lines += [
            f"The model shifts the global head towards each customer's own mix of next jobs on the training days "
            f"(weight {shift['weight']:g}, strength {shift['strength']:g}, {shift['buckets']} time-of-day bucket(s), "
            f"temperature {shift.get('temperature', 1.0):g}; "
            "chosen in training on a validation slice; 0: no shift).",
            "",
        ]
    beats = s["beats_best_baseline"]
    best = s["best_baseline"]
    lines.append(
        f"Best baseline on top-1: **{best['top1']}**, on log-loss: **{best['log_loss']}**. "
        f"Model beats it on top-1: **{'yes' if beats['top1'] else 'no'}**, on log-loss: **{'yes' if beats['log_loss'] else 'no'}**."
    )
    if s["model"]["per_customer"]:
        lines += ["", "### Per customer", "| customer | model top-1 | best baseline top-1 | model log-loss | best baseline log-loss |",
                  "|---|---|---|---|---|"]
        for c, d in s["model"]["per_customer"].items():
            rivals = [s["baselines"][b]["per_customer"][c] for b in s["baselines"]]
            lines.append(f"| {c} | {_f(d['top1'])} | {_f(max(r['top1'] for r in rivals))} | {_f(d['log_loss'])} "
                         f"| {_f(min(r['log_loss'] for r in rivals))} |")
    lines += ["", "### Per market (top-1)", "| market | n | model | " + " | ".join(s["baselines"]) + " |",
              "|---|---|---|" + "---|" * len(s["baselines"])]
    for market, d in s["model"]["per_market"].items():
        others = " | ".join(_f(s["baselines"][b]["per_market"][market]["top1"]) for b in s["baselines"])
        lines.append(f"| {market} | {int(d['n'])} | {_f(d['top1'])} | {others} |")
    lines += ["", "### With ground-truth job inputs (oracle)", "| | top-1 | log-loss |", "|---|---|---|"]
    lines += [f"| {name} | {_f(d['top1'])} | {_f(d['log_loss'])} |" for name, d in s["oracle"].items()]
    rec = s["recognition"]
    lines += ["", "## Recognition (job going on now, idle included)",
              f"top-1 {_f(rec['top1'])}, macro-F1 {_f(rec['macro_f1'])}, top-1 while a job is going on "
              f"{_f(rec['top1_while_busy'])}; idle share of test points {_f(rec['idle_share'])}."]
    pz = s.get("personalisation")
    if pz:
        lines += ["", "## Personalisation: customer sacrifice", "",
                  "Mean sacrifice (1 − probability given to what the customer did next) per week of history, "
                  "the PersonalLayer on and off. Each anticipation is scored before the layer learns its outcome.", "",
                  "| week | " + " | ".join(f"{g} {state}" for g in ("atypical", "typical") for state in ("on", "off")) + " |",
                  "|---|---|---|---|---|"]
        for w, week in enumerate(pz["weeks"]):
            cells = " | ".join(_f(pz[f"{g}_{state}"][w]) for g in ("atypical", "typical") for state in ("on", "off"))
            lines.append(f"| {week} | {cells} |")
        for g in ("atypical", "typical"):
            if f"{g}_week4_reduction" in pz:
                lines.append(f"\n{g.capitalize()} customers ({pz[f'{g}_customers']}): week-4 sacrifice "
                             f"{100 * pz[f'{g}_week4_reduction']:.1f} % lower with personalisation.")
        lines += ["", "Test days, personalised (layer warmed on the training days) against global:", "", _HEADER,
                  _row("personalised", pz["test_personalised"]), _row("global", pz["test_global"])]
    lines += ["", "## Plots", *(f"![{name[:-4]}]({name})" for name in _PLOTS), ""]
    return "\n".join(lines)


# ------------------------------------------------------------------------------ plots


def _confusion(ev: Evaluation, path: Path) -> None:
    import matplotlib.pyplot as plt

    m = ev.confusion.astype(np.float64)
    rows = m.sum(axis=1, keepdims=True)
    share = np.divide(m, rows, out=np.zeros_like(m), where=rows > 0)
    size = max(5.0, 0.35 * len(ev.jobs) + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(ev.jobs)), ev.jobs, rotation=90, fontsize=7)
    ax.set_yticks(range(len(ev.jobs)), ev.jobs, fontsize=7)
    ax.set_xlabel("predicted next job")
    ax.set_ylabel("actual next job")
    ax.set_title("Next job: confusion (row-normalised)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _reliability(ev: Evaluation, path: Path) -> None:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="perfect")
    best = ev.summary["best_baseline"]["log_loss"]
    for name, p in (("model", ev.p_model), (best, ev.p_baselines[best])):
        r = reliability(p, ev.y)
        used = r.count > 0
        ax.plot(r.confidence[used], r.accuracy[used], marker="o", label=name)
    ax.set_xlabel("confidence (top-1 probability)")
    ax.set_ylabel("accuracy")
    ax.set_title("Reliability")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _history(ev: Evaluation, path: Path) -> None:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for state, label in (("off", "global model"), ("on", "with personalisation")):
        values = ev.daily.get(state, [])
        if values:
            ax.plot(np.arange(1, len(values) + 1), values, marker=".", label=label)
    ax.axvline(ev.split_day + 0.5, color="grey", linestyle=":", label="train | test")
    ax.set_xlabel("days of history")
    ax.set_ylabel("next-job top-1")
    ax.set_title("Accuracy against days of history")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _markets(ev: Evaluation, path: Path) -> None:
    import matplotlib.pyplot as plt

    per = ev.summary["model"]["per_market"]
    markets = list(per)
    names = ["model", *ev.summary["baselines"]]
    fig, ax = plt.subplots(figsize=(max(6.0, 1.3 * len(markets) + 2), 4))
    width = 0.8 / len(names)
    for k, name in enumerate(names):
        source = per if name == "model" else ev.summary["baselines"][name]["per_market"]
        ax.bar(np.arange(len(markets)) + k * width, [source[m]["top1"] for m in markets], width, label=name)
    ax.set_xticks(np.arange(len(markets)) + 0.4 - width / 2, markets, rotation=20, fontsize=8)
    ax.set_ylabel("next-job top-1")
    ax.set_title("Accuracy per market")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _sacrifice(ev: Evaluation, path: Path) -> None:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for key, values in ev.weekly.items():
        if values and not all(math.isnan(v) for v in values):
            group, state = key.split("/")
            ax.plot(np.arange(1, len(values) + 1), values, marker="o", linestyle="-" if state == "on" else "--",
                    label=f"{group}, personalisation {state}")
    ax.set_xlabel("week of history")
    ax.set_ylabel("mean sacrifice (1 − p[actual])")
    ax.set_title("Customer sacrifice and learning")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    else:
        ax.text(0.5, 0.5, "personalisation not evaluated", ha="center", va="center", transform=ax.transAxes)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
