"""The retraining run opens a real PR: branch pushed to a bare origin, config pointer rewritten."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlops_bot.config import load_config
from mlops_bot.errors import ConfigError, DataError
from mlops_bot.forge.local import LocalForge
from mlops_bot.monitor.feedback import attach_labels
from mlops_bot.monitor.log import PredictionLog, read_predictions
from mlops_bot.monitor.retrain import run_retrain, set_yaml_scalar
from monitor_project import Project, population, run


def test_set_yaml_scalar_keeps_comments() -> None:
    text = "# top\ndata:\n  train: a.csv  # pointer\n  holdout: b.csv\n"
    assert set_yaml_scalar(text, ("data", "train"), "x/new.csv") == (
        "# top\ndata:\n  train: x/new.csv  # pointer\n  holdout: b.csv\n"
    )
    with pytest.raises(ConfigError, match="key not found"):
        set_yaml_scalar(text, ("data", "nope"), "x")


def test_retrain_from_file_opens_pr(project: Project, tmp_path: Path) -> None:
    forge = LocalForge(tmp_path / "forge", repo="o/credit")
    fresh = population(np.random.default_rng(9), 300, shift=1.0)
    fresh.to_csv(tmp_path / "fresh.csv", index=False)
    head_before = run(project.repo, "rev-parse", "HEAD")
    result = run_retrain(project.repo, forge, stamp="20260101T000000Z", data=tmp_path / "fresh.csv",
                         reason="input drift", issue=7)
    assert result.branch == "mlops-retrain/credit/20260101T000000Z"
    assert (result.rows, result.new_rows) == (700, 300)
    assert result.metrics["accuracy"] is not None and result.metrics["accuracy"] > 0.8
    pr = forge.get_pull_request(result.pull_request)
    assert (pr.head_ref, pr.base_ref, pr.state) == (result.branch, "main", "open")
    assert "#7" in pr.body and "input drift" in pr.body
    # The branch is on the origin, with the new data and the rewritten pointer; comments survive.
    sha = run(project.origin, "rev-parse", f"refs/heads/{result.branch}").strip()
    assert pr.head_sha == sha
    config_text = run(project.origin, "show", f"{sha}:.github/mlops.yml")
    assert f"train: {result.data_path}   # retraining rewrites this pointer" in config_text
    data_text = run(project.origin, "show", f"{sha}:{result.data_path}")
    assert len(data_text.strip().splitlines()) == 701
    assert "Refs: #7" in run(project.origin, "log", "-1", "--format=%B", sha)
    # The caller's checkout is untouched and no worktree is left behind.
    assert run(project.repo, "rev-parse", "HEAD") == head_before
    assert run(project.repo, "status", "--porcelain") == ""
    assert len(run(project.repo, "worktree", "list").splitlines()) == 1
    checkout = tmp_path / "check"
    run(tmp_path, "clone", "--quiet", "-b", result.branch, str(project.origin), str(checkout))
    assert load_config(checkout / ".github" / "mlops.yml").data.train == result.data_path


def test_retrain_from_labeled_log(project: Project, tmp_path: Path) -> None:
    forge = LocalForge(tmp_path / "forge", repo="o/credit")
    fresh = population(np.random.default_rng(11), 150, shift=1.0)
    log_dir = tmp_path / "log"
    with PredictionLog(log_dir, flush_seconds=0) as log:
        for i, row in enumerate(fresh.drop(columns="default").to_dict("records")):
            log.record(f"q{i}", "credit", "v1.0.0", row, 1, timestamp=float(i))
    attach_labels(log_dir, [(f"q{i}", int(y)) for i, y in enumerate(fresh["default"][:120])])
    result = run_retrain(project.repo, forge, stamp="s1", log=read_predictions(log_dir), replace=True)
    assert (result.rows, result.new_rows) == (120, 120)
    table = pd.read_csv(pd.io.common.StringIO(
        run(project.origin, "show", f"refs/heads/{result.branch}:{result.data_path}")))
    assert list(table.columns) == ["income", "age", "region", "default"]
    assert list(table["default"]) == list(fresh["default"][:120])


def test_too_little_fresh_data_opens_nothing(project: Project, tmp_path: Path) -> None:
    forge = LocalForge(tmp_path / "forge", repo="o/credit")
    population(np.random.default_rng(1), 20).to_csv(tmp_path / "tiny.csv", index=False)
    with pytest.raises(DataError, match="at least 100"):
        run_retrain(project.repo, forge, stamp="s", data=tmp_path / "tiny.csv")
    assert forge.list_pull_requests("all") == []
    assert "mlops-retrain" not in run(project.origin, "branch", "--list")
