"""Demo chapter "monitor": production drifts, the monitor notices, retraining comes back as a PR.

After the rollout, three hours of ordinary traffic and one hour of a shifted population are logged
(the production model, fetched from its release, makes the predictions), late labels arrive, the
monitor check runs, opens the model's issue and dispatches retraining; the retraining run then
opens a pull request in the local forge. Every step is a public function of mlops_bot.monitor.
"""

from __future__ import annotations

import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from mlops_bot.config import load_config
from mlops_bot.demo import dataset
from mlops_bot.demo.project import MODEL_NAME
from mlops_bot.model_file import load_verified
from mlops_bot.monitor.feedback import attach_labels
from mlops_bot.monitor.log import PredictionLog, read_predictions
from mlops_bot.monitor.monitor import run_monitor
from mlops_bot.monitor.render import plot_timeline, render_monitor
from mlops_bot.monitor.retrain import run_retrain
from mlops_bot.monitor.triggers import apply_trigger
from mlops_bot.registry.registry import Registry

if TYPE_CHECKING:
    from mlops_bot.demo import DemoContext

HOUR = 3600.0
ROWS_PER_HOUR = 400


def run(ctx: DemoContext) -> None:
    ctx.chapter("Monitor: production traffic drifts, an issue opens, retraining comes back as a PR")
    config_path = Path(ctx.state.get("config_path", ctx.repo / ".github" / "mlops.yml"))
    config = load_config(config_path, root=ctx.repo, model=ctx.state.get("model_name", MODEL_NAME))
    name = config.model.name
    registry = Registry(ctx.repo, forge=ctx.forge, policy=config.registry)
    stage = config.rollout.stage
    version = registry.stage_version(name, stage)
    if version is None:
        version = ctx.state.get("registry_version") or registry.latest_version(name)
        if version is None:
            ctx.say("no registered model to monitor; skipping this chapter")
            return
        # The rollout chapter normally leaves the model in production; stand in for it.
        for step in config.registry.stages:
            if registry.stage_version(name, step) != version:
                registry.assign(name, step, version=version, actor=ctx.forge.actor,
                                actor_permission="admin", gates_passed=True, push=True)
        ctx.say(f"{name} {version} assigned to {stage} (standing in for the rollout)")

    with tempfile.TemporaryDirectory(prefix="demo-model-") as tmp:
        folder = registry.download(name, version, Path(tmp))
        model = load_verified(folder / "model.skops", registry.checksums_of(name, version))
    features = list(config.data.features or [])
    log_dir = ctx.workdir / "predictions"
    now = time.time()
    hours = [(0.0, 11), (0.0, 12), (0.0, 13), (0.9, 14)]  # (shift, seed): the last hour drifts
    shifted_truth: dict[str, int] = {}
    with PredictionLog(log_dir, flush_rows=200, flush_seconds=0) as log:
        for k, (shift, seed) in enumerate(hours):
            frame = dataset.generate(ROWS_PER_HOUR, seed=seed, shift=shift, id_start=1_000_000 * (k + 1))
            predictions = model.predict(frame[features])
            start = now - (len(hours) - k) * HOUR
            rows = frame[features].to_dict("records")
            for i, (row, pred) in enumerate(zip(rows, predictions, strict=True)):
                request_id = f"req-{int(frame[config.data.id].iloc[i])}" if config.data.id else f"req-{k}-{i}"
                log.record(request_id, name, version, {str(k): v for k, v in row.items()}, pred,
                           timestamp=start + i * HOUR / ROWS_PER_HOUR)
                if shift:
                    shifted_truth[request_id] = int(frame[config.data.target].iloc[i])
    ctx.say(f"logged {len(hours) * ROWS_PER_HOUR} predictions of {name} {version} to {log_dir} "
            f"(the last hour from a shifted population: older, lower incomes, more debt)")

    result = attach_labels(log_dir, shifted_truth.items())
    ctx.say(f"feedback: {result.matched} late labels attached by request id")

    report = run_monitor(config, repo=ctx.repo, forge=ctx.forge, stage=stage, now=now, model=name,
                         window=HOUR, log_dir=log_dir, history=3)
    out = ctx.workdir / "monitor"
    out.mkdir(parents=True, exist_ok=True)
    plot_timeline(report, out / "timeline.png")
    markdown = render_monitor(report, plot="timeline.png")
    (out / "report.md").write_text(markdown + "\n", encoding="utf-8")
    ctx.say(f"monitor: status {report.status}; {report.rows} predictions in the last hour")
    for reason in report.reasons:
        ctx.say(f"  - {reason}")
    ctx.say(f"report and timeline plot: {out / 'report.md'}, {out / 'timeline.png'}")

    outcome = apply_trigger(ctx.forge, report, markdown, now=now, cooldown=config.monitor.cooldown,
                            event_type=config.monitor.retrain_event)
    if outcome.issue is not None:
        ctx.say(f"issue #{outcome.issue.number} [{', '.join(outcome.issue.labels)}]: {outcome.issue.title}")
    ctx.say(f"trigger: {outcome.decision.reason}")
    if not outcome.dispatched:
        return
    dispatch = ctx.forge.dispatches()[-1]
    ctx.say(f"repository_dispatch '{dispatch['event_type']}' sent for "
            f"{dispatch['client_payload']['model']} (the retraining workflow listens for it)")

    # What the retraining workflow does when the dispatch arrives.
    labeled = read_predictions(log_dir, since=now - HOUR, until=now, model=name)
    stamp = datetime.fromtimestamp(now, UTC).strftime("%Y%m%dT%H%M%SZ")
    retrained = run_retrain(ctx.repo, ctx.forge, stamp=stamp, log=labeled, reason="; ".join(report.reasons),
                            issue=outcome.issue.number if outcome.issue else None,
                            remote=config.registry.remote, model=name)
    ctx.say(f"retraining: {retrained.new_rows} fresh labeled rows appended ({retrained.rows} in total) "
            f"as {retrained.data_path}")
    ctx.say(f"pull request #{retrained.pull_request} from {retrained.branch}: validation runs on it like "
            "on any PR, and a person decides whether to promote")
    again = apply_trigger(ctx.forge, report, markdown, now=now + 600, cooldown=config.monitor.cooldown,
                          event_type=config.monitor.retrain_event)
    ctx.say(f"ten minutes later the signal is still there: {again.decision.reason}")
    ctx.state["monitor_issue"] = outcome.issue.number if outcome.issue else None
    ctx.state["retrain_pr"] = retrained.pull_request
