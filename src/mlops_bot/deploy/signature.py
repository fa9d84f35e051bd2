"""What a model version accepts: its input features (`FeatureSpec`), read from the `signature.json`
stored beside the model or inferred from a fitted scikit-learn model. Pure: the caller reads files."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import BaseModel

from mlops_bot.errors import IntegrityError

SIGNATURE_FILE = "signature.json"


class FeatureSpec(BaseModel):
    name: str
    kind: Literal["numeric", "categorical"] = "numeric"


def features_from_signature(raw: Any) -> list[FeatureSpec]:
    """The `inputs` of a parsed signature.json."""
    return [FeatureSpec.model_validate(item) for item in raw.get("inputs", [])]


def infer_features(model: Any) -> list[FeatureSpec]:
    """Feature names and kinds from a fitted scikit-learn model: names from `feature_names_in_`,
    categorical columns from encoders inside a ColumnTransformer."""
    names = getattr(model, "feature_names_in_", None)
    if names is None:
        raise IntegrityError(
            "the model does not record its feature names (fit it on a DataFrame) and no "
            f"{SIGNATURE_FILE} was found next to it"
        )
    categorical: set[str] = set()
    for transformer in _column_transformers(model):
        for _, inner, columns in getattr(transformer, "transformers_", []):
            if _is_encoder(inner) and isinstance(columns, list | tuple | np.ndarray):
                categorical.update(str(c) for c in columns)
    return [
        FeatureSpec(name=str(n), kind="categorical" if str(n) in categorical else "numeric") for n in names
    ]


def _column_transformers(model: Any) -> list[Any]:
    from sklearn.compose import ColumnTransformer

    found: list[Any] = []
    stack = [model]
    while stack:
        item = stack.pop()
        if isinstance(item, ColumnTransformer):
            found.append(item)
        stack.extend(step for _, step in getattr(item, "steps", []) or [])
    return found


def _is_encoder(transformer: Any) -> bool:
    from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder

    parts = [transformer] + [step for _, step in getattr(transformer, "steps", []) or []]
    return any(isinstance(p, OneHotEncoder | OrdinalEncoder) for p in parts)
