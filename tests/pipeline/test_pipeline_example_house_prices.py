"""The shipped LightGBM regression example end to end: validate (regression metrics, fairness per
neighbourhood, params from params.yaml), register the validated model in a real git registry (bare
origin, file-backed forge), download it through the SHA256SUMS check and serve it over OIP v2."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from mlops_bot.cli import main
from mlops_bot.deploy.router import ModelRouter
from mlops_bot.deploy.routing import RoutingRequest, VersionRef
from mlops_bot.deploy.server import create_app
from mlops_bot.forge.local import LocalForge
from mlops_bot.registry.registry import Registry

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "house-prices"


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout


@pytest.mark.slow
def test_house_prices_validates_registers_and_serves(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("GITHUB_TOKEN", "GH_TOKEN", "MLOPS_BOT_APP_ID", "GITHUB_ACTIONS"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("MLOPS_BOT_LOCAL_FORGE", str(tmp_path / "forge"))
    monkeypatch.setenv("GITHUB_REPOSITORY", "acme/house-prices")
    origin = tmp_path / "origin.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(origin)], check=True)
    repo = tmp_path / "house-prices"
    shutil.copytree(EXAMPLE, repo, ignore=shutil.ignore_patterns("out", "model.skops", "__pycache__"))
    _git(tmp_path, "init", "-q", "-b", "main", str(repo))
    for key, value in (("user.name", "dev"), ("user.email", "dev@example.com")):
        _git(repo, "config", key, value)
    _git(repo, "remote", "add", "origin", str(origin))
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "house-prices example")
    _git(repo, "push", "-q", "origin", "main")

    out = tmp_path / "out"
    config = str(repo / ".github" / "mlops.yml")
    assert main(["validate", "--config", config, "--output", str(out), "--quiet"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["task"] == "regression" and report["metrics"]["r2"]["head"] > 0.8
    assert report["fairness"]["task"] == "regression"
    assert set(report["fairness"]["by_group"]) == {"centre", "harbour", "hills", "suburbs"}
    assert report["params"]["head"]["train.num_leaves"] == 15

    artifacts = [f"{name}={out / name}" for name in ("model.skops", "report.json")]
    assert main(["registry", "register", "house-prices", "--repo", str(repo), "--bump", "minor", "--push",
                 "--if-verdict-pass", str(out / "report.json"),
                 *(arg for a in artifacts for arg in ("--artifact", a))]) == 0
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
