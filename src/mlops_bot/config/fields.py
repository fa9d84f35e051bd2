"""What several config sections share: the strict base model, durations and stage names."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from mlops_bot.registry.tags import NAME_RE

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def parse_duration(value: str | float | int) -> float:
    """'90s', '5m', '24h', '1.5d' or a number of seconds -> seconds."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as '30s', '5m' or '24h'")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return float(value)
    match = _DURATION.match(value)
    if not match:
        raise ValueError(f"expected a duration such as '30s', '5m' or '24h', got {value!r}")
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]


Duration = Annotated[float, Field(ge=0)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def check_stage_name(stage: str) -> str:
    if not NAME_RE.match(stage):
        raise ValueError(f"{stage!r} is not a stage name the registry can tag (letters, digits, '-', '_', "
                         "'/', starting and ending with a letter or digit)")
    return stage
