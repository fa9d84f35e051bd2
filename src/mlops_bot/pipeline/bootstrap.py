"""Paired bootstrap confidence intervals for metric differences (head - base) on one holdout.

Both models are scored on the *same* resamples, so the noise they share (which rows happen to be
easy) cancels out and the interval reflects only how differently they behave. Resampling is one
seeded numpy Generator draw of an index matrix (samples, n), turned into per-row draw counts that
the weighted metrics of `evaluate` consume in one vectorised pass (in chunks to bound memory).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mlops_bot.pipeline.evaluate import EvaluationTarget, FloatArray, Predictions, weighted_metric

_CHUNK_CELLS = 4_000_000  # weights entries per chunk (~32 MB of float64)


@dataclass(frozen=True)
class Interval:
    low: float
    high: float

    def as_list(self) -> list[float]:
        return [self.low, self.high]


def resample_counts(n: int, samples: int, seed: int) -> FloatArray:
    """Draw counts (samples, n): row b says how often each holdout row appears in resample b."""
    rng = np.random.default_rng(seed)
    index = rng.integers(0, n, size=(samples, n))
    flat = index + (np.arange(samples) * n)[:, None]
    return np.bincount(flat.ravel(), minlength=samples * n).reshape(samples, n).astype(np.float64)


def bootstrap_differences(
    target: EvaluationTarget,
    base: Predictions,
    head: Predictions,
    metrics: list[str],
    *,
    samples: int = 1000,
    seed: int = 0,
) -> dict[str, FloatArray]:
    """The head - base difference of each metric on every resample (NaN where undefined)."""
    n = len(target.y_true)
    counts = resample_counts(n, samples, seed)
    out: dict[str, list[FloatArray]] = {m: [] for m in metrics}
    step = max(1, _CHUNK_CELLS // max(n, 1))
    for start in range(0, samples, step):
        weights = counts[start:start + step]
        for metric in metrics:
            head_values = weighted_metric(metric, target, head, weights)
            out[metric].append(head_values - weighted_metric(metric, target, base, weights))
    return {m: np.concatenate(parts) for m, parts in out.items()}


def percentile_interval(values: FloatArray, confidence: float) -> Interval | None:
    """Percentile CI; None when too few resamples gave a defined value (e.g. one-class resamples)."""
    finite = values[np.isfinite(values)]
    if finite.size < max(10, values.size // 2):
        return None
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(finite, [alpha, 1.0 - alpha])
    return Interval(float(low), float(high))


def paired_bootstrap(
    target: EvaluationTarget,
    base: Predictions,
    head: Predictions,
    metrics: list[str],
    *,
    samples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, Interval | None]:
    """CI of head - base for each metric."""
    diffs = bootstrap_differences(target, base, head, metrics, samples=samples, seed=seed)
    return {m: percentile_interval(d, confidence) for m, d in diffs.items()}
