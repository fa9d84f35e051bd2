"""Gate verdicts: pure decisions over metric comparisons and the rules in `gates:`.

"Drop" always means getting worse: for higher-is-better metrics base - head, for lower-is-better
ones (losses, errors, drift share, fairness differences) head - base. `max_drop` compares the point
drop with the limit (absolute, in the metric's own units); `max_drop_ci` fails only when the drop is
significant, i.e. the whole confidence interval of the drop lies above the limit. A gate on a metric
that was not computed fails: a rule that cannot be checked must not pass silently.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, computed_field

from mlops_bot.config import GateRule
from mlops_bot.pipeline.evaluate import lower_is_better
from mlops_bot.report.numbers import fmt

GateStatus = Literal["pass", "fail", "skipped"]
# Metric differences are float arithmetic: 0.808 - 0.788 must count as a drop of exactly 0.02.
_TOLERANCE = 1e-9


class MetricComparison(BaseModel):
    """One row of the metric table: `diff` = head - base, `ci` = CI of that difference."""

    base: float | None = None
    head: float | None = None
    diff: float | None = None
    ci: list[float] | None = None
    # set for custom metrics (their direction comes from the config); None: known by name
    lower_is_better: bool | None = None

    def worse_when_higher(self, metric: str) -> bool:
        return self.lower_is_better if self.lower_is_better is not None else lower_is_better(metric)


class GateResult(BaseModel):
    metric: str
    rule: str
    passed: bool
    status: GateStatus
    detail: str

    @computed_field  # type: ignore[prop-decorator]
    @property
    def message(self) -> str:
        """One line for check-run annotations: what failed and by how much."""
        return f"{self.metric} `{self.rule}`: {self.detail}"


def compare(base: float | None, head: float | None, ci: list[float] | None = None) -> MetricComparison:
    diff = head - base if base is not None and head is not None else None
    return MetricComparison(base=base, head=head, diff=diff, ci=ci)


def _fmt(value: float) -> str:
    return fmt(value)


def _drop(metric: str, row: MetricComparison) -> float | None:
    if row.diff is None:
        return None
    return row.diff if row.worse_when_higher(metric) else -row.diff


def _drop_interval(metric: str, row: MetricComparison, ci: list[float]) -> tuple[float, float]:
    low, high = ci
    return (low, high) if row.worse_when_higher(metric) else (-high, -low)


def evaluate_gate(metric: str, rule: GateRule, row: MetricComparison | None) -> list[GateResult]:
    """All checks one `gates.METRIC` entry asks for, in a fixed order."""
    results: list[GateResult] = []
    head = row.head if row is not None else None

    def add(rule_text: str, status: GateStatus, detail: str) -> None:
        results.append(
            GateResult(metric=metric, rule=rule_text, passed=status != "fail", status=status, detail=detail)
        )

    missing = "metric was not computed (check `metrics:` and that the analysis ran)"
    if rule.min is not None:
        text = f">= {_fmt(rule.min)}"
        if head is None:
            add(text, "fail", missing)
        else:
            add(
                text,
                "pass" if head >= rule.min - _TOLERANCE else "fail",
                f"{_fmt(head)} vs minimum {_fmt(rule.min)}",
            )
    if rule.max is not None:
        text = f"<= {_fmt(rule.max)}"
        if head is None:
            add(text, "fail", missing)
        else:
            add(
                text,
                "pass" if head <= rule.max + _TOLERANCE else "fail",
                f"{_fmt(head)} vs maximum {_fmt(rule.max)}",
            )
    if rule.max_drop is not None:
        text = f"drop <= {_fmt(rule.max_drop)}"
        if head is None:
            add(text, "fail", missing)
        elif row is None or row.base is None:
            add(text, "skipped", "no baseline to compare with")
        else:
            drop = _drop(metric, row)
            assert drop is not None
            status: GateStatus = "pass" if drop <= rule.max_drop + _TOLERANCE else "fail"
            add(
                text,
                status,
                f"dropped by {_fmt(drop)} (limit {_fmt(rule.max_drop)})"
                if drop > 0
                else f"no drop (changed by {_fmt(row.diff or 0.0)})",
            )
    if rule.max_drop_ci is not None:
        text = f"significant drop <= {_fmt(rule.max_drop_ci)}"
        if head is None:
            add(text, "fail", missing)
        elif row is None or row.base is None:
            add(text, "skipped", "no baseline to compare with")
        elif row.ci is None:
            add(text, "skipped", "no confidence interval (needs the baseline model's predictions)")
        else:
            low, high = _drop_interval(metric, row, row.ci)
            significant = low > rule.max_drop_ci + _TOLERANCE
            add(
                text,
                "fail" if significant else "pass",
                f"drop CI [{_fmt(low)}, {_fmt(high)}] "
                + ("lies entirely above" if significant else "does not lie entirely above")
                + f" {_fmt(rule.max_drop_ci)}",
            )
    return results


def evaluate_gates(gates: dict[str, GateRule], metrics: dict[str, MetricComparison]) -> list[GateResult]:
    out: list[GateResult] = []
    for metric, rule in gates.items():
        out.extend(evaluate_gate(metric, rule, metrics.get(metric)))
    return out


def verdict(results: list[GateResult]) -> Literal["pass", "fail"]:
    return "fail" if any(not r.passed for r in results) else "pass"
