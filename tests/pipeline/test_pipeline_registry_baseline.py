"""The baseline is the model in the configured registry stage when the repository has one: it is
downloaded (checksums verified) from the forge's release and scored on the PR's holdout."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from mlops_bot.config import load_config
from mlops_bot.forge.local import LocalForge
from mlops_bot.pipeline.validate import validate
from mlops_bot.registry.registry import Registry
from validate_project import credit_project


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=T", "-c", "user.email=t@example.com", *args], cwd=repo,
                   check=True, capture_output=True)


def test_registry_stage_model_is_the_baseline(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "main")
    config_path = credit_project(repo)
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "model")
    forge = LocalForge(tmp_path / "forge")
    config = load_config(config_path)

    first = validate(config, tmp_path / "v1", forge=forge)
    assert first.report.baseline.source == "none"
    registry = Registry(repo, forge=forge)
    files = {name: tmp_path / "v1" / name for name in ("model.skops", "report.json")}
    event = registry.register("credit-risk", artifacts=files)
    registry.assign("credit-risk", "production", version=event.version)

    second = validate(config, tmp_path / "v2", forge=forge)
    baseline = second.report.baseline
    assert baseline.source == "registry" and baseline.version == event.version
    report = json.loads((tmp_path / "v2" / "report.json").read_text())
    roc = report["metrics"]["roc_auc"]
    # Same data, same seed, same estimator: the production model and the head agree exactly.
    assert roc["base"] == pytest.approx(roc["head"]) and roc["diff"] == pytest.approx(0.0)
    assert roc["ci"] == pytest.approx([0.0, 0.0])
    assert not (tmp_path / "v2" / "baseline").exists()  # the download stays out of the report


def test_pr_data_is_checked_against_the_registered_versions_schema(tmp_path: Path) -> None:
    """data_schema.json travels with the registered version; the next PR's training AND holdout
    tables are checked against it, and a PR whose training export broke fails the data gates."""
    import pandas as pd

    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "main")
    config_path = credit_project(repo)
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "model")
    forge = LocalForge(tmp_path / "forge")
    config = load_config(config_path)
    validate(config, tmp_path / "v1", forge=forge)
    registry = Registry(repo, forge=forge)
    files = {n: tmp_path / "v1" / n for n in ("model.skops", "report.json", "data_schema.json")}
    registry.assign(
        "credit-risk", "production", version=registry.register("credit-risk", artifacts=files).version
    )

    train = pd.read_csv(repo / "data" / "train.csv")
    train["employment"] = train["employment"].where(train.index % 3 != 0, "gig_worker")  # a third: new
    train.to_csv(repo / "data" / "train.csv", index=False)
    run = validate(config, tmp_path / "v2", forge=forge)
    checks = run.report.data_checks
    assert checks is not None and checks["reference"].startswith("the training data of credit-risk v")
    assert {c["dataset"] for c in checks["checks"]} == {"train", "holdout"}
    failed = [c for c in checks["checks"] if c["status"] == "fail"]
    assert [(c["check"], c["dataset"], c["column"]) for c in failed] == [
        ("unseen_categories", "train", "employment")
    ]
    assert "'gig_worker'" in failed[0]["detail"] and run.exit_code == 1
    assert "data.unseen_categories" in {g.metric for g in run.report.failed_gates()}
