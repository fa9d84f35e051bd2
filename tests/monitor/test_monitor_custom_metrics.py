"""Custom metrics (`metrics:` entries `module:function`) in the monitor's decay checks: the
repository's functions run in a child process where the training command runs, on each window's
labeled production rows; their live values are checked against the registered ones in their own
direction (`greater_is_better`), like the built-in metrics."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlops_bot.analysis.profile import build_profile
from mlops_bot.config import load_config
from mlops_bot.errors import TrainingError
from mlops_bot.monitor.feedback import attach_labels
from mlops_bot.monitor.log import PredictionLog, read_predictions
from mlops_bot.monitor.monitor import check, custom_scores

NOW = 1_700_000_000.0
HOUR = 3600.0

METRICS = '''
import numpy as np


def hit_rate(y_true, y_pred):
    return float(np.mean(np.asarray(y_true) == np.asarray(y_pred)))


def missed_default_cost(y_true, y_pred):
    """5 per missed default, 1 per refused good customer, per prediction: lower is better."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    missed, refused = np.sum((y_true == 1) & (y_pred == 0)), np.sum((y_true == 0) & (y_pred == 1))
    return float((5 * missed + refused) / len(y_true))


def needs_both_classes(y_true, y_pred):
    if len(set(np.asarray(y_true).tolist())) < 2:
        raise ValueError("one class only")
    return 1.0
'''

CONFIG = """
model: {name: credit, task: classification}
train: {builtin: {estimator: logistic_regression}}
data: {train: data/train.csv, holdout: data/holdout.csv, target: default}
metrics:
  - accuracy
  - {function: "team_metrics:hit_rate"}
  - {function: "team_metrics:missed_default_cost", name: cost, greater_is_better: false}
monitor:
  window: 1h
  min_rows: 100
  max_metric_drop: {hit_rate: 0.1, cost: 0.5, accuracy: 0.5}
"""


def _project(root: Path, config: str = CONFIG) -> Path:
    (root / "team_metrics.py").write_text(METRICS, encoding="utf-8")
    (root / ".github").mkdir(exist_ok=True)
    path = root / ".github" / "mlops.yml"
    path.write_text(config, encoding="utf-8")
    return path


def _log(directory: Path, seed: int, rows: int, start: float, wrong: float) -> None:
    """`rows` predictions in [start, start + 1h); a share `wrong` of them mislabeled later."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"income": rng.normal(50, 15, rows)})
    predicted = (frame["income"] < 45).astype(int).tolist()
    truth = [1 - p if rng.random() < wrong else p for p in predicted]
    stamps = np.linspace(start, start + HOUR - 1, rows)
    with PredictionLog(directory, flush_rows=500, flush_seconds=0) as log:
        for i, (row, pred, ts) in enumerate(zip(frame.to_dict("records"), predicted, stamps, strict=True)):
            log.record(f"{seed}-{i}", "credit", "v1.0.0", row, pred, timestamp=float(ts))
    attach_labels(directory, [(f"{seed}-{i}", y) for i, y in enumerate(truth)])


def test_custom_metrics_decay_in_their_own_direction(tmp_path: Path) -> None:
    config = load_config(_project(tmp_path), root=tmp_path)
    _log(tmp_path / "log", seed=1, rows=300, start=NOW - 2 * HOUR, wrong=0.05)  # the window before
    _log(tmp_path / "log", seed=2, rows=300, start=NOW - HOUR, wrong=0.4)  # the window checked
    log = read_predictions(tmp_path / "log")
    scores = custom_scores(config, log, now=NOW, window=HOUR, history=1, environ={"PATH": "/usr/bin:/bin"})
    assert scores is not None and scores.greater_is_better == {"hit_rate": True, "cost": False}
    current = log[(log["timestamp"] >= NOW - HOUR) & (log["timestamp"] < NOW)]
    y_true, y_pred = np.asarray(current["label"].tolist()), np.asarray(current["prediction"].tolist())
    expected_hit = float(np.mean(y_true == y_pred))
    expected_cost = float((5 * np.sum((y_true == 1) & (y_pred == 0)) + np.sum((y_true == 0) & (y_pred == 1)))
                          / len(y_true))
    assert scores.values[(NOW - HOUR, NOW)] == {"hit_rate": pytest.approx(expected_hit),
                                                "cost": pytest.approx(expected_cost)}

    registered = {"accuracy": 0.95, "hit_rate": 0.95, "cost": 0.1}
    report = check(log, build_profile(pd.DataFrame({"income": [40.0, 50.0, 60.0] * 50,
                                                    "default": [1, 0, 0] * 50})),
                   model="credit", stage="production", version="v1.0.0", target="default",
                   task="classification", now=NOW, settings=config.monitor, registered_metrics=registered,
                   history=1, custom=scores)
    hit, cost = report.metrics["hit_rate"], report.metrics["cost"]
    assert hit.live == pytest.approx(expected_hit) and hit.decayed
    assert hit.drop == pytest.approx((0.95 - expected_hit) / 0.95)
    assert cost.live == pytest.approx(expected_cost) and cost.decayed  # it rose: worse for cost
    assert cost.drop == pytest.approx((expected_cost - 0.1) / 0.1)
    assert report.status == "decayed"
    assert any(r.startswith("cost fell from 0.1 to") for r in report.reasons)
    # The built-in accuracy is the same number as the custom hit rate, on the same rows.
    assert report.metrics["accuracy"].live == pytest.approx(expected_hit)
    # The timeline carries the custom metrics of the earlier window too (5% mislabeled).
    earlier = report.timeline[0]
    assert earlier.metrics["hit_rate"] == pytest.approx(earlier.metrics["accuracy"])
    assert earlier.metrics["hit_rate"] > 0.9

    # A better cost than registered is no decay (direction: lower is better).
    better = check(log, build_profile(pd.DataFrame({"income": [40.0, 50.0] * 50, "default": [1, 0] * 50})),
                   model="credit", stage="production", version="v1.0.0", target="default",
                   task="classification", now=NOW, settings=config.monitor,
                   registered_metrics={"cost": 5.0}, history=1, custom=scores)
    assert better.metrics["cost"].drop is not None and better.metrics["cost"].drop < 0
    assert not better.metrics["cost"].decayed


def test_a_window_a_function_cannot_score_is_none_and_a_broken_reference_is_one_error(
        tmp_path: Path) -> None:
    extra = 'greater_is_better: false}\n  - {function: "team_metrics:needs_both_classes"}'
    project = _project(tmp_path, CONFIG.replace("greater_is_better: false}", extra))
    config = load_config(project, root=tmp_path)
    directory = tmp_path / "log"
    with PredictionLog(directory, flush_rows=500, flush_seconds=0) as log:
        for i in range(20):
            log.record(f"r-{i}", "credit", "v1.0.0", {"income": 40.0}, 1, timestamp=NOW - 100 + i)
    attach_labels(directory, [(f"r-{i}", 1) for i in range(20)])
    scores = custom_scores(config, read_predictions(directory), now=NOW, window=HOUR, history=0,
                           environ={"PATH": "/usr/bin:/bin"})
    assert scores is not None
    assert scores.values[(NOW - HOUR, NOW)] == {"hit_rate": 1.0, "cost": 0.0, "needs_both_classes": None}

    broken = load_config(_project(tmp_path, CONFIG.replace("team_metrics:hit_rate", "team_metrics:nope")),
                         root=tmp_path)
    with pytest.raises(TrainingError, match=r"module 'team_metrics' has no function 'nope'"):
        custom_scores(broken, read_predictions(directory), now=NOW, window=HOUR, history=0,
                      environ={"PATH": "/usr/bin:/bin"})
