"""The weighted metrics and the paired bootstrap, checked against scikit-learn and by hand."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from mlops_bot.pipeline.bootstrap import bootstrap_differences, paired_bootstrap, resample_counts
from mlops_bot.pipeline.evaluate import (
    Predictions,
    confusion_matrix,
    evaluate,
    lower_is_better,
    make_target,
    weighted_metric,
)


def _binary(seed: int = 0, n: int = 300) -> tuple[np.ndarray, Predictions]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    score = np.clip(0.35 * y + rng.normal(0.3, 0.25, n), 0.001, 0.999)
    score = np.round(score, 2)  # ties on purpose: AUC must count them half
    pred = (score >= 0.5).astype(int)
    proba = np.column_stack([1 - score, score])
    return y, Predictions(y_pred=pred, proba=proba, classes=(0, 1))


def _sk_binary(y: np.ndarray, p: Predictions, w: np.ndarray | None = None) -> dict[str, float]:
    assert p.proba is not None
    return {
        "accuracy": skm.accuracy_score(y, p.y_pred, sample_weight=w),
        "precision": skm.precision_score(y, p.y_pred, sample_weight=w, zero_division=0),
        "recall": skm.recall_score(y, p.y_pred, sample_weight=w, zero_division=0),
        "f1": skm.f1_score(y, p.y_pred, sample_weight=w, zero_division=0),
        "roc_auc": skm.roc_auc_score(y, p.proba[:, 1], sample_weight=w),
        "log_loss": skm.log_loss(y, p.proba, sample_weight=w),
    }


def test_binary_metrics_match_sklearn() -> None:
    y, p = _binary()
    target = make_target("classification", y, [p])
    ours = evaluate(target, p, ["accuracy", "precision", "recall", "f1", "roc_auc", "log_loss"])
    for name, value in _sk_binary(y, p).items():
        assert ours[name] == pytest.approx(value, rel=1e-12, abs=1e-12), name


def test_weighted_metrics_equal_sklearn_on_each_resample() -> None:
    y, p = _binary(seed=3, n=120)
    target = make_target("classification", y, [p])
    counts = resample_counts(len(y), 5, seed=11)
    for name in ("accuracy", "precision", "recall", "f1", "roc_auc", "log_loss"):
        ours = weighted_metric(name, target, p, counts)
        for b in range(5):
            expected = _sk_binary(y, p, counts[b])[name]
            assert ours[b] == pytest.approx(expected, rel=1e-10, abs=1e-12), (name, b)


def test_multiclass_macro_metrics_match_sklearn() -> None:
    rng = np.random.default_rng(5)
    y = rng.choice(["a", "b", "c"], 200)
    raw = rng.random((200, 3)) + np.eye(3)[np.searchsorted(["a", "b", "c"], y)] * 0.8
    proba = raw / raw.sum(axis=1, keepdims=True)
    pred = np.array(["a", "b", "c"])[proba.argmax(axis=1)]
    p = Predictions(y_pred=pred, proba=proba, classes=("a", "b", "c"))
    target = make_target("classification", y, [p])
    ours = evaluate(target, p, ["accuracy", "precision", "recall", "f1", "roc_auc", "log_loss"])
    assert ours["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert ours["precision"] == pytest.approx(skm.precision_score(y, pred, average="macro"))
    assert ours["recall"] == pytest.approx(skm.recall_score(y, pred, average="macro"))
    assert ours["f1"] == pytest.approx(skm.f1_score(y, pred, average="macro"))
    assert ours["roc_auc"] == pytest.approx(skm.roc_auc_score(y, proba, multi_class="ovr"))
    assert ours["log_loss"] == pytest.approx(skm.log_loss(y, proba, labels=["a", "b", "c"]))


def test_regression_metrics_match_sklearn() -> None:
    rng = np.random.default_rng(1)
    y = rng.normal(10, 3, 250)
    pred = y + rng.normal(0.5, 1.5, 250)
    p = Predictions(y_pred=pred)
    target = make_target("regression", y, [p])
    ours = evaluate(target, p, ["rmse", "mae", "r2"])
    assert ours["rmse"] == pytest.approx(np.sqrt(skm.mean_squared_error(y, pred)))
    assert ours["mae"] == pytest.approx(skm.mean_absolute_error(y, pred))
    assert ours["r2"] == pytest.approx(skm.r2_score(y, pred))
    w = resample_counts(250, 3, 2)
    for b in range(3):
        expected_r2 = skm.r2_score(y, pred, sample_weight=w[b])
        assert weighted_metric("r2", target, p, w)[b] == pytest.approx(expected_r2)
        assert weighted_metric("mae", target, p, w)[b] == pytest.approx(
            skm.mean_absolute_error(y, pred, sample_weight=w[b]))


def test_hand_checked_case() -> None:
    # 4 rows: truth 1,1,0,0; head predicts 1,0,0,0 with scores .9,.4,.4,.1.
    y = np.array([1, 1, 0, 0])
    p = Predictions(y_pred=np.array([1, 0, 0, 0]), proba=np.array([0.9, 0.4, 0.4, 0.1]))
    target = make_target("classification", y, [p])
    m = evaluate(target, p, ["accuracy", "precision", "recall", "f1", "roc_auc", "log_loss"])
    assert m["accuracy"] == 0.75
    assert m["precision"] == 1.0
    assert m["recall"] == 0.5
    assert m["f1"] == pytest.approx(2 / 3)
    # pairs (pos, neg): (.9,.4)=1 (.9,.1)=1 (.4,.4)=0.5 (.4,.1)=1 -> 3.5/4
    assert m["roc_auc"] == 0.875
    expected_ll = -(np.log(0.9) + np.log(0.4) + np.log(0.6) + np.log(0.9)) / 4
    assert m["log_loss"] == pytest.approx(expected_ll)
    assert confusion_matrix(target, p) == {"labels": [0, 1], "matrix": [[2, 0], [1, 1]]}


def test_missing_probabilities_give_none() -> None:
    y = np.array([0, 1, 1, 0])
    p = Predictions(y_pred=np.array([0, 1, 0, 0]))
    m = evaluate(make_target("classification", y, [p]), p, ["accuracy", "roc_auc", "log_loss"])
    assert m == {"accuracy": 0.75, "roc_auc": None, "log_loss": None}


def test_lower_is_better() -> None:
    assert lower_is_better("log_loss") and lower_is_better("rmse") and lower_is_better("drift_share")
    assert lower_is_better("demographic_parity_difference")
    assert not lower_is_better("accuracy") and not lower_is_better("demographic_parity_ratio")


def test_resample_counts_are_a_seeded_index_matrix() -> None:
    counts = resample_counts(50, 7, seed=4)
    assert counts.shape == (7, 50)
    assert (counts.sum(axis=1) == 50).all()
    index = np.random.default_rng(4).integers(0, 50, size=(7, 50))
    for b in range(7):
        assert (counts[b] == np.bincount(index[b], minlength=50)).all()
    assert (resample_counts(50, 7, seed=4) == counts).all()


def test_paired_bootstrap_matches_a_loop_over_sklearn() -> None:
    y, head = _binary(seed=8, n=150)
    rng = np.random.default_rng(9)
    base_score = np.clip(head.proba[:, 1] + rng.normal(0, 0.2, 150), 0.01, 0.99)
    base_proba = np.column_stack([1 - base_score, base_score])
    base = Predictions(y_pred=(base_score >= 0.5).astype(int), proba=base_proba, classes=(0, 1))
    target = make_target("classification", y, [head, base])
    diffs = bootstrap_differences(target, base, head, ["accuracy", "roc_auc"], samples=200, seed=7)
    index = np.random.default_rng(7).integers(0, 150, size=(200, 150))
    for b in (0, 57, 199):
        i = index[b]
        expected = skm.roc_auc_score(y[i], head.proba[i, 1]) - skm.roc_auc_score(y[i], base.proba[i, 1])
        assert diffs["roc_auc"][b] == pytest.approx(expected, abs=1e-12)
        assert diffs["accuracy"][b] == pytest.approx(
            skm.accuracy_score(y[i], head.y_pred[i]) - skm.accuracy_score(y[i], base.y_pred[i]))
    ci = paired_bootstrap(target, base, head, ["accuracy"], samples=200, confidence=0.9, seed=7)["accuracy"]
    assert ci is not None
    assert ci.low == pytest.approx(np.quantile(diffs["accuracy"], 0.05))
    assert ci.high == pytest.approx(np.quantile(diffs["accuracy"], 0.95))


def test_bootstrap_of_identical_models_is_zero_and_real_gain_excludes_zero() -> None:
    y, p = _binary(seed=2, n=400)
    target = make_target("classification", y, [p])
    same = paired_bootstrap(target, p, p, ["f1"], samples=300, seed=1)["f1"]
    assert same is not None and same.low == 0.0 and same.high == 0.0
    truth_pred = Predictions(y_pred=y.copy(), proba=np.column_stack([1 - y, y]).astype(float), classes=(0, 1))
    ci = paired_bootstrap(target, p, truth_pred, ["accuracy"], samples=300, seed=1)["accuracy"]
    assert ci is not None and ci.low > 0.0
