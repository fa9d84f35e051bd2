"""The fairness section of the PR report: one row per group, the disparities with their bootstrap
intervals, small groups flagged, and the four-fifths heuristic labelled as such."""

from __future__ import annotations

from mlops_bot.analysis.fairness import DISPARITIES, FOUR_FIFTHS_LABEL, FairnessReport
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
