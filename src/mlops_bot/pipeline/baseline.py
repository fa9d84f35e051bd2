"""The baseline a PR is compared with: an explicit model file, the registry's stage, a metrics file,
or none, in that order. Reads models and metrics (I/O edge); the choice itself is plain ifs."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from mlops_bot.analysis.profile import ReferenceProfile
from mlops_bot.config import MlopsConfig
from mlops_bot.errors import DataError, MlopsError, TrainingError
from mlops_bot.model_file import MODEL_FILE_NAMES, load_model, load_verified
from mlops_bot.model_signature import model_feature_names
from mlops_bot.pipeline import train as training
from mlops_bot.pipeline.evaluate import Predictions
from mlops_bot.pipeline.params import Scalar, params_from_report
from mlops_bot.pipeline.report_metrics import read_metrics_file
from mlops_bot.pipeline.result import Baseline
from mlops_bot.registry.registry import Registry


@dataclass(frozen=True)
class RegistryBaseline:
    """The model in `baseline.stage` of the registry, downloaded."""

    model: Any
    version: str
    profile: ReferenceProfile | None
    params: dict[str, Scalar] | None = None


@dataclass(frozen=True)
class ChosenBaseline:
    """What the head is compared with: predictions on the holdout (for paired CIs) when there is a
    model, else only metric values from a file, else nothing."""

    baseline: Baseline
    predictions: Predictions | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    profile: ReferenceProfile | None = None
    params: dict[str, Scalar] | None = None  # the baseline's training parameters, from its report.json


def read_base_metrics(path: Path) -> dict[str, float]:
    """A `metrics.json` ({name: value}), or a report.json ({"metrics": {name: {"head": ...}}}):
    `report_metrics` reads it (one rule for bad values)."""
    return read_metrics_file(path, "base metrics file")


def predict_with_model(model: Any, holdout: pd.DataFrame, config: MlopsConfig) -> Predictions:
    """A baseline model may use other features than the head: the ones it records itself when the
    holdout has them, else every non-target column first (a ColumnTransformer picks its own), then
    the head's feature list."""
    own = model_feature_names(model)
    columns = own if own and set(own) <= set(holdout.columns) else [
        c for c in holdout.columns if c != config.data.target]
    try:
        return training.predict(model, holdout, columns, config.model.task)
    except (TrainingError, DataError):
        return training.predict(model, holdout, training.feature_columns(config, holdout), config.model.task)


def registry_baseline(config: MlopsConfig, dest: Path, forge: Any) -> RegistryBaseline | None:
    """The model in `baseline.stage` of the registry, when this repository has one."""
    if not (config.root / ".git").exists():
        return None
    registry = Registry(config.root, forge=forge, policy=config.registry)
    version = registry.stage_version(config.model.name, config.baseline.stage)
    if version is None:
        return None
    folder = Path(registry.download(config.model.name, version, dest))
    profile_path = folder / "reference_profile.json"
    profile = ReferenceProfile.load(profile_path) if profile_path.is_file() else None
    # The very bytes loaded are hashed against the register tag's digests (not only at download).
    model_path = next((folder / name for name in MODEL_FILE_NAMES if (folder / name).is_file()),
                      folder / "model.skops")  # a missing model file is load_verified's error
    model = load_verified(model_path, registry.checksums_of(config.model.name, version),
                          extra_types=config.model.trusted_types)
    return RegistryBaseline(model, version, profile, params_from_report(folder / "report.json"))


def choose_baseline(
    config: MlopsConfig,
    holdout: pd.DataFrame,
    download_dir: Path,
    *,
    base_model: Path | None,
    base_label: str | None,
    base_metrics: Path | None,
    forge: Any,
    base_metrics_label: str | None = None,
) -> ChosenBaseline:
    """Pick the baseline: an explicit model file, the registry's stage, a metrics file, or none."""
    notes: list[str] = []
    if base_model is not None:
        model = load_model(base_model, extra_types=config.model.trusted_types)
        return ChosenBaseline(
            Baseline(source="model", description=base_label or f"model file {base_model}"),
            predictions=predict_with_model(model, holdout, config),
            params=params_from_report(base_model.parent / "report.json"),
        )
    try:
        found = registry_baseline(config, download_dir, forge)
    except MlopsError as exc:
        found = None
        notes.append(f"registry baseline unavailable: {exc}")
    if found is not None:
        return ChosenBaseline(
            Baseline(
                source="registry",
                version=found.version,
                description=f"{config.model.name} {found.version} (stage {config.baseline.stage})",
            ),
            predictions=predict_with_model(found.model, holdout, config),
            profile=found.profile,
            params=found.params,
        )
    metrics_path = base_metrics
    if metrics_path is None and config.baseline.metrics_file:
        candidate = config.resolve(config.baseline.metrics_file)
        metrics_path = candidate if candidate.is_file() else None
    if metrics_path is not None:
        notes.append("no baseline model: metric differences have no confidence intervals")
        return ChosenBaseline(
            Baseline(source="metrics_file", description=f"metrics file {base_metrics_label or metrics_path}",
                     notes=notes),
            metrics=read_base_metrics(metrics_path),
            params=params_from_report(metrics_path),
        )
    notes.append(f"no model in stage {config.baseline.stage!r} and no base metrics file")
    return ChosenBaseline(
        Baseline(source="none", description="no baseline: nothing to compare with", notes=notes)
    )
