"""Group fairness of a binary classifier with fairlearn 0.15's definitions (REFERENCE.md section 4).

Everything derives from one table of counts per (group, true label, predicted label), built with a
single bincount over combined codes, so 1,000,000 rows cost a few array passes instead of a pandas
groupby per metric. Bootstrap intervals resample that table: drawing n rows with replacement is a
multinomial draw over its cells, so B replicates are one (B x cells) array."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, Field
from scipy import stats

from mlops_bot.config import FairnessSection
from mlops_bot.errors import DataError

FOUR_FIFTHS_LABEL = "four-fifths heuristic (US employment law), not a legal test"
MISSING_GROUP = "missing"
DISPARITIES = (
    "demographic_parity_difference",
    "demographic_parity_ratio",
    "equalized_odds_difference",
    "equalized_odds_ratio",
    "equal_opportunity_difference",
    "equal_opportunity_ratio",
)


class GroupMetrics(BaseModel):
    accuracy: float
    selection_rate: float
    tpr: float
    fpr: float
    count: int


class FairnessReport(BaseModel):
    """Per-group metrics, disparities between groups, and their bootstrap intervals."""

    sensitive: list[str]
    pos_label: Any
    overall: GroupMetrics
    by_group: dict[str, GroupMetrics]
    disparities: dict[str, float]
    intervals: dict[str, tuple[float, float]] = Field(default_factory=dict)
    confidence: float = 0.95
    bootstrap_samples: int = 0
    small_groups: list[str] = Field(default_factory=list, description="groups below min_group_size")
    min_group_size: int = 30
    four_fifths_passed: bool | None = None

    def to_json_dict(self) -> dict[str, Any]:
        """The `mlops-bot fairness` JSON: disparities at the top level as plain numbers."""
        data: dict[str, Any] = {
            "sensitive": list(self.sensitive),
            "overall": self.overall.model_dump(),
            "by_group": {k: v.model_dump() for k, v in self.by_group.items()},
        }
        for name in DISPARITIES:
            data[name] = _finite(self.disparities[name])
        data["confidence_intervals"] = {
            k: [_finite(lo), _finite(hi)] for k, (lo, hi) in self.intervals.items()
        }
        data["confidence"] = self.confidence
        data["bootstrap_samples"] = self.bootstrap_samples
        data["small_groups"] = list(self.small_groups)
        data["min_group_size"] = self.min_group_size
        data["four_fifths"] = {"passed": self.four_fifths_passed, "label": FOUR_FIFTHS_LABEL}
        return data


def _finite(value: float) -> float | None:
    return None if value is None or math.isnan(value) else float(value)


# ------------------------------------------------------------------------------------ groups
def group_codes(sensitive: pd.DataFrame, missing: str = "error") -> tuple[np.ndarray, list[str]]:
    """One integer code per row for the intersectional group, and the group keys ("a|b") in
    lexicographic order of the values (the order fairlearn's by_group uses)."""
    codes = np.zeros(len(sensitive), dtype=np.int64)
    labels: list[list[str]] = [[]]
    for name in sensitive.columns:
        column = sensitive[name]
        n_missing = int(column.isna().sum())
        if n_missing:
            if missing != "group":
                raise DataError(
                    f"sensitive column {name!r} has {n_missing} missing value(s) out of {len(column)} rows; "
                    "fill them, drop those rows, or set fairness.missing: group in .github/mlops.yml"
                )
            column = column.astype(object).where(column.notna(), MISSING_GROUP)
        col_codes, uniques = pd.factorize(column, sort=True)
        codes = codes * len(uniques) + col_codes
        labels = [[*prefix, str(u)] for prefix in labels for u in uniques]
    present, compact = np.unique(codes, return_inverse=True)
    keys = ["|".join(labels[c]) for c in present]
    return compact.astype(np.int64), keys


def _cell_counts(codes: np.ndarray, y_true: np.ndarray, y_pred: np.ndarray, n_groups: int) -> np.ndarray:
    """(n_groups, 4) counts of tn, fp, fn, tp."""
    cells = codes * 4 + y_true.astype(np.int64) * 2 + y_pred.astype(np.int64)
    return np.bincount(cells, minlength=n_groups * 4).reshape(n_groups, 4)


def _rates(cells: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """selection rate, TPR, FPR from (..., 4) counts; an empty denominator gives 0 as in fairlearn
    (sklearn's confusion_matrix normalize='true' turns 0/0 into 0)."""
    tn, fp, fn, tp = (cells[..., i].astype(np.float64) for i in range(4))
    n = tn + fp + fn + tp
    with np.errstate(divide="ignore", invalid="ignore"):
        selection = np.where(n > 0, (tp + fp) / n, np.nan)
        tpr = np.where(tp + fn > 0, tp / (tp + fn), 0.0)
        fpr = np.where(fp + tn > 0, fp / (fp + tn), 0.0)
    return selection, tpr, fpr


def _between(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """difference (max - min) and ratio (min / max) over the last axis, NaN-skipping like pandas."""
    with np.errstate(divide="ignore", invalid="ignore"):
        high = np.nanmax(values, axis=-1)
        low = np.nanmin(values, axis=-1)
        return high - low, low / high


def _builtin_max(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Python's max(a, b) elementwise: fairlearn applies the builtin to its (TPR, FPR) pair, so a
    NaN in first position wins and a NaN in second position loses."""
    with np.errstate(invalid="ignore"):
        return np.where(b > a, b, a)


def _builtin_min(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        return np.where(b < a, b, a)


def disparities_from_cells(cells: np.ndarray) -> dict[str, np.ndarray]:
    """The named disparities from (..., groups, 4) counts; vectorised over leading axes."""
    selection, tpr, fpr = _rates(cells)
    dp_diff, dp_ratio = _between(selection)
    tpr_diff, tpr_ratio = _between(tpr)
    fpr_diff, fpr_ratio = _between(fpr)
    return {
        "demographic_parity_difference": dp_diff,
        "demographic_parity_ratio": dp_ratio,
        "equalized_odds_difference": _builtin_max(tpr_diff, fpr_diff),
        "equalized_odds_ratio": _builtin_min(tpr_ratio, fpr_ratio),
        "equal_opportunity_difference": tpr_diff,
        "equal_opportunity_ratio": tpr_ratio,
    }


# ------------------------------------------------------------------------------------ the report
def compute_fairness(
    y_true: Any,
    y_pred: Any,
    sensitive: pd.DataFrame | pd.Series,
    *,
    pos_label: Any = 1,
    settings: FairnessSection | None = None,
    seed: int = 0,
) -> FairnessReport:
    """Per-group accuracy, selection rate, TPR, FPR and counts over the intersection of the
    sensitive columns, the fairlearn disparities between groups, and bootstrap intervals."""
    settings = settings or FairnessSection()
    frame = sensitive.to_frame() if isinstance(sensitive, pd.Series) else sensitive
    yt = np.asarray(y_true)
    yp = np.asarray(y_pred)
    if not (len(yt) == len(yp) == len(frame)):
        raise DataError(
            f"fairness: y_true ({len(yt)}), y_pred ({len(yp)}) and sensitive ({len(frame)}) differ in length"
        )
    if len(yt) == 0:
        raise DataError("fairness: no rows")
    if frame.shape[1] == 0:
        raise DataError("fairness: no sensitive column given")
    labels = pd.unique(np.concatenate([pd.unique(yt), pd.unique(yp)]))
    if len(labels) > 2:
        raise DataError(
            f"fairness needs binary labels; y_true and y_pred hold {len(labels)} distinct values "
            f"({', '.join(map(str, labels[:5]))}...)"
        )
    codes, keys = group_codes(frame, settings.missing)
    true_pos = yt == pos_label
    pred_pos = yp == pos_label
    correct = yt == yp
    n_groups = len(keys)
    cells = _cell_counts(codes, true_pos, pred_pos, n_groups)
    group_n = cells.sum(axis=1)
    group_correct = np.bincount(codes, weights=correct, minlength=n_groups)
    selection, tpr, fpr = _rates(cells)
    by_group = {
        key: GroupMetrics(
            accuracy=float(group_correct[i] / group_n[i]),
            selection_rate=float(selection[i]),
            tpr=float(tpr[i]),
            fpr=float(fpr[i]),
            count=int(group_n[i]),
        )
        for i, key in enumerate(keys)
    }
    total = cells.sum(axis=0)
    o_sel, o_tpr, o_fpr = _rates(total)
    overall = GroupMetrics(
        accuracy=float(correct.mean()),
        selection_rate=float(o_sel),
        tpr=float(o_tpr),
        fpr=float(o_fpr),
        count=len(yt),
    )
    disparities = {k: float(v) for k, v in disparities_from_cells(cells).items()}
    intervals: dict[str, tuple[float, float]] = {}
    samples = 0
    if settings.bootstrap and n_groups > 1:
        samples = settings.bootstrap_samples
        intervals = bootstrap_intervals(
            cells, samples, settings.confidence, np.random.default_rng(seed), disparities
        )
    ratio = disparities["demographic_parity_ratio"]
    return FairnessReport(
        sensitive=[str(c) for c in frame.columns],
        pos_label=pos_label.item() if isinstance(pos_label, np.generic) else pos_label,
        overall=overall,
        by_group=by_group,
        disparities=disparities,
        intervals=intervals,
        confidence=settings.confidence,
        bootstrap_samples=samples,
        small_groups=[k for k, g in by_group.items() if g.count < settings.min_group_size],
        min_group_size=settings.min_group_size,
        four_fifths_passed=None if math.isnan(ratio) else bool(ratio >= 0.8),
    )


def bootstrap_intervals(
    cells: np.ndarray,
    samples: int,
    confidence: float,
    rng: np.random.Generator,
    point: dict[str, float] | None = None,
) -> dict[str, tuple[float, float]]:
    """Bias-corrected (BC) percentile intervals of each disparity over `samples` row-resamples.

    A max - min over groups is biased upwards under resampling (noise only ever widens the gap),
    so plain percentiles can sit entirely above the estimate when groups are equal. BC shifts the
    percentiles by z0 = Phi^-1(share of replicates below the estimate), Efron's correction."""
    flat = cells.reshape(-1).astype(np.float64)
    n = int(flat.sum())
    draws = rng.multinomial(n, flat / n, size=samples).reshape(samples, *cells.shape)
    values = disparities_from_cells(draws)
    if point is None:
        point = {k: float(v) for k, v in disparities_from_cells(cells).items()}
    alpha = (1 - confidence) / 2
    z_lo, z_hi = stats.norm.ppf(alpha), stats.norm.ppf(1 - alpha)
    out: dict[str, tuple[float, float]] = {}
    for name, series in values.items():
        finite = series[np.isfinite(series)]
        estimate = point.get(name, float("nan"))
        if finite.size == 0 or math.isnan(estimate):
            out[name] = (float("nan"), float("nan"))
            continue
        below = (
            np.count_nonzero(finite < estimate) + 0.5 * np.count_nonzero(finite == estimate)
        ) / finite.size
        below = min(max(below, 1 / (finite.size + 1)), finite.size / (finite.size + 1))
        z0 = stats.norm.ppf(below)
        q_lo, q_hi = stats.norm.cdf(2 * z0 + z_lo), stats.norm.cdf(2 * z0 + z_hi)
        lo, hi = np.quantile(finite, [q_lo, q_hi])
        out[name] = (float(lo), float(hi))
    return out
