"""End to end on the local target: `mlops-bot deploy` starts the server as a process on
127.0.0.1, rolls a canary out under real HTTP traffic, then rolls a broken canary back, with no
failed client request."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mlops_bot.cli import main
from mlops_bot.demo.traffic import Traffic
from mlops_bot.deploy.controller import StateStore
from mlops_bot.forge.local import LocalForge

CONFIG = """
model: {name: credit, task: classification}
train: {builtin: {estimator: logistic_regression}}
data: {train: t.csv, holdout: h.csv, target: y}
rollout:
  environment: production
  steps: [{weight: 40, hold: 2}, {weight: 70, hold: 1}]
  interval: 0.2
  progress_deadline: 60
  gates: {min_requests: 3, min_success_rate: 0.95, max_p99_latency_ms: 5000,
          max_p99_latency_ratio: null, max_prediction_drift: null}
"""


@pytest.mark.slow
def test_local_rollout_and_rollback(tmp_path: Path, model_dirs: dict[str, Path], make_records: Any,
                                    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
                                    ) -> None:
    config = tmp_path / "mlops.yml"
    config.write_text(CONFIG)
    forge_dir = tmp_path / "forge"
    monkeypatch.setenv("MLOPS_BOT_LOCAL_FORGE", str(forge_dir))
    monkeypatch.setenv("GITHUB_REPOSITORY", "acme/credit")
    models = str(next(iter(model_dirs.values())).parent)
    state_dir = tmp_path / "state"
    common = ["--target", "local", "--wait", "--state-dir", str(state_dir), "--config", str(config),
              "--models", models, "--timeout", "40"]
    try:
        assert main(["deploy", "credit", "--version", "v1.0.0", *common]) == 0
        endpoint = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["endpoint"]
        assert endpoint.startswith("http://127.0.0.1:")
        with Traffic(endpoint, make_records(20), threads=3) as load:
            assert main(["deploy", "credit", "--version", "v1.1.0", *common]) == 0
        assert load.failures == 0, load.errors[:3]
        assert load.versions["v1.1.0"] > 0 and load.versions["v1.0.0"] > 0
        state = StateStore(state_dir, "credit").load("credit")
        assert state.phase == "promoted" and state.stable is not None and state.stable.version == "v1.1.0"

        with Traffic(endpoint, make_records(20), threads=3) as load:
            assert main(["deploy", "credit", "--version", "v9.0.0-broken", *common]) == 1
        assert load.failures == 0, load.errors[:3]
        state = StateStore(state_dir, "credit").load("credit")
        assert state.phase == "aborted" and "success rate" in state.reason
        assert main(["deploy", "status", "credit", "--state-dir", str(state_dir)]) == 0
        assert '"phase": "aborted"' in capsys.readouterr().out
        # Other inputs than stable's: refused before anything starts, one line, exit 2.
        assert main(["deploy", "credit", "--version", "v2.0.0-no-region", *common]) == 2
        error = capsys.readouterr().err.strip()
        assert len(error.splitlines()) == 1 and "only stable v1.1.0 takes region" in error
        state = StateStore(state_dir, "credit").load("credit")
        assert state.phase == "aborted" and state.stable is not None and state.stable.version == "v1.1.0"
        forge = LocalForge(forge_dir, repo="acme/credit")
        newest = forge.list_deployments("production")[0]
        assert forge.list_deployment_statuses(newest.id)[0].state == "failure"
    finally:
        main(["deploy", "stop", "credit", "--state-dir", str(state_dir)])
    assert not (state_dir / "credit.server.json").exists()


@pytest.mark.slow
def test_local_server_feedback_joins_and_stop_flushes_the_log(tmp_path: Path, model_dirs: dict[str, Path],
                                                              make_records: Any) -> None:
    """`mlops-bot serve --log-dir` as a process: a label posted to /v2/feedback joins the logged
    prediction, and SIGTERM (LocalTarget.stop) flushes the buffered log before the process exits."""
    import httpx

    from mlops_bot.deploy.routing import RoutingRequest, VersionRef
    from mlops_bot.deploy.targets.local import LocalTarget
    from mlops_bot.monitor.log import read_predictions

    log_dir = tmp_path / "log"
    target = LocalTarget(tmp_path / "state", "credit", log_dir=str(log_dir))
    try:
        target.apply(RoutingRequest(stable=VersionRef(version="v1.0.0", path=str(model_dirs["v1.0.0"]))))
        with httpx.Client(base_url=target.endpoint, trust_env=False, timeout=10) as client:
            answer = client.post("/predict", json={"id": "loan-1", "records": make_records(1)})
            assert answer.status_code == 200, answer.text
            feedback = client.post("/v2/feedback", json={"labels": [{"id": "loan-1", "label": 0}]})
            assert feedback.status_code == 200, feedback.text
            assert feedback.json()["stored"] == 1
    finally:
        target.stop()
    frame = read_predictions(log_dir)
    assert frame["request_id"].tolist() == ["loan-1"]
    assert frame["label"].tolist() == [0] and frame["version"].tolist() == ["v1.0.0"]


@pytest.mark.parametrize("rate", ["0", "5"])
def test_serve_rejects_a_sample_rate_outside_zero_one(tmp_path: Path, rate: str,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["serve", "credit", "--log-dir", str(tmp_path / "log"), "--sample-rate", rate])
    assert code == 2
    assert f"--sample-rate {float(rate)}: expected a fraction in (0, 1]" in capsys.readouterr().err
    assert not (tmp_path / "log").exists()
