"""How analysis results write a number that may be missing: NaN (a metric that cannot be computed
on this data, e.g. a ratio over an empty group) becomes JSON null, never the non-standard `NaN`
token that strict JSON readers refuse."""

from __future__ import annotations

import math


def nan_to_none(value: float | None) -> float | None:
    """`None` for a missing or NaN value, otherwise the value as a plain float."""
    return None if value is None or math.isnan(value) else float(value)
