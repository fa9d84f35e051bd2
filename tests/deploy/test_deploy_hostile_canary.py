"""A healthy canary at 50 % keeps its rollout while clients throw every kind of malformed request at
the server: each is a 4xx for the client, none counts against either version, the gates pass and the
canary is promoted. Real `mlops-bot serve` process (local target), real HTTP, the real controller."""

from __future__ import annotations

import json
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from deploy.hostile import HOSTILE
from mlops_bot.cli import main
from mlops_bot.demo.traffic import Traffic
from mlops_bot.deploy.controller import StateStore

CONFIG = """
model: {name: credit, task: classification}
train: {builtin: {estimator: logistic_regression}}
data: {train: t.csv, holdout: h.csv, target: y}
rollout:
  environment: production
  steps: [{weight: 50, hold: 3}]
  interval: 0.2
  progress_deadline: 90
  gates: {min_requests: 5, min_success_rate: 0.99, max_p99_latency_ms: 5000,
          max_p99_latency_ratio: null, max_prediction_drift: null}
"""

HOSTILE_RECORDS: list[dict[str, Any]] = [
    {"records": [{"income": None, "age": 40.0, "region": "north"}]},
    {"records": [{"income": 50.0, "age": float("nan"), "region": "north"}]},
    {"records": [{"income": 50.0, "age": 40.0, "region": 7}]},
    {"records": [{"income": 50.0, "age": 40.0, "region": None}]},
    {"records": [{"income": "lots", "age": 40.0, "region": "north"}]},
]


def _send_hostile(endpoint: str, stop: threading.Event, statuses: Counter[int], failures: list[str]) -> None:
    key = 0
    with httpx.Client(timeout=30, trust_env=False) as client:
        while not stop.is_set():
            for case, body, status, needle in HOSTILE:
                key += 1
                headers = {"X-Request-Key": f"hostile-{key}"}  # sticky keys spread them over both sides
                path = endpoint + "/v2/models/credit/infer"
                if isinstance(body, bytes):
                    response = client.post(path, content=body,
                                           headers={**headers, "content-type": "application/json"})
                else:
                    response = client.post(path, json=body, headers=headers)
                statuses[response.status_code] += 1
                if response.status_code != status or needle not in response.json().get("error", ""):
                    failures.append(f"{case}: {response.status_code} {response.text[:200]}")
            for body in HOSTILE_RECORDS:
                key += 1
                raw = json.dumps(body).encode()  # NaN as the JSON extension Python writes
                response = client.post(endpoint + "/predict", content=raw,
                                       headers={"X-Request-Key": f"hostile-{key}",
                                                "content-type": "application/json"})
                statuses[response.status_code] += 1
                if response.status_code != 422:
                    failures.append(f"record {body}: {response.status_code} {response.text[:200]}")
            stop.wait(0.05)


@pytest.mark.slow
def test_hostile_requests_at_a_50_percent_canary_do_not_stop_its_promotion(
        tmp_path: Path, model_dirs: dict[str, Path], make_records: Any, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "mlops.yml"
    config.write_text(CONFIG)
    monkeypatch.setenv("MLOPS_BOT_LOCAL_FORGE", str(tmp_path / "forge"))
    monkeypatch.setenv("GITHUB_REPOSITORY", "acme/credit")
    state_dir = tmp_path / "state"
    common = ["--target", "local", "--wait", "--state-dir", str(state_dir), "--config", str(config),
              "--models", str(model_dirs["v1.0.0"].parent), "--timeout", "120"]
    statuses: Counter[int] = Counter()
    failures: list[str] = []
    try:
        assert main(["deploy", "credit", "--version", "v1.0.0", *common]) == 0
        endpoint = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["endpoint"]
        stop = threading.Event()
        hostile = threading.Thread(target=_send_hostile, args=(endpoint, stop, statuses, failures),
                                   daemon=True)
        with Traffic(endpoint, make_records(20), threads=2) as load:
            hostile.start()
            try:
                outcome = main(["deploy", "credit", "--version", "v1.1.0", *common])
            finally:
                stop.set()
                hostile.join(timeout=60)
        assert outcome == 0, capsys.readouterr().err
        state = StateStore(state_dir, "credit").load("credit")
        assert state.phase == "promoted" and state.stable is not None and state.stable.version == "v1.1.0"
        assert load.failures == 0, load.errors[:3]
        assert failures == [], failures[:5]
        assert sum(statuses.values()) >= len(HOSTILE) + len(HOSTILE_RECORDS)
        assert set(statuses) <= {400, 422}, statuses  # never a 5xx
        token = (state_dir / "credit.token").read_text().strip()
        snapshot = httpx.get(endpoint + "/admin/metrics", headers={"Authorization": f"Bearer {token}"},
                             trust_env=False).json()
        versions = snapshot["versions"]
        assert versions["v1.0.0"]["errors"] == 0 and versions["v1.1.0"]["errors"] == 0
        assert versions["v1.1.0"]["client_errors"] > 0 and versions["v1.0.0"]["client_errors"] > 0
    finally:
        main(["deploy", "stop", "credit", "--state-dir", str(state_dir)])
