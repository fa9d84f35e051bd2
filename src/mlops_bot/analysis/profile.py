"""Reference profiles: a compact, versioned summary of the training data, stored with each
registered model as `reference_profile.json`, so drift can be checked against production data
later without the raw training set.

Per column: type, counts, quantiles, a histogram on fixed edges, exact value counts (top-K plus an
"other" count) and a seeded, bounded sample of the finite values. docs/drift.md lists which drift
methods are exact from a profile (everything count-based while no category was cut off) and which
are approximations from the sample (K-S, Wasserstein and binned JS/PSI on continuous columns)."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, Field

from mlops_bot.analysis.column_types import ColumnType, infer_column_type
from mlops_bot.analysis.stored_document import StoredDocument

PROFILE_SCHEMA_VERSION = 1
PROFILE_FILENAME = "reference_profile.json"
QUANTILES = (0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99)


class Histogram(BaseModel):
    edges: list[float]
    counts: list[int]


class ColumnProfile(BaseModel):
    type: ColumnType
    dtype: str
    count: int = Field(description="finite, non-null values")
    nan_count: int = Field(description="null or infinite values")
    n_unique: int
    mean: float | None = None
    std: float | None = Field(default=None, description="population std (ddof=0) of all finite values")
    min: float | None = None
    max: float | None = None
    quantiles: dict[str, float] = Field(default_factory=dict)
    histogram: Histogram | None = None
    values: list[list[Any]] | None = Field(
        default=None, description="[value, count] pairs, most frequent first, at most max_categories"
    )
    other_count: int = Field(default=0, description="rows whose value is not in `values`")
    sample: list[float] | None = Field(default=None, description="sorted seeded sample of finite values")
    sample_exact: bool = Field(default=False, description="the sample is every finite value")

    @property
    def counts_exact(self) -> bool:
        return self.values is not None and self.other_count == 0


class ReferenceProfile(StoredDocument):
    """The whole profile; `columns` keeps the frame's column order."""

    schema_version: Literal[1] = 1
    n_rows: int
    seed: int
    sample_size: int
    max_categories: int
    columns: dict[str, ColumnProfile]

    document_name: ClassVar[str] = "reference profile"
    document_version: ClassVar[int] = PROFILE_SCHEMA_VERSION
    rebuild_hint: ClassVar[str] = "rebuild it with build_profile"

    def reference_column(self, name: str, kind: Literal["numerical", "categorical"]) -> Any:
        """The drift view of one column (see drift.ReferenceColumn)."""
        from mlops_bot.analysis.drift_reference import ReferenceColumn

        col = self.columns[name]
        counts = {v: int(c) for v, c in col.values} if col.values is not None else None
        if kind == "numerical":
            sample = np.asarray(col.sample, dtype=np.float64) if col.sample is not None else None
            return ReferenceColumn(
                n=col.count,
                values=sample,
                values_exact=col.sample_exact,
                std=col.std,
                value_counts=counts if col.counts_exact else None,
                n_unique=col.n_unique,
            )
        return ReferenceColumn(
            n=col.count, value_counts=counts, counts_exact=col.counts_exact, n_unique=col.n_unique
        )


def build_profile(
    frame: pd.DataFrame, *, seed: int = 0, sample_size: int = 5000, max_categories: int = 1000, bins: int = 20
) -> ReferenceProfile:
    """Summarise a training table. Deterministic for a given seed."""
    rng = np.random.default_rng(seed)
    columns: dict[str, ColumnProfile] = {}
    for name in frame.columns:
        series = frame[name]
        kind = infer_column_type(series)
        numeric = pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)
        if numeric:
            columns[str(name)] = _numeric_profile(series, kind, rng, sample_size, max_categories, bins)
        else:
            columns[str(name)] = _categorical_profile(series, kind, max_categories)
    return ReferenceProfile(
        n_rows=len(frame), seed=seed, sample_size=sample_size, max_categories=max_categories, columns=columns
    )


def _pairs(keys: list[Any], counts: list[int], max_categories: int) -> tuple[list[list[Any]], int]:
    order = sorted(range(len(keys)), key=lambda i: -counts[i])
    kept = order[:max_categories]
    other = sum(counts[i] for i in order[max_categories:])
    return [[_plain(keys[i]), int(counts[i])] for i in kept], int(other)


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _numeric_profile(
    series: pd.Series,
    kind: ColumnType,
    rng: np.random.Generator,
    sample_size: int,
    max_categories: int,
    bins: int,
) -> ColumnProfile:
    values = series.to_numpy(dtype=np.float64, na_value=np.nan)
    values = np.sort(values[np.isfinite(values)])
    n = int(values.size)
    unique_mask = np.concatenate(([True], np.diff(values) != 0)) if n else np.zeros(0, dtype=bool)
    keys = values[unique_mask]
    profile: dict[str, Any] = {
        "type": kind,
        "dtype": series.dtype.name,
        "count": n,
        "nan_count": len(series) - n,
        "n_unique": int(keys.size),
    }
    if n:
        edges = np.histogram_bin_edges(values, bins=bins)
        profile |= {
            "mean": float(values.mean()),
            "std": float(np.std(values)),
            "min": float(values[0]),
            "max": float(values[-1]),
            "quantiles": {
                str(q): float(v) for q, v in zip(QUANTILES, np.quantile(values, QUANTILES), strict=True)
            },
            "histogram": Histogram(edges=edges.tolist(), counts=np.histogram(values, edges)[0].tolist()),
        }
        if n <= sample_size:
            profile |= {"sample": values.tolist(), "sample_exact": True}
        else:
            picked = np.sort(rng.choice(n, size=sample_size, replace=False))
            profile |= {"sample": values[picked].tolist(), "sample_exact": False}
        if keys.size <= max_categories:
            counts = np.diff(np.append(np.flatnonzero(unique_mask), n))
            profile["values"], profile["other_count"] = _pairs(keys.tolist(), counts.tolist(), max_categories)
    return ColumnProfile(**profile)


def _categorical_profile(series: pd.Series, kind: ColumnType, max_categories: int) -> ColumnProfile:
    clean = series.dropna()
    codes, uniques = pd.factorize(clean, sort=False)
    counts = np.bincount(codes, minlength=len(uniques)) if len(uniques) else np.zeros(0, dtype=np.int64)
    pairs, other = _pairs(uniques.tolist(), counts.tolist(), max_categories)
    return ColumnProfile(
        type=kind,
        dtype=series.dtype.name,
        count=len(clean),
        nan_count=len(series) - len(clean),
        n_unique=len(uniques),
        values=pairs,
        other_count=other,
    )
