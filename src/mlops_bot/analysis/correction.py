"""Multiple-testing correction for the p-value drift tests (K-S, chi-square, Z).

With 25 columns at alpha 0.05 about one column "drifts" by chance alone; Bonferroni controls the
family-wise error rate, Benjamini-Hochberg the false discovery rate. Both return adjusted p-values,
so the per-method decision rule (p <= or < threshold) stays the same."""

from __future__ import annotations

from typing import Literal

import numpy as np

Correction = Literal["none", "bonferroni", "benjamini-hochberg"]


def adjust_p_values(p_values: list[float], method: Correction) -> list[float]:
    """Adjusted p-values in the input order, capped at 1."""
    p = np.asarray(p_values, dtype=float)
    m = p.size
    if m == 0 or method == "none":
        return [float(x) for x in p]
    if method == "bonferroni":
        return [float(x) for x in np.minimum(p * m, 1.0)]
    if method == "benjamini-hochberg":
        order = np.argsort(p, kind="stable")
        ranked = p[order] * m / np.arange(1, m + 1)
        # step-up: running minimum from the largest p-value down
        ranked = np.minimum.accumulate(ranked[::-1])[::-1]
        adjusted = np.empty(m)
        adjusted[order] = np.minimum(ranked, 1.0)
        return [float(x) for x in adjusted]
    raise ValueError(f"unknown correction {method!r}")
