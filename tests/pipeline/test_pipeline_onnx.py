"""ONNX models through `mlops-bot validate`: a scikit-learn model exported with skl2onnx by the
training command is evaluated with onnxruntime, with the same metrics as the scikit-learn model
itself; a damaged .onnx file is one clear error."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn import metrics as skm
from sklearn.linear_model import LogisticRegression

from mlops_bot.cli import main
from mlops_bot.demo.dataset import generate
from mlops_bot.model_file import load_model

FEATURES = ["age", "income", "debt_ratio", "late_payments"]

TRAIN = '''
import os, sys
import numpy as np, pandas as pd
from sklearn.linear_model import LogisticRegression
from skl2onnx import to_onnx

train = pd.read_csv(os.environ["MLOPS_TRAIN_PATH"])
X = train[FEATURE_LIST].to_numpy(np.float32)
model = LogisticRegression(max_iter=1000).fit(X, train["default"])
if sys.argv[1] == "damaged":
    data = b"not a protobuf graph"
else:
    data = to_onnx(model, X[:1], options={id(model): {"zipmap": False}}).SerializeToString()
open(os.environ["MLOPS_MODEL_PATH"], "wb").write(data)
'''.replace("FEATURE_LIST", repr(FEATURES))


def _project(root: Path, kind: str) -> Path:
    (root / "data").mkdir(parents=True, exist_ok=True)
    generate(400, seed=1).to_csv(root / "data" / "train.csv", index=False)
    generate(300, seed=2, id_start=10_000).to_csv(root / "data" / "holdout.csv", index=False)
    (root / "train.py").write_text(TRAIN, encoding="utf-8")
    config = {
        "model": {"name": "credit-onnx", "task": "classification"},
        "train": {"command": f"python train.py {kind}", "model_path": "build/model.onnx"},
        "data": {"train": "data/train.csv", "holdout": "data/holdout.csv", "target": "default",
                 "features": FEATURES},
        "bootstrap": {"samples": 100},
        "drift": {"enabled": False},
    }
    (root / "build").mkdir(exist_ok=True)
    path = root / ".github" / "mlops.yml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def test_onnx_classifier_metrics_equal_the_sklearn_model(tmp_path: Path) -> None:
    config = _project(tmp_path, "good")
    assert main(["validate", "--config", str(config), "--output", str(tmp_path / "out"), "--quiet"]) == 0
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    train = pd.read_csv(tmp_path / "data" / "train.csv")
    holdout = pd.read_csv(tmp_path / "data" / "holdout.csv")
    model = LogisticRegression(max_iter=1000).fit(train[FEATURES].to_numpy(np.float32), train["default"])
    X = holdout[FEATURES].to_numpy(np.float32)
    y = holdout["default"].to_numpy()
    assert report["metrics"]["accuracy"]["head"] == pytest.approx(skm.accuracy_score(y, model.predict(X)))
    onnx_model = load_model(tmp_path / "build" / "model.onnx")
    assert list(onnx_model.classes_) == [0, 1]
    # probabilities are computed in float32 inside the graph: our ROC AUC is scikit-learn's on them,
    # and within float32 rounding of the scikit-learn model's own
    proba = onnx_model.predict_proba(holdout[FEATURES])
    assert report["metrics"]["roc_auc"]["head"] == pytest.approx(skm.roc_auc_score(y, proba[:, 1]), abs=1e-12)
    assert report["metrics"]["roc_auc"]["head"] == pytest.approx(
        skm.roc_auc_score(y, model.predict_proba(X)[:, 1]), abs=1e-3)
    assert report["metrics"]["log_loss"]["head"] == pytest.approx(skm.log_loss(y, proba), rel=1e-6)

def test_a_damaged_onnx_file_is_one_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = _project(tmp_path, "damaged")
    assert main(["validate", "--config", str(config), "--output", str(tmp_path / "out"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is not a loadable ONNX model" in err[0]
