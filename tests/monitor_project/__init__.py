"""Test helper (importable as `monitor_project`): a real project repository for the monitor tests,
with a working clone, a bare origin and small generated credit data."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

CONFIG = """\
version: 1
# the model this repository trains
model:
  name: credit
  task: classification
train:
  builtin:
    estimator: logistic_regression
    numeric_features: [income, age]
    categorical_features: [region]
data:
  train: data/train.csv   # retraining rewrites this pointer
  holdout: data/holdout.csv
  target: default
metrics: [accuracy, f1]
monitor:
  window: 1h
  min_rows: 100
  cooldown: 1d
  max_metric_drop:
    accuracy: 0.05
"""


def population(rng: np.random.Generator, n: int, shift: float = 0.0) -> pd.DataFrame:
    frame = pd.DataFrame({
        "income": rng.normal(50 + shift * 20, 10, n).round(3),
        "age": rng.normal(40 + shift * 10, 8, n).round(3),
        "region": rng.choice(["n", "s", "e"], n, p=[0.5, 0.3, 0.2] if not shift else [0.1, 0.2, 0.7]),
    })
    frame["default"] = (frame["income"] + rng.normal(0, 2, n) > 50).astype(int)
    return frame


def run(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


@dataclass
class Project:
    repo: Path
    origin: Path


def make_project(tmp_path: Path) -> Project:
    origin = tmp_path / "origin.git"
    repo = tmp_path / "repo"
    run(tmp_path, "init", "--quiet", "--bare", "-b", "main", str(origin))
    run(tmp_path, "init", "--quiet", "-b", "main", str(repo))
    run(repo, "config", "user.name", "Dev")
    run(repo, "config", "user.email", "dev@example.com")
    run(repo, "remote", "add", "origin", str(origin))
    rng = np.random.default_rng(0)
    (repo / ".github").mkdir()
    (repo / ".github" / "mlops.yml").write_text(CONFIG)
    (repo / "data").mkdir()
    population(rng, 400).to_csv(repo / "data" / "train.csv", index=False)
    population(rng, 200).to_csv(repo / "data" / "holdout.csv", index=False)
    run(repo, "add", ".")
    run(repo, "commit", "--quiet", "-m", "initial")
    run(repo, "push", "--quiet", "origin", "main")
    return Project(repo=repo, origin=origin)
