"""`mlops-bot monitor`, `mlops-bot feedback` and `mlops-bot retrain`: production decay checks, late
labels, and the retraining run. Argument parsing only; the work is in `mlops_bot.monitor`."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mlops_bot.config import DEFAULT_CONFIG_PATH, load_models, parse_duration, select_model
from mlops_bot.errors import ConfigError, DataError


def register(subparsers: Any) -> None:
    mon = subparsers.add_parser("monitor", help="check the production model for drift and decay")
    # `mlops-bot monitor check ...` (the drift-check action's spelling) is the same command.
    mon.add_argument("action", nargs="?", choices=("check",), default="check", help=argparse.SUPPRESS)
    mon.add_argument("--model", help="model name (default: model.name from the config)")
    mon.add_argument("--stage", default="production")
    mon.add_argument("--window", help="how far back to look, e.g. 24h (default: monitor.window)")
    mon.add_argument("--history", type=int, default=6, help="earlier windows to show in the timeline")
    mon.add_argument("--format", choices=("json", "markdown"), default="markdown")
    mon.add_argument("--output", help="directory for report.json, report.md and timeline.png")
    mon.add_argument("--config", default=DEFAULT_CONFIG_PATH)
    mon.add_argument("--repo", default=".", help="the git repository holding the registry tags")
    mon.add_argument("--log-dir", "--current", dest="log_dir",
                     help="prediction log directory (default: monitor.log_dir)")
    mon.add_argument("--log-source", dest="log_source",
                     help="where production publishes its prediction log (a hosted runner has none): "
                          "release:TAG/ASSET, an https:// archive, an fsspec URL or a directory")
    mon.add_argument("--trigger", action="store_true",
                     help="open/update the model's issue and dispatch retraining when decayed")
    mon.add_argument("--exit-code", dest="exit_code", action="store_true",
                     help="exit 1 when the model decayed (default: 0 whenever the check ran)")
    mon.add_argument("--dispatch", action="store_true", help="same as --trigger --exit-code")
    mon.add_argument("--now", type=float, help=argparse.SUPPRESS)  # fixed clock for tests and demos
    mon.set_defaults(func=run_monitor_command)

    fb = subparsers.add_parser("feedback", help="attach true labels to logged predictions by request id")
    fb.add_argument("--labels", required=True, help="CSV/Parquet file with id,label columns")
    fb.add_argument("--id-column", dest="id_column", default="id")
    fb.add_argument("--label-column", dest="label_column", default="label")
    fb.add_argument("--log-dir", dest="log_dir", help="prediction log directory (default: monitor.log_dir)")
    fb.add_argument("--model", help="which model, when the config declares several")
    fb.add_argument("--config", default=DEFAULT_CONFIG_PATH)
    fb.set_defaults(func=run_feedback_command)

    rt = subparsers.add_parser("retrain", help="train on fresh data and open a pull request")
    source = rt.add_mutually_exclusive_group()
    source.add_argument("--data", help="fresh training table (with the target column)")
    source.add_argument("--from-log", dest="from_log", action="store_true",
                        help="use the labeled predictions of the last window (default when no --data)")
    rt.add_argument("--window", help="for --from-log: how far back (default: monitor.window)")
    rt.add_argument("--replace", action="store_true", help="train on the fresh data only (default: append)")
    rt.add_argument("--model", help="which model, when the config declares several")
    rt.add_argument("--config", default=DEFAULT_CONFIG_PATH, help="path relative to --repo")
    rt.add_argument("--repo", default=".")
    rt.add_argument("--log-dir", dest="log_dir")
    rt.add_argument("--base", default="main")
    rt.add_argument("--remote", help="default: registry.remote from the config")
    rt.add_argument("--reason", default="")
    rt.add_argument("--issue", type=int)
    rt.add_argument("--event", help="a repository_dispatch event JSON file (default: $GITHUB_EVENT_PATH "
                    "when it holds one): fills --reason and --issue from client_payload")
    rt.add_argument("--now", type=float, help=argparse.SUPPRESS)
    rt.set_defaults(func=run_retrain_command)


def _config(path: str, repo: str = ".", model: str | None = None) -> Any:
    """The config of `model` (a config with one model: that model, whatever the name)."""
    full = Path(path) if Path(path).is_absolute() else Path(repo) / path
    models = load_models(full)
    return models[0] if len(models) == 1 else select_model(models, model, str(full))


def _seconds(value: str | None, what: str) -> float | None:
    if value is None:
        return None
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise ConfigError("command line", what, str(exc)) from None


def run_monitor_command(args: argparse.Namespace) -> int:
    from mlops_bot.forge.select import forge_from_env
    from mlops_bot.monitor.monitor import run_monitor
    from mlops_bot.monitor.render import plot_timeline, render_monitor
    from mlops_bot.monitor.triggers import apply_trigger

    config = _config(args.config, args.repo, args.model)
    if args.dispatch:
        args.trigger = args.exit_code = True
    forge = forge_from_env(os.environ)
    if getattr(args, "log_source", None):
        import tempfile

        from mlops_bot.monitor.log_source import fetch_prediction_log

        fetched = Path(tempfile.mkdtemp(prefix="mlops-prediction-log-"))
        args.log_dir = str(fetch_prediction_log(args.log_source, fetched, forge=forge))
    elif not args.log_dir and not config.resolve(config.monitor.log_dir).is_dir():
        from mlops_bot.monitor.log_source import NOT_CONFIGURED

        raise DataError(f"{NOT_CONFIGURED}; monitor.log_dir {config.monitor.log_dir} does not exist here")
    if args.log_dir and not Path(args.log_dir).is_dir():
        raise DataError(f"--log-dir/--current {args.log_dir} must be a prediction log directory")
    now = args.now if args.now is not None else time.time()
    report = run_monitor(
        config, repo=Path(args.repo), forge=forge, stage=args.stage, now=now, model=args.model,
        window=_seconds(args.window, "--window"), log_dir=Path(args.log_dir) if args.log_dir else None,
        history=args.history,
    )
    plot_name = None
    if args.output:
        out = Path(args.output)
        out.mkdir(parents=True, exist_ok=True)
        if report.timeline:
            plot_timeline(report, out / "timeline.png")
            plot_name = "timeline.png"
    markdown = render_monitor(report, plot=plot_name)
    if args.output:
        (out / "report.json").write_text(json.dumps(report.to_json_dict(), indent=2) + "\n", encoding="utf-8")
        (out / "report.md").write_text(markdown + "\n", encoding="utf-8")
    if args.trigger:
        outcome = apply_trigger(forge, report, render_monitor(report), now=now,
                                cooldown=config.monitor.cooldown, event_type=config.monitor.retrain_event)
        where = f"issue #{outcome.issue.number}" if outcome.issue else "no issue"
        print(f"mlops-bot: {where}; {outcome.decision.reason}", file=sys.stderr)
    if args.format == "json":
        print(json.dumps(report.to_json_dict(), indent=2))
    else:
        print(markdown)
    return 1 if args.exit_code and report.decayed else 0


def run_feedback_command(args: argparse.Namespace) -> int:
    from mlops_bot.monitor.feedback import attach_labels, labels_from_file
    from mlops_bot.monitor.log import list_segments

    log_dir = args.log_dir
    if log_dir is None:
        config = _config(args.config, model=args.model)
        log_dir = config.resolve(config.monitor.log_dir)
    if not list_segments(log_dir):
        # A mistyped path would otherwise start a new, empty label store and "match" nothing.
        raise DataError(f"{log_dir} holds no prediction log (predictions-NNNNNN.sqlite): check --log-dir "
                        "or monitor.log_dir")
    labels = labels_from_file(args.labels, args.id_column, args.label_column)
    result = attach_labels(log_dir, labels)
    print(json.dumps(result.model_dump()))
    return 0


def _dispatch_payload(path: str | None) -> dict[str, Any]:
    source = path or os.environ.get("GITHUB_EVENT_PATH")
    if not source or not Path(source).is_file():
        return {}
    try:
        event = json.loads(Path(source).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(f"event file {source} cannot be read: {exc}") from None
    payload = event.get("client_payload") if isinstance(event, dict) else None
    return payload if isinstance(payload, dict) else {}


def run_retrain_command(args: argparse.Namespace) -> int:
    from mlops_bot.forge.select import forge_from_env
    from mlops_bot.monitor.log import read_predictions
    from mlops_bot.monitor.retrain import run_retrain

    repo = Path(args.repo)
    payload = _dispatch_payload(args.event)
    # Several models: the one --model names, else the one the dispatch names (`/retrain model=NAME`).
    config = _config(args.config, args.repo, args.model or payload.get("model") or None)
    forge = forge_from_env(os.environ)
    # A dispatch for another model (`/retrain model=NAME`) must not retrain this config's model.
    wanted = payload.get("model")
    if wanted and wanted != config.model.name:
        raise DataError(f"the dispatch asks to retrain model {str(wanted)[:100]!r}, but {args.config} "
                        f"trains {config.model.name!r}; dispatch with model={config.model.name}")
    reasons = payload.get("reasons")  # the drift check's list; the bot's /retrain sends one `reason`
    reasons = reasons if isinstance(reasons, list) else [payload.get("reason") or ""]
    reason = args.reason or "; ".join(str(r) for r in reasons if r)
    issue = args.issue if args.issue is not None else payload.get("issue")
    now = args.now if args.now is not None else time.time()
    log = None
    if not args.data:
        window = _seconds(args.window, "--window") or config.monitor.window
        log_dir = Path(args.log_dir) if args.log_dir else config.resolve(config.monitor.log_dir)
        log = read_predictions(log_dir, since=now - window, until=now, model=config.model.name)
    result = run_retrain(
        repo, forge, stamp=datetime.fromtimestamp(now, UTC).strftime("%Y%m%dT%H%M%SZ"),
        config_path=args.config, data=Path(args.data) if args.data else None, log=log,
        replace=args.replace, base=args.base, remote=args.remote or config.registry.remote,
        reason=reason, issue=int(issue) if isinstance(issue, int | str) and str(issue).isdigit() else None,
        model=config.model.name,
    )
    print(json.dumps(result.model_dump()))
    return 0
