"""Evidently 0.7's text content drift and embedding distance on parquet files, printed as JSON.

Executed with the `.venv-evidently` interpreter. Usage: python evidently_text_runner.py JOBS.json,
JOBS = [{"reference": PATH, "current": PATH, "text": [COLUMN], "embedding": {NAME: [COLUMNS]}}].
Per job: {"text": {COLUMN: {"score", "drifted", "method", "current_words", "reference_words",
"preset_score"}}, "embedding": {NAME: {"score", "drifted"}}, "seconds": {COLUMN: s}}: the legacy
functions the DataDriftPreset calls, and the preset's own ValueDrift score for the same column.
"""

import json
import sys
import time
import warnings

import pandas as pd

warnings.simplefilter("ignore")

from evidently import Report  # noqa: E402
from evidently.legacy.metrics.data_drift.embedding_drift_methods import distance  # noqa: E402
from evidently.legacy.utils.data_drift_utils import (  # noqa: E402
    calculate_text_drift_score,
    get_text_data_for_plots,
)
from evidently.metrics import ValueDrift  # noqa: E402


def run(job: dict) -> dict:
    reference = pd.read_parquet(job["reference"])
    current = pd.read_parquet(job["current"])
    out: dict = {"text": {}, "embedding": {}, "seconds": {}}
    for column in job.get("text", []):
        ref, cur = reference[column].dropna(), current[column].dropna()
        started = time.perf_counter()
        if len(ref) > 1000:
            score, drifted = calculate_text_drift_score(ref, cur, bootstrap=False, threshold=0.55)
            method = "abs_text_content_drift"
        else:
            score, drifted = calculate_text_drift_score(ref, cur, bootstrap=True, p_value=0.05)
            method = "perc_text_content_drift"
        out["seconds"][column] = time.perf_counter() - started
        _, _, words_cur, words_ref = get_text_data_for_plots(ref, cur)
        snapshot = Report([ValueDrift(column=column)]).run(current[[column]], reference[[column]])
        preset = snapshot.dict()["metrics"][0]["value"]
        out["text"][column] = {"score": float(score), "drifted": bool(drifted), "method": method,
                               "current_words": list(words_cur), "reference_words": list(words_ref),
                               "preset_score": float(preset)}
    for name, columns in job.get("embedding", {}).items():
        score, drifted, _ = distance()(current[columns].copy(), reference[columns].copy())
        out["embedding"][name] = {"score": float(score), "drifted": bool(drifted)}
    return out


def main() -> None:
    with open(sys.argv[1]) as handle:
        jobs = json.load(handle)
    json.dump([run(job) for job in jobs], sys.stdout)


if __name__ == "__main__":
    main()
