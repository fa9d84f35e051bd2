"""Several models per repository: a `models:` list or one file per model under `.github/mlops/`,
each its own model; errors name the file, line and key (`models[1].gates.roc_auc`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlops_bot.cli import main
from mlops_bot.config import (
    changed_models,
    config_exists,
    load_config,
    load_models,
    parse_config,
    path_matches,
)
from mlops_bot.errors import ConfigError

SINGLE = """\
model:
  name: churn
  task: classification
train:
  builtin:
    estimator: logistic_regression
data:
  train: train.csv
  holdout: holdout.csv
  target: label
"""

SEVERAL = """\
version: 1
bot:
  permission: maintain
registry:
  stages: [staging, production]
train:
  builtin:
    estimator: logistic_regression
gates:
  accuracy:
    min: 0.7
models:
  - model:
      name: churn
      task: classification
      paths: [models/churn/, data/churn/*.csv]
    data:
      train: data/churn/train.csv
      holdout: data/churn/holdout.csv
      target: churned
  - model:
      name: vision:digits
      task: classification
      paths: ["vision/**/*.py"]
    data:
      train: vision/train.csv
      holdout: vision/holdout.csv
      target: digit
    gates:
      roc_auc:
        min: 0.9
    rollout:
      environment: digits-prod
"""


def _write(root: Path, relative: str, text: str) -> Path:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_a_models_list_gives_one_config_per_model_with_the_shared_keys(tmp_path: Path) -> None:
    path = _write(tmp_path, ".github/mlops.yml", SEVERAL)
    churn, digits = load_models(path)
    assert [churn.model.name, digits.model.name] == ["churn", "vision:digits"]
    assert churn.root == digits.root == tmp_path.resolve()
    assert churn.source == digits.source == ".github/mlops.yml"
    # shared keys are defaults; an entry's own key replaces the shared one whole
    assert churn.registry.stages == digits.registry.stages == ["staging", "production"]
    assert churn.bot.permission == digits.bot.permission == "maintain"
    assert set(churn.gates) == {"accuracy"} and set(digits.gates) == {"roc_auc"}
    assert churn.train.builtin is not None and churn.train.builtin.estimator == "logistic_regression"
    # each model deploys to its own environment: derived unless the entry sets one
    assert churn.rollout.environment == "production-churn"
    assert digits.rollout.environment == "digits-prod"
    assert load_config(path, model="vision:digits") == digits


def test_the_single_model_file_is_unchanged(tmp_path: Path) -> None:
    path = _write(tmp_path, ".github/mlops.yml", SINGLE)
    (config,) = load_models(path)
    assert load_config(path) == config
    assert config.rollout.environment == "production" and config.model.paths == []
    data = {"model": {"name": "x", "task": "regression"}, "train": {"builtin": {"estimator": "ridge"}},
            "data": {"train": "a", "holdout": "b", "target": "y"}}
    assert parse_config(data).model.name == "x"


def test_several_models_need_a_name_and_an_unknown_name_lists_them(tmp_path: Path) -> None:
    path = _write(tmp_path, ".github/mlops.yml", SEVERAL)
    with pytest.raises(ConfigError, match=r"2 models \(churn, vision:digits\): pick one with --model NAME"):
        load_config(path)
    with pytest.raises(ConfigError, match=r"no model named 'fraud'; the models are: churn, vision:digits"):
        load_config(path, model="fraud")
    with pytest.raises(ConfigError, match=r"no model named 'other'"):
        load_config(_write(tmp_path / "one", ".github/mlops.yml", SINGLE), model="other")


@pytest.mark.parametrize(
    ("change", "key", "line", "expect"),
    [
        (("      roc_auc:\n        min: 0.9", "      roc_auc:\n        min: high"),
         "models[1].gates.roc_auc.min", 31, "valid number"),
        (("      target: churned", "      target: churned\n      tagret: x"), "models[0].data.tagret", 21,
         "unknown key"),
        (("      name: vision:digits", "      name: churn"), "models[1].model.name", 22,
         "'churn' is already the name of models[0]"),
        (("      name: vision:digits", "      name: -digits"), "models[1].model.name", 22,
         "registry name"),
        (("      paths: [models/churn/, data/churn/*.csv]", "      paths: [../elsewhere]"),
         "models[0].model.paths", 16, "relative to the repository root"),
        (("    rollout:\n      environment: digits-prod", "    bot:\n      permission: admin"),
         "models[1].bot", 32, "repository-wide: set it at the top level"),
        (("      environment: digits-prod", "      environment: production-churn"),
         "models[1].rollout.environment", 33, "also the rollout environment of model 'churn'"),
        # a shared key that does not fit: named where it is written
        (("  accuracy:\n    min: 0.7", "  accuracy:\n    min: low"), "gates.accuracy.min", 11,
         "(the shared key, as used by models[0])"),
        (("models:\n", "model: {name: x, task: regression}\nmodels:\n"), "model", 12, "move this model:"),
    ],
)
def test_errors_name_the_file_line_and_entry_key(tmp_path: Path, change: tuple[str, str], key: str,
                                                 line: int, expect: str) -> None:
    assert change[0] in SEVERAL
    path = _write(tmp_path, ".github/mlops.yml", SEVERAL.replace(*change))
    with pytest.raises(ConfigError) as caught:
        load_models(path)
    assert caught.value.key == key and caught.value.line == line and caught.value.path == str(path)
    assert expect in caught.value.detail


@pytest.mark.parametrize(("models", "expect"), [
    ("[]", "expected a list of models"), ("churn", "expected a list"), ("[churn]", "expected a mapping")])
def test_a_models_list_must_hold_mappings(tmp_path: Path, models: str, expect: str) -> None:
    path = _write(tmp_path, ".github/mlops.yml", f"version: 1\nmodels: {models}\n")
    with pytest.raises(ConfigError, match=expect):
        load_models(path)


def test_one_file_per_model_under_github_mlops(tmp_path: Path) -> None:
    shared = _write(tmp_path, ".github/mlops.yml", "bot:\n  permission: admin\nseed: 7\n")
    _write(tmp_path, ".github/mlops/b-churn.yml", SINGLE)
    _write(tmp_path, ".github/mlops/a-digits.yaml", SINGLE.replace("name: churn", "name: vision:digits")
           .replace("  target: label", "  target: digit\nseed: 3"))
    _write(tmp_path, ".github/mlops/notes.txt", "not a config")
    digits, churn = load_models(shared)  # file name order
    assert (digits.model.name, churn.model.name) == ("vision:digits", "churn")
    assert (digits.source, churn.source) == (".github/mlops/a-digits.yaml", ".github/mlops/b-churn.yml")
    assert digits.root == churn.root == tmp_path.resolve()
    assert (digits.seed, churn.seed) == (3, 7) and churn.bot.permission == "admin"
    assert churn.rollout.environment == "production-churn"
    assert digits.rollout.environment == "production-vision-digits"

    # without .github/mlops.yml the per-model files are the whole config
    shared.unlink()
    assert config_exists(shared)
    assert [c.model.name for c in load_models(shared)] == ["vision:digits", "churn"]
    # a per-model file may not set the repository-wide bot section
    bad = _write(tmp_path, ".github/mlops/b-churn.yml", SINGLE + "bot:\n  permission: admin\n")
    with pytest.raises(ConfigError) as caught:
        load_models(shared)
    assert (caught.value.path, caught.value.key, caught.value.line) == (str(bad), "bot", 11)
    bad.write_text(SINGLE, encoding="utf-8")
    # a single-model .github/mlops.yml next to per-model files is ambiguous
    _write(tmp_path, ".github/mlops.yml", SINGLE.replace("churn", "fraud"))
    with pytest.raises(ConfigError, match=r"model: names one model while .*mlops/ holds per-model files"):
        load_models(shared)


def test_names_that_are_one_word_alike_are_refused(tmp_path: Path) -> None:
    text = SEVERAL.replace("name: churn", "name: vision/digits")
    with pytest.raises(ConfigError, match=r"'vision:digits' and 'vision/digits' are the same word"):
        load_models(_write(tmp_path, ".github/mlops.yml", text))


@pytest.mark.parametrize(
    ("path", "pattern", "expect"),
    [
        ("models/churn/train.py", "models/churn/", True),
        ("models/churn", "models/churn/", False),
        ("models/churnish/x.py", "models/churn/", False),
        ("data/churn/train.csv", "data/churn/*.csv", True),
        ("data/churn/old/train.csv", "data/churn/*.csv", False),
        ("vision/a/b/net.py", "vision/**/*.py", True),
        ("vision/net.py", "vision/**/*.py", True),
        ("vision/net.pyc", "vision/**/*.py", False),
        ("params.yaml", "params.yaml", True),
        ("sub/params.yaml", "params.yaml", False),
        ("x/params.yaml", "**/params.yaml", True),
        ("a.csv", "?.csv", True),
        ("ab.csv", "?.csv", False),
        ("docs/a[1].md", "docs/a[1].md", True),
    ],
)
def test_path_globs(path: str, pattern: str, expect: bool) -> None:
    assert path_matches(path, pattern) is expect


def test_changed_models_by_paths_config_files_and_models_without_paths(tmp_path: Path) -> None:
    path = _write(tmp_path, ".github/mlops.yml", SEVERAL)
    churn, digits = load_models(path)

    def names(*changed: str) -> list[str]:
        return [c.model.name for c in changed_models([churn, digits], changed)]

    assert names("models/churn/train.py") == ["churn"]
    assert names("./vision/nets/cnn.py", "README.md") == ["vision:digits"]
    assert names("README.md") == []
    assert names(".github/mlops.yml") == ["churn", "vision:digits"]  # the file declaring them
    assert names() == []
    no_paths = churn.model_copy(update={"model": churn.model.model_copy(update={"paths": []})})
    assert [c.model.name for c in changed_models([no_paths, digits], ["README.md"])] == ["churn"]


def test_validate_with_several_models_and_no_model_exits_2_naming_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(tmp_path, ".github/mlops.yml", SEVERAL)
    code = main(["validate", "--config", str(path), "--output", str(tmp_path / "out")])
    assert code == 2
    err = capsys.readouterr().err
    assert "models: declares 2 models (churn, vision:digits): pick one with --model NAME" in err
