"""fairlearn's `method` ("between_groups" / "to_overall") for every disparity, against fairlearn
0.15 in-process to 1e-9; the bootstrap intervals under both methods (including their coverage on
a known population); the CLI option and config key; and the refusal of non-binary labels, which
fairlearn itself handles inconsistently (selection_rate one-vs-rest, TPR raises)."""

from __future__ import annotations

import functools
import json
import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import (
    MetricFrame,
    demographic_parity_difference,
    demographic_parity_ratio,
    equal_opportunity_difference,
    equal_opportunity_ratio,
    equalized_odds_difference,
    equalized_odds_ratio,
    selection_rate,
    true_positive_rate,
)

from mlops_bot.analysis.fairness import Method, compute_fairness, disparities_from_cells
from mlops_bot.cli import main
from mlops_bot.config import FairnessSection
from mlops_bot.errors import DataError
from mlops_bot.report.fairness import render_fairness

NAMED = {
    "demographic_parity_difference": demographic_parity_difference,
    "demographic_parity_ratio": demographic_parity_ratio,
    "equalized_odds_difference": equalized_odds_difference,
    "equalized_odds_ratio": equalized_odds_ratio,
    "equal_opportunity_difference": equal_opportunity_difference,
    "equal_opportunity_ratio": equal_opportunity_ratio,
}
METHODS: tuple[Method, ...] = ("between_groups", "to_overall")
NO_BOOTSTRAP = FairnessSection(bootstrap=False)


def _close(a: float, b: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


def _dataset(kind: str, seed: int = 0) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    n = 2000
    sens = pd.DataFrame(
        {
            "sex": rng.choice(["f", "m"], n, p=[0.3, 0.7]),
            "region": rng.choice(list("abcde"), n),
            "age": rng.choice(["old", "young"], n),
        }
    )
    y_true = rng.integers(0, 2, n)
    flip = rng.random(n) < np.where(sens["sex"] == "f", 0.35, 0.1) + np.where(sens["region"] == "c", 0.2, 0)
    y_pred = np.where(flip, 1 - y_true, y_true)
    if kind == "no_positives":  # region e: no positive labels, so TPR 0 there (not NaN)
        y_true[(sens["region"] == "e").to_numpy()] = 0
    elif kind == "no_positives_anywhere":  # TPR 0 everywhere, overall too: 0/0 ratios are NaN
        y_true[:] = 0
    elif kind == "single_group":
        sens = sens.assign(sex="f", region="a", age="old")
    elif kind == "all_negative_predictions":  # selection rate 0 everywhere
        y_pred = np.zeros(n, dtype=int)
    elif kind == "tiny_group":  # one intersectional group with a single row
        sens.loc[0, "region"] = "z"
    return y_true, y_pred, sens


CASES = [
    ("plain", ["sex"]),
    ("plain", ["sex", "region"]),
    *((kind, ["region", "sex", "age"]) for kind in ("plain", "no_positives", "tiny_group")),
    *((kind, ["sex", "region"]) for kind in ("no_positives_anywhere", "all_negative_predictions")),
    ("single_group", ["sex", "region"]),
]


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize(("kind", "columns"), CASES)
def test_disparities_match_fairlearn_for_both_methods(kind: str, columns: list[str], method: Method) -> None:
    y_true, y_pred, sens = _dataset(kind)
    ours = compute_fairness(y_true, y_pred, sens[columns], settings=NO_BOOTSTRAP, method=method)
    assert ours.method == method
    for name, function in NAMED.items():
        with warnings.catch_warnings():  # fairlearn warns on 0/0 ratios; we compare the NaN
            warnings.simplefilter("ignore")
            theirs = float(function(y_true, y_pred, sensitive_features=sens[columns], method=method))
        assert _close(ours.disparities[name], theirs), (name, ours.disparities[name], theirs)


@pytest.mark.parametrize("method", METHODS)
def test_string_labels_match_metricframe_with_pos_label(method: Method) -> None:
    """fairlearn's named disparities have no pos_label; its MetricFrame methods do the same job."""
    y_true, y_pred, sens = _dataset("plain")
    yt, yp = np.where(y_true == 1, "yes", "no"), np.where(y_pred == 1, "yes", "no")
    ours = compute_fairness(
        yt, yp, sens[["sex", "region"]], pos_label="yes", settings=NO_BOOTSTRAP, method=method
    )
    frame = MetricFrame(
        metrics={
            "sel": functools.partial(selection_rate, pos_label="yes"),
            "tpr": functools.partial(true_positive_rate, pos_label="yes"),
        },
        y_true=yt,
        y_pred=yp,
        sensitive_features=sens[["sex", "region"]],
    )
    diff, ratio = frame.difference(method=method), frame.ratio(method=method)
    assert _close(ours.disparities["demographic_parity_difference"], float(diff["sel"]))
    assert _close(ours.disparities["demographic_parity_ratio"], float(ratio["sel"]))
    assert _close(ours.disparities["equal_opportunity_difference"], float(diff["tpr"]))
    assert _close(ours.disparities["equal_opportunity_ratio"], float(ratio["tpr"]))


def test_to_overall_by_hand() -> None:
    """a selects 60 of 100, b 30 of 100, overall 0.45: to_overall difference max(|0.6-0.45|,
    |0.3-0.45|) = 0.15, ratio min(0.45/0.6 (0.6/0.45 inverted), 0.3/0.45) = 2/3; between groups
    0.3 and 0.5."""
    groups = pd.Series(["a"] * 100 + ["b"] * 100, name="g")
    y_pred = np.array([1] * 60 + [0] * 40 + [1] * 30 + [0] * 70)
    y_true = np.ones(200, dtype=int)
    to_overall = compute_fairness(y_true, y_pred, groups, settings=NO_BOOTSTRAP, method="to_overall")
    assert to_overall.disparities["demographic_parity_difference"] == pytest.approx(0.15)
    assert to_overall.disparities["demographic_parity_ratio"] == pytest.approx(2 / 3)
    between = compute_fairness(y_true, y_pred, groups, settings=NO_BOOTSTRAP)
    assert between.disparities["demographic_parity_difference"] == pytest.approx(0.3)
    assert between.disparities["demographic_parity_ratio"] == pytest.approx(0.5)
    # the four-fifths heuristic reads the demographic parity ratio of the chosen method
    assert between.four_fifths_passed is False and to_overall.four_fifths_passed is False


def test_method_comes_from_settings_unless_given() -> None:
    y_true, y_pred, sens = _dataset("plain")
    configured = FairnessSection(bootstrap=False, method="to_overall")
    assert compute_fairness(y_true, y_pred, sens["sex"], settings=configured).method == "to_overall"
    given = compute_fairness(y_true, y_pred, sens["sex"], settings=configured, method="between_groups")
    assert given.method == "between_groups"
    with pytest.raises(DataError, match="between_groups, to_overall"):
        compute_fairness(y_true, y_pred, sens["sex"], method="overall")  # type: ignore[arg-type]


# --------------------------------------------------------------------------------- bootstrap
@pytest.mark.parametrize("method", METHODS)
def test_bootstrap_intervals_for_both_methods(method: Method) -> None:
    y_true, y_pred, sens = _dataset("plain")
    settings = FairnessSection(method=method)
    report = compute_fairness(y_true, y_pred, sens[["sex", "region"]], settings=settings, seed=3)
    again = compute_fairness(y_true, y_pred, sens[["sex", "region"]], settings=settings, seed=3)
    assert report.intervals == again.intervals and report.bootstrap_samples == 1000
    assert set(report.intervals) == set(NAMED)
    for name, (lo, hi) in report.intervals.items():
        assert lo <= report.disparities[name] <= hi, name
        assert 0 <= lo < hi <= 1, name
    other = compute_fairness(
        y_true,
        y_pred,
        sens[["sex", "region"]],
        seed=3,
        method="between_groups" if method == "to_overall" else "to_overall",
    )
    assert other.intervals != report.intervals  # the replicates are reduced with the method asked for


def test_empty_group_in_a_replicate_is_left_out_like_fairlearn() -> None:
    """A bootstrap replicate can draw no row of a small group: its TPR/FPR must not count as 0."""
    cells = np.array([[40, 10, 5, 45], [30, 20, 15, 35], [0, 0, 0, 0]])
    for method in METHODS:
        with_empty = disparities_from_cells(cells, method)
        without = disparities_from_cells(cells[:2], method)
        for name in NAMED:
            assert _close(float(with_empty[name]), float(without[name])), (method, name)


@pytest.mark.parametrize("method", METHODS)
def test_bootstrap_coverage_on_a_known_population(method: Method) -> None:
    """Draw 150 datasets of 10,000 rows from a population whose disparities are known; each 95%
    interval should hold the true value about 95% of the time (measured 0.92-0.96 here; a plain
    percentile interval of a max - min misses far more often when it is biased)."""
    weights = np.array([0.5, 0.3, 0.2])
    p_pos = np.array([0.4, 0.5, 0.3])
    tpr = np.array([0.8, 0.7, 0.6])
    fpr = np.array([0.1, 0.2, 0.15])
    population = np.stack(
        [
            weights * (1 - p_pos) * (1 - fpr),
            weights * (1 - p_pos) * fpr,
            weights * p_pos * (1 - tpr),
            weights * p_pos * tpr,
        ],
        axis=1,
    )
    truth = {k: float(v) for k, v in disparities_from_cells(population * 1e9, method).items()}
    rng = np.random.default_rng(0)
    n, reps = 10_000, 150
    hits = dict.fromkeys(truth, 0)
    for rep in range(reps):
        group = rng.choice(3, n, p=weights)
        y = (rng.random(n) < p_pos[group]).astype(int)
        pred = np.where(y == 1, rng.random(n) < tpr[group], rng.random(n) < fpr[group]).astype(int)
        report = compute_fairness(y, pred, pd.Series(group, name="g"), method=method, seed=rep)
        for name, (lo, hi) in report.intervals.items():
            hits[name] += lo <= truth[name] <= hi
    coverage = {k: v / reps for k, v in hits.items()}
    assert all(0.88 <= c <= 0.99 for c in coverage.values()), coverage


# --------------------------------------------------------------------------------- binary input
def test_fairlearn_is_inconsistent_on_multiclass_so_we_refuse_it() -> None:
    """fairlearn 0.15: selection_rate(pos_label=2) is one-vs-rest on multiclass predictions and a
    pos_label absent from the data gives 0; TPR raises on both. We refuse both, clearly."""
    y_true = np.array([0, 1, 2, 1, 0, 2])
    y_pred = np.array([0, 2, 2, 1, 1, 0])
    groups = pd.Series(list("aabbab"), name="g")
    assert selection_rate(y_true, y_pred, pos_label=2) == pytest.approx(2 / 6)
    with pytest.raises(ValueError, match="no more than two unique"):
        true_positive_rate(y_true, y_pred, pos_label=2)
    with pytest.raises(DataError, match=r"binary labels.*3 distinct values \(0, 1, 2\).*binarise"):
        compute_fairness(y_true, y_pred, groups, pos_label=2)
    # binary truth with multiclass predictions (or scores passed as predictions) is refused too
    with pytest.raises(DataError, match=r"distinct values .*not scores"):
        compute_fairness([0, 1, 1, 0, 1, 0], [0.1, 0.9, 0.7, 0.2, 0.6, 0.4], groups)

    assert selection_rate([0, 1, 1], [0, 1, 0], pos_label=5) == 0.0
    with pytest.raises(ValueError, match="pos_label"):
        true_positive_rate([0, 1, 1], [0, 1, 0], pos_label=5)
    with pytest.raises(DataError, match=r"positive label 'yes' is neither of the labels .*\(0, 1\)"):
        compute_fairness([0, 1, 1], [0, 1, 0], groups[:3], pos_label="yes")


def test_one_label_only_is_still_accepted_like_fairlearn() -> None:
    """All-negative truth and predictions: fairlearn computes (TPR 0), so do we."""
    groups = pd.Series(list("aabb"), name="g")
    report = compute_fairness([0, 0, 0, 0], [0, 0, 0, 0], groups, settings=NO_BOOTSTRAP)
    assert report.disparities["demographic_parity_difference"] == 0.0
    assert report.by_group["a"].tpr == 0.0


# --------------------------------------------------------------------------------- CLI and config
def test_cli_method_option_config_and_markdown(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    y_true, y_pred, sens = _dataset("plain")
    pd.DataFrame({"y": y_true, "p": y_pred, "sex": sens["sex"], "region": sens["region"]}).to_csv(
        tmp_path / "pred.csv", index=False
    )
    args = [
        "fairness",
        "--predictions",
        str(tmp_path / "pred.csv"),
        "--y-true",
        "y",
        "--y-pred",
        "p",
        "--sensitive",
        "sex,region",
    ]
    results = {}
    for method in METHODS:
        assert main([*args, "--method", method]) == 0
        results[method] = json.loads(capsys.readouterr().out)
    assert results["between_groups"].keys() == results["to_overall"].keys()
    for method, data in results.items():
        assert data["method"] == method
        theirs = demographic_parity_difference(
            y_true, y_pred, sensitive_features=sens[["sex", "region"]], method=method
        )
        assert _close(data["demographic_parity_difference"], float(theirs))
    assert main(args) == 0
    assert json.loads(capsys.readouterr().out)["method"] == "between_groups"

    config = tmp_path / "mlops.yml"
    config.write_text(
        "model: {name: m, task: classification}\ntrain: {builtin: {estimator: logistic_regression}}\n"
        "data: {train: t.csv, holdout: h.csv, target: y}\nfairness: {method: to_overall, bootstrap: false}\n",
        encoding="utf-8",
    )
    assert main([*args, "--config", str(config)]) == 0
    from_config = json.loads(capsys.readouterr().out)
    assert from_config["method"] == "to_overall" and from_config["bootstrap_samples"] == 0
    assert main([*args, "--config", str(config), "--method", "between_groups"]) == 0
    assert json.loads(capsys.readouterr().out)["method"] == "between_groups"

    config.write_text(config.read_text(encoding="utf-8").replace("to_overall", "overall"), encoding="utf-8")
    assert main([*args, "--config", str(config)]) == 2
    assert "fairness.method" in capsys.readouterr().err

    assert main([*args, "--method", "to_overall", "--format", "markdown"]) == 0
    assert "| Disparity (each group to overall) |" in capsys.readouterr().out


def test_markdown_names_between_groups_by_default() -> None:
    y_true, y_pred, sens = _dataset("plain")
    text = render_fairness(compute_fairness(y_true, y_pred, sens["sex"], settings=NO_BOOTSTRAP))
    assert "| Disparity (between groups) |" in text


@pytest.mark.parametrize(("kind", "columns"), CASES)
def test_to_overall_is_bounded_by_between_groups(kind: str, columns: list[str]) -> None:
    """The overall value lies between the group extremes, so to_overall differences never exceed
    between_groups ones and its ratios are never below them (docs/drift.md states this)."""
    y_true, y_pred, sens = _dataset(kind)
    between = compute_fairness(y_true, y_pred, sens[columns], settings=NO_BOOTSTRAP).disparities
    overall = compute_fairness(y_true, y_pred, sens[columns], settings=NO_BOOTSTRAP, method="to_overall")
    for name, value in overall.disparities.items():
        if math.isnan(value):
            assert math.isnan(between[name]), name
        elif name.endswith("_difference"):
            assert value <= between[name] + 1e-12, name
        else:
            assert value >= between[name] - 1e-12, name
