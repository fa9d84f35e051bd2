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

from example_repo import commit_and_push, example_repo, local_deploy_args, register, shorten_rollout
from mlops_bot.cli import main
from mlops_bot.demo.traffic import Traffic
from mlops_bot.deploy.controller import StateStore
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

    # Roll it out on the local target: the first version becomes stable (and production) at once.
    shorten_rollout(repo)
    state_dir = tmp_path / "state"
    deploy = local_deploy_args(repo, state_dir)
    try:
        assert main(["deploy", "house-prices", "--version", version, *deploy]) == 0
        endpoint = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["endpoint"]
        assert registry.stage_version("house-prices", "production") == version

        # A retrained version (more leaves), validated against production as its baseline.
        params = repo / "params.yaml"
        params.write_text(params.read_text().replace("num_leaves: 15", "num_leaves: 31"))
        commit_and_push(repo, "more leaves")
        head = tmp_path / "head"
        assert main(["validate", "--config", config, "--output", str(head), "--quiet"]) == 0
        report = json.loads((head / "report.json").read_text())
        assert report["baseline"]["version"] == version and report["params"]["head"]["train.num_leaves"] == 31
        register(repo, "house-prices", head, "minor")
        second = registry.latest_version("house-prices")
        assert second == "v0.2.0"

        records = pd.read_csv(repo / "data" / "holdout.csv").head(40).to_dict("records")
        with Traffic(endpoint, records, threads=2) as load:
            assert main(["deploy", "house-prices", "--version", second, *deploy]) == 0
        assert load.failures == 0, load.errors[:3]
        assert load.versions[version] > 0 and load.versions[second] > 0
        state = StateStore(state_dir, "house-prices").load("house-prices")
        assert state.phase == "promoted" and state.stable is not None and state.stable.version == second
        assert registry.stage_version("house-prices", "production") == second
    finally:
        main(["deploy", "stop", "house-prices", "--state-dir", str(state_dir)])
