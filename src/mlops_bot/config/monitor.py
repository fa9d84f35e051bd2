"""The `monitor` section: production checks over the prediction log."""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator

from mlops_bot.config.fields import Duration, Strict, parse_duration


class MonitorSection(Strict):
    window: Duration = 86400.0
    drift_share: float = Field(default=0.5, gt=0, le=1)
    prediction_drift: float = Field(default=0.1, ge=0, description="Jensen-Shannon distance threshold")
    max_metric_drop: dict[str, float] = Field(default_factory=dict)
    min_rows: int = Field(default=100, ge=1)
    cooldown: Duration = 86400.0
    sample_rate: float = Field(default=1.0, gt=0, le=1)
    log_dir: str = ".mlops/predictions"
    rotate_bytes: int = Field(default=64 * 1024 * 1024, ge=1024)
    rotate_seconds: Duration = 86400.0
    retrain_event: str = "mlops-retrain"

    @field_validator("window", "cooldown", "rotate_seconds", mode="before")
    @classmethod
    def _durations(cls, value: Any) -> float:
        return parse_duration(value)
