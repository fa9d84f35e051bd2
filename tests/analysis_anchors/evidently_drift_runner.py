"""Run Evidently 0.7's DataDriftPreset on two parquet files and print its numbers as JSON.

Executed with the `.venv-evidently` interpreter (Evidently needs pandas<3), never imported by the
main test process. Usage: python evidently_drift_runner.py JOBS.json, where JOBS.json is a list of
{"reference": PATH, "current": PATH, "per_column_method": {COLUMN: METHOD} | null}; prints a list of
results (one import of Evidently for many datasets keeps the tests fast).
"""

import json
import sys
import time
import warnings

import pandas as pd

warnings.simplefilter("ignore")

from evidently import Dataset, Report  # noqa: E402
from evidently.presets import DataDriftPreset  # noqa: E402

METHODS = {
    "k-s": "ks",
    "chi-square": "chisquare",
    "z-test": "z",
    "wasserstein": "wasserstein",
    "jensen-shannon": "jensenshannon",
    "psi": "psi",
}


def run(job: dict) -> dict:
    reference = pd.read_parquet(job["reference"])
    current = pd.read_parquet(job["current"])
    per_column = job.get("per_column_method")
    started = time.perf_counter()
    preset = DataDriftPreset(per_column_method=per_column) if per_column else DataDriftPreset()
    snapshot = Report([preset]).run(current, reference)
    elapsed = time.perf_counter() - started
    definition = Dataset.from_pandas(current).data_definition
    out = {"columns": {}, "seconds": elapsed}
    for metric in snapshot.dict()["metrics"]:
        config = metric["config"]
        if config["type"].endswith("DriftedColumnsCount"):
            out["count"] = metric["value"]["count"]
            out["share"] = metric["value"]["share"]
        elif config["type"].endswith("ValueDrift"):
            name = config["method"].lower()
            method = next((v for k, v in METHODS.items() if name.startswith(k)), name)
            out["columns"][config["column"]] = {
                "method": method,
                "score": metric["value"],
                "threshold": config["threshold"],
            }
    out["types"] = {
        "numerical": list(definition.get_numerical_columns()),
        "categorical": list(definition.get_categorical_columns()),
        "text": list(definition.get_text_columns()),
    }
    return out


def main() -> None:
    with open(sys.argv[1]) as handle:
        jobs = json.load(handle)
    json.dump([run(job) for job in jobs], sys.stdout)


if __name__ == "__main__":
    main()
