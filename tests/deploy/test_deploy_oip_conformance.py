"""The Open Inference Protocol v2 REST spec (KServe `required_api`, OIP `inference_rest`) as a table:
each required endpoint with its exact body shape, and every kind of malformed client input answered
with a 4xx `{"error": ...}` that names what is wrong and never counts against the version."""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from deploy.hostile import HOSTILE, columns
from mlops_bot.deploy.oip import HEADER_LENGTH, parse_inference_request
from mlops_bot.deploy.router import ModelRouter
from mlops_bot.deploy.routing import RoutingRequest, VersionRef
from mlops_bot.deploy.server import create_app

TOKEN = "conformance-token"


def app_for(
    model_dirs: dict[str, Path], canary: str | None = "v1.1.0", **options: Any
) -> tuple[ModelRouter, TestClient]:
    router = ModelRouter("credit", seed=1)
    router.set_versions(
        RoutingRequest(
            stable=VersionRef(version="v1.0.0", path=str(model_dirs["v1.0.0"])),
            canary=VersionRef(version=canary, path=str(model_dirs[canary])) if canary else None,
            weight=50,
        )
    )
    return router, TestClient(create_app(router, admin_token=TOKEN, **options))


# ------------------------------------------------------------------------ endpoints and bodies
ENDPOINTS: list[tuple[str, str, int, Any]] = [
    # (method, path, status, expected body: a dict compared exactly, or a set of required keys)
    ("GET", "/v2/health/live", 200, {"live": True}),
    ("GET", "/v2/health/ready", 200, {"ready": True}),
    ("GET", "/v2", 200, {"name", "version", "extensions"}),
    ("GET", "/v2/models/credit", 200, {"name", "versions", "platform", "inputs", "outputs"}),
    ("GET", "/v2/models/credit/versions/v1.1.0", 200, {"name", "versions", "platform", "inputs", "outputs"}),
    ("GET", "/v2/models/credit/ready", 200, {"name": "credit", "ready": True}),
    ("GET", "/v2/models/credit/versions/v1.0.0/ready", 200, {"name": "credit", "ready": True}),
    ("GET", "/v2/models/credit/versions/v1.1.0/ready", 200, {"name": "credit", "ready": True}),
    ("GET", "/v2/models/credit/versions/v7.0.0/ready", 404, {"error"}),
    ("GET", "/v2/models/credit/versions/v7.0.0", 404, {"error"}),
    ("GET", "/v2/models/nope", 404, {"error"}),
    ("GET", "/v2/models/nope/ready", 404, {"error"}),
    ("POST", "/v2/models/nope/infer", 404, {"error"}),
    ("POST", "/v2/models/credit/versions/v7.0.0/infer", 404, {"error"}),
    ("GET", "/v2/models/credit/infer", 405, {"error"}),
    ("DELETE", "/v2/health/live", 405, {"error"}),
    ("GET", "/v2/no/such/path", 404, {"error"}),
    ("GET", "/", 404, {"error"}),
]


@pytest.mark.parametrize(("method", "path", "status", "expected"), ENDPOINTS)
def test_endpoint_table(
    model_dirs: dict[str, Path], method: str, path: str, status: int, expected: Any
) -> None:
    _, client = app_for(model_dirs)
    kwargs = {"json": columns()} if method == "POST" else {}
    response = client.request(method, path, **kwargs)
    assert response.status_code == status, response.text
    body = response.json()
    if isinstance(expected, dict):
        assert body == expected
    else:
        assert set(body) == expected
    if "error" in body:
        assert isinstance(body["error"], str) and body["error"]


def test_metadata_bodies(model_dirs: dict[str, Path]) -> None:
    _, client = app_for(model_dirs)
    meta = client.get("/v2/models/credit").json()
    assert meta["name"] == "credit" and meta["versions"] == ["v1.0.0", "v1.1.0"]
    assert meta["inputs"] == [
        {"name": "income", "datatype": "FP64", "shape": [-1]},
        {"name": "age", "datatype": "FP64", "shape": [-1]},
        {"name": "region", "datatype": "BYTES", "shape": [-1]},
    ]
    assert meta["outputs"] == [
        {"name": "predict", "datatype": "INT64", "shape": [-1]},
        {"name": "predict_proba", "datatype": "FP64", "shape": [-1, 2]},
    ]
    assert "binary_tensor_data" in client.get("/v2").json()["extensions"]


def test_infer_response_shape_id_and_output_selection(model_dirs: dict[str, Path]) -> None:
    _, client = app_for(model_dirs, canary=None)
    body = client.post("/v2/models/credit/infer", json={**columns(3), "id": ""}).json()
    assert body["id"] == "" and body["model_name"] == "credit" and body["model_version"] == "v1.0.0"
    assert [(o["name"], o["datatype"], o["shape"]) for o in body["outputs"]] == [
        ("predict", "INT64", [3]),
        ("predict_proba", "FP64", [3, 2]),
    ]
    assert len(body["outputs"][1]["data"]) == 6
    only = client.post(
        "/v2/models/credit/infer", json={**columns(3), "id": "x", "outputs": [{"name": "predict_proba"}]}
    ).json()
    assert only["id"] == "x" and [o["name"] for o in only["outputs"]] == ["predict_proba"]
    versioned = client.post("/v2/models/credit/versions/v1.0.0/infer", json=columns(1))
    assert versioned.status_code == 200 and versioned.json()["model_version"] == "v1.0.0"
    generated = client.post("/v2/models/credit/infer", json=columns(1)).json()["id"]
    assert len(generated) == 36  # no id sent: the server makes one up (a UUID)


@pytest.mark.parametrize(("case", "body", "status", "needle"), HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_input_is_a_named_4xx_and_never_counts(
    model_dirs: dict[str, Path], case: str, body: Any, status: int, needle: str
) -> None:
    router, client = app_for(model_dirs)
    for path in ("/v2/models/credit/infer", "/v2/models/credit/versions/v1.1.0/infer"):
        if isinstance(body, bytes):
            response = client.post(path, content=body, headers={"content-type": "application/json"})
        else:
            response = client.post(path, json=body)
        assert response.status_code == status, (case, response.text)
        assert needle in response.json()["error"], (case, response.json())
    for stats in router.snapshot().versions.values():
        assert (stats.requests, stats.errors) == (0, 0), case


def test_missing_values_are_imputed_only_where_the_signature_accepts_them(
    model_dirs: dict[str, Path], tmp_path: Path
) -> None:
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    from deploy.conftest import training_frame
    from mlops_bot.model_file import save_model

    frame, target = training_frame()
    pre = ColumnTransformer(
        [
            ("income", make_pipeline(SimpleImputer(), StandardScaler()), ["income"]),
            ("age", StandardScaler(), ["age"]),
            ("cat", OneHotEncoder(handle_unknown="ignore"), ["region"]),
        ]
    )
    save_model(
        Pipeline([("pre", pre), ("clf", LogisticRegression())]).fit(frame, target),
        tmp_path / "v2.0.0" / "model.skops",
    )
    router = ModelRouter("credit")
    router.set_versions(RoutingRequest(stable=VersionRef(version="v2.0.0", path=str(tmp_path / "v2.0.0"))))
    client = TestClient(create_app(router))
    imputed = client.post("/v2/models/credit/infer", json=columns(income={"data": [None, 60.0]}))
    assert imputed.status_code == 200, imputed.text
    refused = client.post("/v2/models/credit/infer", json=columns(age={"data": [None, 60.0]}))
    assert refused.status_code == 400 and "feature 'age'" in refused.json()["error"]
    records = client.post("/predict", json={"records": [{"income": None, "age": 3.0, "region": "north"}]})
    assert records.status_code == 200, records.text


@pytest.mark.parametrize(
    "record",
    [
        {"income": math.nan, "age": 3.0, "region": "north"},
        {"income": None, "age": 3.0, "region": "north"},
        {"income": 1.0, "age": math.inf, "region": "north"},
        {"income": 1.0, "age": 3.0, "region": 7},
        {"income": 1.0, "age": 3.0, "region": None},
        {"income": 1.0, "age": [3.0], "region": "north"},
    ],
)
def test_hostile_records_are_4xx(model_dirs: dict[str, Path], record: dict[str, Any]) -> None:
    router, client = app_for(model_dirs)
    response = client.post("/predict", content=json.dumps({"records": [record]}).encode())
    assert response.status_code == 422, response.text
    assert "feature '" in response.json()["error"]
    assert all(s.errors == 0 and s.requests == 0 for s in router.snapshot().versions.values())


def test_body_size_limit_is_413(model_dirs: dict[str, Path]) -> None:
    router, client = app_for(model_dirs, max_body_bytes=2048)
    big = columns(400)
    response = client.post("/v2/models/credit/infer", json=big)
    assert response.status_code == 413 and "limit of 2048 bytes" in response.json()["error"]
    assert client.post("/predict", content=b"{" + b" " * 4096 + b"}").status_code == 413
    assert client.post("/v2/models/credit/infer", json=columns(2)).status_code == 200
    assert all(s.errors == 0 for s in router.snapshot().versions.values())


# -------------------------------------------------------------------------- version labels
@pytest.mark.parametrize(
    ("stable", "canary", "needle"),
    [
        ("v1.0.0\n", None, "not a registry version"),
        ("v1.0.0", 'v1.1.0\nrole="stable"', "not a registry version"),
        ("latest", None, "not a registry version"),
        ("v1.0.0", "v1.0.0", "stable's version label"),
    ],
)
def test_version_labels_are_validated_on_the_way_in(
    model_dirs: dict[str, Path], stable: str, canary: str | None, needle: str
) -> None:
    _, client = app_for(model_dirs, canary=None)
    wanted: dict[str, Any] = {"stable": {"version": stable, "path": str(model_dirs["v1.0.0"])}}
    if canary is not None:
        wanted["canary"] = {"version": canary, "path": str(model_dirs["v1.1.0"])}
        wanted["weight"] = 50
    response = client.post("/admin/versions", json=wanted, headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 422 and needle in response.json()["error"]
    assert (
        client.get("/admin/versions", headers={"Authorization": f"Bearer {TOKEN}"}).json()["stable"]
        == "v1.0.0"
    )


# --------------------------------------------------------------------------- binary tensors
def binary_request(
    rows: int, outputs: list[dict[str, Any]] | None = None, parameters: dict[str, Any] | None = None
) -> tuple[bytes, int]:
    income = np.arange(rows, dtype="<f8") + 40
    age = np.arange(rows, dtype="<i4") + 20
    region = b"".join(struct.pack("<I", len(s)) + s for s in [b"north", b"east"] * (rows // 2))
    header: dict[str, Any] = {
        "inputs": [
            {
                "name": "income",
                "shape": [rows],
                "datatype": "FP64",
                "parameters": {"binary_data_size": income.nbytes},
            },
            {
                "name": "age",
                "shape": [rows],
                "datatype": "INT32",
                "parameters": {"binary_data_size": age.nbytes},
            },
            {
                "name": "region",
                "shape": [rows],
                "datatype": "BYTES",
                "parameters": {"binary_data_size": len(region)},
            },
        ]
    }
    if outputs is not None:
        header["outputs"] = outputs
    if parameters:
        header["parameters"] = parameters
    text = json.dumps(header).encode()
    return text + income.tobytes() + age.tobytes() + region, len(text)


def test_binary_inputs_and_outputs_round_trip(model_dirs: dict[str, Path]) -> None:
    _, client = app_for(model_dirs, canary=None)
    body, length = binary_request(
        4, outputs=[{"name": "predict", "parameters": {"binary_data": True}}, {"name": "predict_proba"}]
    )
    response = client.post(
        "/v2/models/credit/infer",
        content=body,
        headers={HEADER_LENGTH: str(length), "content-type": "application/octet-stream"},
    )
    assert response.status_code == 200, response.text
    json_length = int(response.headers[HEADER_LENGTH])
    header = json.loads(response.content[:json_length])
    predict, proba = header["outputs"]
    assert "data" not in predict and predict["parameters"]["binary_data_size"] == 4 * 8
    labels = np.frombuffer(response.content[json_length:], dtype="<i8")
    as_json = client.post(
        "/v2/models/credit/infer",
        json={
            "inputs": [
                {"name": "income", "shape": [4], "datatype": "FP64", "data": [40.0, 41.0, 42.0, 43.0]},
                {"name": "age", "shape": [4], "datatype": "INT32", "data": [20, 21, 22, 23]},
                {
                    "name": "region",
                    "shape": [4],
                    "datatype": "BYTES",
                    "data": ["north", "east", "north", "east"],
                },
            ]
        },
    ).json()
    assert labels.tolist() == as_json["outputs"][0]["data"]
    assert proba["data"] == as_json["outputs"][1]["data"]
    everything, length = binary_request(2, parameters={"binary_data_output": True})
    response = client.post(
        "/v2/models/credit/infer", content=everything, headers={HEADER_LENGTH: str(length)}
    )
    header = json.loads(response.content[: int(response.headers[HEADER_LENGTH])])
    assert [o["parameters"]["binary_data_size"] for o in header["outputs"]] == [2 * 8, 2 * 2 * 8]


@pytest.mark.parametrize(
    ("mutate", "needle"),
    [
        (lambda body, n: (body[:-3], n), "declares 17 bytes of binary data but the body holds 14"),
        (lambda body, n: (body + b"xx", n), "2 bytes of binary data no input declares"),
        (lambda body, n: (body, n + 5), "not valid JSON"),
        (lambda body, n: (body, len(body) + 10), "does not fit"),
        (lambda body, n: (body[:n] + struct.pack("<d", math.inf) + body[n + 8 :], n), "send finite numbers"),
    ],
)
def test_malformed_binary_requests_are_400(model_dirs: dict[str, Path], mutate: Any, needle: str) -> None:
    router, client = app_for(model_dirs)
    body, length = mutate(*binary_request(2))
    response = client.post("/v2/models/credit/infer", content=body, headers={HEADER_LENGTH: str(length)})
    assert response.status_code == 400 and needle in response.json()["error"], response.text
    assert all(s.errors == 0 for s in router.snapshot().versions.values())


def test_parse_keeps_binary_numbers_without_copying() -> None:
    body, length = binary_request(2)
    request = parse_inference_request(body, str(length))
    income = request.inputs[0].values
    assert income.tolist() == [40.0, 41.0] and not income.flags.owndata
    assert request.inputs[2].values.tolist() == ["north", "east"]
