"""The inferred data schema: what the training data of a registered version looked like, stored with
the version as `data_schema.json` so later PRs and production batches are checked against it.

Per column: pandas dtype and its family (integer, float, boolean, string, datetime, other), row and
missing counts (missing = null/NaN, as Evidently's MissingValueCount counts), distinct values,
numeric range and quantiles, and the complete list of categories for string/boolean columns with
at most `max_categories` distinct values. Plus the class shares of the target for classification.
Inference is pure (frame in, model out); `save`/`load` are the only file I/O.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, Field

from mlops_bot.analysis.stored_document import StoredDocument

SCHEMA_FILENAME = "data_schema.json"
SCHEMA_VERSION = 1
QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
DtypeFamily = Literal["integer", "float", "boolean", "string", "datetime", "other"]


class ColumnSchema(BaseModel):
    dtype: str = Field(description="pandas dtype name as read (int64, float64, object, bool, ...)")
    family: DtypeFamily
    rows: int
    missing: int = Field(description="null/NaN values (infinities are values, as in Evidently)")
    n_unique: int = Field(description="distinct non-missing values")
    min: float | None = None
    max: float | None = None
    quantiles: dict[str, float] = Field(default_factory=dict)
    categories: list[Any] | None = Field(
        default=None, description="every distinct value (string/boolean columns with few values)"
    )

    @property
    def nullable(self) -> bool:
        return self.missing > 0

    @property
    def missing_share(self) -> float:
        return self.missing / self.rows if self.rows else 0.0


class DataSchema(StoredDocument):
    schema_version: Literal[1] = 1
    rows: int
    columns: dict[str, ColumnSchema]
    target: str | None = None
    target_shares: dict[str, float] | None = Field(
        default=None, description="class -> share of rows (classification targets), keys as text"
    )

    document_name: ClassVar[str] = "data schema"
    document_version: ClassVar[int] = SCHEMA_VERSION


def dtype_family(series: pd.Series) -> DtypeFamily:
    """The family a dtype belongs to; object columns holding only strings are `string`."""
    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return "boolean"
    if pd.api.types.is_integer_dtype(dtype):
        return "integer"
    if pd.api.types.is_float_dtype(dtype):
        return "float"
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "datetime"
    if isinstance(dtype, pd.CategoricalDtype):
        return dtype_family(pd.Series(dtype.categories))
    if pd.api.types.is_string_dtype(dtype):
        values = series.dropna()
        if all(isinstance(v, str) for v in values):
            return "string"
        if all(isinstance(v, bool | np.bool_) for v in values):
            return "boolean"
    return "other"


def hashable(series: pd.Series) -> pd.Series:
    """The series itself, or its values as text when they are lists/arrays (embeddings), which
    pandas cannot count or compare as they are."""
    if series.dtype == object and any(isinstance(v, list | dict | set | np.ndarray) for v in series.head(50)):
        return series.map(lambda v: v if v is None or (isinstance(v, float) and np.isnan(v)) else repr(v))
    return series


def distinct(series: pd.Series) -> int:
    """Distinct non-missing values (`nunique()`), for any column."""
    return int(hashable(series).nunique())


def plain(value: Any) -> Any:
    """A JSON-friendly scalar (numpy scalars unwrapped)."""
    return value.item() if isinstance(value, np.generic) else value


def numeric_values(series: pd.Series) -> np.ndarray:
    """The non-missing values of a numeric column as float64 (infinities kept)."""
    values = series.to_numpy(dtype=np.float64, na_value=np.nan)
    return values[~np.isnan(values)]


def infer_column(series: pd.Series, max_categories: int = 1000) -> ColumnSchema:
    family = dtype_family(series)
    present = series.dropna()
    column: dict[str, Any] = {
        "dtype": series.dtype.name,
        "family": family,
        "rows": len(series),
        "missing": len(series) - len(present),
        "n_unique": distinct(present),
    }
    if family in ("integer", "float"):
        values = numeric_values(series)
        finite = values[np.isfinite(values)]
        if finite.size:
            column |= {
                "min": float(finite.min()),
                "max": float(finite.max()),
                "quantiles": {
                    str(q): float(v) for q, v in zip(QUANTILES, np.quantile(finite, QUANTILES), strict=True)
                },
            }
    elif family in ("string", "boolean") and column["n_unique"] <= max_categories:
        column["categories"] = sorted((plain(v) for v in present.unique()), key=lambda v: (str(type(v)), v))
    return ColumnSchema(**column)


def infer_schema(
    frame: pd.DataFrame,
    *,
    target: str | None = None,
    classification: bool = False,
    max_categories: int = 1000,
) -> DataSchema:
    """Summarise a table; with a classification target, also its class shares."""
    shares = None
    if target is not None and classification and target in frame.columns:
        counts = frame[target].dropna().value_counts(normalize=True)
        shares = {str(plain(k)): float(v) for k, v in counts.items()}
    return DataSchema(
        rows=len(frame),
        columns={str(n): infer_column(frame[n], max_categories) for n in frame.columns},
        target=target,
        target_shares=shares,
    )
