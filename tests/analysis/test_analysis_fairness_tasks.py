"""Multiclass and regression fairness against fairlearn 0.15's MetricFrame run in-process: per-group
values, overall values, difference and ratio (between_groups and to_overall), single and
intersectional groups; plus the intervals, small groups and clear errors fairlearn lacks."""

from __future__ import annotations

import functools
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import MetricFrame, selection_rate
from sklearn.metrics import accuracy_score, mean_absolute_error, recall_score, root_mean_squared_error

from mlops_bot.analysis.fairness_tasks import (
    compute_multiclass_fairness,
    compute_regression_fairness,
    selection_rate_key,
)
from mlops_bot.cli import main
from mlops_bot.config import FairnessSection
from mlops_bot.errors import DataError

NO_BOOTSTRAP = FairnessSection(bootstrap=False)


def _close(a: float | None, b: float) -> bool:
    if a is None or math.isnan(a) or math.isnan(b):
        return (a is None or math.isnan(a)) and math.isnan(b)
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


def _sensitive(n: int, rng: np.random.Generator) -> pd.DataFrame:
    return pd.DataFrame({"sex": rng.choice(["f", "m"], n), "region": rng.choice(list("abcd"), n)})


def _multiclass(kind: str, n: int = 2000, seed: int = 0) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    sens = _sensitive(n, rng)
    y_true = rng.choice(["cat", "dog", "fish"], n, p=[0.5, 0.3, 0.2])
    wrong = rng.random(n) < np.where(sens["sex"] == "f", 0.35, 0.15)
    y_pred = np.where(wrong, rng.choice(["cat", "dog", "fish"], n), y_true)
    if kind == "class_missing_in_group":  # region d never predicts or holds "fish"
        in_d = (sens["region"] == "d").to_numpy()
        y_true[in_d & (y_true == "fish")] = "cat"
        y_pred[in_d & (y_pred == "fish")] = "dog"
    elif kind == "integers":
        codes = {"cat": 0, "dog": 1, "fish": 2}
        y_true = np.array([codes[v] for v in y_true])
        y_pred = np.array([codes[v] for v in y_pred])
    return y_true, y_pred, sens


@pytest.mark.parametrize("kind", ["plain", "class_missing_in_group", "integers"])
@pytest.mark.parametrize("columns", [["sex"], ["sex", "region"]])
@pytest.mark.parametrize("method", ["between_groups", "to_overall"])
def test_multiclass_fairness_matches_fairlearn(kind: str, columns: list[str], method: str) -> None:
    y_true, y_pred, sens = _multiclass(kind)
    classes = sorted(set(y_true.tolist()) | set(y_pred.tolist()))
    ours = compute_multiclass_fairness(
        y_true, y_pred, sens[columns], classes=classes,
        settings=NO_BOOTSTRAP.model_copy(update={"method": method}),
    )
    metrics = {
        "accuracy": accuracy_score,
        "recall_macro": functools.partial(recall_score, average="macro", zero_division=0),
        **{selection_rate_key(c): functools.partial(selection_rate, pos_label=c) for c in classes},
    }
    frame = MetricFrame(metrics=metrics, y_true=y_true, y_pred=y_pred, sensitive_features=sens[columns])
    by_group = frame.by_group
    assert len(ours.by_group) == len(by_group)
    for index, row in by_group.iterrows():
        key = "|".join(str(v) for v in (index if isinstance(index, tuple) else (index,)))
        for name in metrics:
            assert _close(ours.by_group[key][name], float(row[name])), (key, name)
    for name in metrics:
        assert _close(ours.overall[name], float(frame.overall[name])), name
    difference = frame.difference(method=method)
    ratio = frame.ratio(method=method)
    for name in ("accuracy", "recall_macro"):
        assert _close(ours.disparities[f"{name}_difference"], float(difference[name]))
        assert _close(ours.disparities[f"{name}_ratio"], float(ratio[name]))
    for c in classes:
        key = selection_rate_key(c)
        assert _close(ours.class_disparities[str(c)]["difference"], float(difference[key]))
        assert _close(ours.class_disparities[str(c)]["ratio"], float(ratio[key]))
    worst_difference = max(float(difference[selection_rate_key(c)]) for c in classes)
    worst_ratio = min(float(ratio[selection_rate_key(c)]) for c in classes)
    assert _close(ours.disparities["selection_rate_difference"], worst_difference)
    assert _close(ours.disparities["selection_rate_ratio"], worst_ratio)


def _regression(n: int = 2000, seed: int = 0) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    sens = _sensitive(n, rng)
    y_true = rng.normal(50, 10, n)
    noise = rng.normal(0, np.where(sens["region"] == "a", 8.0, 3.0))
    return y_true, y_true + noise + np.where(sens["sex"] == "f", 2.0, 0.0), sens


@pytest.mark.parametrize("columns", [["sex"], ["region"], ["sex", "region"]])
@pytest.mark.parametrize("method", ["between_groups", "to_overall"])
def test_regression_fairness_matches_fairlearn(columns: list[str], method: str) -> None:
    y_true, y_pred, sens = _regression()
    ours = compute_regression_fairness(
        y_true, y_pred, sens[columns], settings=NO_BOOTSTRAP.model_copy(update={"method": method})
    )
    metrics = {
        "mae": mean_absolute_error,
        "rmse": root_mean_squared_error,
        "mean_prediction": lambda t, p: float(np.mean(p)),
    }
    frame = MetricFrame(metrics=metrics, y_true=y_true, y_pred=y_pred, sensitive_features=sens[columns])
    for index, row in frame.by_group.iterrows():
        key = "|".join(str(v) for v in (index if isinstance(index, tuple) else (index,)))
        for name in metrics:
            assert _close(ours.by_group[key][name], float(row[name])), (key, name)
        in_group = (sens[columns].astype(str) == key.split("|")).all(axis=1)
        assert ours.counts[key] == int(in_group.sum())
    difference = frame.difference(method=method)
    ratio = frame.ratio(method=method)
    for name in metrics:
        assert _close(ours.overall[name], float(frame.overall[name]))
        assert _close(ours.disparities[f"{name}_difference"], float(difference[name])), name
        assert _close(ours.disparities[f"{name}_ratio"], float(ratio[name])), name


def test_intervals_cover_the_estimate_and_are_reproducible() -> None:
    y_true, y_pred, sens = _multiclass("plain", n=1500)
    settings = FairnessSection(bootstrap_samples=300)
    first = compute_multiclass_fairness(y_true, y_pred, sens[["sex"]], settings=settings, seed=3)
    again = compute_multiclass_fairness(y_true, y_pred, sens[["sex"]], settings=settings, seed=3)
    assert first.intervals == again.intervals and first.bootstrap_samples == 300
    for name, value in first.disparities.items():
        low, high = first.intervals[name]
        assert low <= value <= high, name
    # sex "f" is wrong twice as often: the accuracy gap's interval excludes 0
    assert first.intervals["accuracy_difference"][0] > 0
    y_true, y_pred, sens = _regression(n=1500)
    reg = compute_regression_fairness(y_true, y_pred, sens[["sex"]], settings=settings, seed=3)
    low, high = reg.intervals["mean_prediction_difference"]
    assert low <= reg.disparities["mean_prediction_difference"] <= high and low > 0.5


def test_small_groups_json_and_clear_errors() -> None:
    y_true, y_pred, sens = _regression(n=200)
    report = compute_regression_fairness(
        y_true, y_pred, sens[["sex", "region"]], settings=FairnessSection(min_group_size=30, bootstrap=False)
    )
    assert report.small_groups and all(report.counts[g] < 30 for g in report.small_groups)
    data = report.to_json_dict()
    assert data["disparity_names"] == list(report.disparities)
    assert data["mae_difference"] == pytest.approx(report.disparities["mae_difference"])
    with pytest.raises(DataError, match="numeric"):
        compute_regression_fairness(np.array(["a"] * 3), np.array(["b"] * 3), sens[["sex"]].iloc[:3])
    missing = sens[["sex"]].iloc[:200].copy()
    missing.iloc[0, 0] = None
    with pytest.raises(DataError, match="sensitive column 'sex' has 1 missing"):
        compute_regression_fairness(y_true, y_pred, missing)
    with pytest.raises(DataError, match="not among the classes"):
        compute_multiclass_fairness(np.array([0, 1, 2]), np.array([0, 1, 3]), sens[["sex"]].iloc[:3],
                                    classes=[0, 1, 2])


def test_cli_computes_every_task(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    y_true, y_pred, sens = _multiclass("plain", n=600)
    pd.DataFrame({"y": y_true, "p": y_pred, "sex": sens["sex"]}).to_csv(tmp_path / "multi.csv", index=False)
    base = ["fairness", "--y-true", "y", "--y-pred", "p", "--sensitive", "sex", "--seed", "1"]
    assert main([*base, "--predictions", str(tmp_path / "multi.csv")]) == 0  # auto: three labels
    data = json.loads(capsys.readouterr().out)
    expected = compute_multiclass_fairness(y_true, y_pred, sens[["sex"]], seed=1)
    assert data["task"] == "multiclass"
    assert data["accuracy_difference"] == pytest.approx(expected.disparities["accuracy_difference"])
    y_true, y_pred, sens = _regression(n=600)
    pd.DataFrame({"y": y_true, "p": y_pred, "sex": sens["sex"]}).to_csv(tmp_path / "reg.csv", index=False)
    args = [*base, "--predictions", str(tmp_path / "reg.csv"), "--task", "regression"]
    assert main([*args, "--format", "markdown"]) == 0
    markdown = capsys.readouterr().out
    assert "regression model" in markdown and "| mae difference |" in markdown
