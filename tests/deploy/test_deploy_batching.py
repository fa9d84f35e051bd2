"""Adaptive batching: concurrent requests scored in one predict call give exactly the answers each
request gets alone, and one request that makes the model fail fails only itself."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from deploy.hostile import columns
from mlops_bot.deploy.batching import BatchPolicy, join_frames
from mlops_bot.deploy.model_input import frame_from_oip
from mlops_bot.deploy.router import ModelRouter
from mlops_bot.deploy.routing import RoutingRequest, VersionRef


def test_join_frames_is_concat() -> None:
    a = pd.DataFrame(
        {"x": np.array([1.0, 2.0]), "c": pd.Series(np.array(["a", "b"], dtype=object), dtype=object)}
    )
    b = pd.DataFrame({"x": np.array([3.0]), "c": pd.Series(np.array(["z"], dtype=object), dtype=object)})
    pd.testing.assert_frame_equal(join_frames([a, b]), pd.concat([a, b], ignore_index=True))
    assert join_frames([a]) is a


def _router(path: Path, version: str, policy: BatchPolicy) -> ModelRouter:
    router = ModelRouter("credit", batching=policy)
    router.set_versions(RoutingRequest(stable=VersionRef(version=version, path=str(path))))
    return router


def _concurrently(router: ModelRouter, bodies: list[dict[str, Any]], proba: Any = "no") -> list[Any]:
    results: list[Any] = [None] * len(bodies)
    start = threading.Barrier(len(bodies))

    def one(index: int) -> None:
        start.wait()
        try:
            _, _, predictions, probabilities = router.infer(frame_from_oip, bodies[index], None, proba=proba)
            results[index] = (predictions, probabilities)
        except Exception as exc:
            results[index] = exc

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(bodies))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_batched_answers_equal_unbatched(model_dirs: dict[str, Path]) -> None:
    bodies = []
    for i in range(12):
        rows = 1 + i % 4
        bodies.append(
            columns(
                rows,
                income={"data": [30.0 + 7 * i + r for r in range(rows)]},
                region={"data": [["north", "south", "east"][(i + r) % 3] for r in range(rows)]},
            )
        )
    alone = _router(model_dirs["v1.0.0"], "v1.0.0", BatchPolicy())
    expected = [alone.infer(frame_from_oip, body, None, proba="optional")[2:] for body in bodies]
    batched = _router(model_dirs["v1.0.0"], "v1.0.0", BatchPolicy(max_rows=64, max_delay=0.2))
    try:
        got = _concurrently(batched, bodies, proba="optional")
        assert got == [tuple(e) for e in expected]
        batcher = next(iter(batched._batchers.values()))
        assert batcher.calls >= 1 and batcher.joined >= 2  # they were really scored together
        stats = batched.snapshot().versions["v1.0.0"]
        assert stats.requests == 12 and stats.errors == 0
        assert sum(stats.predictions.values()) == sum(1 + i % 4 for i in range(12))
    finally:
        batched.close()
        alone.close()


@pytest.fixture()
def strict_model(tmp_path: Path) -> Path:
    """A pipeline whose encoder refuses unknown categories: a request with one fails in the model."""
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    from deploy.conftest import training_frame
    from mlops_bot.model_file import save_model

    frame, target = training_frame()
    pre = ColumnTransformer(
        [
            ("num", StandardScaler(), ["income", "age"]),
            ("cat", OneHotEncoder(handle_unknown="error"), ["region"]),
        ]
    )
    save_model(
        Pipeline([("pre", pre), ("clf", LogisticRegression())]).fit(frame, target),
        tmp_path / "v3.0.0" / "model.skops",
    )
    return tmp_path / "v3.0.0"


def test_one_failing_request_fails_only_itself(strict_model: Path) -> None:
    router = _router(strict_model, "v3.0.0", BatchPolicy(max_rows=64, max_delay=0.2))
    try:
        bodies = [columns(2) for _ in range(5)] + [columns(2, region={"data": ["north", "atlantis"]})]
        results = _concurrently(router, bodies)
        assert all(isinstance(r, tuple) and len(r[0]) == 2 for r in results[:5])
        assert isinstance(results[5], ValueError) and "atlantis" in str(results[5])
        stats = router.snapshot().versions["v3.0.0"]
        assert (stats.requests, stats.errors) == (6, 1)
    finally:
        router.close()
