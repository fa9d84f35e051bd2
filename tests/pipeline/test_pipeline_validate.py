"""`mlops-bot validate` end to end on small real data: exit codes 0 / 1 / 2, the output files and
their contract, the user-command contract, and that failures leave nothing half-written."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlops_bot.config import load_config
from mlops_bot.errors import TrainingError
from mlops_bot.pipeline.validate import validate
from validate_project import credit_project, validate_cli


def test_pass_then_worse_model_fails_its_gate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = credit_project(tmp_path)
    assert validate_cli(config, tmp_path / "base") == 0
    out = tmp_path / "base"
    for name in ("report.md", "report.json", "metrics.json", "model.skops", "plots/confusion_matrix.png",
                 "plots/roc_curve.png"):
        assert (out / name).is_file(), name
    report = json.loads((out / "report.json").read_text())
    assert report["model"] == "credit-risk" and report["verdict"] == "pass"
    assert report["metrics"]["accuracy"] == {"base": None, "head": report["metrics"]["accuracy"]["head"],
                                             "diff": None, "ci": None, "lower_is_better": None}
    assert {"metric", "rule", "passed"} <= set(report["gates"][0])
    assert report["reproducibility"]["seed"] == 1 and len(report["reproducibility"]["data"]["train"]) == 64
    packages = set(report["reproducibility"]["packages"])
    assert packages >= {"python", "scikit-learn", "numpy", "pandas", "mlops-bot"}
    assert json.loads((out / "metrics.json").read_text())["accuracy"] == report["metrics"]["accuracy"]["head"]

    # A deliberately worse model on the same holdout: majority-class dummy.
    credit_project(tmp_path,
                   train={"builtin": {"estimator": "dummy", "params": {"strategy": "most_frequent"}}})
    capsys.readouterr()
    code = validate_cli(config, tmp_path / "head", "--base-model", str(out / "model.skops"))
    assert code == 1
    assert "gate(s) failed" in capsys.readouterr().out
    head = json.loads((tmp_path / "head" / "report.json").read_text())
    assert head["verdict"] == "fail"
    failed = {(g["metric"], g["rule"]) for g in head["gates"] if not g["passed"]}
    assert ("roc_auc", ">= 0.6") in failed and ("roc_auc", "significant drop <= 0") in failed
    roc = head["metrics"]["roc_auc"]
    assert roc["head"] == pytest.approx(0.5) and roc["diff"] == pytest.approx(roc["head"] - roc["base"])
    assert roc["ci"][0] <= roc["diff"] <= roc["ci"][1] and roc["ci"][1] < 0
    markdown = (tmp_path / "head" / "report.md").read_text()
    assert markdown.startswith("<!-- mlops-bot:sticky workflow=mlops-pr model=credit-risk -->")
    assert "| ❌ | roc_auc | `>= 0.6` |" in markdown


def test_base_metrics_file_gives_diffs_without_ci(tmp_path: Path) -> None:
    config = credit_project(tmp_path)
    base = tmp_path / "base.json"
    base.write_text(json.dumps({"accuracy": 0.99, "roc_auc": 0.5}))
    assert validate_cli(config, tmp_path / "out", "--base-metrics", str(base)) == 1  # accuracy dropped > 0.02
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["baseline"]["source"] == "metrics_file"
    assert report["metrics"]["accuracy"]["base"] == 0.99 and report["metrics"]["accuracy"]["ci"] is None
    ci_gate = next(g for g in report["gates"] if g["rule"].startswith("significant"))
    assert ci_gate["status"] == "skipped"


def test_base_metrics_file_with_a_non_number_is_a_user_error(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    config = credit_project(tmp_path)
    base = tmp_path / "base.json"
    base.write_text(json.dumps({"accuracy": "0.99", "roc_auc": 0.5}))
    assert validate_cli(config, tmp_path / "out", "--base-metrics", str(base)) == 2
    assert "metric 'accuracy' is '0.99'; expected a finite number" in capsys.readouterr().err


def test_regression_task(tmp_path: Path) -> None:
    config = credit_project(
        tmp_path,
        model={"name": "income", "task": "regression"},
        train={"builtin": {"estimator": "ridge"}},
        data={"train": "data/train.csv", "holdout": "data/holdout.csv", "target": "income",
              "features": ["age", "debt_ratio", "employment", "late_payments"]},
        gates={"r2": {"min": 0.05}, "rmse": {"max": 1e9}},
    )
    assert validate_cli(config, tmp_path / "out") == 0
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert set(report["metrics"]) >= {"rmse", "mae", "r2"}
    assert (tmp_path / "out" / "plots" / "residuals.png").is_file()


@pytest.mark.parametrize("breakage", ["missing_column", "nan_target", "empty", "unreadable", "missing_file"])
def test_bad_data_exits_2_and_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                             breakage: str) -> None:
    config = credit_project(tmp_path)
    holdout = tmp_path / "data" / "holdout.csv"
    frame = pd.read_csv(holdout)
    if breakage == "missing_column":
        frame.drop(columns=["income"]).to_csv(holdout, index=False)
        expect = "income"
    elif breakage == "nan_target":
        frame.loc[3, "default"] = np.nan
        frame.to_csv(holdout, index=False)
        expect = "missing value"
    elif breakage == "empty":
        holdout.write_text("")
        expect = "empty"
    elif breakage == "unreadable":
        holdout.write_bytes(b'"unterminated,\x00\n1,2,3\n"a","b')
        expect = "holdout"
    else:
        holdout.unlink()
        expect = "does not exist"
    assert validate_cli(config, tmp_path / "out") == 2
    err = capsys.readouterr().err
    assert err.startswith("mlops-bot: error:") and expect in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()
    assert not any(p.name.startswith(".out.") for p in tmp_path.iterdir())  # no staging left behind


def test_failed_run_keeps_the_previous_report_intact(tmp_path: Path) -> None:
    config = credit_project(tmp_path)
    assert validate_cli(config, tmp_path / "out") == 0
    before = (tmp_path / "out" / "report.json").read_text()
    (tmp_path / "data" / "train.csv").write_text("")
    assert validate_cli(config, tmp_path / "out") == 2
    assert (tmp_path / "out" / "report.json").read_text() == before


PREDICT_SCRIPT = """\
import os, pandas as pd
h = pd.read_csv(os.environ["MLOPS_HOLDOUT_PATH"])
p = (h["debt_ratio"] / h["debt_ratio"].max()).clip(0.01, 0.99)
pd.DataFrame({"applicant_id": h["applicant_id"][::-1], "prediction": (p > 0.5).astype(int)[::-1],
              "proba_0": (1 - p)[::-1], "proba_1": p[::-1]}).to_csv(
    os.environ["MLOPS_PREDICTIONS_PATH"], index=False)
print("seed", os.environ["MLOPS_SEED"])
"""


def test_user_command_predictions_contract(tmp_path: Path) -> None:
    (tmp_path / "predict.py").write_text(PREDICT_SCRIPT)
    config_path = credit_project(tmp_path,
                                 train={"command": "python predict.py", "predictions_path": "preds.csv"},
                                 gates={"accuracy": {"min": 0.0}})
    run = validate(load_config(config_path), tmp_path / "out")
    assert run.exit_code == 0
    assert "seed 1" in (tmp_path / "out" / "train.log").read_text()
    # Rows were written in reverse order: alignment by id must undo it.
    holdout = pd.read_csv(tmp_path / "data" / "holdout.csv")
    p = (holdout["debt_ratio"] / holdout["debt_ratio"].max()).clip(0.01, 0.99)
    expected = float(((p > 0.5).astype(int) == holdout["default"]).mean())
    assert run.report.metrics["accuracy"].head == pytest.approx(expected)
    assert run.report.metrics["roc_auc"].head is not None
    assert not (tmp_path / "out" / "model.skops").exists()


def test_failing_command_exits_2_with_log(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "train.py").write_text("import sys\nprint('loading data')\nsys.exit('bad column: income')\n")
    config = credit_project(tmp_path, train={"command": "python train.py", "model_path": "model.skops"})
    assert validate_cli(config, tmp_path / "out") == 2
    err = capsys.readouterr().err
    assert "exited with code 1" in err and "bad column: income" in err
    assert not (tmp_path / "out").exists()


def test_command_that_writes_nothing_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "model.skops").write_bytes(b"stale from an older run")
    config = credit_project(tmp_path, train={"command": "python -c pass", "model_path": "model.skops"})
    with pytest.raises(TrainingError, match="wrote neither"):
        validate(load_config(config), tmp_path / "out")


def test_timeout_kills_the_process_group(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    marker = tmp_path / "survivor"
    (tmp_path / "grandchild.py").write_text(f"import time\ntime.sleep(1)\nopen({str(marker)!r}, 'w')\n")
    (tmp_path / "slow.py").write_text(
        "import subprocess, sys, time\n"
        "subprocess.Popen([sys.executable, 'grandchild.py'])\n"
        "time.sleep(60)\n")
    config = credit_project(tmp_path,
                            train={"command": "python slow.py", "model_path": "m.skops", "timeout": "1s"})
    started = time.monotonic()
    assert validate_cli(config, tmp_path / "out") == 2
    assert time.monotonic() - started < 30
    assert "timed out after 1s" in capsys.readouterr().err
    time.sleep(2.0)  # the grandchild would have written the marker by now if it had survived
    assert not marker.exists()


def test_unknown_estimator_is_a_config_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = credit_project(tmp_path, train={"builtin": {"estimator": "os.system"}})
    assert validate_cli(config, tmp_path / "out") == 2
    assert "train.builtin.estimator" in capsys.readouterr().err
