"""PR validation: train the head model, evaluate it, compare with the baseline, gate, report.

This is the I/O edge of the pipeline: it reads data and models, runs training, and writes the
output directory. All decisions (metrics, bootstrap, gates, rendering) are pure functions it calls.
Outputs are written into a staging directory beside the target and moved into place only when
everything succeeded, so a failed run never leaves a half-written report that looks like a result.
"""

from __future__ import annotations

import importlib
import json
import os
import platform
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlops_bot import __version__
from mlops_bot.analysis.fairness import DISPARITIES
from mlops_bot.config import MlopsConfig
from mlops_bot.dataset import read_table, require_columns, sha256_file
from mlops_bot.errors import DataError, MlopsError, TrainingError
from mlops_bot.model_file import load_model, save_model
from mlops_bot.pipeline import train as training
from mlops_bot.pipeline.bootstrap import paired_bootstrap
from mlops_bot.pipeline.evaluate import (
    EvaluationTarget,
    Predictions,
    confusion_matrix,
    evaluate,
    make_target,
    task_metrics,
)
from mlops_bot.pipeline.gates import MetricComparison, compare, evaluate_gates, verdict
from mlops_bot.pipeline.result import Baseline, Reproducibility, ValidationReport
from mlops_bot.registry.model_card import render_model_card

METRICS_FILE = "metrics.json"
MODEL_CARD_FILE = "model_card.md"


@dataclass
class ValidationRun:
    report: ValidationReport
    output: Path
    markdown: str

    @property
    def exit_code(self) -> int:
        return 0 if self.report.verdict == "pass" else 1


# ------------------------------------------------------------------------------------------ data
def load_split(config: MlopsConfig, role: str) -> tuple[pd.DataFrame, Path]:
    path = config.resolve(config.data.train if role == "train" else config.data.holdout)
    frame = read_table(path, f"{role} data")
    require_columns(frame, [config.data.target], f"{role} data {path}")
    missing = int(frame[config.data.target].isna().sum())
    if missing:
        raise DataError(
            f"{role} data {path}: target column {config.data.target!r} has {missing} missing "
            "value(s); drop or fill those rows"
        )
    for column in config.data.sensitive:
        require_columns(frame, [column], f"{role} data {path} (data.sensitive)")
    if config.data.id is not None:
        require_columns(frame, [config.data.id], f"{role} data {path} (data.id)")
    return frame, path


def read_base_metrics(path: Path) -> dict[str, float]:
    """A `metrics.json` ({name: value}), or a report.json ({"metrics": {name: {"head": ...}}})."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"base metrics file {path} does not exist") from None
    except (OSError, ValueError) as exc:
        raise DataError(f"base metrics file {path} is not valid JSON: {exc}") from None
    if isinstance(data, dict) and isinstance(data.get("metrics"), dict):
        data = data["metrics"]
    if not isinstance(data, dict):
        raise DataError(f"base metrics file {path}: expected an object of metric name -> number")
    out: dict[str, float] = {}
    for name, value in data.items():
        if isinstance(value, dict):
            value = value.get("head")
        if value is None:  # a report.json metric the head could not compute
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            # Skipping it would silently turn the comparison into "no baseline" for this metric.
            raise DataError(f"base metrics file {path}: {name} is {value!r}; expected a number")
        out[str(name)] = float(value)
    return out


# ------------------------------------------------------------------------------------- training
def train_head(
    config: MlopsConfig,
    train_path: Path,
    holdout_path: Path,
    holdout: pd.DataFrame,
    train: pd.DataFrame,
    staging: Path,
    environ: Mapping[str, str],
) -> Predictions:
    """Train the PR's model and predict on the holdout; the model lands in staging/model.skops."""
    if config.train.builtin is not None:
        model, features = training.train_builtin(config, train)
        save_model(model, staging / "model.skops")
        return training.predict(model, holdout, features, config.model.task)
    assert config.train.command is not None
    workdir = config.resolve(config.train.workdir)
    model_path = (workdir / config.train.model_path) if config.train.model_path else staging / "model.skops"
    predictions_path = (
        (workdir / config.train.predictions_path)
        if config.train.predictions_path
        else staging / "predictions.csv"
    )
    for stale in (model_path, predictions_path):  # an old file must never pass for this run's output
        stale.unlink(missing_ok=True)
    env = training.command_env(
        environ,
        train=train_path.resolve(),
        holdout=holdout_path.resolve(),
        model=model_path.resolve(),
        predictions=predictions_path.resolve(),
        seed=config.seed,
    )
    training.run_command(
        config.train.command,
        workdir=workdir,
        env=env,
        timeout=config.train.timeout,
        log_path=staging / "train.log",
    )
    if model_path.is_file():
        model = load_model(model_path)
        if model_path.resolve() != (staging / "model.skops").resolve() and model_path.suffix == ".skops":
            shutil.copyfile(model_path, staging / "model.skops")
        features = training.feature_columns(config, holdout)
        return training.predict(model, holdout, features, config.model.task)
    if predictions_path.is_file():
        return training.read_predictions(predictions_path, holdout, config)
    raise TrainingError(
        f"training command succeeded but wrote neither {model_path} nor {predictions_path} "
        "(see the contract in docs/config.md)"
    )


def predict_with_model(model: Any, holdout: pd.DataFrame, config: MlopsConfig) -> Predictions:
    """A baseline model may use other features than the head: try every non-target column first
    (a ColumnTransformer picks its own), then the head's feature list."""
    columns = [c for c in holdout.columns if c != config.data.target]
    try:
        return training.predict(model, holdout, columns, config.model.task)
    except (TrainingError, DataError):
        return training.predict(model, holdout, training.feature_columns(config, holdout), config.model.task)


# ------------------------------------------------------------------------------------- baseline
def registry_baseline(config: MlopsConfig, dest: Path, forge: Any) -> tuple[Any, str, Any] | None:
    """The model in `baseline.stage` of the registry, when this repository has one."""
    try:
        registry_module = importlib.import_module("mlops_bot.registry.registry")
    except ImportError:
        return None
    if not (config.root / ".git").exists():
        return None
    registry = registry_module.Registry(config.root, forge=forge, policy=config.registry)
    version = registry.stage_version(config.model.name, config.baseline.stage)
    if version is None:
        return None
    folder = Path(registry.download(config.model.name, version, dest))
    profile = None
    if (folder / "reference_profile.json").is_file():
        try:
            loader = importlib.import_module("mlops_bot.analysis.profile").ReferenceProfile
            profile = loader.load(folder / "reference_profile.json")
        except ImportError:
            profile = None
    return load_model(folder / "model.skops"), version, profile


def default_forge(environ: Mapping[str, str]) -> Any:
    try:
        select = importlib.import_module("mlops_bot.forge.select")
        return select.forge_from_env(environ)
    except ImportError:
        from mlops_bot.forge.local import LocalForge

        local = environ.get("MLOPS_BOT_LOCAL_FORGE")
        return LocalForge(local) if local else None
    except MlopsError:
        return None


# ------------------------------------------------------------------------------------- analyses
def run_analyses(
    config: MlopsConfig,
    train: pd.DataFrame,
    holdout: pd.DataFrame,
    head: Predictions,
    target: EvaluationTarget,
    reference: pd.DataFrame | None,
    reference_profile: Any,
    staging: Path,
) -> tuple[dict[str, Any] | None, dict[str, Any] | None, dict[str, float], list[str], list[str]]:
    """Drift (holdout vs the reference) and fairness (head predictions by sensitive group), when
    the analysis package provides them. Returns (drift, fairness, extra metrics, notes, markdown)."""
    notes: list[str] = []
    sections: list[str] = []
    extra: dict[str, float] = {}
    drift_json = fairness_json = None
    features = [c for c in training.feature_columns(config, holdout) if c in holdout.columns]
    if config.drift.enabled:
        try:
            drift = importlib.import_module("mlops_bot.analysis.drift")
        except ImportError:
            notes.append("drift analysis is not available in this mlops-bot version")
        else:
            ref: Any = (
                reference_profile
                if reference_profile is not None
                else (reference if reference is not None else train)
            )
            shared = [c for c in features if c in list(ref.columns)]
            report = drift.compute_drift(ref, holdout, settings=config.drift, columns=shared)
            drift_json = report.to_json_dict()
            share = drift_json.get("drift_share")
            if isinstance(share, int | float):
                extra["drift_share"] = float(share)
            plots = _plot_drift(report, ref, holdout, staging, config)
            drift_report = importlib.import_module("mlops_bot.report.drift")
            sections.append(drift_report.render_drift(report, plots=plots or None))
    if config.fairness.enabled and config.data.sensitive and config.model.task == "classification":
        try:
            fairness = importlib.import_module("mlops_bot.analysis.fairness")
        except ImportError:
            notes.append("fairness analysis is not available in this mlops-bot version")
        else:
            report = fairness.compute_fairness(
                target.y_true,
                np.asarray(head.y_pred),
                holdout[config.data.sensitive],
                pos_label=target.positive_label,
                settings=config.fairness,
                seed=config.seed,
            )
            fairness_json = report.to_json_dict()
            for key, value in _fairness_metrics(fairness_json).items():
                extra[key] = value
            sections.append(_render("mlops_bot.report.fairness", "render_fairness", report))
    return drift_json, fairness_json, extra, notes, [s for s in sections if s]


def base_fairness(
    config: MlopsConfig, holdout: pd.DataFrame, base: Predictions, target: EvaluationTarget
) -> dict[str, float]:
    """The baseline model's disparities on the same holdout, so the table shows their change."""
    if not (config.fairness.enabled and config.data.sensitive and config.model.task == "classification"):
        return {}
    try:
        fairness = importlib.import_module("mlops_bot.analysis.fairness")
    except ImportError:
        return {}
    report = fairness.compute_fairness(
        target.y_true,
        np.asarray(base.y_pred),
        holdout[config.data.sensitive],
        pos_label=target.positive_label,
        settings=config.fairness.model_copy(update={"bootstrap": False}),
        seed=config.seed,
    )
    return _fairness_metrics(report.to_json_dict())




def _fairness_metrics(data: Mapping[str, Any]) -> dict[str, float]:
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


def _render(module: str, function: str, report: Any) -> str:
    try:
        return str(getattr(importlib.import_module(module), function)(report))
    except (ImportError, AttributeError):
        return ""


def _plot_drift(
    report: Any, reference: Any, current: pd.DataFrame, staging: Path, config: MlopsConfig
) -> dict[str, str]:
    """Distribution plots of the most drifted columns (needs reference rows, not just a profile)."""
    if config.drift.plots <= 0 or not isinstance(reference, pd.DataFrame):
        return {}
    drift_report = importlib.import_module("mlops_bot.report.drift")
    written = drift_report.plot_distributions(
        reference, current, report, staging / "plots", limit=config.drift.plots
    )
    return {str(k): Path(v).relative_to(staging).as_posix() for k, v in written.items()}


# ------------------------------------------------------------------------------ reproducibility
def package_versions() -> dict[str, str]:
    import sklearn

    return {
        "python": platform.python_version(),
        "mlops-bot": __version__,
        "scikit-learn": sklearn.__version__,
        "numpy": np.__version__,
        "pandas": pd.__version__,
    }


def git_sha(root: Path) -> str | None:
    try:
        done = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


# ------------------------------------------------------------------------------------ main entry
def validate(
    config: MlopsConfig,
    output: str | Path,
    *,
    base_metrics: Path | None = None,
    base_model: Path | None = None,
    base_label: str | None = None,
    reference_data: Path | None = None,
    environ: Mapping[str, str] | None = None,
    forge: Any = None,
    now: datetime | None = None,
) -> ValidationRun:
    """Run the whole PR validation and write DIR/report.md, report.json, metrics.json, plots/*.png,
    model.skops (when the model is a file) and reference_profile.json (when available)."""
    from mlops_bot.report.markdown import render_markdown
    from mlops_bot.report.plots import write_plots

    environ = dict(os.environ if environ is None else environ)
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output.name}.", dir=output.parent))
    try:
        train, train_path = load_split(config, "train")
        holdout, holdout_path = load_split(config, "holdout")
        head = train_head(config, train_path, holdout_path, holdout, train, staging, environ)
        if len(head.y_pred) != len(holdout):
            raise TrainingError(f"the model returned {len(head.y_pred)} predictions for {len(holdout)} rows")

        base_pred, baseline, base_values, base_profile = _baseline(
            config,
            holdout,
            staging,
            base_model,
            base_label,
            base_metrics,
            forge if forge is not None else default_forge(environ),
        )
        y_true = holdout[config.data.target].to_numpy()
        target = make_target(
            config.model.task,
            y_true,
            [head] + ([base_pred] if base_pred else []),
            config.model.positive_label,
        )
        names = list(config.metrics or task_metrics(config.model.task))
        model_names = [n for n in names if n in task_metrics(config.model.task)]
        head_values = evaluate(target, head, model_names)
        intervals: dict[str, list[float] | None] = {}
        if base_pred is not None:
            base_values = {k: v for k, v in evaluate(target, base_pred, model_names).items() if v is not None}
            cis = paired_bootstrap(
                target,
                base_pred,
                head,
                [n for n in model_names if head_values[n] is not None],
                samples=config.bootstrap.samples,
                confidence=config.bootstrap.confidence,
                seed=config.seed,
            )
            intervals = {k: (v.as_list() if v else None) for k, v in cis.items()}

        reference = read_table(reference_data, "reference data") if reference_data is not None else None
        profile = _reference_profile(train, staging)
        drift_json, fairness_json, extra, notes, sections = run_analyses(
            config, train, holdout, head, target, reference, base_profile, staging
        )

        metrics: dict[str, MetricComparison] = {}
        for name in model_names:
            metrics[name] = compare(base_values.get(name), head_values.get(name), intervals.get(name))
        if base_pred is not None:
            base_values.update(base_fairness(config, holdout, base_pred, target))
        for name, value in extra.items():
            metrics[name] = compare(base_values.get(name), value)
        for name in names:
            if name not in metrics:
                notes.append(f"metric {name!r} is not computed for a {config.model.task} model here")
        gates = evaluate_gates(config.gates, metrics)
        write_plots(target, head, config.model.task, staging / "plots")
        plots = sorted((staging / "plots").glob("*.png"))  # ours and the drift plots
        if profile is None:
            notes.append("no reference profile written (analysis.profile not available)")
        report = ValidationReport(
            model=config.model.name,
            task=config.model.task,
            verdict=verdict(gates),
            metrics=metrics,
            gates=gates,
            baseline=baseline,
            bootstrap={
                "samples": config.bootstrap.samples,
                "confidence": config.bootstrap.confidence,
                "seed": config.seed,
                "paired": base_pred is not None,
            },
            holdout_rows=len(holdout),
            train_rows=len(train),
            confusion_matrix=confusion_matrix(target, head)
            if config.model.task == "classification"
            else None,
            base_confusion_matrix=(
                confusion_matrix(target, base_pred)
                if base_pred is not None and config.model.task == "classification"
                else None
            ),
            drift=drift_json,
            fairness=fairness_json,
            analysis_notes=notes,
            plots=sorted(p.relative_to(staging).as_posix() for p in plots),
            reproducibility=Reproducibility(
                seed=config.seed,
                data={
                    "train": sha256_file(train_path),
                    "holdout": sha256_file(holdout_path),
                    **({"reference": sha256_file(reference_data)} if reference_data else {}),
                },
                packages=package_versions(),
                git_sha=git_sha(config.root),
                command=config.train.command,
                estimator=config.train.builtin.estimator if config.train.builtin else None,
            ),
            created_at=(now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        )
        markdown = render_markdown(report, extra_sections=sections)
        (staging / "report.md").write_text(markdown, encoding="utf-8")
        (staging / "report.json").write_text(report.model_dump_json(indent=2), encoding="utf-8")
        (staging / METRICS_FILE).write_text(
            json.dumps(report.head_metrics(), indent=2, sort_keys=True), encoding="utf-8"
        )
        # The card registered with this model if it is promoted: written now, from the same report.
        label = f"(commit {report.reproducibility.git_sha[:8]})" if report.reproducibility.git_sha else ""
        (staging / MODEL_CARD_FILE).write_text(
            render_model_card(config, json.loads(report.model_dump_json()), label), encoding="utf-8"
        )
        shutil.rmtree(staging / "baseline", ignore_errors=True)
        _publish(staging, output)
        return ValidationRun(report=report, output=output, markdown=markdown)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _baseline(
    config: MlopsConfig,
    holdout: pd.DataFrame,
    staging: Path,
    base_model: Path | None,
    base_label: str | None,
    base_metrics: Path | None,
    forge: Any,
) -> tuple[Predictions | None, Baseline, dict[str, float], Any]:
    """Pick the baseline: an explicit model file, the registry's stage, a metrics file, or none."""
    notes: list[str] = []
    if base_model is not None:
        model = load_model(base_model)
        return (
            predict_with_model(model, holdout, config),
            Baseline(source="model", description=base_label or f"model file {base_model}"),
            {},
            None,
        )
    try:
        found = registry_baseline(config, staging / "baseline", forge)
    except MlopsError as exc:
        found = None
        notes.append(f"registry baseline unavailable: {exc}")
    if found is not None:
        model, version, profile = found
        return (
            predict_with_model(model, holdout, config),
            Baseline(
                source="registry",
                version=version,
                description=f"{config.model.name} {version} (stage {config.baseline.stage})",
            ),
            {},
            profile,
        )
    metrics_path = base_metrics
    if metrics_path is None and config.baseline.metrics_file:
        candidate = config.resolve(config.baseline.metrics_file)
        metrics_path = candidate if candidate.is_file() else None
    if metrics_path is not None:
        notes.append("no baseline model: metric differences have no confidence intervals")
        return (
            None,
            Baseline(source="metrics_file", description=f"metrics file {metrics_path}", notes=notes),
            read_base_metrics(metrics_path),
            None,
        )
    notes.append(f"no model in stage {config.baseline.stage!r} and no base metrics file")
    return (
        None,
        Baseline(source="none", description="no baseline: nothing to compare with", notes=notes),
        {},
        None,
    )


def _reference_profile(train: pd.DataFrame, staging: Path) -> Path | None:
    try:
        profile = importlib.import_module("mlops_bot.analysis.profile")
    except ImportError:
        return None
    path = staging / "reference_profile.json"
    profile.build_profile(train).save(path)
    return path


def _publish(staging: Path, output: Path) -> None:
    """Swap the finished staging directory into place (the old output is removed only after)."""
    old: Path | None = None
    if output.exists():
        old = output.with_name(f".{output.name}.old-{os.getpid()}")
        shutil.rmtree(old, ignore_errors=True)
        output.rename(old)
    staging.chmod(0o755)  # mkdtemp makes it private; the report is meant to be read
    staging.rename(output)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
