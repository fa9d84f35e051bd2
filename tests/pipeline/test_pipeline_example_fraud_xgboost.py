"""The shipped XGBoost classification example end to end: validate (classification metrics, fairness
per customer age band, params from params.yaml), register the validated model with its signature in a
real git registry (bare origin, file-backed forge), download it through the SHA256SUMS check, load it
through the XGBoost allow-list and serve it over OIP v2; then roll it out on the local target (a real
`mlops-bot serve` process) and roll a retrained second version out over it as a canary under live
traffic, validated against the first as the production baseline."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from example_repo import example_repo, register, roll_out_and_retrain
from mlops_bot.cli import main
from mlops_bot.deploy.router import ModelRouter
from mlops_bot.deploy.routing import RoutingRequest, VersionRef
from mlops_bot.deploy.server import create_app
from mlops_bot.forge.local import LocalForge
from mlops_bot.registry.registry import Registry

FEATURES = ("amount", "hour", "account_age_days", "distance_km", "foreign", "channel")


@pytest.mark.slow
def test_fraud_xgboost_validates_registers_serves_and_rolls_out(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    repo = example_repo("fraud-xgboost", tmp_path, monkeypatch)

    out = tmp_path / "out"
    config = str(repo / ".github" / "mlops.yml")
    assert main(["validate", "--config", config, "--output", str(out), "--quiet"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["task"] == "classification" and report["metrics"]["roc_auc"]["head"] > 0.8
    assert report["fairness"]["sensitive"] == ["age_band"]
    assert set(report["fairness"]["by_group"]) == {"18-30", "31-50", "51+"}
    assert report["params"]["head"]["train.max_depth"] == 3

    register(repo, "fraud-xgboost", out, "minor")
    registry = Registry(repo, forge=LocalForge(tmp_path / "forge"))
    version = registry.latest_version("fraud-xgboost")
    assert version == "v0.1.0"
    folder = Path(registry.download("fraud-xgboost", version, tmp_path / "download"))

    router = ModelRouter("fraud-xgboost")
    router.set_versions(RoutingRequest(stable=VersionRef(version=version, path=str(folder))))
    client = TestClient(create_app(router, admin_token=None))
    holdout = pd.read_csv(repo / "data" / "holdout.csv").head(5)
    inputs = [
        {"name": c, "datatype": "BYTES" if c == "channel" else "FP64", "shape": [5],
         "data": holdout[c].tolist()}
        for c in FEATURES
    ]
    response = client.post("/v2/models/fraud-xgboost/infer", json={
        "inputs": inputs, "outputs": [{"name": "predict"}, {"name": "predict_proba"}]})
    assert response.status_code == 200, response.text
    outputs = {o["name"]: o for o in response.json()["outputs"]}
    assert len(outputs["predict"]["data"]) == 5 and set(outputs["predict"]["data"]) <= {0, 1}
    assert outputs["predict_proba"]["shape"] == [5, 2]
    scores = outputs["predict_proba"]["data"]
    assert all(0.0 <= p <= 1.0 for p in scores)
    assert all(abs(scores[2 * i] + scores[2 * i + 1] - 1.0) < 1e-6 for i in range(5))
    metadata = client.get("/v2/models/fraud-xgboost").json()
    assert {(i["name"], i["datatype"]) for i in metadata["inputs"]} >= {("channel", "BYTES"),
                                                                       ("amount", "FP64")}
    assert {o["name"] for o in metadata["outputs"]} == {"predict", "predict_proba"}

    # Roll it out on the local target, then a retrained version (shallower trees) as a canary over it.
    roll_out_and_retrain(repo, tmp_path, capsys, "fraud-xgboost", version,
                         retrain=("max_depth: 3", "max_depth: 2"),
                         param=("train.max_depth", 2))
