"""What drift needs from one reference column, and the value cleaning and counting both sides share.

From a DataFrame everything is exact; a `ReferenceProfile` (profile.py) builds the same
`ReferenceColumn` from stored summaries. Evidently drops NaN and +-inf before every test, and so do
we."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from mlops_bot.analysis import drift_methods as dm
from mlops_bot.errors import DataError


@dataclass(frozen=True)
class ReferenceColumn:
    """What drift needs from one reference column. From a DataFrame everything is exact; from a
    profile `values` may be a sample (`values_exact=False`) while counts, n, std stay exact."""

    n: int
    values: np.ndarray | None = None  # numerical: sorted finite values (all, or a sample)
    values_exact: bool = True
    std: float | None = None  # population std of all values
    value_counts: dict[Any, int] | None = None  # per-value counts, when known
    counts_exact: bool = True  # False when a profile cut rare categories off into "other"
    n_unique: int = 0


def clean_numeric(series: pd.Series) -> np.ndarray:
    """Finite values as a sorted float64 array (Evidently drops NaN and +-inf first)."""
    try:
        values = series.to_numpy(dtype=np.float64, na_value=np.nan)
    except (TypeError, ValueError):
        raise DataError(
            f"column {series.name!r} is numerical in the current data but not numeric in the reference"
        ) from None
    finite = np.isfinite(values)
    if not finite.all():
        values = values[finite]
    elif np.shares_memory(values, series.to_numpy()):
        values = values.copy()  # never sort the caller's frame in place
    values.sort(kind="quicksort")
    return values


def clean_categorical(series: pd.Series) -> pd.Series:
    if series.dtype.kind == "f":
        series = series.replace([np.inf, -np.inf], np.nan)
    return series.dropna()


def category_counts(series: pd.Series) -> dict[Any, int]:
    codes, uniques = pd.factorize(series, sort=False)
    counts = np.bincount(codes[codes >= 0], minlength=len(uniques))
    result: dict[Any, int] = {}
    for key, count in zip(uniques.tolist(), counts.tolist(), strict=True):
        result[key] = result.get(key, 0) + int(count)
    return result


def sorted_unique(values: np.ndarray) -> np.ndarray:
    if values.size == 0:
        return values
    return values[np.concatenate(([True], np.diff(values) != 0))]


def sorted_counts(values: np.ndarray) -> dict[Any, int]:
    keys = sorted_unique(values)
    counts = np.diff(np.append(np.searchsorted(values, keys, "left"), values.size))
    return dict(zip(keys.tolist(), counts.tolist(), strict=True))


def count_table(reference: dict[Any, int], current: dict[Any, int]) -> dm.Counts:
    keys = list(dict.fromkeys([*reference, *current]))
    return dm.Counts(
        keys=keys,
        reference=np.array([reference.get(k, 0) for k in keys], dtype=np.int64),
        current=np.array([current.get(k, 0) for k in keys], dtype=np.int64),
    )


def reference_column_from_series(
    series: pd.Series, kind: Literal["numerical", "categorical"]
) -> ReferenceColumn:
    if kind == "numerical":
        values = clean_numeric(series)
        return ReferenceColumn(
            n=values.size,
            values=values,
            std=float(np.std(values)) if values.size else None,
            n_unique=dm.n_unique_sorted(values),
        )
    clean = clean_categorical(series)
    counts = category_counts(clean)
    return ReferenceColumn(n=len(clean), value_counts=counts, n_unique=len(counts))
