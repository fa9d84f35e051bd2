"""Run our workflow templates with `act` on a real example repository, against the GitHub API emulator.

act runs jobs on this machine (`-P ubuntu-latest=-self-hosted`); third-party actions are mapped with
`--local-repository` to the stand-ins under `stubs/`, and `mlops-bot/mlops-bot@v0` to this checkout, so
the templates run exactly as adopters copy them. The mlops-bot CLI comes from the test venv (the
templates' documented `MLOPS_BOT_SKIP_INSTALL=true` for prepared runners). Everything stays on loopback.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
STUBS = Path(__file__).with_name("stubs")
ACT = Path(sys.executable).with_name("act")
VENV_BIN = Path(sys.executable).parent
OWN_ACTIONS = "mlops-bot/mlops-bot@v0"
THIRD_PARTY = {
    "actions/setup-python@a26af69be951a213d495a4c3e4e4022e16d87065": STUBS / "setup-python",
    "actions/upload-artifact@ea165f8d65b6e75b540449e92b4886f43607fa02": STUBS / "upload-artifact",
    "actions/download-artifact@d3f86a106a0bac45b974a628896c90dbdf5c8093": STUBS / "download-artifact",
    "actions/create-github-app-token@df432ceedc7162793a195dd1713ff69aefc7379e":
        STUBS / "create-github-app-token",
    "actions/cache@5a3ec84eff668545956fd18022155c47e93e2684": STUBS / "cache",
}
MODEL = "credit-risk"
GIT_IDENTITY = {"GIT_AUTHOR_NAME": "Ada", "GIT_AUTHOR_EMAIL": "ada@example.com",
                "GIT_COMMITTER_NAME": "Ada", "GIT_COMMITTER_EMAIL": "ada@example.com"}

# What the tests add to the config `mlops-bot init` writes: promotion straight to production and a
# rollout fast enough for a test. Holds of 2 s: a loaded machine (CI, ~85 ms a request) still gets the
# canary its 3 requests at 25 %; were it not, the rollout aborts at once with the gates' reason instead
# of pausing for a /promote no test sends (it sat out act's 600 s timeout once).
TEST_SETTINGS = """\
registry:
  stages: [staging, production]
  allow_skip: true
rollout:
  steps:
    - {weight: 25, hold: 2s}
    - {weight: 50, hold: 2s}
  interval: 0.3s
  progress_deadline: 90s
  on_inconclusive: abort
  gates: {min_requests: 3, min_success_rate: 0.95, max_p99_latency_ms: 5000,
          max_p99_latency_ratio: null, max_prediction_drift: null}
"""


def git(cwd: Path, *args: str) -> str:
    env = {**os.environ, **GIT_IDENTITY}
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True,
                          text=True).stdout.strip()


@dataclass
class ExampleRepo:
    path: Path
    origin: Path

    @property
    def head(self) -> str:
        return git(self.path, "rev-parse", "HEAD")

    def origin_tags(self) -> list[str]:
        return git(self.origin, "tag", "--list").split()


def build_example_repo(base: Path, *, rows: int = 600) -> ExampleRepo:
    """A small credit-risk project with `.github/mlops.yml`, data and our templates as its workflows."""
    from mlops_bot.demo.dataset import generate

    repo, origin = base / "repo", base / "origin.git"
    (repo / "data").mkdir(parents=True)
    generate(rows, seed=1).to_csv(repo / "data" / "train.csv", index=False)
    generate(rows // 2, seed=2, id_start=100_000).to_csv(repo / "data" / "holdout.csv", index=False)
    # Adopted as a user would: `mlops-bot init` writes the config and the workflows.
    from mlops_bot.cli import main

    git(repo.parent, "init", "-q", "-b", "main", str(repo))
    code = main(["init", "--repo", str(repo), "--data", str(repo / "data" / "train.csv"),
                 "--holdout", str(repo / "data" / "holdout.csv"), "--target", "default",
                 "--sensitive", "sex", "--model", MODEL, "--deploy-target", "local"])
    assert code == 0, "mlops-bot init failed"
    config = yaml.safe_load((repo / ".github" / "mlops.yml").read_text())
    config.update(yaml.safe_load(TEST_SETTINGS))
    (repo / ".github" / "mlops.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    (repo / ".gitignore").write_text("mlops-report/\n.mlops-bot/\n")
    git(base, "init", "-q", "--bare", "-b", "main", str(origin))
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "credit-risk model")
    git(repo, "remote", "add", "origin", str(origin))
    git(repo, "push", "-q", "origin", "main")
    return ExampleRepo(repo, origin)


@dataclass
class ActRun:
    returncode: int
    output: str

    def assert_ok(self) -> None:
        assert self.returncode == 0, f"act failed ({self.returncode}):\n{self.output[-6000:]}"


def run_act(repo: ExampleRepo, event: str, payload: dict[str, Any], workflow: str, *, work: Path,
            api_url: str, repository: str, token: str = "ghs_test_token",  # noqa: S107 - emulator token
            env: dict[str, str] | None = None, secrets: dict[str, str] | None = None,
            timeout: float = 240, job: str | None = None) -> ActRun:
    """Run one workflow file for one event; `work` holds act's caches and the shared artifact store."""
    work.mkdir(parents=True, exist_ok=True)
    event_file = work / f"event-{event}.json"
    event_file.write_text(json.dumps(payload))
    artifacts = work / "artifacts"
    artifacts.mkdir(exist_ok=True)
    command = [
        str(ACT), event, "-e", str(event_file), "-W", f".github/workflows/{workflow}",
        "-P", "ubuntu-latest=-self-hosted", "--no-cache-server",
        "--artifact-server-addr", "127.0.0.1", "--cache-server-addr", "127.0.0.1",
        "--action-cache-path", str(work / "act-cache"), "--action-offline-mode",
        "--local-repository", f"{OWN_ACTIONS}={own_actions_copy(work)}",
        "-s", f"GITHUB_TOKEN={token}",
        *(["-j", job] if job else []),
    ]
    for name, value in (secrets or {}).items():
        command += ["-s", f"{name}={value}"]
    for ref, folder in THIRD_PARTY.items():
        command += ["--local-repository", f"{ref}={folder}"]
    variables = {
        "GITHUB_API_URL": api_url, "GITHUB_REPOSITORY": repository,
        "MLOPS_BOT_SKIP_INSTALL": "true", "MLOPS_TEST_ARTIFACTS": str(artifacts),
        "MLOPS_TEST_PYTHON_BIN": str(VENV_BIN), **(env or {}),
    }
    for key, value in variables.items():
        command += ["--env", f"{key}={value}"]
    process_env = {**os.environ, **GIT_IDENTITY, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}"}
    process_env.pop("MLOPS_BOT_LOCAL_FORGE", None)
    result = subprocess.run(command, cwd=repo.path, env=process_env, capture_output=True, text=True,
                            timeout=timeout, check=False)
    return ActRun(result.returncode, result.stdout + result.stderr)


def own_actions_copy(work: Path) -> Path:
    """Only what our composite actions need (their YAML and the package they install); act copies a
    mapped folder whole, and the checkout's virtual environments would make every run copy gigabytes."""
    target = work / "mlops-bot-actions"
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    shutil.copy2(ROOT / "action.yml", target / "action.yml")
    shutil.copytree(ROOT / "actions", target / "actions")
    # The package itself: the setup action installs "this action's own source tree".
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, target / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
    shutil.copytree(ROOT / "src", target / "src", symlinks=True, ignore=ignore)
    shutil.copytree(ROOT / "workflows-templates", target / "workflows-templates")
    return target


def act_available() -> bool:
    return ACT.exists() and shutil.which("git") is not None
