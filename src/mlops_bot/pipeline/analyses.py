"""The analyses beside the metrics: drift (holdout vs the reference) and fairness (predictions by
sensitive group). Each returns its JSON for report.json, the numbers that join the metric table
(and so the gates), and its markdown section."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlops_bot.analysis.drift import DriftReport, compute_drift
from mlops_bot.analysis.fairness import DISPARITIES, FairnessReport, compute_fairness
from mlops_bot.analysis.fairness_tasks import (
    TaskFairnessReport,
    compute_multiclass_fairness,
    compute_regression_fairness,
)
from mlops_bot.analysis.profile import ReferenceProfile
from mlops_bot.config import FairnessSection, MlopsConfig
from mlops_bot.errors import DataError
from mlops_bot.pipeline import train as training
from mlops_bot.pipeline.evaluate import EvaluationTarget, Predictions
from mlops_bot.report.drift import plot_distributions, render_drift
from mlops_bot.report.fairness import render_fairness, render_not_computed, render_task_fairness


@dataclass
class Analyses:
    """What the analyses add to a validation report."""

    drift: dict[str, Any] | None = None
    fairness: dict[str, Any] | None = None
    metrics: dict[str, float] = field(default_factory=dict)  # join the metric table and the gates
    notes: list[str] = field(default_factory=list)
    sections: list[str] = field(default_factory=list)  # markdown, in report order


def run_analyses(
    config: MlopsConfig,
    train: pd.DataFrame,
    holdout: pd.DataFrame,
    head: Predictions,
    target: EvaluationTarget,
    reference: pd.DataFrame | None,
    reference_profile: ReferenceProfile | None,
    staging: Path,
) -> Analyses:
    """Drift against the baseline's reference profile (else the reference data, else the training
    data), and fairness of the head's predictions. A section the data does not allow (a DataError)
    is reported as not computed, with the reason; it never fails the validation."""
    out = Analyses()
    features = [c for c in training.feature_columns(config, holdout) if c in holdout.columns]
    if config.drift.enabled:
        ref: ReferenceProfile | pd.DataFrame = (
            reference_profile
            if reference_profile is not None
            else (reference if reference is not None else train)
        )
        shared = [c for c in features if c in list(ref.columns)]
        try:
            drift = compute_drift(ref, holdout, settings=config.drift, columns=shared)
        except DataError as exc:
            out.notes.append(f"drift not computed: {exc}")
            out.sections.append(render_not_computed(str(exc), title="Data drift"))
        else:
            out.drift = drift.to_json_dict()
            share = out.drift.get("drift_share")
            if isinstance(share, int | float):
                out.metrics["drift_share"] = float(share)
            plots = _plot_drift(drift, ref, holdout, staging, config)
            out.sections.append(render_drift(drift, plots=plots or None))
    if config.fairness.enabled and config.data.sensitive:
        try:
            fairness = task_fairness(config, holdout, head, target, config.fairness)
        except DataError as exc:
            out.notes.append(f"fairness not computed: {exc}")
            out.sections.append(render_not_computed(str(exc)))
        else:
            out.fairness = fairness.to_json_dict()
            out.metrics.update(fairness_metrics(out.fairness))
            out.sections.append(
                render_fairness(fairness)
                if isinstance(fairness, FairnessReport)
                else render_task_fairness(fairness)
            )
    out.sections = [s for s in out.sections if s]
    return out


def task_fairness(
    config: MlopsConfig,
    holdout: pd.DataFrame,
    predictions: Predictions,
    target: EvaluationTarget,
    settings: FairnessSection,
) -> FairnessReport | TaskFairnessReport:
    """The fairness analysis that fits the task: binary (fairlearn's named disparities),
    multiclass or regression (MetricFrame over task metrics)."""
    sensitive = holdout[config.data.sensitive]
    y_pred = np.asarray(predictions.y_pred)
    if target.task == "regression":
        return compute_regression_fairness(
            target.y_true, y_pred, sensitive, settings=settings, seed=config.seed
        )
    if target.binary:
        return compute_fairness(
            target.y_true,
            y_pred,
            sensitive,
            pos_label=target.positive_label,
            settings=settings,
            seed=config.seed,
        )
    return compute_multiclass_fairness(
        target.y_true, y_pred, sensitive, classes=target.classes, settings=settings, seed=config.seed
    )


def base_fairness(
    config: MlopsConfig, holdout: pd.DataFrame, base: Predictions, target: EvaluationTarget
) -> dict[str, float]:
    """The baseline model's disparities on the same holdout, so the table shows their change
    (none when they cannot be computed: the head's section says why)."""
    if not (config.fairness.enabled and config.data.sensitive):
        return {}
    settings = config.fairness.model_copy(update={"bootstrap": False})
    try:
        report = task_fairness(config, holdout, base, target, settings)
    except DataError:
        return {}
    return fairness_metrics(report.to_json_dict())


def fairness_metrics(data: Mapping[str, Any]) -> dict[str, float]:
    """Find the disparity numbers in the fairness JSON (top level or under 'metrics'): the names
    in `disparity_names` (multiclass, regression), else the binary DISPARITIES."""
    out: dict[str, float] = {}
    pools = [data, *(v for v in data.values() if isinstance(v, Mapping))]
    names = data.get("disparity_names")
    keys = [str(n) for n in names] if isinstance(names, list) else list(DISPARITIES)
    for key in keys:
        for pool in pools:
            value = pool.get(key)
            if isinstance(value, Mapping):
                value = value.get("value")
            if isinstance(value, int | float) and not isinstance(value, bool):
                out[key] = float(value)
                break
    return out


def _plot_drift(
    report: DriftReport,
    reference: ReferenceProfile | pd.DataFrame,
    current: pd.DataFrame,
    staging: Path,
    config: MlopsConfig,
) -> dict[str, str]:
    """Distribution plots of the most drifted columns (needs reference rows, not just a profile)."""
    if config.drift.plots <= 0 or not isinstance(reference, pd.DataFrame):
        return {}
    written = plot_distributions(reference, current, report, staging / "plots", limit=config.drift.plots)
    return {str(k): Path(v).relative_to(staging).as_posix() for k, v in written.items()}
