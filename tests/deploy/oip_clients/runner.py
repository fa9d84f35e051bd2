"""Drive a live model server with the real third-party OIP v2 clients: `tritonclient[http]` and the
KServe SDK's `InferenceRESTClient`, each in JSON and in binary tensor data mode.

Executed with the `.venv-oip-clients` interpreter (the clients pin their own dependencies), never
imported by the test suite: `python runner.py URL MODEL STABLE CANARY` prints one JSON object of what
each client saw; the test compares it with the server's own answers.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import numpy as np

ROWS = {
    "income": np.array([61.5, 38.0, 55.25, 47.0], dtype=np.float64),
    "age": np.array([34, 51, 29, 62], dtype=np.int64),
    "region": np.array([b"north", b"east", b"south", b"east"], dtype=np.object_),
}
DATATYPES = {"income": "FP64", "age": "INT64", "region": "BYTES"}


def triton(url: str, model: str, stable: str, canary: str) -> dict[str, Any]:
    import tritonclient.http as http
    from tritonclient.utils import InferenceServerException

    client = http.InferenceServerClient(url=url.removeprefix("http://"))
    seen: dict[str, Any] = {
        "live": client.is_server_live(),
        "ready": client.is_server_ready(),
        "model_ready": client.is_model_ready(model),
        "stable_ready": client.is_model_ready(model, stable),
        "canary_ready": client.is_model_ready(model, canary),
        "unknown_version_ready": client.is_model_ready(model, "v9.9.9"),
        "server_metadata": client.get_server_metadata(),
        "model_metadata": client.get_model_metadata(model),
        "canary_metadata": client.get_model_metadata(model, canary),
    }
    for binary in (False, True):
        inputs = []
        for name, values in ROWS.items():
            tensor = http.InferInput(name, [len(values)], DATATYPES[name])
            tensor.set_data_from_numpy(values, binary_data=binary)
            inputs.append(tensor)
        outputs = [
            http.InferRequestedOutput("predict", binary_data=binary),
            http.InferRequestedOutput("predict_proba", binary_data=binary),
        ]
        mode = "binary" if binary else "json"
        result = client.infer(model, inputs, outputs=outputs, request_id=f"triton-{mode}")
        pinned = client.infer(model, inputs, model_version=canary, request_id="")
        seen[mode] = {
            "id": result.get_response()["id"],
            "version": result.get_response()["model_version"],
            "predict": result.as_numpy("predict").tolist(),
            "proba": result.as_numpy("predict_proba").tolist(),
            "pinned_version": pinned.get_response()["model_version"],
            "pinned_id": pinned.get_response()["id"],
            "pinned_predict": pinned.as_numpy("predict").tolist(),
        }
    errors = {}
    for case, call in {
        "unknown_model": lambda: client.get_model_metadata("nope"),
        "unknown_output": lambda: client.infer(model, inputs, outputs=[http.InferRequestedOutput("nope")]),
        "bad_value": lambda: client.infer(model, _with_nan(http)),
    }.items():
        try:
            call()
            errors[case] = None
        except InferenceServerException as exc:
            errors[case] = {"status": exc.status(), "message": exc.message()}
    seen["errors"] = errors
    client.close()
    return seen


def _with_nan(http: Any) -> list[Any]:
    inputs = []
    for name, values in ROWS.items():
        tensor = http.InferInput(name, [len(values)], DATATYPES[name])
        data = values.astype(np.float64) if name == "income" else values
        if name == "income":
            data[1] = np.nan
        tensor.set_data_from_numpy(data, binary_data=True)
        inputs.append(tensor)
    return inputs


async def kserve(url: str, model: str, stable: str, canary: str) -> dict[str, Any]:
    import httpx
    from kserve import InferenceRESTClient, InferInput, InferRequest, RESTConfig
    from kserve.protocol.infer_type import RequestedOutput

    client = InferenceRESTClient(RESTConfig(protocol="v2", timeout=30))
    seen: dict[str, Any] = {
        "live": await client.is_server_live(url),
        "ready": await client.is_server_ready(url),
        "model_ready": await client.is_model_ready(url, model),
    }
    for binary in (False, True):
        inputs = []
        for name, values in ROWS.items():
            tensor = InferInput(name, [len(values)], DATATYPES[name])
            tensor.set_data_from_numpy(values, binary_data=binary)
            inputs.append(tensor)
        outputs = [
            RequestedOutput("predict", {"binary_data": binary}),
            RequestedOutput("predict_proba", {"binary_data": binary}),
        ]
        mode = "binary" if binary else "json"
        request = InferRequest(
            model_name=model, infer_inputs=inputs, request_id=f"kserve-{mode}", request_outputs=outputs
        )
        response = await client.infer(url, request, model_name=model)
        by_name = {o.name: o for o in response.outputs}
        seen[mode] = {
            "id": response.id,
            "version": response.model_version,
            "predict": by_name["predict"].as_numpy().tolist(),
            "proba": by_name["predict_proba"].as_numpy().tolist(),
        }
    try:
        await client.infer(
            url,
            InferRequest(model_name=model, infer_inputs=[InferInput("income", [1], "INT64", [35.7])]),
            model_name=model,
        )
        seen["bad_request"] = None
    except httpx.HTTPStatusError as exc:
        seen["bad_request"] = {"status": exc.response.status_code, "message": str(exc)}
    await client.close()
    return seen


def main() -> None:
    url, model, stable, canary = sys.argv[1:5]
    result = {
        "triton": triton(url, model, stable, canary),
        "kserve": asyncio.run(kserve(url, model, stable, canary)),
    }
    print(json.dumps(result, default=str))


if __name__ == "__main__":
    main()
