"""`mlops-bot models`: the models a change touches, as JSON for a workflow matrix, from a real git
diff (base...head) or a list of paths."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from mlops_bot.cli import main

CONFIG = """\
version: 1
train: {builtin: {estimator: logistic_regression}}
models:
  - model: {name: churn, task: classification, paths: [models/churn/, data/churn.csv]}
    data: {train: data/churn.csv, holdout: data/churn.csv, target: y}
  - model: {name: "vision:digits", task: classification, paths: ["vision/**/*.py"]}
    data: {train: vision/train.csv, holdout: vision/holdout.csv, target: digit}
"""


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


def _commit(repo: Path, files: dict[str, str], message: str) -> str:
    for name, text in files.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text, encoding="utf-8")
    _git(repo, "add", "-A")
    _git(repo, "commit", "--quiet", "-m", message)
    return _git(repo, "rev-parse", "HEAD")


def _models(capsys: pytest.CaptureFixture[str], *args: str) -> list[str]:
    assert main(["models", *args]) == 0
    return [row["model"] for row in json.loads(capsys.readouterr().out)]


def test_the_models_a_change_touches(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "--quiet", "-b", "main")
    _git(repo, "config", "user.name", "Dev")
    _git(repo, "config", "user.email", "dev@example.com")
    base = _commit(repo, {".github/mlops.yml": CONFIG, "README.md": "hi"}, "start")
    config = str(repo / ".github" / "mlops.yml")

    assert main(["models", "--config", config]) == 0
    assert json.loads(capsys.readouterr().out) == [
        {"model": "churn", "slug": "churn", "config": ".github/mlops.yml", "artifact": "mlops-report-churn"},
        {"model": "vision:digits", "slug": "vision-digits", "config": ".github/mlops.yml",
         "artifact": "mlops-report-vision-digits"}]

    _git(repo, "checkout", "--quiet", "-b", "feature")
    _commit(repo, {"vision/nets/cnn.py": "x = 1", "README.md": "hello"}, "vision")
    diff = ["--config", config, "--repo", str(repo), "--changed-from"]
    assert _models(capsys, *diff, base) == ["vision:digits"]
    # base...head: what main did after the branch point is not this PR's change
    _git(repo, "checkout", "--quiet", "main")
    _commit(repo, {"models/churn/train.py": "print()"}, "main moves on")
    _git(repo, "checkout", "--quiet", "feature")
    assert _models(capsys, *diff, "main") == ["vision:digits"]
    _commit(repo, {".github/mlops.yml": CONFIG + "seed: 2\n"}, "config")
    assert _models(capsys, *diff, "main") == ["churn", "vision:digits"]

    assert _models(capsys, "--config", config, "--changed", "data/churn.csv", "docs/x.md") == ["churn"]
    single = tmp_path / "single.yml"
    single.write_text("model: {name: churn, task: regression}\ntrain: {builtin: {estimator: ridge}}\n"
                      "data: {train: a, holdout: b, target: y}\n", encoding="utf-8")
    assert main(["models", "--config", str(single), "--changed", "x.py"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["artifact"] == "mlops-report"  # one model: as before
    assert _models(capsys, "--config", config, "--model", "vision:digits") == ["vision:digits"]
    assert _models(capsys, "--config", config, "--model", "churn", "--changed", "vision/x.py") == []
    assert main(["models", "--config", config, "--model", "fraud"]) == 2
    assert "no model named 'fraud'" in capsys.readouterr().err
    listing = tmp_path / "changed.txt"
    listing.write_text("README.md\n\n", encoding="utf-8")
    assert _models(capsys, "--config", config, "--changed-file", str(listing)) == []

    assert main(["models", "--config", config, "--repo", str(repo), "--changed-from", "nope"]) == 2
    assert "cannot list the changed files (nope...HEAD)" in capsys.readouterr().err
    assert main(["models", "--config", config, "--changed-from=--output=x"]) == 2
    assert "is not a commit" in capsys.readouterr().err


def test_registry_commands_use_the_named_models_section(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "--quiet", "-b", "main")
    _git(repo, "config", "user.name", "Dev")
    _git(repo, "config", "user.email", "dev@example.com")
    config = CONFIG + "    registry: {stages: [qa, live]}\n"  # vision:digits' own stages
    _commit(repo, {".github/mlops.yml": config}, "start")
    for name in ("GITHUB_TOKEN", "GH_TOKEN", "MLOPS_BOT_LOCAL_FORGE", "MLOPS_BOT_APP_ID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(repo)

    assert main(["registry", "register"]) == 2  # which model?
    assert "2 models (churn, vision:digits)" in capsys.readouterr().err
    passed = ["--trailer", "Verdict=pass"]
    assert main(["registry", "register", "vision:digits", "--version", "v1.0.0", *passed]) == 0
    assert main(["registry", "assign", "vision:digits", "--stage", "qa"]) == 0
    assert main(["registry", "assign", "vision:digits", "--stage", "staging"]) == 2
    assert "staging" in capsys.readouterr().err
    assert "vision=digits#qa#1" in _git(repo, "tag", "--list").split()
    assert main(["registry", "download", "--model", "fraud", "--dest", str(tmp_path / "d2")]) == 2
    assert "no model named 'fraud'" in capsys.readouterr().err
    # a model the config does not declare (yet) has no baseline: nothing to download
    download = ["registry", "download", "--model", "fraud", "--dest", str(tmp_path / "d")]
    assert main([*download, "--if-exists"]) == 0
    assert "declares no model 'fraud': nothing downloaded" in capsys.readouterr().out


def test_analysis_commands_take_the_named_models_sections(tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / ".github" / "mlops.yml"
    config.parent.mkdir()
    config.write_text(CONFIG, encoding="utf-8")
    table = tmp_path / "t.csv"
    table.write_text("a,digit\n" + "".join(f"{i},{i % 3}\n" for i in range(40)), encoding="utf-8")
    check = ["data-check", "--reference", str(table), "--current", str(table), "--config", str(config),
             "--format", "json"]
    assert main(check) == 2
    assert "2 models (churn, vision:digits): pick one with --model NAME" in capsys.readouterr().err
    assert main([*check, "--model", "vision:digits"]) == 0
    assert json.loads(capsys.readouterr().out)
