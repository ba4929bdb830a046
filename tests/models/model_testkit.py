"""Helpers shared by the model tests (importable by name: pytest puts this folder on sys.path)."""

from __future__ import annotations

from models.train import TrainConfig

# Small heads and few passes: the tests check behaviour, not accuracy.
FAST = TrainConfig(updates=150, min_epochs=2, max_epochs=4, patience=2, recognition_hidden=(16,), regressor_hidden=(8,))
