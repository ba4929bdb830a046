"""``genius train`` and ``genius evaluate`` from the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from genius.cli import main
from models.artifact import ARTIFACTS, read_meta
from models.dataset import Dataset, save


@pytest.fixture(scope="module")
def data_dir(small_dataset: Dataset, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save(small_dataset, tmp_path_factory.mktemp("data") / "small")


def test_train_writes_a_loadable_artifact_and_a_json_summary(data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "model"
    assert main(["train", "--data", str(data_dir), "--out", str(out), "--seed", "3", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["model"] == "genius-sim@1.0.0" and summary["points"] > 0
    meta = read_meta(out)
    assert meta.seed == 3 and meta.trained_on["data"] == str(data_dir)


def test_train_refuses_to_ship_a_model_trained_on_real_data(small_dataset: Dataset, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    real = Dataset.from_columns({**small_dataset.meta, "source": "ordonez:A"}, small_dataset.events, small_dataset.labels)
    folder = save(real, tmp_path / "real")
    assert main(["train", "--data", str(folder), "--out", str(ARTIFACTS / "never")]) == 2
    assert "refusing" in capsys.readouterr().err
    assert not (ARTIFACTS / "never").exists()
