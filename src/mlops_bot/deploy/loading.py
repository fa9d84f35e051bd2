"""Loading one model version into memory (`load_version` -> `LoadedModel`): the model file through
the skops allow-list of `model_file.py`, and its signature. The only module of the server that
reads model files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlops_bot.deploy.metrics import VersionRecorder
from mlops_bot.deploy.oip import plain
from mlops_bot.deploy.signature import SIGNATURE_FILE, FeatureSpec, features_from_signature, infer_features
from mlops_bot.model_file import load_verified

MODEL_FILE = "model.skops"


class LoadedModel:
    """One model version in memory with what is needed to validate inputs for it."""

    def __init__(self, name: str, version: str, model: Any, features: list[FeatureSpec], source: str) -> None:
        self.name = name
        self.version = version
        self.model = model
        self.features = features
        self.source = source
        self.recorder = VersionRecorder()
        classes = getattr(model, "classes_", None)
        self.classes: list[Any] | None = None if classes is None else [plain(c) for c in classes]
        self.has_proba = hasattr(model, "predict_proba")

    def predict(self, frame: pd.DataFrame) -> list[Any]:
        result = np.asarray(self.model.predict(frame))
        values = result.tolist()  # plain Python scalars already, except inside object arrays
        return [plain(v) for v in values] if result.dtype == object else values

    def predict_proba(self, frame: pd.DataFrame) -> list[list[float]] | None:
        if not self.has_proba:
            return None
        return np.asarray(self.model.predict_proba(frame), dtype=float).tolist()


def load_version(name: str, version: str, path: str | Path) -> LoadedModel:
    """Load a model directory (model.skops [+ signature.json], as `Registry.download` leaves it) or a
    single model file, through the skops allow-list, after checking the folder's SHA256SUMS."""
    path = Path(path)
    model_path = path / MODEL_FILE if path.is_dir() else path
    model = load_verified(model_path, whole_folder=path.is_dir())
    signature = model_path.parent / SIGNATURE_FILE
    if signature.is_file():
        features = features_from_signature(json.loads(signature.read_text(encoding="utf-8")))
    else:
        features = infer_features(model)
    return LoadedModel(name, version, model, features, str(path))
