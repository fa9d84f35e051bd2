"""What a model version accepts: its input features (`FeatureSpec`), read from the `signature.json`
stored beside the model or inferred from a fitted scikit-learn model. Pure: the caller reads files."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import BaseModel

from mlops_bot.errors import IntegrityError

SIGNATURE_FILE = "signature.json"


class FeatureSpec(BaseModel):
    """One input of the model. `accepts_missing`: the model imputes a missing value (null/NaN) of
    this feature itself (an imputer on the column, or an estimator with native NaN support), so the
    server passes it on as NaN; otherwise a missing value is the client's error (4xx).
    `values` for a categorical feature: "string" when the model's encoder knows only string
    categories (a number is then the client's error), "any" when not known."""

    name: str
    kind: Literal["numeric", "categorical"] = "numeric"
    accepts_missing: bool = False
    values: Literal["any", "string"] = "any"


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
    string_valued: set[str] = set()
    imputed: set[str] = set()
    for transformer in _column_transformers(model):
        for _, inner, columns in getattr(transformer, "transformers_", []):
            if not isinstance(columns, list | tuple | np.ndarray):
                continue
            named = [str(c) for c in columns]
            if _is_encoder(inner):
                categorical.update(named)
                if _string_categories(inner):
                    string_valued.update(named)
            if _imputes(inner):
                imputed.update(named)
    native_nan = _allows_nan(model)
    return [
        FeatureSpec(name=str(n), kind="categorical" if str(n) in categorical else "numeric",
                    accepts_missing=native_nan or str(n) in imputed,
                    values="string" if str(n) in string_valued else "any")
        for n in names
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


def _parts(transformer: Any) -> list[Any]:
    return [transformer] + [step for _, step in getattr(transformer, "steps", []) or []]


def _is_encoder(transformer: Any) -> bool:
    from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder

    return any(isinstance(p, OneHotEncoder | OrdinalEncoder) for p in _parts(transformer))


def _string_categories(transformer: Any) -> bool:
    """The first encoder of a column's transformer was fitted on string categories only (a
    preceding imputer may still let missing values through)."""
    from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder

    for part in _parts(transformer):
        if isinstance(part, OneHotEncoder | OrdinalEncoder):
            categories = getattr(part, "categories_", None) or []
            return bool(categories) and all(
                all(isinstance(value, str) for value in column) for column in categories)
    return False


def _imputes(transformer: Any) -> bool:
    """A transformer that fills missing values in (sklearn.impute), first in its pipeline."""
    steps = getattr(transformer, "steps", None) or [(None, transformer)]
    return type(steps[0][1]).__module__.startswith("sklearn.impute")


def _allows_nan(model: Any) -> bool:
    """The model as a whole declares it takes NaN (scikit-learn's `allow_nan` input tag, e.g.
    HistGradientBoosting*)."""
    tags = getattr(model, "__sklearn_tags__", None)
    if tags is None:
        return False
    try:
        return bool(tags().input_tags.allow_nan)
    except Exception:  # a third-party estimator with broken tags: assume not
        return False
