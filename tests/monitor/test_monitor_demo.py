"""The demo's monitor chapter: shifted traffic ends in an issue and a retraining PR in the local forge."""

from __future__ import annotations

import io
import subprocess
from pathlib import Path

import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from mlops_bot.analysis.profile import build_profile
from mlops_bot.config import load_config
from mlops_bot.demo import DemoContext, project
from mlops_bot.demo import monitor as chapter
from mlops_bot.forge.local import LocalForge
from mlops_bot.model_file import save_model
from mlops_bot.monitor.triggers import ISSUE_LABEL, parse_marker
from mlops_bot.registry.registry import Registry


@pytest.mark.slow
def test_monitor_chapter_opens_issue_and_retraining_pr(tmp_path: Path) -> None:
    out = io.StringIO()
    ctx = DemoContext(workdir=tmp_path, repo=tmp_path / "repo", origin=tmp_path / "origin.git",
                      forge=LocalForge(tmp_path / "forge", repo="demo/credit-risk", actor="alice"), out=out)
    project.run(ctx)
    config = load_config(ctx.repo / ".github" / "mlops.yml", model="credit-risk")
    features = list(config.data.features or [])
    train = pd.read_csv(ctx.repo / "data" / "train.csv")
    categorical = [c for c in features if not pd.api.types.is_numeric_dtype(train[c])]
    numeric = [c for c in features if c not in categorical]
    model = Pipeline([
        ("features", ColumnTransformer([("n", StandardScaler(), numeric),
                                        ("c", OneHotEncoder(handle_unknown="ignore"), categorical)])),
        ("model", LogisticRegression(max_iter=500)),
    ]).fit(train[features], train[config.data.target])
    artifacts = tmp_path / "artifacts"
    save_model(model, artifacts / "model.skops")
    build_profile(train[[*features, config.data.target]]).save(artifacts / "reference_profile.json")
    Registry(ctx.repo, forge=ctx.forge).register(
        "credit-risk", version="v1.0.0", push=True,
        artifacts={n: artifacts / n for n in ("model.skops", "reference_profile.json")})

    chapter.run(ctx)
    text = out.getvalue()
    assert "status decayed" in text and "input drift" in text

    [issue] = ctx.forge.list_issues("all", labels=[ISSUE_LABEL])
    assert parse_marker(issue.body) is not None and "Input drift" in issue.body
    [dispatch] = ctx.forge.dispatches()
    assert dispatch["client_payload"]["issue"] == issue.number
    [pr] = ctx.forge.list_pull_requests()
    assert pr.head_ref.startswith("mlops-retrain/credit-risk/") and ctx.state["retrain_pr"] == pr.number
    assert f"#{issue.number}" in pr.body
    # The PR's branch really is on the origin, pointing the config at the new training data.
    shown = subprocess.run(["git", "show", f"{pr.head_sha}:.github/mlops.yml"], cwd=ctx.origin,
                           capture_output=True, text=True, check=True).stdout
    assert "train: data/credit-risk-retrain-" in shown
    assert "still open; not dispatching another" in text
    assert (tmp_path / "monitor" / "timeline.png").exists()
