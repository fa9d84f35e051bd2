"""Drift over files: `compute_drift` where the tables are read from disk. Parquet files are read a
few columns at a time, so peak memory is a small batch of columns, not both whole tables."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from mlops_bot.analysis.drift import (
    ColumnDrift,
    DriftReport,
    Progress,
    column_results,
    compute_drift,
    shared_columns,
    summarise,
)
from mlops_bot.analysis.profile import ReferenceProfile
from mlops_bot.config import DriftSection
from mlops_bot.dataset import read_table
from mlops_bot.errors import DataError


def compute_drift_files(
    reference: str | Path | ReferenceProfile,
    current: str | Path,
    settings: DriftSection | None = None,
    columns: list[str] | None = None,
    *,
    progress: Progress | None = None,
    workers: int = 2,
    batch_columns: int = 4,
) -> DriftReport:
    """`compute_drift` over files. Parquet files are read a few columns at a time, so peak memory
    is a small batch of columns, not both whole tables; CSV files are read whole."""
    settings = settings or DriftSection()
    if not _is_parquet(current) or not (isinstance(reference, ReferenceProfile) or _is_parquet(reference)):
        ref = reference if isinstance(reference, ReferenceProfile) else read_table(reference, "reference")
        return compute_drift(
            ref, read_table(current, "current"), settings, columns, progress=progress, workers=workers
        )
    import pyarrow.parquet as pq

    def names_of(path: str | Path, what: str) -> list[str]:
        try:
            return list(pq.ParquetFile(path).schema_arrow.names)
        except FileNotFoundError:
            raise DataError(f"{what} file {path} does not exist") from None
        except (OSError, ValueError) as exc:
            raise DataError(f"{what} file {path} cannot be read as parquet: {exc}") from None

    def read(path: str | Path, cols: list[str]) -> pd.DataFrame:
        return pq.read_table(path, columns=cols).to_pandas(self_destruct=True, split_blocks=True)

    cur_names = names_of(current, "current")
    ref_names = (
        list(reference.columns)
        if isinstance(reference, ReferenceProfile)
        else names_of(reference, "reference")
    )
    names = shared_columns(ref_names, cur_names, settings, columns)
    results: dict[str, ColumnDrift | str] = {}
    for start in range(0, len(names), batch_columns):
        batch = names[start : start + batch_columns]
        cur = read(current, batch)
        ref = reference if isinstance(reference, ReferenceProfile) else read(reference, batch)
        results |= column_results(ref, cur, batch, settings, progress, workers, start, len(names))
        del cur, ref
    return summarise({n: results[n] for n in names}, settings)


def _is_parquet(path: str | Path | ReferenceProfile) -> bool:
    return isinstance(path, str | Path) and Path(path).suffix.lower() in (".parquet", ".pq")
