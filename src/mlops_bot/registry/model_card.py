"""The model card uploaded with each registered version (pure: config + report.json -> markdown)."""

from __future__ import annotations

from typing import Any

from mlops_bot.analysis.fairness import DISPARITIES
from mlops_bot.config import MlopsConfig
from mlops_bot.report import escape


def _fmt(value: Any) -> str:
    """A number as 4 significant digits; anything else report.json holds is shown as inert text."""
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return "-" if value is None else escape.cell(value)


def render_model_card(config: MlopsConfig, report: dict[str, Any], version: str) -> str:
    """Intended use, data, metrics, fairness summary and limitations, for people deciding to use it."""
    model = config.model
    unstated = "Not stated in .github/mlops.yml"
    title = f"# Model card: {escape.text(model.name)} {escape.text(version)}".rstrip()
    lines = [title, "", escape.prose(model.description) or f"A {model.task} model.", "",
             "## Intended use", "", escape.prose(model.intended_use) or f"{unstated} (model.intended_use).",
             "", "## Data", "", f"- training data: {escape.code(config.data.train)}",
             f"- holdout: {escape.code(config.data.holdout)}", f"- target: {escape.code(config.data.target)}"]
    if config.data.sensitive:
        lines.append(f"- sensitive attributes: {escape.text(', '.join(config.data.sensitive))}")
    lines += ["", "## Metrics (holdout)", "", "| metric | value | 95% CI |", "|---|---|---|"]
    for name, row in sorted((report.get("metrics") or {}).items()):
        row = row if isinstance(row, dict) else {"head": row}
        ci = row.get("ci")
        ci_text = f"[{_fmt(ci[0])}, {_fmt(ci[1])}]" if isinstance(ci, list | tuple) and len(ci) == 2 else "-"
        lines.append(f"| {escape.cell(name)} | {_fmt(row.get('head'))} | {ci_text} |")
    verdict = escape.text(report.get("verdict", "unknown"))
    lines += ["", f"Validation verdict: **{verdict}**", "", "## Fairness", ""]
    fairness = report.get("fairness")
    if isinstance(fairness, dict) and fairness:
        method = str(fairness.get("method", "between_groups")).replace("_", " ")
        groups = ", ".join(config.data.sensitive) or "the sensitive features"
        lines.append(
            f"Disparities across groups of {escape.text(groups)} ({escape.text(method)}), on the holdout:"
        )
        lines.append("")
        intervals = fairness.get("confidence_intervals") or {}
        names = fairness.get("disparity_names")
        for key in names if isinstance(names, list) else DISPARITIES:
            value = fairness.get(key)
            if isinstance(value, int | float):
                ci = intervals.get(key) if isinstance(intervals, dict) else None
                ci_text = ""
                if isinstance(ci, list) and len(ci) == 2:
                    ci_text = f" (95% CI [{_fmt(ci[0])}, {_fmt(ci[1])}])"
                lines.append(f"- {key.replace('_', ' ')}: {_fmt(float(value))}{ci_text}")
        small = fairness.get("small_groups")
        if small:
            lines.append(f"- groups too small to judge: {escape.text(', '.join(map(str, small)))}")
        lines.append("")
        if "demographic_parity_ratio" in fairness:
            lines.append("The four-fifths rule (demographic parity ratio >= 0.8) is a heuristic from US "
                         "employment law, not a legal test.")
    else:
        lines.append("No fairness analysis was recorded for this version.")
    limitations = escape.prose(model.limitations) or f"{unstated} (model.limitations)."
    lines += ["", "## Limitations", "", limitations, ""]
    if model.owners:
        lines += [f"Owners: {escape.text(', '.join(model.owners))}", ""]
    return "\n".join(lines)
