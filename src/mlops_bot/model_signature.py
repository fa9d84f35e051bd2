"""A model version's signature: its inputs (`FeatureSpec`: name, OIP datatype, shape, kind) and outputs
(`OutputSpec`), written as `signature.json` beside the model when it is validated or registered
(covered by the folder's SHA256SUMS) and checked when it is served: the model must agree with it at
load, a request must match it, and a canary must take the same inputs as stable (`input_difference`).
Pure: the caller reads and writes files and loads models.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, Field, ValidationError, model_validator

from mlops_bot.errors import IntegrityError, MlopsError

SIGNATURE_FILE = "signature.json"
SIGNATURE_FORMAT = 1
# The datatype a feature of each kind is sent as when the model does not say more (scikit-learn casts
# numbers to float64; categories are strings or numbers, sent as BYTES).
DEFAULT_DATATYPE = {"numeric": "FP64", "categorical": "BYTES"}
INTEGER_DATATYPES = frozenset({"INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64"})


class SignatureMismatch(MlopsError):
    """Two versions that would answer the same requests take different inputs."""


class FeatureSpec(BaseModel):
    """One input of the model. `accepts_missing`: the model imputes a missing value (null/NaN) of
    this feature itself (an imputer on the column, or an estimator with native NaN support), so the
    server passes it on as NaN; otherwise a missing value is the client's error (4xx).
    `values` for a categorical feature: "string" when the model's encoder knows only string
    categories (a number is then the client's error), "any" when not known.
    `datatype` (OIP v2: FP64, FP32, INT64, BYTES, ...) and `shape` ([-1]: one value per row) are what
    the metadata endpoint reports; an integer datatype refuses fractional numbers."""

    name: str
    kind: Literal["numeric", "categorical"] = "numeric"
    accepts_missing: bool = False
    values: Literal["any", "string"] = "any"
    datatype: str = ""
    shape: list[int] = Field(default_factory=lambda: [-1])

    @model_validator(mode="after")
    def _default_datatype(self) -> FeatureSpec:
        if not self.datatype:
            self.datatype = DEFAULT_DATATYPE[self.kind]
        return self


class OutputSpec(BaseModel):
    """One output tensor: `predict` (labels or numbers), `predict_proba` ([-1, classes])."""

    name: str
    datatype: str
    shape: list[int]


class ModelSignature(BaseModel):
    """What a version takes and returns. `platform`: how it runs (`sklearn` through skops, `onnx`
    through onnxruntime); `classes`: a classifier's labels in the order of its probabilities."""

    format: int = SIGNATURE_FORMAT
    platform: str = "sklearn"
    inputs: list[FeatureSpec]
    outputs: list[OutputSpec] = Field(default_factory=list)
    classes: list[Any] | None = None

    def to_json(self) -> str:
        return self.model_dump_json(indent=1) + "\n"


def features_from_signature(raw: Any) -> list[FeatureSpec]:
    """The `inputs` of a parsed signature.json."""
    return [FeatureSpec.model_validate(item) for item in raw.get("inputs", [])]


def parse_signature(raw: Any, source: str) -> ModelSignature:
    """A parsed signature.json (older files hold `inputs` only); one clear error when it is not one."""
    try:
        return ModelSignature.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        raise IntegrityError(f"{source} is not a model signature: {where}: {first.get('msg')}") from None


def oip_datatype(values: list[Any]) -> str:
    """The OIP datatype that holds all these (plain Python) values."""
    if all(isinstance(v, bool) for v in values):
        return "BOOL"
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return "INT64"
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        return "FP64"
    return "BYTES"


def plain(value: Any) -> Any:
    """A numpy scalar as the Python value it holds; anything else unchanged."""
    item = getattr(value, "item", None)
    return item() if callable(item) else value


def outputs_of(classes: list[Any] | None, has_proba: bool) -> list[OutputSpec]:
    """The output tensors of a model with these class labels (None: a regressor)."""
    outputs = [OutputSpec(name="predict", datatype=oip_datatype(classes) if classes else "FP64", shape=[-1])]
    if has_proba:
        outputs.append(OutputSpec(name="predict_proba", datatype="FP64", shape=[-1, len(classes or [])]))
    return outputs


def signature_of(model: Any, feature_names: list[str] | None = None,
                 string_features: Collection[str] = ()) -> ModelSignature:
    """The signature of a loaded model: inputs from the model itself (a scikit-learn model's
    `feature_names_in_` and encoders, an ONNX graph's input types, CatBoost's `feature_names_` and
    categorical features), else `feature_names` (a model fitted on arrays, given the table's feature
    columns; those in `string_features` hold strings in the table, so they are categorical);
    outputs from its classes."""
    inputs_of = getattr(model, "signature_inputs", None)  # onnx_model.OnnxModel
    if callable(inputs_of):
        inputs = inputs_of(feature_names)
        platform = "onnx"
    else:
        platform = "sklearn"
        own, categorical = _catboost_features(model)
        names = [str(n) for n in (feature_names or own)]
        if getattr(model, "feature_names_in_", None) is None and names:
            strings = set(string_features) | categorical
            inputs = [FeatureSpec(name=n, kind="categorical", values="string", datatype="BYTES")
                      if n in strings else FeatureSpec(name=n) for n in names]
        else:
            inputs = infer_features(model)
    classes = model_classes(model)
    return ModelSignature(platform=platform, inputs=inputs, classes=classes,
                          outputs=outputs_of(classes, hasattr(model, "predict_proba")))


def model_feature_names(model: Any) -> list[str] | None:
    """The feature names a fitted model records itself (scikit-learn's `feature_names_in_`,
    CatBoost's `feature_names_`), or None."""
    names = getattr(model, "feature_names_in_", None)
    if names is not None:
        return [str(n) for n in names]
    return _catboost_features(model)[0] or None


def _catboost_features(model: Any) -> tuple[list[str], set[str]]:
    """A fitted CatBoost model's feature names and its categorical ones (no `feature_names_in_`)."""
    names = getattr(model, "feature_names_", None)
    indices = getattr(model, "get_cat_feature_indices", None)
    if not names or not callable(indices):
        return [], set()
    try:
        categorical = {str(names[i]) for i in indices()}
    except Exception:  # an unfitted or unusual model: names only
        categorical = set()
    return [str(n) for n in names], categorical


def model_classes(model: Any) -> list[Any] | None:
    classes = getattr(model, "classes_", None)
    if classes is None or not len(classes):
        return None
    return [plain(c) for c in classes]


def check_model(signature: ModelSignature, model: Any, source: str) -> None:
    """The model must be the one the signature describes: the same feature names in the same order
    (when the model records them; else as many features as it takes, when it says) and the same
    class labels."""
    names = model_feature_names(model)
    declared = [f.name for f in signature.inputs]
    if names is not None and names != declared:
        raise IntegrityError(
            f"{source} lists the inputs {', '.join(declared) or '(none)'} but the model was fitted on "
            f"{', '.join(names)}; the signature does not belong to this model"
        )
    width = getattr(model, "n_features_in_", None)
    if names is None and isinstance(width, int) and width > 0 and width != len(declared):
        raise IntegrityError(f"{source} lists {len(declared)} input(s) but the model takes {width} "
                             "feature(s); the signature does not belong to this model")
    classes = model_classes(model)
    if signature.classes is not None and classes is not None and signature.classes != classes:
        raise IntegrityError(f"{source} gives the classes {signature.classes} but the model predicts "
                             f"{classes}")


def input_difference(first: ModelSignature, second: ModelSignature, labels: tuple[str, str]) -> str | None:
    """How the inputs of two versions differ (names, order, datatypes, shapes), or None when a
    request one accepts is a request the other accepts too."""
    a = {f.name: f for f in first.inputs}
    b = {f.name: f for f in second.inputs}
    only_a = [n for n in a if n not in b]
    only_b = [n for n in b if n not in a]
    parts = []
    if only_a:
        parts.append(f"only {labels[0]} takes {', '.join(only_a)}")
    if only_b:
        parts.append(f"only {labels[1]} takes {', '.join(only_b)}")
    for name, spec in a.items():
        other = b.get(name)
        if other is None:
            continue
        if (spec.datatype, spec.shape) != (other.datatype, other.shape):
            parts.append(f"{name} is {spec.datatype} {spec.shape} in {labels[0]} but {other.datatype} "
                         f"{other.shape} in {labels[1]}")
        elif spec.kind != other.kind:
            parts.append(f"{name} is {spec.kind} in {labels[0]} but {other.kind} in {labels[1]}")
    if not parts and list(a) != list(b):
        parts.append(f"the inputs are in another order ({labels[0]}: {', '.join(a)}; "
                     f"{labels[1]}: {', '.join(b)}), so a [rows, features] tensor means different things")
    return "; ".join(parts) or None


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
