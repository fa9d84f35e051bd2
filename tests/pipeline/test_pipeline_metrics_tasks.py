"""Multiclass (macro and weighted averages, one-vs-rest AUC, log loss) and
regression (MAPE) metrics against scikit-learn, on the holdout and on each bootstrap resample."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from mlops_bot.pipeline.bootstrap import paired_bootstrap, resample_counts
from mlops_bot.pipeline.evaluate import (
    MULTICLASS_METRICS,
    Predictions,
    default_metrics,
    evaluate,
    lower_is_better,
    make_target,
    weighted_metric,
)

LABELS = ["bird", "cat", "dog", "fish"]


def _multiclass(seed: int = 5, n: int = 240, skill: float = 0.8) -> tuple[np.ndarray, Predictions]:
    rng = np.random.default_rng(seed)
    y = rng.choice(LABELS, n, p=[0.4, 0.3, 0.2, 0.1])
    raw = rng.random((n, 4)) + np.eye(4)[np.searchsorted(LABELS, y)] * skill
    proba = raw / raw.sum(axis=1, keepdims=True)
    pred = np.array(LABELS)[proba.argmax(axis=1)]
    return y, Predictions(y_pred=pred, proba=proba, classes=tuple(LABELS))


def _sklearn(y: np.ndarray, p: Predictions, w: np.ndarray | None = None) -> dict[str, float]:
    assert p.proba is not None
    out = {"accuracy": skm.accuracy_score(y, p.y_pred, sample_weight=w)}
    for average in ("macro", "weighted"):
        kwargs = {"average": average, "zero_division": 0, "sample_weight": w}
        out[f"precision_{average}"] = skm.precision_score(y, p.y_pred, **kwargs)
        out[f"recall_{average}"] = skm.recall_score(y, p.y_pred, **kwargs)
        out[f"f1_{average}"] = skm.f1_score(y, p.y_pred, **kwargs)
    out["roc_auc"] = skm.roc_auc_score(y, p.proba, multi_class="ovr", sample_weight=w, labels=LABELS)
    out["log_loss"] = skm.log_loss(y, p.proba, labels=LABELS, sample_weight=w)
    return out


def test_multiclass_metrics_match_sklearn() -> None:
    y, p = _multiclass()
    target = make_target("classification", y, [p])
    assert not target.binary
    ours = evaluate(target, p, list(MULTICLASS_METRICS))
    expected = _sklearn(y, p)
    assert set(expected) == set(MULTICLASS_METRICS)
    for name, value in expected.items():
        assert ours[name] == pytest.approx(value, rel=1e-12, abs=1e-12), name
    # "precision" of a multiclass model stays the macro average
    assert evaluate(target, p, ["precision"])["precision"] == pytest.approx(expected["precision_macro"])


def test_multiclass_metrics_on_each_resample_match_weighted_sklearn() -> None:
    y, p = _multiclass(seed=8, n=150)
    target = make_target("classification", y, [p])
    counts = resample_counts(len(y), 4, seed=2)
    for name in ("precision_weighted", "recall_weighted", "f1_weighted", "precision_macro", "f1_macro"):
        ours = weighted_metric(name, target, p, counts)
        for b in range(4):
            # sklearn's macro average covers labels present in the (weighted) sample: drop rows with
            # weight 0 so its label set matches what was drawn
            keep = counts[b] > 0
            sub = Predictions(y_pred=p.y_pred[keep], proba=None if p.proba is None else p.proba[keep],
                              classes=p.classes)
            expected = _sklearn(y[keep], sub, counts[b][keep])[name]
            assert ours[b] == pytest.approx(expected, rel=1e-10, abs=1e-12), (name, b)


def test_a_class_never_predicted_scores_zero_like_sklearn() -> None:
    y = np.array(["a", "b", "c", "c", "b", "a"])
    pred = np.array(["a", "b", "b", "b", "b", "a"])
    p = Predictions(y_pred=pred)
    target = make_target("classification", y, [p])
    ours = evaluate(target, p, ["precision_macro", "recall_weighted", "f1_weighted"])
    kwargs: dict[str, object] = {"zero_division": 0}
    assert ours["precision_macro"] == pytest.approx(skm.precision_score(y, pred, average="macro", **kwargs))
    assert ours["recall_weighted"] == pytest.approx(skm.recall_score(y, pred, average="weighted", **kwargs))
    assert ours["f1_weighted"] == pytest.approx(skm.f1_score(y, pred, average="weighted", **kwargs))


def test_mape_matches_sklearn_and_its_bootstrap_is_paired() -> None:
    rng = np.random.default_rng(4)
    y = rng.normal(100, 20, 300)
    y[:3] = 0.0  # sklearn divides by max(|y|, eps): huge, but defined
    good = Predictions(y_pred=y + rng.normal(0, 5, 300))
    bad = Predictions(y_pred=y + rng.normal(0, 15, 300))
    target = make_target("regression", y, [good, bad])
    assert evaluate(target, good, ["mape"])["mape"] == pytest.approx(
        skm.mean_absolute_percentage_error(y, good.y_pred), rel=1e-12
    )
    y[:3] = 1.0
    target = make_target("regression", y, [good, bad])
    w = resample_counts(300, 3, 9)
    for b in range(3):
        expected = skm.mean_absolute_percentage_error(y, bad.y_pred, sample_weight=w[b])
        assert weighted_metric("mape", target, bad, w)[b] == pytest.approx(expected, rel=1e-10)
    intervals = paired_bootstrap(target, bad, good, ["mape"], samples=300, confidence=0.95, seed=1)
    ci = intervals["mape"]
    assert ci is not None and ci.high < 0  # the better model's MAPE is significantly lower
    assert lower_is_better("mape")


def test_default_metrics_by_task() -> None:
    binary = ("accuracy", "precision", "recall", "f1", "roc_auc", "log_loss")
    assert default_metrics("classification") == binary
    assert "f1_weighted" in default_metrics("classification", multiclass=True)
    assert default_metrics("regression") == ("rmse", "mae", "r2", "mape")
