"""The validation result: what `report.json` holds and what every renderer reads.

One pydantic model so the JSON, the markdown comment and the check run all show the same numbers.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import BaseModel, Field

from mlops_bot.pipeline.gates import GateResult, MetricComparison

BaselineSource = Literal["model", "registry", "metrics_file", "none"]


class Baseline(BaseModel):
    """Where the comparison numbers came from, in words a reviewer can check."""

    source: BaselineSource
    description: str
    version: str | None = None
    notes: list[str] = Field(default_factory=list)


class Reproducibility(BaseModel):
    seed: int
    data: dict[str, str]  # role -> sha256 of the file
    packages: dict[str, str]
    git_sha: str | None = None
    command: str | None = None
    estimator: str | None = None


class ValidationReport(BaseModel):
    model: str
    task: Literal["classification", "regression"]
    verdict: Literal["pass", "fail"]
    metrics: dict[str, MetricComparison]
    gates: list[GateResult]
    baseline: Baseline
    bootstrap: dict[str, Any]
    holdout_rows: int
    train_rows: int
    confusion_matrix: dict[str, Any] | None = None
    base_confusion_matrix: dict[str, Any] | None = None
    drift: dict[str, Any] | None = None
    fairness: dict[str, Any] | None = None
    data_checks: dict[str, Any] | None = None
    analysis_notes: list[str] = Field(default_factory=list)
    # Whose gates decided the verdict when that is not simply this config's (pipeline/base_gates.py).
    gates_notice: str | None = None
    # training parameters, flattened to dotted keys: {"head": {...}, "base": {...} or None}
    params: dict[str, Any] | None = None
    plots: list[str] = Field(default_factory=list)
    reproducibility: Reproducibility
    created_at: str = ""

    def failed_gates(self) -> list[GateResult]:
        return [g for g in self.gates if not g.passed]

    def head_metrics(self) -> dict[str, float]:
        """The flat `metrics.json` written beside the report (the next PR's base metrics)."""
        # A non-finite value is "not computed", as pydantic writes it in report.json (null).
        return {k: v.head for k, v in self.metrics.items() if v.head is not None and math.isfinite(v.head)}
