"""The model against the baselines on real homes (Ordóñez A and B, ARAS House A overall and
each of its two residents), same hyperparameters as everywhere. Skips without ../shared/datasets."""

from __future__ import annotations

from pathlib import Path

import pytest

from models.evaluate import evaluate

pytestmark = pytest.mark.dataset


def _present(shared_datasets: Path, name: str) -> Path:
    path = shared_datasets / name
    if not path.exists():
        pytest.skip(f"real dataset not present at {path} (../shared/datasets is not part of this checkout)")
    return path


@pytest.mark.parametrize("home", ["A", "B"])
def test_the_model_beats_the_best_baseline_in_each_ordonez_home(home: str, shared_datasets: Path) -> None:
    from simulations.importers import import_ordonez

    s = evaluate(import_ordonez(_present(shared_datasets, "ordonez_adl"), home=home), personalise=False).summary
    assert s["beats_best_baseline"]["top1"], s["best_baseline"]
    assert s["beats_best_baseline"]["log_loss"], s["best_baseline"]


def test_the_model_beats_the_best_baseline_on_aras_house_a(shared_datasets: Path) -> None:
    from simulations.importers import import_aras

    s = evaluate(import_aras(_present(shared_datasets, "aras"), house="A"), personalise=False).summary
    assert s["beats_best_baseline"]["top1"] and s["beats_best_baseline"]["log_loss"]
    for resident in ("aras-a-r1", "aras-a-r2"):  # each resident against the best baseline *for that resident*
        mine = s["model"]["per_customer"][resident]
        rivals = {name: b["per_customer"][resident] for name, b in s["baselines"].items()}
        assert s["beats_best_baseline"][f"{resident}/top1"], (resident, mine["top1"], {n: r["top1"] for n, r in rivals.items()})
        assert s["beats_best_baseline"][f"{resident}/log_loss"], (resident, mine["log_loss"], {n: r["log_loss"] for n, r in rivals.items()})
