"""Training parameters of base and head side by side (`dvc params diff`'s counterpart): flattening,
the pure diff, a params file read through the bounded YAML loader, and the report end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from mlops_bot.cli import main
from mlops_bot.config import parse_config
from mlops_bot.demo.dataset import generate
from mlops_bot.errors import ConfigError
from mlops_bot.pipeline.params import ParamRow, flatten, params_diff, training_params


def test_flatten_and_diff() -> None:
    assert flatten({"train": {"lr": 0.1, "layers": [64, 32]}, "seed": 1}) == {
        "train.lr": 0.1, "train.layers": "[64, 32]", "seed": 1}
    rows = params_diff({"a": 1, "b": "x", "gone": True}, {"a": 2, "b": "x", "new": None})
    assert rows == [
        ParamRow("a", 1, 2, changed=True),
        ParamRow("b", "x", "x", changed=False),
        ParamRow("gone", True, None, changed=True, removed=True),
        ParamRow("new", None, None, changed=True, added=True),
    ]
    assert all(r.changed and r.added for r in params_diff(None, {"a": 1}))


def test_params_file_and_builtin_params(tmp_path: Path) -> None:
    base = {"model": {"name": "m", "task": "regression"},
            "data": {"train": "a.csv", "holdout": "b.csv", "target": "y"}}
    builtin = parse_config({**base, "train": {"builtin": {"estimator": "ridge", "params": {"alpha": 2}}}})
    params = training_params(builtin)
    assert params["estimator"] == "ridge" and params["params.alpha"] == 2
    (tmp_path / "params.yaml").write_text("train:\n  lr: 0.01\n  epochs: 5\n", encoding="utf-8")
    command = parse_config({**base, "train": {"command": "python t.py", "model_path": "m.skops",
                                             "params_file": "params.yaml"}})
    command = command.model_copy(update={"root": tmp_path})
    assert training_params(command) == {"train.lr": 0.01, "train.epochs": 5}
    (tmp_path / "params.yaml").write_text("- just\n- a list\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="must hold a mapping"):
        training_params(command)


def _project(root: Path, params: dict[str, object]) -> Path:
    (root / "data").mkdir(parents=True, exist_ok=True)
    generate(300, seed=1).to_csv(root / "data" / "train.csv", index=False)
    generate(200, seed=2, id_start=10_000).to_csv(root / "data" / "holdout.csv", index=False)
    config = {
        "model": {"name": "credit-risk", "task": "classification"},
        "train": {"builtin": {"estimator": "logistic_regression", "params": params}},
        "data": {"train": "data/train.csv", "holdout": "data/holdout.csv", "target": "default",
                 "features": ["age", "income", "debt_ratio", "late_payments"]},
        "bootstrap": {"samples": 100},
        "drift": {"enabled": False},
    }
    path = root / ".github" / "mlops.yml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def test_report_shows_base_and_head_params(tmp_path: Path) -> None:
    config = _project(tmp_path, {"max_iter": 300, "C": 1.0})
    out = ["validate", "--config", str(config), "--quiet", "--output"]
    assert main([*out, str(tmp_path / "base")]) == 0
    _project(tmp_path, {"max_iter": 300, "C": 0.1})
    assert main([*out, str(tmp_path / "head"), "--base-model", str(tmp_path / "base" / "model.skops")]) == 0
    report = json.loads((tmp_path / "head" / "report.json").read_text())
    assert report["params"]["head"]["params.C"] == 0.1 and report["params"]["base"]["params.C"] == 1.0
    markdown = (tmp_path / "head" / "report.md").read_text()
    assert "<summary>Params: 1 changed" in markdown
    assert "| params.C | 1 | 0.1 |" in markdown and "params.max_iter" not in markdown
