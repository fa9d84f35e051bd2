"""The Argo engine's AnalysisTemplate queries, evaluated by Prometheus' own PromQL engine (`promtool
test rules`, from Debian's prometheus package, over synthetic series of the model server's metrics):
each gate's query gives the figure the local gates (`deploy/gates.py`) compute from the same counts:
the prediction drift is scipy's Jensen-Shannon distance, the p99 the same bucket interpolation; too
few requests in the window gives no sample at all (Argo: Inconclusive, never a pass).

promtool compares a query's result with an expected one and prints what it got on a mismatch; the
expected value here is one no query returns, so `evaluate` reads the result from that output."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Mapping
from pathlib import Path

import pytest
import yaml

from kube_cluster.prometheus_server import prometheus_binary
from mlops_bot.config import RolloutGates
from mlops_bot.deploy.gates import prediction_drift
from mlops_bot.deploy.metrics import LATENCY_BUCKETS, VersionStats
from mlops_bot.deploy.targets.argo import AnalysisQueries, analysis_metrics

pytestmark = pytest.mark.slow

ARGS = {"{{args.model}}": "credit", "{{args.namespace}}": "ml", "{{args.version}}": "v2",
        "{{args.stable-version}}": "v1"}
NOT_A_RESULT = -123456789.0


def evaluate(tmp_path: Path, query: str, series: Mapping[str, str], at: str = "100s") -> float | None:
    """The single sample `query` (Argo's args filled in) yields at `at` over `series` (1 s apart),
    None when it yields nothing."""
    for arg, value in ARGS.items():
        query = query.replace(arg, value)
    test = tmp_path / "analysis.yml"
    test.write_text(yaml.safe_dump({"rule_files": [], "evaluation_interval": "1s", "tests": [{
        "interval": "1s",
        "input_series": [{"series": name, "values": values} for name, values in series.items()],
        "promql_expr_test": [{"expr": query, "eval_time": at,
                              "exp_samples": [{"labels": "{}", "value": NOT_A_RESULT}]}],
    }]}))
    promtool = str(Path(prometheus_binary()).with_name("promtool"))
    result = subprocess.run([promtool, "test", "rules", str(test)], capture_output=True, text=True,
                            check=False, timeout=60)
    got = re.search(r"got: (.*)", result.stdout + result.stderr)
    assert got is not None, result.stdout + result.stderr
    if got.group(1).strip() == "nil":
        return None
    samples = re.findall(r"\{[^}]*\} (\S+)", got.group(1))
    assert len(samples) == 1, got.group(1)
    return float(samples[0])


def counter(name: str, version: str, per_second: float, **labels: str) -> tuple[str, str]:
    extra = "".join(f',{k}="{v}"' for k, v in labels.items())
    return (f'{name}{{model="credit",namespace="ml",version="{version}"{extra}}}',
            f"0+{per_second}x120")


def served(version: str, requests: float, errors: float, predictions: Mapping[str, float],
           bucket: int) -> dict[str, str]:
    """A version's series: `requests`/s, `errors`/s, predictions per label per second, every request
    in latency bucket `bucket` (an index into LATENCY_BUCKETS)."""
    series = dict([counter("mlops_bot_requests_total", version, requests),
                   counter("mlops_bot_errors_total", version, errors)])
    for le in [*LATENCY_BUCKETS, "+Inf"]:
        inside = le == "+Inf" or float(le) >= LATENCY_BUCKETS[bucket]
        series.update([counter("mlops_bot_request_duration_seconds_bucket", version,
                               requests if inside else 0, le=str(le))])
    for label, rate in predictions.items():
        series.update([counter("mlops_bot_predictions_total", version, rate, prediction=label)])
    return series


def stats(predictions: Mapping[str, float], bucket: int, requests: int = 60) -> VersionStats:
    buckets = [0] * (len(LATENCY_BUCKETS) + 1)
    buckets[bucket] = requests
    return VersionStats(requests=requests, latency_buckets=buckets,
                        predictions={k: round(v * 60) for k, v in predictions.items()})


CANARY = {"0": 0.2, "1": 0.6, "2": 0.2}  # a label stable never predicts
STABLE = {"0": 1.4, "1": 0.6}


def test_each_gate_query_gives_the_local_gates_figure(tmp_path: Path) -> None:
    queries = AnalysisQueries(interval=1, min_requests=50)
    series = {**served("v2", 1, 0.1, CANARY, 5), **served("v1", 2, 0, STABLE, 4)}
    drift = evaluate(tmp_path, queries.prediction_drift(), series)
    expected = prediction_drift(stats(CANARY, 5).predictions, stats(STABLE, 4).predictions)
    assert drift is not None and expected is not None and 0.2 < expected < 0.8
    assert drift == pytest.approx(expected, rel=1e-9)
    assert evaluate(tmp_path, queries.success_rate(0.99), series) == pytest.approx(0.9)
    p99 = stats(CANARY, 5).latency_quantile(0.99)
    stable_p99 = stats(STABLE, 4).latency_quantile(0.99)
    assert p99 is not None and stable_p99 is not None
    assert evaluate(tmp_path, queries.p99_latency_ms(), series) == pytest.approx(p99 * 1000)
    assert evaluate(tmp_path, queries.p99_latency_ratio(), series) == pytest.approx(p99 / stable_p99)
    same = {**served("v2", 1, 0, STABLE, 4), **served("v1", 2, 0, STABLE, 4)}
    assert evaluate(tmp_path, queries.prediction_drift(), same) == pytest.approx(0, abs=1e-12)


def test_too_few_requests_or_no_series_is_no_sample(tmp_path: Path) -> None:
    """No sample is what Argo's conditions (`len(result) > 0 && ...`) count Inconclusive."""
    series = {**served("v2", 1, 0.1, CANARY, 5), **served("v1", 2, 0, STABLE, 4)}
    strict = AnalysisQueries(interval=1, min_requests=61)  # the canary served 60 in the minute
    healthy = {**served("v2", 1, 0, CANARY, 5), **served("v1", 2, 0, STABLE, 4)}
    for query in (strict.success_rate(0.9), strict.p99_latency_ms(), strict.p99_latency_ratio(),
                  strict.prediction_drift()):
        assert evaluate(tmp_path, query, healthy) is None
    lenient = AnalysisQueries(interval=1, min_requests=60)
    assert evaluate(tmp_path, lenient.success_rate(0.99), series) == pytest.approx(0.9)
    # Errors beyond what min_rate allows of min_requests fail before min_requests (gates.py's rule):
    # 6 errors in the minute > (1 - 0.95) x 61 = 3.05, so the 90 % shows (and fails 95 %) ...
    assert evaluate(tmp_path, strict.success_rate(0.95), series) == pytest.approx(0.9)
    # ... while 6 errors <= (1 - 0.9) x 61 = 6.1 could still end above 90 %: no sample yet.
    assert evaluate(tmp_path, strict.success_rate(0.9), series) is None
    # Stable too must have served min_requests for a comparison with it.
    quiet_stable = {**served("v2", 1, 0, CANARY, 5), **served("v1", 0.5, 0, STABLE, 4)}
    assert evaluate(tmp_path, lenient.prediction_drift(), quiet_stable) is None
    no_predictions = {k: v for k, v in series.items() if "predictions" not in k}
    assert evaluate(tmp_path, lenient.prediction_drift(), no_predictions) is None
    # A canary that stopped predicting within the window: no sample until its counts move again.
    idle = {**served("v1", 2, 0, STABLE, 4), **{k: v.replace("x120", "x30") + " _x90" for k, v in
                                                  served("v2", 1, 0, CANARY, 5).items()}}
    assert evaluate(tmp_path, lenient.prediction_drift(), idle) is None
    assert analysis_metrics(RolloutGates(min_requests=7, min_success_rate=None, max_p99_latency_ms=None,
                                         max_p99_latency_ratio=None, max_prediction_drift=None), 1, 1)[0][
        "successCondition"].endswith("result[0] >= 7")
