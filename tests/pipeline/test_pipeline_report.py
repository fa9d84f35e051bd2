"""Report rendering: the sticky marker, the DVC-style table, gate marks, charts that render on
GitHub (Mermaid, tables) and the comment size limit."""

from __future__ import annotations

from mlops_bot.forge.base import sticky_marker
from mlops_bot.pipeline.comment import fmt, render_markdown
from mlops_bot.pipeline.gates import GateResult, compare
from mlops_bot.pipeline.result import Baseline, Reproducibility, ValidationReport
from mlops_bot.report.charts import confusion_table, interval_bar, metric_bar_chart


def _report(**overrides: object) -> ValidationReport:
    data: dict[str, object] = {
        "model": "credit-risk",
        "task": "classification",
        "verdict": "fail",
        "metrics": {
            "accuracy": compare(0.81234567, 0.79, [-0.04, -0.005]),
            "roc_auc": compare(0.8, 0.8123, [-0.01, 0.03]),
            "log_loss": compare(0.45, 0.40, [-0.08, -0.02]),
        },
        "gates": [
            GateResult(metric="accuracy", rule="drop <= 0.01", passed=False, status="fail",
                       detail="dropped by 0.022346 (limit 0.01)"),
            GateResult(metric="roc_auc", rule=">= 0.7", passed=True, status="pass",
                       detail="0.8123 vs minimum 0.7"),
        ],
        "baseline": Baseline(source="model", description="model file base.skops"),
        "bootstrap": {"samples": 1000, "confidence": 0.95, "seed": 3, "paired": True},
        "holdout_rows": 1000,
        "train_rows": 2000,
        "confusion_matrix": {"labels": [0, 1], "matrix": [[700, 70], [140, 90]]},
        "reproducibility": Reproducibility(seed=3, data={"train": "ab" * 32}, packages={"python": "3.11"}),
    }
    data.update(overrides)
    return ValidationReport.model_validate(data)


def test_markdown_starts_with_the_sticky_marker_and_shows_the_failed_gate() -> None:
    text = render_markdown(_report())
    assert text.startswith(sticky_marker("mlops-pr", "credit-risk") + "\n")
    headline = text.splitlines()[1]
    assert "❌" in headline and "1 of 2 gate(s) failed" in headline and "accuracy" in headline
    assert "| ❌ | accuracy | `drop <= 0.01` | dropped by 0.022346 (limit 0.01) |" in text
    assert "| ✅ | roc_auc | `>= 0.7` |" in text


def test_metric_table_is_dvc_style_with_ci() -> None:
    text = render_markdown(_report())
    assert "| Metric | base | head | Change | 95% CI |" in text
    row = next(line for line in text.splitlines() if line.startswith("| accuracy |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[1] == "0.8123"  # the comment's one format: 4 significant digits
    assert cells[2] == "0.79"
    assert cells[3].startswith("-0.02235") and "🔴" in cells[3]
    assert cells[4].startswith("[-0.04, -0.005] worse")
    # log loss went down: that is better (green), and its CI excludes 0 on the good side.
    loss = next(line for line in text.splitlines() if line.startswith("| log_loss |"))
    assert "🟢" in loss and "better" in loss
    roc = next(line for line in text.splitlines() if line.startswith("| roc_auc |"))
    assert "better" not in roc and "worse" not in roc  # CI straddles zero


def test_missing_values_are_dashes_and_no_baseline_is_said() -> None:
    report = _report(metrics={"accuracy": compare(None, 0.8)}, gates=[], verdict="pass",
                     baseline=Baseline(source="none", description="no baseline: nothing to compare with"))
    text = render_markdown(report)
    assert "| accuracy | - | 0.8 | - | - |" in text
    assert "no baseline" in text
    assert "no gates configured" in text.lower()
    assert fmt(None) == "-" and fmt(0.123456789) == "0.1235" and fmt(0.5, signed=True) == "+0.5"


def test_details_are_collapsible_and_contain_run_metadata() -> None:
    text = render_markdown(_report())
    assert text.count("<details>") == text.count("</details>") >= 3
    assert "ab" * 32 in text and "seed: `3`" in text
    assert "paired bootstrap, 1000 resamples" in text


def test_mermaid_chart_only_for_0_1_metrics() -> None:
    chart = metric_bar_chart({"accuracy": (0.8, 0.9), "rmse": (None, 12.0), "f1": (0.5, 0.6)})
    assert chart.startswith("```mermaid\nxychart-beta")
    assert '"accuracy", "f1"' in chart and "rmse" not in chart
    assert "bar [0.8, 0.5]" in chart and "bar [0.9, 0.6]" in chart
    assert metric_bar_chart({"rmse": (1.0, 2.0)}) == ""
    # labels cannot break out of the Mermaid quote
    assert '"a_b_"' in metric_bar_chart({'a"b]': (0.1, 0.2)})


def test_confusion_table_and_interval_bar() -> None:
    table = confusion_table({"labels": [0, 1], "matrix": [[5, 1], [2, 3]]})
    assert "| `0` | 5 | 1 |" in table and "| `1` | 2 | 3 |" in table
    bar = interval_bar(-0.5, 1.0, 1.0, width=21)
    assert len(bar) == 21 and bar.index("[") < bar.index("┼") < bar.index("]")


def test_comment_fits_github_limit_with_a_note() -> None:
    huge = "x" * 80_000
    text = render_markdown(_report(), extra_sections=["### Data drift\n" + huge])
    assert len(text) <= 65_536
    assert "left out to fit GitHub's comment size limit" in text
    assert text.startswith(sticky_marker("mlops-pr", "credit-risk"))
    assert "| Metric | base | head |" in text  # the essentials survive


def test_multiclass_comment_has_per_class_rows_equal_to_sklearn_in_a_fold() -> None:
    import numpy as np
    import pytest
    from sklearn.metrics import confusion_matrix as sk_confusion
    from sklearn.metrics import precision_recall_fscore_support

    import gfm
    from mlops_bot.report.per_class import per_class_scores

    rng = np.random.default_rng(3)
    labels = ["cat", "dog", "eel", "fox"]
    y_true = rng.choice(labels, 300)
    y_pred = np.where(rng.random(300) < 0.7, y_true, rng.choice(labels, 300))
    y_pred[y_pred == "fox"] = "dog"  # a class never predicted: precision 0 by sklearn's zero_division=0
    y_base = np.where(rng.random(300) < 0.5, y_true, rng.choice(labels, 300))
    head = {"labels": labels, "matrix": sk_confusion(y_true, y_pred, labels=labels).tolist()}
    base = {"labels": labels, "matrix": sk_confusion(y_true, y_base, labels=labels).tolist()}
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, average=None, zero_division=0)
    for i, row in enumerate(per_class_scores(head)):
        assert row["label"] == labels[i] and row["support"] == support[i]
        assert row["precision"] == pytest.approx(precision[i], abs=1e-12)
        assert row["recall"] == pytest.approx(recall[i], abs=1e-12)
        assert row["f1"] == pytest.approx(f1[i], abs=1e-12)
    report = _report(confusion_matrix=head, base_confusion_matrix=base)
    html = gfm.render(render_markdown(report))
    fold = html[html.index("Per-class metrics (base → head)"):]
    fold = fold[: fold.index("</details>")]
    rows = gfm.table_rows(fold)
    assert [r[0] for r in rows[1:]] == [f"<code>{label}</code>" for label in labels]
    assert rows[1][4].endswith(f"→ {float(f1[0]):.4g}")  # base → head, 4 significant digits
    binary = render_markdown(_report())
    assert "Per-class metrics" not in binary  # binary models keep the plain confusion matrix


def test_comment_with_images_stays_under_githubs_limit_by_folding_sections() -> None:
    """A huge report (long extra sections) with the maximum number of images: after the comment
    job swaps the plot list for the images, the comment is under 65,536 characters, every image
    is still there, and the dropped details are said to be dropped."""
    import gfm
    from mlops_bot.report.images import MAX_IMAGES, embed_images

    plots = [f"plots/drift_{i:02d}_{'x' * 60}.png" for i in range(MAX_IMAGES)]
    bulky = ["### Data drift\n\n" + "\n".join(f"| col{i} | {'y' * 200} |" for i in range(150))] * 3
    markdown = render_markdown(_report(plots=plots), extra_sections=bulky)
    assert len(markdown) <= 65_536
    sha = "f" * 40
    base = f"https://github.com/octo-org/{'r' * 100}/blob/{sha}/pr-123456/{sha}"
    urls = {p: f"{base}/{p[6:]}?raw=true" for p in plots}
    comment = embed_images(markdown, urls)
    assert len(comment) <= 65_536
    assert len(gfm.image_urls(gfm.render(comment))) == MAX_IMAGES
    assert "left out to fit GitHub's comment size limit" in comment
