"""Benchmark: text content drift (analysis/text_drift.py) against Evidently 0.7's
`calculate_text_drift_score`, the function its DataDriftPreset calls for a text column, on the same
generated corpora, side by side in one run. Evidently runs in `.venv-evidently` (its own child
process, timed around the call alone); ours runs here, timed the same way. Also checks that the
ROC AUC and the drift decision are the same.

The percentile rule (reference <= 1,000 rows) scores 1,000 random classifiers: Evidently calls
`roc_auc_score` 1,000 times, we rank all of them in one vectorised pass (same numbers).

    .venv/bin/python benchmarks/text_drift_vs_evidently.py              # 1,000 / 800 and 20,000 / 20,000 rows
    .venv/bin/python benchmarks/text_drift_vs_evidently.py --large 50000
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from analysis.test_text_drift import corpus  # noqa: E402
from analysis_anchors import run_evidently_text  # noqa: E402
from mlops_bot.analysis.text_drift import text_drift  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--large", type=int, default=20_000, help="rows on each side of the absolute-rule case"
    )
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    cases = {
        "percentile rule (1,000 / 800 rows, drifted)": (corpus(rng, 1000), corpus(rng, 800, 0.2)),
        f"absolute rule ({args.large:,} / {args.large:,} rows, drifted)": (
            corpus(rng, args.large),
            corpus(rng, args.large, 0.1),
        ),
    }
    frames = [
        (pd.DataFrame({"review": r}), pd.DataFrame({"review": c}), {"text": ["review"]})
        for r, c in cases.values()
    ]
    with tempfile.TemporaryDirectory() as tmp:
        theirs = run_evidently_text(frames, Path(tmp))
    print(f"{'case':52s} {'Evidently s':>12s} {'ours s':>8s} {'ratio':>6s}  same AUC and decision")
    for (name, (ref, cur)), expected in zip(cases.items(), theirs, strict=True):
        started = time.perf_counter()
        ours = text_drift(pd.Series(ref), pd.Series(cur))
        seconds = time.perf_counter() - started
        want = expected["text"]["review"]
        same = abs(ours.score - want["score"]) < 1e-12 and ours.drifted == want["drifted"]
        their_s = expected["seconds"]["review"]
        print(f"{name:52s} {their_s:12.3f} {seconds:8.3f} {their_s / seconds:6.1f}x  {same}")


if __name__ == "__main__":
    main()
