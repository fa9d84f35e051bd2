"""Charts that render inside a GitHub comment with no image host: Mermaid and markdown tables.

GitHub renders ```mermaid fences natively; `xychart-beta` draws bar charts. Everything here is a
pure function from numbers to text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from mlops_bot.report import escape
from mlops_bot.report.numbers import fmt

_SAFE_LABEL = re.compile(r"[^A-Za-z0-9_ .:-]")


def _label(text: str) -> str:
    """Mermaid labels: quoted, without characters that would end the quote or inject syntax."""
    return '"' + _SAFE_LABEL.sub("_", text)[:40] + '"'


def _num(value: float) -> str:
    return fmt(value)


def metric_bar_chart(
    rows: Mapping[str, tuple[float | None, float | None]], title: str = "base vs head"
) -> str:
    """A grouped bar chart (base, then head) of metrics that live on a 0..1 scale.

    Metrics outside [0, 1] (log loss, RMSE, ...) would squash the others, so they are left to the table.
    Returns "" when nothing fits.
    """
    names = [
        n
        for n, (b, h) in rows.items()
        if h is not None and 0.0 <= h <= 1.0 and (b is None or 0.0 <= b <= 1.0)
    ]
    if not names:
        return ""
    lines = [
        "```mermaid",
        "xychart-beta",
        f"    title {_label(title)}",
        f"    x-axis [{', '.join(_label(n) for n in names)}]",
        '    y-axis "value" 0 --> 1',
    ]
    bases = [rows[n][0] for n in names]
    if all(b is not None for b in bases):
        lines.append(f"    bar [{', '.join(_num(b) for b in bases if b is not None)}]")
    lines.append(f"    bar [{', '.join(_num(rows[n][1] or 0.0) for n in names)}]")
    lines.append("```")
    return "\n".join(lines)


def confusion_table(confusion: Mapping[str, Any], title: str = "") -> str:
    """Confusion matrix as a markdown table: rows are true classes, columns predicted ones."""
    labels: Sequence[Any] = confusion["labels"]
    matrix: Sequence[Sequence[int]] = confusion["matrix"]
    header = "| true \\ predicted | " + " | ".join(escape.code(label, table=True) for label in labels) + " |"
    rule = "|---|" + "---:|" * len(labels)
    body = [
        f"| {escape.code(label, table=True)} | " + " | ".join(str(v) for v in row) + " |"
        for label, row in zip(labels, matrix, strict=True)
    ]
    return "\n".join(([f"**{escape.text(title)}**", ""] if title else []) + [header, rule, *body])


def interval_bar(low: float, high: float, span: float, width: int = 21) -> str:
    """A one-line text picture of a CI around zero: `·····[──┼──]·····`; `span` is the half-width."""
    if span <= 0:
        span = max(abs(low), abs(high), 1e-12)

    def pos(x: float) -> int:
        return max(0, min(width - 1, round((x / span + 1) / 2 * (width - 1))))

    cells = ["·"] * width
    lo, hi, zero = pos(low), pos(high), pos(0.0)
    for i in range(lo, hi + 1):
        cells[i] = "─"
    cells[zero] = "┼"
    cells[lo] = "["
    cells[hi] = "]"
    return "".join(cells)
