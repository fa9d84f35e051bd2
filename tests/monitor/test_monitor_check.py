"""Decay detection on generated data with a known shift, and a stable control that must stay ok."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlops_bot.analysis.profile import build_profile
from mlops_bot.config import MonitorSection
from mlops_bot.monitor.feedback import attach_labels
from mlops_bot.monitor.log import PredictionLog, read_predictions
from mlops_bot.monitor.monitor import MonitorReport, check, metric_drop, registered_metrics_from_report

NOW = 1_700_000_000.0
HOUR = 3600.0


def _population(rng: np.random.Generator, n: int, shift: float = 0.0) -> pd.DataFrame:
    income = rng.normal(50 + shift * 20, 10, n)
    age = rng.normal(40 + shift * 10, 8, n)
    region = rng.choice(["n", "s", "e"], n, p=[0.5, 0.3, 0.2] if not shift else [0.1, 0.2, 0.7])
    return pd.DataFrame({"income": income, "age": age, "region": region})


def _truth(frame: pd.DataFrame) -> np.ndarray:
    return (frame["income"] > 50).astype(int).to_numpy()


def _model(frame: pd.DataFrame) -> np.ndarray:
    """The 'production model' learned the old world: it thresholds income at 50."""
    return (frame["income"] > 50).astype(int).to_numpy()


def _write_log(directory: Path, frames: list[tuple[float, pd.DataFrame, np.ndarray]]) -> None:
    with PredictionLog(directory, flush_rows=500, flush_seconds=0) as log:
        for start, frame, preds in frames:
            stamps = np.linspace(start, start + HOUR - 1, len(frame))
            for i, (row, pred, ts) in enumerate(zip(frame.to_dict("records"), preds, stamps, strict=True)):
                log.record(f"{start:.0f}-{i}", "credit", "v1.0.0", row, int(pred), timestamp=float(ts))


@pytest.fixture()
def reference() -> pd.DataFrame:
    rng = np.random.default_rng(1)
    train = _population(rng, 800)
    train["default"] = _truth(train)
    return train


def _check(log: pd.DataFrame, reference: pd.DataFrame) -> MonitorReport:
    settings = MonitorSection(window=HOUR, min_rows=100, max_metric_drop={"accuracy": 0.05})
    return check(log, build_profile(reference), model="credit", stage="production", version="v1.0.0",
                 target="default", task="classification", now=NOW, settings=settings,
                 registered_metrics={"accuracy": 0.97, "f1": 0.96}, history=3)


def test_stable_traffic_is_ok(tmp_path: Path, reference: pd.DataFrame) -> None:
    rng = np.random.default_rng(2)
    frames = []
    for k in range(4):
        frame = _population(rng, 300)
        frames.append((NOW - (4 - k) * HOUR, frame, _model(frame)))
    _write_log(tmp_path, frames)
    report = _check(read_predictions(tmp_path), reference)
    assert report.status == "ok", report.reasons
    assert report.rows == 300
    assert len(report.timeline) == 4
    assert all(p.drift_share is not None and p.drift_share < 0.5 for p in report.timeline)


def test_shifted_inputs_and_predictions_are_detected(tmp_path: Path, reference: pd.DataFrame) -> None:
    rng = np.random.default_rng(3)
    frames = []
    for k in range(3):
        frame = _population(rng, 300)
        frames.append((NOW - (4 - k) * HOUR, frame, _model(frame)))
    shifted = _population(rng, 300, shift=1.0)
    frames.append((NOW - HOUR, shifted, _model(shifted)))
    _write_log(tmp_path, frames)
    report = _check(read_predictions(tmp_path), reference)
    assert report.status == "decayed"
    assert report.drift["dataset_drift"] is True
    assert set(report.drift["columns"]) == {"income", "age", "region"}
    assert report.prediction_drift.drifted
    assert any(r.startswith("input drift") for r in report.reasons)
    # The timeline shows the jump in the last window only.
    shares = [p.drift_share for p in report.timeline]
    assert shares[-1] >= 0.5 and all(s < 0.5 for s in shares[:-1])


def test_falling_accuracy_from_late_labels(tmp_path: Path, reference: pd.DataFrame) -> None:
    """Inputs look the same, but the world changed: the true rule moved. Only labels can tell."""
    rng = np.random.default_rng(4)
    frame = _population(rng, 400)
    _write_log(tmp_path, [(NOW - HOUR, frame, _model(frame))])
    before = _check(read_predictions(tmp_path), reference)
    assert before.status == "ok" and before.metrics["accuracy"].live is None
    truth = (frame["income"] > 55).astype(int).to_numpy()  # concept drift
    attach_labels(tmp_path, [(f"{NOW - HOUR:.0f}-{i}", int(y)) for i, y in enumerate(truth)])
    after = _check(read_predictions(tmp_path), reference)
    accuracy = after.metrics["accuracy"]
    expected = float(np.mean(truth == _model(frame)))
    assert accuracy.live == pytest.approx(expected)
    assert accuracy.decayed and after.status == "decayed"
    assert any("accuracy fell" in r for r in after.reasons)
    assert after.metrics["f1"].live is not None and not after.metrics["f1"].decayed


def test_too_few_rows_is_not_a_verdict(tmp_path: Path, reference: pd.DataFrame) -> None:
    rng = np.random.default_rng(5)
    shifted = _population(rng, 40, shift=1.0)
    _write_log(tmp_path, [(NOW - HOUR, shifted, _model(shifted))])
    report = _check(read_predictions(tmp_path), reference)
    assert report.status == "insufficient_data"
    assert "at least 100" in report.reasons[0]


def test_metric_drop_direction_and_registered_metrics() -> None:
    assert metric_drop("accuracy", 0.9, 0.81) == pytest.approx(0.1)
    assert metric_drop("rmse", 2.0, 2.5) == pytest.approx(0.25)
    assert metric_drop("rmse", 2.0, 1.5) < 0
    report = {"metrics": {"accuracy": {"base": 0.8, "head": 0.9, "diff": 0.1}, "f1": {"head": None},
                          "auc": 0.7}}
    assert registered_metrics_from_report(report) == {"accuracy": 0.9, "auc": 0.7}


def test_production_batch_is_data_checked_against_the_registered_schema(
    tmp_path: Path, reference: pd.DataFrame
) -> None:
    """Logged through the real prediction log (types as the log returns them): a clean batch passes
    every data check; a batch with a region never seen in training fails with the values named."""
    from mlops_bot.analysis.data_schema import infer_schema
    from mlops_bot.monitor.render import render_monitor

    rng = np.random.default_rng(4)
    schema = infer_schema(reference, target="default", classification=True)
    settings = MonitorSection(window=HOUR, min_rows=100)
    clean = _population(rng, 300)
    _write_log(tmp_path / "clean", [(NOW - HOUR, clean, _model(clean))])
    report = check(read_predictions(tmp_path / "clean"), build_profile(reference), model="credit",
                   stage="production", version="v1.0.0", target="default", task="classification",
                   now=NOW, settings=settings, schema=schema)
    assert report.data_checks is not None
    assert [c for c in report.data_checks["checks"] if c["status"] == "fail"] == []
    broken = _population(rng, 300)
    broken.loc[:29, "region"] = "w"
    _write_log(tmp_path / "broken", [(NOW - HOUR, broken, _model(broken))])
    report = check(read_predictions(tmp_path / "broken"), build_profile(reference), model="credit",
                   stage="production", version="v1.0.0", target="default", task="classification",
                   now=NOW, settings=settings, schema=schema)
    assert report.status == "decayed"
    assert any(r.startswith("input data: region: 30 value(s) (10 %)") and "'w'" in r for r in report.reasons)
    assert "### Input data validation" in render_monitor(report)
