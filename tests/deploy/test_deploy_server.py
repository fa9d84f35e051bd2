"""The model server over the Open Inference Protocol v2 and /predict, in-process through ASGI."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from mlops_bot.deploy.loading import load_version
from mlops_bot.deploy.model_input import frame_from_oip
from mlops_bot.deploy.router import ModelRouter
from mlops_bot.deploy.routing import RoutingRequest, VersionRef, route
from mlops_bot.deploy.server import create_app
from mlops_bot.model_signature import infer_features

TOKEN = "s3cret-admin-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def serve(model_dirs: dict[str, Path], canary: str | None = None, weight: int = 0, shadow: bool = False,
          prediction_log: Any = None) -> tuple[ModelRouter, TestClient]:
    router = ModelRouter("credit", prediction_log=prediction_log, seed=3)
    router.set_versions(RoutingRequest(
        stable=VersionRef(version="v1.0.0", path=str(model_dirs["v1.0.0"])),
        canary=VersionRef(version=canary, path=str(model_dirs[canary])) if canary else None,
        weight=weight, shadow=shadow,
    ))
    return router, TestClient(create_app(router, admin_token=TOKEN))


def oip_columns(rows: list[dict[str, Any]]) -> dict[str, Any]:
    return {"id": "req-1", "inputs": [
        {"name": "income", "shape": [len(rows)], "datatype": "FP64", "data": [r["income"] for r in rows]},
        {"name": "age", "shape": [len(rows)], "datatype": "FP64", "data": [r["age"] for r in rows]},
        {"name": "region", "shape": [len(rows)], "datatype": "BYTES", "data": [r["region"] for r in rows]},
    ]}


def test_features_inferred_from_pipeline(model_dirs: dict[str, Path]) -> None:
    model = load_version("credit", "v1.0.0", model_dirs["v1.0.0"])
    assert [(f.name, f.kind) for f in infer_features(model.model)] == [
        ("income", "numeric"), ("age", "numeric"), ("region", "categorical")]


def test_oip_infer_one_tensor_per_feature(model_dirs: dict[str, Path], make_records: Any) -> None:
    _, client = serve(model_dirs)
    rows = make_records(5)
    response = client.post("/v2/models/credit/infer", json=oip_columns(rows))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model_name"] == "credit" and body["model_version"] == "v1.0.0" and body["id"] == "req-1"
    assert [o["name"] for o in body["outputs"]] == ["predict", "predict_proba"]  # all, none named
    output = body["outputs"][0]
    assert output["name"] == "predict" and output["shape"] == [5] and output["datatype"] == "INT64"
    direct = load_version("credit", "v1.0.0", model_dirs["v1.0.0"])
    frame = frame_from_oip(oip_columns(rows), direct.features)
    assert output["data"] == direct.predict(frame)


def test_oip_infer_single_2d_tensor_and_proba(model_dirs: dict[str, Path], make_records: Any) -> None:
    _, client = serve(model_dirs)
    rows = make_records(3)
    request = {"inputs": [{"name": "input-0", "shape": [3, 3], "datatype": "BYTES",
                           "data": [[r["income"], r["age"], r["region"]] for r in rows]}],
               "outputs": [{"name": "predict"}, {"name": "predict_proba"}]}
    body = client.post("/v2/models/credit/infer", json=request).json()
    by_name = {o["name"]: o for o in body["outputs"]}
    assert by_name["predict_proba"]["shape"] == [3, 2]
    assert by_name["predict"]["data"] == client.post("/v2/models/credit/infer", json=oip_columns(rows)
                                                      ).json()["outputs"][0]["data"]


def test_predict_records(model_dirs: dict[str, Path], make_records: Any) -> None:
    _, client = serve(model_dirs)
    response = client.post("/predict", json={"records": make_records(4)})
    assert response.status_code == 200
    assert len(response.json()["predictions"]) == 4
    assert response.headers["X-Model-Version"] == "v1.0.0"


@pytest.mark.parametrize(("path", "body", "status", "needle"), [
    ("/predict", {"records": [{"income": 1.0, "age": 3.0}]}, 400, "missing feature(s): region"),
    ("/predict", {"records": [{"income": "lots", "age": 3.0, "region": "north"}]}, 422, "must be a number"),
    ("/predict", {"rows": []}, 400, "expected {\"records\""),
    ("/v2/models/credit/infer", {"inputs": [{"name": "income", "shape": [1], "datatype": "FP64",
                                             "data": [1.0]}]}, 400, "missing input tensor(s)"),
    ("/v2/models/credit/infer", {"inputs": [{"name": "x", "shape": [2, 2], "datatype": "FP64",
                                             "data": [1, 2, 3, 4]}]}, 400, "shape [rows, 3]"),
    ("/v2/models/credit/infer", {"inputs": [{"name": "x", "shape": [3], "datatype": "FP64",
                                             "data": [1, 2]}]}, 400, "2 values but shape [3]"),
    ("/v2/models/credit/infer", {"inputs": [{"name": "income", "shape": [1], "datatype": "FLOAT",
                                             "data": [1]}]}, 400, "unknown datatype"),
    ("/v2/models/credit/infer", {"inputs": "nope"}, 400, "expected an inference request"),
    ("/v2/models/other/infer", {"inputs": []}, 404, "unknown model 'other'"),
])
def test_bad_requests_get_clear_4xx(model_dirs: dict[str, Path], path: str, body: Any, status: int,
                                    needle: str) -> None:
    router, client = serve(model_dirs)
    response = client.post(path, json=body)
    assert response.status_code == status, response.text
    assert needle in response.json()["error"]
    if status != 404:  # never counted against the version: not a request it scored, not an error
        stats = router.snapshot().versions["v1.0.0"]
        assert (stats.requests, stats.errors) == (0, 0)
        assert stats.latency_buckets == [0] * len(stats.latency_buckets)


def test_invalid_json_is_400(model_dirs: dict[str, Path]) -> None:
    _, client = serve(model_dirs)
    response = client.post("/predict", content=b"{not json", headers={"content-type": "application/json"})
    assert response.status_code == 400 and "not valid JSON" in response.json()["error"]


def test_metadata_and_health(model_dirs: dict[str, Path]) -> None:
    empty = TestClient(create_app(ModelRouter("credit"), admin_token=TOKEN))
    assert empty.get("/v2/health/live").json() == {"live": True}
    assert empty.get("/v2/health/ready").status_code == 503
    _, client = serve(model_dirs, canary="v1.1.0", weight=10)
    assert client.get("/v2/health/ready").json() == {"ready": True}
    assert client.get("/v2/models/credit/ready").status_code == 200
    meta = client.get("/v2/models/credit").json()
    assert meta["versions"] == ["v1.0.0", "v1.1.0"]
    assert [i["name"] for i in meta["inputs"]] == ["income", "age", "region"]
    assert meta["inputs"][2]["datatype"] == "BYTES"
    assert client.get("/v2/models/credit/versions/v1.1.0").json()["versions"] == ["v1.1.0"]
    assert client.get("/v2").json()["name"] == "mlops-bot"


def test_weighted_split_and_sticky_key(model_dirs: dict[str, Path], make_records: Any) -> None:
    _, client = serve(model_dirs, canary="v1.1.0", weight=30)
    body = {"records": make_records(1)}
    versions = [client.post("/predict", json=body).headers["X-Model-Version"] for _ in range(150)]
    share = versions.count("v1.1.0") / len(versions)
    assert 0.15 < share < 0.45
    keyed = {client.post("/predict", json=body, headers={"X-Request-Key": "customer-42"}
                         ).headers["X-Model-Version"] for _ in range(10)}
    assert len(keyed) == 1
    buckets = [route(30, f"user-{i}", 0.0) for i in range(2000)]
    assert 0.25 < buckets.count("canary") / 2000 < 0.35
    assert route(0, "k", 0.0) == "stable" and route(100, None, 0.99) == "canary"


def test_broken_canary_falls_back_to_stable(model_dirs: dict[str, Path], make_records: Any) -> None:
    router, client = serve(model_dirs, canary="v9.0.0-broken", weight=50)
    statuses = [client.post("/predict", json={"records": make_records(1)}).status_code for _ in range(40)]
    assert set(statuses) == {200}
    snap = router.snapshot()
    canary = snap.versions["v9.0.0-broken"]
    assert canary.requests > 5 and canary.errors == canary.requests
    assert snap.versions["v1.0.0"].requests == 40
    # Addressing the broken version directly shows its failure to the caller: a well-formed
    # request (the version's own signature), so the 500 is the model's.
    direct = client.post("/v2/models/credit/versions/v9.0.0-broken/infer", json=oip_columns(make_records(1)))
    assert direct.status_code == 500 and "model failed" in direct.json()["error"]
    assert router.snapshot().versions["v9.0.0-broken"].client_errors == 0


def test_shadow_mode_scores_a_copy(model_dirs: dict[str, Path], make_records: Any) -> None:
    router, client = serve(model_dirs, canary="v1.1.0", weight=50, shadow=True)
    for _ in range(20):
        response = client.post("/predict", json={"records": make_records(1)})
        assert response.headers["X-Model-Version"] == "v1.0.0"
    router.close()  # waits for shadow scoring to finish
    assert router.snapshot().versions["v1.1.0"].requests == 20


def test_admin_api_requires_token(model_dirs: dict[str, Path]) -> None:
    _, client = serve(model_dirs)
    assert client.get("/admin/metrics").status_code == 401
    assert client.get("/admin/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/admin/metrics", headers=AUTH).json()["stable"] == "v1.0.0"
    disabled = TestClient(create_app(ModelRouter("credit"), admin_token=None))
    assert disabled.get("/admin/metrics", headers=AUTH).status_code == 403


def test_admin_swap_and_bad_path(model_dirs: dict[str, Path], tmp_path: Path) -> None:
    router, client = serve(model_dirs)
    wanted = {"stable": {"version": "v1.0.0", "path": str(model_dirs["v1.0.0"])},
              "canary": {"version": "v1.1.0", "path": str(model_dirs["v1.1.0"])}, "weight": 25}
    assert client.post("/admin/versions", json=wanted, headers=AUTH).json()["canary"] == "v1.1.0"
    assert client.get("/admin/versions", headers=AUTH).json()["weight"] == 25
    missing = {"stable": {"version": "v2.0.0", "path": str(tmp_path / "nope")}}
    response = client.post("/admin/versions", json=missing, headers=AUTH)
    assert response.status_code == 422 and "does not exist" in response.json()["error"]
    assert router.snapshot().stable == "v1.0.0"  # a failed load leaves the routing as it was
    assert client.post("/admin/versions", json={"weight": 5}, headers=AUTH).status_code == 422


def test_hot_swap_under_load_drops_nothing(model_dirs: dict[str, Path], make_records: Any) -> None:
    router, client = serve(model_dirs)
    body = {"records": make_records(2)}
    failures: list[int] = []
    stop = threading.Event()

    def hammer() -> None:
        local = TestClient(client.app)
        while not stop.is_set():
            status = local.post("/predict", json=body).status_code
            if status != 200:
                failures.append(status)

    threads = [threading.Thread(target=hammer) for _ in range(3)]
    for thread in threads:
        thread.start()
    for version, weight in [("v1.1.0", 10), ("v1.1.0", 50), ("v1.1.0", 100), (None, 0)]:
        router.set_versions(RoutingRequest(
            stable=VersionRef(version="v1.0.0", path=str(model_dirs["v1.0.0"])),
            canary=VersionRef(version=version, path=str(model_dirs[version])) if version else None,
            weight=weight))
    router.set_versions(RoutingRequest(stable=VersionRef(version="v1.1.0", path=str(model_dirs["v1.1.0"]))))
    stop.set()
    for thread in threads:
        thread.join()
    assert failures == []
    snap = router.snapshot()
    assert snap.stable == "v1.1.0" and "v1.0.0" in snap.versions  # retired version keeps its counters


def test_prometheus_endpoint(model_dirs: dict[str, Path], make_records: Any) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    _, client = serve(model_dirs, canary="v1.1.0", weight=50)
    for _ in range(6):
        client.post("/predict", json={"records": make_records(3)})
    client.post("/predict", json={"records": [{"income": None, "age": 1.0, "region": "north"}]})
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(client.get("/metrics").text)
               for s in family.samples}

    def value(name: str, version: str, **extra: str) -> float:
        role = "stable" if version == "v1.0.0" else "canary"
        labels = {"model": "credit", "version": version, "role": role, **extra}
        return samples[(name, tuple(sorted(labels.items())))]

    requests = [value("mlops_bot_requests_total", v) for v in ("v1.0.0", "v1.1.0")]
    assert sum(requests) == 6 and all(r > 0 for r in requests)
    assert sum(value("mlops_bot_client_errors_total", v) for v in ("v1.0.0", "v1.1.0")) >= 1
    assert value("mlops_bot_errors_total", "v1.0.0") == 0
    for version, count in zip(("v1.0.0", "v1.1.0"), requests, strict=True):
        assert value("mlops_bot_request_duration_seconds_count", version) == count
        assert value("mlops_bot_request_duration_seconds_bucket", version, le="+Inf") == count
    predicted = sum(v for (name, _), v in samples.items() if name == "mlops_bot_predictions_total")
    assert predicted == 18
    assert samples[("mlops_bot_canary_weight", (("model", "credit"),))] == 50


class ListLog:
    def __init__(self) -> None:
        self.rows: list[tuple[str, str, str, dict[str, Any], Any]] = []

    def record(self, request_id: str, model: str, version: str, features: dict[str, Any], prediction: Any,
               timestamp: float | None = None) -> bool:
        self.rows.append((request_id, model, version, features, prediction))
        return True


def test_predictions_are_logged(model_dirs: dict[str, Path], make_records: Any) -> None:
    log = ListLog()
    _, client = serve(model_dirs, prediction_log=log)
    client.post("/v2/models/credit/infer", json=oip_columns(make_records(2)))
    assert [r[0] for r in log.rows] == ["req-1-0", "req-1-1"]
    assert set(log.rows[0][3]) == {"income", "age", "region"}


def test_feedback_through_the_server_joins_a_logged_prediction(model_dirs: dict[str, Path], make_records: Any,
                                                               tmp_path: Path) -> None:
    from mlops_bot.monitor.log import PredictionLog, read_predictions

    log = PredictionLog(tmp_path / "predictions", flush_rows=1, flush_seconds=0)
    try:
        _, client = serve(model_dirs, prediction_log=log)
        answer = client.post("/predict", json={"id": "app-17", "records": make_records(1)})
        assert answer.status_code == 200 and answer.json()["id"] == "app-17"
        log.flush()
        response = client.post("/v2/feedback", json={"labels": [{"id": "app-17", "label": 1},
                                                                {"id": "never-seen", "label": 0}]})
        assert response.status_code == 200, response.text
        assert (response.json()["matched"], response.json()["unknown"]) == (1, 1)
        frame = read_predictions(tmp_path / "predictions")
        row = frame.set_index("request_id").loc["app-17"]
        assert row["label"] == 1 and row["version"] == "v1.0.0"
        assert row["prediction"] == answer.json()["predictions"][0]
        bad = client.post("/v2/feedback", json={"labels": []})
        assert bad.status_code == 422
    finally:
        log.close()


def test_no_feedback_endpoint_without_a_prediction_log(model_dirs: dict[str, Path]) -> None:
    _, client = serve(model_dirs)
    assert client.post("/v2/feedback", json={"labels": [{"id": "a", "label": 1}]}).status_code in (404, 405)


@pytest.mark.parametrize("numeric, categorical", [
    ([1.5, 2, None], ["a", "b", "c"]),
    ([1, 2, 3], ["a", None, "c"]),
    ([0.0, -3, 2**70], [1, 2.0, 3]),
    ([None, None, 1], ["a", 3, None]),
    ([4, 5, 6], [True, False, "x"]),
    ([7, 8, 9], [None, None, None]),
])
def test_request_frame_is_what_pandas_inference_gave(numeric: list[Any], categorical: list[Any]) -> None:
    """The request frame is built column by column with final dtypes (fast path); it must equal
    the frame pandas' own inference followed by astype(float/object) gives, value types included."""
    import math

    import pandas as pd

    from mlops_bot.deploy.model_input import frame_from_records, records_of
    from mlops_bot.model_signature import FeatureSpec

    features = [FeatureSpec(name="n", accepts_missing=True),
                FeatureSpec(name="c", kind="categorical", accepts_missing=True)]
    records = [{"n": n, "c": c} for n, c in zip(numeric, categorical, strict=True)]
    expected = pd.DataFrame({"n": [math.nan if v is None else v for v in numeric], "c": categorical})
    expected["n"] = expected["n"].astype(float)
    expected["c"] = expected["c"].astype(object)
    frame = frame_from_records({"records": records}, features)
    pd.testing.assert_frame_equal(frame, expected, check_exact=True)
    assert [type(v) for v in frame["c"].tolist()] == [type(v) for v in expected["c"].tolist()]
    assert repr(frame.to_dict("records")) == repr(expected.to_dict("records"))
    logged = records_of(frame)  # what the prediction log gets: to_dict("records"), same value types
    assert repr(logged) == repr(expected.to_dict("records"))
    assert [type(v) for r in logged for v in r.values()] == \
        [type(v) for r in expected.to_dict("records") for v in r.values()]


def test_nested_and_flat_tensor_data_give_the_same_frame(model_dirs: dict[str, Path],
                                                         make_records: Any) -> None:
    model = load_version("credit", "v1.0.0", model_dirs["v1.0.0"])
    rows = make_records(2)
    flat = oip_columns(rows)
    nested = {"inputs": [{**t, "shape": [2, 1], "data": [[v] for v in t["data"]]} for t in flat["inputs"]]}
    import pandas as pd

    pd.testing.assert_frame_equal(frame_from_oip(flat, model.features),
                                  frame_from_oip(nested, model.features))
