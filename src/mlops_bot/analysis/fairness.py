"""Group fairness of a binary classifier with fairlearn 0.15's definitions (REFERENCE.md section 4).

Everything derives from one table of counts per (group, true label, predicted label), built with a
single bincount over combined codes, so 1,000,000 rows cost a few array passes instead of a pandas
groupby per metric. Bootstrap intervals resample that table: drawing n rows with replacement is a
multinomial draw over its cells, so B replicates are one (B x cells) array."""

from __future__ import annotations

import math
from typing import Any, Literal, get_args

import numpy as np
import pandas as pd
from pydantic import BaseModel, Field
from scipy import stats

from mlops_bot.analysis.json_numbers import nan_to_none
from mlops_bot.config import FairnessSection
from mlops_bot.errors import DataError

Method = Literal["between_groups", "to_overall"]
METHODS: tuple[str, ...] = get_args(Method)
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
    method: Method = "between_groups"
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
            "method": self.method,
            "overall": self.overall.model_dump(),
            "by_group": {k: v.model_dump() for k, v in self.by_group.items()},
        }
        for name in DISPARITIES:
            data[name] = nan_to_none(self.disparities[name])
        data["confidence_intervals"] = {
            k: [nan_to_none(lo), nan_to_none(hi)] for k, (lo, hi) in self.intervals.items()
        }
        data["confidence"] = self.confidence
        data["bootstrap_samples"] = self.bootstrap_samples
        data["small_groups"] = list(self.small_groups)
        data["min_group_size"] = self.min_group_size
        data["four_fifths"] = {"passed": self.four_fifths_passed, "label": FOUR_FIFTHS_LABEL}
        return data

    @classmethod
    def from_json_dict(cls, data: dict[str, Any], pos_label: Any) -> FairnessReport:
        """Back from `to_json_dict` (report.json read as data); the positive label is not in that
        JSON: the caller's config names it. Raises ValueError when the data does not fit."""
        intervals = data.get("confidence_intervals") or {}
        four_fifths = data.get("four_fifths")
        return cls.model_validate({
            "sensitive": data.get("sensitive"),
            "pos_label": pos_label,
            "method": data.get("method", "between_groups"),
            "overall": data.get("overall"),
            "by_group": data.get("by_group"),
            "disparities": {name: json_number(data.get(name)) for name in DISPARITIES},
            "intervals": {k: v for k, v in intervals.items() if isinstance(v, list) and None not in v},
            "confidence": data.get("confidence", 0.95),
            "bootstrap_samples": data.get("bootstrap_samples", 0),
            "small_groups": data.get("small_groups") or [],
            "min_group_size": data.get("min_group_size", 30),
            "four_fifths_passed": four_fifths.get("passed") if isinstance(four_fifths, dict) else None,
        })


def json_number(value: Any) -> Any:
    """A null number of the JSON (NaN when written) back to NaN."""
    return float("nan") if value is None else value



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
    """difference (max - min) and ratio (min / max) over the last axis, NaN-skipping like pandas
    (fmax/fmin skip NaN and give NaN, without a warning, when every group is NaN)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        high = np.fmax.reduce(values, axis=-1)
        low = np.fmin.reduce(values, axis=-1)
        return high - low, low / high


def _to_overall(values: np.ndarray, overall: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """fairlearn's method="to_overall": difference = max over groups of |m_g - overall|; ratio =
    min over groups of m_g / overall, each ratio above 1 inverted (so 0/0 is NaN and skipped,
    x/0 is inf and becomes 0, as pandas does in MetricFrame.ratio)."""
    reference = np.asarray(overall)[..., np.newaxis]
    with np.errstate(divide="ignore", invalid="ignore"):
        difference = np.fmax.reduce(np.abs(values - reference), axis=-1)
        ratios = values / reference
        ratios = np.where(ratios > 1, 1 / ratios, ratios)
        return difference, np.fmin.reduce(ratios, axis=-1)


def difference_and_ratio(
    values: np.ndarray, overall: np.ndarray, method: str
) -> tuple[np.ndarray, np.ndarray]:
    """MetricFrame's difference(method) and ratio(method) of per-group values (last axis), with
    the overall value for method="to_overall"; vectorised over leading axes."""
    if method == "between_groups":
        return _between(values)
    if method == "to_overall":
        return _to_overall(values, overall)
    raise DataError(f"fairness method must be one of {', '.join(METHODS)}, not {method!r}")


def _builtin_max(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Python's max(a, b) elementwise: fairlearn applies the builtin to its (TPR, FPR) pair, so a
    NaN in first position wins and a NaN in second position loses."""
    with np.errstate(invalid="ignore"):
        return np.where(b > a, b, a)


def _builtin_min(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        return np.where(b < a, b, a)


def disparities_from_cells(cells: np.ndarray, method: str = "between_groups") -> dict[str, np.ndarray]:
    """The named disparities from (..., groups, 4) counts; vectorised over leading axes.

    A group with no rows (possible only in a bootstrap replicate) is left out, as fairlearn only
    sees the groups present: its rates are NaN, which the reductions skip."""
    selection, tpr, fpr = _rates(cells)
    empty = cells.sum(axis=-1) == 0
    tpr = np.where(empty, np.nan, tpr)
    fpr = np.where(empty, np.nan, fpr)
    if method == "between_groups":
        dp_diff, dp_ratio = _between(selection)
        tpr_diff, tpr_ratio = _between(tpr)
        fpr_diff, fpr_ratio = _between(fpr)
    elif method == "to_overall":
        o_sel, o_tpr, o_fpr = _rates(cells.sum(axis=-2))
        dp_diff, dp_ratio = _to_overall(selection, o_sel)
        tpr_diff, tpr_ratio = _to_overall(tpr, o_tpr)
        fpr_diff, fpr_ratio = _to_overall(fpr, o_fpr)
    else:
        raise DataError(f"fairness method must be one of {', '.join(METHODS)}, not {method!r}")
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
    method: Method | None = None,
) -> FairnessReport:
    """Per-group accuracy, selection rate, TPR, FPR and counts over the intersection of the
    sensitive columns, the fairlearn disparities (`method`, default `settings.method`: between
    groups or each group to overall), and bootstrap intervals."""
    settings = settings or FairnessSection()
    method = method or settings.method
    frame, yt, yp = checked_inputs(y_true, y_pred, sensitive, method)
    _require_binary(yt, yp, pos_label)
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
    disparities = {k: float(v) for k, v in disparities_from_cells(cells, method).items()}
    intervals: dict[str, tuple[float, float]] = {}
    samples = 0
    if settings.bootstrap and n_groups > 1:
        samples = settings.bootstrap_samples
        intervals = bootstrap_intervals(
            cells, samples, settings.confidence, np.random.default_rng(seed), disparities, method
        )
    ratio = disparities["demographic_parity_ratio"]
    return FairnessReport(
        sensitive=[str(c) for c in frame.columns],
        pos_label=pos_label.item() if isinstance(pos_label, np.generic) else pos_label,
        method=method,
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


def _require_binary(y_true: np.ndarray, y_pred: np.ndarray, pos_label: Any) -> None:
    """Refuse what fairlearn would not compute consistently: more than two labels (its
    selection_rate quietly scores multiclass predictions one-vs-rest while TPR/FPR raise), or two
    labels neither of which is pos_label (selection_rate quietly gives 0 for every group)."""
    labels = pd.unique(np.concatenate([pd.unique(y_true), pd.unique(y_pred)]))
    shown = ", ".join(repr(v.item() if isinstance(v, np.generic) else v) for v in labels[:5])
    if len(labels) > 5:
        shown += ", ..."
    if len(labels) > 2:
        raise DataError(
            f"fairness needs binary labels, but y_true and y_pred hold {len(labels)} distinct values "
            f"({shown}); pass class predictions, not scores, and for a multiclass model binarise "
            f"both columns one-vs-rest (e.g. y == {pos_label!r}) before the analysis"
        )
    if len(labels) == 2 and not any(_equal(v, pos_label) for v in labels):
        raise DataError(
            f"fairness positive label {pos_label!r} is neither of the labels in y_true and y_pred "
            f"({shown}); set --pos-label (or model.positive_label) to one of them"
        )


def _equal(value: Any, pos_label: Any) -> bool:
    try:
        return bool(value == pos_label)
    except (TypeError, ValueError):
        return False


def bootstrap_intervals(
    cells: np.ndarray,
    samples: int,
    confidence: float,
    rng: np.random.Generator,
    point: dict[str, float] | None = None,
    method: str = "between_groups",
) -> dict[str, tuple[float, float]]:
    """Bias-corrected (BC) percentile intervals of each disparity over `samples` row-resamples.

    A max - min over groups (or max |group - overall|) is biased upwards under resampling (noise
    only ever widens the gap), so plain percentiles can sit entirely above the estimate when groups
    are equal. BC shifts the percentiles by z0 = Phi^-1(share of replicates below the estimate),
    Efron's correction."""
    flat = cells.reshape(-1).astype(np.float64)
    n = int(flat.sum())
    draws = rng.multinomial(n, flat / n, size=samples).reshape(samples, *cells.shape)
    values = disparities_from_cells(draws, method)
    if point is None:
        point = {k: float(v) for k, v in disparities_from_cells(cells, method).items()}
    return {
        name: bias_corrected_interval(series, point.get(name, float("nan")), confidence)
        for name, series in values.items()
    }


def bias_corrected_interval(
    replicates: np.ndarray, estimate: float, confidence: float
) -> tuple[float, float]:
    """Efron's bias-corrected percentile interval of one statistic from its bootstrap replicates
    (non-finite replicates skipped); (nan, nan) when nothing is left or the estimate is NaN."""
    finite = replicates[np.isfinite(replicates)]
    if finite.size == 0 or math.isnan(estimate):
        return (float("nan"), float("nan"))
    alpha = (1 - confidence) / 2
    z_lo, z_hi = stats.norm.ppf(alpha), stats.norm.ppf(1 - alpha)
    below = (np.count_nonzero(finite < estimate) + 0.5 * np.count_nonzero(finite == estimate)) / finite.size
    below = min(max(below, 1 / (finite.size + 1)), finite.size / (finite.size + 1))
    z0 = stats.norm.ppf(below)
    q_lo, q_hi = stats.norm.cdf(2 * z0 + z_lo), stats.norm.cdf(2 * z0 + z_hi)
    lo, hi = np.quantile(finite, [q_lo, q_hi])
    return (float(lo), float(hi))


def checked_inputs(
    y_true: Any, y_pred: Any, sensitive: pd.DataFrame | pd.Series, method: str
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """The checks every task's fairness shares: a known method, equal lengths, rows, a sensitive
    column. Returns the sensitive columns as a frame and the labels as arrays."""
    if method not in METHODS:
        raise DataError(f"fairness method must be one of {', '.join(METHODS)}, not {method!r}")
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
    return frame, yt, yp
