"""Custom metrics (`metrics: - function: module:function`): the repository's own metric functions,
computed on the same holdout and the same bootstrap resamples as the built-in metrics.

The functions are the PR's code, so they never run inside mlops-bot's process: `run_custom_metrics`
writes the labels and predictions to a JSON file and runs `python -m mlops_bot.pipeline.custom_metrics`
through the training command's runner (same working directory, same environment, same timeout), and
reads back each metric's value on the holdout and on every resample. The child draws the resamples
with the same seeded `resample_counts` as the built-in bootstrap, so the intervals are paired with
them row for row.
"""

from __future__ import annotations

import importlib
import json
import math
import shlex
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mlops_bot.config import MlopsConfig
from mlops_bot.errors import TrainingError
from mlops_bot.pipeline.bootstrap import Interval, percentile_interval, resample_counts
from mlops_bot.pipeline.command import command_env, run_command
from mlops_bot.pipeline.evaluate import Predictions


@dataclass(frozen=True)
class CustomMetricResult:
    name: str
    greater_is_better: bool
    head: float | None
    base: float | None = None
    ci: Interval | None = None  # of head - base, paired with the built-in metrics' resamples


def _plain(values: Any) -> list[Any]:
    return [v.item() if isinstance(v, np.generic) else v for v in np.asarray(values).tolist()]


def run_custom_metrics(
    config: MlopsConfig,
    y_true: Any,
    head: Predictions,
    base: Predictions | None,
    *,
    staging: Path,
    environ: Mapping[str, str],
    paths: Mapping[str, Path],
) -> list[CustomMetricResult]:
    """Each custom metric's head value, base value and paired interval of the difference."""
    metrics = config.custom_metrics
    if not metrics:
        return []
    request = {
        "metrics": [{"name": m.metric_name, "function": m.function} for m in metrics],
        "y_true": _plain(y_true),
        "head": _plain(head.y_pred),
        "base": _plain(base.y_pred) if base is not None else None,
        "samples": config.bootstrap.samples if base is not None else 0,
        "seed": config.seed,
    }
    answer = _ask_child(config, request, staging, environ, paths)
    out: list[CustomMetricResult] = []
    for metric in metrics:
        row = answer[metric.metric_name]
        diffs = row.get("diffs")
        values = np.asarray([math.nan if d is None else d for d in diffs or []], dtype=np.float64)
        ci = percentile_interval(values, config.bootstrap.confidence) if values.size else None
        out.append(
            CustomMetricResult(metric.metric_name, metric.greater_is_better, row["head"], row["base"], ci)
        )
    return out


def score_groups(
    config: MlopsConfig,
    groups: Mapping[str, tuple[Any, Any]],
    *,
    scratch: Path,
    environ: Mapping[str, str],
) -> dict[str, dict[str, float | None]]:
    """Each custom metric on each group of (labels, predictions): the monitor's windows of
    production predictions whose labels came back. Run like `run_custom_metrics` (the repository's
    code, in a child process with the training command's directory, environment and timeout). A
    function that fails on a group (e.g. one class only in a small window) gives None there."""
    metrics = config.custom_metrics
    if not metrics or not groups:
        return {key: {} for key in groups}
    request = {
        "metrics": [{"name": m.metric_name, "function": m.function} for m in metrics],
        "groups": {key: {"y_true": _plain(y_true), "y_pred": _plain(y_pred)}
                   for key, (y_true, y_pred) in groups.items()},
    }
    answer = _ask_child(config, request, scratch, environ, {
        "train": config.resolve(config.data.train), "holdout": config.resolve(config.data.holdout),
        "model": scratch / "model.skops", "predictions": scratch / "predictions.csv"})
    return {key: {m.metric_name: answer[key].get(m.metric_name) for m in metrics} for key in groups}

def _ask_child(config: MlopsConfig, request: dict[str, Any], folder: Path, environ: Mapping[str, str],
               paths: Mapping[str, Path]) -> Any:
    """Run this module as a child process the way the training command runs (the repository's
    directory, environment and timeout) on `request`, and return the answer it wrote. The request
    and answer files live in `folder` and are removed once read; the log stays there."""
    metrics = config.custom_metrics
    request_path = folder / "custom_metrics_request.json"
    result_path = folder / "custom_metrics_result.json"
    log_path = folder / "custom_metrics.log"
    request_path.write_text(json.dumps(request), encoding="utf-8")
    env = command_env(environ, train=paths["train"].resolve(), holdout=paths["holdout"].resolve(),
                      model=paths["model"].resolve(), predictions=paths["predictions"].resolve(),
                      seed=config.seed, passthrough=config.train.env)
    try:
        run_command(
            shlex.join([sys.executable, "-m", "mlops_bot.pipeline.custom_metrics",
                        str(request_path.resolve()), str(result_path.resolve())]),
            workdir=config.resolve(config.train.workdir), env=env, timeout=config.train.timeout,
            log_path=log_path,
        )
    except TrainingError as exc:
        raise TrainingError(f"custom metrics ({', '.join(m.function for m in metrics)}): {exc}") from None
    try:
        answer = json.loads(result_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise TrainingError(f"custom metrics wrote no readable result ({exc}); log: {log_path}") from None
    request_path.unlink(missing_ok=True)
    result_path.unlink(missing_ok=True)
    return answer


# ------------------------------------------------------------------------------------ the child
def load_function(metric: Mapping[str, str], workdir: Path) -> Callable[..., Any]:
    """Import `module:function` from the working directory (the repository's code)."""
    module_name, function_name = metric["function"].rsplit(":", 1)
    if str(workdir) not in sys.path:
        sys.path.insert(0, str(workdir))
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise TrainingError(
            f"custom metric {metric['name']!r}: cannot import module {module_name!r} from {workdir}: {exc}"
        ) from None
    function = getattr(module, function_name, None)
    if not callable(function):
        raise TrainingError(
            f"custom metric {metric['name']!r}: module {module_name!r} has no function {function_name!r}"
        )
    return function


def _value(function: Callable[..., Any], name: str, y_true: np.ndarray, y_pred: np.ndarray) -> float | None:
    value = function(y_true, y_pred)
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise TrainingError(f"custom metric {name!r} returned {value!r}; expected a number") from None
    return number if math.isfinite(number) else None


def compute(request: Mapping[str, Any], workdir: Path) -> dict[str, dict[str, Any]]:
    """Values on the holdout and head - base on each resample (index form of the counts)."""
    y_true = np.asarray(request["y_true"])
    head = np.asarray(request["head"])
    base = np.asarray(request["base"]) if request.get("base") is not None else None
    samples = int(request.get("samples") or 0)
    counts = None
    if base is not None and samples:
        counts = resample_counts(len(y_true), samples, int(request["seed"]))
    out: dict[str, dict[str, Any]] = {}
    for metric in request["metrics"]:
        function = load_function(metric, workdir)
        name = metric["name"]
        row: dict[str, Any] = {
            "head": _value(function, name, y_true, head),
            "base": _value(function, name, y_true, base) if base is not None else None,
            "diffs": None,
        }
        if counts is not None and base is not None:
            diffs = []
            rows = np.arange(len(y_true))
            for weights in counts:
                index = np.repeat(rows, weights.astype(np.int64))
                h = _value(function, name, y_true[index], head[index])
                b = _value(function, name, y_true[index], base[index])
                diffs.append(h - b if h is not None and b is not None else math.nan)
            row["diffs"] = [d if math.isfinite(d) else None for d in diffs]
        out[name] = row
    return out


def compute_groups(request: Mapping[str, Any], workdir: Path) -> dict[str, dict[str, float | None]]:
    """Each metric on each group; a function that raises on a group gives None for it (a window
    too small or too one-sided for the metric), a broken reference is still an error."""
    functions = [(m["name"], load_function(m, workdir)) for m in request["metrics"]]
    out: dict[str, dict[str, float | None]] = {}
    for key, group in request["groups"].items():
        y_true, y_pred = np.asarray(group["y_true"]), np.asarray(group["y_pred"])
        row: dict[str, float | None] = {}
        for name, function in functions:
            try:
                row[name] = _value(function, name, y_true, y_pred) if len(y_true) else None
            except TrainingError:
                raise
            except Exception as exc:  # the repository's function failed on this group
                print(f"custom metric {name!r} on {key}: {type(exc).__name__}: {exc}", file=sys.stderr)
                row[name] = None
        out[key] = row
    return out


def main(argv: list[str]) -> int:
    request_path, result_path = Path(argv[0]), Path(argv[1])
    request = json.loads(request_path.read_text(encoding="utf-8"))
    try:
        workdir = Path.cwd()
        result: Any = compute_groups(request, workdir) if "groups" in request else compute(request, workdir)
    except TrainingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    result_path.write_text(json.dumps(result), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
