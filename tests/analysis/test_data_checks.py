"""Data validation (analysis/data_checks.py, data_schema.py): each check, its default gate, the
per-column overrides, the rows a reviewer reads, and escaping of hostile names and values."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

import gfm
from mlops_bot.analysis.data_checks import DataCheck, check_leakage, check_table, run_checks, shared_rows
from mlops_bot.analysis.data_schema import DataSchema, infer_schema
from mlops_bot.config import DataGates, parse_config
from mlops_bot.errors import ConfigError, DataError
from mlops_bot.pipeline.data_validation import data_gate_results
from mlops_bot.report.data_checks import render_data_checks


def _train(n: int = 400, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "id": np.arange(n),
            "income": rng.normal(50_000, 8_000, n).round(),
            "age": rng.integers(18, 80, n),
            "employment": rng.choice(["salaried", "self_employed", "retired"], n),
            "member": rng.random(n) < 0.3,
            "y": (rng.random(n) < 0.3).astype(int),
        }
    )


def _rows(checks: list[DataCheck], check: str, column: str | None = "*") -> list[DataCheck]:
    return [c for c in checks if c.check == check and (column == "*" or c.column == column)]


def _only(checks: list[DataCheck], check: str, column: str | None = "*") -> DataCheck:
    (row,) = _rows(checks, check, column)
    return row


def test_schema_inference_and_round_trip(tmp_path: Path) -> None:
    frame = _train()
    frame.loc[:9, "income"] = np.nan
    schema = infer_schema(frame, target="y", classification=True)
    income, employment, member, age = (schema.columns[c] for c in ("income", "employment", "member", "age"))
    assert (income.family, income.missing, income.nullable) == ("float", 10, True)
    assert income.min == frame["income"].min() and income.max == frame["income"].max()
    assert income.quantiles["0.5"] == pytest.approx(frame["income"].median())
    assert employment.family == "string" and employment.categories == ["retired", "salaried", "self_employed"]
    assert member.family == "boolean" and member.categories == [False, True]
    assert age.family == "integer" and age.categories is None and not age.nullable
    assert schema.target_shares == pytest.approx(
        {str(k): v for k, v in frame["y"].value_counts(normalize=True).items()}
    )
    path = schema.save(tmp_path / "data_schema.json")
    assert DataSchema.load(path) == schema
    path.write_text('{"schema_version": 7}')
    with pytest.raises(DataError, match="schema_version 7"):
        DataSchema.load(path)


def test_clean_holdout_passes_every_default_gate() -> None:
    train = _train()
    holdout = _train(200, seed=1).assign(id=lambda f: f["id"] + 10_000)
    report = run_checks(
        infer_schema(train, target="y", classification=True),
        {"holdout": holdout},
        DataGates(),
        reference_name="the training data",
        id_column="id",
        leakage=(train, holdout),
    )
    assert [c for c in report.checks if c.status == "fail"] == []
    assert all(g.passed for g in data_gate_results(report.checks))
    assert {g.metric for g in data_gate_results(report.checks)} == {
        "data.dtype_change",
        "data.missing_share",
        "data.unseen_categories",
        "data.leakage",
    }


def test_dtype_change_names_the_values_that_are_not_numbers() -> None:
    train = _train()
    holdout = _train(100, seed=1)
    holdout["income"] = holdout["income"].astype(str)
    holdout.loc[3, "income"] = "54k"
    holdout.loc[7, "income"] = "n/a "
    checks = check_table(infer_schema(train), holdout, DataGates(), dataset="holdout")
    row = _only(checks, "dtype_change", "income")
    assert row.status == "fail" and row.action == "fail"
    assert "income: float64 (float) -> " in row.detail and "(string)" in row.detail
    assert row.examples == ["54k", "n/a "]
    # the range check needs numbers on both sides: skipped, not misreported
    assert _rows(checks, "out_of_range", "income") == []


def test_integer_column_read_as_float_because_of_missing_values_is_no_dtype_change() -> None:
    train = _train()
    holdout = _train(100, seed=1)
    holdout["age"] = holdout["age"].astype(float)
    holdout.loc[0, "age"] = np.nan
    assert (
        _only(
            check_table(infer_schema(train), holdout, DataGates(), dataset="h"), "dtype_change", "age"
        ).status
        == "pass"
    )
    holdout.loc[1, "age"] = 30.5
    assert (
        _only(
            check_table(infer_schema(train), holdout, DataGates(), dataset="h"), "dtype_change", "age"
        ).status
        == "fail"
    )


def test_missing_share_growth_fails_beyond_ten_points_by_default() -> None:
    train = _train(400)
    train.loc[:39, "income"] = np.nan  # 10 % missing in the reference
    holdout = _train(200, seed=1)
    holdout.loc[:59, "income"] = np.nan  # 30 %: +20 points
    holdout.loc[:39, "employment"] = None  # 20 %: +20 points
    holdout.loc[:9, "age"] = np.nan  # 5 %: +5 points
    checks = check_table(infer_schema(train), holdout, DataGates(), dataset="holdout")
    income = _only(checks, "missing_share", "income")
    assert income.status == "fail" and income.value == pytest.approx(0.2)
    assert "10 % -> 30 % missing (60 of 200 rows, +20 points)" in income.detail
    assert _only(checks, "missing_share", "employment").status == "fail"
    assert _only(checks, "missing_share", "age").status == "pass"
    # overridable, globally and per column
    gates = DataGates.model_validate(
        {"missing_share": {"max": 0.25}, "columns": {"employment": {"missing_share": "warn"}}}
    )
    checks = check_table(infer_schema(train), holdout, gates, dataset="holdout")
    assert _only(checks, "missing_share", "income").status == "pass"
    assert _only(checks, "missing_share", "employment").status == "pass"  # 20 <= 25 points
    gates = DataGates.model_validate({"columns": {"employment": {"missing_share": "warn"}}})
    checks = check_table(infer_schema(train), holdout, gates, dataset="holdout")
    assert _only(checks, "missing_share", "employment").status == "warn"
    assert _only(checks, "missing_share", "income").status == "fail"


def test_unseen_categories_fail_above_one_percent_of_values() -> None:
    train = _train()
    holdout = _train(400, seed=1)
    holdout.loc[:2, "employment"] = "contractor"  # 3 of 400 = 0.75 %
    checks = check_table(infer_schema(train), holdout, DataGates(), dataset="holdout")
    row = _only(checks, "unseen_categories", "employment")
    assert row.status == "pass" and row.value == pytest.approx(3 / 400)
    holdout.loc[3:6, "employment"] = "student"  # 7 of 400 = 1.75 %, two new categories
    row = _only(
        check_table(infer_schema(train), holdout, DataGates(), dataset="holdout"),
        "unseen_categories",
        "employment",
    )
    assert row.status == "fail" and row.examples == ["student", "contractor"]
    assert (
        "7 value(s) (1.75 %) in 2 categories not seen in the reference: 'student', 'contractor'" in row.detail
    )


def test_out_of_range_constant_duplicates_and_target_balance_warn_by_default() -> None:
    train = _train()
    holdout = _train(200, seed=1)
    holdout.loc[:4, "age"] = [150, -3, 150, 99, 120]
    holdout["member"] = True
    holdout = pd.concat([holdout, holdout.iloc[:20]], ignore_index=True)
    holdout["y"] = 1
    holdout.loc[[*range(100), *range(200, 220)], "y"] = 0  # the copies stay copies
    checks = check_table(
        infer_schema(train, target="y", classification=True),
        holdout,
        DataGates(),
        dataset="holdout",
        skip=["id"],
    )
    age = _only(checks, "out_of_range", "age")
    assert age.status == "warn" and age.examples == ["150", "120", "-3"]
    assert "outside the range of the reference [18, 79]" in age.detail
    assert _only(checks, "constant_columns", "member").status == "warn"
    duplicated = _only(checks, "duplicated_rows")
    assert duplicated.status == "warn" and duplicated.value == pytest.approx(20 / 220)
    assert "(rows 201, 202, 203...)" in duplicated.detail
    balance = _only(checks, "target_balance")
    assert balance.status == "warn" and balance.column == "y"
    assert not [c for c in checks if c.status == "fail"]
    gates = DataGates.model_validate(
        {"constant_columns": "fail", "out_of_range": {"action": "fail", "max": 0}}
    )
    checks = check_table(infer_schema(train), holdout, gates, dataset="holdout")
    assert _only(checks, "constant_columns", "member").status == "fail"
    assert _only(checks, "out_of_range", "age").status == "fail"


def test_missing_and_extra_columns_ignore_and_off() -> None:
    train = _train()
    holdout = _train(100, seed=1).drop(columns=["age"]).assign(score=1.0)
    checks = check_table(infer_schema(train), holdout, DataGates(), dataset="holdout")
    assert _only(checks, "missing_columns").examples == ["age"]
    assert _only(checks, "extra_columns").examples == ["score"]
    gates = DataGates.model_validate({"ignore": ["age", "score"], "constant_columns": False})
    checks = check_table(infer_schema(train), holdout, gates, dataset="holdout")
    assert (
        _only(checks, "missing_columns").status == "pass" and _only(checks, "extra_columns").status == "pass"
    )
    assert _rows(checks, "constant_columns") == []
    assert (
        run_checks(
            infer_schema(train), {"holdout": holdout}, DataGates(enabled=False), reference_name="r"
        ).checks
        == []
    )
    typo = DataGates.model_validate({"columns": {"incom": {"missing_share": "warn"}}})
    notes = run_checks(infer_schema(train), {"holdout": holdout}, typo, reference_name="r").notes
    assert notes == ["gates.data names column 'incom', which no table has (check the spelling)"]


def test_leakage_by_rows_and_ids_whatever_the_dtypes() -> None:
    train = _train()
    holdout = _train(100, seed=1).assign(id=lambda f: f["id"] + 10_000)
    holdout.iloc[10:14] = train.iloc[[5, 6, 7, 8]].assign(id=lambda f: f["id"] + 50_000).to_numpy()
    holdout = holdout.astype({"age": float})  # read differently, same values
    rows = check_leakage(train, holdout, DataGates(), id_column="id")
    by_rows = _only(rows, "leakage", None)
    assert by_rows.status == "fail" and by_rows.value == pytest.approx(0.04)
    assert (
        "4 of 100 holdout rows (4 %) also in the training data (holdout rows 11, 12, 13...)"
        in by_rows.detail
    )
    assert _only(rows, "leakage", "id").status == "pass"
    holdout.loc[0, "id"] = 3
    ids = _only(check_leakage(train, holdout, DataGates(), id_column="id"), "leakage", "id")
    assert ids.status == "fail" and ids.examples == ["3"]
    assert shared_rows(train, holdout, []).sum() == 0
    tolerant = DataGates.model_validate({"leakage": {"max": 0.05}})
    assert _only(check_leakage(train, holdout, tolerant), "leakage").status == "pass"


def test_gate_rows_name_the_failing_columns_and_values() -> None:
    train = _train()
    holdout = _train(200, seed=1)
    holdout.loc[:49, "employment"] = "contractor"
    checks = check_table(infer_schema(train), holdout, DataGates(), dataset="holdout")
    gates = {g.metric: g for g in data_gate_results(checks)}
    assert "data.out_of_range" not in gates  # warn-only checks never become gate rows
    unseen = gates["data.unseen_categories"]
    assert not unseen.passed and unseen.rule == "unseen categories <= 1 % of values"
    assert "holdout: employment: 50 value(s) (25 %)" in unseen.detail and "'contractor'" in unseen.detail


def test_rendered_rows_escape_hostile_names_and_values() -> None:
    name = "a|b`<img src=x>"
    train = pd.DataFrame({name: ["x", "y"] * 50, "y": [0, 1] * 50})
    holdout = train.copy()
    holdout.iloc[:10, 0] = "<script>alert(1)</script>|**bold**"
    report = run_checks(infer_schema(train), {"holdout": holdout}, DataGates(), reference_name="ref")
    html = gfm.render(render_data_checks(report))
    assert "<script" not in html and "<img" not in html and "<strong>" not in html
    row = next(r for r in gfm.table_rows(html) if "unseen_categories" in r)
    assert len(row) == 7  # nothing in a name or a value broke the table's columns
    assert row[3] == "<code>a|b`&lt;img src=x&gt;</code>"
    assert "&lt;script&gt;alert(1)&lt;/script&gt;|**bold**" in row[6]


def test_config_gates_data_errors_point_at_the_key(tmp_path: Path) -> None:
    text = """model: {name: m, task: classification}
train: {builtin: {estimator: random_forest}}
data: {train: a.csv, holdout: b.csv, target: y}
gates:
  accuracy: {min: 0.5}
  data:
    constant_columns: off
    missing_share: {max: lots}
"""
    with pytest.raises(ConfigError) as error:
        parse_config(yaml.safe_load(text), text=text)
    assert str(error.value).startswith(".github/mlops.yml:8: gates.data.missing_share.max:")
    config = parse_config(yaml.safe_load(text.replace("lots", "0.3")), text=text)
    assert list(config.gates) == ["accuracy"]
    assert config.data_gates.rule("missing_share") == ("fail", 0.3)
    assert config.data_gates.rule("constant_columns") == ("off", None)
    with pytest.raises(ConfigError, match=r"gates\.data\.dtype_change\.action"):
        parse_config(yaml.safe_load(text.replace("lots", "0.3") + "    dtype_change: never\n"))


def test_cli_data_check_against_a_registered_schema(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from mlops_bot.cli import main

    train = _train()
    schema = infer_schema(train).save(tmp_path / "data_schema.json")
    batch = _train(200, seed=1)
    batch.loc[:19, "employment"] = "contractor"
    batch.to_csv(tmp_path / "batch.csv", index=False)
    train.to_csv(tmp_path / "train.csv", index=False)
    args = ["data-check", "--reference", str(schema), "--current", str(tmp_path / "batch.csv")]
    assert main(args) == 0  # the analysis ran; gates only with --exit-code
    out = capsys.readouterr().out
    assert (
        "Checked against the schema data_schema.json." in out
        and "`employment`" in out
        and "contractor" in out
    )
    assert main([*args, "--exit-code"]) == 1
    capsys.readouterr()
    assert main([*args, "--format", "json", "--train", str(tmp_path / "train.csv")]) == 0
    data = json.loads(capsys.readouterr().out)
    assert {c["check"] for c in data["checks"]} >= {"unseen_categories", "leakage", "dtype_change"}
    table = [
        "data-check",
        "--reference",
        str(tmp_path / "train.csv"),
        "--current",
        str(tmp_path / "train.csv"),
    ]
    assert main([*table, "--exit-code"]) == 0  # a table against itself passes every default gate
    assert main(["data-check", "--reference", str(tmp_path / "missing.json"), "--current", "x.csv"]) == 2
