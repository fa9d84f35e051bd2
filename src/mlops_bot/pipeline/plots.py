"""PNG plots written beside the report (confusion matrix, ROC and PR curves, residuals).

matplotlib with the Agg backend: no display needed. Files, not inline images: a PR comment cannot
embed local files, so the comment uses charts.py and these PNGs are uploaded as artifacts.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np

from mlops_bot.pipeline.evaluate import EvaluationTarget, Predictions, confusion_matrix
from mlops_bot.report import escape


def _save(fig: plt.Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def plot_confusion(target: EvaluationTarget, p: Predictions, path: Path) -> Path:
    data = confusion_matrix(target, p)
    matrix = np.asarray(data["matrix"])
    fig, ax = plt.subplots(figsize=(4, 3.5))
    ax.imshow(matrix, cmap="Blues")
    labels = [escape.plot_text(v) for v in data["labels"]]  # class labels are data: no mathtext
    ax.set_xticks(range(len(labels)), labels)
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for (i, j), value in np.ndenumerate(matrix):
        ax.text(
            j, i, str(value), ha="center", va="center", color="white" if value > matrix.max() / 2 else "black"
        )
    ax.set_title("Confusion matrix")
    return _save(fig, path)


def plot_curves(target: EvaluationTarget, p: Predictions, folder: Path) -> list[Path]:
    """ROC and precision-recall curves of the positive class (binary tasks with probabilities)."""
    from sklearn.metrics import auc, precision_recall_curve, roc_curve

    if p.proba is None or not target.binary or len(target.classes) < 2:
        return []
    proba = np.asarray(p.proba)
    if proba.ndim == 2:
        classes = list(p.classes) or list(target.classes)
        if target.positive_label not in classes:
            return []
        score = proba[:, classes.index(target.positive_label)]
    else:
        score = proba
    positive = target.y_true == target.positive_label
    if positive.all() or not positive.any():
        return []
    fpr, tpr, _ = roc_curve(positive, score)
    fig, ax = plt.subplots(figsize=(4, 3.5))
    ax.plot(fpr, tpr, label=f"AUC {auc(fpr, tpr):.3f}")
    ax.plot([0, 1], [0, 1], "--", color="grey")
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title("ROC curve")
    ax.legend(loc="lower right")
    roc = _save(fig, folder / "roc_curve.png")
    precision, recall, _ = precision_recall_curve(positive, score)
    fig, ax = plt.subplots(figsize=(4, 3.5))
    ax.plot(recall, precision)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_title("Precision-recall curve")
    return [roc, _save(fig, folder / "pr_curve.png")]


def plot_residuals(target: EvaluationTarget, p: Predictions, path: Path) -> Path:
    pred = np.asarray(p.y_pred, dtype=float)
    residual = np.asarray(target.y_true, dtype=float) - pred
    fig, (left, right) = plt.subplots(1, 2, figsize=(8, 3.5))
    left.scatter(pred, residual, s=6, alpha=0.5)
    left.axhline(0.0, color="grey", linestyle="--")
    left.set_xlabel("prediction")
    left.set_ylabel("residual (true - predicted)")
    left.set_title("Residuals")
    right.hist(residual, bins=30)
    right.set_xlabel("residual")
    right.set_title("Residual distribution")
    return _save(fig, path)


def plot_prediction_vs_actual(target: EvaluationTarget, p: Predictions, path: Path) -> Path:
    pred = np.asarray(p.y_pred, dtype=float)
    truth = np.asarray(target.y_true, dtype=float)
    fig, ax = plt.subplots(figsize=(4, 3.5))
    ax.scatter(truth, pred, s=6, alpha=0.5)
    low, high = float(min(truth.min(), pred.min())), float(max(truth.max(), pred.max()))
    ax.plot([low, high], [low, high], "--", color="grey")
    ax.set_xlabel("actual")
    ax.set_ylabel("predicted")
    ax.set_title("Prediction vs actual")
    return _save(fig, path)


def write_plots(target: EvaluationTarget, p: Predictions, task: str, folder: Path) -> list[Path]:
    """Every plot that fits the task; returns the files written."""
    folder.mkdir(parents=True, exist_ok=True)
    if task == "regression":
        return [
            plot_residuals(target, p, folder / "residuals.png"),
            plot_prediction_vs_actual(target, p, folder / "prediction_vs_actual.png"),
        ]
    return [plot_confusion(target, p, folder / "confusion_matrix.png"), *plot_curves(target, p, folder)]
