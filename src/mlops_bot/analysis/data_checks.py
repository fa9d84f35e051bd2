"""Data validation: a table checked against the schema of the reference data, plus train/holdout
leakage. Pure: frames and schemas in, check rows out; gates come from `gates.data`.

Where Evidently 0.7 has the same measurement the numbers are its definitions (tested side by side):
missing share = (rows - non-null) / rows (MissingValueCount); out of range = non-null values not in
[min, max] of the reference, share of non-null values (OutRangeValueCount); unseen categories =
non-null values not in the reference's categories, share of non-null values (OutListValueCount);
constant column = `nunique() <= 1` (ConstantColumnsCount); duplicated rows = `DataFrame.duplicated()`
(DuplicatedRowCount). Every check, its unit and its default gate: docs/data-validation.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, Field

from mlops_bot.analysis.data_schema import (
    ColumnSchema,
    DataSchema,
    distinct,
    dtype_family,
    hashable,
    numeric_values,
    plain,
)
from mlops_bot.config import DataCheckAction, DataCheckName, DataGates

DataStatus = Literal["pass", "warn", "fail"]
_TOLERANCE = 1e-12
_EXAMPLES = 3
NUMERIC = ("integer", "float")


class DataCheck(BaseModel):
    """One check on one table (and column). `value` is in the check's unit (a share, 0..1, or a
    count); `detail` is plain text naming the column and the offending values."""

    check: DataCheckName
    dataset: str
    column: str | None = None
    status: DataStatus
    action: DataCheckAction
    value: float | None = None
    limit: float | None = None
    detail: str
    examples: list[str] = Field(default_factory=list)


class DataChecksReport(BaseModel):
    reference: str = Field(description="what the tables were checked against, in words")
    checks: list[DataCheck]
    notes: list[str] = Field(default_factory=list)

    def problems(self) -> list[DataCheck]:
        """Failed checks first, then warnings."""
        return sorted((c for c in self.checks if c.status != "pass"), key=lambda c: c.status != "fail")

    def to_json_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


# -------------------------------------------------------------------------------------- helpers
def _pct(share: float) -> str:
    return f"{100 * share:.4g} %"


def _text(value: Any) -> str:
    text = str(plain(value))
    return text if len(text) <= 40 else text[:37] + "..."


def _status(action: DataCheckAction, bad: bool) -> DataStatus:
    if not bad or action == "off":
        return "pass"
    return "fail" if action == "fail" else "warn"


def _over(value: float, limit: float | None) -> bool:
    return limit is not None and value > limit + _TOLERANCE


def rejudged(check: DataCheck, gates: DataGates) -> DataCheck | None:
    """A measured row under other gates (the base branch's, in the job that posts the verdict):
    action and limit from `gates`; a row with a value fails or warns when the value is over that
    limit, a row without one (a dtype change, a missing column) keeps what was observed. None when
    the check is off under `gates`."""
    action, limit = gates.rule(check.check, check.column)
    if action == "off":
        return None
    measured = check.value is not None and limit is not None
    bad = _over(check.value, limit) if measured and check.value is not None else check.status != "pass"
    return check.model_copy(update={"action": action, "limit": limit, "status": _status(action, bad)})


class _Checker:
    """Collects rows for one table, applying the gates' effective rules."""

    def __init__(self, gates: DataGates, dataset: str) -> None:
        self.gates = gates
        self.dataset = dataset
        self.rows: list[DataCheck] = []

    def rule(self, check: str, column: str | None = None) -> tuple[DataCheckAction, float | None]:
        return self.gates.rule(check, column)

    def add(
        self,
        check: DataCheckName,
        column: str | None,
        bad: bool,
        detail: str,
        value: float | None = None,
        examples: Sequence[Any] = (),
    ) -> None:
        action, limit = self.rule(check, column)
        if action == "off":
            return
        self.rows.append(
            DataCheck(
                check=check,
                dataset=self.dataset,
                column=column,
                status=_status(action, bad),
                action=action,
                value=value,
                limit=limit,
                detail=detail,
                examples=[_text(v) for v in list(examples)[:_EXAMPLES]],
            )
        )


# ------------------------------------------------------------------------------- column checks
def missing_share(series: pd.Series) -> tuple[int, float]:
    """Evidently's MissingValueCount: (rows - non-null, that / rows)."""
    total = len(series)
    missing = total - int(series.count())
    return missing, (missing / total if total else 0.0)


def out_of_range(series: pd.Series, low: float, high: float) -> tuple[int, float, list[Any]]:
    """Evidently's OutRangeValueCount over [low, high]: non-null values outside it, their share of
    the non-null values, and a few of them (the most extreme first)."""
    values = numeric_values(series)
    outside = values[~((values >= low) & (values <= high))]
    share = outside.size / values.size if values.size else 0.0
    extreme = (
        outside[np.argsort(-np.abs(outside - (low + high) / 2), kind="stable")] if outside.size else outside
    )
    shown = [int(v) if float(v).is_integer() else float(v) for v in pd.unique(extreme)[:_EXAMPLES]]
    return int(outside.size), share, shown


def out_of_list(series: pd.Series, categories: Sequence[Any]) -> tuple[int, float, list[Any]]:
    """Evidently's OutListValueCount: non-null values not among `categories`, their share of the
    non-null values, and the unseen values, most frequent first."""
    counts = series.value_counts()
    total = int(counts.sum())
    known = float(counts.reindex(list(categories), fill_value=0).sum())
    unseen = counts[~counts.index.isin(list(categories))]
    count = int(total - known)
    return count, (count / total if total else 0.0), [plain(v) for v in unseen.index]


def is_constant(series: pd.Series) -> bool:
    """Evidently's ConstantColumnsCount rule: at most one distinct non-null value."""
    return distinct(series) <= 1


def _non_numeric_examples(series: pd.Series) -> list[Any]:
    present = hashable(series).dropna()
    try:
        parsed = pd.to_numeric(present, errors="coerce")
    except (TypeError, ValueError):
        return []
    return [plain(v) for v in pd.unique(present[parsed.isna()])[:_EXAMPLES]]


def _dtype(checker: _Checker, name: str, ref: ColumnSchema, series: pd.Series) -> bool:
    """Records the dtype row; True when the families match closely enough to compare values."""
    family = dtype_family(series)
    if family == ref.family:
        checker.add(
            "dtype_change", name, False, f"{name}: {series.dtype.name} ({family}), as in the reference"
        )
        return True
    if ref.family == "integer" and family == "float":
        values = numeric_values(series)
        if np.all(np.mod(values[np.isfinite(values)], 1) == 0):
            checker.add(
                "dtype_change",
                name,
                False,
                f"{name}: {ref.dtype} -> {series.dtype.name}, every value still a whole number "
                "(missing values turn integer columns into floats)",
            )
            return True
    examples = _non_numeric_examples(series) if ref.family in NUMERIC and family not in NUMERIC else []
    detail = f"{name}: {ref.dtype} ({ref.family}) -> {series.dtype.name} ({family})"
    if examples:
        detail += ", values that are not numbers: " + ", ".join(repr(_text(v)) for v in examples)
    checker.add("dtype_change", name, True, detail, examples=examples)
    return ref.family in NUMERIC and family in NUMERIC


def _column(checker: _Checker, name: str, ref: ColumnSchema, series: pd.Series, reference_name: str) -> None:
    comparable = _dtype(checker, name, ref, series)

    missing, share = missing_share(series)
    growth = share - ref.missing_share
    _, limit = checker.rule("missing_share", name)
    checker.add(
        "missing_share",
        name,
        _over(growth, limit),
        f"{name}: {_pct(ref.missing_share)} -> {_pct(share)} missing ({missing} of {len(series)} rows, "
        f"{100 * growth:+.4g} points)",
        value=growth,
    )

    if comparable and ref.min is not None and ref.max is not None and dtype_family(series) in NUMERIC:
        count, out_share, shown = out_of_range(series, ref.min, ref.max)
        _, limit = checker.rule("out_of_range", name)
        detail = (
            f"{name}: {count} value(s) ({_pct(out_share)}) outside the range of {reference_name} "
            f"[{ref.min:.6g}, {ref.max:.6g}]"
        )
        if shown:
            detail += ", e.g. " + ", ".join(_text(v) for v in shown)
        checker.add("out_of_range", name, _over(out_share, limit), detail, value=out_share, examples=shown)

    if comparable and ref.categories is not None and dtype_family(series) == ref.family:
        count, unseen_share, unseen = out_of_list(series, ref.categories)
        _, limit = checker.rule("unseen_categories", name)
        noun = "category" if len(unseen) == 1 else "categories"
        detail = (
            f"{name}: {count} value(s) ({_pct(unseen_share)}) in {len(unseen)} {noun} "
            f"not seen in {reference_name}"
        )
        if unseen:
            detail += ": " + ", ".join(repr(_text(v)) for v in unseen[:_EXAMPLES])
            if len(unseen) > _EXAMPLES:
                detail += f" and {len(unseen) - _EXAMPLES} more"
        checker.add(
            "unseen_categories", name, _over(unseen_share, limit), detail, value=unseen_share, examples=unseen
        )

    constant = is_constant(series)
    values = hashable(series).dropna().unique()
    detail = (
        f"{name}: a single value ({_text(values[0])!r}) in every non-missing row"
        if constant and len(values)
        else f"{name}: no values at all"
        if constant
        else f"{name}: {distinct(series)} distinct values"
    )
    if constant and ref.n_unique <= 1:
        detail += " (constant in the reference too)"
    checker.add(
        "constant_columns",
        name,
        constant,
        detail,
        value=float(distinct(series)),
        examples=list(values[:1]) if constant else [],
    )


# ------------------------------------------------------------------------------------ entry points
def check_table(
    reference: DataSchema,
    current: pd.DataFrame,
    gates: DataGates,
    *,
    dataset: str,
    reference_name: str = "the reference",
    skip: Sequence[str] = (),
) -> list[DataCheck]:
    """Every schema check of one table against the reference schema (`skip`: columns such as the
    id that no value check applies to; they still count for missing/extra columns)."""
    checker = _Checker(gates, dataset)
    ignored = set(gates.ignore)
    expected = [c for c in reference.columns if c not in ignored]
    actual = [str(c) for c in current.columns if str(c) not in ignored]
    missing = [c for c in expected if c not in actual]
    checker.add(
        "missing_columns",
        None,
        bool(missing),
        f"{len(missing)} column(s) of {reference_name} missing: {', '.join(missing)}"
        if missing
        else f"all {len(expected)} column(s) of {reference_name} present",
        value=float(len(missing)),
        examples=missing,
    )
    extra = [c for c in actual if c not in reference.columns]
    checker.add(
        "extra_columns",
        None,
        bool(extra),
        f"{len(extra)} column(s) not in {reference_name}: {', '.join(extra)}" if extra else "no new columns",
        value=float(len(extra)),
        examples=extra,
    )
    for name in expected:
        if name in actual and name not in skip:
            _column(checker, name, reference.columns[name], current[name], reference_name)

    rows = [c for c in current.columns if str(c) not in ignored and str(c) not in skip]
    table = pd.DataFrame({c: hashable(current[c]) for c in rows}) if rows else current[rows]
    repeats = table.duplicated().to_numpy() if len(current) else np.zeros(0, dtype=bool)
    duplicated = int(repeats.sum())
    share = duplicated / len(current) if len(current) else 0.0
    _, limit = checker.rule("duplicated_rows")
    lines = [int(i) + 1 for i in np.flatnonzero(repeats)[:_EXAMPLES]]  # rows counted from 1
    detail = f"{duplicated} of {len(current)} rows ({_pct(share)}) repeat an earlier row"
    if lines:
        detail += " (rows " + ", ".join(map(str, lines)) + ("...)" if duplicated > len(lines) else ")")
    checker.add("duplicated_rows", None, _over(share, limit), detail, value=share, examples=lines)

    if reference.target_shares is not None and reference.target in current.columns:
        now = current[reference.target].dropna().value_counts(normalize=True)
        shares = {str(plain(k)): float(v) for k, v in now.items()}
        classes = sorted(set(shares) | set(reference.target_shares))
        changes = {k: shares.get(k, 0.0) - reference.target_shares.get(k, 0.0) for k in classes}
        worst = max(classes, key=lambda k: (abs(changes[k]), k)) if classes else None
        _, limit = checker.rule("target_balance")
        if worst is not None:
            checker.add(
                "target_balance",
                reference.target,
                _over(abs(changes[worst]), limit),
                f"{reference.target} = {worst}: {_pct(reference.target_shares.get(worst, 0.0))} -> "
                f"{_pct(shares.get(worst, 0.0))} of rows ({100 * changes[worst]:+.4g} points)",
                value=abs(changes[worst]),
            )
    return checker.rows


def shared_rows(train: pd.DataFrame, holdout: pd.DataFrame, columns: Sequence[str]) -> np.ndarray:
    """Which holdout rows equal some training row on `columns` (a boolean mask)."""
    if not columns or holdout.empty or train.empty:
        return np.zeros(len(holdout), dtype=bool)
    left, right = _comparable(train, holdout, columns)
    keys = pd.util.hash_pandas_object(left, index=False).to_numpy()
    probe = pd.util.hash_pandas_object(right, index=False).to_numpy()
    return np.isin(probe, keys)


def _comparable(
    a: pd.DataFrame, b: pd.DataFrame, columns: Sequence[str]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The same values hash the same whatever the dtype each file was read with: numeric columns
    (on both sides) as float64, everything else as text."""
    out_a, out_b = {}, {}
    for name in columns:
        x, y = a[name], b[name]
        if dtype_family(x) in NUMERIC and dtype_family(y) in NUMERIC:
            out_a[name] = x.to_numpy(dtype=np.float64, na_value=np.nan)
            out_b[name] = y.to_numpy(dtype=np.float64, na_value=np.nan)
        else:
            out_a[name], out_b[name] = x.astype(str).to_numpy(), y.astype(str).to_numpy()
    return pd.DataFrame(out_a), pd.DataFrame(out_b)


def check_leakage(
    train: pd.DataFrame, holdout: pd.DataFrame, gates: DataGates, *, id_column: str | None = None
) -> list[DataCheck]:
    """Holdout rows (all shared columns but the id) or ids that also occur in the training data."""
    checker = _Checker(gates, "holdout")
    ignored = set(gates.ignore) | ({id_column} if id_column else set())
    columns = [c for c in holdout.columns if c in train.columns and c not in ignored]
    mask = shared_rows(train, holdout, columns)
    count, n = int(mask.sum()), len(holdout)
    share = count / n if n else 0.0
    _, limit = checker.rule("leakage")
    examples = [int(i) + 1 for i in np.flatnonzero(mask)[:_EXAMPLES]]  # rows counted from 1
    detail = f"{count} of {n} holdout rows ({_pct(share)}) also in the training data"
    if examples:
        detail += (
            " (holdout rows "
            + ", ".join(str(i) for i in examples)
            + ("...)" if count > len(examples) else ")")
        )
    checker.add("leakage", None, _over(share, limit), detail, value=share, examples=examples)
    if id_column and id_column in train.columns and id_column in holdout.columns:
        shared = holdout[id_column].isin(train[id_column].dropna().unique())
        count = int(shared.sum())
        share = count / n if n else 0.0
        ids = [plain(v) for v in pd.unique(holdout[id_column][shared])[:_EXAMPLES]]
        detail = f"{count} of {n} holdout ids ({_pct(share)}) also in the training data"
        if ids:
            detail += ": " + ", ".join(repr(_text(v)) for v in ids)
        checker.add("leakage", id_column, _over(share, limit), detail, value=share, examples=ids)
    return checker.rows


# ------------------------------------------------------------------------------------------ gates
_RULE_TEXT = {
    "missing_columns": "no reference column missing",
    "extra_columns": "no column beyond the reference",
    "dtype_change": "no dtype change",
    "missing_share": "missing share grows <= {limit} points",
    "out_of_range": "values outside the reference range <= {limit} %",
    "unseen_categories": "unseen categories <= {limit} % of values",
    "constant_columns": "no constant column",
    "duplicated_rows": "duplicated rows <= {limit} %",
    "leakage": "holdout rows/ids in training <= {limit} %",
    "target_balance": "class share changes <= {limit} points",
}


def rule_text(check: str, limit: float | None) -> str:
    return _RULE_TEXT[check].format(limit=f"{100 * limit:.4g}" if limit is not None else "-")


def run_checks(
    reference: DataSchema,
    tables: dict[str, pd.DataFrame],
    gates: DataGates,
    *,
    reference_name: str,
    id_column: str | None = None,
    leakage: tuple[pd.DataFrame, pd.DataFrame] | None = None,
    notes: Sequence[str] = (),
) -> DataChecksReport:
    """Check each named table against the reference schema, and train/holdout leakage when given."""
    checks: list[DataCheck] = []
    if gates.enabled:
        skip = [id_column] if id_column else []
        for dataset, frame in tables.items():
            checks += check_table(
                reference, frame, gates, dataset=dataset, reference_name=reference_name, skip=skip
            )
        if leakage is not None:
            checks += check_leakage(*leakage, gates, id_column=id_column)
    known = set(reference.columns).union(*(map(str, f.columns) for f in tables.values()))
    unknown = [c for c in [*gates.columns, *gates.ignore] if c not in known]
    typos = [f"gates.data names column {c!r}, which no table has (check the spelling)" for c in unknown]
    notes = [*notes, *typos]
    return DataChecksReport(reference=reference_name, checks=checks, notes=notes)
