"""XGBoost, LightGBM and CatBoost models (their scikit-learn APIs, saved with skops by a training
command) through `mlops-bot validate`, loaded through the exact per-framework allow-lists; one clear
error for a damaged model file and for a type on no list, and a repository's `model.trusted_types`.
A CatBoost model is also served from the validation's output (its signature.json)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from mlops_bot.cli import main
from mlops_bot.demo.dataset import generate
from mlops_bot.model_file import CATBOOST_TYPES, LIGHTGBM_TYPES, XGBOOST_TYPES, load_model
from validate_project import validate_cli, write_config

TRAIN = '''
import os, sys
import numpy as np, pandas as pd, skops.io as sio
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer
from sklearn.linear_model import LogisticRegression

kind = sys.argv[1]
train = pd.read_csv(os.environ["MLOPS_TRAIN_PATH"])
X, y = train[["age", "income", "debt_ratio", "late_payments"]], train["risk_band"]
if kind == "lightgbm":
    import lightgbm
    model = lightgbm.LGBMClassifier(n_estimators=30, verbose=-1, random_state=0).fit(X, y)
elif kind == "xgboost":
    import xgboost
    regressor = xgboost.XGBRegressor(n_estimators=30, random_state=0)
    model = regressor.fit(X[["age", "debt_ratio"]], train["income"])
elif kind == "catboost":
    from catboost import CatBoostClassifier
    X = train[["age", "income", "debt_ratio", "late_payments", "employment"]]
    model = CatBoostClassifier(iterations=60, depth=4, random_seed=0, thread_count=1, verbose=False,
                               allow_writing_files=False, cat_features=["employment"]).fit(X, y)
elif kind == "untrusted":
    # np.asarray is harmless but on no list: a stand-in for a team's own transformer
    model = make_pipeline(FunctionTransformer(np.asarray), LogisticRegression(max_iter=500)).fit(X, y)
if kind == "damaged":
    open(os.environ["MLOPS_MODEL_PATH"], "wb").write(b"PK\\x03\\x04 not a zip")
else:
    sio.dump(model, os.environ["MLOPS_MODEL_PATH"])
'''


def _project(root: Path, kind: str, **overrides: object) -> Path:
    (root / "data").mkdir(parents=True, exist_ok=True)
    for name, n, seed in (("train", 500, 1), ("holdout", 300, 2)):
        frame = generate(n, seed=seed, id_start=seed * 10_000)
        score = frame["debt_ratio"] * 3 + frame["late_payments"] - frame["income"] / 40_000
        frame["risk_band"] = ["low" if s < 0.5 else "medium" if s < 2 else "high" for s in score]
        frame.to_csv(root / "data" / f"{name}.csv", index=False)
    (root / "train.py").write_text(TRAIN, encoding="utf-8")
    config: dict[str, object] = {
        "model": {"name": "risk", "task": "classification"},
        "train": {"command": f"python train.py {kind}", "model_path": "build/model.skops"},
        "data": {"train": "data/train.csv", "holdout": "data/holdout.csv", "target": "risk_band",
                 "features": ["age", "income", "debt_ratio", "late_payments"]},
        "bootstrap": {"samples": 100},
        "drift": {"enabled": False},
    }
    config.update(overrides)
    (root / "build").mkdir(exist_ok=True)
    return write_config(root, config)


def test_lightgbm_multiclass_model_validates_against_its_own_baseline(tmp_path: Path) -> None:
    config = _project(tmp_path, "lightgbm")
    assert validate_cli(config, tmp_path / "base") == 0
    assert validate_cli(config, tmp_path / "head", "--base-model",
                        str(tmp_path / "base" / "model.skops")) == 0
    report = json.loads((tmp_path / "head" / "report.json").read_text())
    f1 = report["metrics"]["f1_weighted"]
    assert f1["head"] > 0.7 and f1["diff"] == pytest.approx(0.0) and f1["ci"] == [0.0, 0.0]
    assert report["confusion_matrix"]["labels"] == ["high", "low", "medium"]


def test_xgboost_regressor_validates(tmp_path: Path) -> None:
    config = _project(
        tmp_path, "xgboost", model={"name": "income", "task": "regression"},
        data={"train": "data/train.csv", "holdout": "data/holdout.csv", "target": "income",
              "features": ["age", "debt_ratio"]},
    )
    assert validate_cli(config, tmp_path / "out") == 0
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert set(report["metrics"]) == {"rmse", "mae", "r2", "mape"}


def test_catboost_multiclass_model_validates_against_its_own_baseline_and_serves(tmp_path: Path) -> None:
    pytest.importorskip("catboost")
    features = ["age", "income", "debt_ratio", "late_payments", "employment"]
    config = _project(tmp_path, "catboost", data={"train": "data/train.csv", "holdout": "data/holdout.csv",
                                                  "target": "risk_band", "features": features})
    assert validate_cli(config, tmp_path / "base") == 0
    assert validate_cli(config, tmp_path / "head", "--base-model",
                        str(tmp_path / "base" / "model.skops")) == 0
    report = json.loads((tmp_path / "head" / "report.json").read_text())
    f1 = report["metrics"]["f1_weighted"]
    assert f1["head"] > 0.7 and f1["diff"] == pytest.approx(0.0) and f1["ci"] == [0.0, 0.0]
    # CatBoost records no feature_names_in_: the signature names the configured features, and the
    # text column (a CatBoost categorical feature) takes strings.
    signature = json.loads((tmp_path / "head" / "signature.json").read_text())
    assert [(i["name"], i["datatype"]) for i in signature["inputs"]] == [
        ("age", "FP64"), ("income", "FP64"), ("debt_ratio", "FP64"), ("late_payments", "FP64"),
        ("employment", "BYTES")]
    assert signature["classes"] == ["high", "low", "medium"]

    from fastapi.testclient import TestClient

    from mlops_bot.deploy.router import ModelRouter
    from mlops_bot.deploy.routing import RoutingRequest, VersionRef
    from mlops_bot.deploy.server import create_app

    router = ModelRouter("risk")
    router.set_versions(RoutingRequest(stable=VersionRef(version="v1.0.0", path=str(tmp_path / "head"))))
    client = TestClient(create_app(router))
    holdout = pd.read_csv(tmp_path / "data" / "holdout.csv").head(6)
    response = client.post("/predict", json={"records": holdout[features].to_dict("records")})
    assert response.status_code == 200, response.text
    model = load_model(tmp_path / "head" / "model.skops")
    assert response.json()["predictions"] == model.predict(holdout[features]).ravel().tolist()
    outputs = client.get("/v2/models/risk").json()["outputs"]
    assert outputs == [{"name": "predict", "datatype": "BYTES", "shape": [-1]},
                       {"name": "predict_proba", "datatype": "FP64", "shape": [-1, 3]}]


def test_allow_lists_are_exact_names() -> None:
    assert "xgboost.sklearn.XGBClassifier" in XGBOOST_TYPES and "lightgbm.basic.Booster" in LIGHTGBM_TYPES
    assert "catboost.core.CatBoostRegressor" in CATBOOST_TYPES
    assert all(name.count(".") >= 1 and "*" not in name
               for name in XGBOOST_TYPES | LIGHTGBM_TYPES | CATBOOST_TYPES)


def test_a_catboost_regressor_round_trips_through_the_allow_list(tmp_path: Path) -> None:
    catboost = pytest.importorskip("catboost")
    from mlops_bot.model_file import check_skops, save_model

    frame = generate(200, seed=3)
    X = frame[["age", "debt_ratio", "late_payments"]]
    model = catboost.CatBoostRegressor(iterations=30, random_seed=0, thread_count=1, verbose=False,
                                       allow_writing_files=False).fit(X, frame["income"])
    path = save_model(model, tmp_path / "model.skops")
    assert check_skops(path.read_bytes(), str(path)) == ["catboost.core.CatBoostRegressor"]
    loaded = load_model(path)
    assert loaded.predict(X).tolist() == model.predict(X).tolist()


def test_a_damaged_model_file_is_one_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = _project(tmp_path, "damaged")
    assert validate_cli(config, tmp_path / "out") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is not a valid skops file" in err[0]
    assert not (tmp_path / "out").exists()


def test_an_untrusted_type_is_refused_by_name_unless_the_repository_trusts_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _project(tmp_path, "untrusted")
    assert validate_cli(config, tmp_path / "out") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not on the model-type allow-list: numpy.asarray" in err[0]
    config = _project(tmp_path, "untrusted", model={"name": "risk", "task": "classification",
                                                    "trusted_types": ["numpy.asarray"]})
    assert validate_cli(config, tmp_path / "out") == 0
    config = _project(tmp_path, "untrusted", model={"name": "risk", "task": "classification",
                                                    "trusted_types": ["os.system"]})
    assert validate_cli(config, tmp_path / "out") == 2
    assert "os.system can never be trusted" in capsys.readouterr().err


def _oip_infer(endpoint: str, name: str, rows: pd.DataFrame) -> list[object]:
    """Score rows over OIP v2 (one BYTES/FP64 tensor per input) and return the `predict` output."""
    import httpx

    inputs = [{"name": column, "datatype": "FP64", "shape": [len(rows)], "data": rows[column].tolist()}
              for column in rows.columns]
    answer = httpx.post(f"{endpoint}/v2/models/{name}/infer", json={"inputs": inputs}, trust_env=False,
                        timeout=30)
    assert answer.status_code == 200, answer.text
    outputs = {output["name"]: output["data"] for output in answer.json()["outputs"]}
    return list(outputs["predict"])


@pytest.mark.slow
def test_a_model_needing_a_trusted_type_validates_and_serves_with_the_configs_list(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`model.trusted_types` is the same list for every loader: validate, `serve --config` (or
    `--trusted-type`) and `deploy --target local`, which starts the server with the model's list."""
    import subprocess
    import sys
    import time

    import httpx

    from mlops_bot.deploy.targets.local import free_port

    trusting = {"name": "risk", "task": "classification", "trusted_types": ["numpy.asarray"]}
    config = _project(tmp_path, "untrusted", model=trusting)
    version = tmp_path / "models" / "v1.0.0"
    assert validate_cli(config, version) == 0
    features = ["age", "income", "debt_ratio", "late_payments"]
    rows = pd.read_csv(tmp_path / "data" / "holdout.csv").head(5)[features].astype(float)
    expected = load_model(version / "model.skops", extra_types=["numpy.asarray"]).predict(rows).tolist()
    capsys.readouterr()

    # Without the list the server refuses the model before binding: one line, exit 2.
    assert main(["serve", "risk", "--model", str(version), "--port", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not on the model-type allow-list: numpy.asarray" in err[0]
    # A name no list may hold is refused whatever asks for it.
    assert main(["serve", "risk", "--model", str(version), "--port", "0", "--config", str(config),
                 "--trusted-type", "os.system"]) == 2
    assert "os.system can never be trusted" in capsys.readouterr().err

    # `serve --config`: the model's own list, as a process answering OIP v2.
    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "mlops_bot", "serve", "risk", "--port", str(port), "--model", str(version),
             "--version", "v1.0.0", "--config", str(config)],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        endpoint = f"http://127.0.0.1:{port}"
        for _ in range(1200):
            assert process.poll() is None, log.read_text()
            try:
                if httpx.get(f"{endpoint}/v2/health/ready", trust_env=False, timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        else:
            pytest.fail(f"serve never became ready: {log.read_text()}")
        assert _oip_infer(endpoint, "risk", rows) == expected
    finally:
        process.terminate()
        process.wait(timeout=30)

    # `deploy --target local`: the deploy reads the model's list and starts the server with it.
    monkeypatch.setenv("MLOPS_BOT_LOCAL_FORGE", str(tmp_path / "forge"))
    monkeypatch.setenv("GITHUB_REPOSITORY", "acme/risk")
    state_dir = tmp_path / "state"
    try:
        assert main(["deploy", "risk", "--version", "v1.0.0", "--target", "local", "--wait", "--state-dir",
                     str(state_dir), "--config", str(config), "--models", str(version.parent),
                     "--timeout", "60"]) == 0
        endpoint = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["endpoint"]
        assert _oip_infer(endpoint, "risk", rows) == expected
    finally:
        main(["deploy", "stop", "risk", "--state-dir", str(state_dir)])
