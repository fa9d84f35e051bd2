"""`mlops-bot drift` and `mlops-bot fairness`: read tables, call the analysis package, print JSON
or a markdown section. Exit 0 always when the analysis ran (gates live in `validate`), 2 on errors."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, TextIO

from mlops_bot.config import DriftSection, FairnessSection, load_config
from mlops_bot.dataset import read_table, require_columns
from mlops_bot.errors import DataError


def register(subparsers: Any) -> None:
    drift = subparsers.add_parser("drift", help="data drift between a reference and a current table")
    drift.add_argument("--reference", required=True, help="CSV/Parquet table or reference_profile.json")
    drift.add_argument("--current", required=True, help="CSV/Parquet table")
    drift.add_argument("--format", choices=("json", "markdown"), default="json")
    drift.add_argument("--config", help="mlops.yml whose `drift:` section sets overrides (optional)")
    drift.add_argument("--model", help="whose section, when the config declares several models")
    drift.add_argument("--columns", help="comma-separated columns to check (default: all shared)")
    drift.add_argument(
        "--correction", choices=("none", "bonferroni", "benjamini-hochberg"), help="overrides the config"
    )
    drift.add_argument("--progress", action="store_true", help="show progress on stderr even without a TTY")
    drift.add_argument("--output", help="write the result here instead of stdout")
    drift.set_defaults(func=run_drift)

    check = subparsers.add_parser(
        "data-check", help="data validation of a table against a data_schema.json or a reference table"
    )
    check.add_argument(
        "--reference", required=True, help="data_schema.json (registered) or a CSV/Parquet table"
    )
    check.add_argument("--current", required=True, help="CSV/Parquet table to check")
    check.add_argument("--train", help="training table: also check the current table (a holdout) for leakage")
    check.add_argument(
        "--config", help="mlops.yml whose `gates.data`, data.target and data.id apply (optional)"
    )
    check.add_argument("--model", help="whose section, when the config declares several models")
    check.add_argument("--format", choices=("json", "markdown"), default="markdown")
    check.add_argument("--output", help="write the result here instead of stdout")
    check.add_argument("--exit-code", action="store_true", help="exit 1 when a check with action fail failed")
    check.set_defaults(func=run_data_check)

    fair = subparsers.add_parser(
        "fairness", help="group fairness metrics of a model's predictions (every task)"
    )
    fair.add_argument("--predictions", required=True, help="CSV/Parquet table with labels and predictions")
    fair.add_argument("--y-true", required=True, dest="y_true")
    fair.add_argument("--y-pred", required=True, dest="y_pred")
    fair.add_argument("--sensitive", required=True, help="COL[,COL...]: intersectional groups in this order")
    fair.add_argument("--pos-label", dest="pos_label", default="1")
    fair.add_argument(
        "--task",
        choices=("auto", "binary", "multiclass", "regression"),
        default="auto",
        help="auto: binary for two labels, multiclass for more; regression must be asked for",
    )
    fair.add_argument(
        "--method",
        choices=("between_groups", "to_overall"),
        help="disparities between groups (max - min, min/max) or each group to overall "
        "(fairlearn's method); overrides the config, default between_groups",
    )
    fair.add_argument("--format", choices=("json", "markdown"), default="json")
    fair.add_argument("--config", help="mlops.yml whose `fairness:` section sets options (optional)")
    fair.add_argument("--model", help="whose section, when the config declares several models")
    fair.add_argument("--seed", type=int, default=0)
    fair.add_argument("--output", help="write the result here instead of stdout")
    fair.set_defaults(func=run_fairness)


class TerminalProgress:
    """One self-overwriting stderr line; silent unless stderr is a TTY or progress was asked for."""

    def __init__(self, label: str, stream: TextIO, enabled: bool) -> None:
        self.label, self.stream, self.enabled = label, stream, enabled

    def __call__(self, done: int, total: int, item: str) -> None:
        if not self.enabled:
            return
        end = "\n" if done == total else ""
        self.stream.write(f"\r{self.label}: {done}/{total} columns ({item[:40]})\x1b[K{end}")
        self.stream.flush()


def _emit(text: str, output: str | None) -> None:
    if output:
        Path(output).parent.mkdir(parents=True, exist_ok=True)
        Path(output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)


def run_data_check(args: argparse.Namespace) -> int:
    from mlops_bot.analysis.data_checks import run_checks
    from mlops_bot.analysis.data_schema import DataSchema, infer_schema
    from mlops_bot.config import DataGates
    from mlops_bot.report.data_checks import render_data_checks

    config = load_config(args.config, model=args.model) if args.config else None
    gates = config.data_gates if config else DataGates()
    target = config.data.target if config else None
    id_column = config.data.id if config else None
    if str(args.reference).endswith(".json"):
        schema = DataSchema.load(args.reference)
        name = f"the schema {Path(args.reference).name}"
    else:
        classification = config is not None and config.model.task == "classification"
        schema = infer_schema(
            read_table(args.reference, "reference"), target=target, classification=classification
        )
        name = f"the table {Path(args.reference).name}"
    current = read_table(args.current, "current")
    leakage = (read_table(args.train, "train"), current) if args.train else None
    report = run_checks(
        schema, {"current": current}, gates, reference_name=name, id_column=id_column, leakage=leakage
    )
    if args.format == "json":
        _emit(json.dumps(report.to_json_dict(), indent=2) + "\n", args.output)
    else:
        _emit(render_data_checks(report), args.output)
    failed = any(c.status == "fail" for c in report.checks)
    return 1 if failed and args.exit_code else 0


def run_drift(args: argparse.Namespace) -> int:
    from mlops_bot.analysis.drift_files import compute_drift_files
    from mlops_bot.analysis.profile import ReferenceProfile
    from mlops_bot.report.drift import render_drift

    settings = load_config(args.config, model=args.model).drift if args.config else DriftSection()
    if args.correction:
        settings = settings.model_copy(update={"correction": args.correction})
    reference: Any = args.reference
    if args.reference.endswith(".json"):
        reference = ReferenceProfile.load(args.reference)
    columns = [c.strip() for c in args.columns.split(",") if c.strip()] if args.columns else None
    progress = TerminalProgress("drift", sys.stderr, args.progress or sys.stderr.isatty())
    report = compute_drift_files(reference, args.current, settings, columns, progress=progress)
    if args.format == "json":
        _emit(json.dumps(report.to_json_dict(), indent=2) + "\n", args.output)
    else:
        _emit(render_drift(report), args.output)
    return 0


def _label(value: str) -> int | str:
    try:
        return int(value)
    except ValueError:
        return value


def run_fairness(args: argparse.Namespace) -> int:
    from mlops_bot.analysis.fairness import FairnessReport, compute_fairness
    from mlops_bot.analysis.fairness_tasks import (
        TaskFairnessReport,
        compute_multiclass_fairness,
        compute_regression_fairness,
    )
    from mlops_bot.report.fairness import render_fairness, render_task_fairness

    settings = load_config(args.config, model=args.model).fairness if args.config else FairnessSection()
    if args.method:
        settings = settings.model_copy(update={"method": args.method})
    frame = read_table(args.predictions, "predictions")
    sensitive = [c.strip() for c in args.sensitive.split(",") if c.strip()]
    if not sensitive:
        raise DataError("--sensitive needs at least one column name")
    require_columns(frame, [args.y_true, args.y_pred, *sensitive], f"predictions file {args.predictions}")
    task = args.task
    if task == "auto":
        labels = set(frame[args.y_true].dropna().tolist()) | set(frame[args.y_pred].dropna().tolist())
        task = "binary" if len(labels) <= 2 else "multiclass"
    report: FairnessReport | TaskFairnessReport
    if task == "binary":
        report = compute_fairness(
            frame[args.y_true],
            frame[args.y_pred],
            frame[sensitive],
            pos_label=_label(args.pos_label),
            settings=settings,
            seed=args.seed,
        )
    elif task == "multiclass":
        report = compute_multiclass_fairness(
            frame[args.y_true], frame[args.y_pred], frame[sensitive], settings=settings, seed=args.seed
        )
    else:
        report = compute_regression_fairness(
            frame[args.y_true], frame[args.y_pred], frame[sensitive], settings=settings, seed=args.seed
        )
    if args.format == "json":
        _emit(json.dumps(report.to_json_dict(), indent=2) + "\n", args.output)
    elif isinstance(report, FairnessReport):
        _emit(render_fairness(report), args.output)
    else:
        _emit(render_task_fairness(report), args.output)
    return 0
