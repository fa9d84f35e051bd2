"""Reading tabular data files (CSV or Parquet) with errors a person can act on."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from mlops_bot.errors import DataError

SUFFIXES = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}


def read_table(path: str | Path, what: str = "data") -> pd.DataFrame:
    """Load a CSV or Parquet file. Refuses missing, unreadable, unknown-format and empty files."""
    path = Path(path)
    kind = SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise DataError(f"{what} file {path}: unsupported format {path.suffix!r} (use .csv or .parquet)")
    if not path.is_file():
        raise DataError(f"{what} file {path} does not exist")
    try:
        frame = pd.read_csv(path) if kind == "csv" else pd.read_parquet(path)
    except pd.errors.EmptyDataError:
        raise DataError(f"{what} file {path} is empty") from None
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise DataError(f"{what} file {path} cannot be read as {kind}: {exc}") from None
    if frame.empty:
        raise DataError(f"{what} file {path} has no rows")
    return frame


def require_columns(frame: pd.DataFrame, columns: Iterable[str], what: str) -> None:
    """Fail with the list of missing columns and the ones that exist."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        have = ", ".join(map(str, frame.columns[:20]))
        raise DataError(f"{what} lacks column(s) {', '.join(missing)}; it has: {have}")


def write_table(frame: pd.DataFrame, path: str | Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if SUFFIXES.get(path.suffix.lower()) == "parquet":
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False)
