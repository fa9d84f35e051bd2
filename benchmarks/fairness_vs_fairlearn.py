"""Benchmark: `compute_fairness` against fairlearn 0.15 (MetricFrame with accuracy, selection rate,
TPR, FPR and count, plus the five named disparity functions) on the same generated predictions.

Each side runs in its own child process (peak RSS from wait4); the time printed is the
computation alone. Also checks that every number agrees to 1e-9 relative.

    .venv/bin/python benchmarks/fairness_vs_fairlearn.py                # 1,000,000 rows, 10 groups
    .venv/bin/python benchmarks/fairness_vs_fairlearn.py --rows 100000
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

NAMED = (
    "demographic_parity_difference",
    "demographic_parity_ratio",
    "equalized_odds_difference",
    "equalized_odds_ratio",
    "equal_opportunity_difference",
)


def generate(rows: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    sex = rng.choice(["female", "male"], rows)
    region = rng.choice(["north", "south", "east", "west", "centre"], rows)
    y_true = rng.integers(0, 2, rows)
    error = np.where(sex == "female", 0.25, 0.15) + np.where(region == "east", 0.05, 0.0)
    y_pred = np.where(rng.random(rows) < error, 1 - y_true, y_true)
    return pd.DataFrame({"y": y_true, "p": y_pred, "sex": sex, "region": region})


def child(kind: str, path: str, bootstrap: bool) -> None:
    frame = pd.read_parquet(path)
    sensitive = frame[["sex", "region"]]
    import fairlearn.metrics as fm
    from sklearn.metrics import accuracy_score

    from mlops_bot.analysis.fairness import compute_fairness
    from mlops_bot.config import FairnessSection

    started = time.perf_counter()  # imports above stay outside the clock for both sides
    if kind == "ours":
        report = compute_fairness(
            frame["y"], frame["p"], sensitive, settings=FairnessSection(bootstrap=bootstrap)
        )
        result = {
            "by_group": {k: v.model_dump() for k, v in report.by_group.items()},
            **{k: report.disparities[k] for k in NAMED},
        }
    else:
        metrics = {
            "accuracy": accuracy_score,
            "selection_rate": fm.selection_rate,
            "tpr": fm.true_positive_rate,
            "fpr": fm.false_positive_rate,
            "count": fm.count,
        }
        frame_ = fm.MetricFrame(
            metrics=metrics, y_true=frame["y"], y_pred=frame["p"], sensitive_features=sensitive
        )
        result = {
            "by_group": {
                "|".join(map(str, idx)): {k: float(v) for k, v in row.items()}
                for idx, row in frame_.by_group.iterrows()
            },
        }
        for name in NAMED:
            result[name] = float(getattr(fm, name)(frame["y"], frame["p"], sensitive_features=sensitive))
    result["seconds"] = time.perf_counter() - started
    json.dump(result, sys.stdout)


def measured(argv: list[str]) -> tuple[dict, float]:
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    out = proc.stdout.read()
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(err.decode()[-3000:])
    return json.loads(out), usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--child", choices=("ours", "fairlearn"), help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    parser.add_argument("--no-bootstrap", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.data, not args.no_bootstrap)
        return
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "predictions.parquet"
        generate(args.rows).to_parquet(path, index=False)
        base = [sys.executable, __file__, "--data", str(path), "--child"]
        theirs, their_rss = measured([*base, "fairlearn"])
        ours, our_rss = measured([*base, "ours", "--no-bootstrap"])
        ours_b, our_rss_b = measured([*base, "ours"])
    worst = 0.0
    for key, row in theirs["by_group"].items():
        for metric in ("accuracy", "selection_rate", "tpr", "fpr", "count"):
            a, b = ours["by_group"][key][metric], row[metric]
            worst = max(worst, abs(a - b) / abs(b) if b else abs(a))
    for name in NAMED:
        worst = max(worst, abs(ours[name] - theirs[name]) / abs(theirs[name]) if theirs[name] else 0.0)
    print(f"rows={args.rows:,} groups={len(theirs['by_group'])}")
    print(f"  fairlearn:             {theirs['seconds']:8.3f} s   peak RSS {their_rss:6.0f} MB")
    print(f"  ours:                  {ours['seconds']:8.3f} s   peak RSS {our_rss:6.0f} MB")
    print(f"  ours + 1000 bootstrap: {ours_b['seconds']:8.3f} s   peak RSS {our_rss_b:6.0f} MB")
    print(
        f"  speed-up {theirs['seconds'] / ours['seconds']:.0f}x "
        f"({theirs['seconds'] / ours_b['seconds']:.0f}x including bootstrap intervals fairlearn lacks)"
    )
    print(f"  max relative difference: {worst:.2e}")
    if not math.isclose(worst, 0.0, abs_tol=1e-9):
        sys.exit("numbers differ from fairlearn")


if __name__ == "__main__":
    main()
