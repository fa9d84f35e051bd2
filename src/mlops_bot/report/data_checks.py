"""The data validation section of the PR comment (and of the monitoring report): failed checks
first, then warnings, each row naming the table, the column and the values; passed checks are
counted. Pure: report in, markdown out; every user-controlled string goes through `report.escape`."""

from __future__ import annotations

from mlops_bot.analysis.data_checks import DataCheck, DataChecksReport, rule_text
from mlops_bot.report import escape
from mlops_bot.report.numbers import percent, points

_MARK = {"fail": "❌", "warn": "⚠️", "pass": "✅"}
_SHARES = ("out_of_range", "unseen_categories", "duplicated_rows", "leakage")
_POINTS = ("missing_share", "target_balance")
MAX_ROWS = 50


def value_text(check: DataCheck) -> str:
    if check.value is None:
        return "-"
    if check.check in _SHARES:
        return percent(check.value)
    if check.check == "missing_share":
        return points(check.value)
    if check.check == "target_balance":
        return points(check.value).lstrip("+")
    return f"{check.value:g}"


def render_data_checks(report: DataChecksReport, title: str = "Data validation") -> str:
    problems = report.problems()
    failed = sum(c.status == "fail" for c in problems)
    warned = len(problems) - failed
    passed = len(report.checks) - len(problems)
    lines = [f"### {title}", "", f"Checked against {escape.text(report.reference)}."]
    summary = f"{_MARK['fail']} {failed} failed, {_MARK['warn']} {warned} warning(s), {passed} passed"
    lines += ["", summary + " (gates and defaults: docs/data-validation.md)."]
    if problems:
        lines += [
            "",
            "| | Check | Table | Column | Value | Gate | Detail |",
            "|---|---|---|---|---:|---|---|",
        ]
        for c in problems[:MAX_ROWS]:
            column = escape.code(c.column, table=True) if c.column else "-"
            gate = f"{c.action}: {rule_text(c.check, c.limit)}"
            lines.append(
                f"| {_MARK[c.status]} | {c.check} | {escape.cell(c.dataset)} | {column} | {value_text(c)} "
                f"| {escape.cell(gate)} | {escape.cell(c.detail)} |"
            )
        if len(problems) > MAX_ROWS:
            lines += ["", f"{len(problems) - MAX_ROWS} more row(s) in report.json (`data_checks`)."]
    for note in report.notes:
        lines += ["", f"> {escape.text(note)}"]
    return "\n".join(lines) + "\n"
