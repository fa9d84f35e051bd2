"""The model server: Open Inference Protocol v2 (KServe/Triton/MLServer compatible) plus `/predict`.

It holds a stable and (optionally) a canary version at once and splits requests by weight, sticky on
`X-Request-Key` when given; in shadow mode the canary scores a copy and clients always get stable.
A canary that fails a request is answered by stable instead (the failure still counts against the
canary), so clients see no errors while a bad canary is being rolled back. Versions are hot-swapped
by replacing one immutable `Routing` reference after the new model is loaded, so in-flight requests
finish on the version they started with and none is dropped.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import math
import random
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
import pandas as pd
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from mlops_bot import __version__
from mlops_bot.deploy.metrics import MetricsSnapshot, VersionRecorder, render_prometheus
from mlops_bot.errors import IntegrityError, MlopsError
from mlops_bot.model_file import load_model

SIGNATURE_FILE = "signature.json"
Proba = list[list[float]] | None
MODEL_FILE = "model.skops"
REQUEST_KEY_HEADER = "X-Request-Key"

_OIP_NUMERIC = {"BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64",
                "FP16", "FP32", "FP64"}
_OIP_TYPES = _OIP_NUMERIC | {"BYTES"}


class BadRequest(MlopsError):
    """The client sent something the model cannot score; answered with HTTP 400/422."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class FeatureSpec(BaseModel):
    name: str
    kind: Literal["numeric", "categorical"] = "numeric"


class LoadedModel:
    """One model version in memory with what is needed to validate inputs for it."""

    def __init__(self, name: str, version: str, model: Any, features: list[FeatureSpec], source: str) -> None:
        self.name = name
        self.version = version
        self.model = model
        self.features = features
        self.source = source
        self.recorder = VersionRecorder()
        classes = getattr(model, "classes_", None)
        self.classes: list[Any] | None = None if classes is None else [_plain(c) for c in classes]

    def predict(self, frame: pd.DataFrame) -> list[Any]:
        result = np.asarray(self.model.predict(frame))
        values = result.tolist()  # plain Python scalars already, except inside object arrays
        return [_plain(v) for v in values] if result.dtype == object else values

    def predict_proba(self, frame: pd.DataFrame) -> list[list[float]] | None:
        if not hasattr(self.model, "predict_proba"):
            return None
        return np.asarray(self.model.predict_proba(frame), dtype=float).tolist()


def _plain(value: Any) -> Any:
    item = getattr(value, "item", None)
    return item() if callable(item) else value


def infer_features(model: Any) -> list[FeatureSpec]:
    """Feature names and kinds from a fitted scikit-learn model: names from `feature_names_in_`,
    categorical columns from encoders inside a ColumnTransformer."""
    names = getattr(model, "feature_names_in_", None)
    if names is None:
        raise IntegrityError(
            "the model does not record its feature names (fit it on a DataFrame) and no "
            f"{SIGNATURE_FILE} was found next to it"
        )
    categorical: set[str] = set()
    for transformer in _column_transformers(model):
        for _, inner, columns in getattr(transformer, "transformers_", []):
            if _is_encoder(inner) and isinstance(columns, list | tuple | np.ndarray):
                categorical.update(str(c) for c in columns)
    return [
        FeatureSpec(name=str(n), kind="categorical" if str(n) in categorical else "numeric") for n in names
    ]


def _column_transformers(model: Any) -> list[Any]:
    from sklearn.compose import ColumnTransformer

    found: list[Any] = []
    stack = [model]
    while stack:
        item = stack.pop()
        if isinstance(item, ColumnTransformer):
            found.append(item)
        stack.extend(step for _, step in getattr(item, "steps", []) or [])
    return found


def _is_encoder(transformer: Any) -> bool:
    from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder

    parts = [transformer] + [step for _, step in getattr(transformer, "steps", []) or []]
    return any(isinstance(p, OneHotEncoder | OrdinalEncoder) for p in parts)


def load_version(name: str, version: str, path: str | Path) -> LoadedModel:
    """Load a model directory (model.skops [+ signature.json], as `Registry.download` leaves it) or a
    single model file, through the skops allow-list."""
    path = Path(path)
    model_path = path / MODEL_FILE if path.is_dir() else path
    model = load_model(model_path)
    signature = model_path.parent / SIGNATURE_FILE
    if signature.is_file():
        raw = json.loads(signature.read_text(encoding="utf-8"))
        features = [FeatureSpec.model_validate(item) for item in raw.get("inputs", [])]
    else:
        features = infer_features(model)
    return LoadedModel(name, version, model, features, str(path))


# ------------------------------------------------------------------------------ input parsing (pure)
def frame_from_records(records: Any, features: list[FeatureSpec]) -> pd.DataFrame:
    """`/predict` body: {"records": [{feature: value}, ...]} or a bare list of such objects."""
    if isinstance(records, dict):
        records = records.get("records", records.get("instances"))
    if not isinstance(records, list) or not records:
        raise BadRequest('expected {"records": [{"feature": value, ...}, ...]} with at least one record')
    columns: dict[str, list[Any]] = {f.name: [] for f in features}
    for index, record in enumerate(records):
        if not isinstance(record, dict):
            raise BadRequest(f"record {index} is not an object of feature values")
        missing = [f.name for f in features if f.name not in record]
        if missing:
            raise BadRequest(f"record {index} is missing feature(s): {', '.join(missing)}")
        for spec in features:
            columns[spec.name].append(_check_value(record[spec.name], spec, f"record {index}"))
    return _frame(columns, features)


def frame_from_oip(body: Any, features: list[FeatureSpec]) -> pd.DataFrame:
    """OIP v2 inference request: one tensor per feature (named like the feature), or one 2-D tensor
    with a column per feature in the model's order."""
    if not isinstance(body, dict) or not isinstance(body.get("inputs"), list) or not body["inputs"]:
        raise BadRequest('expected an inference request {"inputs": [{"name", "shape", "datatype", "data"}]}')
    tensors = []
    for index, tensor in enumerate(body["inputs"]):
        if not isinstance(tensor, dict):
            raise BadRequest(f"inputs[{index}] is not a tensor object")
        for key in ("name", "shape", "datatype", "data"):
            if key not in tensor:
                raise BadRequest(f"inputs[{index}] lacks '{key}'")
        if tensor["datatype"] not in _OIP_TYPES:
            raise BadRequest(f"inputs[{index}] has unknown datatype {tensor['datatype']!r}")
        shape = tensor["shape"]
        if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
            raise BadRequest(f"inputs[{index}].shape must be a list of non-negative integers")
        data = _flatten(tensor["data"])
        if math.prod(shape) != len(data):
            raise BadRequest(f"inputs[{index}] has {len(data)} values but shape {shape}")
        tensors.append((str(tensor["name"]), shape, tensor["datatype"], data))

    by_name = {name: (shape, dtype, data) for name, shape, dtype, data in tensors}
    names = [f.name for f in features]
    columns: dict[str, list[Any]] = {}
    if len(tensors) == 1 and tensors[0][0] not in names:
        name, shape, dtype, data = tensors[0]
        if len(shape) != 2 or shape[1] != len(features):
            raise BadRequest(
                f"tensor {name!r} must have shape [rows, {len(features)}] (one column per feature: "
                f"{', '.join(names)}), got {shape}"
            )
        rows = shape[0]
        for col, spec in enumerate(features):
            columns[spec.name] = [_check_value(data[r * shape[1] + col], spec, f"tensor {name!r}")
                                  for r in range(rows)]
    else:
        missing = [n for n in names if n not in by_name]
        if missing:
            raise BadRequest(f"missing input tensor(s) for feature(s): {', '.join(missing)}")
        lengths = {len(by_name[n][2]) for n in names}
        if len(lengths) != 1:
            raise BadRequest("all feature tensors must hold the same number of rows")
        for spec in features:
            shape, dtype, data = by_name[spec.name]
            if spec.kind == "numeric" and dtype == "BYTES":
                raise BadRequest(f"feature {spec.name!r} is numeric but was sent as BYTES")
            columns[spec.name] = [_check_value(v, spec, f"tensor {spec.name!r}") for v in data]
    if not next(iter(columns.values()), []):
        raise BadRequest("the request holds no rows")
    return _frame(columns, features)


def _flatten(data: Any) -> list[Any]:
    if not isinstance(data, list):
        raise BadRequest("tensor data must be a (possibly nested) list")
    if not any(isinstance(item, list) for item in data):
        return data  # already flat: the common case, no copy
    out: list[Any] = []
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(reversed(item))
        else:
            out.append(item)
    return out


def _check_value(value: Any, spec: FeatureSpec, where: str) -> Any:
    if spec.kind == "numeric":
        if value is None:
            return np.nan
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise BadRequest(f"{where}: feature {spec.name!r} must be a number, got {value!r}", status=422)
        return value
    if value is not None and not isinstance(value, str | int | float | bool):
        raise BadRequest(
            f"{where}: feature {spec.name!r} must be a string or number, got {value!r}", status=422
        )
    return value


def _frame(columns: dict[str, list[Any]], features: list[FeatureSpec]) -> pd.DataFrame:
    """Numeric columns float64, the others object (pandas 3 would otherwise infer its string
    dtype), each column built once with its final dtype: converting columns of an inferred frame
    one by one cost ~1 ms per request, several times this."""
    data: dict[str, Any] = {}
    for spec in features:
        values = columns[spec.name]
        if spec.kind == "numeric":
            data[spec.name] = np.array(values, dtype=float)
        elif all(type(v) is str for v in values):
            as_object = np.empty(len(values), dtype=object)
            as_object[:] = values
            data[spec.name] = pd.Series(as_object, dtype=object, copy=False)
        else:  # mixed or missing values: pandas' own inference decides (e.g. None -> NaN, 1 -> 1.0)
            data[spec.name] = pd.Series(values).astype(object)
    return pd.DataFrame(data, copy=False)


def records_of(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """`frame.to_dict("records")` (plain Python values) for the request frames built above, column
    by column: a third of the cost of pandas' per-value boxing, paid on every logged request."""
    names = [str(name) for name in frame.columns]
    columns = []
    for name in frame.columns:
        column = frame[name]
        values = column.tolist()
        columns.append([_plain(v) for v in values] if column.dtype == object else values)
    return [dict(zip(names, row, strict=True)) for row in zip(*columns, strict=True)]


def _oip_datatype(values: list[Any]) -> str:
    if all(isinstance(v, bool) for v in values):
        return "BOOL"
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return "INT64"
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        return "FP64"
    return "BYTES"


# --------------------------------------------------------------------------------------- routing
def route(weight: int, request_key: str | None, draw: float) -> Literal["stable", "canary"]:
    """Pick a side. With a request key the choice is a pure function of the key (sticky: the same
    client stays on the same version while the weight holds); otherwise `draw` in [0, 1) decides."""
    if weight <= 0:
        return "stable"
    if weight >= 100:
        return "canary"
    if request_key:
        bucket = int.from_bytes(hashlib.sha256(request_key.encode()).digest()[:8], "big") % 10_000
        return "canary" if bucket < weight * 100 else "stable"
    return "canary" if draw * 100 < weight else "stable"


@dataclass(frozen=True)
class Routing:
    """The versions in force. Replaced as a whole (one reference assignment) on every change."""

    stable: LoadedModel | None
    canary: LoadedModel | None = None
    weight: int = 0
    shadow: bool = False


class VersionRef(BaseModel):
    version: str
    path: str


class RoutingRequest(BaseModel):
    """`POST /admin/versions`: what the server should hold next."""

    stable: VersionRef
    canary: VersionRef | None = None
    weight: int = Field(default=0, ge=0, le=100)
    shadow: bool = False


class PredictionSink(Protocol):
    """What the server needs from a prediction log (monitor.log.PredictionLog fits), so the
    server does not import the monitoring package just to type its argument."""

    def record(self, request_id: str, model: str, version: str, features: dict[str, Any],
               prediction: Any, timestamp: float | None = None) -> bool: ...


class ModelRouter:
    """Serving state shared by all requests: loaded versions, routing, metrics."""

    def __init__(self, name: str, *, prediction_log: PredictionSink | None = None,
                 seed: int | None = None) -> None:
        self.name = name
        self.routing = Routing(stable=None)
        self.prediction_log = prediction_log
        self._random = random.Random(seed)
        self._swap_lock = threading.Lock()
        self._retired: dict[str, LoadedModel] = {}
        self._shadow_pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="shadow")

    # ------------------------------------------------------------------------ version changes
    def set_versions(self, request: RoutingRequest) -> Routing:
        """Load what is new first, then switch in one assignment: no request sees a half state."""
        with self._swap_lock:
            current = self.routing
            known = {m.version: m for m in (current.stable, current.canary, *self._retired.values()) if m}

            def obtain(ref: VersionRef | None) -> LoadedModel | None:
                if ref is None:
                    return None
                have = known.get(ref.version)
                if have is not None and have.source == ref.path:
                    return have
                return load_version(self.name, ref.version, ref.path)

            stable = obtain(request.stable)
            canary = obtain(request.canary)
            routing = Routing(stable=stable, canary=canary, weight=request.weight if canary else 0,
                              shadow=request.shadow and canary is not None)
            for model in known.values():
                if model not in (stable, canary):
                    self._retired[model.version] = model  # keep its counters visible
            for kept in (stable, canary):
                if kept is not None:
                    self._retired.pop(kept.version, None)
            self.routing = routing
            return routing

    def snapshot(self) -> MetricsSnapshot:
        routing = self.routing
        versions = {m.version: m.recorder.snapshot() for m in self._retired.values()}
        for model in (routing.stable, routing.canary):
            if model is not None:
                versions[model.version] = model.recorder.snapshot()
        return MetricsSnapshot(
            model=self.name,
            stable=routing.stable.version if routing.stable else None,
            canary=routing.canary.version if routing.canary else None,
            weight=routing.weight,
            shadow=routing.shadow,
            versions=versions,
        )

    # ----------------------------------------------------------------------------- inference
    def infer(self, parse: Any, body: Any, request_key: str | None, *, version: str | None = None,
              want_proba: bool = False) -> tuple[LoadedModel, pd.DataFrame, list[Any], Proba]:
        """Score one request. Returns (model that answered, rows, predictions, probabilities)."""
        routing = self.routing
        if routing.stable is None:
            raise ServiceUnavailable("no model version is loaded yet")
        if version is not None:
            chosen = next((m for m in (routing.stable, routing.canary) if m and m.version == version), None)
            if chosen is None:
                raise NotFound(f"model {self.name} has no version {version!r} loaded")
            return (chosen, *self._score(chosen, parse, body, want_proba))
        side = "stable"
        if routing.canary is not None and not routing.shadow:
            side = route(routing.weight, request_key, self._random.random())
        if side == "canary" and routing.canary is not None:
            try:
                return (routing.canary, *self._score(routing.canary, parse, body, want_proba))
            except BadRequest:
                raise
            except Exception:  # noqa: S110 - counted against the canary; stable answers instead
                pass
        result = self._score(routing.stable, parse, body, want_proba)
        if routing.shadow and routing.canary is not None:
            canary = routing.canary
            self._shadow_pool.submit(self._shadow, canary, parse, body)
        return (routing.stable, *result)

    def _shadow(self, model: LoadedModel, parse: Any, body: Any) -> None:
        # A failure is recorded as the canary's error; clients never see it.
        with contextlib.suppress(Exception):
            self._score(model, parse, body, False)

    @staticmethod
    def _score(model: LoadedModel, parse: Any, body: Any, want_proba: bool
               ) -> tuple[pd.DataFrame, list[Any], list[list[float]] | None]:
        started = time.perf_counter()
        try:
            frame = parse(body, model.features)
        except BadRequest:
            model.recorder.observe(time.perf_counter() - started, client_error=True)
            raise
        try:
            predictions = model.predict(frame)
            proba = model.predict_proba(frame) if want_proba else None
        except Exception:
            model.recorder.observe(time.perf_counter() - started, error=True)
            raise
        model.recorder.observe(time.perf_counter() - started, predictions)
        return frame, predictions, proba

    def log(self, request_id: str, model: LoadedModel, frame: pd.DataFrame, predictions: list[Any]) -> None:
        if self.prediction_log is None:
            return
        rows = records_of(frame)
        for index, (row, prediction) in enumerate(zip(rows, predictions, strict=True)):
            rid = request_id if len(predictions) == 1 else f"{request_id}-{index}"
            self.prediction_log.record(rid, self.name, model.version, row, prediction)

    def close(self) -> None:
        self._shadow_pool.shutdown(wait=True)


class ServiceUnavailable(MlopsError):
    pass


class NotFound(MlopsError):
    pass


# ------------------------------------------------------------------------------------ the app
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
            outputs: list[dict[str, Any]] = []
            if not wanted or "predict" in wanted:
                outputs.append({"name": "predict", "shape": [len(predictions)],
                                "datatype": _oip_datatype(predictions), "data": predictions})
            if proba is not None:
                width = len(proba[0]) if proba else 0
                outputs.append({"name": "predict_proba", "shape": [len(proba), width], "datatype": "FP64",
                                "data": [v for row in proba for v in row]})
            payload: dict[str, Any] = {"model_name": name, "model_version": model.version,
                                       "id": request_id, "outputs": outputs}
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
    inputs = [{"name": f.name, "datatype": "FP64" if f.kind == "numeric" else "BYTES", "shape": [-1]}
              for f in stable.features]
    output_type = _oip_datatype(stable.classes) if stable.classes else "FP64"
    outputs = [{"name": "predict", "datatype": output_type, "shape": [-1]}]
    if hasattr(stable.model, "predict_proba"):
        width = len(stable.classes or [])
        outputs.append({"name": "predict_proba", "datatype": "FP64", "shape": [-1, width]})
    return {"name": name, "versions": versions, "platform": "sklearn", "inputs": inputs, "outputs": outputs}
