"""`MlopsConfig`: everything about one model, as `.github/mlops.yml` holds it for a repository of one
model (or one entry of `models:`, or one file under `.github/mlops/`, merged with the shared keys).

Every section is a pydantic model with `extra="forbid"`, so a typo is an error rather than a
silently ignored key; `config/loading.py` turns validation errors into file:line:key messages.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from mlops_bot.config.analyses import DriftSection, FairnessSection
from mlops_bot.config.bot import BotSection
from mlops_bot.config.fields import Strict
from mlops_bot.config.gates import BaselineSection, BootstrapSection, DataGates, GateRule
from mlops_bot.config.model import CustomMetric, DataSection, MetricEntry, ModelSection, TrainSection
from mlops_bot.config.monitor import MonitorSection
from mlops_bot.config.registry import RegistrySection
from mlops_bot.config.report import ReportSection
from mlops_bot.config.rollout import RolloutSection

DEFAULT_CONFIG_PATH = ".github/mlops.yml"


class MlopsConfig(Strict):
    """One model's config: the whole of a single-model `.github/mlops.yml`."""

    version: Literal[1] = 1
    model: ModelSection
    train: TrainSection
    data: DataSection
    metrics: list[MetricEntry] = Field(
        default_factory=list,
        description="built-in metric names, or custom metrics (`module:function` or a mapping); "
        "default: the task's metrics",
    )
    gates: dict[str, GateRule] = Field(default_factory=dict)
    # `gates.data` in the file: lifted out of `gates` (whose other keys are metric names) on load.
    data_gates: DataGates = Field(default_factory=DataGates)
    seed: int = 0
    baseline: BaselineSection = Field(default_factory=BaselineSection)
    bootstrap: BootstrapSection = Field(default_factory=BootstrapSection)
    drift: DriftSection = Field(default_factory=DriftSection)
    fairness: FairnessSection = Field(default_factory=FairnessSection)
    report: ReportSection = Field(default_factory=ReportSection)
    registry: RegistrySection = Field(default_factory=RegistrySection)
    rollout: RolloutSection = Field(default_factory=RolloutSection)
    monitor: MonitorSection = Field(default_factory=MonitorSection)
    bot: BotSection = Field(default_factory=BotSection)

    # Where the file was read from: relative data paths resolve against the repository root.
    root: Path = Field(default=Path("."), exclude=True)
    # The file that declared this model (repository-relative when it lies inside the repository):
    # a change to it means the model changed.
    source: str = Field(default=DEFAULT_CONFIG_PATH, exclude=True)

    @model_validator(mode="before")
    @classmethod
    def _lift_data_gates(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("gates"), dict) and "data" in data["gates"]:
            if "data_gates" in data:
                raise ValueError("set data gates under gates.data only")
            gates = dict(data["gates"])
            data = {**data, "gates": gates, "data_gates": gates.pop("data")}
        return data

    @field_validator("metrics", mode="before")
    @classmethod
    def _custom_strings(cls, value: Any) -> Any:
        """`module:function` in the list is a custom metric named after the function."""
        if isinstance(value, list):
            return [{"function": v} if isinstance(v, str) and ":" in v else v for v in value]
        return value

    @model_validator(mode="after")
    def _unique_metric_names(self) -> MlopsConfig:
        names = self.metric_names
        duplicated = sorted({n for n in names if names.count(n) > 1})
        if duplicated:
            raise ValueError(
                f"metrics: name(s) listed twice: {', '.join(duplicated)} (give custom metrics a name:)"
            )
        return self

    @property
    def metric_names(self) -> list[str]:
        """Every metric listed under `metrics:`, built-in and custom, in order."""
        return [m.metric_name if isinstance(m, CustomMetric) else m for m in self.metrics]

    @property
    def custom_metrics(self) -> list[CustomMetric]:
        return [m for m in self.metrics if isinstance(m, CustomMetric)]

    def resolve(self, relative: str) -> Path:
        path = Path(relative)
        return path if path.is_absolute() else self.root / path


