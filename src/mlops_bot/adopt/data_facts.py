"""What `mlops-bot init` learns from a data table: the task, the feature columns and their kinds, an
id column. Pure: the table is passed in."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from mlops_bot.analysis.column_types import infer_column_type
from mlops_bot.errors import DataError

# A target with at most this many distinct integer/string values is a class label.
MAX_CLASSES = 20


@dataclass(frozen=True)
class DataFacts:
    target: str
    task: str  # "classification" | "regression"
    classes: list[str] = field(default_factory=list)
    numeric: list[str] = field(default_factory=list)
    categorical: list[str] = field(default_factory=list)
    id_column: str | None = None
    skipped: dict[str, str] = field(default_factory=dict)  # column -> why it is not a feature
    rows: int = 0


def infer_task(target: pd.Series) -> str:
    values = target.dropna()
    if values.empty:
        raise DataError(f"the target column {target.name!r} has no values")
    kind = values.dtype.name
    if kind.startswith(("float", "Float")):
        integral = bool((values == values.round()).all())
        return "classification" if integral and values.nunique() <= MAX_CLASSES else "regression"
    if kind.startswith(("int", "Int", "uint", "UInt")):
        return "classification" if values.nunique() <= MAX_CLASSES else "regression"
    return "classification"


def _looks_like_id(name: str, column: pd.Series) -> bool:
    lowered = name.lower()
    named = lowered == "id" or lowered.endswith(("_id", "-id")) or lowered.startswith("id_")
    return named and column.nunique(dropna=True) == len(column)


def inspect_table(frame: pd.DataFrame, target: str, sensitive: list[str] | None = None) -> DataFacts:
    """Columns, kinds and task of `frame` for the config `init` writes; `sensitive` columns are
    never features (they are for the fairness section)."""
    if target not in frame.columns:
        known = ", ".join(map(str, frame.columns[:20]))
        raise DataError(f"the data has no target column {target!r} (columns: {known})")
    missing = [c for c in sensitive or [] if c not in frame.columns]
    if missing:
        raise DataError(f"sensitive column(s) {', '.join(map(repr, missing))} are not in the data")
    task = infer_task(frame[target])
    classes = sorted(map(str, frame[target].dropna().unique())) if task == "classification" else []
    numeric: list[str] = []
    categorical: list[str] = []
    skipped: dict[str, str] = {}
    id_column = None
    for name in frame.columns:
        if name == target:
            continue
        column = frame[name]
        if name in (sensitive or []):
            skipped[name] = "sensitive attribute (fairness only)"
        elif id_column is None and _looks_like_id(str(name), column):
            id_column = str(name)
        elif column.dtype.name.startswith(("int", "Int", "uint", "UInt", "float", "Float")):
            numeric.append(str(name))
        else:
            kind = infer_column_type(column)
            if kind == "categorical":
                categorical.append(str(name))
            else:
                skipped[name] = f"{kind} column (not a built-in feature)"
    return DataFacts(target=target, task=task, classes=classes, numeric=numeric, categorical=categorical,
                     id_column=id_column, skipped={str(k): v for k, v in skipped.items()}, rows=len(frame))
