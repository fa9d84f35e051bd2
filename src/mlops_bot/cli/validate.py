"""`mlops-bot validate`: the PR validation run (train, evaluate, compare, gate, report).

Exit codes: 0 all gates pass, 1 a gate failed, 2 a usage, config or data error.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path
from typing import Any

from mlops_bot.config import DEFAULT_CONFIG_PATH, MlopsConfig, config_exists, load_config, load_models
from mlops_bot.errors import DataError


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "validate",
        help="train and evaluate the model, compare with the baseline, apply gates, write the PR report",
        description="Writes DIR/report.md (the PR comment), DIR/report.json, DIR/metrics.json, "
        "DIR/plots/*.png and DIR/model.skops. Exit 0 when all gates pass, 1 when one fails, 2 on errors.",
    )
    parser.add_argument("--config", default=DEFAULT_CONFIG_PATH, help="path to mlops.yml")
    parser.add_argument(
        "--model", help="the model to validate, by name (required when the config declares several)"
    )
    parser.add_argument("--output", required=True, type=Path, help="directory to write the report into")
    parser.add_argument("--base-metrics", type=Path, help="metrics.json (or report.json) of the base branch")
    parser.add_argument(
        "--base-model",
        type=Path,
        help="the base branch's model file (.skops): enables paired confidence intervals",
    )
    parser.add_argument("--base-label", help="how the report names the --base-model (e.g. 'main @ abc123')")
    parser.add_argument(
        "--baseline-dir",
        type=Path,
        help="the registry baseline's artifacts, fetched beforehand by `mlops-bot registry download "
        "--if-exists` (so this step needs no token); empty or absent: no registry baseline",
    )
    parser.add_argument(
        "--base-config",
        type=Path,
        help="the base branch's mlops.yml: its gates, baseline, bootstrap, fairness, drift and registry "
        "sections decide the verdict (a missing file: the base branch has no config yet)",
    )
    parser.add_argument(
        "--base-ref",
        help="the base branch's commit (git objects only, nothing checked out): its config decides the "
        "verdict unless --base-config is given, and `baseline.metrics_file` is read from it, never from "
        "the PR's checkout (a PR cannot pick its own baseline numbers)",
    )
    parser.add_argument("--base-name", default="the base branch", help="how the report names the base")
    parser.add_argument(
        "--accept-pr-gates",
        action="store_true",
        help="a maintainer accepted this PR's own gates: judge by them, and say so in the report",
    )
    parser.add_argument(
        "--reference-data", type=Path, help="train data of the base revision, the drift reference"
    )
    parser.add_argument("--quiet", action="store_true", help="do not print the report")
    parser.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    from mlops_bot.pipeline import base_tree

    config = load_config(args.config, model=args.model)
    gates_notice = None
    base_commit = None
    if args.base_ref:
        base_commit = base_tree.commit_of(config.root, args.base_ref)
        if base_commit is None:
            raise DataError(f"--base-ref {args.base_ref}: not a commit in {config.root} (fetch it first, "
                            "e.g. actions/checkout with fetch-depth: 0)")
    if args.base_config is not None or base_commit is not None:
        from mlops_bot.pipeline.base_gates import judge_by_base

        if args.base_config is not None:
            base = _base_config(args.base_config, config, by_name=args.model is not None)
            has_config = config_exists(args.base_config)
        else:
            assert base_commit is not None
            models = base_tree.models_at(config.root, base_commit, _in_repo(Path(args.config), config.root))
            base = base_tree.model_named(models, config.model.name, by_name=args.model is not None)
            has_config = bool(models)
        judging = judge_by_base(config, base, args.base_name, accepted=args.accept_pr_gates,
                                new_model=base is None and has_config)
        config, gates_notice = judging.config, judging.notice
        if gates_notice:
            print(gates_notice)
    with tempfile.TemporaryDirectory() as scratch:
        base_metrics, label = args.base_metrics, None
        if base_commit is not None and base_metrics is None and config.baseline.metrics_file:
            path = config.baseline.metrics_file
            copy = Path(scratch) / "metrics.json"
            base_metrics = base_tree.metrics_file_at(config.root, base_commit, path, copy)
            label = f"{path} at {args.base_name} ({base_commit[:12]})"
            # Absent there: no metrics-file baseline, whatever the PR's checkout holds at that path.
            baseline = config.baseline.model_copy(update={"metrics_file": None})
            config = config.model_copy(update={"baseline": baseline})
        return _validate(args, config, gates_notice, base_metrics, label)


def _in_repo(path: Path, root: Path) -> str:
    """The config's path inside the repository, for `REV:PATH`."""
    return os.path.relpath(path.resolve(), root.resolve())


def _validate(args: argparse.Namespace, config: Any, gates_notice: str | None, base_metrics: Path | None,
              base_metrics_label: str | None) -> int:
    from mlops_bot.pipeline.validate import validate

    forge = None  # None: the forge from the environment, when one is configured
    if args.baseline_dir is not None:
        from mlops_bot.forge.mirror import ReleaseMirror

        forge = ReleaseMirror(args.baseline_dir)
    run = validate(
        config,
        args.output,
        base_metrics=base_metrics,
        base_metrics_label=base_metrics_label,
        base_model=args.base_model,
        base_label=args.base_label,
        reference_data=args.reference_data,
        forge=forge,
        gates_notice=gates_notice,
    )
    if not args.quiet:
        print(run.markdown)
    failed = run.report.failed_gates()
    print(
        f"mlops-bot: {run.report.model}: {run.report.verdict}"
        + (
            f" ({len(failed)} gate(s) failed: {', '.join(sorted({g.metric for g in failed}))})"
            if failed
            else ""
        )
        + f"; report in {run.output}"
    )
    return run.exit_code


def _base_config(path: Path, config: MlopsConfig, by_name: bool) -> MlopsConfig | None:
    """The base branch's config of this model: None when the base has no config, or (several models,
    or a model picked by name) no model of this name yet."""
    if not config_exists(path):
        return None
    models = load_models(path, root=config.root)
    if len(models) == 1 and not by_name:
        return models[0]  # one model on both sides: judged by the base's config even if renamed
    return next((base for base in models if base.model.name == config.model.name), None)
