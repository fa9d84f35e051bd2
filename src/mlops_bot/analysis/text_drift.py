"""Drift of text and embedding columns, as Evidently 0.7 computes it (`legacy/utils/data_drift_utils.py`
and `legacy/metrics/data_drift/embedding_drift_methods.py`).

Text: a domain classifier learns to tell reference rows (label 0) from current rows (label 1). The
two tables are concatenated, split in halves with `train_test_split(test_size=0.5, random_state=42,
shuffle=True)`, the first half trains `TfidfVectorizer(sublinear_tf=True, max_df=0.5,
stop_words="english")` + `SGDClassifier(alpha=0.0001, max_iter=50, penalty="l1",
loss="modified_huber", random_state=42)`, and the score is its ROC AUC on the other half.
- reference with more than 1,000 rows: `abs_text_content_drift`, drift when ROC AUC > 0.55;
- otherwise `perc_text_content_drift`: drift when ROC AUC > the 95th percentile of the ROC AUCs of
  1,000 random classifiers on the same test labels (seeds drawn from `RandomState(42)`, each
  prediction `RandomState(seed).rand(n)`, exactly Evidently's draws). We rank-compute those AUCs in
  one vectorised pass instead of 1,000 `roc_auc_score` calls: the same numbers, much faster.
The words with the largest positive (current) and negative (reference) classifier weights are the
words that separate the two tables, shown to the reviewer.

Embeddings (a column of equal-length float lists): Euclidean distance between the mean reference
vector and the mean current vector, drift when > 0.2 (Evidently's `distance()` defaults).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import rankdata

TEXT_ABS_THRESHOLD = 0.55
TEXT_PERCENTILE = 0.95
TEXT_LARGE_REFERENCE = 1000
RANDOM_CLASSIFIERS = 1000
EMBEDDING_THRESHOLD = 0.2
TOP_WORDS = 10


@dataclass(frozen=True)
class TextDrift:
    method: str  # abs_text_content_drift | perc_text_content_drift
    score: float  # ROC AUC of the domain classifier
    threshold: float  # drift when score > threshold (for perc: the random classifiers' percentile)
    drifted: bool
    current_words: list[str] = field(default_factory=list)
    reference_words: list[str] = field(default_factory=list)


def _roc_auc(y_true: np.ndarray, scores: np.ndarray) -> float:
    """ROC AUC by ranks (Mann-Whitney U), ties averaged: scikit-learn's roc_auc_score for binary y."""
    ranks = rankdata(scores)
    positives = y_true == 1
    n_pos = int(positives.sum())
    n_neg = y_true.size - n_pos
    return float((ranks[positives].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def random_classifier_percentile(
    y_test: np.ndarray,
    quantile: float = TEXT_PERCENTILE,
    iterations: int = RANDOM_CLASSIFIERS,
    seed: int = 42,
) -> float:
    """The `quantile` of the ROC AUCs of `iterations` uniform random scorers, with Evidently's seeds."""
    seeds = np.random.RandomState(seed).randint(0, iterations * 10, size=iterations)
    y = np.asarray(y_test)
    positives = y == 1
    n_pos = int(positives.sum())
    n_neg = y.size - n_pos
    draws = np.vstack([np.random.RandomState(s).rand(y.size) for s in seeds])
    ranks = draws.argsort(axis=1).argsort(axis=1) + 1.0  # continuous uniform draws: no ties
    aucs = (ranks[:, positives].sum(axis=1) - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
    return float(np.percentile(aucs, 100 * quantile))


def text_drift(
    reference: pd.Series, current: pd.Series, threshold: float | None = None, top_words: int = TOP_WORDS
) -> TextDrift:
    """Evidently's text content drift of one column (NaN rows dropped first)."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import SGDClassifier
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import Pipeline

    ref = reference.dropna().astype(str)
    cur = current.dropna().astype(str)
    texts = pd.concat([ref, cur], ignore_index=True)
    labels = np.concatenate([np.zeros(len(ref), dtype=int), np.ones(len(cur), dtype=int)])
    x_train, x_test, y_train, y_test = train_test_split(
        texts, labels, test_size=0.5, random_state=42, shuffle=True
    )
    pipeline = Pipeline(
        [
            ("vectorization", TfidfVectorizer(sublinear_tf=True, max_df=0.5, stop_words="english")),
            (
                "classification",
                SGDClassifier(
                    alpha=0.0001, max_iter=50, penalty="l1", loss="modified_huber", random_state=42
                ),
            ),
        ]
    )
    with warnings.catch_warnings():  # max_iter=50 is Evidently's setting; it often stops early
        warnings.simplefilter("ignore", ConvergenceWarning)
        pipeline.fit(x_train, y_train)
    score = _roc_auc(np.asarray(y_test), pipeline.predict_proba(x_test)[:, 1])
    if len(ref) > TEXT_LARGE_REFERENCE:
        method, limit = "abs_text_content_drift", TEXT_ABS_THRESHOLD if threshold is None else threshold
    else:
        quantile = TEXT_PERCENTILE if threshold is None else threshold
        method, limit = "perc_text_content_drift", random_classifier_percentile(np.asarray(y_test), quantile)
    words_current, words_reference = _typical_words(pipeline, top_words)
    return TextDrift(
        method=method,
        score=score,
        threshold=limit,
        drifted=bool(score > limit),
        current_words=words_current,
        reference_words=words_reference,
    )


def _typical_words(pipeline: Any, count: int) -> tuple[list[str], list[str]]:
    """Evidently's get_typical_words: the largest positive weights (current) and the most negative
    (reference), in that order; ties keep the vocabulary index order."""
    weights = pipeline["classification"].coef_[0]
    vocabulary = {index: word for word, index in pipeline["vectorization"].vocabulary_.items()}
    order = np.arange(weights.size)
    positive = order[weights > 0]
    negative = order[weights < 0]
    current = positive[np.argsort(-weights[positive], kind="stable")][:count]
    reference = negative[np.argsort(weights[negative], kind="stable")][:count]
    return [vocabulary[int(i)] for i in current], [vocabulary[int(i)] for i in reference]


def is_embedding(series: pd.Series) -> bool:
    """A column of equal-length numeric vectors (lists, tuples or arrays)."""
    values = series.dropna()
    if values.empty or series.dtype != object:
        return False
    first = values.iloc[0]
    if not isinstance(first, list | tuple | np.ndarray) or len(first) == 0:
        return False
    try:
        matrix = np.asarray([np.asarray(v, dtype=np.float64) for v in values.iloc[:50]])
    except (TypeError, ValueError):
        return False
    return matrix.ndim == 2


def embedding_matrix(series: pd.Series) -> np.ndarray:
    values = series.dropna()
    try:
        matrix = np.asarray([np.asarray(v, dtype=np.float64) for v in values])
    except (TypeError, ValueError):
        matrix = np.empty((0, 0))
    if matrix.ndim != 2:
        from mlops_bot.errors import DataError

        raise DataError(f"column {series.name!r}: embedding vectors differ in length or are not numbers")
    return matrix


def embedding_distance(reference: np.ndarray, current: np.ndarray) -> float:
    """Euclidean distance between the mean vectors (scipy.spatial.distance.euclidean)."""
    from scipy.spatial.distance import euclidean

    if reference.shape[1] != current.shape[1]:
        from mlops_bot.errors import DataError

        raise DataError(
            f"embedding sizes differ: {reference.shape[1]} in the reference, "
            f"{current.shape[1]} in the current data"
        )
    return float(euclidean(reference.mean(axis=0), current.mean(axis=0)))
