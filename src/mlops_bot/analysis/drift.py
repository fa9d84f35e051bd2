"""Data drift between a reference and a current table, per column and for the dataset.

Method selection, thresholds, column types and the dataset-drift rule are Evidently 0.7's
DataDriftPreset defaults (REFERENCE.md section 3), so our decisions are the ones its users know.
The work per column is one sort (numerical) or one factorize (categorical); columns run on a small
thread pool because numpy releases the GIL while sorting. The reference may be a DataFrame or a
`ReferenceProfile` (see profile.py and docs/drift.md for what is exact from a profile)."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, Field

from mlops_bot.analysis import drift_methods as dm
from mlops_bot.analysis.column_types import ColumnType, infer_column_type
from mlops_bot.analysis.correction import adjust_p_values
from mlops_bot.analysis.drift_reference import (
    ReferenceColumn,
    category_counts,
    clean_categorical,
    clean_numeric,
    count_table,
    reference_column_from_series,
    sorted_counts,
    sorted_unique,
)
from mlops_bot.analysis.json_numbers import nan_to_none
from mlops_bot.analysis.text_drift import (
    EMBEDDING_THRESHOLD,
    embedding_distance,
    embedding_matrix,
    is_embedding,
    text_drift,
)
from mlops_bot.config import ColumnDriftOverride, DriftSection
from mlops_bot.errors import DataError

if TYPE_CHECKING:
    from mlops_bot.analysis.profile import ReferenceProfile

Progress = Callable[[int, int, str], None]
"""progress(done, total, column): called after each column, for a terminal progress line."""


class ColumnDrift(BaseModel):
    """The drift verdict for one column. `score` is a p-value for tests, a distance otherwise."""

    name: str
    type: Literal["numerical", "categorical", "text", "embedding"]
    method: dm.Method
    score: float
    threshold: float
    drifted: bool
    raw_score: float | None = Field(default=None, description="p-value before multiple-testing correction")
    psi_flavour: dm.PsiFlavour | None = None
    n_reference: int
    n_current: int
    approximate: bool = Field(default=False, description="computed from a profile's sample, not exact")
    top_words: dict[str, list[str]] | None = Field(
        default=None, description="text columns: words that most separate current from reference"
    )

    @property
    def is_p_value(self) -> bool:
        return self.method in dm.P_VALUE_METHODS

    def strength(self) -> float:
        """How strongly the column drifted, comparable across methods: score/threshold for
        distances, threshold/p for tests (higher = more drift)."""
        if self.is_p_value:
            return self.threshold / max(self.score, 1e-300)
        return self.score / self.threshold if self.threshold > 0 else float("inf")


class DriftReport(BaseModel):
    """Per-column verdicts and the dataset verdict (share of drifted columns >= share threshold)."""

    dataset_drift: bool
    drift_share: float
    share_threshold: float
    columns: dict[str, ColumnDrift]
    skipped: dict[str, str] = Field(default_factory=dict, description="column -> why it was not checked")
    correction: str = "none"
    psi_flavour: dm.PsiFlavour = "evidently"

    @property
    def n_drifted(self) -> int:
        return sum(c.drifted for c in self.columns.values())

    def ranked(self) -> list[ColumnDrift]:
        """Drifted columns first, then by drift strength."""
        return sorted(self.columns.values(), key=lambda c: (not c.drifted, -c.strength(), c.name))

    def to_json_dict(self) -> dict[str, Any]:
        """The `mlops-bot drift` JSON: stable keys, plain floats (NaN becomes null)."""
        columns: dict[str, Any] = {}
        for name, col in self.columns.items():
            entry: dict[str, Any] = {
                "type": col.type,
                "method": col.method,
                "score": nan_to_none(col.score),
                "threshold": col.threshold,
                "drifted": col.drifted,
            }
            if col.raw_score is not None:
                entry["raw_score"] = nan_to_none(col.raw_score)
            if col.psi_flavour is not None:
                entry["psi_flavour"] = col.psi_flavour
            if col.approximate:
                entry["approximate"] = True
            if col.top_words is not None:
                entry["top_words"] = col.top_words
            columns[name] = entry
        return {
            "dataset_drift": self.dataset_drift,
            "drift_share": self.drift_share,
            "share_threshold": self.share_threshold,
            "number_of_columns": len(self.columns),
            "number_of_drifted_columns": self.n_drifted,
            "correction": self.correction,
            "columns": columns,
            "skipped": dict(self.skipped),
        }

    @classmethod
    def from_json_dict(cls, data: dict[str, Any]) -> DriftReport:
        """Back from `to_json_dict` (report.json read as data): per-column row counts are not in
        that JSON and read 0, a null score (NaN) is NaN again. Anything else that does not fit the
        model raises ValueError (pydantic's ValidationError is one)."""
        columns = data.get("columns")
        if not isinstance(columns, dict):
            raise ValueError("drift.columns: expected an object")
        rows: dict[str, ColumnDrift] = {}
        for name, entry in columns.items():
            if not isinstance(entry, dict):
                raise ValueError(f"drift.columns.{name}: expected an object")
            score = entry.get("score")
            rows[str(name)] = ColumnDrift.model_validate(
                {**entry, "name": str(name), "n_reference": 0, "n_current": 0,
                 "score": float("nan") if score is None else score}
            )
        return cls.model_validate({
            "dataset_drift": data.get("dataset_drift"),
            "drift_share": data.get("drift_share"),
            "share_threshold": data.get("share_threshold"),
            "correction": data.get("correction", "none"),
            "skipped": data.get("skipped") or {},
            "columns": rows,
        })




# ------------------------------------------------------------------------------------ the column
def column_drift(
    name: str,
    kind: Literal["numerical", "categorical"],
    reference: ReferenceColumn,
    current: pd.Series,
    override: ColumnDriftOverride | None = None,
    psi_flavour: dm.PsiFlavour = "evidently",
) -> ColumnDrift | str:
    """Drift of one column, or the reason it cannot be checked."""
    if reference.n == 0:
        return "empty in the reference after dropping NaN and infinite values"
    override = override or ColumnDriftOverride()
    approximate = False
    if kind == "numerical":
        cur_values = clean_numeric(current)
        n_cur = cur_values.size
        if n_cur == 0:
            return "empty in the current data after dropping NaN and infinite values"
        ref_values = reference.values
        if ref_values is None:
            return "the reference profile holds no values for this numerical column"
        counts: dm.Counts | None = None
        if reference.value_counts is not None:
            counts = count_table(reference.value_counts, sorted_counts(cur_values))
            n_unique = len(counts.keys)
        elif reference.n_unique > 5:
            n_unique = reference.n_unique  # the union has at least as many; only "> 5" matters
        else:
            n_unique = int(np.union1d(np.unique(ref_values), sorted_unique(cur_values)).size)
    else:
        cur_clean = clean_categorical(current)
        n_cur = len(cur_clean)
        if n_cur == 0:
            return "empty in the current data after dropping NaN values"
        if reference.value_counts is None:
            return "the reference profile holds no category counts for this column"
        counts = count_table(reference.value_counts, category_counts(cur_clean))
        n_unique = len(counts.keys)
        approximate = not reference.counts_exact
        ref_values = cur_values = None

    method: dm.Method
    if override.method is not None:
        method = override.method
    elif reference.n <= 1000:
        method = "ks" if kind == "numerical" and n_unique > 5 else "chisquare" if n_unique > 2 else "z"
    else:
        method = "wasserstein" if kind == "numerical" and n_unique > 5 else "jensenshannon"
    threshold = override.threshold if override.threshold is not None else dm.DEFAULT_THRESHOLDS[method]

    def need_counts() -> dm.Counts:
        nonlocal approximate
        if counts is not None:
            return counts
        assert ref_values is not None and cur_values is not None
        approximate = approximate or not reference.values_exact
        return dm.counts_from_sorted(ref_values, cur_values)

    def need_values() -> tuple[np.ndarray, np.ndarray]:
        nonlocal approximate
        if ref_values is None or cur_values is None:
            raise DataError(f"column {name!r}: method {method!r} needs numerical values")
        approximate = approximate or not reference.values_exact
        return ref_values, cur_values

    if method == "ks":
        score = dm.ks(*need_values())
    elif method == "wasserstein":
        ref_v, cur_v = need_values()
        std = reference.std if reference.std is not None else float(np.std(ref_v))
        score = dm.wasserstein_normed(ref_v, cur_v, std)
    elif method == "chisquare":
        score = dm.chisquare(need_counts())
    elif method == "z":
        score = dm.z(need_counts())
    elif method == "psi" and psi_flavour == "classic":
        if kind == "numerical":
            score = dm.psi_classic_numerical(*need_values())
        else:
            score = dm.psi_classic_counts(need_counts())
    else:  # jensenshannon, psi (evidently)
        fill = method == "psi"
        if kind == "numerical" and reference.n_unique > 20:
            ref_v, cur_v = need_values()
            ref_pct, cur_pct = dm.binned_shares(ref_v, cur_v, None, reference.n_unique, True, fill)
        else:
            ref_pct, cur_pct = dm.binned_shares(None, None, need_counts(), reference.n_unique, False, fill)
        if method == "jensenshannon":
            score = dm.jensenshannon(ref_pct, cur_pct)
        else:
            score = dm.psi_evidently(ref_pct, cur_pct)
    return ColumnDrift(
        name=name,
        type=kind,
        method=method,
        score=score,
        threshold=threshold,
        drifted=dm.is_drift(method, score, threshold),
        psi_flavour=psi_flavour if method == "psi" else None,
        n_reference=reference.n,
        n_current=n_cur,
        approximate=approximate,
    )


def text_column_drift(name: str, reference: pd.Series, current: pd.Series,
                      override: ColumnDriftOverride | None = None) -> ColumnDrift | str:
    """Evidently's text content drift (domain classifier), with the separating words."""
    ref, cur = reference.dropna(), current.dropna()
    if len(ref) == 0 or len(cur) == 0:
        return "text column empty in the reference or the current data"
    threshold = override.threshold if override is not None else None
    try:
        found = text_drift(ref, cur, threshold)
    except ValueError as exc:  # e.g. nothing left after stop words
        return f"text column: the domain classifier could not be fitted ({exc})"
    return ColumnDrift(
        name=name, type="text", method=found.method, score=found.score,
        threshold=found.threshold, drifted=found.drifted, n_reference=len(ref), n_current=len(cur),
        top_words={"current": found.current_words, "reference": found.reference_words},
    )


def embedding_column_drift(name: str, reference: pd.Series, current: pd.Series,
                           override: ColumnDriftOverride | None = None) -> ColumnDrift | str:
    """Distance between the mean embedding vectors (Evidently's `distance()` defaults)."""
    ref, cur = embedding_matrix(reference), embedding_matrix(current)
    if len(ref) == 0 or len(cur) == 0:
        return "embedding column empty in the reference or the current data"
    threshold = EMBEDDING_THRESHOLD
    if override is not None and override.threshold is not None:
        threshold = override.threshold
    score = embedding_distance(ref, cur)
    return ColumnDrift(
        name=name, type="embedding", method="embedding_distance", score=score, threshold=threshold,
        drifted=dm.is_drift("embedding_distance", score, threshold), n_reference=len(ref), n_current=len(cur),
    )


# ----------------------------------------------------------------------------------- the dataset
def shared_columns(reference: list[Any], current: list[Any], settings: DriftSection,
                   columns: list[str] | None) -> list[Any]:
    """The columns to compare: `columns` when given (each must be in both tables), else every
    column the two tables share minus `ignore`. Comparing nothing is an error, not "no drift"."""
    if columns is not None:
        missing = [c for c in columns if c not in current or c not in reference]
        if missing:
            listed = ", ".join(map(str, missing))
            raise DataError(f"drift: column(s) {listed} not in both the reference and the current data")
        return list(columns)
    in_reference = set(reference)
    names = [c for c in current if c in in_reference and c not in settings.ignore]
    if not names:
        ref_list, cur_list = ", ".join(map(str, reference[:10])), ", ".join(map(str, current[:10]))
        raise DataError(
            "drift: the reference and the current data share no columns to compare "
            f"(reference: {ref_list}; current: {cur_list})"
        )
    return names


def compute_drift(
    reference: pd.DataFrame | ReferenceProfile,
    current: pd.DataFrame,
    settings: DriftSection | None = None,
    columns: list[str] | None = None,
    *,
    progress: Progress | None = None,
    workers: int = 2,
) -> DriftReport:
    """Drift of every shared column (or `columns`), and the dataset verdict.

    Column types are inferred on the current data (as Evidently does) unless overridden in
    settings; text, datetime and all-null columns are reported in `skipped`."""

    settings = settings or DriftSection()
    ref_columns = list(reference.columns)
    names = shared_columns(ref_columns, list(current.columns), settings, columns)

    results = column_results(reference, current, names, settings, progress, workers, 0, len(names))
    return summarise(results, settings)


def column_results(
    reference: pd.DataFrame | ReferenceProfile,
    current: pd.DataFrame,
    names: list[Any],
    settings: DriftSection,
    progress: Progress | None,
    workers: int,
    done_before: int,
    total: int,
) -> dict[str, ColumnDrift | str]:
    from mlops_bot.analysis.profile import ReferenceProfile

    def one(name: Any) -> ColumnDrift | str:
        override = settings.columns.get(str(name))
        kind: ColumnType = override.type if override and override.type else infer_column_type(current[name])
        if kind == "text" or (kind == "unknown" and is_embedding(current[name])):
            if isinstance(reference, ReferenceProfile):
                what = "text" if kind == "text" else "embedding"
                return f"{what} column: needs the reference rows, not a profile"
            if kind == "text":
                return text_column_drift(str(name), reference[name], current[name], override)
            return embedding_column_drift(str(name), reference[name], current[name], override)
        if kind == "unknown":
            return f"unsupported or all-null column (dtype {current[name].dtype}); not checked"
        if isinstance(reference, ReferenceProfile):
            ref_col = reference.reference_column(str(name), kind)
        else:
            ref_col = reference_column_from_series(reference[name], kind)
        return column_drift(str(name), kind, ref_col, current[name], override, settings.psi_flavour)

    results: dict[str, ColumnDrift | str] = {}
    if workers > 1 and len(names) > 1:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            for done, (name, result) in enumerate(zip(names, pool.map(one, names), strict=True), 1):
                results[str(name)] = result
                if progress:
                    progress(done_before + done, total, str(name))
    else:
        for done, name in enumerate(names, 1):
            results[str(name)] = one(name)
            if progress:
                progress(done_before + done, total, str(name))
    return results


def summarise(results: dict[str, ColumnDrift | str], settings: DriftSection) -> DriftReport:
    """Correction across the tested columns, then the dataset verdict."""
    checked = {n: r for n, r in results.items() if isinstance(r, ColumnDrift)}
    skipped = {n: r for n, r in results.items() if isinstance(r, str)}
    checked = _apply_correction(checked, settings.correction)
    n_drifted = sum(c.drifted for c in checked.values())
    share = n_drifted / len(checked) if checked else 0.0
    return DriftReport(
        dataset_drift=bool(checked) and share >= settings.drift_share,
        drift_share=share,
        share_threshold=settings.drift_share,
        columns=checked,
        skipped=skipped,
        correction=settings.correction,
        psi_flavour=settings.psi_flavour,
    )



def _apply_correction(columns: dict[str, ColumnDrift], correction: str) -> dict[str, ColumnDrift]:
    """Adjust the p-values of the test columns together; distances are left alone."""
    if correction == "none":
        return columns
    tested = [n for n, c in columns.items() if c.is_p_value]
    adjusted = adjust_p_values([columns[n].score for n in tested], correction)  # type: ignore[arg-type]
    result = dict(columns)
    for name, p in zip(tested, adjusted, strict=True):
        col = columns[name]
        result[name] = col.model_copy(
            update={"raw_score": col.score, "score": p, "drifted": dm.is_drift(col.method, p, col.threshold)}
        )
    return result
