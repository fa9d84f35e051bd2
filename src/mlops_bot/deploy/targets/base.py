"""What the rollout controller needs from a deployment target: set the routing, read the metrics."""

from __future__ import annotations

from typing import Protocol

from mlops_bot.deploy.metrics import MetricsSnapshot
from mlops_bot.deploy.routing import RoutingRequest


class Target(Protocol):
    endpoint: str

    def apply(self, routing: RoutingRequest) -> None:
        """Serve `routing.stable` (and the canary at `routing.weight` %) from now on."""

    def metrics(self) -> MetricsSnapshot:
        """Cumulative per-version counters (the controller diffs them per step)."""
