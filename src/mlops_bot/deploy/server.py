"""The model server's HTTP app: Open Inference Protocol v2 (KServe/Triton/MLServer compatible) plus
`/predict`, the admin API the rollout controller drives, and `/metrics`.

Request conversion lives in `oip.py`, the serving state and the stable/canary split in `router.py`,
model loading in `loading.py`; this module maps HTTP onto them.
"""

from __future__ import annotations

import hmac
import json
import uuid
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from starlette.concurrency import run_in_threadpool

from mlops_bot import __version__
from mlops_bot.deploy.metrics import render_prometheus
from mlops_bot.deploy.oip import (
    BadRequest,
    frame_from_oip,
    frame_from_records,
    model_metadata,
    output_tensors,
)
from mlops_bot.deploy.router import ModelRouter, NotFound, Routing, ServiceUnavailable
from mlops_bot.deploy.routing import RoutingRequest
from mlops_bot.errors import MlopsError

REQUEST_KEY_HEADER = "X-Request-Key"


def create_app(router: ModelRouter, admin_token: str | None = None, *,
               log_dir: str | Path | None = None, feedback_token: str | None = None) -> FastAPI:
    """The ASGI app. Endpoints are sync so inference runs in the thread pool, off the event loop.
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

    def error(status: int, message: str) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=status)

    def check_model(model_name: str) -> JSONResponse | None:
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

    def body_of(raw: bytes) -> Any:
        try:
            return json.loads(raw)
        except ValueError:
            raise BadRequest("the request body is not valid JSON") from None

    def run(raw: bytes, parse: Any, request: Request, version: str | None, oip: bool) -> Response:
        try:
            body = body_of(raw)
            wanted = [o.get("name") for o in body.get("outputs", []) if isinstance(o, dict)] \
                if oip and isinstance(body, dict) and isinstance(body.get("outputs"), list) else []
            proba_wanted = "predict_proba" in wanted or (not oip and request.query_params.get("proba") == "1")
            model, frame, predictions, proba = router.infer(
                parse, body, request.headers.get(REQUEST_KEY_HEADER),
                version=version, want_proba=proba_wanted,
            )
        except BadRequest as exc:
            return error(exc.status, str(exc))
        except NotFound as exc:
            return error(404, str(exc))
        except ServiceUnavailable as exc:
            return error(503, str(exc))
        except Exception as exc:  # the model failed; the client gets a 500 with a reason
            return error(500, f"model failed: {type(exc).__name__}: {exc}")
        request_id = str(body.get("id") or uuid.uuid4()) if isinstance(body, dict) else str(uuid.uuid4())
        router.log(request_id, model, frame, predictions)
        headers = {"X-Model-Version": model.version}
        if oip:
            payload: dict[str, Any] = {"model_name": name, "model_version": model.version, "id": request_id,
                                       "outputs": output_tensors(predictions, proba, wanted)}
        else:
            payload = {"model_name": name, "model_version": model.version, "id": request_id,
                       "predictions": predictions}
            if proba is not None:
                payload["probabilities"] = proba
        return JSONResponse(payload, headers=headers)

    @app.get("/v2")
    def server_metadata() -> dict[str, Any]:
        return {"name": "mlops-bot", "version": __version__, "extensions": []}

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
        bad = check_model(model_name)
        if bad:
            return bad
        return ready()

    @app.get("/v2/models/{model_name}", response_model=None)
    def model_metadata(model_name: str) -> Response | dict[str, Any]:
        bad = check_model(model_name)
        if bad:
            return bad
        routing = router.routing
        if routing.stable is None:
            return error(503, "no model version is loaded yet")
        return _metadata(name, routing)

    @app.get("/v2/models/{model_name}/versions/{version}", response_model=None)
    def version_metadata(model_name: str, version: str) -> Response | dict[str, Any]:
        bad = check_model(model_name)
        if bad:
            return bad
        routing = router.routing
        model = next((m for m in (routing.stable, routing.canary) if m and m.version == version), None)
        if model is None:
            return error(404, f"model {name} has no version {version!r} loaded")
        return _metadata(name, Routing(stable=model))

    @app.post("/v2/models/{model_name}/infer")
    async def infer(model_name: str, request: Request) -> Response:
        bad = check_model(model_name)
        if bad:
            return bad
        raw = await request.body()
        return await _threaded(run, raw, frame_from_oip, request, None, True)

    @app.post("/v2/models/{model_name}/versions/{version}/infer")
    async def infer_version(model_name: str, version: str, request: Request) -> Response:
        bad = check_model(model_name)
        if bad:
            return bad
        raw = await request.body()
        return await _threaded(run, raw, frame_from_oip, request, version, True)

    @app.post("/predict")
    async def predict(request: Request) -> Response:
        raw = await request.body()
        return await _threaded(run, raw, frame_from_records, request, None, False)

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
            wanted = RoutingRequest.model_validate_json(await request.body())
        except ValueError as exc:
            return error(422, f"invalid routing request: {exc}")
        try:
            routing = await _threaded(router.set_versions, wanted)
        except MlopsError as exc:
            return error(422, str(exc))
        return JSONResponse({
            "stable": routing.stable.version if routing.stable else None,
            "canary": routing.canary.version if routing.canary else None,
            "weight": routing.weight, "shadow": routing.shadow,
        })

    return app


async def _threaded(func: Any, *args: Any) -> Any:
    return await run_in_threadpool(func, *args)


def _metadata(name: str, routing: Routing) -> dict[str, Any]:
    stable = routing.stable
    assert stable is not None
    versions = [m.version for m in (routing.stable, routing.canary) if m]
    has_proba = hasattr(stable.model, "predict_proba")
    return model_metadata(name, versions, stable.features, stable.classes, has_proba)
