"""Per-class rows for a multiclass model (pure): precision, recall, F1 and support of each class,
computed from the confusion matrix in the report, the way scikit-learn's
`precision_recall_fscore_support(average=None, zero_division=0)` defines them, head beside base.
Rendered in a fold of the PR comment; numbers in the comment's one format (report/numbers.py)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from mlops_bot.report import escape
from mlops_bot.report.numbers import fmt


def per_class_scores(confusion: Mapping[str, Any]) -> list[dict[str, Any]]:
    """[{label, precision, recall, f1, support}] in the matrix's label order (rows = true class)."""
    labels: Sequence[Any] = confusion["labels"]
    matrix: Sequence[Sequence[int]] = confusion["matrix"]
    out = []
    for i, label in enumerate(labels):
        tp = matrix[i][i]
        predicted = sum(row[i] for row in matrix)
        support = sum(matrix[i])
        precision = tp / predicted if predicted else 0.0
        recall = tp / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        out.append({"label": label, "precision": precision, "recall": recall, "f1": f1, "support": support})
    return out


def per_class_table(head: Mapping[str, Any], base: Mapping[str, Any] | None = None) -> str:
    """Markdown rows per class: `class | support | precision | recall | F1`, each `base -> head`
    when the baseline's matrix is given (same holdout, so the same classes and supports)."""
    rows = per_class_scores(head)
    before = {str(r["label"]): r for r in per_class_scores(base)} if base else {}
    lines = ["| Class | Support | Precision | Recall | F1 |", "|---|---:|---:|---:|---:|"]
    for row in rows:
        old = before.get(str(row["label"]))

        def cell(name: str, old: dict[str, Any] | None = old, row: dict[str, Any] = row) -> str:
            if old is None:
                return fmt(row[name])
            return f"{fmt(old[name])} → {fmt(row[name])}"

        lines.append(
            f"| {escape.code(row['label'], table=True)} | {row['support']} | {cell('precision')} "
            f"| {cell('recall')} | {cell('f1')} |"
        )
    return "\n".join(lines)
