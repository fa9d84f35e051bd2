"""The rollout plan: the ordered canary steps and gates from `rollout:` in `.github/mlops.yml`.

A plan is data; the controller walks it. After the last step passes, the canary is promoted to
100 % and becomes the stable version.
"""

from __future__ import annotations

from pydantic import BaseModel

from mlops_bot.config import RolloutGates, RolloutSection, RolloutStep
from mlops_bot.errors import ConfigError


class RolloutPlan(BaseModel):
    environment: str
    stage: str
    steps: list[RolloutStep]
    gates: RolloutGates
    interval: float
    initial_delay: float
    failure_limit: int
    progress_deadline: float
    on_inconclusive: str
    shadow: bool

    def step_label(self, index: int) -> str:
        step = self.steps[index]
        hold = "until /promote" if step.hold == "manual" else f"{step.hold:g}s"
        mode = "shadow" if self.shadow else f"{step.weight}%"
        return f"step {index + 1}/{len(self.steps)}: {mode}, hold {hold}"

    def describe(self) -> str:
        return " -> ".join(self.step_label(i).split(": ", 1)[1] for i in range(len(self.steps))) + " -> 100%"


def plan_from_config(section: RolloutSection, source: str = ".github/mlops.yml") -> RolloutPlan:
    """Check what pydantic cannot (weights never go down) and freeze the plan."""
    weights = [step.weight for step in section.steps]
    for index in range(1, len(weights)):
        if weights[index] < weights[index - 1]:
            raise ConfigError(source, f"rollout.steps.{index}.weight",
                              f"weights must not decrease ({weights[index - 1]} then {weights[index]})")
    return RolloutPlan(
        environment=section.environment, stage=section.stage, steps=list(section.steps), gates=section.gates,
        interval=section.interval, initial_delay=section.initial_delay, failure_limit=section.failure_limit,
        progress_deadline=section.progress_deadline, on_inconclusive=section.on_inconclusive,
        shadow=section.shadow,
    )
