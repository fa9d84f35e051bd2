"""`mlops-bot deploy` with several models: each model's actions reach its own rollout environment
(its GitHub deployment); without a name the command names the models (local forge, real CLI)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlops_bot.cli import main
from mlops_bot.forge.local import LocalForge

CONFIG = """\
version: 1
train: {builtin: {estimator: logistic_regression}}
models:
  - model: {name: credit, task: classification}
    data: {train: a.csv, holdout: b.csv, target: y}
  - model: {name: "vision:digits", task: classification}
    data: {train: c.csv, holdout: d.csv, target: digit}
    rollout: {environment: digits}
"""


def test_actions_reach_each_models_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / ".github" / "mlops.yml"
    config.parent.mkdir()
    config.write_text(CONFIG, encoding="utf-8")
    for name in ("GITHUB_TOKEN", "GH_TOKEN", "MLOPS_BOT_APP_ID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MLOPS_BOT_LOCAL_FORGE", str(tmp_path / "forge"))
    monkeypatch.setenv("GITHUB_REPOSITORY", "acme/models")
    forge = LocalForge(tmp_path / "forge", repo="acme/models")
    running = {}
    for model, environment in (("credit", "production-credit"), ("vision:digits", "digits")):
        deployment = forge.create_deployment(f"{model}@v1.0.0", environment, payload={"model": model})
        forge.create_deployment_status(deployment.id, "in_progress", description="step 1")
        running[model] = deployment.id

    assert main(["deploy", "abort", "vision:digits", "--config", str(config)]) == 0
    assert "asked the rollout in digits to abort" in capsys.readouterr().out
    assert main(["deploy", "promote", "credit", "--config", str(config)]) == 0
    assert "asked the rollout in production-credit to promote" in capsys.readouterr().out
    latest = {model: forge.list_deployment_statuses(id_)[0].description for model, id_ in running.items()}
    assert latest["vision:digits"].startswith("mlops-bot:abort by @")
    assert latest["credit"].startswith("mlops-bot:promote by @")

    assert main(["deploy", "abort", "--config", str(config)]) == 2
    assert "2 models (credit, vision:digits): pick one" in capsys.readouterr().err
    assert main(["deploy", "abort", "fraud", "--config", str(config)]) == 2
    assert "no model named 'fraud'" in capsys.readouterr().err
