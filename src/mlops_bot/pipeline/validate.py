"""PR validation: train the head model, evaluate it, compare with the baseline, gate, report.

This is the I/O edge of the pipeline: it reads data and models, runs training, and writes the
output directory. All decisions (metrics, bootstrap, gates, rendering) are pure functions it calls.
Outputs are written into a staging directory beside the target and moved into place only when
everything succeeded, so a failed run never leaves a half-written report that looks like a result.
"""

from __future__ import annotations

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
import sklearn

from mlops_bot import __version__, redaction
from mlops_bot.analysis.profile import build_profile
from mlops_bot.checksums import sha256_file
from mlops_bot.config import MlopsConfig
from mlops_bot.dataset import read_table, require_columns
from mlops_bot.errors import DataError, MlopsError, TrainingError
from mlops_bot.forge.base import Forge
from mlops_bot.forge.select import forge_from_env
from mlops_bot.model_file import load_model, save_model
from mlops_bot.model_signature import SIGNATURE_FILE, signature_of
from mlops_bot.pipeline import train as training
from mlops_bot.pipeline.analyses import base_fairness, run_analyses
from mlops_bot.pipeline.baseline import choose_baseline
from mlops_bot.pipeline.bootstrap import paired_bootstrap
from mlops_bot.pipeline.command import command_env, run_command
from mlops_bot.pipeline.comment import render_markdown
from mlops_bot.pipeline.custom_metrics import run_custom_metrics
from mlops_bot.pipeline.data_validation import data_gate_results, validate_data
from mlops_bot.pipeline.evaluate import (
    Predictions,
    confusion_matrix,
    default_metrics,
    evaluate,
    make_target,
    task_metrics,
)
from mlops_bot.pipeline.gates import MetricComparison, compare, evaluate_gates, verdict
from mlops_bot.pipeline.params import training_params
from mlops_bot.pipeline.plots import write_plots
from mlops_bot.pipeline.result import Reproducibility, ValidationReport
from mlops_bot.registry.model_card import render_model_card
from mlops_bot.report.data_checks import render_data_checks

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


# ------------------------------------------------------------------------------------- training
def train_head(
    config: MlopsConfig,
    train_path: Path,
    holdout_path: Path,
    holdout: pd.DataFrame,
    train: pd.DataFrame,
    staging: Path,
    environ: Mapping[str, str],
    log_path: Path | None = None,
) -> Predictions:
    """Train the PR's model and predict on the holdout; the model lands in staging/model.skops. The
    command's log goes to `log_path` (default staging/train.log), which a failure does not delete."""
    if config.train.builtin is not None:
        model, features = training.train_builtin(config, train)
        save_model(model, staging / "model.skops")
        write_signature(model, features, holdout, staging)
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
    env = command_env(
        environ,
        train=train_path.resolve(),
        holdout=holdout_path.resolve(),
        model=model_path.resolve(),
        predictions=predictions_path.resolve(),
        seed=config.seed,
        passthrough=config.train.env,
    )
    run_command(
        config.train.command,
        workdir=workdir,
        env=env,
        timeout=config.train.timeout,
        log_path=log_path or staging / "train.log",
    )
    if model_path.is_file():
        model = load_model(model_path, extra_types=config.model.trusted_types)
        if model_path.resolve() != (staging / "model.skops").resolve() and model_path.suffix == ".skops":
            shutil.copyfile(model_path, staging / "model.skops")
        elif model_path.suffix == ".onnx":  # registered and served as it is, with onnxruntime
            shutil.copyfile(model_path, staging / "model.onnx")
        features = training.feature_columns(config, holdout)
        write_signature(model, features, holdout, staging)
        return training.predict(model, holdout, features, config.model.task)
    if predictions_path.is_file():
        return training.read_predictions(predictions_path, holdout, config)
    raise TrainingError(
        f"training command succeeded but wrote neither {model_path} nor {predictions_path} "
        "(see the contract in docs/config.md)"
    )


def write_signature(model: Any, features: list[str], holdout: pd.DataFrame, staging: Path) -> None:
    """staging/signature.json: the inputs and outputs the registered model is served with (its
    feature columns when the model does not record them; those holding text are categorical)."""
    strings = [c for c in features if c in holdout and not pd.api.types.is_numeric_dtype(holdout[c])]
    signature = signature_of(model, features, string_features=strings)
    (staging / SIGNATURE_FILE).write_text(signature.to_json(), encoding="utf-8")


def default_forge(environ: Mapping[str, str]) -> Forge | None:
    """The forge the registry baseline is downloaded through; none when the environment names none
    (a local-only registry still works without one)."""
    try:
        return forge_from_env(environ)
    except MlopsError:
        return None


# ------------------------------------------------------------------------------ reproducibility
def package_versions() -> dict[str, str]:
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
    base_metrics_label: str | None = None,
    base_model: Path | None = None,
    base_label: str | None = None,
    reference_data: Path | None = None,
    environ: Mapping[str, str] | None = None,
    forge: Any = None,
    now: datetime | None = None,
    gates_notice: str | None = None,
) -> ValidationRun:
    """Run the whole PR validation and write DIR/report.md, report.json, metrics.json, plots/*.png,
    model.skops or model.onnx and signature.json (when the model is a file), reference_profile.json and
    data_schema.json."""
    environ = dict(os.environ if environ is None else environ)
    redaction.register_environ(environ)  # its tokens and keys are masked in the log, errors and report
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output.name}.", dir=output.parent))
    try:
        train, train_path = load_split(config, "train")
        holdout, holdout_path = load_split(config, "holdout")
        # The log lives beside the output until training succeeds: the error of a failed run quotes
        # its path, and the staging directory is deleted on any failure.
        kept_log = output.parent / f"{output.name}.train.log"
        kept_log.unlink(missing_ok=True)  # an earlier failure's log is not this run's
        head = train_head(config, train_path, holdout_path, holdout, train, staging, environ, kept_log)
        if kept_log.exists():
            kept_log.replace(staging / "train.log")
        if len(head.y_pred) != len(holdout):
            raise TrainingError(f"the model returned {len(head.y_pred)} predictions for {len(holdout)} rows")

        chosen = choose_baseline(
            config,
            holdout,
            staging / "baseline",
            base_model=base_model,
            base_label=base_label,
            base_metrics=base_metrics,
            base_metrics_label=base_metrics_label,
            forge=forge if forge is not None else default_forge(environ),
        )
        base_pred, base_values = chosen.predictions, dict(chosen.metrics)
        data_checks = validate_data(config, train, holdout, staging, staging / "baseline", chosen.baseline)
        y_true = holdout[config.data.target].to_numpy()
        target = make_target(
            config.model.task,
            y_true,
            [head] + ([base_pred] if base_pred else []),
            config.model.positive_label,
        )
        multiclass = config.model.task == "classification" and not target.binary
        names = config.metric_names or list(default_metrics(config.model.task, multiclass=multiclass))
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
        build_profile(train).save(staging / "reference_profile.json")
        analyses = run_analyses(config, train, holdout, head, target, reference, chosen.profile, staging)
        notes = analyses.notes

        metrics: dict[str, MetricComparison] = {}
        for name in model_names:
            metrics[name] = compare(base_values.get(name), head_values.get(name), intervals.get(name))
        if base_pred is not None:
            base_values.update(base_fairness(config, holdout, base_pred, target))
        for name, value in analyses.metrics.items():
            metrics[name] = compare(base_values.get(name), value)
        paths = {"train": train_path, "holdout": holdout_path, "model": staging / "model.skops",
                 "predictions": staging / "predictions.csv"}
        for custom in run_custom_metrics(
            config, target.y_true, head, base_pred, staging=staging, environ=environ, paths=paths
        ):
            row = compare(custom.base if base_pred is not None else base_values.get(custom.name), custom.head,
                          custom.ci.as_list() if custom.ci else None)
            metrics[custom.name] = row.model_copy(update={"lower_is_better": not custom.greater_is_better})
        for name in names:
            if name not in metrics:
                notes.append(f"metric {name!r} is not computed for a {config.model.task} model here")
        gates = evaluate_gates(config.gates, metrics) + data_gate_results(data_checks.checks)
        write_plots(target, head, config.model.task, staging / "plots")
        plots = sorted((staging / "plots").glob("*.png"))  # ours and the drift plots
        report = ValidationReport(
            model=config.model.name,
            task=config.model.task,
            verdict=verdict(gates),
            metrics=metrics,
            gates=gates,
            baseline=chosen.baseline,
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
            drift=analyses.drift,
            fairness=analyses.fairness,
            data_checks=data_checks.to_json_dict(),
            analysis_notes=notes,
            gates_notice=gates_notice,
            params={"head": training_params(config), "base": chosen.params},
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
        sections = [render_data_checks(data_checks), *analyses.sections]
        markdown = redaction.redact(render_markdown(report, extra_sections=sections))  # no secret in a report
        (staging / "report.md").write_text(markdown, encoding="utf-8")
        report_json = redaction.redact(report.model_dump_json(indent=2))
        (staging / "report.json").write_text(report_json, encoding="utf-8")
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
