"""The fairness section of the PR report: one row per group, the disparities with their bootstrap
intervals, small groups flagged, and the four-fifths heuristic labelled as such."""

from __future__ import annotations

from mlops_bot.analysis.fairness import DISPARITIES, FOUR_FIFTHS_LABEL, FairnessReport
from mlops_bot.analysis.fairness_tasks import TaskFairnessReport
from mlops_bot.report import escape
from mlops_bot.report.numbers import fmt


def _num(value: float | None) -> str:
    return fmt(value)


def render_fairness(report: FairnessReport, title: str = "Fairness") -> str:
    """Markdown section; group keys join the sensitive values in column order with ' | '."""
    columns = " × ".join(report.sensitive)
    lines = [
        f"### {title}",
        "",
        f"Groups by {escape.text(columns)} (positive label {escape.code(report.pos_label)}).",
        "",
        "| Group | Count | Accuracy | Selection rate | TPR | FPR |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for key, g in report.by_group.items():
        small = " ⚠️ small" if key in report.small_groups else ""
        label = escape.cell(key.replace("|", " | "))
        lines.append(
            f"| {label}{small} | {g.count} | {_num(g.accuracy)} | {_num(g.selection_rate)} "
            f"| {_num(g.tpr)} | {_num(g.fpr)} |"
        )
    o = report.overall
    lines.append(
        f"| **overall** | {o.count} | {_num(o.accuracy)} | {_num(o.selection_rate)} | {_num(o.tpr)} "
        f"| {_num(o.fpr)} |"
    )
    pct = f"{report.confidence:.0%}"
    scope = "between groups" if report.method == "between_groups" else "each group to overall"
    lines += ["", f"| Disparity ({scope}) | Value | {pct} CI |", "|---|---:|---|"]
    for name in DISPARITIES:
        value = report.disparities.get(name)
        ci = report.intervals.get(name)
        ci_text = f"[{_num(ci[0])}, {_num(ci[1])}]" if ci else "-"
        lines.append(f"| {name.replace('_', ' ')} | {_num(value)} | {ci_text} |")
    if report.bootstrap_samples:
        lines.append(
            f"\nIntervals: bias-corrected percentile bootstrap over {report.bootstrap_samples} row resamples."
        )
    if report.four_fifths_passed is not None:
        verdict = "met" if report.four_fifths_passed else "**not met**"
        lines.append(
            f"\nDemographic parity ratio {_num(report.disparities['demographic_parity_ratio'])} >= 0.8: "
            f"{verdict} ({FOUR_FIFTHS_LABEL})."
        )
    if report.small_groups:
        groups = ", ".join(escape.code(g) for g in report.small_groups)
        lines.append(
            f"\n⚠️ Groups with fewer than {report.min_group_size} rows are too small to judge: {groups}."
        )
    return "\n".join(lines) + "\n"


def render_task_fairness(report: TaskFairnessReport, title: str = "Fairness") -> str:
    """Markdown section of a multiclass or regression model: per-group metrics, then every
    disparity (fairlearn MetricFrame difference and ratio) with its interval."""
    columns = " × ".join(report.sensitive)
    names = list(report.metrics)
    lines = [
        f"### {title}",
        "",
        f"Groups by {escape.text(columns)} ({report.task} model; fairlearn MetricFrame semantics).",
        "",
        "| Group | Count | " + " | ".join(escape.cell(n.replace("_", " ")) for n in names) + " |",
        "|---|---:|" + "---:|" * len(names),
    ]
    for key, row in report.by_group.items():
        small = " ⚠️ small" if key in report.small_groups else ""
        cells = " | ".join(_num(row.get(n)) for n in names)
        lines.append(f"| {escape.cell(key.replace('|', ' | '))}{small} | {report.counts[key]} | {cells} |")
    overall = " | ".join(_num(report.overall.get(n)) for n in names)
    lines.append(f"| **overall** | {sum(report.counts.values())} | {overall} |")
    pct = f"{report.confidence:.0%}"
    scope = "between groups" if report.method == "between_groups" else "each group to overall"
    lines += ["", f"| Disparity ({scope}) | Value | {pct} CI |", "|---|---:|---|"]
    for name, value in report.disparities.items():
        ci = report.intervals.get(name)
        ci_text = f"[{_num(ci[0])}, {_num(ci[1])}]" if ci else "-"
        worst = " (worst class)" if name.startswith("selection_rate_") else ""
        lines.append(f"| {name.replace('_', ' ')}{worst} | {_num(value)} | {ci_text} |")
    if report.class_disparities:
        lines += ["", "| Class | Selection rate difference | Selection rate ratio |", "|---|---:|---:|"]
        for label, row in report.class_disparities.items():
            difference, ratio = _num(row.get("difference")), _num(row.get("ratio"))
            lines.append(f"| {escape.cell(label)} | {difference} | {ratio} |")
    if report.bootstrap_samples:
        lines.append(
            f"\nIntervals: bias-corrected percentile bootstrap over {report.bootstrap_samples} row resamples."
        )
    if report.small_groups:
        groups = ", ".join(escape.code(g) for g in report.small_groups)
        lines.append(
            f"\n⚠️ Groups with fewer than {report.min_group_size} rows are too small to judge: {groups}."
        )
    return "\n".join(lines) + "\n"


def render_not_computed(reason: str, title: str = "Fairness") -> str:
    """A section that could not be computed says so, and why, instead of failing the report."""
    return f"### {title}\n\n_Not computed: {escape.text(reason)}_\n"
