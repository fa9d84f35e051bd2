"""The model card uploaded with each registered version (pure: config + report.json -> markdown)."""

from __future__ import annotations

from typing import Any

from mlops_bot.config import MlopsConfig


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else ("-" if value is None else str(value))


def render_model_card(config: MlopsConfig, report: dict[str, Any], version: str) -> str:
    """Intended use, data, metrics, fairness summary and limitations, for people deciding to use it."""
    model = config.model
    unstated = "Not stated in .github/mlops.yml"
    lines = [f"# Model card: {model.name} {version}", "", model.description or f"A {model.task} model.", "",
             "## Intended use", "", model.intended_use or f"{unstated} (model.intended_use).", "",
             "## Data", "", f"- training data: `{config.data.train}`",
             f"- holdout: `{config.data.holdout}`", f"- target: `{config.data.target}`"]
    if config.data.sensitive:
        lines.append(f"- sensitive attributes: {', '.join(config.data.sensitive)}")
    lines += ["", "## Metrics (holdout)", "", "| metric | value | 95% CI |", "|---|---|---|"]
    for name, row in sorted((report.get("metrics") or {}).items()):
        row = row if isinstance(row, dict) else {"head": row}
        ci = row.get("ci")
        ci_text = f"[{_fmt(ci[0])}, {_fmt(ci[1])}]" if isinstance(ci, list | tuple) and len(ci) == 2 else "-"
        lines.append(f"| {name} | {_fmt(row.get('head'))} | {ci_text} |")
    lines += ["", f"Validation verdict: **{report.get('verdict', 'unknown')}**", "", "## Fairness", ""]
    fairness = report.get("fairness")
    if isinstance(fairness, dict) and fairness:
        for key, value in sorted(fairness.items()):
            if isinstance(value, int | float | str):
                lines.append(f"- {key}: {_fmt(value)}")
        lines.append("")
        lines.append("The four-fifths rule (ratio >= 0.8) is a heuristic from US employment law.")
    else:
        lines.append("No fairness analysis was recorded for this version.")
    lines += ["", "## Limitations", "", model.limitations or f"{unstated} (model.limitations).", ""]
    if model.owners:
        lines += [f"Owners: {', '.join(model.owners)}", ""]
    return "\n".join(lines)
