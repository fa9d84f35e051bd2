"""ONNX models registered and served: a graph built with the onnx helper API (no training framework)
served over OIP v2 by onnxruntime with its signature taken from the graph, and a scikit-learn model
exported with skl2onnx going through validate, register, the registry download and `mlops-bot
deploy --target local` (a real `mlops-bot serve` process)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import yaml
from fastapi.testclient import TestClient

from mlops_bot.cli import main
from mlops_bot.demo.dataset import generate
from mlops_bot.deploy.loading import load_version
from mlops_bot.deploy.router import ModelRouter
from mlops_bot.deploy.routing import RoutingRequest, VersionRef
from mlops_bot.deploy.server import create_app
from mlops_bot.errors import IntegrityError
from mlops_bot.model_file import load_model

onnx = pytest.importorskip("onnx")
FEATURES = ["age", "income", "debt_ratio", "late_payments"]


def price_graph() -> bytes:
    """price = 1000 * area + 5000 * rooms, with area a double tensor and rooms an int64 tensor."""
    from onnx import TensorProto, helper

    nodes = [
        helper.make_node("Cast", ["rooms"], ["rooms_double"], to=TensorProto.DOUBLE),
        helper.make_node("Mul", ["area", "per_m2"], ["area_part"]),
        helper.make_node("Mul", ["rooms_double", "per_room"], ["rooms_part"]),
        helper.make_node("Add", ["area_part", "rooms_part"], ["price"]),
    ]
    graph = helper.make_graph(
        nodes, "prices",
        [helper.make_tensor_value_info("area", TensorProto.DOUBLE, [None]),
         helper.make_tensor_value_info("rooms", TensorProto.INT64, [None])],
        [helper.make_tensor_value_info("price", TensorProto.DOUBLE, [None])],
        initializer=[helper.make_tensor("per_m2", TensorProto.DOUBLE, [], [1000.0]),
                     helper.make_tensor("per_room", TensorProto.DOUBLE, [], [5000.0])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    return model.SerializeToString()


def test_a_graph_built_with_the_onnx_helper_serves_with_its_own_signature(tmp_path: Path) -> None:
    folder = tmp_path / "v1.0.0"
    folder.mkdir()
    (folder / "model.onnx").write_bytes(price_graph())
    loaded = load_version("prices", "v1.0.0", folder)
    assert [(f.name, f.datatype, f.kind) for f in loaded.signature.inputs] == [
        ("area", "FP64", "numeric"), ("rooms", "INT64", "numeric")]
    router = ModelRouter("prices")
    router.set_versions(RoutingRequest(stable=VersionRef(version="v1.0.0", path=str(folder))))
    client = TestClient(create_app(router))
    metadata = client.get("/v2/models/prices").json()
    assert metadata["platform"] == "onnx"
    assert metadata["inputs"] == [{"name": "area", "datatype": "FP64", "shape": [-1]},
                                  {"name": "rooms", "datatype": "INT64", "shape": [-1]}]
    assert metadata["outputs"] == [{"name": "predict", "datatype": "FP64", "shape": [-1]}]
    body = {"inputs": [{"name": "area", "datatype": "FP64", "shape": [3], "data": [50.0, 72.5, 120.0]},
                       {"name": "rooms", "datatype": "INT64", "shape": [3], "data": [2, 3, 5]}]}
    response = client.post("/v2/models/prices/infer", json=body)
    assert response.status_code == 200, response.text
    assert response.json()["outputs"] == [{"name": "predict", "datatype": "FP64", "shape": [3],
                                           "data": [60_000.0, 87_500.0, 145_000.0]}]
    body["inputs"][1].update(datatype="FP64", data=[2, 3.5, 5])
    refused = client.post("/v2/models/prices/infer", json=body)
    assert refused.status_code == 400
    assert "'rooms' is INT64 in the model's signature" in refused.json()["error"]
    assert router.snapshot().versions["v1.0.0"].errors == 0

    damaged = tmp_path / "v1.0.1"
    damaged.mkdir()
    (damaged / "model.onnx").write_bytes(price_graph()[:-20])
    with pytest.raises(IntegrityError, match=r"is not a loadable ONNX model"):
        load_version("prices", "v1.0.1", damaged)


TRAIN = '''
import os
import numpy as np, pandas as pd
from sklearn.linear_model import LogisticRegression
from skl2onnx import to_onnx

train = pd.read_csv(os.environ["MLOPS_TRAIN_PATH"])
X = train[FEATURE_LIST].to_numpy(np.float32)
model = LogisticRegression(max_iter=1000).fit(X, train["default"])
data = to_onnx(model, X[:1], options={id(model): {"zipmap": False}}).SerializeToString()
open(os.environ["MLOPS_MODEL_PATH"], "wb").write(data)
'''.replace("FEATURE_LIST", repr(FEATURES))


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout


@pytest.mark.slow
def test_an_exported_model_validates_registers_and_is_deployed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    for key in ("GITHUB_TOKEN", "GH_TOKEN", "MLOPS_BOT_APP_ID", "GITHUB_ACTIONS"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("MLOPS_BOT_LOCAL_FORGE", str(tmp_path / "forge"))
    monkeypatch.setenv("GITHUB_REPOSITORY", "acme/credit")
    repo = tmp_path / "repo"
    (repo / "data").mkdir(parents=True)
    generate(400, seed=1).to_csv(repo / "data" / "train.csv", index=False)
    holdout = generate(300, seed=2, id_start=10_000)
    holdout.to_csv(repo / "data" / "holdout.csv", index=False)
    (repo / "train.py").write_text(TRAIN, encoding="utf-8")
    config = {
        "model": {"name": "credit-onnx", "task": "classification"},
        "train": {"command": "python train.py", "model_path": "build/model.onnx"},
        "data": {"train": "data/train.csv", "holdout": "data/holdout.csv", "target": "default",
                 "features": FEATURES},
        "bootstrap": {"samples": 100},
        "drift": {"enabled": False},
    }
    (repo / "build").mkdir()
    (repo / ".github").mkdir()
    (repo / ".github" / "mlops.yml").write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    origin = tmp_path / "origin.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(origin)], check=True)
    _git(tmp_path, "init", "-q", "-b", "main", str(repo))
    for key, value in (("user.name", "dev"), ("user.email", "dev@example.com")):
        _git(repo, "config", key, value)
    _git(repo, "remote", "add", "origin", str(origin))
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "an ONNX model")
    _git(repo, "push", "-q", "origin", "main")

    out = tmp_path / "out"
    config_path = str(repo / ".github" / "mlops.yml")
    assert main(["validate", "--config", config_path, "--output", str(out), "--quiet"]) == 0
    signature = json.loads((out / "signature.json").read_text())
    assert signature["platform"] == "onnx" and signature["classes"] == [0, 1]
    assert [(i["name"], i["datatype"]) for i in signature["inputs"]] == [(f, "FP32") for f in FEATURES]
    assert not (out / "model.skops").exists()
    assets = [arg for name in ("model.onnx", "signature.json", "report.json")
              for arg in ("--artifact", f"{name}={out / name}")]
    assert main(["registry", "register", "credit-onnx", "--repo", str(repo), "--version", "v0.1.0", "--push",
                 *assets]) == 0
    capsys.readouterr()

    state_dir = tmp_path / "state"
    deploy = ["--target", "local", "--wait", "--state-dir", str(state_dir), "--config", config_path,
              "--repo", str(repo), "--timeout", "60"]
    try:
        assert main(["deploy", "credit-onnx", "--version", "v0.1.0", *deploy]) == 0
        endpoint = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["endpoint"]
        metadata = httpx.get(f"{endpoint}/v2/models/credit-onnx", timeout=10).json()
        assert metadata["platform"] == "onnx" and metadata["versions"] == ["v0.1.0"]
        assert [i["name"] for i in metadata["inputs"]] == FEATURES
        assert metadata["outputs"][1] == {"name": "predict_proba", "datatype": "FP64", "shape": [-1, 2]}
        rows = holdout[FEATURES].head(4)
        table = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [4, 4],
                             "data": rows.to_numpy(np.float32).ravel().tolist()}]}
        response = httpx.post(f"{endpoint}/v2/models/credit-onnx/infer", json=table, timeout=10)
        assert response.status_code == 200, response.text
        outputs: dict[str, Any] = {o["name"]: o for o in response.json()["outputs"]}
        expected = load_model(out / "model.onnx")
        assert outputs["predict"]["data"] == expected.predict(rows).tolist()
        assert np.allclose(np.reshape(outputs["predict_proba"]["data"], (4, 2)), expected.predict_proba(rows))
        wrong = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 3], "data": [1.0, 2.0, 3.0]}]}
        refused = httpx.post(f"{endpoint}/v2/models/credit-onnx/infer", json=wrong, timeout=10)
        assert refused.status_code == 400 and "[rows, 4]" in refused.json()["error"]
    finally:
        main(["deploy", "stop", "credit-onnx", "--state-dir", str(state_dir)])
