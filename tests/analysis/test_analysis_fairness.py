"""Our fairness numbers against fairlearn 0.15 in-process: equal to 1e-9 relative on generated
datasets (single and intersectional groups, a group without positives, a single group, string
labels), plus the behaviours fairlearn lacks (missing values, small groups, intervals)."""

from __future__ import annotations

import functools
import math

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import (
    MetricFrame,
    demographic_parity_difference,
    demographic_parity_ratio,
    equal_opportunity_difference,
    equalized_odds_difference,
    equalized_odds_ratio,
    false_positive_rate,
    selection_rate,
    true_positive_rate,
)
from sklearn.metrics import accuracy_score

from mlops_bot.analysis.fairness import FOUR_FIFTHS_LABEL, compute_fairness
from mlops_bot.config import FairnessSection
from mlops_bot.errors import DataError

NAMED = {
    "demographic_parity_difference": demographic_parity_difference,
    "demographic_parity_ratio": demographic_parity_ratio,
    "equalized_odds_difference": equalized_odds_difference,
    "equalized_odds_ratio": equalized_odds_ratio,
    "equal_opportunity_difference": equal_opportunity_difference,
}


def _close(a: float, b: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


def _dataset(kind: str, seed: int = 0) -> tuple[np.ndarray, np.ndarray, pd.DataFrame, object]:
    rng = np.random.default_rng(seed)
    n = {"small": 300, "large": 20_000}.get(kind, 3000)
    sens = pd.DataFrame({"sex": rng.choice(["f", "m"], n), "region": rng.choice(list("abcde"), n)})
    y_true = rng.integers(0, 2, n)
    flip = rng.random(n) < np.where(sens["sex"] == "f", 0.3, 0.15)
    y_pred = np.where(flip, 1 - y_true, y_true)
    pos: object = 1
    if kind == "no_positives":  # region e has no positive labels: TPR 0, not NaN
        y_true[(sens["region"] == "e").to_numpy()] = 0
    elif kind == "single_group":
        sens = sens.assign(sex="f", region="a")
    elif kind == "strings":
        y_true = np.where(y_true == 1, "yes", "no")
        y_pred = np.where(y_pred == 1, "yes", "no")
        pos = "yes"
    elif kind == "all_negative_predictions":
        y_pred = np.zeros(n, dtype=int)
    return y_true, y_pred, sens, pos


@pytest.mark.parametrize(
    "kind", ["small", "large", "no_positives", "single_group", "strings", "all_negative_predictions"]
)
@pytest.mark.parametrize("columns", [["sex"], ["sex", "region"]])
def test_fairness_matches_fairlearn(kind: str, columns: list[str]) -> None:
    y_true, y_pred, sens, pos = _dataset(kind)
    ours = compute_fairness(y_true, y_pred, sens[columns], pos_label=pos)
    metrics = {
        "accuracy": accuracy_score,
        "selection_rate": functools.partial(selection_rate, pos_label=pos),
        "tpr": functools.partial(true_positive_rate, pos_label=pos),
        "fpr": functools.partial(false_positive_rate, pos_label=pos),
        "count": lambda t, p: len(t),
    }
    frame = MetricFrame(metrics=metrics, y_true=y_true, y_pred=y_pred, sensitive_features=sens[columns])
    by_group = frame.by_group.dropna(how="all")
    assert len(by_group) == len(ours.by_group)
    for index, row in by_group.iterrows():
        key = "|".join(map(str, index if isinstance(index, tuple) else (index,)))
        got = ours.by_group[key]
        for metric in ("accuracy", "selection_rate", "tpr", "fpr"):
            assert _close(getattr(got, metric), float(row[metric])), (key, metric)
        assert got.count == int(row["count"])
    for metric in ("accuracy", "selection_rate", "tpr", "fpr"):
        assert _close(getattr(ours.overall, metric), float(frame.overall[metric])), metric
    if pos == 1:  # fairlearn's named disparities use the default pos_label=1 selection rate
        for name, function in NAMED.items():
            theirs = float(function(y_true, y_pred, sensitive_features=sens[columns]))
            assert _close(ours.disparities[name], theirs), (name, ours.disparities[name], theirs)
    else:
        tpr_frame = frame.by_group["tpr"]
        assert _close(ours.disparities["equal_opportunity_difference"], tpr_frame.max() - tpr_frame.min())


def test_json_shape_and_group_keys_follow_sensitive_order() -> None:
    y_true, y_pred, sens, _ = _dataset("medium")
    data = compute_fairness(y_true, y_pred, sens[["region", "sex"]]).to_json_dict()
    assert set(data["by_group"]) == {f"{r}|{s}" for r in "abcde" for s in "fm"}
    assert set(data["by_group"]["a|f"]) == {"accuracy", "selection_rate", "tpr", "fpr", "count"}
    for key in NAMED:
        assert isinstance(data[key], float)
    assert data["four_fifths"]["label"] == FOUR_FIFTHS_LABEL


def test_missing_sensitive_values_name_column_and_count() -> None:
    y_true, y_pred, sens, _ = _dataset("medium")
    sens = sens.copy()
    sens.loc[[3, 10, 99], "region"] = None
    with pytest.raises(DataError, match=r"'region' has 3 missing value\(s\) out of 3000 rows"):
        compute_fairness(y_true, y_pred, sens)
    report = compute_fairness(y_true, y_pred, sens, settings=FairnessSection(missing="group"))
    missing_groups = [k for k in report.by_group if k.endswith("|missing")]
    assert sum(report.by_group[k].count for k in missing_groups) == 3
    assert set(missing_groups) <= set(report.small_groups)


def test_bootstrap_intervals_are_seeded_and_shrink_with_more_data() -> None:
    small = compute_fairness(*_dataset("small")[:3], seed=1)
    again = compute_fairness(*_dataset("small")[:3], seed=1)
    large = compute_fairness(*_dataset("large")[:3], seed=1)
    assert small.intervals == again.intervals
    name = "demographic_parity_difference"
    width = lambda r: r.intervals[name][1] - r.intervals[name][0]  # noqa: E731
    assert width(large) < width(small) / 3
    lo, hi = small.intervals["equalized_odds_ratio"]
    assert 0 <= lo <= hi <= 1
    # bias-corrected: the max - min estimate sits inside its interval, not below it
    for report in (small, large):
        lo, hi = report.intervals[name]
        assert lo <= report.disparities[name] <= hi


def test_non_binary_labels_are_refused() -> None:
    with pytest.raises(DataError, match="binary"):
        compute_fairness([0, 1, 2], [0, 1, 1], pd.Series(["a", "b", "a"], name="g"))


def test_four_fifths_flags_disparate_selection() -> None:
    groups = pd.Series(["a"] * 100 + ["b"] * 100, name="g")
    y_pred = np.array([1] * 60 + [0] * 40 + [1] * 30 + [0] * 70)
    report = compute_fairness(np.ones(200, dtype=int), y_pred, groups)
    assert report.disparities["demographic_parity_ratio"] == pytest.approx(0.5)
    assert report.four_fifths_passed is False
