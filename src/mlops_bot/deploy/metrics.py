"""Per-version serving metrics: the counters a model server keeps and the snapshots a controller diffs.

Counters are cumulative (like Prometheus) so that any number of readers can take snapshots without
resetting anything; a rollout step's figures are `snapshot_now.minus(snapshot_at_step_start)`.
`VersionRecorder` is the only mutable, thread-safe part; everything else is plain data.
"""

from __future__ import annotations

import bisect
import math
import threading
from typing import Any

from pydantic import BaseModel, Field

# Upper bounds (seconds) of the latency histogram buckets; a final +Inf bucket is implied.
LATENCY_BUCKETS: tuple[float, ...] = (
    0.0005, 0.001, 0.0025, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.075, 0.1,
    0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0,
)


def _empty_buckets() -> list[int]:
    return [0] * (len(LATENCY_BUCKETS) + 1)


class VersionStats(BaseModel):
    """Cumulative counters for one model version. `latency_buckets` holds per-bucket (not
    cumulative) counts aligned with LATENCY_BUCKETS plus +Inf."""

    requests: int = 0
    errors: int = 0
    client_errors: int = 0
    latency_buckets: list[int] = Field(default_factory=_empty_buckets)
    latency_sum: float = 0.0
    predictions: dict[str, int] = Field(default_factory=dict)

    def minus(self, earlier: VersionStats | None) -> VersionStats:
        """The counts since `earlier`. A counter that went down means the server restarted, so the
        whole of the current counts is the window (what Prometheus' rate() assumes too)."""
        if earlier is None or _was_reset(self, earlier):
            return self.model_copy(deep=True)
        keys = set(self.predictions) | set(earlier.predictions)
        return VersionStats(
            requests=self.requests - earlier.requests,
            errors=self.errors - earlier.errors,
            client_errors=self.client_errors - earlier.client_errors,
            latency_buckets=[
                a - b for a, b in zip(self.latency_buckets, earlier.latency_buckets, strict=True)
            ],
            latency_sum=max(0.0, self.latency_sum - earlier.latency_sum),
            predictions={
                k: self.predictions.get(k, 0) - earlier.predictions.get(k, 0)
                for k in sorted(keys)
                if self.predictions.get(k, 0) - earlier.predictions.get(k, 0) > 0
            },
        )

    @property
    def success_rate(self) -> float | None:
        """Share of scored requests the model answered (client errors are not in `requests`: a
        client's mistake never counts for or against a version). None without requests."""
        if self.requests <= 0:
            return None
        return (self.requests - self.errors) / self.requests

    def latency_quantile(self, q: float) -> float | None:
        """Quantile estimate in seconds by linear interpolation inside the bucket, like Prometheus'
        histogram_quantile. None without observations."""
        total = sum(self.latency_buckets)
        if total <= 0:
            return None
        rank = q * total
        cumulative = 0
        for index, count in enumerate(self.latency_buckets):
            previous = cumulative
            cumulative += count
            if cumulative >= rank and count > 0:
                if index >= len(LATENCY_BUCKETS):
                    return LATENCY_BUCKETS[-1]
                lower = LATENCY_BUCKETS[index - 1] if index > 0 else 0.0
                upper = LATENCY_BUCKETS[index]
                return lower + (upper - lower) * (rank - previous) / count
        return LATENCY_BUCKETS[-1]


def _was_reset(now: VersionStats, earlier: VersionStats) -> bool:
    return (
        now.requests < earlier.requests
        or now.errors < earlier.errors
        or any(a < b for a, b in zip(now.latency_buckets, earlier.latency_buckets, strict=True))
    )


class MetricsSnapshot(BaseModel):
    """What `GET /admin/metrics` returns: the routing in force and cumulative stats per version."""

    model: str
    stable: str | None = None
    canary: str | None = None
    weight: int = 0
    shadow: bool = False
    versions: dict[str, VersionStats] = Field(default_factory=dict)

    def stats(self, version: str | None) -> VersionStats:
        if version is None:
            return VersionStats()
        return self.versions.get(version, VersionStats())


def prediction_key(value: Any) -> str:
    """Bucket a prediction for the distribution: class labels as themselves, real numbers to two
    significant digits (enough to compare distributions, coarse enough to repeat)."""
    if isinstance(value, bool | str):
        return str(value)
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer()):
        return str(int(value))
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return f"{value:.2g}"
    item = getattr(value, "item", None)
    if callable(item):
        return prediction_key(item())
    return str(value)


class VersionRecorder:
    """Thread-safe cumulative counters for one version, updated by request handlers.

    Plain ints, a list and a dict behind one short lock: the pydantic `VersionStats` is built only
    when a snapshot is taken, not touched per request (its attribute writes cost more than the rest
    of the update)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests = 0
        self._errors = 0
        self._client_errors = 0
        self._buckets = _empty_buckets()
        self._latency_sum = 0.0
        self._predictions: dict[str, int] = {}

    def observe(self, seconds: float, predictions: list[Any] | None = None, *, error: bool = False,
                client_error: bool = False) -> None:
        """One request. A client error (4xx) counts only as such: it is not a request the model
        scored, so it moves neither the success rate nor the latency the gates read."""
        if client_error:
            with self._lock:
                self._client_errors += 1
            return
        index = bisect.bisect_left(LATENCY_BUCKETS, seconds)
        keys = [prediction_key(p) for p in predictions] if predictions else ()
        with self._lock:
            self._requests += 1
            if error:
                self._errors += 1
            self._buckets[index] += 1
            self._latency_sum += seconds
            counts = self._predictions
            for key in keys:
                counts[key] = counts.get(key, 0) + 1

    def snapshot(self) -> VersionStats:
        with self._lock:
            return VersionStats(
                requests=self._requests,
                errors=self._errors,
                client_errors=self._client_errors,
                latency_buckets=list(self._buckets),
                latency_sum=self._latency_sum,
                predictions=dict(self._predictions),
            )


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def render_prometheus(snapshot: MetricsSnapshot) -> str:
    """Prometheus text exposition (format 0.0.4) of a snapshot, one series per version."""
    lines: list[str] = []
    roles = {snapshot.stable: "stable", snapshot.canary: "canary"}

    def family(name: str, kind: str, help_text: str) -> None:
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} {kind}")

    def labels(version: str, **extra: str) -> str:
        pairs = {"model": snapshot.model, "version": version, "role": roles.get(version, "retired"), **extra}
        return "{" + ",".join(f'{k}="{_label(v)}"' for k, v in pairs.items()) + "}"

    items = sorted(snapshot.versions.items())
    family("mlops_bot_requests_total", "counter", "Inference requests the model scored (4xx apart).")
    lines += [f"mlops_bot_requests_total{labels(v)} {s.requests}" for v, s in items]
    family("mlops_bot_errors_total", "counter", "Requests the model failed to answer (5xx).")
    lines += [f"mlops_bot_errors_total{labels(v)} {s.errors}" for v, s in items]
    family("mlops_bot_client_errors_total", "counter", "Rejected requests (4xx: bad input).")
    lines += [f"mlops_bot_client_errors_total{labels(v)} {s.client_errors}" for v, s in items]
    family("mlops_bot_request_duration_seconds", "histogram", "Server-side inference latency.")
    for version, stats in items:
        cumulative = 0
        for bound, count in zip((*LATENCY_BUCKETS, math.inf), stats.latency_buckets, strict=True):
            cumulative += count
            le = "+Inf" if math.isinf(bound) else repr(bound)
            lines.append(f"mlops_bot_request_duration_seconds_bucket{labels(version, le=le)} {cumulative}")
        lines.append(f"mlops_bot_request_duration_seconds_sum{labels(version)} {stats.latency_sum!r}")
        lines.append(f"mlops_bot_request_duration_seconds_count{labels(version)} {cumulative}")
    family("mlops_bot_predictions_total", "counter", "Predictions per version and predicted value bucket.")
    for version, stats in items:
        for key, count in sorted(stats.predictions.items()):
            lines.append(f"mlops_bot_predictions_total{labels(version, prediction=key)} {count}")
    family("mlops_bot_canary_weight", "gauge", "Share of traffic (percent) routed to the canary.")
    lines.append(f'mlops_bot_canary_weight{{model="{_label(snapshot.model)}"}} {snapshot.weight}')
    return "\n".join(lines) + "\n"
