"""The `drift` and `fairness` sections of the PR report."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from mlops_bot.config.fields import Strict

# -------------------------------------------------------------------------------------------- drift
DriftMethod = Literal["ks", "chisquare", "z", "wasserstein", "jensenshannon", "psi"]


class ColumnDriftOverride(Strict):
    method: DriftMethod | None = None
    threshold: float | None = Field(default=None, ge=0)
    type: Literal["numerical", "categorical"] | None = None


class DriftSection(Strict):
    enabled: bool = True
    columns: dict[str, ColumnDriftOverride] = Field(default_factory=dict)
    ignore: list[str] = Field(default_factory=list)
    correction: Literal["none", "bonferroni", "benjamini-hochberg"] = "none"
    psi_flavour: Literal["evidently", "classic"] = "evidently"
    drift_share: float = Field(default=0.5, gt=0, le=1)
    plots: int = Field(default=3, ge=0, description="distribution plots for the most drifted columns")


# ----------------------------------------------------------------------------------------- fairness
class FairnessSection(Strict):
    enabled: bool = True
    min_group_size: int = Field(default=30, ge=1)
    missing: Literal["error", "group"] = "error"
    method: Literal["between_groups", "to_overall"] = "between_groups"
    bootstrap: bool = True
    bootstrap_samples: int = Field(default=1000, ge=100, le=100_000)
    confidence: float = Field(default=0.95, gt=0.5, lt=1.0)
