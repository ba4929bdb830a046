"""A small simulated dataset and a quickly trained artifact, shared by the model tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from model_testkit import FAST

from models.dataset import Dataset
from models.train import TrainedModel, train


@pytest.fixture(scope="session")
def small_dataset() -> Dataset:
    from simulations.export import simulate_dataset

    return simulate_dataset(3, 6, 11)


@pytest.fixture(scope="session")
def small_model(small_dataset: Dataset) -> TrainedModel:
    return train(small_dataset, config=FAST, seed=0, fraction=0.7)


@pytest.fixture(scope="session")
def small_artifact(small_model: TrainedModel, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from models.artifact import export

    folder = tmp_path_factory.mktemp("artifact") / "genius-test-0.1.0"
    return export(small_model, folder, name="genius-test", version="0.1.0", trained_on={"data": "simulate_dataset(3, 6, 11)"})
