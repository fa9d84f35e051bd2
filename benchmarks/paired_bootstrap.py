"""Benchmark: our vectorised paired bootstrap vs the obvious loop over scikit-learn metrics.

Both compute head - base for accuracy, F1, ROC AUC and log loss on the same resamples (same seeded
index matrix); the script checks the numbers agree and prints the time ratio.
Run: .venv/bin/python benchmarks/paired_bootstrap.py [--rows 5000] [--samples 1000]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from sklearn import metrics as skm

from mlops_bot.pipeline.bootstrap import bootstrap_differences
from mlops_bot.pipeline.evaluate import Predictions, make_target

METRICS = ["accuracy", "f1", "roc_auc", "log_loss"]


def data(rows: int) -> tuple[np.ndarray, Predictions, Predictions]:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, rows)
    models = []
    for noise in (0.25, 0.3):
        score = np.clip(0.4 * y + rng.normal(0.3, noise, rows), 0.001, 0.999)
        models.append(
            Predictions(
                y_pred=(score >= 0.5).astype(int), proba=np.column_stack([1 - score, score]), classes=(0, 1)
            )
        )
    return y, models[0], models[1]


def loop(
    y: np.ndarray, base: Predictions, head: Predictions, samples: int, seed: int
) -> dict[str, np.ndarray]:
    """The anchor: resample indices, call scikit-learn per resample and per model."""
    index = np.random.default_rng(seed).integers(0, len(y), size=(samples, len(y)))
    funcs = {
        "accuracy": lambda t, p: skm.accuracy_score(t, p.y_pred_i),
        "f1": lambda t, p: skm.f1_score(t, p.y_pred_i),
        "roc_auc": lambda t, p: skm.roc_auc_score(t, p.proba_i[:, 1]),
        "log_loss": lambda t, p: skm.log_loss(t, p.proba_i, labels=[0, 1]),
    }
    out = {m: np.empty(samples) for m in METRICS}

    class View:
        pass

    for b in range(samples):
        i = index[b]
        views = []
        for p in (head, base):
            v = View()
            v.y_pred_i = p.y_pred[i]  # type: ignore[attr-defined]
            v.proba_i = p.proba[i]  # type: ignore[attr-defined, index]
            views.append(v)
        for m, f in funcs.items():
            out[m][b] = f(y[i], views[0]) - f(y[i], views[1])
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--samples", type=int, default=1000)
    args = parser.parse_args()
    y, base, head = data(args.rows)
    target = make_target("classification", y, [base, head])
    t0 = time.perf_counter()
    ours = bootstrap_differences(target, base, head, METRICS, samples=args.samples, seed=1)
    t_ours = time.perf_counter() - t0
    t0 = time.perf_counter()
    anchor = loop(y, base, head, args.samples, seed=1)
    t_anchor = time.perf_counter() - t0
    agree = all(np.allclose(ours[m], anchor[m], atol=1e-9) for m in METRICS)
    print(f"rows={args.rows} samples={args.samples} metrics={','.join(METRICS)}")
    print(f"mlops-bot vectorised: {t_ours:.2f} s")
    print(f"scikit-learn loop:    {t_anchor:.2f} s")
    print(f"ratio: {t_anchor / t_ours:.1f}x faster; identical results: {'yes' if agree else 'NO'}")


if __name__ == "__main__":
    main()
