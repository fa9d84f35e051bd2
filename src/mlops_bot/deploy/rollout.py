"""The rollout state machine, pure: (plan, state, observation) -> (new state, effects).

Nothing here reads the clock, the network, a file or the environment: the controller
(`deploy/controller.py`) observes the world (time, the target's health and metrics, control
requests from the bot, the registry stage), calls `begin` or `advance`, carries the effects out in
order and stores the state. So every rule of a canary (steps, holds, gates, failure limit,
progress deadline, inconclusive, manual promote, abort, rollback, supersede, a dead model server)
is tested with plain data.

A step's hold starts only once the target reports the step's routing ready (KServe: the revision
is ready and the traffic split is in place; a local server: at once) and the step's baselines are
taken from that moment's counters. A model server that dies mid-step is recovered (effect
`RecoverServer`); when it answers again the step resumes with fresh baselines and a fresh hold (its
counters restarted from zero). If it cannot be brought back within the progress deadline, traffic
goes back to stable and the rollout is aborted: a canary never keeps traffic unsupervised longer.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from mlops_bot.deploy.control import ControlRequest
from mlops_bot.deploy.gates import GateDecision, GateResult, evaluate_gates
from mlops_bot.deploy.metrics import MetricsSnapshot, VersionStats
from mlops_bot.deploy.plan import RolloutPlan
from mlops_bot.deploy.routing import RoutingRequest, VersionRef
from mlops_bot.forge.base import DeploymentState

Phase = Literal["idle", "progressing", "paused", "promoted", "aborted", "rolled_back", "superseded"]
TERMINAL: frozenset[str] = frozenset({"idle", "promoted", "aborted", "rolled_back", "superseded"})
BOT_ACTOR = "mlops-bot"


class Transition(BaseModel):
    at: float
    phase: str
    version: str | None
    message: str


class RolloutState(BaseModel):
    """Everything needed to resume a rollout after a restart."""

    model: str
    rollout_id: str = ""
    phase: Phase = "idle"
    stable: VersionRef | None = None
    canary: VersionRef | None = None
    previous_stable: str | None = None
    step: int = 0
    weight: int = 0
    step_started: float = 0.0
    last_progress: float = 0.0
    failures: int = 0
    canary_baseline: VersionStats | None = None
    stable_baseline: VersionStats | None = None
    deployment_id: int | None = None
    live_deployment_id: int | None = None
    handled_status_id: int = 0
    promote_requested: bool = False
    waiting_notice: str = ""
    decision: GateDecision | None = None
    reason: str = ""
    # The step's routing is applied but its hold has not started: waiting for the target to report
    # it ready (then baselines are taken). `settle_stable` also re-takes the stable baseline.
    settling: bool = False
    settle_stable: bool = False
    server_down_since: float | None = None
    # Engines that step by themselves (Argo Rollouts, deploy/argo_mirror.py): the last engine status
    # mirrored into a deployment status, and whether the rollout is a rollback (steps skipped).
    mirrored: str = ""
    rollback: bool = False
    history: list[Transition] = Field(default_factory=list)


# ------------------------------------------------------------------------------------- effects
class ApplyRouting(BaseModel):
    kind: Literal["apply"] = "apply"
    routing: RoutingRequest


class RecoverServer(BaseModel):
    """Restart or re-create the dead model server, then serve `routing` again."""

    kind: Literal["recover"] = "recover"
    routing: RoutingRequest


class CreateDeployment(BaseModel):
    """A new GitHub deployment for `version`; the controller records its id in the state."""

    kind: Literal["deployment"] = "deployment"
    version: str
    description: str


class ReportStatus(BaseModel):
    """A deployment status on the rollout's current deployment (and a line in the log)."""

    kind: Literal["status"] = "status"
    state: DeploymentState
    message: str


class Say(BaseModel):
    kind: Literal["say"] = "say"
    message: str


class RetireLive(BaseModel):
    """Mark the deployment that was live until now inactive; the current one becomes live."""

    kind: Literal["retire"] = "retire"


class AssignStage(BaseModel):
    """Point the registry stage at `version` (unless it already is); with `only_if_stage_is`, only
    when the stage currently names that version (an abort undoes a stage the bot had moved)."""

    kind: Literal["assign"] = "assign"
    version: str
    trailers: dict[str, str]
    only_if_stage_is: str | None = None


class Restart(BaseModel):
    """Begin the rollout of `version` (a newer version arrived in the watched stage)."""

    kind: Literal["restart"] = "restart"
    version: str


Effect = (ApplyRouting | RecoverServer | CreateDeployment | ReportStatus | Say | RetireLive | AssignStage
          | Restart)


class Observation(BaseModel):
    """What the controller saw on this tick. `metrics` is None when they could not be read."""

    now: float
    metrics: MetricsSnapshot | None = None
    alive: bool = True
    ready: bool = True
    detail: str = ""
    requests: list[ControlRequest] = Field(default_factory=list)
    newer: str | None = None


class Decision(BaseModel):
    state: RolloutState
    effects: list[Effect] = Field(default_factory=list)


def is_older(candidate: str, than: str) -> bool:
    from mlops_bot.registry.tags import SemVer

    if not (SemVer.is_valid(candidate) and SemVer.is_valid(than)):
        return False
    return SemVer.parse(candidate) < SemVer.parse(than)


def routing_of(plan: RolloutPlan, state: RolloutState) -> RoutingRequest:
    assert state.stable is not None
    return RoutingRequest(stable=state.stable, canary=state.canary,
                          weight=state.weight if state.canary else 0,
                          shadow=plan.shadow and state.canary is not None)


def is_resume(state: RolloutState, version: str) -> bool:
    if state.phase in TERMINAL:
        return False
    if state.canary is None:  # a first deploy waiting for its version to be ready
        return state.settling and state.stable is not None and state.stable.version == version
    return state.canary.version == version


class _Run:
    """Collects effects while one transition is worked out on a private copy of the state."""

    def __init__(self, plan: RolloutPlan, state: RolloutState, now: float) -> None:
        self.plan = plan
        self.state = state.model_copy(deep=True)
        self.now = now
        self.effects: list[Effect] = []

    def record(self, phase: Phase, message: str, status: DeploymentState | None = None) -> None:
        state = self.state
        state.phase = phase
        state.history.append(Transition(at=self.now, phase=phase,
                                        version=state.canary.version if state.canary else None,
                                        message=message))
        if status is None:
            self.effects.append(Say(message=message))
        else:
            self.effects.append(ReportStatus(state=status, message=message))

    def apply(self) -> None:
        self.effects.append(ApplyRouting(routing=routing_of(self.plan, self.state)))

    def settle(self, *, stable_too: bool = False) -> None:
        """The step's routing is applied: hold and baselines wait for the target to be ready."""
        self.state.settling = True
        self.state.settle_stable = self.state.settle_stable or stable_too
        self.state.step_started = self.now
        self.state.failures = 0
        self.state.waiting_notice = ""

    def done(self) -> Decision:
        return Decision(state=self.state, effects=self.effects)


# --------------------------------------------------------------------------------------- begin
def begin(plan: RolloutPlan, state: RolloutState, ref: VersionRef, *, now: float,
          rollout_id: str) -> Decision:
    """Start rolling out `ref` (the caller checked `is_resume` first). The first version becomes
    stable at once; an older version than stable is a rollback that skips the steps; the stable
    version again is a no-op; anything else starts the canary steps, superseding a running one."""
    run = _Run(plan, state, now)
    s = run.state
    version = ref.version
    if s.stable is None:
        # Nothing to compare with: no steps, but success only once the target reports it ready.
        run.state = s = RolloutState(model=s.model, rollout_id=rollout_id, stable=ref, history=s.history)
        run.effects.append(CreateDeployment(version=version, description=f"first deploy of {version}"))
        run.apply()
        run.settle()
        s.last_progress = now
        run.record("progressing", f"first deploy of {version}: waiting for it to be ready", "in_progress")
        return run.done()
    if s.phase not in TERMINAL and s.canary is not None:
        run.record("superseded", f"rollout of {s.canary.version} superseded by {version}", "inactive")
    if s.stable.version == version and s.phase in TERMINAL | {"superseded"}:
        s.canary, s.weight, s.settling = None, 0, False
        run.apply()
        run.effects.append(Say(message=f"{version} is already the stable version"))
        return run.done()
    s.rollout_id = rollout_id
    s.failures = 0
    s.promote_requested = False
    s.decision = None
    s.reason = ""
    s.waiting_notice = ""
    s.server_down_since = None
    if is_older(version, s.stable.version):
        previous = s.stable.version
        run.effects.append(CreateDeployment(version=version, description=f"rollback to {version}"))
        s.previous_stable, s.stable, s.canary, s.weight, s.settling = previous, ref, None, 0, False
        run.apply()
        run.record("rolled_back", f"rolled back from {previous} to {version} (steps skipped)", "success")
        run.effects += [RetireLive(), AssignStage(version=version, trailers={"Rollback-Of": previous})]
        return run.done()
    s.canary = ref
    s.step = 0
    s.weight = plan.steps[0].weight
    s.canary_baseline = s.stable_baseline = None
    run.effects.append(CreateDeployment(version=version, description=f"canary {version}: {plan.describe()}"))
    run.effects.append(ReportStatus(state="queued", message=f"canary {version} queued"))
    run.apply()
    run.settle(stable_too=True)
    s.last_progress = now
    run.record("progressing", f"canary {version} {plan.step_label(0)}", "in_progress")
    return run.done()


def resume(plan: RolloutPlan, state: RolloutState, *, now: float) -> Decision:
    """A controller (re)started on the rollout in progress: serve its routing again and take the
    step from where it was."""
    run = _Run(plan, state, now)
    if run.state.canary is None:
        assert run.state.stable is not None
        run.effects.append(Say(message=f"resuming the first deploy of {run.state.stable.version}"))
    else:
        run.effects.append(Say(message=f"resuming the rollout of {run.state.canary.version} "
                                       f"at step {run.state.step + 1}"))
    run.apply()
    return run.done()


# ------------------------------------------------------------------------------------- advance
def advance(plan: RolloutPlan, state: RolloutState, seen: Observation) -> Decision:
    """One tick: control requests, a newer version, the server's health, readiness, the gates."""
    run = _Run(plan, state, seen.now)
    s = run.state
    if s.phase in TERMINAL or s.stable is None:
        return run.done()
    if s.canary is None:
        return _first_deploy(run, seen) if s.settling else run.done()
    for request in seen.requests:
        s.handled_status_id = max(s.handled_status_id, request.status_id)
    for request in seen.requests:
        if request.action == "abort":
            _abort(run, "aborted", f"aborted by @{request.actor}: all traffic back to {s.stable.version}")
            return run.done()
        if request.action == "rollback":
            _abort(run, "rolled_back", f"rolled back by @{request.actor} to {s.stable.version}")
            return run.done()
        s.promote_requested = True
    if seen.newer is not None and seen.newer not in (s.canary.version, s.stable.version) \
            and is_older(s.canary.version, seen.newer):
        run.effects.append(Say(message=f"a newer version {seen.newer} arrived: restarting the steps"))
        run.effects.append(Restart(version=seen.newer))
        return run.done()
    if not seen.alive:
        return _server_down(run, seen)
    if s.server_down_since is not None:
        s.server_down_since = None
        run.settle(stable_too=True)
        run.record(s.phase, f"model server back; {plan.step_label(s.step)} resumed with a fresh hold",
                   "in_progress")
    if s.phase == "paused":
        if s.promote_requested:
            _advance(run, "resumed by /promote")
        return run.done()
    step = plan.steps[s.step]
    # Like Argo Rollouts: time spent waiting for a person does not count against the deadline.
    if (step.hold != "manual" or s.settling) and seen.now - s.last_progress > plan.progress_deadline:
        if s.settling:
            detail = f": {seen.detail}" if seen.detail else ""
            _abort(run, "aborted", f"{s.canary.version} not ready within the progress deadline "
                   f"({plan.progress_deadline:g}s){detail}")
        else:
            _abort(run, "aborted", f"progress deadline ({plan.progress_deadline:g}s) exceeded")
        return run.done()
    if s.settling:
        if not seen.ready or seen.metrics is None:
            return run.done()
        s.canary_baseline = seen.metrics.stats(s.canary.version)
        if s.settle_stable or s.stable_baseline is None:
            s.stable_baseline = seen.metrics.stats(s.stable.version)
        s.settling = s.settle_stable = False
        s.step_started = seen.now
        return run.done()
    elapsed = seen.now - s.step_started
    if elapsed < plan.initial_delay:
        return run.done()
    if seen.metrics is None:  # unreadable metrics are never a pass
        reason = seen.detail or "metrics unavailable"
        decision = GateDecision(outcome="inconclusive", results=[GateResult(
            gate="metrics", outcome="inconclusive", message=reason[:120])])
    else:
        canary = seen.metrics.stats(s.canary.version).minus(s.canary_baseline)
        stable = seen.metrics.stats(s.stable.version).minus(s.stable_baseline)
        decision = evaluate_gates(canary, stable, plan.gates)
    s.decision = decision
    if decision.outcome == "fail":
        s.failures += 1
        if s.failures >= plan.failure_limit:
            _abort(run, "aborted", f"gate failed: {decision.summary(100)}")
            return run.done()
    if step.hold == "manual":
        if s.promote_requested:
            _advance(run, "promoted manually")
        elif not s.waiting_notice:
            s.waiting_notice = "manual"
            run.record("progressing", f"{plan.step_label(s.step)}: waiting for /promote", "in_progress")
        return run.done()
    if elapsed < step.hold:
        return run.done()
    if decision.outcome == "pass":
        _advance(run, "gates passed")
    elif decision.outcome == "inconclusive":
        if plan.on_inconclusive == "abort":
            _abort(run, "aborted", f"inconclusive: {decision.summary(100)}")
        else:
            run.record("paused", f"paused, inconclusive ({decision.summary(60)}); "
                       "/promote to go on or /abort", "in_progress")
    return run.done()


def _first_deploy(run: _Run, seen: Observation) -> Decision:
    """The first version: promoted once the target reports it ready; aborted when it is not ready
    within the progress deadline (there is nothing to send traffic back to)."""
    s = run.state
    assert s.stable is not None
    for request in seen.requests:
        s.handled_status_id = max(s.handled_status_id, request.status_id)
    version = s.stable.version
    if seen.alive and seen.ready:
        s.settling = False
        run.record("promoted", f"{version} deployed as the first stable version", "success")
        run.effects += [RetireLive(), AssignStage(version=version, trailers={"Deployed-By": BOT_ACTOR})]
    elif seen.now - s.last_progress > run.plan.progress_deadline:
        s.settling = False
        detail = f": {seen.detail}" if seen.detail else ""
        s.reason = (f"{version} not ready within the progress deadline "
                    f"({run.plan.progress_deadline:g}s){detail}")
        run.record("aborted", s.reason, "failure")
    elif not seen.alive:
        run.effects.append(RecoverServer(routing=routing_of(run.plan, s)))
    return run.done()


def _server_down(run: _Run, seen: Observation) -> Decision:
    s = run.state
    assert s.canary is not None and s.stable is not None
    if s.server_down_since is None:
        s.server_down_since = seen.now
        detail = f" ({seen.detail})" if seen.detail else ""
        run.effects.append(Say(message=f"model server down{detail}: bringing it back"))
    elif seen.now - s.server_down_since > run.plan.progress_deadline:
        _abort(run, "aborted", f"model server not back within the progress deadline "
               f"({run.plan.progress_deadline:g}s): all traffic back to {s.stable.version}")
        return run.done()
    run.effects.append(RecoverServer(routing=routing_of(run.plan, s)))
    return run.done()


def _advance(run: _Run, why: str) -> None:
    s = run.state
    assert s.canary is not None
    s.promote_requested = False
    s.phase = "progressing"
    s.last_progress = run.now
    if s.step + 1 >= len(run.plan.steps):
        _promote(run, why)
        return
    s.step += 1
    s.weight = run.plan.steps[s.step].weight
    run.apply()
    run.settle()
    label = run.plan.step_label(s.step)
    run.record("progressing", f"{why}; canary {s.canary.version} {label}", "in_progress")


def _promote(run: _Run, why: str) -> None:
    s = run.state
    assert s.canary is not None and s.stable is not None
    previous = s.stable.version
    s.previous_stable, s.stable, s.canary, s.weight, s.settling = previous, s.canary, None, 0, False
    run.apply()
    run.record("promoted", f"{why}; {s.stable.version} promoted to 100% (was {previous})", "success")
    trailers = {"Promoted-From": previous, "Rollout": s.rollout_id}
    run.effects += [RetireLive(), AssignStage(version=s.stable.version, trailers=trailers)]


def _abort(run: _Run, phase: Phase, message: str) -> None:
    """All traffic to stable at once; failure status; no retry."""
    s = run.state
    assert s.canary is not None and s.stable is not None
    failed = s.canary.version
    s.canary, s.weight, s.settling, s.server_down_since = None, 0, False, None
    run.apply()
    s.reason = message
    run.record(phase, message, "failure")
    trailers = {"Rollback-Of": failed, "Reason": message[:100]}
    run.effects.append(AssignStage(version=s.stable.version, trailers=trailers, only_if_stage_is=failed))
