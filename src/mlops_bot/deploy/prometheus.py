"""Gate metrics from Prometheus: the model server's own per-version series, read through the HTTP
API (`GET /api/v1/query`), turned into the same `MetricsSnapshot` the gates read from a local
server's counters.

The queries are templates (`$model`, `$namespace`, `$version`), one per figure the gates need, each
returning the cumulative count summed over the version's pods; the controller diffs snapshots per
step, as with a local server (a sum that goes down means pods restarted, which `VersionStats.minus`
treats as a counter reset). Every template can be replaced in `.github/mlops.yml`
(`rollout.prometheus.queries`). A version with no request series has served nothing yet
(inconclusive by `min_requests`); a version that has requests but misses another required series,
a failed query, or an unreachable Prometheus raises `MetricsUnavailable`, which the rollout treats
as inconclusive: never as a pass.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from string import Template
from typing import Any

import httpx

from mlops_bot.deploy.metrics import LATENCY_BUCKETS, MetricsSnapshot, VersionStats
from mlops_bot.deploy.routing import RoutingRequest
from mlops_bot.errors import MlopsError

_SELECTOR = 'model="$model",namespace="$namespace",version="$version"'
DEFAULT_QUERIES: dict[str, str] = {
    "requests": f"sum(mlops_bot_requests_total{{{_SELECTOR}}})",
    "errors": f"sum(mlops_bot_errors_total{{{_SELECTOR}}})",
    "client_errors": f"sum(mlops_bot_client_errors_total{{{_SELECTOR}}})",
    "latency_buckets": f"sum by (le) (mlops_bot_request_duration_seconds_bucket{{{_SELECTOR}}})",
    "latency_sum": f"sum(mlops_bot_request_duration_seconds_sum{{{_SELECTOR}}})",
    "predictions": f"sum by (prediction) (mlops_bot_predictions_total{{{_SELECTOR}}})",
}
# Series a version that has served requests must have; the others may legitimately be empty.
REQUIRED = ("errors", "latency_buckets")


class MetricsUnavailable(MlopsError):
    """Prometheus could not give the figures a gate needs; the gate is inconclusive."""


def _label_value(value: str) -> str:
    """Escape a value for a PromQL double-quoted label matcher."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def render_query(template: str, *, model: str, namespace: str, version: str) -> str:
    return Template(template).substitute(model=_label_value(model), namespace=_label_value(namespace),
                                         version=_label_value(version))


def _number(sample: Mapping[str, Any]) -> float:
    value = float(sample["value"][1])
    return 0.0 if math.isnan(value) else value


def stats_from_results(results: Mapping[str, list[dict[str, Any]]]) -> VersionStats | None:
    """One version's stats from its query results (Prometheus vector samples per query). None when
    the version has no request series (it has served nothing). Pure."""
    if not results.get("requests"):
        return None
    missing = [name for name in REQUIRED if not results.get(name)]
    if missing:
        raise MetricsUnavailable(f"Prometheus has requests but no {', '.join(missing)} series "
                                 "for this version")
    cumulative: dict[float, float] = {}
    for sample in results["latency_buckets"]:
        le = sample["metric"].get("le")
        if le is None:
            raise MetricsUnavailable("the latency_buckets query must keep the 'le' label (sum by (le))")
        cumulative[float(le)] = _number(sample)
    bounds = [*LATENCY_BUCKETS, math.inf]
    buckets, previous = [], 0.0
    for bound in bounds:
        at = max((v for le, v in cumulative.items() if le <= bound), default=previous)
        buckets.append(max(0, round(at - previous)))
        previous = max(previous, at)
    predictions: dict[str, int] = {}
    for sample in results.get("predictions") or []:
        key = sample["metric"].get("prediction", "")
        predictions[key] = predictions.get(key, 0) + round(_number(sample))
    return VersionStats(
        requests=round(sum(_number(s) for s in results["requests"])),
        errors=round(sum(_number(s) for s in results["errors"])),
        client_errors=round(sum(_number(s) for s in results.get("client_errors") or [])),
        latency_buckets=buckets,
        latency_sum=sum(_number(s) for s in results.get("latency_sum") or []),
        predictions={k: v for k, v in sorted(predictions.items()) if v > 0},
    )


class PrometheusMetrics:
    """The metrics source of the cluster targets."""

    def __init__(self, url: str, queries: Mapping[str, str] | None = None, *, timeout: float = 10.0,
                 client: httpx.Client | None = None) -> None:
        unknown = sorted(set(queries or {}) - set(DEFAULT_QUERIES))
        if unknown:
            raise MlopsError(f"unknown Prometheus query name(s) {', '.join(unknown)}; "
                             f"expected some of {', '.join(DEFAULT_QUERIES)}")
        self.url = url.rstrip("/")
        self.queries = {**DEFAULT_QUERIES, **(queries or {})}
        self._client = client or httpx.Client(timeout=timeout, trust_env=False)

    def query(self, promql: str) -> list[dict[str, Any]]:
        try:
            response = self._client.get(f"{self.url}/api/v1/query", params={"query": promql})
        except httpx.HTTPError as exc:
            raise MetricsUnavailable(f"Prometheus at {self.url} unreachable: {exc}") from None
        try:
            body = response.json()
        except ValueError:
            raise MetricsUnavailable(f"Prometheus answered {response.status_code} without JSON") from None
        if response.status_code != 200 or body.get("status") != "success":
            raise MetricsUnavailable(f"Prometheus refused the query ({response.status_code}): "
                                     f"{body.get('error', '')[:200]}")
        data = body.get("data") or {}
        if data.get("resultType") not in ("vector", "scalar"):
            raise MetricsUnavailable(f"query {promql[:80]} returned a {data.get('resultType')}, not a vector")
        result = data.get("result") or []
        if data.get("resultType") == "scalar":
            return [{"metric": {}, "value": result}]
        return list(result)

    def version_stats(self, model: str, namespace: str, version: str) -> VersionStats | None:
        results = {name: self.query(render_query(template, model=model, namespace=namespace, version=version))
                   for name, template in self.queries.items()}
        return stats_from_results(results)

    def snapshot(self, model: str, namespace: str, routing: RoutingRequest) -> MetricsSnapshot:
        versions = {}
        for ref in (routing.stable, routing.canary):
            if ref is None:
                continue
            stats = self.version_stats(model, namespace, ref.version)
            if stats is not None:
                versions[ref.version] = stats
        return MetricsSnapshot(model=model, stable=routing.stable.version,
                               canary=routing.canary.version if routing.canary else None,
                               weight=routing.weight if routing.canary else 0, versions=versions)

    def close(self) -> None:
        self._client.close()
