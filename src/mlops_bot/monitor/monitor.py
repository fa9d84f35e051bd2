"""Monitor checks: has the production model decayed?

Three signals, each against what the model was registered with: input drift (the logged features
against the release's reference profile), prediction drift (the logged predictions against the
target distribution in that profile) and, where labels came back, live metrics against the
registered metrics from the release's report.json. `check` is pure: it gets the log rows, the
profile, the metrics and the clock reading as arguments. `run_monitor` is the I/O edge that
fetches them from the registry and the log directory.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, Field

from mlops_bot.analysis.data_checks import DataChecksReport, check_table
from mlops_bot.analysis.data_schema import SCHEMA_FILENAME, DataSchema
from mlops_bot.analysis.drift import DriftReport, compute_drift
from mlops_bot.analysis.profile import PROFILE_FILENAME, ReferenceProfile
from mlops_bot.config import ColumnDriftOverride, DataGates, DriftSection, MlopsConfig, MonitorSection
from mlops_bot.errors import DataError, MlopsError
from mlops_bot.pipeline.evaluate import Predictions, evaluate, lower_is_better, make_target, task_metrics
from mlops_bot.pipeline.report_metrics import metrics_from_report

LOG_COLUMNS = frozenset({"request_id", "timestamp", "model", "version", "prediction", "label", "label_ts"})
Status = Literal["ok", "decayed", "insufficient_data"]


class PredictionDrift(BaseModel):
    method: str
    score: float | None
    threshold: float
    drifted: bool


class MetricCheck(BaseModel):
    """`drop` is relative to the registered value and positive when the metric got worse."""

    registered: float | None
    live: float | None
    drop: float | None
    max_drop: float | None
    decayed: bool


class WindowPoint(BaseModel):
    """One point of the timeline: the signals over one window."""

    start: float
    end: float
    rows: int
    labeled: int
    drift_share: float | None = None
    prediction_drift: float | None = None
    metrics: dict[str, float | None] = Field(default_factory=dict)


class MonitorReport(BaseModel):
    model: str
    version: str | None
    stage: str
    window_start: float
    window_end: float
    status: Status
    reasons: list[str]
    rows: int
    labeled_rows: int
    drift: dict[str, Any] | None = None
    data_checks: dict[str, Any] | None = None
    prediction_drift: PredictionDrift | None = None
    metrics: dict[str, MetricCheck] = Field(default_factory=dict)
    timeline: list[WindowPoint] = Field(default_factory=list)

    @property
    def decayed(self) -> bool:
        return self.status == "decayed"

    def to_json_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


# ------------------------------------------------------------------------------------- pure check
def feature_frame(frame: pd.DataFrame, profile: ReferenceProfile, target: str,
                  features: list[str] | None = None) -> pd.DataFrame:
    """The logged feature columns that the profile also knows (log bookkeeping columns excluded)."""
    names = features or [c for c in profile.columns if c != target]
    present = []
    for name in names:
        logged = f"feature.{name}" if name in LOG_COLUMNS else name
        if logged in frame.columns and name in profile.columns:
            present.append((logged, name))
    return pd.DataFrame({name: frame[logged].to_numpy() for logged, name in present})


def _input_drift(profile: ReferenceProfile, current: pd.DataFrame, settings: MonitorSection,
                 drift: DriftSection) -> DriftReport | None:
    if current.empty or current.shape[1] == 0:
        return None
    section = drift.model_copy(update={"drift_share": settings.drift_share})
    return compute_drift(profile, current, section, workers=1)


def _prediction_drift(profile: ReferenceProfile, predictions: pd.Series, target: str, task: str,
                      settings: MonitorSection) -> PredictionDrift | None:
    """Predicted classes against the training labels (Jensen-Shannon distance, the monitor's
    threshold); for regression the analysis engine picks the method as for any numeric column."""
    if target not in profile.columns or predictions.empty:
        return None
    values = pd.Series(list(predictions), name=target)
    if task == "classification":
        override = ColumnDriftOverride(method="jensenshannon", threshold=settings.prediction_drift,
                                       type="categorical")
        section = DriftSection(columns={target: override})
    else:
        values = pd.to_numeric(values, errors="coerce")
        section = DriftSection(columns={target: ColumnDriftOverride(type="numerical")})
    report = compute_drift(profile, pd.DataFrame({target: values}), section, columns=[target], workers=1)
    column = report.columns.get(target)
    if column is None:
        return None
    score = float(column.score) if np.isfinite(column.score) else None
    return PredictionDrift(method=column.method, score=score, threshold=column.threshold,
                           drifted=column.drifted)


def _live_metrics(frame: pd.DataFrame, task: str, positive_label: Any, names: list[str]
                  ) -> dict[str, float | None]:
    labeled = frame[frame["label"].notna()]
    if labeled.empty:
        return {}
    y_true = np.asarray(labeled["label"].tolist())
    y_pred = np.asarray(labeled["prediction"].tolist())
    if task == "regression":
        y_true, y_pred = y_true.astype(np.float64), y_pred.astype(np.float64)
    p = Predictions(y_pred=y_pred)
    target = make_target(task, y_true, [p], positive_label)  # type: ignore[arg-type]
    computable = [n for n in names if n in task_metrics(task)]  # type: ignore[arg-type]
    return evaluate(target, p, computable)


def metric_drop(metric: str, registered: float, live: float, lower: bool | None = None) -> float:
    """Relative worsening: positive when the live value is worse than the registered one. `lower`:
    the metric's direction when it is not a built-in one (a custom metric's greater_is_better)."""
    worse = live - registered if (lower_is_better(metric) if lower is None else lower) else registered - live
    return worse / abs(registered) if registered != 0 else worse


@dataclass(frozen=True)
class CustomScores:
    """The repository's custom metrics on the labeled rows of each window (computed at the edge by
    `pipeline.custom_metrics.score_groups`, keyed by the windows of `windows()`), and whether
    greater is better for each."""

    greater_is_better: dict[str, bool]
    values: dict[tuple[float, float], dict[str, float | None]]


def windows(now: float, window: float, history: int) -> list[tuple[float, float]]:
    """The timeline's windows, oldest first; the last one is the window the verdict is about."""
    return [(now - (k + 1) * window, now - k * window) for k in range(history, -1, -1)]


def labeled_groups(log: pd.DataFrame, now: float, window: float, history: int
                   ) -> dict[tuple[float, float], tuple[list[Any], list[Any]]]:
    """(labels, predictions) of the labeled rows of each window that has any."""
    out: dict[tuple[float, float], tuple[list[Any], list[Any]]] = {}
    for lo, hi in windows(now, window, history):
        rows = log[(log["timestamp"] >= lo) & (log["timestamp"] < hi) & log["label"].notna()]
        if len(rows):
            out[(lo, hi)] = (rows["label"].tolist(), rows["prediction"].tolist())
    return out


def _metric_checks(registered: dict[str, float], live: dict[str, float | None], settings: MonitorSection,
                   greater_is_better: dict[str, bool] | None = None) -> dict[str, MetricCheck]:
    checks: dict[str, MetricCheck] = {}
    directions = greater_is_better or {}
    for name in sorted(set(registered) | set(settings.max_metric_drop)):
        value = live.get(name)
        base = registered.get(name)
        limit = settings.max_metric_drop.get(name)
        lower = None if name not in directions else not directions[name]
        drop = metric_drop(name, base, value, lower) if base is not None and value is not None else None
        checks[name] = MetricCheck(registered=base, live=value, drop=drop, max_drop=limit,
                                   decayed=drop is not None and limit is not None and drop > limit)
    return checks


def check(
    log: pd.DataFrame,
    profile: ReferenceProfile,
    *,
    model: str,
    stage: str,
    version: str | None,
    target: str,
    task: str,
    now: float,
    settings: MonitorSection,
    drift: DriftSection | None = None,
    registered_metrics: dict[str, float] | None = None,
    positive_label: Any = 1,
    features: list[str] | None = None,
    window: float | None = None,
    history: int = 6,
    schema: DataSchema | None = None,
    data_gates: DataGates | None = None,
    custom: CustomScores | None = None,
) -> MonitorReport:
    """Decide whether the model decayed over the last `window` seconds before `now`, and build a
    timeline of the same signals over the `history` windows before it (for plots). `custom`: the
    repository's custom metrics per window, checked like the built-in ones in their direction."""
    drift = drift or DriftSection()
    window = settings.window if window is None else window
    registered = dict(registered_metrics or {})
    metric_names = sorted(set(registered) | set(settings.max_metric_drop)) or list(task_metrics(task))  # type: ignore[arg-type]
    start = now - window
    current = log[(log["timestamp"] >= start) & (log["timestamp"] < now)]
    labeled = int(current["label"].notna().sum())
    report = MonitorReport(
        model=model, version=version, stage=stage, window_start=start, window_end=now,
        status="ok", reasons=[], rows=len(current), labeled_rows=labeled,
    )
    timeline: list[WindowPoint] = []
    custom_values = custom.values if custom is not None else {}
    for lo, hi in windows(now, window, history):
        rows = log[(log["timestamp"] >= lo) & (log["timestamp"] < hi)]
        point = WindowPoint(start=lo, end=hi, rows=len(rows), labeled=int(rows["label"].notna().sum()))
        if len(rows) >= 2:
            found = _input_drift(profile, feature_frame(rows, profile, target, features), settings, drift)
            point.drift_share = found.drift_share if found else None
            pdrift = _prediction_drift(profile, rows["prediction"], target, task, settings)
            point.prediction_drift = pdrift.score if pdrift else None
            point.metrics = _live_metrics(rows, task, positive_label, metric_names)
            point.metrics.update(custom_values.get((lo, hi), {}))
        if point.rows or timeline:
            timeline.append(point)
    report.timeline = timeline

    if len(current) < settings.min_rows:
        report.status = "insufficient_data"
        report.reasons.append(
            f"only {len(current)} logged prediction(s) in the window; at least {settings.min_rows} needed"
        )
        return report

    found = _input_drift(profile, feature_frame(current, profile, target, features), settings, drift)
    if found is not None:
        report.drift = found.to_json_dict()
        if found.dataset_drift:
            drifted = [c.name for c in found.ranked() if c.drifted]
            report.reasons.append(
                f"input drift: {found.n_drifted} of {len(found.columns)} columns drifted "
                f"(share {found.drift_share:.2f} >= {settings.drift_share:.2f}): {', '.join(drifted[:5])}"
            )
    if schema is not None:
        checked = _data_checks(schema, feature_frame(current, profile, target, features), data_gates)
        report.data_checks = checked.to_json_dict()
        for row in checked.problems():
            if row.status == "fail":
                report.reasons.append(f"input data: {row.detail}")
    report.prediction_drift = _prediction_drift(profile, current["prediction"], target, task, settings)
    if report.prediction_drift and report.prediction_drift.drifted:
        report.reasons.append(
            f"prediction drift: {report.prediction_drift.method} {report.prediction_drift.score:.3f} "
            f"(threshold {report.prediction_drift.threshold:g})"
        )
    live = _live_metrics(current, task, positive_label, metric_names) if labeled >= settings.min_rows else {}
    if labeled >= settings.min_rows:
        live.update(custom_values.get((start, now), {}))
    report.metrics = _metric_checks(registered, live, settings,
                                    custom.greater_is_better if custom is not None else None)
    for name, result in report.metrics.items():
        if result.decayed:
            report.reasons.append(
                f"{name} fell from {result.registered:.4g} to {result.live:.4g} "
                f"({result.drop:.1%} worse; at most {result.max_drop:.1%} allowed)"
            )
    if report.reasons:
        report.status = "decayed"
    return report


def _data_checks(schema: DataSchema, batch: pd.DataFrame, gates: DataGates | None) -> DataChecksReport:
    """The production batch's features against the registered version's training data schema
    (target and unlogged columns left out: a log holds the features the model was called with)."""
    columns = {k: v for k, v in schema.columns.items() if k in batch.columns}
    features = schema.model_copy(update={"columns": columns, "target_shares": None})
    name = "the training data of the registered version"
    checks = check_table(features, batch, gates or DataGates(), dataset="production", reference_name=name)
    return DataChecksReport(reference=name, checks=checks)


def registered_metrics_from_report(report: dict[str, Any]) -> dict[str, float]:
    """The head values of a release's report.json (`metrics: {NAME: {base, head, diff, ci}}`),
    read by `pipeline.report_metrics` (one rule for bad values)."""
    return metrics_from_report(report, "the registered version's report.json")


# ------------------------------------------------------------------------------------- I/O edge
def run_monitor(
    config: MlopsConfig,
    *,
    repo: Path,
    forge: Any,
    stage: str,
    now: float,
    model: str | None = None,
    window: float | None = None,
    log_dir: Path | None = None,
    history: int = 6,
    environ: Mapping[str, str] | None = None,
) -> MonitorReport:
    """Fetch the stage's release from the registry, read the log, and check."""
    from mlops_bot.monitor.log import read_predictions
    from mlops_bot.registry.registry import Registry

    name = model or config.model.name
    registry = Registry(repo, forge=forge, policy=config.registry)
    version = registry.stage_version(name, stage)
    if version is None:
        raise MlopsError(f"no version of {name} is in stage {stage!r}; nothing to monitor")
    with tempfile.TemporaryDirectory(prefix="mlops-monitor-") as tmp:
        folder = registry.download(name, version, Path(tmp))
        profile_path = folder / PROFILE_FILENAME
        if not profile_path.exists():
            raise DataError(f"release {name}@{version} has no {PROFILE_FILENAME}; register it with one")
        profile = ReferenceProfile.load(profile_path)
        schema = DataSchema.load(folder / SCHEMA_FILENAME) if (folder / SCHEMA_FILENAME).exists() else None
        report_path = folder / "report.json"
        registered = (
            registered_metrics_from_report(json.loads(report_path.read_text(encoding="utf-8")))
            if report_path.exists() else {}
        )
    directory = log_dir or config.resolve(config.monitor.log_dir)
    span = (window or config.monitor.window) * (history + 1)
    log = read_predictions(directory, since=now - span, until=now, model=name)
    custom = custom_scores(config, log, now=now, window=window or config.monitor.window, history=history,
                           environ=os.environ if environ is None else environ)
    return check(
        log, profile, model=name, stage=stage, version=version, target=config.data.target,
        task=config.model.task, now=now, settings=config.monitor, drift=config.drift,
        registered_metrics=registered, positive_label=config.model.positive_label,
        features=config.data.features, window=window, history=history,
        schema=schema, data_gates=config.data_gates, custom=custom,
    )


def custom_scores(config: MlopsConfig, log: pd.DataFrame, *, now: float, window: float, history: int,
                  environ: Mapping[str, str]) -> CustomScores | None:
    """The repository's custom metrics (`metrics:` entries `module:function`) on each window's
    labeled rows, run where the training command runs (the repository checkout), never in-process."""
    if not config.custom_metrics or log.empty:
        return None
    from mlops_bot.pipeline.custom_metrics import score_groups

    groups = labeled_groups(log, now, window, history)
    keys = {bounds: f"window {bounds[0]!r}-{bounds[1]!r}" for bounds in groups}
    with tempfile.TemporaryDirectory(prefix="mlops-monitor-metrics-") as tmp:
        scored = score_groups(config, {keys[bounds]: pair for bounds, pair in groups.items()},
                              scratch=Path(tmp), environ=environ)
    return CustomScores(
        greater_is_better={m.metric_name: m.greater_is_better for m in config.custom_metrics},
        values={bounds: scored[key] for bounds, key in keys.items()},
    )
