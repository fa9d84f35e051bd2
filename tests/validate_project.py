"""A repository for `mlops-bot validate` tests: its config written to `.github/mlops.yml`, the
small credit-risk project most pipeline tests start from (the demo generator's data, a built-in
logistic regression, binary gates), and `validate` run through the CLI."""

from __future__ import annotations

from pathlib import Path

import yaml

from mlops_bot.cli import main
from mlops_bot.demo.dataset import generate

FEATURES = ["age", "income", "debt_ratio", "late_payments", "employment"]


def write_config(root: Path, config: dict[str, object]) -> Path:
    """`config` as the repository's `.github/mlops.yml`; its path."""
    path = root / ".github" / "mlops.yml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def credit_project(root: Path, **config_overrides: object) -> Path:
    """Training and holdout tables under `root/data` and a config over them (top-level sections
    replaced by `config_overrides`); the config's path."""
    (root / "data").mkdir(parents=True, exist_ok=True)
    generate(400, seed=1).to_csv(root / "data" / "train.csv", index=False)
    generate(300, seed=2, id_start=10_000).to_csv(root / "data" / "holdout.csv", index=False)
    config: dict[str, object] = {
        "model": {"name": "credit-risk", "task": "classification"},
        "train": {"builtin": {"estimator": "logistic_regression", "params": {"max_iter": 500}}},
        "data": {"train": "data/train.csv", "holdout": "data/holdout.csv", "target": "default",
                 "id": "applicant_id", "sensitive": ["sex"], "features": FEATURES},
        "gates": {"roc_auc": {"min": 0.6, "max_drop_ci": 0.0}, "accuracy": {"max_drop": 0.02}},
        "bootstrap": {"samples": 200},
        "seed": 1,
    }
    config.update(config_overrides)
    return write_config(root, config)


def validate_cli(config: Path, out: Path, *extra: str) -> int:
    """`mlops-bot validate --config CONFIG --output OUT --quiet [extra...]`: its exit code."""
    return main(["validate", "--config", str(config), "--output", str(out), "--quiet", *extra])
