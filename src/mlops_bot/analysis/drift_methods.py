"""The drift methods themselves, over prepared data: sorted finite arrays for numerical columns,
aligned count vectors for categorical ones. Definitions follow Evidently 0.7's stattests exactly
(see REFERENCE.md section 3); only the computation is reorganised so that each column is sorted or
counted once.

Every function is pure and returns the score: the p-value for tests (`ks`, `chisquare`, `z`), the
distance otherwise."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import stats
from scipy.spatial import distance

Method = Literal[
    "ks", "chisquare", "z", "wasserstein", "jensenshannon", "psi",
    "abs_text_content_drift", "perc_text_content_drift", "embedding_distance",
]
# Text and embedding methods (analysis/text_drift.py) drift when the score is strictly above the threshold.
STRICT_METHODS: frozenset[str] = frozenset({"abs_text_content_drift", "perc_text_content_drift",
                                            "embedding_distance"})
PsiFlavour = Literal["evidently", "classic"]

P_VALUE_METHODS: frozenset[str] = frozenset({"ks", "chisquare", "z"})
DEFAULT_THRESHOLDS: dict[str, float] = {
    "ks": 0.05,
    "chisquare": 0.05,
    "z": 0.05,
    "wasserstein": 0.1,
    "jensenshannon": 0.1,
    "psi": 0.1,
    "abs_text_content_drift": 0.55,
    "perc_text_content_drift": 0.95,
    "embedding_distance": 0.2,
}
# Classic PSI bands (credit-scoring convention): < 0.1 no shift, 0.1-0.25 moderate, >= 0.25 significant.
PSI_CLASSIC_BANDS = (0.1, 0.25)


def is_drift(method: str, score: float, threshold: float) -> bool:
    """Evidently's decision rules: K-S drifts at p <= t, chi-square and Z at p < t, distances at >= t."""
    if method == "ks":
        return bool(score <= threshold)
    if method in ("chisquare", "z"):
        return bool(score < threshold)
    if method in STRICT_METHODS:
        return bool(score > threshold)
    return bool(score >= threshold)


@dataclass(frozen=True)
class Counts:
    """Value counts of reference and current over the union of their values (same order)."""

    keys: list[object]
    reference: np.ndarray
    current: np.ndarray

    @property
    def n_reference(self) -> int:
        return int(self.reference.sum())

    @property
    def n_current(self) -> int:
        return int(self.current.sum())


def counts_from_sorted(reference: np.ndarray, current: np.ndarray) -> Counts:
    """Per-value counts of two sorted arrays over the union of their values."""
    keys = np.union1d(reference, current)
    ref = np.searchsorted(reference, keys, "right") - np.searchsorted(reference, keys, "left")
    cur = np.searchsorted(current, keys, "right") - np.searchsorted(current, keys, "left")
    return Counts(keys=[k.item() for k in keys], reference=ref, current=cur)


def n_unique_sorted(merged: np.ndarray) -> int:
    return int(np.count_nonzero(np.diff(merged))) + 1 if merged.size else 0


# ------------------------------------------------------------------------------------------ tests
def ks(reference: np.ndarray, current: np.ndarray) -> float:
    """Two-sided two-sample Kolmogorov-Smirnov p-value (scipy's ks_2samp, method 'auto')."""
    return float(stats.ks_2samp(reference, current).pvalue)


def chisquare(counts: Counts) -> float:
    """Pearson chi-square p-value of current counts against reference counts scaled to n_current.
    A value absent from the reference has expected count 0, hence p = 0."""
    k_norm = counts.n_current / counts.n_reference
    expected = counts.reference * k_norm
    with np.errstate(divide="ignore", invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(stats.chisquare(counts.current, expected).pvalue)


def z(counts: Counts) -> float:
    """Pooled two-proportion Z-test p-value for a column with at most two values."""
    present_ref = [k for k, c in zip(counts.keys, counts.reference, strict=True) if c > 0]
    present_cur = [k for k, c in zip(counts.keys, counts.current, strict=True) if c > 0]
    if len(present_ref) == 1 and len(present_cur) == 1 and present_ref[0] == present_cur[0]:
        return 1.0
    try:
        first = counts.keys.index(sorted(counts.keys)[0])  # type: ignore[type-var]
    except TypeError:
        first = 0
    n1, n2 = counts.n_reference, counts.n_current
    p1 = float(n1 - counts.reference[first]) / n1
    p2 = float(n2 - counts.current[first]) / n2
    pooled = float(p1 * n1 + p2 * n2) / (n1 + n2)
    with np.errstate(divide="ignore", invalid="ignore"):
        z_stat = (p1 - p2) / np.sqrt(pooled * (1 - pooled) * (1.0 / n1 + 1.0 / n2))
    return float(2 * (1 - stats.norm.cdf(np.abs(z_stat))))


def wasserstein_normed(reference: np.ndarray, current: np.ndarray, std_reference: float) -> float:
    """First Wasserstein distance divided by max(population std of reference, 0.001).

    scipy integrates |F_ref - F_cur| over the merged values; we integrate the same area in the
    quantile domain, |F_ref^-1(t) - F_cur^-1(t)| over t in [0, 1], from the sorted inputs. The
    breakpoints are i/n and j/m, so no float merge or search is needed (equal sizes reduce to a
    mean of absolute differences). Same value up to rounding (~1e-15 relative)."""
    return wasserstein_sorted(reference, current) / max(float(std_reference), 0.001)


def wasserstein_sorted(u: np.ndarray, v: np.ndarray) -> float:
    n, m = u.size, v.size
    if n == m:
        return float(np.mean(np.abs(u - v)))
    g = math.gcd(n, m)
    a, b = m // g, n // g  # t = T / L with L = n * a = m * b, so breakpoints are integers
    length = n * a
    breaks = np.concatenate((np.arange(n, dtype=np.int64) * a, np.arange(m, dtype=np.int64) * b))
    breaks.sort(kind="stable")  # two sorted runs: a linear merge
    keep = np.empty(breaks.size, dtype=bool)
    keep[0] = True
    np.not_equal(breaks[1:], breaks[:-1], out=keep[1:])
    breaks = breaks[keep]
    widths = np.diff(breaks, append=length)
    return float(np.dot(np.abs(u[breaks // a] - v[breaks // b]), widths)) / length


def binned_shares(
    reference: np.ndarray | None,
    current: np.ndarray | None,
    counts: Counts | None,
    n_unique_reference: int,
    numerical: bool,
    fill_zeroes: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """Evidently's `get_binned_data`: numerical columns with more than 20 reference values are
    binned on Sturges edges of reference+current; everything else uses per-value shares. With
    `fill_zeroes`, empty shares become 1e-4 (or min_nonzero/1e6 when min_nonzero <= 1e-4)."""
    if numerical and n_unique_reference > 20 and reference is not None and current is not None:
        edges = np.histogram_bin_edges(np.concatenate((reference, current)), bins="sturges")
        ref_pct = _sorted_histogram(reference, edges) / reference.size
        cur_pct = _sorted_histogram(current, edges) / current.size
    else:
        assert counts is not None
        ref_pct = counts.reference / counts.n_reference
        cur_pct = counts.current / counts.n_current
    if fill_zeroes:
        ref_pct = _fill_zeroes(ref_pct)
        cur_pct = _fill_zeroes(cur_pct)
    return ref_pct, cur_pct


def _sorted_histogram(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """np.histogram of an already sorted array: half-open bins, the last one closed."""
    cum = np.concatenate(
        (np.searchsorted(values, edges[:-1], "left"), np.searchsorted(values, edges[-1:], "right"))
    )
    return np.diff(cum)


def _fill_zeroes(shares: np.ndarray) -> np.ndarray:
    shares = shares.astype(float, copy=True)
    nonzero = shares[shares != 0]
    if nonzero.size == 0:
        return shares
    low = nonzero.min()
    np.place(shares, shares == 0, low / 10**6 if low <= 0.0001 else 0.0001)
    return shares


def jensenshannon(ref_pct: np.ndarray, cur_pct: np.ndarray) -> float:
    """Jensen-Shannon distance (natural log) between two share vectors (scipy normalises them)."""
    return float(distance.jensenshannon(ref_pct, cur_pct))


def psi_evidently(ref_pct: np.ndarray, cur_pct: np.ndarray) -> float:
    """Evidently's PSI over zero-filled shares: sum((ref - cur) * ln(ref / cur))."""
    return float(np.sum((ref_pct - cur_pct) * np.log(ref_pct / cur_pct)))


def psi_classic_numerical(reference: np.ndarray, current: np.ndarray, eps: float = 1e-4) -> float:
    """Classic PSI: 10 reference-decile bins with open outer bins, empty shares clipped to eps."""
    inner = np.unique(np.quantile(reference, np.linspace(0.1, 0.9, 9)))
    ref_counts = np.diff(np.concatenate(([0], np.searchsorted(reference, inner, "right"), [reference.size])))
    cur_counts = np.diff(np.concatenate(([0], np.searchsorted(current, inner, "right"), [current.size])))
    return _psi_from_counts(ref_counts, cur_counts, eps)


def psi_classic_counts(counts: Counts, eps: float = 1e-4) -> float:
    """Classic PSI over per-category shares, empty shares clipped to eps."""
    return _psi_from_counts(counts.reference, counts.current, eps)


def _psi_from_counts(ref_counts: np.ndarray, cur_counts: np.ndarray, eps: float) -> float:
    ref = np.maximum(ref_counts / ref_counts.sum(), eps)
    cur = np.maximum(cur_counts / cur_counts.sum(), eps)
    return float(np.sum((cur - ref) * np.log(cur / ref)))


def psi_band(score: float) -> str:
    """Label of a classic PSI value."""
    if math.isnan(score):
        return "unknown"
    if score < PSI_CLASSIC_BANDS[0]:
        return "no significant shift"
    if score < PSI_CLASSIC_BANDS[1]:
        return "moderate shift"
    return "significant shift"
