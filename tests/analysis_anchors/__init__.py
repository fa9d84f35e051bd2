"""Shared helper for the analysis tests and benchmarks: run Evidently 0.7 (in `.venv-evidently`)
on datasets written to parquet and read its numbers back."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
EVIDENTLY_PYTHON = ROOT / ".venv-evidently" / "bin" / "python"
RUNNER = Path(__file__).with_name("evidently_drift_runner.py")


def available() -> bool:
    return EVIDENTLY_PYTHON.exists()


def run_evidently(
    pairs: list[tuple[pd.DataFrame, pd.DataFrame, dict[str, str] | None]], workdir: Path
) -> list[dict[str, Any]]:
    jobs = []
    for i, (reference, current, methods) in enumerate(pairs):
        ref_path, cur_path = workdir / f"ref{i}.parquet", workdir / f"cur{i}.parquet"
        reference.to_parquet(ref_path, index=False)
        current.to_parquet(cur_path, index=False)
        jobs.append({"reference": str(ref_path), "current": str(cur_path), "per_column_method": methods})
    jobs_path = workdir / "jobs.json"
    jobs_path.write_text(json.dumps(jobs))
    done = subprocess.run(
        [str(EVIDENTLY_PYTHON), str(RUNNER), str(jobs_path)], capture_output=True, text=True, timeout=600
    )
    if done.returncode != 0:
        raise RuntimeError(f"evidently runner failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout)


DATA_RUNNER = Path(__file__).with_name("evidently_data_runner.py")


def run_evidently_data(
    jobs: list[tuple[pd.DataFrame, dict[str, Any]]], workdir: Path
) -> list[dict[str, Any]]:
    """Evidently's data-quality metrics (evidently_data_runner.py) on each (table, job spec)."""
    specs = []
    for i, (current, spec) in enumerate(jobs):
        path = workdir / f"data{i}.parquet"
        current.to_parquet(path, index=False)
        specs.append({"current": str(path), **spec})
    jobs_path = workdir / "data_jobs.json"
    jobs_path.write_text(json.dumps(specs))
    done = subprocess.run(
        [str(EVIDENTLY_PYTHON), str(DATA_RUNNER), str(jobs_path)], capture_output=True, text=True, timeout=600
    )
    if done.returncode != 0:
        raise RuntimeError(f"evidently data runner failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout)


TEXT_RUNNER = Path(__file__).with_name("evidently_text_runner.py")


def run_evidently_text(
    jobs: list[tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]], workdir: Path
) -> list[dict[str, Any]]:
    """Evidently's text content drift and embedding distance (evidently_text_runner.py) per job."""
    specs = []
    for i, (reference, current, spec) in enumerate(jobs):
        ref_path, cur_path = workdir / f"text_ref{i}.parquet", workdir / f"text_cur{i}.parquet"
        reference.to_parquet(ref_path, index=False)
        current.to_parquet(cur_path, index=False)
        specs.append({"reference": str(ref_path), "current": str(cur_path), **spec})
    jobs_path = workdir / "text_jobs.json"
    jobs_path.write_text(json.dumps(specs))
    done = subprocess.run(
        [str(EVIDENTLY_PYTHON), str(TEXT_RUNNER), str(jobs_path)], capture_output=True, text=True, timeout=900
    )
    if done.returncode != 0:
        raise RuntimeError(f"evidently text runner failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout)
