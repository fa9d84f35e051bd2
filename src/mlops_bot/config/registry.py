"""The `registry` section: the ordered stages and who may promote to each."""

from __future__ import annotations

from pydantic import Field, field_validator, model_validator

from mlops_bot.config.fields import Strict, check_stage_name
from mlops_bot.permissions import Permission


class StagePolicy(Strict):
    permission: Permission = "write"
    require_gates: bool = True
    approvers: list[str] = Field(default_factory=list)


class RegistrySection(Strict):
    """Promotion policy: the ordered stages and who may promote to each."""

    stages: list[str] = Field(default_factory=lambda: ["dev", "staging", "production"], min_length=1)
    allow_skip: bool = False
    policy: dict[str, StagePolicy] = Field(default_factory=dict)
    remote: str = "origin"

    @field_validator("stages")
    @classmethod
    def _stage_names(cls, value: list[str]) -> list[str]:
        for stage in value:
            check_stage_name(stage)
        return value

    @model_validator(mode="after")
    def _known_stages(self) -> RegistrySection:
        unknown = sorted(set(self.policy) - set(self.stages))
        if unknown:
            raise ValueError(f"policy names stages not in 'stages': {', '.join(unknown)}")
        if len(set(self.stages)) != len(self.stages):
            raise ValueError("stages must be unique")
        return self

    def stage_policy(self, stage: str) -> StagePolicy:
        return self.policy.get(stage, StagePolicy())
