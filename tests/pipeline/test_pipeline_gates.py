"""Gate logic: min/max, max_drop against the baseline, max_drop_ci on the confidence interval,
direction of lower-is-better metrics, and gates that cannot be evaluated."""

from __future__ import annotations

import pytest

from mlops_bot.config import GateRule
from mlops_bot.pipeline.gates import compare, evaluate_gate, evaluate_gates, verdict


def _one(metric: str, rule: GateRule, base: float | None, head: float | None,
         ci: list[float] | None = None) -> tuple[str, str]:
    (result,) = evaluate_gate(metric, rule, compare(base, head, ci))
    return result.status, result.detail


def test_min_and_max() -> None:
    assert _one("accuracy", GateRule(min=0.8), None, 0.81)[0] == "pass"
    assert _one("accuracy", GateRule(min=0.8), None, 0.79)[0] == "fail"
    assert _one("accuracy", GateRule(min=0.8), None, 0.8)[0] == "pass"
    assert _one("log_loss", GateRule(max=0.5), None, 0.51)[0] == "fail"


def test_max_drop_direction_depends_on_the_metric() -> None:
    # accuracy fell by 0.03: worse.
    assert _one("accuracy", GateRule(max_drop=0.02), 0.90, 0.87)[0] == "fail"
    assert _one("accuracy", GateRule(max_drop=0.02), 0.90, 0.99)[0] == "pass"
    # exactly at the limit passes despite float rounding (0.808 - 0.788 != 0.02 in binary).
    assert _one("accuracy", GateRule(max_drop=0.02), 0.808, 0.788)[0] == "pass"
    # log loss rose by 0.03: worse; fell: better.
    assert _one("log_loss", GateRule(max_drop=0.02), 0.40, 0.43)[0] == "fail"
    assert _one("log_loss", GateRule(max_drop=0.02), 0.40, 0.30)[0] == "pass"
    assert _one("demographic_parity_difference", GateRule(max_drop=0.0), 0.10, 0.12)[0] == "fail"


def test_max_drop_without_baseline_is_skipped_not_failed() -> None:
    status, detail = _one("accuracy", GateRule(max_drop=0.01), None, 0.5)
    assert status == "skipped" and "no baseline" in detail


def test_max_drop_ci_fails_only_when_the_whole_interval_is_a_drop_above_the_limit() -> None:
    # accuracy diff CI [-0.05, -0.01]: drop CI [0.01, 0.05] lies above 0 -> significant drop.
    assert _one("accuracy", GateRule(max_drop_ci=0.0), 0.9, 0.87, [-0.05, -0.01])[0] == "fail"
    # ... but not above 0.02.
    assert _one("accuracy", GateRule(max_drop_ci=0.02), 0.9, 0.87, [-0.05, -0.01])[0] == "pass"
    # CI straddles zero: noise, passes even though the point estimate dropped.
    assert _one("accuracy", GateRule(max_drop_ci=0.0), 0.9, 0.88, [-0.04, 0.01])[0] == "pass"
    # lower-is-better: rmse diff CI [0.2, 0.5] is a significant worsening.
    assert _one("rmse", GateRule(max_drop_ci=0.1), 1.0, 1.3, [0.2, 0.5])[0] == "fail"
    assert _one("rmse", GateRule(max_drop_ci=0.1), 1.0, 0.7, [-0.5, -0.2])[0] == "pass"
    status, detail = _one("accuracy", GateRule(max_drop_ci=0.0), 0.9, 0.87, None)
    assert status == "skipped" and "confidence interval" in detail


def test_gate_on_a_metric_not_computed_fails() -> None:
    results = evaluate_gates({"equalized_odds_difference": GateRule(max=0.1)}, {})
    assert [r.status for r in results] == ["fail"]
    assert "not computed" in results[0].detail
    assert verdict(results) == "fail"


def test_several_rules_each_reported_and_verdict() -> None:
    rule = GateRule(min=0.7, max_drop=0.02, max_drop_ci=0.0)
    results = evaluate_gate("roc_auc", rule, compare(0.80, 0.79, [-0.03, 0.01]))
    assert [r.rule for r in results] == [">= 0.7", "drop <= 0.02", "significant drop <= 0"]
    assert all(r.passed for r in results)
    assert verdict(results) == "pass"
    assert verdict([]) == "pass"


def test_compare_diff() -> None:
    row = compare(0.5, 0.75, [0.1, 0.4])
    assert row.diff == pytest.approx(0.25) and row.ci == [0.1, 0.4]
    assert compare(None, 0.75).diff is None
