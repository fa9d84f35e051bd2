"""Real, small scikit-learn models saved with skops, as the registry would hand them to the server."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from mlops_bot.model_file import save_model

FEATURES = ["income", "age", "region"]


def training_frame(seed: int = 0, rows: int = 400) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "income": rng.normal(50, 15, rows),
        "age": rng.integers(18, 80, rows).astype(float),
        "region": rng.choice(["north", "south", "east"], rows),
    })
    target = ((frame["income"] > 50) ^ (frame["region"] == "east")).astype(int)
    return frame, target


def pipeline(c: float) -> Pipeline:
    pre = ColumnTransformer([
        ("num", StandardScaler(), ["income", "age"]),
        ("cat", OneHotEncoder(handle_unknown="ignore"), ["region"]),
    ])
    return Pipeline([("pre", pre), ("clf", LogisticRegression(C=c, max_iter=500))])


def save_version(root: Path, version: str, model: object, signature: list[dict[str, str]] | None = None
                 ) -> Path:
    directory = root / version
    save_model(model, directory / "model.skops")
    if signature is not None:
        (directory / "signature.json").write_text(json.dumps({"inputs": signature}))
    return directory


def failing_pipeline() -> Pipeline:
    """A pipeline with the healthy versions' signature whose every prediction fails: its classifier
    holds 3 coefficients for the 5 columns the preprocessing makes (the file loads through the
    allow-list, the server loads it, scikit-learn raises on each request)."""
    frame, target = training_frame()
    model = pipeline(1.0).fit(frame, target)
    classifier = model.named_steps["clf"]
    classifier.coef_ = classifier.coef_[:, :3].copy()
    return model


def build_models(root: Path) -> dict[str, Path]:
    """v1.0.0 and v1.1.0 are healthy; v9.0.0-broken takes the same inputs but fails every request;
    v9.1.0-constant always predicts 1 (prediction drift); v2.0.0-no-region takes other inputs
    (income and age only), so it may not be rolled out beside them."""
    frame, target = training_frame()
    models = {
        "v1.0.0": save_version(root, "v1.0.0", pipeline(1.0).fit(frame, target)),
        "v1.1.0": save_version(root, "v1.1.0", pipeline(0.5).fit(frame, target)),
        "v9.0.0-broken": save_version(root, "v9.0.0-broken", failing_pipeline()),
        "v9.1.0-constant": save_version(
            root, "v9.1.0-constant", DummyClassifier(strategy="constant", constant=1).fit(frame, target),
            signature=[{"name": "income", "kind": "numeric"}, {"name": "age", "kind": "numeric"},
                       {"name": "region", "kind": "categorical"}],
        ),
        "v2.0.0-no-region": save_version(
            root, "v2.0.0-no-region",
            Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression())]).fit(
                frame[["income", "age"]], target)),
    }
    return models


@pytest.fixture(scope="session")
def model_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return build_models(tmp_path_factory.mktemp("models"))


def records(count: int, seed: int = 1) -> list[dict[str, object]]:
    frame, _ = training_frame(seed, count)
    return frame.to_dict("records")


@pytest.fixture(scope="session")
def make_records():  # type: ignore[no-untyped-def]
    return records


@pytest.fixture(scope="session")
def cluster_serving(model_dirs: dict[str, Path], tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """Model servers + Prometheus shared by the KServe and Argo end-to-end tests (started once)."""
    from kube_cluster.prometheus_server import shared_serving

    with shared_serving(tmp_path_factory.mktemp("cluster-serving"), model_dirs) as serving:
        yield serving
