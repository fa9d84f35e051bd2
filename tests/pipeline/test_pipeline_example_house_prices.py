"""The shipped LightGBM regression example end to end: validate (regression metrics, fairness per
neighbourhood, params from params.yaml), register the validated model with its signature in a real
git registry (bare origin, file-backed forge), download it through the SHA256SUMS check and serve it
over OIP v2; then roll it out on the local target (a real `mlops-bot serve` process) and roll a
retrained second version out over it as a canary under live traffic, validated against the first as
the production baseline."""

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


@pytest.mark.slow
def test_house_prices_validates_registers_serves_and_rolls_out(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    repo = example_repo("house-prices", tmp_path, monkeypatch)

    out = tmp_path / "out"
    config = str(repo / ".github" / "mlops.yml")
    assert main(["validate", "--config", config, "--output", str(out), "--quiet"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["task"] == "regression" and report["metrics"]["r2"]["head"] > 0.8
    assert report["fairness"]["task"] == "regression"
    assert set(report["fairness"]["by_group"]) == {"centre", "harbour", "hills", "suburbs"}
    assert report["params"]["head"]["train.num_leaves"] == 15

    register(repo, "house-prices", out, "minor")
    registry = Registry(repo, forge=LocalForge(tmp_path / "forge"))
    version = registry.latest_version("house-prices")
    assert version == "v0.1.0"
    folder = Path(registry.download("house-prices", version, tmp_path / "download"))

    router = ModelRouter("house-prices")
    router.set_versions(RoutingRequest(stable=VersionRef(version=version, path=str(folder))))
    client = TestClient(create_app(router, admin_token=None))
    holdout = pd.read_csv(repo / "data" / "holdout.csv").head(5)
    inputs = [
        {"name": c, "datatype": "BYTES" if c == "neighbourhood" else "FP64", "shape": [5],
         "data": holdout[c].tolist()}
        for c in ("area_m2", "rooms", "age_years", "distance_km", "neighbourhood")
    ]
    response = client.post("/v2/models/house-prices/infer", json={"inputs": inputs})
    assert response.status_code == 200, response.text
    predicted = response.json()["outputs"][0]["data"]
    assert len(predicted) == 5 and all(50_000 < p < 5_000_000 for p in predicted)
    metadata = client.get("/v2/models/house-prices").json()
    assert {(i["name"], i["datatype"]) for i in metadata["inputs"]} >= {("neighbourhood", "BYTES"),
                                                                       ("area_m2", "FP64")}
    assert metadata["outputs"] == [{"name": "predict", "datatype": "FP64", "shape": [-1]}]

    # Roll it out on the local target, then a retrained version (more leaves) as a canary over it.
    roll_out_and_retrain(repo, tmp_path, capsys, "house-prices", version,
                         retrain=("num_leaves: 15", "num_leaves: 31"),
                         param=("train.num_leaves", 31))
