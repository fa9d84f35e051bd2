"""The serving state shared by all requests (`ModelRouter`): the versions in force, the split between
stable and canary, per-version counters, the prediction log.

It holds a stable and (optionally) a canary version at once and splits requests by weight, sticky on
`X-Request-Key` when given; in shadow mode the canary scores a copy and clients always get stable.
A canary that fails a request is answered by stable instead (the failure still counts against the
canary), so clients see no errors while a bad canary is being rolled back. Versions are hot-swapped
by replacing one immutable `Routing` reference after the new model is loaded, so in-flight requests
finish on the version they started with and none is dropped.
"""

from __future__ import annotations

import contextlib
import random
import threading
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import pandas as pd

from mlops_bot.deploy.batching import Batcher, BatchPolicy
from mlops_bot.deploy.loading import LoadedModel, load_version
from mlops_bot.deploy.metrics import MetricsSnapshot
from mlops_bot.deploy.model_input import records_of
from mlops_bot.deploy.oip import BadRequest
from mlops_bot.deploy.routing import RoutingRequest, VersionRef, route
from mlops_bot.errors import MlopsError
from mlops_bot.model_file import allowed_types
from mlops_bot.model_signature import SignatureMismatch, input_difference

Proba = list[list[float]] | None
# "optional": when the version has it (all outputs asked for); "required": asked for by name.
ProbaWanted = Literal["no", "optional", "required"]


@dataclass(frozen=True)
class Routing:
    """The versions in force. Replaced as a whole (one reference assignment) on every change."""

    stable: LoadedModel | None
    canary: LoadedModel | None = None
    weight: int = 0
    shadow: bool = False


class PredictionSink(Protocol):
    """What the server needs from a prediction log (monitor.log.PredictionLog fits), so the
    server does not import the monitoring package just to type its argument."""

    def record(self, request_id: str, model: str, version: str, features: dict[str, Any],
               prediction: Any, timestamp: float | None = None) -> bool: ...


class ModelRouter:
    """Serving state shared by all requests: loaded versions, routing, metrics. `trusted_types` is
    the repository's `model.trusted_types`: every version it loads may need them (checked once here,
    so a name no list may hold stops the server before it starts)."""

    def __init__(self, name: str, *, prediction_log: PredictionSink | None = None,
                 seed: int | None = None, batching: BatchPolicy | None = None,
                 trusted_types: Iterable[str] = ()) -> None:
        self.name = name
        self.trusted_types = tuple(trusted_types)
        allowed_types(self.trusted_types)
        self.routing = Routing(stable=None)
        self.batching = batching or BatchPolicy()
        self._batchers: dict[int, Batcher] = {}
        self._batchers_lock = threading.Lock()
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
                return load_version(self.name, ref.version, ref.path, self.trusted_types)

            stable = obtain(request.stable)
            canary = obtain(request.canary)
            if stable is not None and canary is not None:
                refuse_mismatch(stable, canary)
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
              proba: ProbaWanted = "no") -> tuple[LoadedModel, pd.DataFrame, list[Any], Proba]:
        """Score one request. Returns (model that answered, rows, predictions, probabilities).

        `parse(body, features)` turns the request into the version's input frame and raises
        `BadRequest` for client mistakes: those count as the version's client errors, never as its
        errors. A canary that refuses a request (its signature may differ) or fails on it leaves
        the answer to stable."""
        routing = self.routing
        if routing.stable is None:
            raise ServiceUnavailable("no model version is loaded yet")
        if version is not None:
            chosen = next((m for m in (routing.stable, routing.canary) if m and m.version == version), None)
            if chosen is None:
                raise NotFound(f"model {self.name} has no version {version!r} loaded")
            return (chosen, *self._score(chosen, parse, body, proba))
        side = "stable"
        if routing.canary is not None and not routing.shadow:
            side = route(routing.weight, request_key, self._random.random())
        if side == "canary" and routing.canary is not None:
            try:
                return (routing.canary, *self._score(routing.canary, parse, body, proba))
            except Exception:  # noqa: S110 - counted against the canary; stable answers instead
                pass
        result = self._score(routing.stable, parse, body, proba)
        if routing.shadow and routing.canary is not None:
            canary = routing.canary
            self._shadow_pool.submit(self._shadow, canary, parse, body)
        return (routing.stable, *result)

    def _shadow(self, model: LoadedModel, parse: Any, body: Any) -> None:
        # A failure is recorded as the canary's error; clients never see it.
        with contextlib.suppress(Exception):
            self._score(model, parse, body, "no")

    def _score(self, model: LoadedModel, parse: Any, body: Any, wanted: ProbaWanted
               ) -> tuple[pd.DataFrame, list[Any], list[list[float]] | None]:
        started = time.perf_counter()
        try:
            frame = parse(body, model.features)
            if wanted == "required" and not model.has_proba:
                raise BadRequest(f"version {model.version} has no output 'predict_proba' (not a "
                                 "probabilistic classifier)")
        except BadRequest:
            model.recorder.observe(time.perf_counter() - started, client_error=True)
            raise
        try:
            if self.batching.enabled:
                predictions, proba = self._batcher(model).score(frame, wanted != "no" and model.has_proba)
            else:
                predictions = model.predict(frame)
                proba = model.predict_proba(frame) if wanted != "no" else None
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

    def _batcher(self, model: LoadedModel) -> Batcher:
        batcher = self._batchers.get(id(model))  # the batcher holds the model: its id stays unique
        if batcher is None:
            with self._batchers_lock:
                batcher = self._batchers.get(id(model))
                if batcher is None:
                    batcher = self._batchers[id(model)] = Batcher(model, self.batching)
        return batcher

    def close(self) -> None:
        self._shadow_pool.shutdown(wait=True)
        for batcher in self._batchers.values():
            batcher.close()


def refuse_mismatch(stable: LoadedModel, canary: LoadedModel) -> None:
    """A canary must take the requests stable takes: clients are not told which one answers."""
    difference = input_difference(stable.signature, canary.signature,
                                  (f"stable {stable.version}", f"canary {canary.version}"))
    if difference is not None:
        raise SignatureMismatch(f"{canary.version} cannot be a canary of {stable.version}: their input "
                                f"signatures differ ({difference})")


class ServiceUnavailable(MlopsError):
    pass


class NotFound(MlopsError):
    pass
