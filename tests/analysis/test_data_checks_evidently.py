"""Our data-check numbers against Evidently 0.7's own metrics, run in its venv (`make evidently`):
MissingValueCount, OutRangeValueCount, OutListValueCount, ConstantColumnsCount and
DuplicatedRowCount on generated tables with NaN, None, infinities, new categories, constant and
duplicated data. Counts equal exactly, shares to 1e-12."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from analysis_anchors import available, run_evidently_data
from mlops_bot.analysis.data_checks import check_table, is_constant, missing_share, out_of_list, out_of_range
from mlops_bot.analysis.data_schema import infer_schema
from mlops_bot.config import DataGates

pytestmark = pytest.mark.skipif(
    not available(), reason=".venv-evidently missing: run `make evidently` (CI builds it)"
)

NUMERIC = ["income", "age", "score"]
CATEGORICAL = ["city", "member"]


def _tables(seed: int, n_ref: int, n_cur: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)

    def table(n: int, shift: float) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "income": rng.normal(50 + 20 * shift, 10, n),
                "age": rng.integers(18, 80 + int(30 * shift), n).astype(float),
                "score": rng.choice([0.0, 1.0, 2.5], n),
                "city": rng.choice(["a", "b", "c"] + (["new", "newer"] if shift else []), n),
                "member": rng.random(n) < 0.3,
                "constant": np.full(n, 7.0),
            }
        )

    ref, cur = table(n_ref, 0.0), table(n_cur, 1.0)
    cur.loc[rng.choice(n_cur, n_cur // 7, replace=False), "income"] = np.nan
    cur.loc[rng.choice(n_cur, 5, replace=False), "income"] = np.inf
    cur.loc[rng.choice(n_cur, 3, replace=False), "age"] = -np.inf
    cur["city"] = cur["city"].astype(object)
    cur.loc[rng.choice(n_cur, n_cur // 9, replace=False), "city"] = None
    cur = pd.concat([cur, cur.iloc[: n_cur // 10]], ignore_index=True)  # duplicated rows
    return ref, cur


def _ours(reference: pd.DataFrame, current: pd.DataFrame) -> dict[str, Any]:
    schema = infer_schema(reference)
    out: dict[str, Any] = {"missing": {}, "out_range": {}, "out_list": {}}
    for name in current.columns:
        count, share = missing_share(current[name])
        out["missing"][name] = [count, share]
    for name in NUMERIC:
        col = schema.columns[name]
        assert col.min is not None and col.max is not None
        count, share, _ = out_of_range(current[name], col.min, col.max)
        out["out_range"][name] = [count, share]
    for name in CATEGORICAL:
        categories = schema.columns[name].categories
        assert categories is not None
        count, share, _ = out_of_list(current[name], categories)
        out["out_list"][name] = [count, share]
    out["constant_columns"] = sum(is_constant(current[c]) for c in current.columns)
    checks = check_table(schema, current, DataGates(), dataset="current")
    (duplicated,) = [c for c in checks if c.check == "duplicated_rows"]
    assert duplicated.value is not None
    out["duplicated_rows"] = round(duplicated.value * len(current))
    return out


def _spec(reference: pd.DataFrame) -> dict[str, Any]:
    schema = infer_schema(reference)
    return {
        "missing": list(reference.columns),
        "out_range": {n: [schema.columns[n].min, schema.columns[n].max] for n in NUMERIC},
        "out_list": {n: schema.columns[n].categories for n in CATEGORICAL},
        "numerical": [*NUMERIC, "constant"],
        "categorical": CATEGORICAL,
    }


def test_data_checks_equal_evidently(tmp_path: Path) -> None:
    cases = [
        _tables(seed, n_ref, n_cur) for seed, n_ref, n_cur in ((0, 300, 200), (1, 2000, 1500), (2, 50, 40))
    ]
    theirs = run_evidently_data([(cur, _spec(ref)) for ref, cur in cases], tmp_path)
    for (ref, cur), expected in zip(cases, theirs, strict=True):
        ours = _ours(ref, cur)
        for kind in ("missing", "out_range", "out_list"):
            assert set(ours[kind]) == set(expected[kind])
            for column, (count, share) in expected[kind].items():
                assert ours[kind][column][0] == count, (kind, column)
                assert ours[kind][column][1] == pytest.approx(share, rel=1e-12, abs=1e-15), (kind, column)
        assert ours["constant_columns"] == expected["constant_columns"]
        assert ours["duplicated_rows"] == expected["duplicated_rows"]
    # the generated data exercises every check (no vacuous equality)
    ours = _ours(*cases[0])
    assert ours["missing"]["income"][0] > 0 and ours["missing"]["city"][0] > 0
    assert ours["out_range"]["income"][0] > 0 and ours["out_range"]["age"][0] > 0
    assert ours["out_list"]["city"][0] > 0 and ours["constant_columns"] == 1 and ours["duplicated_rows"] > 0
