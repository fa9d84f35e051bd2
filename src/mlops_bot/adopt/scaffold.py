"""The files `mlops-bot init` writes: `.github/mlops.yml` from the data's facts and the flags, and the
workflow templates with the repository's default branch, model name and deploy target filled in.
Pure: the templates' text and the facts are passed in; the CLI reads and writes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from mlops_bot.adopt.data_facts import DataFacts
from mlops_bot.errors import MlopsError

CONFIG_PATH = ".github/mlops.yml"
WORKFLOWS_DIR = ".github/workflows"
DEPLOY_TARGETS = ("local", "docker", "kubernetes")
# The values the templates carry, each replaced exactly once (a test checks the templates keep them).
TEMPLATE_BRANCH = "    branches: [main] # the default branch"
TEMPLATE_MODEL = "  MLOPS_MODEL: my-model"
TEMPLATE_TARGET = "  MLOPS_DEPLOY_TARGET: kubernetes"
TEMPLATE_EXTRAS = "          extras: serve,docker,kubernetes # the model server and the deploy targets"


@dataclass(frozen=True)
class InitOptions:
    model: str
    branch: str
    deploy_target: str = "local"
    train_path: str = "data/train.csv"
    holdout_path: str = "data/holdout.csv"
    sensitive: list[str] = field(default_factory=list)


def _default_gates(facts: DataFacts | None) -> dict[str, Any]:
    """Gates that hold any model to its baseline: significance-based, so noise does not fail a PR."""
    if facts is not None and facts.task == "regression":
        return {"r2": {"max_drop_ci": 0.0}, "rmse": {"max_drop_ci": 0.0}}
    if facts is not None and len(facts.classes) > 2:
        return {"accuracy": {"max_drop_ci": 0.0}, "f1": {"max_drop_ci": 0.0}}
    return {"roc_auc": {"min": 0.6, "max_drop_ci": 0.0}, "accuracy": {"max_drop": 0.02}}


def _positive_label(classes: list[str]) -> int | str | bool | None:
    if sorted(classes) == ["0", "1"]:
        return 1
    if sorted(classes) == ["False", "True"]:
        return True
    return None


def _model_entry(facts: DataFacts | None, options: InitOptions) -> dict[str, Any]:
    """One model's own sections: `model`, `train`, `data`, `gates`."""
    task = facts.task if facts else "classification"
    model: dict[str, Any] = {"name": options.model, "task": task}
    if facts and task == "classification":
        label = _positive_label(facts.classes)
        if label is not None and label != 1:
            model["positive_label"] = label
        elif label is None and len(facts.classes) == 2:
            model["positive_label"] = facts.classes[1]
    builtin: dict[str, Any] = {"estimator": "logistic_regression" if task == "classification" else "ridge"}
    if facts:
        builtin["numeric_features"] = list(facts.numeric)
        builtin["categorical_features"] = list(facts.categorical)
    data: dict[str, Any] = {"train": options.train_path, "holdout": options.holdout_path,
                            "target": facts.target if facts else "target"}
    if facts and facts.id_column:
        data["id"] = facts.id_column
    if options.sensitive:
        data["sensitive"] = list(options.sensitive)
    return {"model": model, "train": {"builtin": builtin}, "data": data, "gates": _default_gates(facts)}


SHARED = {"baseline": {"stage": "production"}, "registry": {"stages": ["staging", "production"]}}
HEADER = ["# mlops-bot configuration written by `mlops-bot init`; every key is in docs/config.md.",
          "# Gates, baseline and registry on the default branch decide every PR's verdict."]


def _dump(header: list[str], config: dict[str, Any]) -> str:
    return "\n".join(header) + "\n" + yaml.safe_dump(config, sort_keys=False, default_flow_style=False)


def render_config(facts: DataFacts | None, options: InitOptions) -> str:
    """The config `init` writes. Without data facts, a skeleton whose data section needs editing."""
    header = list(HEADER)
    if facts is None:
        header.append("# TODO: point data.train, data.holdout and data.target at your data.")
    for column, why in (facts.skipped.items() if facts else ()):
        header.append(f"# not a feature: {column} ({why})")
    entry = _model_entry(facts, options)
    return _dump(header, {"version": 1, **{k: entry[k] for k in ("model", "train", "data", "gates")},
                          **SHARED})


def render_models_config(models: list[tuple[DataFacts | None, InitOptions]]) -> str:
    """The config of several models: a `models:` list (each model's own sections, `model.paths` its
    data files so a PR validates only the models whose data it changes) under the shared baseline
    and registry sections. A model without data facts is a skeleton whose data section needs editing."""
    header = list(HEADER)
    entries = []
    for index, (facts, options) in enumerate(models):
        entry = _model_entry(facts, options)
        if facts is None:
            header.append(f"# TODO: point models[{index}].data (train, holdout, target) at "
                          f"{options.model}'s data.")
        else:
            entry["model"]["paths"] = sorted({options.train_path, options.holdout_path})
        for column, why in (facts.skipped.items() if facts else ()):
            header.append(f"# {options.model}: not a feature: {column} ({why})")
        entries.append(entry)
    return _dump(header, {"version": 1, **SHARED, "models": entries})


def _replace_once(text: str, old: str, new: str, name: str) -> str:
    if text.count(old) != 1:
        raise MlopsError(f"workflow template {name} does not contain {old.strip()!r} exactly once")
    return text.replace(old, new)


def _extras(target: str) -> str:
    return "serve" if target == "local" else f"serve,{target}"


def render_workflows(templates: Mapping[str, str], options: InitOptions) -> dict[str, str]:
    """Workflow path -> text: every template, with the default branch, model name and deploy target
    (and the extras it installs) filled in."""
    if options.deploy_target not in DEPLOY_TARGETS:
        raise MlopsError(f"--deploy-target must be one of {', '.join(DEPLOY_TARGETS)}, "
                         f"got {options.deploy_target!r}")
    files: dict[str, str] = {}
    for name, text in sorted(templates.items()):
        if name == "mlops-deploy.yml":
            text = _replace_once(text, TEMPLATE_BRANCH, f"    branches: [{options.branch}]", name)
            text = _replace_once(text, TEMPLATE_MODEL, f"  MLOPS_MODEL: {options.model}", name)
            target = f"  MLOPS_DEPLOY_TARGET: {options.deploy_target}"
            text = _replace_once(text, TEMPLATE_TARGET, target, name)
            extras = _extras(options.deploy_target)
            text = _replace_once(text, TEMPLATE_EXTRAS, f"          extras: {extras} # the model server and "
                                 f"the {options.deploy_target} target", name)
        files[f"{WORKFLOWS_DIR}/{name}"] = text
    return files
