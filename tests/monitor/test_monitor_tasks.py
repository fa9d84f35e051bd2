"""Decay checks for multiclass and regression models: live metrics from late labels (macro and
weighted F1, MAE, MAPE) against the registered values, the same code path as binary models."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

from mlops_bot.analysis.profile import build_profile
from mlops_bot.config import MonitorSection
from mlops_bot.monitor.feedback import attach_labels
from mlops_bot.monitor.log import PredictionLog, read_predictions
from mlops_bot.monitor.monitor import check

NOW = 1_700_000_000.0
HOUR = 3600.0


def _population(seed: int, n: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"income": rng.normal(50, 15, n), "age": rng.normal(40, 8, n)})


def _band(income: pd.Series, low: float, high: float) -> np.ndarray:
    return np.select([income < low, income < high], ["low", "mid"], "high")


def _log(directory: Path, frame: pd.DataFrame, predictions: list[object]) -> None:
    stamps = np.linspace(NOW - HOUR, NOW - 1, len(frame))
    with PredictionLog(directory, flush_rows=500, flush_seconds=0) as log:
        for i, (row, pred, ts) in enumerate(zip(frame.to_dict("records"), predictions, stamps, strict=True)):
            log.record(f"r-{i}", "m", "v1.0.0", row, pred, timestamp=float(ts))


def _run(directory: Path, reference: pd.DataFrame, target: str, task: str, registered: dict[str, float],
         limits: dict[str, float]) -> object:
    settings = MonitorSection(window=HOUR, min_rows=100, max_metric_drop=limits)
    return check(read_predictions(directory), build_profile(reference), model="m", stage="production",
                 version="v1.0.0", target=target, task=task, now=NOW, settings=settings,
                 registered_metrics=registered, history=1)


def test_multiclass_model_decays_when_the_classes_move(tmp_path: Path) -> None:
    reference = _population(1, 800).assign(band=lambda f: _band(f["income"], 40, 60))
    live = _population(2, 400)
    predicted = _band(live["income"], 40, 60)  # the production model learned the old bands
    _log(tmp_path, live, list(predicted))
    truth = _band(live["income"], 50, 70)  # the bands moved
    attach_labels(tmp_path, [(f"r-{i}", str(y)) for i, y in enumerate(truth)])
    report = _run(tmp_path, reference, "band", "classification", {"f1_macro": 1.0, "f1_weighted": 1.0},
                  {"f1_macro": 0.1})
    f1 = report.metrics["f1_macro"]  # type: ignore[attr-defined]
    assert f1.live == pytest.approx(skm.f1_score(truth, predicted, average="macro"))
    assert f1.decayed and report.status == "decayed"  # type: ignore[attr-defined]
    weighted = report.metrics["f1_weighted"]  # type: ignore[attr-defined]
    assert weighted.live == pytest.approx(skm.f1_score(truth, predicted, average="weighted"))


def test_regression_model_decays_when_the_errors_grow(tmp_path: Path) -> None:
    reference = _population(1, 800).assign(price=lambda f: 3 * f["income"] + f["age"])
    live = _population(3, 400)
    predicted = (3 * live["income"] + live["age"]).round(6)
    _log(tmp_path, live, [float(p) for p in predicted])
    truth = 3 * live["income"] + live["age"] + 25.0  # prices rose
    attach_labels(tmp_path, [(f"r-{i}", float(y)) for i, y in enumerate(truth)])
    report = _run(tmp_path, reference, "price", "regression", {"mae": 1.0, "mape": 0.01, "r2": 0.99},
                  {"mae": 0.5, "mape": 0.5})
    mae = report.metrics["mae"]  # type: ignore[attr-defined]
    assert mae.live == pytest.approx(skm.mean_absolute_error(truth, predicted), rel=1e-6)
    mape = report.metrics["mape"]  # type: ignore[attr-defined]
    assert mape.live == pytest.approx(skm.mean_absolute_percentage_error(truth, predicted), rel=1e-6)
    assert mae.decayed and mape.decayed and report.status == "decayed"  # type: ignore[attr-defined]
