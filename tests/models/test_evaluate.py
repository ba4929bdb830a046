"""``models.evaluate``: the model against baselines, and the personalisation claim, on a small
simulated population (fast); the real-data claims skip without ../shared/datasets."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from model_testkit import FAST

from models.dataset import Dataset
from models.evaluate import Evaluation, evaluate
from models.report import write_report

BASELINE_NAMES = {"majority", "time_of_day", "markov", "markov_tod"}


@pytest.fixture(scope="module")
def month() -> Dataset:
    """8 customers for 4 weeks, two of them atypical (a night owl and a shift worker)."""
    from simulations.export import simulate_dataset

    dataset = simulate_dataset(8, 28, 10)
    assert sum(info["atypical"] for info in dataset.meta["customer_info"].values()) == 2
    return dataset


@pytest.fixture(scope="module")
def evaluation(month: Dataset) -> Evaluation:
    return evaluate(month, config=FAST, seed=0)


def test_the_model_beats_every_baseline_on_top1_and_log_loss(evaluation: Evaluation) -> None:
    s = evaluation.summary
    assert set(s["baselines"]) == BASELINE_NAMES
    for name, figures in s["baselines"].items():
        assert s["model"]["top1"] > figures["top1"], name
        assert s["model"]["log_loss"] < figures["log_loss"], name
    assert s["beats_best_baseline"]["top1"] and s["beats_best_baseline"]["log_loss"]


def test_figures_are_complete_finite_and_broken_down_by_market(evaluation: Evaluation) -> None:
    s = evaluation.summary
    for figures in (s["model"], *s["baselines"].values()):
        for metric in ("top1", "top3", "macro_f1", "log_loss", "ece", "expected_in_abs_error_s"):
            assert math.isfinite(figures[metric]), metric
        assert 0.0 <= figures["top1"] <= figures["top3"] <= 1.0
    assert set(s["model"]["per_market"]) <= set(evaluation.markets)
    assert sum(m["n"] for m in s["model"]["per_market"].values()) == s["test_points"]
    assert "idle" in s["protocol"]["unlabelled"] and "no ground truth" in s["protocol"]["job_inputs"]
    assert s["oracle"]["model"]["top1"] > 0 and 0.0 <= s["recognition"]["top1"] <= 1.0


def test_the_global_head_is_reported_beside_the_customer_shifted_model(evaluation: Evaluation) -> None:
    s = evaluation.summary
    shift = s["model_info"]["prior_shift"]
    assert shift["weight"] >= 0.0 and shift["buckets"] in (1, 8)
    assert s["model_global"]["n"] == s["model"]["n"] == s["test_points"]
    if shift["weight"] == 0.0:  # no shift chosen: the model is the global head
        assert s["model_global"]["top1"] == s["model"]["top1"]


def test_personalisation_cuts_atypical_customers_week4_sacrifice_by_a_fifth(evaluation: Evaluation) -> None:
    pz = evaluation.summary["personalisation"]
    assert pz["weeks"] == [1, 2, 3, 4]
    assert pz["atypical_customers"] == 2 and pz["typical_customers"] == 6
    assert "held out" in pz["global_model"]
    assert pz["atypical_week4_reduction"] >= 0.20
    assert pz["atypical_on"][3] < pz["atypical_off"][3]


def test_the_report_folder_has_markdown_plots_and_strict_json(evaluation: Evaluation, tmp_path: Path) -> None:
    report = write_report(evaluation, tmp_path / "report")
    files = {p.name for p in report.parent.iterdir()}
    assert {"report.md", "summary.json", "confusion.png", "reliability.png", "history.png", "markets.png", "sacrifice.png"} <= files
    for png in report.parent.glob("*.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = report.read_text()
    assert "chronological" in text and "markov_tod" in text and "sacrifice" in text
    summary = json.loads((report.parent / "summary.json").read_text(), parse_constant=lambda c: pytest.fail(f"{c} in JSON"))
    assert summary["model"]["top1"] == pytest.approx(evaluation.summary["model"]["top1"])


def test_evaluate_cli_prints_the_figures_as_json(month: Dataset, tmp_path: Path, capsys: pytest.CaptureFixture[str], small_artifact: Path) -> None:
    from genius.cli import main
    from models.dataset import save

    data = save(month, tmp_path / "month")
    code = main(["evaluate", "--data", str(data), "--model", str(small_artifact), "--out", str(tmp_path / "r"),
                 "--no-personalisation", "--json"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert {"top1", "top3", "log_loss", "macro_f1", "ece"} <= set(out["model"])
    assert set(out["baselines"]) == BASELINE_NAMES
    assert (tmp_path / "r" / "report.md").exists()
