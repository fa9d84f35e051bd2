"""The one reader of the metric values a validation wrote: `report.json`
(`metrics: {NAME: {head, base, diff, ci}}`) or the flat `metrics.json` beside it ({NAME: value}).
The PR validation reads a base branch's file with it, the monitor a registered version's report.

One rule for every value: a number is the metric's value (a bool is not a number); `null` (or an
entry without `head`) is a metric the head could not compute, left out; anything else (a string,
NaN, an infinity, a list) is a `DataError` naming the file and the metric. Skipping a bad value
would silently turn a comparison into "no baseline" for that metric; the writer never produces one
(`ValidationReport.head_metrics` and pydantic's JSON store a non-finite value as null).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from mlops_bot.errors import DataError


def metrics_from_report(data: Any, source: str) -> dict[str, float]:
    """The head value of each metric in parsed report.json or metrics.json data (pure)."""
    if isinstance(data, dict) and isinstance(data.get("metrics"), dict):
        data = data["metrics"]
    if not isinstance(data, dict):
        raise DataError(f"{source}: expected an object of metric name -> number (or report.json's "
                        "`metrics`), got " + type(data).__name__)
    out: dict[str, float] = {}
    for name, entry in data.items():
        value = entry.get("head") if isinstance(entry, dict) else entry
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise DataError(f"{source}: metric {name!r} is {value!r}; expected a finite number "
                            "(or null when it was not computed)")
        out[str(name)] = float(value)
    return out


def read_metrics_file(path: Path, what: str = "metrics file") -> dict[str, float]:
    """`metrics_from_report` of a file, with one-line errors for a missing or unparsable one."""
    source = f"{what} {path}"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"{source} does not exist") from None
    except (OSError, ValueError) as exc:
        raise DataError(f"{source} is not valid JSON: {exc}") from None
    return metrics_from_report(data, source)
