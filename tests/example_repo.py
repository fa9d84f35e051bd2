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


def roll_out_and_retrain(repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], model: str,
                         version: str, retrain: tuple[str, str], param: tuple[str, object]) -> None:
    """Roll `version` out on the local target (the first version becomes stable and production at
    once), then a retrained version (`retrain`: old and new text of params.yaml; `param`: the
    training parameter the report must show) validated against production as its baseline,
    registered, and rolled out over it as a canary under live traffic: no failed request, both
    versions answer, the new one ends stable and in production."""
    import json

    import pandas as pd

    from mlops_bot.demo.traffic import Traffic
    from mlops_bot.deploy.controller import StateStore
    from mlops_bot.forge.local import LocalForge
    from mlops_bot.registry.registry import Registry

    registry = Registry(repo, forge=LocalForge(tmp_path / "forge"))
    config = str(repo / ".github" / "mlops.yml")
    shorten_rollout(repo)
    state_dir = tmp_path / "state"
    deploy = local_deploy_args(repo, state_dir)
    try:
        assert main(["deploy", model, "--version", version, *deploy]) == 0
        endpoint = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["endpoint"]
        assert registry.stage_version(model, "production") == version

        params = repo / "params.yaml"
        params.write_text(params.read_text().replace(*retrain))
        commit_and_push(repo, f"retrained: {retrain[1]}")
        head = tmp_path / "head"
        assert main(["validate", "--config", config, "--output", str(head), "--quiet"]) == 0
        report = json.loads((head / "report.json").read_text())
        key, value = param
        assert report["baseline"]["version"] == version and report["params"]["head"][key] == value
        register(repo, model, head, "minor")
        second = registry.latest_version(model)
        assert second == "v0.2.0"

        records = pd.read_csv(repo / "data" / "holdout.csv").head(40).to_dict("records")
        with Traffic(endpoint, records, threads=2) as load:
            assert main(["deploy", model, "--version", second, *deploy]) == 0
        assert load.failures == 0, load.errors[:3]
        assert load.versions[version] > 0 and load.versions[second] > 0
        state = StateStore(state_dir, model).load(model)
        assert state.phase == "promoted" and state.stable is not None and state.stable.version == second
        assert registry.stage_version(model, "production") == second
    finally:
        main(["deploy", "stop", model, "--state-dir", str(state_dir)])
