"""The PR comment: one markdown document a reviewer reads top to bottom.

Verdict first, then the DVC-style metric table (`Metric | base | head | Change | 95% CI`, 5
significant digits, `-` for missing), gate verdicts, then collapsible details. It starts with the
sticky marker so re-runs update the same comment, and stays under GitHub's 65,536-character limit by
dropping the bulkiest details first (with a note saying so). Pure: report in, text out.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mlops_bot.forge.base import sticky_marker
from mlops_bot.pipeline.evaluate import lower_is_better, task_metrics
from mlops_bot.pipeline.gates import GateResult, MetricComparison
from mlops_bot.pipeline.params import params_diff
from mlops_bot.pipeline.result import ValidationReport
from mlops_bot.report import escape
from mlops_bot.report.charts import confusion_table, interval_bar, metric_bar_chart
from mlops_bot.report.images import image_reserve, plot_list_block
from mlops_bot.report.numbers import fmt
from mlops_bot.report.per_class import per_class_table

GITHUB_COMMENT_LIMIT = 65_536
MARKER_WORKFLOW = "mlops-pr"
_PASS, _FAIL, _SKIP = "✅", "❌", "⚪"


def _change(metric: str, row: MetricComparison) -> str:
    if row.diff is None:
        return "-"
    if row.diff == 0:
        return fmt(0.0)
    better = (row.diff < 0) if row.worse_when_higher(metric) else (row.diff > 0)
    return f"{fmt(row.diff, signed=True)} {'🟢' if better else '🔴'}"


def _ci(metric: str, row: MetricComparison, span: float) -> str:
    if row.ci is None:
        return "-"
    low, high = row.ci
    note = ""
    if low > 0 or high < 0:
        better = (high < 0) if row.worse_when_higher(metric) else (low > 0)
        note = " better" if better else " worse"
    return f"[{fmt(low, True)}, {fmt(high, True)}]{note} `{interval_bar(low, high, span)}`"


def metric_table(report: ValidationReport) -> str:
    confidence = round(100 * float(report.bootstrap.get("confidence", 0.95)))
    lines = [f"| Metric | base | head | Change | {confidence}% CI |", "|---|---:|---:|---:|---|"]
    for name, row in report.metrics.items():
        span = max((abs(x) for x in (row.ci or [])), default=0.0)
        lines.append(
            f"| {escape.cell(name)} | {fmt(row.base)} | {fmt(row.head)} | {_change(name, row)} "
            f"| {_ci(name, row, span)} |"
        )
    return "\n".join(lines)


def params_section(params: dict[str, Any]) -> str:
    """`dvc params diff` in a fold: changed parameters base vs head (every one when there is no
    base to compare with)."""
    head = params.get("head") or {}
    base = params.get("base")
    rows = params_diff(base, head)
    if base is None:
        summary = f"Params: {len(rows)} (no baseline params to compare with)"
        shown = rows
    else:
        shown = [r for r in rows if r.changed]
        summary = f"Params: {len(shown)} changed, {len(rows) - len(shown)} unchanged"
    if not shown:
        return _details(summary, "_No parameter changed._")
    lines = ["| Param | base | head |", "|---|---|---|"]
    for row in shown:
        old = "-" if row.added or base is None else escape.cell(_param(row.base))
        new = "-" if row.removed else escape.cell(_param(row.head))
        lines.append(f"| {escape.cell(row.name)} | {old} | {new} |")
    return _details(summary, "\n".join(lines))


def _param(value: Any) -> str:
    if isinstance(value, float):
        return fmt(value)
    return "null" if value is None else str(value)


def gate_table(gates: Sequence[GateResult]) -> str:
    if not gates:
        return "_No gates configured (add `gates:` to .github/mlops.yml)._"
    lines = ["| | Metric | Rule | Result |", "|---|---|---|---|"]
    for g in gates:
        mark = {"pass": _PASS, "fail": _FAIL, "skipped": _SKIP}[g.status]
        # the detail may quote data values (data gates): shown verbatim
        rule = escape.code(g.rule, table=True)
        lines.append(f"| {mark} | {escape.cell(g.metric)} | {rule} | {escape.cell(g.detail)} |")
    return "\n".join(lines)


def headline(report: ValidationReport) -> str:
    failed = report.failed_gates()
    if failed:
        names = escape.text(", ".join(sorted({g.metric for g in failed})))
        return (
            f"## {_FAIL} {escape.code(report.model)}: {len(failed)} of {len(report.gates)} gate(s) failed "
            f"({names})"
        )
    if not report.gates:
        return f"## {_PASS} {escape.code(report.model)}: validated (no gates configured)"
    return f"## {_PASS} {escape.code(report.model)}: all {len(report.gates)} gate(s) passed"


def _details(summary: str, body: str) -> str:
    return f"<details><summary>{summary}</summary>\n\n{body}\n\n</details>"


def _run_details(report: ValidationReport) -> str:
    r = report.reproducibility
    rows = [f"- seed: {escape.code(r.seed)}"]
    if r.git_sha:
        rows.append(f"- commit: {escape.code(r.git_sha)}")
    if r.estimator:
        rows.append(f"- estimator: {escape.code(r.estimator)} (built-in pipeline)")
    if r.command:
        rows.append(f"- training command: {escape.code(r.command)}")
    rows += [f"- {escape.text(role)} data sha256: {escape.code(digest)}" for role, digest in r.data.items()]
    rows.append("- packages: " + escape.text(", ".join(f"{k} {v}" for k, v in r.packages.items())))
    rows.append(f"- rows: train {report.train_rows}, holdout {report.holdout_rows}")
    boot = report.bootstrap
    if boot.get("paired"):
        rows.append(
            f"- confidence intervals: paired bootstrap, {boot.get('samples')} resamples of the holdout, "
            f"seed {boot.get('seed')}, percentile method"
        )
    if report.created_at:
        rows.append(f"- generated: {report.created_at}")
    return "\n".join(rows)


def render_markdown(
    report: ValidationReport, extra_sections: Sequence[str] = (), limit: int = GITHUB_COMMENT_LIMIT
) -> str:
    """The full comment. `extra_sections` (drift, fairness) come from their own renderers."""
    head = [sticky_marker(MARKER_WORKFLOW, report.model), headline(report), ""]
    baseline = f"**Baseline:** {escape.text(report.baseline.description)}"
    if report.baseline.notes:
        baseline += " (" + escape.text("; ".join(report.baseline.notes)) + ")"
    if report.gates_notice:
        head += [f"**Gates:** {escape.text(report.gates_notice)}", ""]
    head += [baseline, "", metric_table(report), "", "### Gates", "", gate_table(report.gates), ""]
    chart = metric_bar_chart(
        {
            k: (v.base, v.head)
            for k, v in report.metrics.items()
            if k in task_metrics(report.task) and not lower_is_better(k)
        },
        title="base (left bar) vs head (right bar)" if report.baseline.source != "none" else "head",
    )
    optional: list[str] = []
    if chart:
        optional.append(_details("Chart: metrics, base vs head", chart))
    optional.extend(extra_sections)
    if report.confusion_matrix:
        body = confusion_table(report.confusion_matrix, "head")
        if report.base_confusion_matrix:
            body += "\n\n" + confusion_table(report.base_confusion_matrix, "base")
        optional.append(_details("Confusion matrix", body))
        if len(report.confusion_matrix.get("labels", [])) > 2:
            table = per_class_table(report.confusion_matrix, report.base_confusion_matrix)
            optional.append(_details("Per-class metrics (base → head)" if report.base_confusion_matrix
                                     else "Per-class metrics", table))
    if report.params and (report.params.get("head") or report.params.get("base")):
        optional.append(params_section(report.params))
    if report.analysis_notes:
        optional.append("\n".join(f"> {escape.text(n)}" for n in report.analysis_notes))
    tail = [_details("Run details (reproducibility)", _run_details(report))]
    if report.plots:  # the comment job swaps this list for the images (report/images.py)
        tail.append(plot_list_block([escape.code(p) for p in report.plots]))
        limit -= image_reserve(len(report.plots))
    text = _join(head, optional, tail)
    note = "\n\n> Some details were left out to fit GitHub's comment size limit; see report.json."
    while len(text) > limit and optional:
        optional.pop()
        text = _join(head, optional, tail) + note
    if len(text) > limit:
        text = text[: limit - len(note) - 1] + note
    return text


def _join(head: list[str], optional: list[str], tail: list[str]) -> str:
    return "\n".join(head) + "\n" + "\n\n".join([*optional, *tail]) + "\n"
