"""`mlops-bot init`: adopt mlops-bot in the repository it runs in.

Inspects the data (`--data FILE --target COLUMN`) for its columns, types and task, writes
`.github/mlops.yml` and the workflows with the default branch, model name and deploy target filled
in, then validates the config. Several `--model NAME` write a `models:` list, each model taking the
`--data`, `--target`, `--holdout` and `--sensitive` given in the same position. `--dry-run` prints
the diff and writes nothing. Existing files that differ are left alone unless `--force`.
"""

from __future__ import annotations

import argparse
import difflib
import subprocess
from pathlib import Path
from typing import Any

from mlops_bot.errors import MlopsError

HOLDOUT_SHARE = 0.2


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "init",
        help="write .github/mlops.yml and the workflows into this repository",
        description="Inspects --data for columns, types and the task; writes .github/mlops.yml and "
        ".github/workflows/mlops-*.yml (default branch, model name and deploy target filled in); "
        "validates the config. Without --holdout the data is split 80/20 into two files beside it.",
    )
    parser.add_argument("--model", action="append", default=[],
                        help="model name in the registry (default: the repository's name); repeat it for "
                        "several models, each taking the --data, --target, --holdout and --sensitive "
                        "given in the same position")
    parser.add_argument("--data", type=Path, action="append", default=[],
                        help="a CSV or Parquet table with the target column (one per --model)")
    parser.add_argument("--target", action="append", default=[],
                        help="the column to predict (one per --data)")
    parser.add_argument("--holdout", type=Path, action="append", default=[],
                        help="the evaluation table (default: split off --data; one per --model)")
    parser.add_argument("--sensitive", action="append", default=[],
                        help="comma-separated sensitive columns (fairness); once for every model or once "
                        "per --model")
    parser.add_argument("--deploy-target", default="local", choices=["local", "docker", "kubernetes"])
    parser.add_argument("--branch", help="the default branch (default: origin's HEAD, else the current one)")
    parser.add_argument("--repo", type=Path, default=Path("."), help="the repository (default: here)")
    parser.add_argument("--dry-run", action="store_true", help="print the diff, write nothing")
    parser.add_argument("--force", action="store_true", help="overwrite files that differ")
    parser.set_defaults(func=handle)


def _git(repo: Path, *args: str) -> str | None:
    done = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=False)
    return done.stdout.strip() if done.returncode == 0 and done.stdout.strip() else None


def default_branch(repo: Path) -> str:
    remote_head = _git(repo, "symbolic-ref", "--short", "refs/remotes/origin/HEAD")
    if remote_head and "/" in remote_head:
        return remote_head.split("/", 1)[1]
    return _git(repo, "branch", "--show-current") or "main"


def _relative(path: Path, repo: Path) -> str:
    try:
        return path.resolve().relative_to(repo.resolve()).as_posix()
    except ValueError:
        raise MlopsError(f"{path} is outside the repository {repo}: data must be committed with it") from None


def _templates() -> dict[str, str]:
    folder = Path(__file__).resolve().parent.parent / "adopt" / "workflows"
    return {p.name: p.read_text(encoding="utf-8") for p in sorted(folder.glob("mlops-*.yml"))}


def _diff(path: str, old: str | None, new: str) -> str:
    lines = difflib.unified_diff((old or "").splitlines(keepends=True), new.splitlines(keepends=True),
                                 fromfile="/dev/null" if old is None else f"a/{path}", tofile=f"b/{path}")
    return "".join(lines)


def _per_model(values: list[Any], flag: str, count: int, *, shared: bool = False) -> list[Any]:
    """`values` given for each of `count` models in order: none, one per model, or (`shared`) one
    for all of them."""
    if not values:
        return [None] * count
    if len(values) == count:
        return list(values)
    if shared and len(values) == 1:
        return values * count
    expected = "once for every model or once per --model" if shared else "once per --model"
    raise MlopsError(f"{flag} is given {len(values)} time(s) for {count} model(s): expected {expected}")


def _model_files(repo: Path, name: str, data: Path | None, target: str | None, holdout: Path | None,
                 sensitive: list[str], several: bool, tables: dict[str, Any]) -> tuple[Any, str, str]:
    """(data facts or None, train path, holdout path) of one model; a split it needs goes in `tables`."""
    if data is None:
        if holdout is not None:
            raise MlopsError("--holdout needs --data and --target: the training table and its target")
        if several:  # skeletons of several models must not share data paths
            from mlops_bot.registry.tags import name_slug

            return None, f"data/{name_slug(name)}/train.csv", f"data/{name_slug(name)}/holdout.csv"
        return None, "data/train.csv", "data/holdout.csv"
    from mlops_bot.adopt.data_facts import inspect_table
    from mlops_bot.dataset import read_table

    frame = read_table(data, "--data")
    facts = inspect_table(frame, str(target), sensitive)
    if holdout is not None:
        return facts, _relative(data, repo), _relative(holdout, repo)
    train_file, holdout_file = _split_names(data)
    train_path, holdout_path = _relative(train_file, repo), _relative(holdout_file, repo)
    split = _split(frame, facts.target if facts.task == "classification" else None, train_path, holdout_path)
    for path, table in split.items():
        # A split made by an earlier run (maybe edited since) is kept; a table given to two models
        # is split once.
        if not (repo / path).exists():
            tables.setdefault(path, table)
    return facts, train_path, holdout_path


def handle(args: argparse.Namespace) -> int:
    from mlops_bot.adopt.scaffold import (
        CONFIG_PATH,
        InitOptions,
        render_config,
        render_models_config,
        render_workflows,
    )
    from mlops_bot.config import load_models

    repo: Path = args.repo
    if not repo.is_dir():
        raise MlopsError(f"--repo {repo} is not a directory")
    if len(args.data) != len(args.target):
        raise MlopsError("--data and --target go together: the table and the column to predict")
    names = list(args.model) or [repo.resolve().name]
    if len(set(names)) != len(names):
        raise MlopsError(f"--model {', '.join(names)}: each model needs its own name")
    count = len(names)
    datas, targets = _per_model(args.data, "--data", count), _per_model(args.target, "--target", count)
    holdouts = _per_model(args.holdout, "--holdout", count)
    sensitives = _per_model(args.sensitive, "--sensitive", count, shared=True)
    branch = args.branch or default_branch(repo)
    files: dict[str, str] = {}
    tables: dict[str, Any] = {}  # new data files (the splits): path -> frame
    models = []
    for name, data, target, holdout, columns in zip(names, datas, targets, holdouts, sensitives, strict=True):
        sensitive = [c.strip() for c in (columns or "").split(",") if c.strip()]
        facts, train_path, holdout_path = _model_files(repo, name, data, target, holdout, sensitive,
                                                       count > 1, tables)
        models.append((facts, InitOptions(model=name, branch=branch, deploy_target=args.deploy_target,
                                          train_path=train_path, holdout_path=holdout_path,
                                          sensitive=sensitive)))
    options = models[0][1]  # the workflows' model: the one a push deploys
    files[CONFIG_PATH] = render_config(*models[0]) if count == 1 else render_models_config(models)
    files.update(render_workflows(_templates(), options))

    changed = {path: text for path, text in files.items()
               if not (repo / path).is_file() or (repo / path).read_text(encoding="utf-8") != text}
    blocked = sorted(p for p in changed if (repo / p).is_file())
    if args.dry_run:
        for path, text in changed.items():
            old = (repo / path).read_text(encoding="utf-8") if (repo / path).is_file() else None
            print(_diff(path, old, text), end="")
        for path, table in tables.items():
            print(f"new data file {path}: {len(table)} rows")
        if blocked and not args.force:
            print(f"mlops-bot: {len(blocked)} existing file(s) differ; a real run needs --force")
        print(f"mlops-bot: dry run, nothing written ({len(changed) + len(tables)} file(s) would change)")
        return 0
    if blocked and not args.force:
        raise MlopsError(f"{', '.join(blocked)} already exist(s) and differ: see `mlops-bot init --dry-run`, "
                         "then re-run with --force to overwrite")
    for path, table in tables.items():
        (repo / path).parent.mkdir(parents=True, exist_ok=True)
        _write_table(table, repo / path)
    for path, text in changed.items():
        (repo / path).parent.mkdir(parents=True, exist_ok=True)
        (repo / path).write_text(text, encoding="utf-8")
    configs = load_models(repo / CONFIG_PATH, root=repo)  # the file we wrote must be valid
    for path in sorted([*tables, *changed]):
        print(f"wrote {path}")
    described = ", ".join(f"{config.model.name} ({config.model.task})" for config in configs)
    print(f"mlops-bot: {described} set up on branch {options.branch}; commit these files and open a "
          "pull request")
    return 0


def _split_names(data: Path) -> tuple[Path, Path]:
    suffix = data.suffix if data.suffix in (".csv", ".parquet") else ".csv"
    return data.with_name(f"{data.stem}-train{suffix}"), data.with_name(f"{data.stem}-holdout{suffix}")


def _split(frame: Any, stratify_by: str | None, train_path: str, holdout_path: str) -> dict[str, Any]:
    from sklearn.model_selection import train_test_split

    labels = frame[stratify_by] if stratify_by is not None else None
    if labels is not None and labels.value_counts().min() < 2:
        labels = None  # a class with one row cannot be stratified
    train, holdout = train_test_split(frame, test_size=HOLDOUT_SHARE, random_state=0, stratify=labels)
    return {train_path: train.sort_index(), holdout_path: holdout.sort_index()}


def _write_table(frame: Any, path: Path) -> None:
    if path.suffix == ".parquet":
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False)
