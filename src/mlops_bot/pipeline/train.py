"""Training: the built-in scikit-learn pipeline described in YAML, or the user's own command.

The user-command contract (documented in docs/config.md): the command runs in `train.workdir` with
MLOPS_TRAIN_PATH, MLOPS_HOLDOUT_PATH, MLOPS_MODEL_PATH, MLOPS_PREDICTIONS_PATH and MLOPS_SEED set; it
writes a skops model to MLOPS_MODEL_PATH and/or holdout predictions to MLOPS_PREDICTIONS_PATH.
Either file is enough to evaluate.

The command is the pull request's code: it gets an allow-listed environment (`training_environment`:
PATH, HOME, locale, temp dir and proxy settings, the contract variables, and what `train.env` names),
never a token or a key of ours. Its output goes to a log file, rewritten with known secrets masked
when it ends; its last line is quoted (masked) in the error. The timeout kills every process of the
run (`kill_run`): its session, its process group, every descendant, and every process that carries
the run's `MLOPS_TRAIN_RUN_ID` in its environment (a `setsid` daemon leaves the session, not that).
"""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlops_bot.config import BuiltinPipeline, MlopsConfig
from mlops_bot.dataset import read_table, require_columns
from mlops_bot.errors import ConfigError, DataError, TrainingError
from mlops_bot.pipeline.evaluate import Predictions

ESTIMATORS: dict[str, str] = {
    "logistic_regression": "sklearn.linear_model.LogisticRegression",
    "random_forest": "sklearn.ensemble.RandomForestClassifier",
    "random_forest_regressor": "sklearn.ensemble.RandomForestRegressor",
    "gradient_boosting": "sklearn.ensemble.GradientBoostingClassifier",
    "gradient_boosting_regressor": "sklearn.ensemble.GradientBoostingRegressor",
    "hist_gradient_boosting": "sklearn.ensemble.HistGradientBoostingClassifier",
    "hist_gradient_boosting_regressor": "sklearn.ensemble.HistGradientBoostingRegressor",
    "decision_tree": "sklearn.tree.DecisionTreeClassifier",
    "decision_tree_regressor": "sklearn.tree.DecisionTreeRegressor",
    "extra_trees": "sklearn.ensemble.ExtraTreesClassifier",
    "knn": "sklearn.neighbors.KNeighborsClassifier",
    "dummy": "sklearn.dummy.DummyClassifier",
    "dummy_regressor": "sklearn.dummy.DummyRegressor",
    "ridge": "sklearn.linear_model.Ridge",
    "linear_regression": "sklearn.linear_model.LinearRegression",
    "lasso": "sklearn.linear_model.Lasso",
}
# For regression configs the classifier short names map to their regressor twins.
_REGRESSION_TWINS = {
    "random_forest": "random_forest_regressor",
    "gradient_boosting": "gradient_boosting_regressor",
    "hist_gradient_boosting": "hist_gradient_boosting_regressor",
    "decision_tree": "decision_tree_regressor",
    "dummy": "dummy_regressor",
}


def feature_columns(config: MlopsConfig, frame: pd.DataFrame) -> list[str]:
    """Configured features, else built-in ones, else every column but target and id."""
    data = config.data
    if data.features is not None:
        return list(data.features)
    builtin = config.train.builtin
    if builtin is not None and (builtin.numeric_features or builtin.categorical_features):
        return [*builtin.numeric_features, *builtin.categorical_features]
    skip = {data.target, data.id, "prediction"}
    return [c for c in frame.columns if c not in skip]


def estimator_class(name: str, task: str) -> type:
    """Short name or dotted `sklearn.` path -> class. Nothing outside scikit-learn is importable."""
    if task == "regression":
        name = _REGRESSION_TWINS.get(name, name)
    path = ESTIMATORS.get(name, name)
    if not path.startswith("sklearn.") or path.count(".") < 2:
        raise ConfigError("config", "train.builtin.estimator",
                          f"unknown estimator {name!r}: use one of {', '.join(sorted(ESTIMATORS))} "
                          "or a dotted path inside sklearn (e.g. sklearn.svm.SVC)")
    module_name, _, class_name = path.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError):
        raise ConfigError("config", "train.builtin.estimator",
                          f"{path} does not exist in scikit-learn") from None
    if not isinstance(cls, type):
        raise ConfigError("config", "train.builtin.estimator", f"{path} is not a class")
    return cls


def build_pipeline(spec: BuiltinPipeline, task: str, frame: pd.DataFrame, features: list[str], seed: int
                   ) -> Any:
    """ColumnTransformer (impute/scale numeric, encode categorical) + the configured estimator."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

    if spec.numeric_features or spec.categorical_features:
        numeric, categorical = list(spec.numeric_features), list(spec.categorical_features)
    else:
        numeric = [c for c in features if pd.api.types.is_numeric_dtype(frame[c])
                   and not pd.api.types.is_bool_dtype(frame[c])]
        categorical = [c for c in features if c not in numeric]
    pre = spec.preprocessing
    numeric_steps: list[tuple[str, Any]] = []
    if pre.impute_numeric != "none":
        numeric_steps.append(("impute", SimpleImputer(strategy=pre.impute_numeric)))
    if pre.scale_numeric:
        numeric_steps.append(("scale", StandardScaler()))
    encoder: Any = (OneHotEncoder(handle_unknown="ignore") if pre.encode_categorical == "onehot"
                    else OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1))
    categorical_steps = [("impute", SimpleImputer(strategy="most_frequent")), ("encode", encoder)]
    transformers: list[tuple[str, Any, list[str]]] = []
    if numeric:
        transformers.append(("numeric", Pipeline(numeric_steps) if numeric_steps else "passthrough", numeric))
    if categorical:
        transformers.append(("categorical", Pipeline(categorical_steps), categorical))
    cls = estimator_class(spec.estimator, task)
    params = dict(spec.params)
    if "random_state" in inspect.signature(cls).parameters and "random_state" not in params:
        params["random_state"] = seed
    try:
        estimator = cls(**params)
    except TypeError as exc:
        raise ConfigError("config", "train.builtin.params",
                          f"{cls.__name__} rejects these params: {exc}") from None
    return Pipeline([("features", ColumnTransformer(transformers)), ("model", estimator)])


def train_builtin(config: MlopsConfig, train: pd.DataFrame) -> tuple[Any, list[str]]:
    assert config.train.builtin is not None
    features = feature_columns(config, train)
    require_columns(train, [*features, config.data.target], "train data")
    model = build_pipeline(config.train.builtin, config.model.task, train, features, config.seed)
    try:
        model.fit(train[features], train[config.data.target])
    except ValueError as exc:
        raise TrainingError(f"built-in {config.train.builtin.estimator} failed to train: {exc}") from None
    return model, features


def predict(model: Any, frame: pd.DataFrame, features: list[str], task: str) -> Predictions:
    """Predictions of a fitted model on the holdout (with probabilities when it offers them)."""
    require_columns(frame, features, "holdout data")
    X = frame[features]
    try:
        y_pred = np.asarray(model.predict(X))
        if y_pred.ndim == 2 and y_pred.shape[1] == 1:  # CatBoostClassifier: one label per row, as a column
            y_pred = y_pred[:, 0]
        proba = None
        classes: tuple[Any, ...] = ()
        if task == "classification" and hasattr(model, "predict_proba"):
            proba = np.asarray(model.predict_proba(X), dtype=np.float64)
            classes = tuple(v.item() if isinstance(v, np.generic) else v for v in model.classes_)
    except (ValueError, KeyError, TypeError) as exc:
        raise TrainingError(f"the model cannot predict on the holdout: {exc}") from None
    return Predictions(y_pred=y_pred, proba=proba, classes=classes)

def read_predictions(path: Path, holdout: pd.DataFrame, config: MlopsConfig) -> Predictions:
    """Predictions file -> Predictions aligned with the holdout (by id column when configured)."""
    frame = read_table(path, "predictions")
    require_columns(frame, ["prediction"], f"predictions file {path}")
    id_col = config.data.id
    if id_col is not None:
        require_columns(frame, [id_col], f"predictions file {path}")
        if frame[id_col].duplicated().any():
            raise TrainingError(f"predictions file {path}: duplicate values in id column {id_col!r}")
        indexed = frame.set_index(id_col)
        missing = ~holdout[id_col].isin(indexed.index)
        if missing.any():
            raise TrainingError(f"predictions file {path} lacks {int(missing.sum())} holdout id(s), "
                                f"e.g. {holdout[id_col][missing].iloc[0]!r}")
        frame = indexed.loc[holdout[id_col].to_numpy()].reset_index()
    elif len(frame) != len(holdout):
        raise TrainingError(f"predictions file {path} has {len(frame)} rows but the holdout has "
                            f"{len(holdout)} (configure data.id to align by id)")
    if frame["prediction"].isna().any():
        raise TrainingError(f"predictions file {path}: column 'prediction' has missing values")
    y_pred = frame["prediction"].to_numpy()
    proba: np.ndarray[Any, Any] | None = None
    classes: tuple[Any, ...] = ()
    if config.model.task == "classification":
        proba_cols = [c for c in frame.columns if str(c).startswith("proba_")]
        if proba_cols:
            proba = frame[proba_cols].to_numpy(dtype=np.float64)
            target = holdout[config.data.target]
            classes = tuple(_label(str(c).removeprefix("proba_"), target) for c in proba_cols)
        elif "proba" in frame.columns:
            proba = frame["proba"].to_numpy(dtype=np.float64)
        if proba is not None and not np.isfinite(proba).all():
            raise TrainingError(f"predictions file {path}: probability columns have missing values")
    if config.model.task == "regression":
        try:
            y_pred = y_pred.astype(np.float64)
        except ValueError:
            raise DataError(f"predictions file {path}: 'prediction' must be numeric for regression") from None
    return Predictions(y_pred=y_pred, proba=proba, classes=classes)


def _label(text: str, target: pd.Series) -> Any:
    """`proba_1` names class 1 when the target is numeric."""
    if pd.api.types.is_integer_dtype(target):
        try:
            return int(text)
        except ValueError:
            return text
    if pd.api.types.is_bool_dtype(target):
        return text.lower() == "true"
    return text
