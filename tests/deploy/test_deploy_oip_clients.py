"""The model server against the real third-party OIP v2 clients, over real HTTP on 127.0.0.1:
`tritonclient[http]` and the KServe SDK's `InferenceRESTClient`, in JSON and binary tensor modes.
They run in `.venv-oip-clients` (`make oip-clients`; they pin their own dependencies) through
`oip_clients/runner.py`; the answers are compared with what the server says over plain JSON."""

from __future__ import annotations

import json
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from mlops_bot.deploy.router import ModelRouter
from mlops_bot.deploy.routing import RoutingRequest, VersionRef
from mlops_bot.deploy.server import create_app

ROOT = Path(__file__).resolve().parents[2]
CLIENTS_PYTHON = ROOT / ".venv-oip-clients" / "bin" / "python"
RUNNER = Path(__file__).with_name("oip_clients") / "runner.py"

pytestmark = pytest.mark.skipif(
    not CLIENTS_PYTHON.exists(), reason="OIP client venv missing: run `make oip-clients`"
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture()
def live_server(model_dirs: dict[str, Path]) -> Iterator[tuple[str, ModelRouter]]:
    router = ModelRouter("credit", seed=0)
    router.set_versions(
        RoutingRequest(
            stable=VersionRef(version="v1.0.0", path=str(model_dirs["v1.0.0"])),
            canary=VersionRef(version="v1.1.0", path=str(model_dirs["v1.1.0"])),
            weight=0,
        )
    )
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(router), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(3000):
        if server.started:
            break
        threading.Event().wait(0.01)
    assert server.started, "the model server did not start"
    try:
        yield f"http://127.0.0.1:{port}", router
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        router.close()


def _server_answer(url: str, version: str | None) -> dict[str, Any]:
    path = f"/v2/models/credit/versions/{version}/infer" if version else "/v2/models/credit/infer"
    body = {
        "inputs": [
            {"name": "income", "shape": [4], "datatype": "FP64", "data": [61.5, 38.0, 55.25, 47.0]},
            {"name": "age", "shape": [4], "datatype": "INT64", "data": [34, 51, 29, 62]},
            {"name": "region", "shape": [4], "datatype": "BYTES", "data": ["north", "east", "south", "east"]},
        ]
    }
    outputs = {o["name"]: o for o in httpx.post(url + path, json=body, timeout=30).json()["outputs"]}
    width = outputs["predict_proba"]["shape"][1]
    flat = outputs["predict_proba"]["data"]
    return {
        "predict": outputs["predict"]["data"],
        "proba": [flat[i : i + width] for i in range(0, len(flat), width)],
    }


def test_tritonclient_and_kserve_sdk_in_json_and_binary_modes(live_server: tuple[str, ModelRouter]) -> None:
    url, router = live_server
    done = subprocess.run(
        [str(CLIENTS_PYTHON), str(RUNNER), url, "credit", "v1.0.0", "v1.1.0"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout)
    stable, canary = _server_answer(url, None), _server_answer(url, "v1.1.0")

    triton = seen["triton"]
    assert (triton["live"], triton["ready"], triton["model_ready"]) == (True, True, True)
    assert (triton["stable_ready"], triton["canary_ready"], triton["unknown_version_ready"]) == (
        True,
        True,
        False,
    )
    assert "binary_tensor_data" in triton["server_metadata"]["extensions"]
    assert triton["model_metadata"]["versions"] == ["v1.0.0", "v1.1.0"]
    assert triton["canary_metadata"]["versions"] == ["v1.1.0"]
    for mode in ("json", "binary"):
        answer = triton[mode]
        assert answer["id"] == f"triton-{mode}" and answer["version"] == "v1.0.0"
        assert answer["predict"] == stable["predict"]
        assert answer["proba"] == stable["proba"]  # FP64 round-trips exactly in both modes
        assert answer["pinned_version"] == "v1.1.0" and answer["pinned_predict"] == canary["predict"]
    errors = triton["errors"]
    assert "unknown model 'nope'" in errors["unknown_model"]["message"]
    assert "unknown output 'nope'" in errors["unknown_output"]["message"]
    assert errors["unknown_output"]["status"] == "400"
    assert "input 'income' has a missing value" in errors["bad_value"]["message"]

    kserve = seen["kserve"]
    assert (kserve["live"], kserve["ready"], kserve["model_ready"]) == (True, True, True)
    for mode in ("json", "binary"):
        answer = kserve[mode]
        assert answer["id"] == f"kserve-{mode}"  # (InferResponse.from_bytes drops model_version)
        assert answer["predict"] == stable["predict"]
        assert answer["proba"] == stable["proba"]  # FP64 round-trips exactly in both modes
    assert kserve["bad_request"]["status"] == 400
    assert "INT64 and holds 35.7" in kserve["bad_request"]["message"]

    for stats in router.snapshot().versions.values():
        assert stats.errors == 0
