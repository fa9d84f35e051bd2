"""Text and embedding drift (analysis/text_drift.py): our shortcuts equal what they replace, and
the drift report carries the method, the decision rule and the separating words."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from mlops_bot.analysis.drift import compute_drift
from mlops_bot.analysis.profile import build_profile
from mlops_bot.analysis.text_drift import _roc_auc, is_embedding, random_classifier_percentile
from mlops_bot.report.drift import render_drift

WORDS = [
    "price",
    "delivery",
    "quality",
    "service",
    "refund",
    "order",
    "package",
    "support",
    "shipping",
    "return",
]
NEW = [
    "battery",
    "screen",
    "camera",
    "charger",
    "cable",
    "speaker",
    "warranty",
    "bluetooth",
    "display",
    "keyboard",
]


def corpus(rng: np.random.Generator, n: int, mix: float = 0.0) -> list[str]:
    out = []
    for i in range(n):
        words = [
            str(rng.choice(NEW) if rng.random() < mix else rng.choice(WORDS))
            for _ in range(int(rng.integers(4, 9)))
        ]
        out.append(" ".join(words) + f" ticket{i}")
    return out


def test_rank_auc_and_random_percentile_equal_the_sklearn_loops() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 80)
    scores = rng.choice([0.1, 0.2, 0.5, 0.9], 80)  # ties
    assert _roc_auc(y, scores) == pytest.approx(roc_auc_score(y, scores), abs=1e-15)
    # Evidently's loop: seeds from RandomState(42), one roc_auc_score per seed, 95th percentile
    seeds = np.random.RandomState(42).randint(0, 10_000, size=1000)
    expected = np.percentile([roc_auc_score(y, np.random.RandomState(s).rand(len(y))) for s in seeds], 95)
    assert random_classifier_percentile(y) == pytest.approx(expected, abs=1e-12)


def test_text_and_embedding_columns_are_checked_and_reported() -> None:
    rng = np.random.default_rng(1)
    reference = pd.DataFrame(
        {"review": corpus(rng, 300), "vec": [rng.normal(size=6).tolist() for _ in range(300)]}
    )
    same = pd.DataFrame(
        {"review": corpus(rng, 200), "vec": [rng.normal(size=6).tolist() for _ in range(200)]}
    )
    drifted = pd.DataFrame(
        {"review": corpus(rng, 200, 0.4), "vec": [rng.normal(0.3, 1, size=6).tolist() for _ in range(200)]}
    )
    calm = compute_drift(reference, same)
    assert calm.columns["review"].method == "perc_text_content_drift" and not calm.columns["review"].drifted
    assert calm.columns["vec"].type == "embedding" and not calm.columns["vec"].drifted
    report = compute_drift(reference, drifted)
    text, vec = report.columns["review"], report.columns["vec"]
    assert text.drifted and text.score > text.threshold > 0.5
    assert text.top_words is not None and len(set(text.top_words["current"][:5]) & set(NEW)) >= 3
    assert vec.drifted and vec.method == "embedding_distance" and vec.threshold == 0.2
    markdown = render_drift(report)
    assert "| review | text | domain classifier ROC AUC (vs random) |" in markdown
    assert "Words that separate `review`: typical of the current data `" in markdown
    # a profile holds no text rows: the column is named as not checked, never silently passed
    skipped = compute_drift(build_profile(reference[["review"]]), drifted[["review"]]).skipped
    assert "needs the reference rows" in skipped["review"]
    assert is_embedding(reference["vec"]) and not is_embedding(reference["review"])
