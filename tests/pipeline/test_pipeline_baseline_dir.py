"""The PR workflow's two-step baseline: `registry download --if-exists` (the only step with a token)
fetches the production version's artifacts; `validate --baseline-dir` (the step that runs the PR's
training code, no token) compares with them, verified against the registry tag's checksums."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from mlops_bot.cli import main
from mlops_bot.forge.local import LocalForge
from mlops_bot.registry.registry import Registry
from validate_project import credit_project

FORGE_VARIABLES = ("MLOPS_BOT_LOCAL_FORGE", "GITHUB_TOKEN", "GH_TOKEN", "MLOPS_BOT_APP_ID",
                   "MLOPS_BOT_APP_PRIVATE_KEY", "MLOPS_BOT_APP_PRIVATE_KEY_FILE", "GITHUB_ACTIONS")




def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=T", "-c", "user.email=t@example.com", *args], cwd=repo,
                   check=True, capture_output=True)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for key in FORGE_VARIABLES:
        monkeypatch.delenv(key, raising=False)
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "main")
    credit_project(repo)
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "model")
    monkeypatch.chdir(repo)
    return repo


def _validate(out: Path, baseline_dir: Path) -> dict:  # type: ignore[type-arg]
    code = main(["validate", "--config", ".github/mlops.yml", "--output", str(out), "--quiet",
                 "--baseline-dir", str(baseline_dir)])
    assert code in (0, 1)
    return json.loads((out / "report.json").read_text())


def test_download_step_then_tokenless_validate_compares_with_production(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    forge_dir = tmp_path / "forge"
    first = _validate(tmp_path / "v1", tmp_path / "nothing")
    registry = Registry(project, forge=LocalForge(forge_dir))
    event = registry.register("credit-risk", artifacts={n: tmp_path / "v1" / n for n in
                                                         ("model.skops", "report.json")})
    registry.assign("credit-risk", "production", version=event.version)
    assert first["baseline"]["source"] == "none"

    # Step 1 (holds the forge credentials): the config names model and stage.
    monkeypatch.setenv("MLOPS_BOT_LOCAL_FORGE", str(forge_dir))
    baseline = tmp_path / "baseline"
    assert main(["registry", "download", "--if-exists", "--dest", str(baseline)]) == 0
    assert "credit-risk#production" in capsys.readouterr().out
    assert (baseline / "model.skops").is_file() and (baseline / "SHA256SUMS").is_file()

    # Step 2 (runs the PR's code): no credentials at all.
    monkeypatch.delenv("MLOPS_BOT_LOCAL_FORGE")
    report = _validate(tmp_path / "v2", baseline)
    assert report["baseline"]["source"] == "registry"
    assert report["baseline"]["version"] == event.version
    roc = report["metrics"]["roc_auc"]
    assert roc["base"] is not None and roc["ci"] is not None and len(roc["ci"]) == 2
    significant = [g for g in report["gates"] if g["rule"].startswith("significant drop")]
    assert [g["metric"] for g in significant] == ["roc_auc"]
    assert all(g["status"] == "pass" for g in report["gates"])


def test_empty_registry_is_a_notice_and_the_report_says_so(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MLOPS_BOT_LOCAL_FORGE", str(tmp_path / "forge"))
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    baseline = tmp_path / "baseline"
    assert main(["registry", "download", "--if-exists", "--dest", str(baseline)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("::notice::No version of credit-risk is in stage 'production'")
    assert not baseline.exists()
    # Without --if-exists an empty stage is an error (exit 2), as before.
    assert main(["registry", "download", "--dest", str(baseline)]) == 2
    monkeypatch.delenv("MLOPS_BOT_LOCAL_FORGE")
    monkeypatch.delenv("GITHUB_ACTIONS")
    report = _validate(tmp_path / "out", baseline)
    assert report["baseline"]["source"] == "none"
    assert any("no model in stage 'production'" in note for note in report["baseline"]["notes"])
    # A max_drop_ci gate cannot be judged without a baseline: it is reported as skipped, not passed.
    significant = [g for g in report["gates"] if g["rule"].startswith("significant drop")]
    assert significant and all(g["status"] == "skipped" for g in significant)


def test_a_folder_that_is_not_the_registered_version_is_refused(
    project: Path, tmp_path: Path
) -> None:
    forge_dir = tmp_path / "forge"
    _validate(tmp_path / "v1", tmp_path / "nothing")
    registry = Registry(project, forge=LocalForge(forge_dir))
    event = registry.register("credit-risk", artifacts={"model.skops": tmp_path / "v1" / "model.skops"})
    registry.assign("credit-risk", "production", version=event.version)
    baseline = registry.download("credit-risk", "production", tmp_path / "baseline")
    with (baseline / "model.skops").open("ab") as handle:
        handle.write(b"tampered")
    report = _validate(tmp_path / "out", baseline)
    assert report["baseline"]["source"] == "none"
    assert any("registry baseline unavailable" in note and "sha256" in note
               for note in report["baseline"]["notes"])
