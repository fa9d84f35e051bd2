"""Demo chapter "rollout": the PR's version reaches production as a canary under live traffic, and a
bad version is rolled back by the gates on its own.

1. The local model server starts (`mlops-bot serve`, a process on 127.0.0.1) with the version in
   production (the baseline the registry chapter registered).
2. The PR's version rolls out under generated traffic, step by step as `rollout:` in the project's
   `.github/mlops.yml` says, each step judged by the gates from the server's own metrics; after the
   last step it is promoted (the registry's production stage tag moves to it).
3. A "hotfix" registered without validation (class weights cranked up for recall) predicts default
   for nearly everyone. The prediction-drift gate fails at the first step and all traffic goes back
   to stable. Clients see no failed request in either rollout.

The server is stopped at the end of the chapter (the monitor chapter works from the registry and its
own prediction log, not from a running server).
"""

from __future__ import annotations

import json
import subprocess
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import httpx

from mlops_bot.config import MlopsConfig, RolloutGates, load_config
from mlops_bot.demo import dataset
from mlops_bot.demo.project import MODEL_NAME, git
from mlops_bot.demo.traffic import Traffic
from mlops_bot.deploy.control import request_action
from mlops_bot.deploy.controller import RolloutController, RolloutState, StateStore
from mlops_bot.deploy.gates import GateDecision
from mlops_bot.deploy.plan import RolloutPlan, plan_from_config
from mlops_bot.deploy.sources import RegistrySource
from mlops_bot.deploy.targets.local import LocalTarget
from mlops_bot.model_file import save_model
from mlops_bot.monitor.log import read_predictions
from mlops_bot.registry.artifacts import KNOWN_ASSETS
from mlops_bot.registry.registry import Registry

if TYPE_CHECKING:
    from mlops_bot.demo import DemoContext

HOTFIX_BRANCH = "hotfix-recall"
NUMERIC = list(dataset.FEATURES_NUMERIC)
CATEGORICAL = list(dataset.FEATURES_CATEGORICAL)
DEMO_MIN_REQUESTS = 10  # per step; the project's default (50) needs more traffic than a demo sends
DEMO_MAX_P99_MS = 2000.0
DEMO_MAX_P99_RATIO = 5.0
DEMO_MAX_DRIFT = 0.4
ROLLOUT_TIMEOUT = 60.0


class Progress:
    """The live progress line: rewritten in place on a terminal, one line per change otherwise.
    Transitions recorded by the controller are printed as lines of their own."""

    def __init__(self, out: TextIO, plan: RolloutPlan, load: Traffic) -> None:
        self.out = out
        self.plan = plan
        self.load = load
        self.tty = bool(getattr(out, "isatty", lambda: False)())
        self.seen = 0
        self.last = ""
        self.last_key: tuple[Any, ...] = ()
        self.width = 0

    def line(self, state: RolloutState) -> str:
        counts = " / ".join(f"{v} {n}" for v, n in sorted(self.load.versions.items()))
        step = f"step {state.step + 1}/{len(self.plan.steps)}" if state.canary else "done"
        return (f"  {step} canary {state.weight:3d}% | answered: {counts or '-'} | failed "
                f"{self.load.failures} | gates: {gate_figures(state.decision)}")

    def update(self, state: RolloutState) -> None:
        for transition in state.history[self.seen:]:
            self._clear()
            print(f"  -> {transition.message}", file=self.out, flush=True)
        self.seen = len(state.history)
        text = self.line(state)
        if self.tty:
            pad = max(self.width - len(text), 0)
            self.out.write("\r" + text + " " * pad)
            self.out.flush()
            self.width = len(text)
            return
        decision = state.decision.outcome if state.decision else None
        key = (state.phase, state.step, decision)
        if key != self.last_key:
            print(text, file=self.out, flush=True)
            self.last_key = key

    def _clear(self) -> None:
        if self.tty and self.width:
            self.out.write("\r" + " " * self.width + "\r")
            self.width = 0

    def done(self) -> None:
        if self.tty and self.width:
            self.out.write("\n")
            self.out.flush()
            self.width = 0


_FIGURES = {
    "min_requests": lambda v, t: f"{v:.0f}/{t:.0f} requests",
    "success_rate": lambda v, t: f"success {v:.0%}",
    "p99_latency": lambda v, t: f"p99 {v:.1f} ms",
    "p99_latency_ratio": lambda v, t: f"{v:.2f}x stable's",
    "prediction_drift": lambda v, t: f"drift {v:.2f}",
}


def gate_figures(decision: GateDecision | None) -> str:
    """`pass: 24/20 requests, success 100%, p99 3.2 ms, 1.10x stable's, drift 0.03`; failing gates
    are marked, gates without a figure yet left out."""
    if decision is None:
        return "waiting for the first analysis"
    parts = []
    for result in decision.results:
        show = _FIGURES.get(result.gate)
        if show is None or result.value is None:
            continue
        text = show(result.value, result.threshold or 0.0)
        parts.append(f"{text} FAILED" if result.outcome == "fail" else text)
    return f"{decision.outcome}: {', '.join(parts)}"


def demo_gates(gates: RolloutGates) -> RolloutGates:
    """The project's gates at demo scale: fewer requests per step, so the gates that compare small
    samples are loosened to match. Latency: scheduling noise on a shared machine must not fail a
    healthy canary. Prediction drift: over 10 requests the Jensen-Shannon distance of a healthy
    canary exceeds 0.2 about one time in seven (0 of 10 positives against stable's 20 % is 0.33),
    while the bad canary in this chapter scores ~0.75. Success rate stays as configured."""
    update: dict[str, Any] = {"min_requests": min(gates.min_requests, DEMO_MIN_REQUESTS)}
    if gates.max_p99_latency_ms is not None:
        update["max_p99_latency_ms"] = max(gates.max_p99_latency_ms, DEMO_MAX_P99_MS)
    if gates.max_p99_latency_ratio is not None:
        update["max_p99_latency_ratio"] = max(gates.max_p99_latency_ratio, DEMO_MAX_P99_RATIO)
    if gates.max_prediction_drift is not None:
        update["max_prediction_drift"] = max(gates.max_prediction_drift, DEMO_MAX_DRIFT)
    return gates.model_copy(update=update)


def recall_hotfix(train_csv: Path, target: str, seed: int = 0) -> Any:
    """A real, skops-loadable model that is wrong in a quiet way: the team's pipeline with the
    positive class weighted 50x, so it predicts default for nearly every applicant. Nothing crashes;
    only the prediction distribution gives it away."""
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    frame = pd.read_csv(train_csv)
    features = ColumnTransformer([
        ("numeric", StandardScaler(), NUMERIC),
        ("categorical", OneHotEncoder(handle_unknown="ignore"), CATEGORICAL),
    ])
    model = Pipeline([("features", features),
                      ("model", LogisticRegression(class_weight={0: 1, 1: 50}, max_iter=1000,
                                                   random_state=seed))])
    return model.fit(frame[NUMERIC + CATEGORICAL], frame[target])


def _register_pr_version(ctx: DemoContext, registry: Registry, name: str) -> str | None:
    """The PR's model, as the deploy workflow would find it after /promote and merge: registered
    from the PR's validation run (artifacts and verdict)."""
    head_dir = ctx.state.get("head_report_dir")
    head_sha = ctx.state.get("head_sha")
    if head_dir is None or head_sha is None or not (Path(head_dir) / "model.skops").is_file():
        return None
    head_dir = Path(head_dir)
    report_path = head_dir / "report.json"
    report = json.loads(report_path.read_text()) if report_path.is_file() else {}
    files = {n: head_dir / n for n in KNOWN_ASSETS
             if (head_dir / n).is_file()}
    event = registry.register(name, ref=head_sha, artifacts=files, push=True, actor=ctx.forge.actor,
                              trailers={"Verdict": str(report.get("verdict", "pass"))})
    ctx.say(f"registered the PR's model as {event.tag} (commit {event.commit[:8]})")
    return event.version


def _versions(ctx: DemoContext, registry: Registry, config: MlopsConfig, name: str
              ) -> tuple[str, str] | None:
    """(stable, new): stable is what production serves now (or the registered baseline); new is the
    newest registered version, registering the PR's model first if no chapter did."""
    stage = config.rollout.stage
    baseline = ctx.state.get("registry_version") or registry.stage_version(name, stage)
    if baseline is None:
        return None
    latest = registry.latest_version(name)
    new = latest if latest not in (None, baseline) else _register_pr_version(ctx, registry, name)
    if new is None:
        return None
    in_stage = registry.stage_version(name, stage)
    stable = in_stage if in_stage not in (None, new) else baseline
    # The promotion policy walks the stages in order: the new version passes through the ones
    # before production (what /promote staging does on the PR).
    for earlier in config.registry.stages[: config.registry.stages.index(stage)] \
            if stage in config.registry.stages else []:
        if registry.stage_version(name, earlier) != new:
            registry.assign(name, earlier, version=new, actor=ctx.forge.actor, actor_permission="admin",
                            push=True)
            ctx.say(f"{name} {new} assigned to {earlier}")
    return str(stable), str(new)


def _register_hotfix(ctx: DemoContext, registry: Registry, name: str, config: MlopsConfig,
                     scratch: Path) -> str:
    """Commit (without touching the working tree) and register the bad model, skipping validation."""
    model = recall_hotfix(ctx.repo / config.data.train, config.data.target)
    path = scratch / "hotfix" / "model.skops"
    save_model(model, path)
    tree = git(ctx.repo, "rev-parse", "HEAD^{tree}")
    message = "Hotfix: weight defaults 50x to catch more of them (recall)"
    sha = subprocess.run(
        ["git", "-c", "user.name=Bob Hotfix", "-c", "user.email=bob@example.com", "commit-tree", tree,
         "-p", "HEAD", "-m", message],
        cwd=ctx.repo, capture_output=True, text=True, check=True,
    ).stdout.strip()
    git(ctx.repo, "branch", "-f", HOTFIX_BRANCH, sha)
    event = registry.register(name, ref=sha, artifacts={"model.skops": path}, push=True, actor="bob",
                              trailers={"Verdict": "unvalidated"})
    return str(event.version)


def _rollout(ctx: DemoContext, controller: RolloutController, plan: RolloutPlan, endpoint: str,
             records: list[dict[str, Any]], version: str, seed: int) -> tuple[RolloutState, Traffic]:
    asked: set[str] = set()

    with Traffic(endpoint, records, threads=3, seed=seed) as load:
        progress = Progress(ctx.out, plan, load)

        def on_tick(state: RolloutState) -> None:
            progress.update(state)
            if state.phase == "paused" and state.rollout_id not in asked:
                # Too little traffic to judge (a busy machine): a person looks and says go on.
                asked.add(state.rollout_id)
                request_action(ctx.forge, plan.environment, "promote", ctx.forge.actor)
                progress.done()
                ctx.say(f"  @{ctx.forge.actor} comments /promote on the paused rollout")

        progress.seen = len(controller.state().history)
        state = controller.run(version, timeout=ROLLOUT_TIMEOUT, on_tick=on_tick)
        progress.update(state)
        progress.done()
    return state, load


def run(ctx: DemoContext) -> None:
    ctx.chapter("Rollout: canary of the new version under live traffic, then a bad canary rolled back")
    config_path = Path(ctx.state.get("config_path", ctx.repo / ".github" / "mlops.yml"))
    config = load_config(config_path, root=ctx.repo, model=ctx.state.get("model_name", MODEL_NAME))
    name = config.model.name
    registry = Registry(ctx.repo, forge=ctx.forge, policy=config.registry)
    stage = config.rollout.stage
    versions = _versions(ctx, registry, config, name)
    if versions is None:
        ctx.say("no registered versions to roll out; skipping this chapter")
        return
    stable, new = versions

    plan = plan_from_config(config.rollout, str(config_path))
    plan = plan.model_copy(update={"gates": demo_gates(plan.gates)})
    gates = plan.gates
    ctx.say(f"rollout plan ({config_path.name}): {plan.describe()}; gates: success rate >= "
            f"{gates.min_success_rate}, prediction drift <= {gates.max_prediction_drift}, p99 <= "
            f"{gates.max_p99_latency_ms:g} ms and <= {gates.max_p99_latency_ratio}x stable's, >= "
            f"{gates.min_requests} requests per step (the demo lowers the count, so the latency and "
            "drift gates are loosened to match: figures over a dozen requests are noisy)")

    state_dir = ctx.workdir / "deploy"
    log_dir = ctx.workdir / "serving-log"
    features = list(config.data.features or NUMERIC + CATEGORICAL)
    frame = dataset.generate(400, seed=303, shift=0.8, id_start=300_001)  # recent applicants
    records: list[dict[str, Any]] = frame[features].to_dict("records")  # type: ignore[assignment]
    started = time.monotonic()
    target = LocalTarget(state_dir, name, log_dir=str(log_dir))
    try:
        store = StateStore(state_dir, name)
        source = RegistrySource(registry)
        in_stage = registry.stage_version(name, stage)
        boot = RolloutController(name, plan, target, source, store, cache=state_dir / "models",
                                 forge=ctx.forge, registry=registry if in_stage in (None, stable) else None)
        boot.start(stable)
        ctx.say(f"model server up at {target.endpoint} in {time.monotonic() - started:.1f}s "
                f"(pid {target.pid}), serving {name} {stable} from the registry (checksums verified)")
        controller = RolloutController(name, plan, target, source, store, cache=state_dir / "models",
                                       forge=ctx.forge, registry=registry)

        ctx.say(f"\nrolling out {new} (the PR's model) under generated traffic:")
        first, load = _rollout(ctx, controller, plan, target.endpoint, records, new, seed=1)
        ctx.say(f"result: {first.phase}; {load.sent} requests, {load.failures} failed; "
                f"{stage} in the registry is now {registry.stage_version(name, stage)}")

        with tempfile.TemporaryDirectory(prefix="demo-hotfix-") as scratch:
            bad = _register_hotfix(ctx, registry, name, config, Path(scratch))
        ctx.say(f"\nbob registers a hotfix straight from branch {HOTFIX_BRANCH} as {bad}, without a PR "
                "(class weights 50:1 'for recall'); the deploy picks it up:")
        second, bad_load = _rollout(ctx, controller, plan, target.endpoint, records, bad, seed=2)
        ctx.say(f"result: {second.phase}; {bad_load.sent} requests, {bad_load.failures} failed; clients "
                f"answered by {', '.join(f'{v} ({n})' for v, n in sorted(bad_load.versions.items()))}; "
                f"{stage} stays {registry.stage_version(name, stage)}")

        outcomes = frame[config.data.target].astype(int).tolist()
        ids = frame[config.data.id].tolist() if config.data.id else list(range(len(frame)))
        labels = _feedback(target.endpoint, [(f"loan-{ids[i]}", records[i], outcomes[i]) for i in range(3)])
    finally:
        target.stop()

    deployments = ctx.forge.list_deployments(plan.environment)
    lines = []
    for deployment in reversed(deployments[:3]):
        statuses = ctx.forge.list_deployment_statuses(deployment.id)
        lines.append(f"#{deployment.id} {deployment.payload.get('version')}: "
                     f"{statuses[0].state if statuses else 'none'}")
    ctx.say(f"GitHub deployments in {plan.environment}: {', '.join(lines)}")
    joined = read_predictions(log_dir)
    labelled = int(joined["label"].notna().sum()) if "label" in joined else 0
    ctx.say(f"server stopped; its prediction log {log_dir} holds {len(joined)} predictions, {labelled} "
            f"with a label sent to POST /v2/feedback ({labels} matched at once, the rest on the log's flush)")
    ctx.state.update({
        "rollout_stable": stable,
        "rollout_promoted": new if first.phase == "promoted" else None,
        "rollout_phase": first.phase,
        "rollout_failed_canary": bad,
        "rollout_failed_phase": second.phase,
        "rollout_failed_reason": second.reason,
        "rollout_client_failures": load.failures + bad_load.failures,
        "rollout_requests": load.sent + bad_load.sent,
        "deploy_state_dir": state_dir,
        "serving_log_dir": log_dir,
        "model_server_url": None,  # stopped: the monitor chapter does not need a running server
    })


def _feedback(endpoint: str, applications: list[tuple[str, dict[str, Any], int]]) -> int:
    """A client scores applications under its own ids; their outcomes arrive later as labels."""
    with httpx.Client(timeout=10, trust_env=False) as client:
        for request_id, record, _ in applications:
            answer = client.post(endpoint + "/predict", json={"id": request_id, "records": [record]})
            answer.raise_for_status()
        labels = [{"id": request_id, "label": outcome} for request_id, _, outcome in applications]
        response = client.post(endpoint + "/v2/feedback", json={"labels": labels})
        response.raise_for_status()
    return int(response.json()["matched"])
