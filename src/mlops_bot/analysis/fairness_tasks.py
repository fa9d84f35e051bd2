"""Group fairness of multiclass and regression models, by fairlearn's `MetricFrame` semantics
(REFERENCE.md sections 4 and 11): per-group metrics over the intersection of the sensitive columns,
the overall value, and `difference`/`ratio` with method "between_groups" or "to_overall".

Multiclass: accuracy, macro recall (scikit-learn's `recall_score(average="macro")` on each group's
rows) and the selection rate of every class one-vs-rest, all from one confusion matrix per group.
Regression: MAE, RMSE and mean prediction, from four sums per group. The disparities that join the
metric table (and the gates) are `<metric>_difference` and `<metric>_ratio`; for the per-class
selection rates, the worst class (largest difference, smallest ratio). Bootstrap intervals are the
same bias-corrected percentile intervals as for binary models. Pure numpy: no I/O."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, Field

from mlops_bot.analysis.fairness import (
    Method,
    bias_corrected_interval,
    checked_inputs,
    difference_and_ratio,
    group_codes,
    json_number,
)
from mlops_bot.analysis.json_numbers import nan_to_none
from mlops_bot.config import FairnessSection
from mlops_bot.errors import DataError

MULTICLASS_METRICS = ("accuracy", "recall_macro")
REGRESSION_METRICS = ("mae", "rmse", "mean_prediction")
_ROWS_PER_CHUNK = 20_000_000  # bootstrap index draws held at once (regression)

Values = dict[str, np.ndarray]


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value



def selection_rate_key(label: Any) -> str:
    return f"selection_rate[{label}]"


class TaskFairnessReport(BaseModel):
    """Per-group metrics, the overall values and the disparities of a multiclass or regression model."""

    task: Literal["multiclass", "regression"]
    sensitive: list[str]
    method: Method = "between_groups"
    metrics: list[str]  # per-group metric names, in table order
    overall: dict[str, float]
    by_group: dict[str, dict[str, float]]
    counts: dict[str, int]
    disparities: dict[str, float]  # the gateable numbers: <metric>_difference / _ratio
    class_disparities: dict[str, dict[str, float]] = Field(
        default_factory=dict, description="multiclass: selection rate difference/ratio of each class"
    )
    intervals: dict[str, tuple[float, float]] = Field(default_factory=dict)
    confidence: float = 0.95
    bootstrap_samples: int = 0
    small_groups: list[str] = Field(default_factory=list)
    min_group_size: int = 30
    classes: list[Any] = Field(default_factory=list)

    def to_json_dict(self) -> dict[str, Any]:
        """Like the binary report: disparities at the top level as plain numbers, and
        `disparity_names` listing them so readers need not know the task."""
        data: dict[str, Any] = {
            "task": self.task,
            "sensitive": list(self.sensitive),
            "method": self.method,
            "metrics": list(self.metrics),
            "overall": {k: nan_to_none(v) for k, v in self.overall.items()},
            "by_group": {
                g: {**{k: nan_to_none(v) for k, v in row.items()}, "count": self.counts[g]}
                for g, row in self.by_group.items()
            },
            "disparity_names": list(self.disparities),
        }
        for name, value in self.disparities.items():
            data[name] = nan_to_none(value)
        data["class_disparities"] = {
            c: {k: nan_to_none(v) for k, v in row.items()} for c, row in self.class_disparities.items()
        }
        data["confidence_intervals"] = {
            k: [nan_to_none(lo), nan_to_none(hi)] for k, (lo, hi) in self.intervals.items()
        }
        data["confidence"] = self.confidence
        data["bootstrap_samples"] = self.bootstrap_samples
        data["small_groups"] = list(self.small_groups)
        data["min_group_size"] = self.min_group_size
        if self.classes:
            data["classes"] = list(self.classes)
        return data

    @classmethod
    def from_json_dict(cls, data: dict[str, Any]) -> TaskFairnessReport:
        """Back from `to_json_dict` (report.json read as data). Raises ValueError when it does not fit."""
        by_group = data.get("by_group")
        if not isinstance(by_group, dict) or not all(isinstance(r, dict) for r in by_group.values()):
            raise ValueError("fairness.by_group: expected an object of objects")
        names = data.get("disparity_names")
        if not isinstance(names, list):
            raise ValueError("fairness.disparity_names: expected a list")
        intervals = data.get("confidence_intervals") or {}
        classes = data.get("class_disparities") or {}
        return cls.model_validate({
            "task": data.get("task"),
            "sensitive": data.get("sensitive"),
            "method": data.get("method", "between_groups"),
            "metrics": data.get("metrics"),
            "overall": {k: json_number(v) for k, v in (data.get("overall") or {}).items()},
            "by_group": {
                g: {k: json_number(v) for k, v in row.items() if k != "count"} for g, row in by_group.items()
            },
            "counts": {g: row.get("count") for g, row in by_group.items()},
            "disparities": {str(n): json_number(data.get(str(n))) for n in names},
            "class_disparities": {
                c: {k: json_number(v) for k, v in row.items()}
                for c, row in classes.items()
                if isinstance(row, dict)
            },
            "intervals": {k: v for k, v in intervals.items() if isinstance(v, list) and None not in v},
            "confidence": data.get("confidence", 0.95),
            "bootstrap_samples": data.get("bootstrap_samples", 0),
            "small_groups": data.get("small_groups") or [],
            "min_group_size": data.get("min_group_size", 30),
            "classes": data.get("classes") or [],
        })


# ------------------------------------------------------------------------------------ multiclass
def multiclass_values(conf: np.ndarray) -> Values:
    """Metrics from confusion matrices (..., k, k) (rows true, columns predicted) -> arrays (...).
    An empty matrix gives NaN (a group absent from a bootstrap replicate, skipped like fairlearn,
    which only sees the groups present)."""
    conf = conf.astype(np.float64)
    n = conf.sum(axis=(-2, -1))
    diag = np.diagonal(conf, axis1=-2, axis2=-1)
    true_n = conf.sum(axis=-1)
    pred_n = conf.sum(axis=-2)
    present = (true_n > 0) | (pred_n > 0)  # scikit-learn's macro average: labels in y_true or y_pred
    with np.errstate(divide="ignore", invalid="ignore"):
        recall = np.where(true_n > 0, diag / np.where(true_n > 0, true_n, 1.0), 0.0)
        out: Values = {
            "accuracy": np.where(n > 0, diag.sum(axis=-1) / n, np.nan),
            "recall_macro": (recall * present).sum(axis=-1) / present.sum(axis=-1),
        }
        selection = pred_n / n[..., np.newaxis]
    for i in range(conf.shape[-1]):
        out[f"selection_rate#{i}"] = selection[..., i]
    return out


def _multiclass_disparities(conf: np.ndarray, k: int, method: str) -> tuple[Values, Values]:
    """(disparities, per-class selection disparities) from (..., groups, k, k) counts."""
    by_group = multiclass_values(conf)
    overall = multiclass_values(conf.sum(axis=-3))
    out: Values = {}
    for name in MULTICLASS_METRICS:
        out[f"{name}_difference"], out[f"{name}_ratio"] = difference_and_ratio(
            by_group[name], overall[name], method
        )
    per_class: Values = {}
    for i in range(k):
        key = f"selection_rate#{i}"
        per_class[f"{i}_difference"], per_class[f"{i}_ratio"] = difference_and_ratio(
            by_group[key], overall[key], method
        )
    with np.errstate(invalid="ignore"):
        diffs = np.stack([per_class[f"{i}_difference"] for i in range(k)], axis=-1)
        ratios = np.stack([per_class[f"{i}_ratio"] for i in range(k)], axis=-1)
        out["selection_rate_difference"] = np.fmax.reduce(diffs, axis=-1)
        out["selection_rate_ratio"] = np.fmin.reduce(ratios, axis=-1)
    return out, per_class


def compute_multiclass_fairness(
    y_true: Any,
    y_pred: Any,
    sensitive: pd.DataFrame | pd.Series,
    *,
    classes: list[Any] | tuple[Any, ...] | None = None,
    settings: FairnessSection | None = None,
    seed: int = 0,
) -> TaskFairnessReport:
    """Per-group accuracy, macro recall and per-class selection rate, with their disparities."""
    settings = settings or FairnessSection()
    frame, yt, yp = checked_inputs(y_true, y_pred, sensitive, settings.method)
    labels = list(classes) if classes is not None else sorted(set(yt.tolist()) | set(yp.tolist()), key=str)
    index = {label: i for i, label in enumerate(labels)}
    unknown = sorted({str(v) for v in (*yt.tolist(), *yp.tolist()) if v not in index})
    if unknown:
        raise DataError(f"fairness: label(s) {', '.join(unknown[:5])} are not among the classes")
    k = len(labels)
    codes, keys = group_codes(frame, settings.missing)
    ti = np.fromiter((index[v] for v in yt.tolist()), dtype=np.int64, count=len(yt))
    pi = np.fromiter((index[v] for v in yp.tolist()), dtype=np.int64, count=len(yp))
    conf = np.bincount((codes * k + ti) * k + pi, minlength=len(keys) * k * k).reshape(len(keys), k, k)
    by_group_values = multiclass_values(conf)
    overall_values = multiclass_values(conf.sum(axis=0))
    names = {**{m: m for m in MULTICLASS_METRICS}, **{f"selection_rate#{i}": selection_rate_key(c)
                                                      for i, c in enumerate(labels)}}
    disparities, per_class = _multiclass_disparities(conf, k, settings.method)
    intervals: dict[str, tuple[float, float]] = {}
    samples = 0
    if settings.bootstrap and len(keys) > 1:
        samples = settings.bootstrap_samples
        rng = np.random.default_rng(seed)
        flat = conf.reshape(-1).astype(np.float64)
        draws = rng.multinomial(int(flat.sum()), flat / flat.sum(), size=samples)
        draws = draws.reshape(samples, *conf.shape)
        replicates, _ = _multiclass_disparities(draws, k, settings.method)
        intervals = {
            name: bias_corrected_interval(replicates[name], float(disparities[name]), settings.confidence)
            for name in disparities
        }
    counts = conf.sum(axis=(1, 2))
    return _report(
        "multiclass",
        frame,
        keys,
        counts,
        {names[k_]: v for k_, v in by_group_values.items()},
        {names[k_]: float(v) for k_, v in overall_values.items()},
        disparities,
        intervals,
        samples,
        settings,
        class_disparities={
            str(label): {
                "difference": float(per_class[f"{i}_difference"]),
                "ratio": float(per_class[f"{i}_ratio"]),
            }
            for i, label in enumerate(labels)
        },
        classes=[_plain(c) for c in labels],
    )


# ------------------------------------------------------------------------------------ regression
def regression_values(sums: np.ndarray) -> Values:
    """MAE, RMSE and mean prediction from (..., 4) sums: rows, sum |error|, sum error^2, sum prediction."""
    n = sums[..., 0]
    with np.errstate(divide="ignore", invalid="ignore"):
        return {
            "mae": np.where(n > 0, sums[..., 1] / n, np.nan),
            "rmse": np.where(n > 0, np.sqrt(sums[..., 2] / n), np.nan),
            "mean_prediction": np.where(n > 0, sums[..., 3] / n, np.nan),
        }


def _regression_disparities(sums: np.ndarray, method: str) -> Values:
    by_group = regression_values(sums)
    overall = regression_values(sums.sum(axis=-2))
    out: Values = {}
    for name in REGRESSION_METRICS:
        out[f"{name}_difference"], out[f"{name}_ratio"] = difference_and_ratio(
            by_group[name], overall[name], method
        )
    return out


def _group_sums(codes: np.ndarray, columns: np.ndarray, n_groups: int) -> np.ndarray:
    """(n_groups, c) sums of each column of `columns` (rows, c) by group code."""
    return np.stack(
        [np.bincount(codes, weights=columns[:, j], minlength=n_groups) for j in range(columns.shape[1])],
        axis=-1,
    )


def compute_regression_fairness(
    y_true: Any,
    y_pred: Any,
    sensitive: pd.DataFrame | pd.Series,
    *,
    settings: FairnessSection | None = None,
    seed: int = 0,
) -> TaskFairnessReport:
    """Per-group MAE, RMSE and mean prediction, with their disparities."""
    settings = settings or FairnessSection()
    frame, yt, yp = checked_inputs(y_true, y_pred, sensitive, settings.method)
    try:
        truth = yt.astype(np.float64)
        pred = yp.astype(np.float64)
    except (TypeError, ValueError):
        raise DataError("fairness: a regression model needs numeric targets and predictions") from None
    if not (np.isfinite(truth).all() and np.isfinite(pred).all()):
        raise DataError("fairness: targets or predictions hold NaN or infinite values")
    codes, keys = group_codes(frame, settings.missing)
    error = pred - truth
    columns = np.column_stack([np.ones_like(error), np.abs(error), error**2, pred])
    sums = _group_sums(codes, columns, len(keys))
    disparities = _regression_disparities(sums, settings.method)
    intervals: dict[str, tuple[float, float]] = {}
    samples = 0
    if settings.bootstrap and len(keys) > 1:
        samples = settings.bootstrap_samples
        replicates = _regression_replicates(codes, columns, len(keys), samples, np.random.default_rng(seed))
        values = _regression_disparities(replicates, settings.method)
        intervals = {
            name: bias_corrected_interval(values[name], float(disparities[name]), settings.confidence)
            for name in disparities
        }
    return _report(
        "regression",
        frame,
        keys,
        sums[:, 0].astype(np.int64),
        regression_values(sums),
        {k: float(v) for k, v in regression_values(sums.sum(axis=0)).items()},
        disparities,
        intervals,
        samples,
        settings,
    )


def _regression_replicates(
    codes: np.ndarray, columns: np.ndarray, n_groups: int, samples: int, rng: np.random.Generator
) -> np.ndarray:
    """(samples, groups, 4) group sums of row resamples (n rows drawn with replacement), drawn in
    chunks so memory stays bounded."""
    n = len(codes)
    out = np.empty((samples, n_groups, columns.shape[1]))
    chunk = max(1, _ROWS_PER_CHUNK // max(n, 1))
    for start in range(0, samples, chunk):
        b = min(chunk, samples - start)
        rows = rng.integers(0, n, size=(b, n))
        cell = (np.arange(b)[:, np.newaxis] * n_groups + codes[rows]).reshape(-1)
        for j in range(columns.shape[1]):
            out[start : start + b, :, j] = np.bincount(
                cell, weights=columns[rows, j].reshape(-1), minlength=b * n_groups
            ).reshape(b, n_groups)
    return out


# ------------------------------------------------------------------------------------ shared


def _report(
    task: Literal["multiclass", "regression"],
    frame: pd.DataFrame,
    keys: list[str],
    counts: np.ndarray,
    by_group: Values,
    overall: dict[str, float],
    disparities: Values,
    intervals: dict[str, tuple[float, float]],
    samples: int,
    settings: FairnessSection,
    **extra: Any,
) -> TaskFairnessReport:
    metric_names = list(by_group)
    table = {key: {m: float(by_group[m][i]) for m in metric_names} for i, key in enumerate(keys)}
    count_by_key = {key: int(counts[i]) for i, key in enumerate(keys)}
    return TaskFairnessReport(
        task=task,
        sensitive=[str(c) for c in frame.columns],
        method=settings.method,
        metrics=metric_names,
        overall=overall,
        by_group=table,
        counts=count_by_key,
        disparities={k: float(v) for k, v in disparities.items()},
        intervals=intervals,
        confidence=settings.confidence,
        bootstrap_samples=samples,
        small_groups=[k for k, c in count_by_key.items() if c < settings.min_group_size],
        min_group_size=settings.min_group_size,
        **extra,
    )

