"""Which columns drift compares: comparing nothing must be an error, never a silent 'no drift'."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlops_bot.analysis.drift import compute_drift
from mlops_bot.analysis.drift_files import compute_drift_files
from mlops_bot.cli import main
from mlops_bot.config import DriftSection
from mlops_bot.errors import DataError


def _frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(1)
    ref = pd.DataFrame({"a": rng.normal(size=200), "b": rng.integers(0, 3, 200)})
    cur = pd.DataFrame({"x": rng.normal(size=200), "y": rng.integers(0, 3, 200)})
    return ref, cur


def test_no_shared_columns_is_a_data_error_naming_both_sides() -> None:
    ref, cur = _frames()
    with pytest.raises(DataError, match=r"share no columns.*reference: a, b; current: x, y"):
        compute_drift(ref, cur)


def test_everything_ignored_is_a_data_error() -> None:
    ref, _ = _frames()
    with pytest.raises(DataError, match="share no columns"):
        compute_drift(ref, ref.copy(), DriftSection(ignore=["a", "b"]))


def test_files_path_refuses_too(tmp_path: Path) -> None:
    ref, cur = _frames()
    ref.to_parquet(tmp_path / "r.parquet")
    cur.to_parquet(tmp_path / "c.parquet")
    with pytest.raises(DataError, match="share no columns"):
        compute_drift_files(tmp_path / "r.parquet", tmp_path / "c.parquet")


def test_cli_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ref, cur = _frames()
    ref.to_csv(tmp_path / "r.csv", index=False)
    cur.to_csv(tmp_path / "c.csv", index=False)
    assert main(["drift", "--reference", str(tmp_path / "r.csv"), "--current", str(tmp_path / "c.csv")]) == 2
    assert "share no columns" in capsys.readouterr().err


def test_shared_columns_keep_current_order() -> None:
    ref, _ = _frames()
    report = compute_drift(ref, ref[["b", "a"]].copy())
    assert list(report.to_json_dict()["columns"]) == ["b", "a"]
