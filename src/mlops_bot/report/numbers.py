"""The one number format of the PR comment: 4 significant digits, `-` when missing.

Every renderer in `report/` formats numbers here, so a metric reads the same in the metric table,
the gates, the drift and the data sections. Pure functions."""

from __future__ import annotations

import math

DIGITS = 4


def fmt(value: float | None, signed: bool = False, digits: int = DIGITS) -> str:
    """`0.8123`, `+0.01234`, `1.235e+05`; `-` for None or NaN; `inf` as is."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if value == 0:
        return "+0" if signed else "0"
    text = f"{value:{'+' if signed else ''}.{digits}g}"
    return text


def percent(share: float | None, signed: bool = False) -> str:
    """A share (0..1) as a percentage: `12.5 %`."""
    return "-" if share is None else f"{fmt(100 * share, signed)} %"


def points(change: float | None) -> str:
    """A change of a share (0..1) in percentage points: `+12.5 points`."""
    return "-" if change is None else f"{fmt(100 * change, signed=True)} points"
