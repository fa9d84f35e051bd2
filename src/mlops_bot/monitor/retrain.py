"""The retraining run: fresh data in, a pull request out.

Retraining never promotes anything by itself. It assembles fresh training data (a file, or the
labeled production predictions appended to the current training set), checks that the built-in
pipeline trains on it, then commits the new data and the updated `data.train` pointer in
`.github/mlops.yml` to a branch and opens a pull request, whose validation runs like any PR's and
whose promotion needs a person. The branch is built in a separate git worktree so the caller's
checkout is never touched.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from pydantic import BaseModel

from mlops_bot import config_yaml
from mlops_bot.checksums import sha256_file
from mlops_bot.config import DEFAULT_CONFIG_PATH, MlopsConfig, load_config
from mlops_bot.dataset import read_table, require_columns, write_table
from mlops_bot.errors import ConfigError, DataError
from mlops_bot.forge.base import Forge
from mlops_bot.monitor.triggers import retrain_branch
from mlops_bot.registry.git import git

BOT_NAME = "mlops-bot"
BOT_EMAIL = "mlops-bot@users.noreply.github.com"


class RetrainResult(BaseModel):
    branch: str
    data_path: str
    rows: int
    new_rows: int
    metrics: dict[str, float | None]
    pull_request: int
    pull_request_url: str


# --------------------------------------------------------------------------------- pure helpers
def set_yaml_scalar(text: str, path: tuple[str, ...], value: str, source: str = DEFAULT_CONFIG_PATH) -> str:
    """Replace one scalar in a YAML document in place, keeping comments and layout intact."""
    node = config_yaml.compose(text, source)
    for key in path:
        if isinstance(node, yaml.SequenceNode) and key.isdigit() and int(key) < len(node.value):
            node = node.value[int(key)]
            continue
        if not isinstance(node, yaml.MappingNode):
            raise ConfigError(source, ".".join(path), "expected a mapping here")
        for k, v in node.value:
            if k.value == key:
                node = v
                break
        else:
            raise ConfigError(source, ".".join(path), "key not found")
    if not isinstance(node, yaml.ScalarNode):
        raise ConfigError(source, ".".join(path), "expected a plain value (a path)")
    rendered = yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()
    return text[: node.start_mark.index] + rendered + text[node.end_mark.index :]


def train_data_key(data: Any, model: str, source: str) -> tuple[str, ...]:
    """Where a config document sets `model`'s `data.train`: `data.train` of a single-model file (or a
    per-model file), `models.N.data.train` of its entry in a `models:` list. A `data` section shared
    by several models cannot be retrained for one of them: ConfigError saying so."""
    if not isinstance(data, dict) or not isinstance(data.get("models"), list):
        return ("data", "train")
    for index, entry in enumerate(data["models"]):
        declared = entry.get("model") if isinstance(entry, dict) else None
        if isinstance(declared, dict) and declared.get("name") == model:
            if "data" not in entry:
                raise ConfigError(source, f"models[{index}].data", "the data section is shared by several "
                                  f"models: give {model!r} its own data: to retrain it alone")
            return ("models", str(index), "data", "train")
    raise ConfigError(source, "models", f"no model named {model!r}")


def fresh_from_log(log: pd.DataFrame, config: MlopsConfig, features: list[str]) -> pd.DataFrame:
    """Labeled production rows as training rows: the logged features plus the label as target."""
    labeled = log[log["label"].notna()]
    if labeled.empty:
        raise DataError("no labeled predictions in the window: send labels with `mlops-bot feedback` first")
    rows = {}
    for name in features:
        logged = f"feature.{name}" if f"feature.{name}" in labeled.columns else name
        if logged not in labeled.columns:
            raise DataError(f"the prediction log has no feature {name!r}; cannot retrain from it")
        rows[name] = labeled[logged].to_numpy()
    rows[config.data.target] = labeled["label"].to_numpy()
    # Values come back from JSON as Python objects; give them real dtypes again.
    return pd.DataFrame(rows).infer_objects()


def retrain_data_path(config: MlopsConfig, model: str, stamp: str) -> str:
    """Next to the current training file, named for the model and the run."""
    current = Path(config.data.train)
    suffix = current.suffix if current.suffix in (".csv", ".parquet") else ".csv"
    safe = model.replace("/", "-")
    return (current.parent / f"{safe}-retrain-{stamp}{suffix}").as_posix()


# ---------------------------------------------------------------------------------------- run
def _sanity_train(config: MlopsConfig, train: pd.DataFrame) -> dict[str, float | None]:
    """Fit the built-in pipeline on the fresh data and score it on the configured holdout, so a
    broken dataset fails here instead of in a PR. A user command is left to the PR validation."""
    if config.train.builtin is None:
        return {}
    from mlops_bot.pipeline.evaluate import evaluate, make_target, task_metrics
    from mlops_bot.pipeline.train import predict, train_builtin

    model, features = train_builtin(config, train)
    holdout = read_table(config.resolve(config.data.holdout), "holdout data")
    predictions = predict(model, holdout, features, config.model.task)
    target = make_target(config.model.task, np.asarray(holdout[config.data.target]), [predictions],
                         config.model.positive_label)
    known = task_metrics(config.model.task)
    names = [n for n in config.metric_names if n in known] or list(known)
    return evaluate(target, predictions, names)


def run_retrain(
    repo: Path,
    forge: Forge,
    *,
    stamp: str,
    config_path: str = DEFAULT_CONFIG_PATH,
    data: Path | None = None,
    log: pd.DataFrame | None = None,
    replace: bool = False,
    base: str = "main",
    remote: str = "origin",
    reason: str = "",
    issue: int | None = None,
    model: str | None = None,
) -> RetrainResult:
    """Train on fresh data and open the PR. `data` is a table with the target column; `log` is
    labeled production predictions. Unless `replace`, fresh rows are appended to the current
    training data so the model does not forget the old world."""
    repo = Path(repo).resolve()
    config = load_config(repo / config_path, root=repo, model=model)
    model = config.model.name
    config_file = config.source  # the file declaring the model: .github/mlops.yml or .github/mlops/NAME.yml
    current = read_table(config.resolve(config.data.train), "train data")
    features = [c for c in (config.data.features or current.columns) if c != config.data.target
                and c != config.data.id]
    if data is not None:
        fresh = read_table(data, "fresh data")
    elif log is not None:
        fresh = fresh_from_log(log, config, list(features))
    else:
        raise DataError("retraining needs fresh data: pass a data file or labeled predictions from the log")
    require_columns(fresh, [*features, config.data.target], "fresh data")
    target_dtype = current[config.data.target].dtype
    if fresh[config.data.target].dtype != target_dtype:
        try:
            fresh[config.data.target] = fresh[config.data.target].astype(target_dtype)
        except (TypeError, ValueError):
            raise DataError(
                f"fresh labels do not match the training target's type ({target_dtype}); check the feedback"
            ) from None
    if len(fresh) < config.monitor.min_rows:
        raise DataError(
            f"only {len(fresh)} fresh labeled row(s); retraining needs at least {config.monitor.min_rows} "
            "(monitor.min_rows)"
        )
    if replace:
        train = fresh
    else:
        train = pd.concat([current, fresh[[c for c in current.columns if c in fresh.columns]]],
                          ignore_index=True)
    metrics = _sanity_train(config, train)

    branch = retrain_branch(model, stamp)
    relative = retrain_data_path(config, model, stamp)
    git(repo, "fetch", "--quiet", remote, base)
    worktree = Path(tempfile.mkdtemp(prefix="mlops-retrain-"))
    shutil.rmtree(worktree)
    git(repo, "worktree", "add", "--quiet", "-b", branch, str(worktree), f"{remote}/{base}")
    try:
        write_table(train, worktree / relative)
        cfg_file = worktree / config_file
        text = cfg_file.read_text(encoding="utf-8")
        key = train_data_key(config_yaml.loads(text, config_file), model, config_file)
        cfg_file.write_text(set_yaml_scalar(text, key, relative, config_file), encoding="utf-8")
        load_config(worktree / config_path, root=worktree, model=model)  # the edited file must still validate
        message = _commit_message(model, relative, len(train), len(fresh), reason, issue)
        git(worktree, "add", "--", relative, config_file)
        git(worktree, "-c", f"user.name={BOT_NAME}", "-c", f"user.email={BOT_EMAIL}",
            "commit", "--quiet", "-m", message)
        sha = git(worktree, "rev-parse", "HEAD").strip()
        git(worktree, "push", "--quiet", remote, f"HEAD:refs/heads/{branch}")
        digest = sha256_file(worktree / relative)
    finally:
        git(repo, "worktree", "remove", "--force", str(worktree))
    body = _pr_body(model, relative, digest, len(train), len(fresh), metrics, reason, issue)
    pr = _open_pr(forge, f"Retrain {model} on fresh data ({stamp})", branch, base, body, sha)
    return RetrainResult(branch=branch, data_path=relative, rows=len(train), new_rows=len(fresh),
                         metrics=metrics, pull_request=pr.number, pull_request_url=pr.html_url)


def _open_pr(forge: Forge, title: str, head: str, base: str, body: str, sha: str) -> Any:
    from mlops_bot.forge.local import LocalForge

    if isinstance(forge, LocalForge):  # the local forge cannot see the pushed head; tell it
        return forge.create_pull_request(title, head, base, body, head_sha=sha)
    return forge.create_pull_request(title, head, base, body)


def _commit_message(model: str, path: str, rows: int, new: int, reason: str, issue: int | None) -> str:
    lines = [f"Retrain {model} on fresh data", "",
             f"Training data: {path} ({rows} rows, {new} new).", ""]
    if reason:
        lines += [f"Reason: {reason}", ""]
    if issue:
        lines.append(f"Refs: #{issue}")
    return "\n".join(lines).strip() + "\n"


def _pr_body(model: str, path: str, digest: str, rows: int, new: int, metrics: dict[str, float | None],
             reason: str, issue: int | None) -> str:
    lines = [
        f"Automated retraining of **{model}**, started by the production monitor.",
        "",
        f"- training data: `{path}` ({rows} rows, {new} fresh), sha256 `{digest[:16]}`",
    ]
    if reason:
        lines.append(f"- why: {reason}")
    if issue:
        lines.append(f"- tracking issue: #{issue}")
    if metrics:
        lines += ["", "Sanity training on the configured holdout (the PR validation is authoritative):", "",
                  "| Metric | Value |", "|---|---:|"]
        lines += [f"| {k} | {'-' if v is None else f'{v:.4g}'} |" for k, v in metrics.items()]
    lines += ["", "Validation runs on this PR like on any other; promote only after review."]
    return "\n".join(lines)
