"""The Prometheus metrics source against a real Prometheus (Debian's) scraping two real
`mlops-bot serve` processes standing in for the stable and the canary revision: the snapshot it
builds from PromQL equals the servers' own counters; missing series and an unreachable Prometheus
are `MetricsUnavailable` (inconclusive), never a pass."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from kube_cluster.prometheus_server import free_port, model_server, prometheus
from mlops_bot.deploy.metrics import MetricsSnapshot
from mlops_bot.deploy.prometheus import MetricsUnavailable, PrometheusMetrics, render_query
from mlops_bot.deploy.routing import RoutingRequest, VersionRef


def test_query_templates_escape_label_values() -> None:
    query = render_query('x{model="$model",version="$version"}', model='a"b', namespace="n", version="v\\1")
    assert query == 'x{model="a\\"b",version="v\\\\1"}'
    with pytest.raises(Exception, match="unknown Prometheus query"):
        PrometheusMetrics("http://127.0.0.1:9", {"request": "x"})


def send(url: str, rows: list[dict[str, Any]], count: int, bad: int = 0) -> None:
    with httpx.Client(trust_env=False, timeout=30) as client:
        for i in range(count):
            assert client.post(f"{url}/predict", json={"records": [rows[i % len(rows)]]}).status_code == 200
        for _ in range(bad):
            assert client.post(f"{url}/predict", json={"records": [{"nope": 1}]}).status_code == 400


def admin(url: str) -> MetricsSnapshot:
    response = httpx.get(f"{url}/admin/metrics", headers={"Authorization": "Bearer admin-token"},
                         trust_env=False, timeout=10)
    return MetricsSnapshot.model_validate(response.json())


@pytest.mark.slow
def test_snapshot_from_prometheus_equals_the_servers_counters(tmp_path: Path, model_dirs: dict[str, Path],
                                                              make_records: Any) -> None:
    rows = make_records(20)
    routing = RoutingRequest(stable=VersionRef(version="v1.0.0", path=str(model_dirs["v1.0.0"])),
                             canary=VersionRef(version="v1.1.0", path=str(model_dirs["v1.1.0"])), weight=25)
    with model_server(tmp_path / "s", "credit", "v1.0.0", model_dirs["v1.0.0"]) as stable, \
            model_server(tmp_path / "c", "credit", "v1.1.0", model_dirs["v1.1.0"]) as canary:
        labels = {"namespace": "ml"}
        targets = {stable.removeprefix("http://"): labels, canary.removeprefix("http://"): labels}
        with prometheus(tmp_path / "prom", targets) as url:
            source = PrometheusMetrics(url)
            send(stable, rows, 30)
            send(canary, rows, 10, bad=2)
            expected = {"v1.0.0": admin(stable).stats("v1.0.0"), "v1.1.0": admin(canary).stats("v1.1.0")}
            assert expected["v1.0.0"].requests == 30 and expected["v1.1.0"].requests >= 10
            assert expected["v1.1.0"].client_errors + expected["v1.1.0"].requests >= 12
            want = {v: s.requests for v, s in expected.items()}
            deadline = time.monotonic() + 90
            while True:
                snapshot = source.snapshot("credit", "ml", routing)
                counts = {v: s.requests for v, s in snapshot.versions.items()}
                if counts == want or time.monotonic() > deadline:
                    break
                time.sleep(0.5)
            assert counts == want
            for version, want in expected.items():
                got = snapshot.stats(version)
                assert (got.requests, got.errors, got.client_errors) == (want.requests, want.errors,
                                                                         want.client_errors)
                assert got.latency_buckets == want.latency_buckets
                assert got.predictions == want.predictions
                assert got.latency_sum == pytest.approx(want.latency_sum, rel=1e-6)
            assert (snapshot.stable, snapshot.canary, snapshot.weight) == ("v1.0.0", "v1.1.0", 25)

            # Another namespace has no series: nothing served there, so no stats (inconclusive).
            assert source.snapshot("credit", "other", routing).versions == {}
            # A query that finds no error series while requests exist: unavailable, not zero errors.
            query = 'sum(mlops_bot_errors_total{version="$version",x="y"})'
            broken = PrometheusMetrics(url, {"errors": query})
            with pytest.raises(MetricsUnavailable, match="no errors series"):
                broken.snapshot("credit", "ml", routing)
            with pytest.raises(MetricsUnavailable, match="refused the query"):
                PrometheusMetrics(url, {"requests": "sum(("}).snapshot("credit", "ml", routing)
    with pytest.raises(MetricsUnavailable, match="unreachable"):
        PrometheusMetrics(f"http://127.0.0.1:{free_port()}").snapshot("credit", "ml", routing)
