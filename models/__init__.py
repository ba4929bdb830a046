"""Genius models: numba features, scikit-learn heads exported to ONNX, inference, personalisation.

The hub needs :class:`Anticipator` (load an artifact, predict, explain), :func:`because`,
:class:`RecognitionState` and :class:`PersonalLayer`; training and evaluation live in
``models.train`` and ``models.evaluate`` (they import scikit-learn, which inference does not).
Names are imported on first use, so ``import models.dataset`` does not load onnxruntime.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from models.artifact import DEFAULT_ARTIFACT, ArtifactMeta, default_artifact, read_meta
    from models.inference import Anticipator, FeatureGroup, Prediction, Reason, RecognitionState, because
    from models.personalise import Context, PersonalLayer, Verdict, sacrifice
    from models.prior_shift import History, PriorShift

_HOME = {
    "DEFAULT_ARTIFACT": "models.artifact",
    "ArtifactMeta": "models.artifact",
    "default_artifact": "models.artifact",
    "read_meta": "models.artifact",
    "Anticipator": "models.inference",
    "FeatureGroup": "models.inference",
    "Prediction": "models.inference",
    "Reason": "models.inference",
    "RecognitionState": "models.inference",
    "because": "models.inference",
    "Context": "models.personalise",
    "PersonalLayer": "models.personalise",
    "Verdict": "models.personalise",
    "sacrifice": "models.personalise",
    "History": "models.prior_shift",
    "PriorShift": "models.prior_shift",
}

__all__ = sorted(_HOME)


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module 'models' has no attribute {name!r}")
    return getattr(importlib.import_module(home), name)
