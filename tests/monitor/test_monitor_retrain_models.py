"""Retraining one model of several: the training-data path is edited where that model declares it
(its `models:` entry, or its own file), comments and layout kept; shared data is refused."""

from __future__ import annotations

import pytest
import yaml

from mlops_bot.errors import ConfigError
from mlops_bot.monitor.retrain import set_yaml_scalar, train_data_key

TEXT = """\
version: 1
models:
  - model: {name: churn, task: classification}
    data:
      train: data/churn.csv   # the churn table
      holdout: data/churn-holdout.csv
      target: y
  - model: {name: "vision:digits", task: classification}
    data: {train: vision/train.csv, holdout: vision/holdout.csv, target: digit}
"""


def test_the_entry_of_the_model_is_edited_in_place() -> None:
    key = train_data_key(yaml.safe_load(TEXT), "vision:digits", ".github/mlops.yml")
    assert key == ("models", "1", "data", "train")
    edited = set_yaml_scalar(TEXT, key, "vision/retrain-1.csv")
    assert edited == TEXT.replace("train: vision/train.csv", "train: vision/retrain-1.csv")
    key = train_data_key(yaml.safe_load(TEXT), "churn", ".github/mlops.yml")
    edited = set_yaml_scalar(TEXT, key, "data/churn-retrain.csv")
    assert "train: data/churn-retrain.csv   # the churn table" in edited
    assert yaml.safe_load(edited)["models"][1] == yaml.safe_load(TEXT)["models"][1]
    # a single-model (or per-model) file: data.train at the top
    assert train_data_key({"model": {"name": "x"}, "data": {}}, "x", "f.yml") == ("data", "train")


def test_shared_data_or_an_unknown_model_is_refused() -> None:
    shared = {"data": {"train": "a.csv"}, "models": [{"model": {"name": "a"}}, {"model": {"name": "b"}}]}
    with pytest.raises(ConfigError, match=r"models\[1\].data: the data section is shared"):
        train_data_key(shared, "b", ".github/mlops.yml")
    with pytest.raises(ConfigError, match="no model named 'c'"):
        train_data_key(shared, "c", ".github/mlops.yml")
