"""The data validation step of a PR run (I/O edge): infer and write this PR's `data_schema.json`,
read the baseline version's schema when the registry had one, and run the pure checks in
`analysis.data_checks` on the training and holdout tables."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from mlops_bot.analysis.data_checks import DataCheck, DataChecksReport, rule_text, run_checks
from mlops_bot.analysis.data_schema import SCHEMA_FILENAME, DataSchema, infer_schema
from mlops_bot.config import DATA_CHECK_DEFAULTS, MlopsConfig
from mlops_bot.errors import DataError
from mlops_bot.pipeline.gates import GateResult
from mlops_bot.pipeline.result import Baseline

_SHOWN = 3


def validate_data(
    config: MlopsConfig,
    train: pd.DataFrame,
    holdout: pd.DataFrame,
    staging: Path,
    baseline_folder: Path | None = None,
    baseline: Baseline | None = None,
) -> DataChecksReport:
    """Writes staging/data_schema.json (registered with the version) and checks both tables:
    against the baseline version's schema when `baseline_folder` holds one, else the holdout
    against this PR's training data. Leakage compares the two tables themselves."""
    schema = infer_schema(
        train, target=config.data.target, classification=config.model.task == "classification"
    )
    schema.save(staging / SCHEMA_FILENAME)
    notes: list[str] = []
    reference, name = schema, "this PR's training data"
    tables = {"holdout": holdout, "train": train}
    registered = baseline is not None and baseline.source == "registry" and baseline_folder is not None
    stored = baseline_folder / SCHEMA_FILENAME if registered and baseline_folder is not None else None
    if stored is not None and baseline is not None and stored.is_file():
        try:
            reference = DataSchema.load(stored)
            name = f"the training data of {baseline.description}"
            tables = {"train": train, "holdout": holdout}
        except DataError as exc:
            notes.append(f"baseline data schema unusable ({exc}); checked against this PR's training data")
    elif registered:
        notes.append(
            f"the baseline version has no {SCHEMA_FILENAME}; checked against this PR's training data"
        )
    return run_checks(
        reference,
        tables,
        config.data_gates,
        reference_name=name,
        id_column=config.data.id,
        leakage=(train, holdout),
        notes=notes,
    )


def data_gate_results(checks: Sequence[DataCheck]) -> list[GateResult]:
    """One gate row per data check that can fail the verdict (action `fail` somewhere): failed when
    any of its rows failed, with the failing columns and values in the detail."""
    out: list[GateResult] = []
    for name in DATA_CHECK_DEFAULTS:
        rows = [c for c in checks if c.check == name and c.action == "fail"]
        if not rows:
            continue
        failed = [c for c in rows if c.status == "fail"]
        limit = rows[0].limit
        if failed:
            shown = "; ".join(f"{c.dataset}: {c.detail}" for c in failed[:_SHOWN])
            more = f" (and {len(failed) - _SHOWN} more)" if len(failed) > _SHOWN else ""
            detail = shown + more
        else:
            tables = sorted({c.dataset for c in rows})
            detail = f"{len(rows)} check(s) passed on {', '.join(tables)}"
        out.append(
            GateResult(
                metric=f"data.{name}",
                rule=rule_text(name, limit),
                passed=not failed,
                status="fail" if failed else "pass",
                detail=detail,
            )
        )
    return out
