"""Custom metrics (`module:function` in `metrics:`): computed in a subprocess where the training
command runs, on the same holdout and the same paired resamples as the built-in metrics (a custom
copy of accuracy gets exactly the built-in interval), gated with their own direction; a broken
reference is one clear error (exit 2)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from mlops_bot.config import parse_config
from mlops_bot.demo.dataset import generate
from mlops_bot.errors import ConfigError
from validate_project import validate_cli, write_config

METRICS_MODULE = '''
import numpy as np

def my_accuracy(y_true, y_pred):
    return float(np.mean(np.asarray(y_true) == np.asarray(y_pred)))

def cost(y_true, y_pred):
    t, p = np.asarray(y_true), np.asarray(y_pred)
    return float((5 * ((t == 1) & (p == 0)).sum() + ((t == 0) & (p == 1)).sum()) / len(t))
'''


def _project(root: Path, metrics: list[object], gates: dict[str, object]) -> Path:
    (root / "data").mkdir(parents=True, exist_ok=True)
    generate(400, seed=1).to_csv(root / "data" / "train.csv", index=False)
    generate(300, seed=2, id_start=10_000).to_csv(root / "data" / "holdout.csv", index=False)
    (root / "team_metrics.py").write_text(METRICS_MODULE, encoding="utf-8")
    config = {
        "model": {"name": "credit-risk", "task": "classification"},
        "train": {"builtin": {"estimator": "logistic_regression", "params": {"max_iter": 500}}},
        "data": {"train": "data/train.csv", "holdout": "data/holdout.csv", "target": "default",
                 "features": ["age", "income", "debt_ratio", "late_payments"]},
        "metrics": metrics,
        "gates": gates,
        "bootstrap": {"samples": 200},
        "drift": {"enabled": False},
        "seed": 4,
    }
    return write_config(root, config)


def test_custom_metrics_share_the_holdout_and_the_resamples(tmp_path: Path) -> None:
    metrics: list[object] = [
        "accuracy",
        "team_metrics:my_accuracy",
        {"function": "team_metrics:cost", "name": "error_cost", "greater_is_better": False},
    ]
    config = _project(tmp_path, metrics, {"error_cost": {"max": 10.0}})
    assert validate_cli(config, tmp_path / "base") == 0
    head_config = _project(tmp_path, metrics, {"error_cost": {"max": 10.0, "max_drop": 0.0}})
    config_text = yaml.safe_load(head_config.read_text())
    config_text["train"] = {"builtin": {"estimator": "dummy", "params": {"strategy": "most_frequent"}}}
    head_config.write_text(yaml.safe_dump(config_text), encoding="utf-8")
    code = validate_cli(head_config, tmp_path / "head", "--base-model",
                        str(tmp_path / "base" / "model.skops"))
    report = json.loads((tmp_path / "head" / "report.json").read_text())
    rows = report["metrics"]
    # the same numbers as the built-in accuracy, interval included: same holdout, same resamples
    assert rows["my_accuracy"]["head"] == pytest.approx(rows["accuracy"]["head"], abs=1e-12)
    assert rows["my_accuracy"]["base"] == pytest.approx(rows["accuracy"]["base"], abs=1e-12)
    assert rows["my_accuracy"]["ci"] == pytest.approx(rows["accuracy"]["ci"], abs=1e-12)
    cost = rows["error_cost"]
    assert cost["lower_is_better"] is True and cost["ci"] is not None
    # the majority-class dummy misses every default: its cost is higher, i.e. worse
    assert cost["diff"] > 0 and code == 1
    failed = [g for g in report["gates"] if g["metric"] == "error_cost" and not g["passed"]]
    assert [g["rule"] for g in failed] == ["drop <= 0"]
    markdown = (tmp_path / "head" / "report.md").read_text()
    assert "| error_cost |" in markdown and "🔴" in markdown.split("| error_cost |")[1].split("\n")[0]


def test_a_missing_custom_metric_module_is_one_clear_error(tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    config = _project(tmp_path, ["nowhere:cost"], {})
    assert validate_cli(config, tmp_path / "out") == 2
    err = capsys.readouterr().err
    assert "custom metrics (nowhere:cost)" in err and "cannot import module 'nowhere'" in err
    assert not (tmp_path / "out").exists()


def test_custom_metric_config_is_checked() -> None:
    base = {"model": {"name": "m", "task": "regression"}, "train": {"builtin": {"estimator": "ridge"}},
            "data": {"train": "a.csv", "holdout": "b.csv", "target": "y"}}
    config = parse_config({**base, "metrics": ["rmse", "pkg.mod:score",
                                               {"function": "m:f", "name": "g", "greater_is_better": False}]})
    assert config.metric_names == ["rmse", "score", "g"]
    assert [m.greater_is_better for m in config.custom_metrics] == [True, False]
    with pytest.raises(ConfigError, match=r"metrics.*listed twice: score"):
        parse_config({**base, "metrics": ["a:score", "b:score"]})
    with pytest.raises(ConfigError, match=r"metrics\.1"):
        parse_config({**base, "metrics": ["rmse", {"function": "not a reference"}]})
