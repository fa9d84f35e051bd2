"""Canary analysis: pure decisions over metric snapshots (no clock, no network).

Each gate compares the canary's figures for the current step with a threshold, or with the stable
version's figures over the same rollout. A gate is `inconclusive` until the canary has seen
`min_requests` requests in the step, except that the success-rate gate fails early once the errors
already seen make the threshold unreachable (a broken canary is rolled back after a handful of
requests, not after fifty).
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel

from mlops_bot.config import RolloutGates
from mlops_bot.deploy.metrics import VersionStats

Outcome = Literal["pass", "fail", "inconclusive"]


class GateResult(BaseModel):
    gate: str
    outcome: Outcome | Literal["skipped"]
    value: float | None = None
    threshold: float | None = None
    message: str


class GateDecision(BaseModel):
    """The verdict of one analysis run: fail if any gate fails, else inconclusive if any is, else pass."""

    outcome: Outcome
    results: list[GateResult]

    def summary(self, limit: int = 120) -> str:
        """One line for deployment statuses (GitHub caps descriptions at 140 characters)."""
        bad = [r for r in self.results if r.outcome == self.outcome] if self.outcome != "pass" else []
        text = "; ".join(r.message for r in bad) if bad else "all gates passed"
        return text if len(text) <= limit else text[: limit - 1] + "…"


def prediction_drift(canary: dict[str, int], stable: dict[str, int]) -> float | None:
    """Jensen-Shannon distance (base 2, in [0, 1]) between two prediction distributions."""
    keys = sorted(set(canary) | set(stable))
    p = [max(canary.get(k, 0), 0) for k in keys]
    q = [max(stable.get(k, 0), 0) for k in keys]
    if sum(p) <= 0 or sum(q) <= 0:
        return None
    from scipy.spatial.distance import jensenshannon  # ~0.3 s of imports a deploy job rarely needs

    value = float(jensenshannon(p, q, base=2))
    return 0.0 if math.isnan(value) else value


def evaluate_gates(canary: VersionStats, stable: VersionStats, gates: RolloutGates) -> GateDecision:
    """Judge the canary's step window against the gates. `stable` is the stable version's figures
    over the comparison window (the controller uses the whole rollout so far)."""
    results: list[GateResult] = []
    enough = canary.requests >= gates.min_requests and canary.requests > 0
    waiting = f"{canary.requests}/{gates.min_requests} requests"
    results.append(GateResult(
        gate="min_requests", outcome="pass" if enough else "inconclusive",
        value=float(canary.requests), threshold=float(gates.min_requests),
        message=f"canary served {waiting}" if enough else f"waiting for traffic: {waiting}",
    ))

    if gates.min_success_rate is not None:
        rate = canary.success_rate
        allowed = (1.0 - gates.min_success_rate) * max(canary.requests, gates.min_requests)
        if canary.errors > allowed + 1e-9:
            outcome: Outcome = "fail"
        elif not enough or rate is None:
            outcome = "inconclusive"
        else:
            outcome = "pass" if rate >= gates.min_success_rate else "fail"
        shown = "n/a" if rate is None else f"{rate:.1%}"
        results.append(GateResult(
            gate="success_rate", outcome=outcome, value=rate, threshold=gates.min_success_rate,
            message=f"success rate {shown} (min {gates.min_success_rate:.1%}, {canary.errors} errors)",
        ))

    p99 = canary.latency_quantile(0.99)
    if gates.max_p99_latency_ms is not None:
        value_ms = None if p99 is None else p99 * 1000
        if value_ms is None or not enough:
            outcome = "inconclusive"
        else:
            outcome = "pass" if value_ms <= gates.max_p99_latency_ms else "fail"
        results.append(GateResult(
            gate="p99_latency", outcome=outcome, value=value_ms, threshold=gates.max_p99_latency_ms,
            message=f"p99 latency {_ms(value_ms)} (max {gates.max_p99_latency_ms:g} ms)",
        ))

    stable_p99 = stable.latency_quantile(0.99)
    # Gates that compare the canary with stable need stable traffic, and enough of both.
    compared = enough and stable.requests >= gates.min_requests
    if gates.max_p99_latency_ratio is not None:
        ratio = None if p99 is None or not stable_p99 else p99 / stable_p99
        limit = gates.max_p99_latency_ratio
        shown = "n/a" if ratio is None else f"{ratio:.2f}x"
        results.append(_against_stable(
            "p99_latency_ratio", ratio, limit, stable.requests, compared,
            f"p99 {shown} stable's (max {limit:g}x)", "no stable traffic to compare latency with",
        ))

    if gates.max_prediction_drift is not None:
        drift = prediction_drift(canary.predictions, stable.predictions) if stable.requests > 0 else None
        limit = gates.max_prediction_drift
        shown = "n/a" if drift is None else f"{drift:.3f}"
        results.append(_against_stable(
            "prediction_drift", drift, limit, stable.requests, compared,
            f"prediction drift (JS distance) {shown} (max {limit:g})",
            "no stable predictions to compare with",
        ))

    outcomes = {r.outcome for r in results}
    verdict: Outcome = (
        "fail" if "fail" in outcomes else "inconclusive" if "inconclusive" in outcomes else "pass"
    )
    return GateDecision(outcome=verdict, results=results)


def _against_stable(gate: str, value: float | None, limit: float, stable_requests: int, compared: bool,
                    message: str, no_stable: str) -> GateResult:
    """A canary-vs-stable gate: skipped without stable traffic, inconclusive until both sides have
    enough requests (or the value cannot be computed), else pass when `value <= limit`."""
    if stable_requests <= 0:
        return GateResult(gate=gate, outcome="skipped", threshold=limit, message=no_stable)
    if value is None or not compared:
        return GateResult(gate=gate, outcome="inconclusive", value=value, threshold=limit, message=message)
    outcome: Outcome = "pass" if value <= limit else "fail"
    return GateResult(gate=gate, outcome=outcome, value=value, threshold=limit, message=message)


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f} ms"
