"""The model card registered with each version: what a person deciding to use the model reads."""

from __future__ import annotations

import json
from pathlib import Path

from mlops_bot.config import parse_config
from mlops_bot.registry.model_card import render_model_card

CONFIG = {
    "model": {"name": "credit", "task": "classification", "intended_use": "Rank applications for review.",
              "limitations": "Synthetic data."},
    "train": {"builtin": {"estimator": "logistic_regression"}},
    "data": {"train": "train.csv", "holdout": "holdout.csv", "target": "default", "sensitive": ["sex"]},
}


def _report() -> dict[str, object]:
    return {
        "verdict": "pass",
        "metrics": {"roc_auc": {"head": 0.8042, "ci": [-0.0095, 0.015]},
                    "demographic_parity_ratio": {"head": 0.8617}},
        "fairness": {
            "method": "between_groups", "demographic_parity_ratio": 0.8617,
            "demographic_parity_difference": 0.0402, "bootstrap_samples": 1000, "min_group_size": 30,
            "confidence_intervals": {"demographic_parity_ratio": [0.7103, 0.9942]}, "small_groups": ["other"],
        },
    }


def test_card_has_every_section_and_only_disparities_under_fairness() -> None:
    card = render_model_card(parse_config(CONFIG), _report(), "v1.2.0")
    assert card.startswith("# Model card: credit v1.2.0\n")
    for heading in ("## Intended use", "## Data", "## Metrics (holdout)", "## Fairness", "## Limitations"):
        assert heading in card
    assert "Rank applications for review." in card and "Synthetic data." in card
    assert "| roc_auc | 0.8042 | [-0.0095, 0.015] |" in card
    fairness = card.split("## Fairness")[1].split("## Limitations")[0]
    assert "demographic parity ratio: 0.8617 (95% CI [0.7103, 0.9942])" in fairness
    assert "groups too small to judge: other" in fairness
    assert "bootstrap_samples" not in fairness and "min_group_size" not in fairness
    assert "heuristic from US employment law, not a legal test" in fairness


def test_card_says_what_is_missing() -> None:
    config = parse_config({**CONFIG, "model": {"name": "credit", "task": "classification"}})
    card = render_model_card(config, {"verdict": "fail", "metrics": {}}, "")
    assert card.startswith("# Model card: credit\n")
    assert "Not stated in .github/mlops.yml (model.intended_use)" in card
    assert "No fairness analysis was recorded" in card and "**fail**" in card


def test_validate_writes_the_card_beside_the_report(tmp_path: Path) -> None:
    """The demo's head report directory is produced by `mlops-bot validate`; reuse a tiny run."""
    import numpy as np
    import pandas as pd

    from mlops_bot.cli import main

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.normal(size=300), "sex": rng.choice(["f", "m"], 300)})
    frame["default"] = (frame["x"] + rng.normal(scale=0.5, size=300) > 0).astype(int)
    frame[:200].to_csv(tmp_path / "train.csv", index=False)
    frame[200:].to_csv(tmp_path / "holdout.csv", index=False)
    config = {**CONFIG, "data": {**CONFIG["data"], "features": ["x"]}, "bootstrap": {"samples": 100}}
    (tmp_path / "mlops.yml").write_text(json.dumps(config))
    assert main(["validate", "--config", str(tmp_path / "mlops.yml"), "--output", str(tmp_path / "out")]) == 0
    card = (tmp_path / "out" / "model_card.md").read_text()
    assert card.startswith("# Model card: credit") and "## Fairness" in card and "demographic parity" in card
