"""Model metrics on the holdout, computed over row weights so the bootstrap can reuse them.

Every metric is written as a function of `weights` of shape (B, n): one row per bootstrap resample,
each entry the number of times a holdout row was drawn. A single evaluation is the B = 1 case with
all weights 1, which is exactly scikit-learn's unweighted metric. Pure numpy: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

Task = Literal["classification", "regression"]

# Binary: precision/recall/f1 score the positive label; multiclass: they are the macro averages.
CLASSIFICATION_METRICS: tuple[str, ...] = ("accuracy", "precision", "recall", "f1", "roc_auc", "log_loss")
AVERAGED_METRICS: tuple[str, ...] = (
    "precision_macro", "recall_macro", "f1_macro", "precision_weighted", "recall_weighted", "f1_weighted"
)
MULTICLASS_METRICS: tuple[str, ...] = ("accuracy", *AVERAGED_METRICS, "roc_auc", "log_loss")
REGRESSION_METRICS: tuple[str, ...] = ("rmse", "mae", "r2", "mape")
PROBABILITY_METRICS = frozenset({"roc_auc", "log_loss"})
_LOWER_IS_BETTER = frozenset({"log_loss", "rmse", "mae", "mape", "drift_share"})
_EPS = np.finfo(np.float64).eps

FloatArray = NDArray[np.float64]


def lower_is_better(metric: str) -> bool:
    """Losses, errors, drift share and fairness *differences* get worse as they grow."""
    return metric in _LOWER_IS_BETTER or metric.endswith("_difference")


def task_metrics(task: Task) -> tuple[str, ...]:
    """Every built-in metric computable for the task."""
    if task == "classification":
        return CLASSIFICATION_METRICS + AVERAGED_METRICS
    return REGRESSION_METRICS


def default_metrics(task: Task, multiclass: bool = False) -> tuple[str, ...]:
    """The metrics reported when the config lists none."""
    if task == "regression":
        return REGRESSION_METRICS
    return MULTICLASS_METRICS if multiclass else CLASSIFICATION_METRICS


@dataclass(frozen=True)
class Predictions:
    """A model's outputs on the holdout, aligned row by row with `y_true`.

    Classification: `y_pred` holds labels; `proba` (n, k) holds class probabilities in the order
    of `classes` (optional: without it roc_auc and log_loss are not computed).
    Regression: `y_pred` holds numbers and `proba` is None.
    """

    y_pred: NDArray[Any]
    proba: FloatArray | None = None
    classes: tuple[Any, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class EvaluationTarget:
    """The truth side of an evaluation: labels plus what counts as positive."""

    task: Task
    y_true: NDArray[Any]
    classes: tuple[Any, ...] = ()  # every class seen in truth or predictions, sorted
    positive_label: Any = 1

    @property
    def binary(self) -> bool:
        return len(self.classes) <= 2


def make_target(task: Task, y_true: NDArray[Any], predictions: list[Predictions], positive_label: Any = 1
                ) -> EvaluationTarget:
    """Collect the label set from the truth and every model's predictions (and proba columns)."""
    if task == "regression":
        return EvaluationTarget(task, np.asarray(y_true, dtype=np.float64))
    labels: set[Any] = set(np.asarray(y_true).tolist())
    for p in predictions:
        labels.update(np.asarray(p.y_pred).tolist())
        labels.update(p.classes)
    try:
        classes = tuple(sorted(labels))
    except TypeError:
        classes = tuple(sorted(labels, key=str))
    if len(classes) == 2 and positive_label not in classes:
        # e.g. labels "yes"/"no" with the default positive label 1: take the larger label as positive.
        positive_label = classes[1]
    return EvaluationTarget(task, np.asarray(y_true), classes, positive_label)


# ------------------------------------------------------------------------------------ weighted maths
def _wsum(weights: FloatArray, values: NDArray[Any]) -> FloatArray:
    return weights @ np.asarray(values, dtype=np.float64)


def _safe_div(num: FloatArray, den: FloatArray) -> FloatArray:
    """scikit-learn's zero_division=0 convention (with a warning there, silently here)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0)
    return out


def _prf(weights: FloatArray, truth: NDArray[Any], pred: NDArray[Any], label: Any
         ) -> tuple[FloatArray, FloatArray, FloatArray]:
    tp = _wsum(weights, (truth == label) & (pred == label))
    fp = _wsum(weights, (truth != label) & (pred == label))
    fn = _wsum(weights, (truth == label) & (pred != label))
    precision = _safe_div(tp, tp + fp)
    recall = _safe_div(tp, tp + fn)
    f1 = _safe_div(2 * tp, 2 * tp + fp + fn)
    return precision, recall, f1


def _binary_auc(weights: FloatArray, positive: NDArray[np.bool_], score: FloatArray) -> FloatArray:
    """Weighted Mann-Whitney AUC with ties counted half, vectorised over resamples.

    Rows are sorted by score once; tied scores form contiguous groups, so per-group weights come
    from `np.add.reduceat` along the row axis.
    """
    order = np.argsort(score, kind="mergesort")
    s = score[order]
    pos = positive[order].astype(np.float64)
    w = weights[:, order]
    starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])
    pos_g = np.add.reduceat(w * pos, starts, axis=1)
    neg_g = np.add.reduceat(w * (1.0 - pos), starts, axis=1)
    neg_below = np.cumsum(neg_g, axis=1) - neg_g
    num = np.sum(pos_g * (neg_below + 0.5 * neg_g), axis=1)
    den = pos_g.sum(axis=1) * neg_g.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def _proba_matrix(target: EvaluationTarget, p: Predictions) -> FloatArray | None:
    """Probabilities re-ordered to `target.classes` (missing classes get 0), or None."""
    if p.proba is None:
        return None
    proba = np.asarray(p.proba, dtype=np.float64)
    if proba.ndim == 1:  # probability of the positive class only
        if not target.binary:
            return None
        neg = [c for c in target.classes if c != target.positive_label]
        cols = {target.positive_label: proba, **({neg[0]: 1.0 - proba} if neg else {})}
        return np.column_stack([cols.get(c, np.zeros_like(proba)) for c in target.classes])
    index = {c: i for i, c in enumerate(p.classes)}
    return np.column_stack([
        proba[:, index[c]] if c in index else np.zeros(len(proba)) for c in target.classes
    ])


def weighted_metric(name: str, target: EvaluationTarget, p: Predictions, weights: FloatArray) -> FloatArray:
    """One metric for each row of `weights` (shape (B, n)). NaN when undefined on a resample.

    Binary classification scores the positive label; multiclass uses the macro average, like
    scikit-learn's `average="macro"` and `roc_auc_score(multi_class="ovr")`.
    """
    y = target.y_true
    pred = np.asarray(p.y_pred)
    total = weights.sum(axis=1)
    if target.task == "regression":
        err = pred.astype(np.float64) - y
        if name == "rmse":
            return np.sqrt(_wsum(weights, err**2) / total)
        if name == "mae":
            return _wsum(weights, np.abs(err)) / total
        if name == "mape":  # scikit-learn's mean_absolute_percentage_error
            return _wsum(weights, np.abs(err) / np.maximum(np.abs(y), _EPS)) / total
        if name == "r2":
            mean = _wsum(weights, y) / total
            ss_res = _wsum(weights, err**2)
            ss_tot = _wsum(weights, y**2) - total * mean**2
            with np.errstate(divide="ignore", invalid="ignore"):
                return np.where(ss_tot > 1e-12 * np.maximum(total, 1), 1.0 - ss_res / ss_tot, np.nan)
        raise KeyError(name)
    if name == "accuracy":
        return _wsum(weights, y == pred) / total
    if name in AVERAGED_METRICS:
        base, average = name.rsplit("_", 1)
        return _averaged(weights, target, pred, ("precision", "recall", "f1").index(base), average)
    if name in ("precision", "recall", "f1"):
        which = ("precision", "recall", "f1").index(name)
        if target.binary:
            return _prf(weights, y, pred, target.positive_label)[which]
        present = list(target.classes)
        per_class = [_prf(weights, y, pred, c)[which] for c in present]
        # sklearn's macro average covers labels present in y_true or y_pred of that sample.
        mask = np.column_stack([_wsum(weights, (y == c) | (pred == c)) > 0 for c in present])
        values = np.column_stack(per_class)
        return (values * mask).sum(axis=1) / mask.sum(axis=1)
    proba = _proba_matrix(target, p)
    if proba is None:
        return np.full(weights.shape[0], np.nan)
    if name == "log_loss":
        proba = proba / proba.sum(axis=1, keepdims=True)
        index = {c: i for i, c in enumerate(target.classes)}
        picked = proba[np.arange(len(y)), [index[v] for v in y.tolist()]]
        return -_wsum(weights, np.log(np.clip(picked, _EPS, 1.0))) / total
    if name == "roc_auc":
        if target.binary:
            col = target.classes.index(target.positive_label)
            return _binary_auc(weights, y == target.positive_label, proba[:, col])
        aucs = np.column_stack([
            _binary_auc(weights, y == c, proba[:, i]) for i, c in enumerate(target.classes)
        ])
        return np.nanmean(aucs, axis=1)
    raise KeyError(name)


def _averaged(weights: FloatArray, target: EvaluationTarget, pred: NDArray[Any], which: int, average: str
              ) -> FloatArray:
    """scikit-learn's average="macro" (unweighted mean over labels present in y_true or y_pred of
    the sample) or "weighted" (mean weighted by each label's true count)."""
    y = target.y_true
    per_class = np.column_stack([_prf(weights, y, pred, c)[which] for c in target.classes])
    if average == "weighted":
        support = np.column_stack([_wsum(weights, y == c) for c in target.classes])
        return (per_class * support).sum(axis=1) / support.sum(axis=1)
    mask = np.column_stack([_wsum(weights, (y == c) | (pred == c)) > 0 for c in target.classes])
    return (per_class * mask).sum(axis=1) / mask.sum(axis=1)


def evaluate(target: EvaluationTarget, p: Predictions, names: list[str] | tuple[str, ...]
             ) -> dict[str, float | None]:
    """Point values of the metrics on the whole holdout; None when a metric cannot be computed
    (e.g. roc_auc without probabilities)."""
    weights = np.ones((1, len(target.y_true)))
    out: dict[str, float | None] = {}
    for name in names:
        value = float(weighted_metric(name, target, p, weights)[0])
        out[name] = value if np.isfinite(value) else None
    return out


def confusion_matrix(target: EvaluationTarget, p: Predictions) -> dict[str, Any]:
    """Rows: true class; columns: predicted class, in `target.classes` order."""
    index = {c: i for i, c in enumerate(target.classes)}
    k = len(target.classes)
    matrix = np.zeros((k, k), dtype=np.int64)
    for t, q in zip(target.y_true.tolist(), np.asarray(p.y_pred).tolist(), strict=True):
        matrix[index[t], index[q]] += 1
    return {"labels": [_plain(c) for c in target.classes], "matrix": matrix.tolist()}


def _plain(value: Any) -> Any:
    """numpy scalars -> Python scalars for JSON."""
    return value.item() if isinstance(value, np.generic) else value
