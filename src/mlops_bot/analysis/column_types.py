"""Column type inference, matching Evidently 0.7's `infer_column_type` so that the same columns get
the same drift method. Evidently infers types on the *current* dataset; so do we."""

from __future__ import annotations

from typing import Literal

import pandas as pd

ColumnType = Literal["numerical", "categorical", "text", "unknown"]

# Evidently's INTEGER_CARDINALITY_LIMIT: integer columns with at most this many values are categories.
INTEGER_CARDINALITY_LIMIT = 10


def infer_column_type(column: pd.Series) -> ColumnType:
    """float -> numerical; int -> categorical when nunique <= 10 else numerical; strings ->
    categorical, or text when more than half the non-null values are distinct; bool/category ->
    categorical; anything else (datetimes, lists, all-null objects) -> unknown (not checked)."""
    name = column.dtype.name
    if name.startswith("float") or name.startswith("Float"):
        return "numerical"
    if name.startswith("int") or name.startswith("Int") or name.startswith("uint") or name.startswith("UInt"):
        return "categorical" if column.nunique() <= INTEGER_CARDINALITY_LIMIT else "numerical"
    if name in ("string", "str"):
        return "text" if column.nunique() > column.count() * 0.5 else "categorical"
    if name == "object":
        values = column.dropna()
        if values.empty:
            return "unknown"
        if isinstance(values.iloc[0], str) and isinstance(values.iloc[-1], str):
            return "text" if column.nunique() > column.count() * 0.5 else "categorical"
        return "unknown"
    if name in ("bool", "boolean", "category"):
        return "categorical"
    return "unknown"
