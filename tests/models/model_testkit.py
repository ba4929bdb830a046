"""Helpers shared by the model tests (importable by name: pytest puts this folder on sys.path)."""

from __future__ import annotations

from models.train import TrainConfig

# Small heads, few passes, a coarser anticipation grid and recognition timer: the tests check
# behaviour and the direction of the claims, not the last point of accuracy.
FAST = TrainConfig(
    updates=150, min_epochs=2, max_epochs=4, patience=2, recognition_hidden=(16,), regressor_hidden=(8,),
    tick_s=300.0,
)
