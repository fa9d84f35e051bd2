"""The trusted side of a PR report: what the job with write permissions posts is decided here, from
the numbers in the validation artifact and the base branch's config, never from the artifact's own
verdict, gate rows or markdown.

The validation job runs the PR's code (its training command, and on `pull_request` even its copy of
the workflow), so everything it uploads is untrusted input: `read_report` bounds its size, refuses
non-finite numbers and anything that does not fit `ValidationReport`; `rejudge` keeps only measured
values (metric base/head/interval, data-check values, drift and fairness numbers), recomputes every
difference, re-evaluates the gates of the judging config (the base branch's, unless a maintainer
accepted the PR's own) and the verdict; `render` writes the comment again from that data through the
same renderers as the validation (every text escaped). A forged verdict, gate row or report.md in
the artifact changes nothing that is posted or registered.

What this cannot do: make the measured numbers honest. A PR that rewrites its training or workflow
can report any metric; that is what review is for. It guarantees which thresholds apply to them.
"""

from __future__ import annotations

import json
import math
import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from mlops_bot.analysis.data_checks import DataChecksReport, rejudged
from mlops_bot.analysis.drift import DriftReport
from mlops_bot.analysis.fairness import FairnessReport
from mlops_bot.analysis.fairness_tasks import TaskFairnessReport
from mlops_bot.errors import ForgeError
from mlops_bot.pipeline.base_gates import Judging
from mlops_bot.pipeline.comment import render_markdown
from mlops_bot.pipeline.data_validation import data_gate_results
from mlops_bot.pipeline.gates import GateResult, MetricComparison, compare, evaluate_gates, verdict
from mlops_bot.pipeline.result import ValidationReport
from mlops_bot.report.data_checks import render_data_checks
from mlops_bot.report.drift import render_drift
from mlops_bot.report.fairness import render_fairness, render_task_fairness

REPORT_FILE = "report.json"
MAX_REPORT_BYTES = 16 * 1024 * 1024  # a 200-column drift table with fairness by 100 groups is < 1 MB


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number JSON allows")


def read_report(report_dir: Path, limit: int = MAX_REPORT_BYTES) -> ValidationReport:
    """report.json of an artifact, as data: a regular file (not a link) of at most `limit` bytes,
    JSON without NaN/Infinity, shaped like `ValidationReport`. Anything else is one ForgeError."""
    path = report_dir / REPORT_FILE
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        raise ForgeError(f"{path} does not exist: the validation artifact has no report") from None
    if not stat.S_ISREG(info.st_mode):
        raise ForgeError(f"{path} is not a regular file: refusing the artifact")
    if info.st_size > limit:
        raise ForgeError(f"{path} is {info.st_size:,} bytes, over the {limit:,} a report may have")
    with open(path, "rb") as handle:
        raw = handle.read(limit + 1)
    if len(raw) > limit:
        raise ForgeError(f"{path} is over the {limit:,} bytes a report may have")
    try:
        data = json.loads(raw.decode("utf-8"), parse_constant=_refuse_constant)
        return ValidationReport.model_validate(data)
    except (UnicodeDecodeError, ValueError) as exc:  # ValidationError is a ValueError
        first = exc.errors()[0] if isinstance(exc, ValidationError) else None
        where = ".".join(str(p) for p in first["loc"]) + ": " + first["msg"] if first else str(exc)
        raise ForgeError(f"{path}: not a validation report ({where[:300]})") from None


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _interval(ci: list[float] | None) -> list[float] | None:
    if ci is None or len(ci) != 2 or not all(math.isfinite(x) for x in ci) or ci[0] > ci[1]:
        return None
    return [float(ci[0]), float(ci[1])]


def measured_metrics(
    report: ValidationReport, judging: Judging, base_values: Mapping[str, float] | None = None
) -> dict[str, MetricComparison]:
    """The metric rows rebuilt from measured values only: base and head, the interval of the
    difference when it is a real one; the difference itself recomputed; a custom metric's direction
    from the judging config. `base_values` (read by the trusted job itself, e.g. the base branch's
    metrics file) replace the artifact's base column, and then no interval is kept."""
    directions = {m.metric_name: not m.greater_is_better for m in judging.config.custom_metrics}
    rows: dict[str, MetricComparison] = {}
    for name, row in report.metrics.items():
        base, ci = _finite(row.base), _interval(row.ci)
        if base_values is not None:
            base, ci = _finite(base_values.get(name)), None
        rebuilt = compare(base, _finite(row.head), ci if base is not None else None)
        rows[name] = rebuilt.model_copy(update={"lower_is_better": directions.get(name)})
    return rows


def rejudge(
    report: ValidationReport, judging: Judging, base_values: Mapping[str, float] | None = None
) -> ValidationReport:
    """The report as the trusted job posts it: gates and verdict of `judging.config` over the
    measured values, its notice, its model name. Pure."""
    config = judging.config
    if report.model != config.model.name:
        raise ForgeError(
            f"report.json is for model {report.model[:100]!r}, but the base branch's config validates "
            f"{config.model.name!r}: refusing the artifact"
        )
    metrics = measured_metrics(report, judging, base_values)
    data_checks = None
    gates = evaluate_gates(config.gates, metrics)
    if report.data_checks is not None:
        checks = _checks(report.data_checks)
        kept = [row for row in (rejudged(c, config.data_gates) for c in checks.checks) if row is not None]
        checks = checks.model_copy(update={"checks": kept})
        data_checks = checks.to_json_dict()
        gates += data_gate_results(kept)
    else:  # every validation writes them: a report without any cannot pass the data gates
        gates.append(GateResult(metric="data", rule="data checks reported", passed=False, status="fail",
                                detail="the validation artifact has no data checks"))
    baseline = report.baseline
    if base_values is not None:
        baseline = baseline.model_copy(update={"notes": [*baseline.notes, "base values read by the "
                                                         "commenting job from the base branch"]})
    return report.model_copy(update={
        "metrics": metrics,
        "gates": gates,
        "verdict": verdict(gates),
        "data_checks": data_checks,
        "gates_notice": judging.notice,
        "baseline": baseline,
    })


def _checks(data: Mapping[str, Any]) -> DataChecksReport:
    try:
        return DataChecksReport.model_validate(data)
    except ValidationError as exc:
        problem = exc.errors()[0]["msg"]
        raise ForgeError(f"report.json: data_checks is not a data-check report ({problem})") from None


def sections(report: ValidationReport, pos_label: Any = None) -> list[str]:
    """The data-check, drift and fairness sections, rendered again from the report's data."""
    out: list[str] = []
    try:
        if report.data_checks is not None:
            out.append(render_data_checks(_checks(report.data_checks)))
        if report.drift is not None:
            out.append(render_drift(DriftReport.from_json_dict(report.drift)))
        if report.fairness is not None:
            if "disparity_names" in report.fairness:
                out.append(render_task_fairness(TaskFairnessReport.from_json_dict(report.fairness)))
            else:
                out.append(render_fairness(FairnessReport.from_json_dict(report.fairness, pos_label)))
    except ValueError as exc:  # pydantic's ValidationError included
        text = f"report.json: a drift or fairness section does not fit its schema ({exc})"
        raise ForgeError(text[:400]) from None
    return [s for s in out if s]


def render(report: ValidationReport, pos_label: Any = None) -> str:
    """The PR comment from data, exactly as the validation renders it (minus drift plot names)."""
    return render_markdown(report, extra_sections=sections(report, pos_label))
