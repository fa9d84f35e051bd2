"""A shipped example (`examples/<name>`) as a team's repository in a test: a real git clone with a
bare origin and a file-backed forge, registered and rolled out through the CLI. Shared by the
example tests in tests/pipeline."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from mlops_bot.cli import main

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
ASSETS = ("model.skops", "signature.json", "report.json", "reference_profile.json")


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout


def commit_and_push(repo: Path, message: str) -> None:
    git(repo, "commit", "-q", "-am", message)
    git(repo, "push", "-q", "origin", "main")


def example_repo(example: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """examples/<example> committed and pushed to a bare origin; the local forge under tmp_path and no
    GitHub credentials in the environment."""
    for key in ("GITHUB_TOKEN", "GH_TOKEN", "MLOPS_BOT_APP_ID", "GITHUB_ACTIONS"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("MLOPS_BOT_LOCAL_FORGE", str(tmp_path / "forge"))
    monkeypatch.setenv("GITHUB_REPOSITORY", f"acme/{example}")
    origin = tmp_path / "origin.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(origin)], check=True)
    repo = tmp_path / example
    shutil.copytree(EXAMPLES / example, repo,
                    ignore=shutil.ignore_patterns("out", "model.skops", "__pycache__"))
    git(tmp_path, "init", "-q", "-b", "main", str(repo))
    for key, value in (("user.name", "dev"), ("user.email", "dev@example.com")):
        git(repo, "config", key, value)
    git(repo, "remote", "add", "origin", str(origin))
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", f"{example} example")
    git(repo, "push", "-q", "origin", "main")
    return repo


def register(repo: Path, model: str, out: Path, bump: str) -> None:
    """Register the validated model in `out` with its signature, report and reference profile."""
    assets = [arg for name in ASSETS for arg in ("--artifact", f"{name}={out / name}")]
    assert main(["registry", "register", model, "--repo", str(repo), "--bump", bump, "--push",
                 "--if-verdict-pass", str(out / "report.json"), *assets]) == 0


def shorten_rollout(repo: Path) -> None:
    """The example's own canary plan (10 % first) with one-second holds, committed and pushed.

    Latency gates judge a loaded test machine's noise (a CI run saw canary p99 1.59x stable's), not
    the model: the rollout in a test proves the success-rate gate and the stepping."""
    config_file = repo / ".github" / "mlops.yml"
    settings = yaml.safe_load(config_file.read_text())
    assert settings["rollout"]["steps"][0]["weight"] == 10
    settings["rollout"].update(steps=[{"weight": 30, "hold": 1}, {"weight": 60, "hold": 1}], interval=0.2,
                               progress_deadline=120)
    settings["rollout"]["gates"].update(min_requests=3, max_p99_latency_ms=5000, max_p99_latency_ratio=None,
                                        max_prediction_drift=None)
    config_file.write_text(yaml.safe_dump(settings, sort_keys=False))
    commit_and_push(repo, "short rollout holds for the test")


def local_deploy_args(repo: Path, state_dir: Path) -> list[str]:
    """`mlops-bot deploy` arguments for the local target, waiting for the rollout to finish."""
    return ["--target", "local", "--wait", "--state-dir", str(state_dir), "--config",
            str(repo / ".github" / "mlops.yml"), "--repo", str(repo), "--timeout", "120"]
