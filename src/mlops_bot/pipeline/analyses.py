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
from mlops_bot.analysis.fairness import DISPARITIES, compute_fairness
from mlops_bot.analysis.profile import ReferenceProfile
from mlops_bot.config import MlopsConfig
from mlops_bot.pipeline import train as training
from mlops_bot.pipeline.evaluate import EvaluationTarget, Predictions
from mlops_bot.report.drift import plot_distributions, render_drift
from mlops_bot.report.fairness import render_fairness


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
    data), and fairness of the head's predictions."""
    out = Analyses()
    features = [c for c in training.feature_columns(config, holdout) if c in holdout.columns]
    if config.drift.enabled:
        ref: ReferenceProfile | pd.DataFrame = (
            reference_profile
            if reference_profile is not None
            else (reference if reference is not None else train)
        )
        shared = [c for c in features if c in list(ref.columns)]
        drift = compute_drift(ref, holdout, settings=config.drift, columns=shared)
        out.drift = drift.to_json_dict()
        share = out.drift.get("drift_share")
        if isinstance(share, int | float):
            out.metrics["drift_share"] = float(share)
        plots = _plot_drift(drift, ref, holdout, staging, config)
        out.sections.append(render_drift(drift, plots=plots or None))
    if config.fairness.enabled and config.data.sensitive and config.model.task == "classification":
        fairness = compute_fairness(
            target.y_true,
            np.asarray(head.y_pred),
            holdout[config.data.sensitive],
            pos_label=target.positive_label,
            settings=config.fairness,
            seed=config.seed,
        )
        out.fairness = fairness.to_json_dict()
        out.metrics.update(fairness_metrics(out.fairness))
        out.sections.append(render_fairness(fairness))
    out.sections = [s for s in out.sections if s]
    return out


def base_fairness(
    config: MlopsConfig, holdout: pd.DataFrame, base: Predictions, target: EvaluationTarget
) -> dict[str, float]:
    """The baseline model's disparities on the same holdout, so the table shows their change."""
    if not (config.fairness.enabled and config.data.sensitive and config.model.task == "classification"):
        return {}
    report = compute_fairness(
        target.y_true,
        np.asarray(base.y_pred),
        holdout[config.data.sensitive],
        pos_label=target.positive_label,
        settings=config.fairness.model_copy(update={"bootstrap": False}),
        seed=config.seed,
    )
    return fairness_metrics(report.to_json_dict())


def fairness_metrics(data: Mapping[str, Any]) -> dict[str, float]:
    """Find the disparity numbers in the fairness JSON (top level or under 'metrics')."""
    out: dict[str, float] = {}
    pools = [data, *(v for v in data.values() if isinstance(v, Mapping))]
    for key in DISPARITIES:
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
