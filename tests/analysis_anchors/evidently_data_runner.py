"""Run Evidently 0.7's data-quality metrics on parquet files and print their numbers as JSON.

Executed with the `.venv-evidently` interpreter, never imported by the main test process. Usage:
python evidently_data_runner.py JOBS.json, where JOBS.json is a list of {"current": PATH,
"missing": [COLUMN], "out_range": {COLUMN: [LEFT, RIGHT]}, "out_list": {COLUMN: [VALUES]}};
prints, per job, {"missing": {COLUMN: [count, share]}, "out_range": {...}, "out_list": {...},
"constant_columns": N, "duplicated_rows": N}.
"""

import json
import sys
import warnings

import pandas as pd

warnings.simplefilter("ignore")

from evidently import DataDefinition, Dataset, Report  # noqa: E402
from evidently.metrics import (  # noqa: E402
    ConstantColumnsCount,
    DuplicatedRowCount,
    MissingValueCount,
    OutListValueCount,
    OutRangeValueCount,
)


def run(job: dict) -> dict:
    current = pd.read_parquet(job["current"])
    metrics = []
    keys = []
    for column in job.get("missing", []):
        metrics.append(MissingValueCount(column=column))
        keys.append(("missing", column))
    for column, (left, right) in job.get("out_range", {}).items():
        metrics.append(OutRangeValueCount(column=column, left=left, right=right))
        keys.append(("out_range", column))
    for column, values in job.get("out_list", {}).items():
        metrics.append(OutListValueCount(column=column, values=values))
        keys.append(("out_list", column))
    metrics += [ConstantColumnsCount(), DuplicatedRowCount()]
    keys += [("constant_columns", None), ("duplicated_rows", None)]
    definition = DataDefinition(
        numerical_columns=job.get("numerical", []), categorical_columns=job.get("categorical", [])
    )
    snapshot = Report(metrics).run(Dataset.from_pandas(current, data_definition=definition), None)
    out: dict = {"missing": {}, "out_range": {}, "out_list": {}}
    for (kind, column), metric in zip(keys, snapshot.dict()["metrics"], strict=True):
        value = metric["value"]
        if column is None:
            out[kind] = value
        else:
            out[kind][column] = [value["count"], value["share"]]
    return out


def main() -> None:
    with open(sys.argv[1]) as handle:
        jobs = json.load(handle)
    json.dump([run(job) for job in jobs], sys.stdout)


if __name__ == "__main__":
    main()
