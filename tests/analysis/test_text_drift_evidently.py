"""Text content drift and embedding distance against Evidently 0.7 itself (`make evidently`): the
same ROC AUC (to 1e-12), the same method (percentile rule for <= 1,000 reference rows, absolute
above), the same drift decisions, the same separating words, on drifted and stable corpora."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.test_text_drift import corpus
from analysis_anchors import available, run_evidently_text
from mlops_bot.analysis.drift import compute_drift

pytestmark = pytest.mark.skipif(
    not available(), reason=".venv-evidently missing: run `make evidently` (CI builds it)"
)


def _case(seed: int, n_ref: int, n_cur: int, mix: float, shift: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    ref_vec, cur_vec = rng.normal(size=(n_ref, 5)), rng.normal(shift, 1, size=(n_cur, 5))
    reference = pd.DataFrame({"review": corpus(rng, n_ref), "vec": list(ref_vec)})
    current = pd.DataFrame({"review": corpus(rng, n_cur, mix), "vec": list(cur_vec)})
    current.loc[rng.choice(n_cur, 7, replace=False), "review"] = None  # dropped first, as Evidently does
    return reference, current


def _flat(frame: pd.DataFrame) -> pd.DataFrame:
    """Evidently's embeddings are one column per dimension."""
    out = frame[["review"]].copy()
    matrix = np.vstack(frame["vec"].to_numpy())
    for k in range(matrix.shape[1]):
        out[f"vec_{k}"] = matrix[:, k]
    return out


def test_text_and_embedding_drift_equal_evidently(tmp_path: Path) -> None:
    cases = [
        _case(0, 400, 300, 0.0, 0.0),  # small, stable: percentile rule, no drift
        _case(1, 400, 300, 0.25, 0.4),  # small, drifted
        _case(2, 1500, 1200, 0.0, 0.0),  # large, stable: absolute rule
        _case(3, 1500, 1200, 0.15, 0.25),  # large, drifted
    ]
    spec = {"text": ["review"], "embedding": {"vec": [f"vec_{k}" for k in range(5)]}}
    theirs = run_evidently_text([(_flat(r), _flat(c), spec) for r, c in cases], tmp_path)
    decisions = []
    for (reference, current), expected in zip(cases, theirs, strict=True):
        ours = compute_drift(reference, current)
        text, vec = ours.columns["review"], ours.columns["vec"]
        want = expected["text"]["review"]
        assert text.method == want["method"]
        assert text.score == pytest.approx(want["score"], abs=1e-12)
        assert text.score == pytest.approx(want["preset_score"], abs=1e-12)  # what DataDriftPreset reports
        assert text.drifted == want["drifted"]
        assert text.top_words is not None
        assert text.top_words["current"] == want["current_words"][:10]
        assert text.top_words["reference"] == want["reference_words"][:10]
        assert vec.score == pytest.approx(expected["embedding"]["vec"]["score"], rel=1e-12)
        assert vec.drifted == expected["embedding"]["vec"]["drifted"]
        decisions.append((text.method, text.drifted, vec.drifted))
    # the corpora exercise both rules and both outcomes (no vacuous agreement)
    assert decisions == [
        ("perc_text_content_drift", False, False),
        ("perc_text_content_drift", True, True),
        ("abs_text_content_drift", False, False),
        ("abs_text_content_drift", True, True),
    ]
