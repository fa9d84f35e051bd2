"""Multiclass and regression models through `mlops-bot validate` with sensitive columns: metrics,
paired CIs against a baseline model, gates on the new metrics and disparities, the fairness and
per-class sections; and a fairness section that cannot be computed never fails the validation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlops_bot.demo.dataset import generate
from validate_project import validate_cli, write_config

FEATURES = ["age", "income", "debt_ratio", "late_payments", "employment"]


def _risk_band(frame: pd.DataFrame) -> pd.Series:
    score = frame["debt_ratio"] * 3 + frame["late_payments"] - frame["income"] / 40_000
    return pd.Series(np.select([score < 0.5, score < 2.0], ["low", "medium"], "high"), index=frame.index)


def _project(root: Path, **overrides: object) -> Path:
    (root / "data").mkdir(parents=True, exist_ok=True)
    for name, n, seed in (("train", 500, 1), ("holdout", 400, 2)):
        frame = generate(n, seed=seed, id_start=seed * 10_000)
        frame["risk_band"] = _risk_band(frame)
        frame.to_csv(root / "data" / f"{name}.csv", index=False)
    config: dict[str, object] = {
        "model": {"name": "risk-band", "task": "classification"},
        "train": {"builtin": {"estimator": "logistic_regression", "params": {"max_iter": 1000}}},
        "data": {"train": "data/train.csv", "holdout": "data/holdout.csv", "target": "risk_band",
                 "sensitive": ["sex", "employment"],
                 "features": ["age", "income", "debt_ratio", "late_payments"]},
        "gates": {"f1_weighted": {"min": 0.5}, "accuracy_difference": {"max": 0.5}},
        "bootstrap": {"samples": 200},
        "fairness": {"bootstrap_samples": 200},
        "seed": 3,
    }
    config.update(overrides)
    return write_config(root, config)


def test_multiclass_model_with_sensitive_columns_validates(tmp_path: Path) -> None:
    config = _project(tmp_path)
    assert validate_cli(config, tmp_path / "base") == 0
    _project(tmp_path, train={"builtin": {"estimator": "random_forest", "params": {"n_estimators": 30}}})
    assert validate_cli(config, tmp_path / "head", "--base-model",
                        str(tmp_path / "base" / "model.skops")) == 0
    report = json.loads((tmp_path / "head" / "report.json").read_text())
    metrics = report["metrics"]
    for name in ("accuracy", "precision_macro", "f1_weighted", "roc_auc", "log_loss"):
        row = metrics[name]
        assert row["base"] is not None and row["head"] is not None and row["ci"] is not None, name
        assert row["ci"][0] <= row["diff"] <= row["ci"][1], name
    assert report["confusion_matrix"]["labels"] == ["high", "low", "medium"]
    fairness = report["fairness"]
    assert fairness["task"] == "multiclass" and fairness["sensitive"] == ["sex", "employment"]
    assert "selection_rate[high]" in fairness["metrics"]
    assert metrics["accuracy_difference"]["head"] == pytest.approx(fairness["accuracy_difference"])
    assert metrics["accuracy_difference"]["base"] is not None  # the baseline's disparity, same holdout
    metric_gates = {g["metric"] for g in report["gates"] if not g["metric"].startswith("data.")}
    assert metric_gates == {"f1_weighted", "accuracy_difference"}
    markdown = (tmp_path / "head" / "report.md").read_text()
    assert "Per-class metrics (base → head)" in markdown and "| high |" in markdown
    assert "### Fairness" in markdown and "multiclass model" in markdown
    card = (tmp_path / "head" / "model_card.md").read_text()
    assert "accuracy difference" in card and "four-fifths" not in card


def test_regression_model_gets_a_fairness_section(tmp_path: Path) -> None:
    config = _project(
        tmp_path,
        model={"name": "income", "task": "regression"},
        train={"builtin": {"estimator": "ridge"}},
        data={"train": "data/train.csv", "holdout": "data/holdout.csv", "target": "income",
              "sensitive": ["sex"], "features": ["age", "debt_ratio", "late_payments", "employment"]},
        gates={"mape": {"max": 100.0}, "mae_ratio": {"min": 0.0}},
    )
    assert validate_cli(config, tmp_path / "out") == 0
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert set(report["metrics"]) >= {"rmse", "mae", "r2", "mape", "mae_difference", "rmse_ratio",
                                      "mean_prediction_difference"}
    assert report["fairness"]["task"] == "regression"
    assert set(report["fairness"]["by_group"]) == {"female", "male"}
    assert report["fairness"]["confidence_intervals"]["mae_difference"][0] is not None
    for plot in ("residuals.png", "prediction_vs_actual.png"):
        assert (tmp_path / "out" / "plots" / plot).is_file()


def test_fairness_that_cannot_be_computed_is_reported_not_fatal(tmp_path: Path) -> None:
    config = _project(tmp_path)
    holdout = pd.read_csv(tmp_path / "data" / "holdout.csv")
    holdout.loc[:4, "sex"] = None
    holdout.to_csv(tmp_path / "data" / "holdout.csv", index=False)
    assert validate_cli(config, tmp_path / "out") == 1  # only the gate on the missing disparity fails
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["fairness"] is None
    note = next(n for n in report["analysis_notes"] if n.startswith("fairness not computed"))
    assert "'sex' has 5 missing value(s)" in note
    markdown = (tmp_path / "out" / "report.md").read_text()
    assert "_Not computed: sensitive column 'sex' has 5 missing" in markdown
    gate = next(g for g in report["gates"] if g["metric"] == "accuracy_difference")
    assert gate["status"] == "fail"  # a gate on a number that could not be computed is not passed
