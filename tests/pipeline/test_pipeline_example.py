"""The shipped example: its own model passes against its production metrics, a deliberately worse
model (a depth-1 tree, chosen through the example's train.py) fails a named gate with exit code 1."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from mlops_bot.cli import main

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "credit-risk"


@pytest.mark.slow
def test_example_passes_and_worse_model_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    repo = tmp_path / "credit-risk"
    shutil.copytree(EXAMPLE, repo, ignore=shutil.ignore_patterns("out", "model.skops", "__pycache__"))
    config = str(repo / ".github" / "mlops.yml")

    monkeypatch.delenv("CREDIT_RISK_MODEL", raising=False)
    assert main(["validate", "--config", config, "--output", str(tmp_path / "good"), "--quiet"]) == 0
    good = json.loads((tmp_path / "good" / "report.json").read_text())
    assert good["baseline"]["source"] == "metrics_file"
    assert good["metrics"]["roc_auc"]["diff"] == pytest.approx(0.0, abs=1e-9)  # same model as production

    monkeypatch.setenv("CREDIT_RISK_MODEL", "shallow_tree")
    capsys.readouterr()
    assert main(["validate", "--config", config, "--output", str(tmp_path / "worse"), "--quiet"]) == 1
    assert "roc_auc" in capsys.readouterr().out
    worse = json.loads((tmp_path / "worse" / "report.json").read_text())
    failed = {(g["metric"], g["rule"]) for g in worse["gates"] if not g["passed"]}
    assert ("roc_auc", ">= 0.7") in failed and ("accuracy", "drop <= 0.02") in failed
    assert "| ❌ | roc_auc | `>= 0.7` |" in (tmp_path / "worse" / "report.md").read_text()
