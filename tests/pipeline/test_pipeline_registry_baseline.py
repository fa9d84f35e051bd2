"""The baseline is the model in the configured registry stage when the repository has one: it is
downloaded (checksums verified) from the forge's release and scored on the PR's holdout."""

from __future__ import annotations

import importlib.util
import json
import subprocess
from pathlib import Path
from types import ModuleType

import pytest

from mlops_bot.config import load_config
from mlops_bot.forge.local import LocalForge
from mlops_bot.pipeline.validate import validate
from mlops_bot.registry.registry import Registry


def _validate_tests() -> ModuleType:
    """The project builder of the validate tests beside this file."""
    path = Path(__file__).with_name("test_pipeline_validate.py")
    spec = importlib.util.spec_from_file_location("pipeline_validate_tests", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=T", "-c", "user.email=t@example.com", *args], cwd=repo,
                   check=True, capture_output=True)


def test_registry_stage_model_is_the_baseline(tmp_path: Path) -> None:
    _project = _validate_tests()._project

    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "main")
    config_path = _project(repo)
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
