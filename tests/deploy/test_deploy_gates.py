"""Gate evaluation: pure functions over metric snapshots."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mlops_bot.config import RolloutGates
from mlops_bot.deploy.gates import evaluate_gates, prediction_drift
from mlops_bot.deploy.metrics import (
    LATENCY_BUCKETS,
    MetricsSnapshot,
    VersionRecorder,
    VersionStats,
    prediction_key,
    render_prometheus,
)


def stats(requests: int, errors: int = 0, latency: float = 0.003, predictions: dict[str, int] | None = None
          ) -> VersionStats:
    recorder = VersionRecorder()
    preds = predictions or {"0": requests // 2, "1": requests - requests // 2}
    labels = [k for k, n in preds.items() for _ in range(n)]
    for i in range(requests):
        recorder.observe(latency, [labels[i]] if i < len(labels) else [], error=i < errors)
    return recorder.snapshot()


GATES = RolloutGates(min_success_rate=0.99, max_p99_latency_ms=100, max_p99_latency_ratio=2.0,
                     max_prediction_drift=0.2, min_requests=50)


def test_healthy_canary_passes() -> None:
    decision = evaluate_gates(stats(100), stats(400), GATES)
    assert decision.outcome == "pass", decision
    assert {r.gate for r in decision.results} == {
        "min_requests", "success_rate", "p99_latency", "p99_latency_ratio", "prediction_drift"}


def test_too_few_requests_is_inconclusive() -> None:
    decision = evaluate_gates(stats(10), stats(400), GATES)
    assert decision.outcome == "inconclusive"
    assert "waiting for traffic: 10/50" in decision.summary()


def test_errors_fail_early_when_threshold_unreachable() -> None:
    # 1 % of 50 allowed = 0.5 errors: the first error already makes 99 % unreachable.
    decision = evaluate_gates(stats(3, errors=1), stats(400), GATES)
    assert decision.outcome == "fail"
    assert "success rate" in decision.summary()


def test_success_rate_below_threshold_fails() -> None:
    assert evaluate_gates(stats(200, errors=3), stats(400), GATES).outcome == "fail"
    assert evaluate_gates(stats(200, errors=2), stats(400), GATES).outcome == "pass"


def test_absolute_latency_gate() -> None:
    decision = evaluate_gates(stats(100, latency=0.3), stats(400, latency=0.3), GATES)
    failed = {r.gate for r in decision.results if r.outcome == "fail"}
    assert failed == {"p99_latency"}


def test_relative_latency_gate() -> None:
    decision = evaluate_gates(stats(100, latency=0.04), stats(400, latency=0.004), GATES)
    failed = {r.gate for r in decision.results if r.outcome == "fail"}
    assert failed == {"p99_latency_ratio"}


def test_prediction_drift_gate() -> None:
    canary = stats(100, predictions={"1": 100})
    decision = evaluate_gates(canary, stats(400, predictions={"0": 300, "1": 100}), GATES)
    assert [r.gate for r in decision.results if r.outcome == "fail"] == ["prediction_drift"]


def test_relative_gates_skipped_without_stable_traffic() -> None:
    decision = evaluate_gates(stats(100), VersionStats(), GATES)
    assert decision.outcome == "pass"
    skipped = {r.gate for r in decision.results if r.outcome == "skipped"}
    assert skipped == {"p99_latency_ratio", "prediction_drift"}


def test_disabled_gates_are_absent() -> None:
    gates = RolloutGates(min_success_rate=None, max_p99_latency_ms=None, max_p99_latency_ratio=None,
                         max_prediction_drift=None, min_requests=0)
    decision = evaluate_gates(stats(1, errors=1), VersionStats(), gates)
    assert decision.outcome == "pass"
    assert [r.gate for r in decision.results] == ["min_requests"]


def test_summary_fits_a_deployment_status() -> None:
    decision = evaluate_gates(stats(100, errors=50, latency=9.0), stats(400), GATES)
    assert decision.outcome == "fail"
    assert len(decision.summary()) <= 120


def test_js_distance_known_values() -> None:
    assert prediction_drift({"a": 5}, {"a": 9}) == 0.0
    assert prediction_drift({"a": 5}, {"b": 9}) == pytest.approx(1.0)
    assert prediction_drift({}, {"b": 9}) is None
    # JSD(base 2) of [.5,.5] vs [1,0] = 1 - 0.5*H(.75,.25)... computed by hand:
    p, q = [0.5, 0.5], [1.0, 0.0]
    m = [(a + b) / 2 for a, b in zip(p, q, strict=True)]
    kl = lambda x, y: sum(a * math.log2(a / b) for a, b in zip(x, y, strict=True) if a > 0)  # noqa: E731
    expected = math.sqrt((kl(p, m) + kl(q, m)) / 2)
    assert prediction_drift({"0": 1, "1": 1}, {"0": 7}) == pytest.approx(expected)


def test_minus_gives_the_window_and_detects_resets() -> None:
    recorder = VersionRecorder()
    for _ in range(5):
        recorder.observe(0.002, [1])
    before = recorder.snapshot()
    for _ in range(3):
        recorder.observe(0.2, [0], error=True)
    window = recorder.snapshot().minus(before)
    assert (window.requests, window.errors) == (3, 3)
    assert window.predictions == {"0": 3}
    assert window.latency_quantile(0.5) is not None and window.latency_quantile(0.5) > 0.1
    restarted = stats(2)
    assert restarted.minus(before).requests == 2  # counters went down: server restarted


@given(st.lists(st.floats(min_value=0, max_value=20, allow_nan=False), min_size=1, max_size=200))
def test_quantile_is_bounded_by_bucket_edges(values: list[float]) -> None:
    recorder = VersionRecorder()
    for value in values:
        recorder.observe(value)
    p99 = recorder.snapshot().latency_quantile(0.99)
    assert p99 is not None
    assert 0 <= p99 <= LATENCY_BUCKETS[-1]
    top = max(values)
    bound = next((b for b in LATENCY_BUCKETS if top <= b), LATENCY_BUCKETS[-1])
    assert p99 <= bound + 1e-12


def test_prediction_keys() -> None:
    import numpy as np

    assert prediction_key(np.int64(1)) == "1"
    assert prediction_key(1.0) == "1"
    assert prediction_key(0.123456) == "0.12"
    assert prediction_key("yes") == "yes"


def test_prometheus_text_parses() -> None:
    from prometheus_client.parser import text_string_to_metric_families

    snap = MetricsSnapshot(model="m", stable="v1.0.0", canary="v1.1.0", weight=10,
                           versions={"v1.0.0": stats(10), "v1.1.0": stats(3, errors=1)})
    families = {f.name: f for f in text_string_to_metric_families(render_prometheus(snap))}
    requests = {s.labels["version"]: s.value for s in families["mlops_bot_requests"].samples}
    assert requests == {"v1.0.0": 10, "v1.1.0": 3}
    buckets = [s for s in families["mlops_bot_request_duration_seconds"].samples
               if s.name.endswith("_bucket") and s.labels["version"] == "v1.0.0"]
    assert buckets[-1].labels["le"] == "+Inf" and buckets[-1].value == 10
