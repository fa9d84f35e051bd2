"""Two models in one repository through the real PR path: `validate --model NAME` trains and
reports each one, and `comment` gives each its own sticky comment and check run on the PR (GitHub
emulator); the base branch's config of each model decides its gates."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import yaml
from sklearn.datasets import make_classification

from github_emulator import Emulator
from mlops_bot.cli import main
from mlops_bot.demo.dataset import generate

REPO = "octo-org/models"
SHA = "e" * 40
FEATURES = ["age", "income", "debt_ratio", "late_payments", "employment"]


def _digits() -> pd.DataFrame:
    x, y = make_classification(n_samples=500, n_features=6, n_informative=4, n_classes=3, random_state=0)
    frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(6)])
    frame["digit"] = y
    return frame


def _repository(root: Path, risk_gate: float = 0.6) -> Path:
    (root / "data").mkdir(parents=True, exist_ok=True)
    generate(300, seed=1).to_csv(root / "data" / "train.csv", index=False)
    generate(200, seed=2, id_start=10_000).to_csv(root / "data" / "holdout.csv", index=False)
    (root / "vision").mkdir(exist_ok=True)
    digits = _digits()
    digits[:300].to_csv(root / "vision" / "train.csv", index=False)
    digits[300:].to_csv(root / "vision" / "holdout.csv", index=False)
    config = {
        "version": 1,
        "report": {"images": "none"},
        "bootstrap": {"samples": 100},
        "drift": {"enabled": False},
        "seed": 1,
        "models": [
            {"model": {"name": "credit-risk", "task": "classification", "paths": ["data/"]},
             "train": {"builtin": {"estimator": "logistic_regression", "params": {"max_iter": 500}}},
             "data": {"train": "data/train.csv", "holdout": "data/holdout.csv", "target": "default",
                      "id": "applicant_id", "features": FEATURES},
             "gates": {"roc_auc": {"min": risk_gate}}},
            {"model": {"name": "vision:digits", "task": "classification", "paths": ["vision/"]},
             "train": {"builtin": {"estimator": "random_forest", "params": {"n_estimators": 20}}},
             "data": {"train": "vision/train.csv", "holdout": "vision/holdout.csv", "target": "digit"},
             "gates": {"accuracy": {"min": 0.5}}},
        ],
    }
    path = root / ".github" / "mlops.yml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture()
def gh(monkeypatch: pytest.MonkeyPatch) -> Iterator[Emulator]:
    with Emulator() as emu:
        emu.add_repo(REPO)
        emu.add_pull(REPO, 7, head_sha=SHA)
        for name in ("MLOPS_BOT_LOCAL_FORGE", "MLOPS_BOT_APP_ID", "GH_TOKEN"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("GITHUB_TOKEN", "ghs_actions")
        monkeypatch.setenv("GITHUB_REPOSITORY", REPO)
        monkeypatch.setenv("GITHUB_API_URL", emu.url)
        yield emu


def test_each_model_is_validated_and_posted_on_its_own(gh: Emulator, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    head = _repository(tmp_path / "head")
    # The base branch knows only credit-risk, with a stricter gate than the PR's.
    base_config = yaml.safe_load(_repository(tmp_path / "base", risk_gate=0.99).read_text())
    base_config["models"] = base_config["models"][:1]
    base = tmp_path / "base" / ".github" / "mlops.yml"
    base.write_text(yaml.safe_dump(base_config, sort_keys=False), encoding="utf-8")

    reports = {}
    for name in ("credit-risk", "vision:digits"):
        out = tmp_path / name.replace(":", "-")
        code = main(["validate", "--config", str(head), "--model", name, "--output", str(out), "--quiet",
                     "--base-config", str(base), "--base-name", "main"])
        reports[name] = json.loads((out / "report.json").read_text())
        assert reports[name]["model"] == name
        assert (out / "report.md").read_text().startswith(
            f"<!-- mlops-bot:sticky workflow=mlops-pr model={name} -->")
        assert code == (1 if name == "credit-risk" else 0)
        assert main(["comment", "--report-dir", str(out), "--pr", "7", "--config", str(base)]) == 0
    printed = capsys.readouterr().out
    assert "this PR changes its own gates (gates): judged by main's" in printed  # credit-risk
    assert "main's config has no model 'vision:digits' yet (this PR adds it): its own gates apply" in printed
    # the base's gate decided credit-risk; the multiclass model reports per-class rows
    assert any(g["rule"] == ">= 0.99" and not g["passed"] for g in reports["credit-risk"]["gates"])
    assert reports["vision:digits"]["verdict"] == "pass"

    comments = gh.state["comments"]
    assert len(comments) == 2
    assert {c["body"].splitlines()[0] for c in comments} == {
        "<!-- mlops-bot:sticky workflow=mlops-pr model=credit-risk -->",
        "<!-- mlops-bot:sticky workflow=mlops-pr model=vision:digits -->"}
    runs = gh.state["check_runs"]
    assert sorted((r["name"], r["conclusion"]) for r in runs) == [
        ("mlops-bot / credit-risk", "failure"), ("mlops-bot / vision:digits", "success")]

    # a re-run of one model updates its own comment only
    assert main(["comment", "--report-dir", str(tmp_path / "vision-digits"), "--pr", "7"]) == 0
    assert len(gh.state["comments"]) == 2

    # several models and an unknown name: one line listing them
    assert main(["comment", "--report-dir", str(tmp_path / "vision-digits"), "--pr", "7",
                 "--config", str(head), "--model", "digits"]) == 2
    assert "no model named 'digits'; the models are: credit-risk, vision:digits" in capsys.readouterr().err
