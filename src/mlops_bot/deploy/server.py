"""The model server's HTTP app: Open Inference Protocol v2 (KServe `required_api`, OIP `inference_rest`,
with the binary tensor data extension) plus `/predict`, the admin API the rollout controller drives,
and `/metrics`.

Request conversion lives in `oip.py`, the serving state and the stable/canary split in `router.py`,
model loading in `loading.py`; this module maps HTTP onto them. Every error body is
`{"error": "<message>"}`, for unrouted paths and wrong methods too (tritonclient decodes it).
"""

from __future__ import annotations

import hmac
import uuid
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from mlops_bot import __version__
from mlops_bot.deploy.metrics import render_prometheus
from mlops_bot.deploy.model_input import frame_from_records, frame_from_request
from mlops_bot.deploy.oip import (
    HEADER_LENGTH,
    BadRequest,
    InferenceRequest,
    encode_response,
    model_metadata,
    output_tensors,
    parse_inference_request,
    parse_json,
)
from mlops_bot.deploy.router import ModelRouter, NotFound, ProbaWanted, Routing, ServiceUnavailable
from mlops_bot.deploy.routing import RoutingRequest
from mlops_bot.errors import MlopsError

REQUEST_KEY_HEADER = "X-Request-Key"
# Inference bodies past this are refused with 413 before they are read whole.
DEFAULT_MAX_BODY_BYTES = 32 * 1024 * 1024
EXTENSIONS = ["binary_tensor_data"]


class BodyTooLarge(MlopsError):
    pass


def create_app(router: ModelRouter, admin_token: str | None = None, *,
               log_dir: str | Path | None = None, feedback_token: str | None = None,
               max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> FastAPI:
    """The ASGI app. Inference runs in the thread pool, off the event loop.
    The admin API answers only with a matching bearer token (compared in constant time).

    With a prediction log (`log_dir`, or the directory of the router's log) the monitoring
    feedback endpoint `POST /v2/feedback` is mounted too, so late labels reach the same log the
    predictions went to and join them by request id (the `id` each response returns)."""
    app = FastAPI(title="mlops-bot model server", version=__version__, docs_url=None, redoc_url=None)
    name = router.name
    if log_dir is None and router.prediction_log is not None:
        log_dir = getattr(router.prediction_log, "directory", None)
    if log_dir is not None:
        from mlops_bot.monitor.feedback import make_router

        app.include_router(make_router(Path(log_dir), token=feedback_token), prefix="/v2")

    def error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=status, headers=headers)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        if exc.status_code == 404:
            message = f"no such endpoint: {request.method} {request.url.path}"
        elif exc.status_code == 405:
            message = f"method {request.method} is not allowed on {request.url.path}"
        return error(exc.status_code, message, getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        return error(500, f"internal error: {type(exc).__name__}: {exc}")

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}"
                             for e in exc.errors())
        return error(422, f"invalid request: {problems}")

    def unknown_model(model_name: str) -> JSONResponse | None:
        if model_name != name:
            return error(404, f"unknown model {model_name!r}; this server serves {name!r}")
        return None

    def authorised(request: Request) -> JSONResponse | None:
        if not admin_token:
            return error(403, "admin API disabled: start the server with MLOPS_BOT_ADMIN_TOKEN set")
        given = request.headers.get("authorization", "")
        expected = f"Bearer {admin_token}"
        if not hmac.compare_digest(given.encode(), expected.encode()):
            return error(401, "missing or wrong admin token")
        return None

    async def read_body(request: Request) -> bytes:
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > max_body_bytes:
            raise BodyTooLarge(f"the request body ({declared} bytes) is larger than the server's limit of "
                               f"{max_body_bytes} bytes")
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > max_body_bytes:
                raise BodyTooLarge(f"the request body is larger than the server's limit of {max_body_bytes} "
                                   "bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    def answer_oip(raw: bytes, header_length: str | None, request_key: str | None,
                   version: str | None) -> Response:
        try:
            request = parse_inference_request(raw, header_length)
            names = request.output_names()
            proba: ProbaWanted = "no" if "predict_proba" not in names else \
                "optional" if request.outputs is None else "required"
            model, frame, predictions, probabilities = router.infer(
                frame_from_request, request, request_key, version=version, proba=proba)
        except MlopsError as exc:
            return failure(exc)
        except Exception as exc:  # the model failed; the client gets a 500 with a reason
            return error(500, f"model failed: {type(exc).__name__}: {exc}")
        request_id = request.id if request.id is not None else str(uuid.uuid4())
        router.log(request_id or str(uuid.uuid4()), model, frame, predictions)
        tensors = output_tensors(names, predictions, probabilities)
        header = {"model_name": name, "model_version": model.version, "id": request_id}
        try:
            body, json_length = encode_response(header, tensors, binary_outputs(request))
        except ValueError as exc:  # e.g. a regressor's NaN: not JSON
            return error(500, f"model failed: its output cannot be sent: {exc}")
        headers = {"X-Model-Version": model.version}
        if json_length is None:
            return Response(body, media_type="application/json", headers=headers)
        headers[HEADER_LENGTH] = str(json_length)
        return Response(body, media_type="application/octet-stream", headers=headers)

    def answer_records(raw: bytes, request_key: str | None, want_proba: bool) -> Response:
        try:
            body = parse_json(raw)
            model, frame, predictions, proba = router.infer(
                frame_from_records, body, request_key, proba="required" if want_proba else "no")
        except MlopsError as exc:
            return failure(exc)
        except Exception as exc:  # the model failed; the client gets a 500 with a reason
            return error(500, f"model failed: {type(exc).__name__}: {exc}")
        given = body.get("id") if isinstance(body, dict) else None
        request_id = given if isinstance(given, str) and given else str(uuid.uuid4())
        router.log(request_id, model, frame, predictions)
        payload: dict[str, Any] = {"model_name": name, "model_version": model.version, "id": request_id,
                                   "predictions": predictions}
        if proba is not None:
            payload["probabilities"] = proba
        return JSONResponse(payload, headers={"X-Model-Version": model.version})

    def failure(exc: MlopsError) -> JSONResponse:
        if isinstance(exc, BadRequest):
            return error(exc.status, str(exc))
        if isinstance(exc, NotFound):
            return error(404, str(exc))
        if isinstance(exc, ServiceUnavailable):
            return error(503, str(exc))
        return error(500, f"model failed: {exc}")

    def loaded(version: str) -> Any:
        routing = router.routing
        return next((m for m in (routing.stable, routing.canary) if m and m.version == version), None)

    @app.get("/v2")
    def server_metadata() -> dict[str, Any]:
        return {"name": "mlops-bot", "version": __version__, "extensions": EXTENSIONS}

    @app.get("/v2/health/live")
    def live() -> dict[str, bool]:
        return {"live": True}

    @app.get("/v2/health/ready", response_model=None)
    def ready() -> Response | dict[str, bool]:
        if router.routing.stable is None:
            return JSONResponse({"ready": False}, status_code=503)
        return {"ready": True}

    @app.get("/v2/models/{model_name}/ready", response_model=None)
    def model_ready(model_name: str) -> Response | dict[str, Any]:
        bad = unknown_model(model_name)
        if bad:
            return bad
        if router.routing.stable is None:
            return JSONResponse({"name": name, "ready": False}, status_code=503)
        return {"name": name, "ready": True}

    @app.get("/v2/models/{model_name}/versions/{version}/ready", response_model=None)
    def version_ready(model_name: str, version: str) -> Response | dict[str, Any]:
        bad = unknown_model(model_name)
        if bad:
            return bad
        if loaded(version) is None:
            return error(404, f"model {name} has no version {version!r} loaded")
        return {"name": name, "ready": True}

    @app.get("/v2/models/{model_name}", response_model=None)
    def model_metadata_endpoint(model_name: str) -> Response | dict[str, Any]:
        bad = unknown_model(model_name)
        if bad:
            return bad
        routing = router.routing
        if routing.stable is None:
            return error(503, "no model version is loaded yet")
        return _metadata(name, routing)

    @app.get("/v2/models/{model_name}/versions/{version}", response_model=None)
    def version_metadata(model_name: str, version: str) -> Response | dict[str, Any]:
        bad = unknown_model(model_name)
        if bad:
            return bad
        model = loaded(version)
        if model is None:
            return error(404, f"model {name} has no version {version!r} loaded")
        return _metadata(name, Routing(stable=model))

    @app.post("/v2/models/{model_name}/infer")
    async def infer(model_name: str, request: Request) -> Response:
        return await infer_oip(model_name, None, request)

    @app.post("/v2/models/{model_name}/versions/{version}/infer")
    async def infer_version(model_name: str, version: str, request: Request) -> Response:
        return await infer_oip(model_name, version, request)

    async def infer_oip(model_name: str, version: str | None, request: Request) -> Response:
        bad = unknown_model(model_name)
        if bad:
            return bad
        try:
            raw = await read_body(request)
        except BodyTooLarge as exc:
            return error(413, str(exc))
        response: Response = await run_in_threadpool(
            answer_oip, raw, request.headers.get(HEADER_LENGTH), request.headers.get(REQUEST_KEY_HEADER),
            version)
        return response

    @app.post("/predict")
    async def predict(request: Request) -> Response:
        try:
            raw = await read_body(request)
        except BodyTooLarge as exc:
            return error(413, str(exc))
        want_proba = request.query_params.get("proba") == "1"
        response: Response = await run_in_threadpool(
            answer_records, raw, request.headers.get(REQUEST_KEY_HEADER), want_proba)
        return response

    @app.get("/metrics")
    def metrics() -> Response:
        return PlainTextResponse(render_prometheus(router.snapshot()),
                                 media_type="text/plain; version=0.0.4; charset=utf-8")

    @app.get("/admin/metrics", response_model=None)
    def admin_metrics(request: Request) -> Response | dict[str, Any]:
        denied = authorised(request)
        if denied:
            return denied
        return router.snapshot().model_dump()

    @app.get("/admin/versions", response_model=None)
    def admin_versions(request: Request) -> Response | dict[str, Any]:
        denied = authorised(request)
        if denied:
            return denied
        snap = router.snapshot()
        return {"stable": snap.stable, "canary": snap.canary, "weight": snap.weight, "shadow": snap.shadow}

    @app.post("/admin/versions")
    async def admin_set_versions(request: Request) -> Response:
        denied = authorised(request)
        if denied:
            return denied
        try:
            wanted = RoutingRequest.model_validate_json(await read_body(request))
        except BodyTooLarge as exc:
            return error(413, str(exc))
        except ValueError as exc:
            return error(422, f"invalid routing request: {exc}")
        try:
            routing = await run_in_threadpool(router.set_versions, wanted)
        except MlopsError as exc:
            return error(422, str(exc))
        return JSONResponse({
            "stable": routing.stable.version if routing.stable else None,
            "canary": routing.canary.version if routing.canary else None,
            "weight": routing.weight, "shadow": routing.shadow,
        })

    return app


def binary_outputs(request: InferenceRequest) -> set[str]:
    """The outputs to send as binary data: those asked for with `binary_data`, or all of them with
    the request parameter `binary_data_output`."""
    if request.binary_outputs:
        return set(request.output_names())
    return {o.name for o in request.outputs or () if o.binary}


def _metadata(name: str, routing: Routing) -> dict[str, Any]:
    stable = routing.stable
    assert stable is not None
    versions = [m.version for m in (routing.stable, routing.canary) if m]
    return model_metadata(name, versions, stable.signature)
