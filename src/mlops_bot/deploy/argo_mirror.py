"""The Argo Rollouts engine's decisions, pure: Argo does the stepping, we mirror it.

With `rollout.engine: argo` the deploy job does not walk the steps itself (`deploy/rollout.py`):
it applies a Rollout whose canary steps and AnalysisTemplate are the plan's (`targets/argo.py`),
then watches the Rollout's status. What that status means is decided here, over plain data:

- `view_of`: the parts of a Rollout (a dict as the API server returns it) that matter: the version
  it runs, whether Argo's controller has seen its latest spec, the step, pauses, abort, completion;
- `start`: a deploy job (re)starting for a version: resume the running rollout, a first deploy, a
  rollback (Argo's own full promotion skips the steps, written by `watch` once Argo's controller
  has seen the rollback's spec), the stable version again, or a new canary (superseding a running
  one);
- `watch`: one tick: /abort, /rollback and /promote requests become Argo's own fields (effects
  `ArgoCommand`), and each new step, pause, abort or completion Argo reports becomes one GitHub
  deployment status, the rollout state (in the cluster) and, at the end, the registry stage. An
  inconclusive analysis pauses the Rollout until a person /promotes or /aborts (Argo's semantics,
  `rollout.on_inconclusive: pause`, reported at once as a `paused` status while the job keeps
  watching for that request); with `on_inconclusive: abort` the job writes Argo's abort instead.

The effects are carried out in order by `deploy/argo_controller.py`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from mlops_bot.deploy.control import ControlRequest
from mlops_bot.deploy.plan import RolloutPlan
from mlops_bot.deploy.rollout import (
    BOT_ACTOR,
    TERMINAL,
    AssignStage,
    CreateDeployment,
    Phase,
    ReportStatus,
    RetireLive,
    RolloutState,
    Say,
    Transition,
    is_older,
    is_resume,
)
from mlops_bot.deploy.routing import VersionRef
from mlops_bot.forge.base import DeploymentState

ArgoAction = Literal["apply", "abort", "promote", "promote-full"]


class ArgoCommand(BaseModel):
    """Apply the Rollout of `ref` (canary analysis against `stable_version`), or write one of Argo's
    control fields (abort, promote, full promote) on the live Rollout."""

    kind: Literal["argo"] = "argo"
    action: ArgoAction
    ref: VersionRef | None = None
    stable_version: str = ""


ArgoEffect = ArgoCommand | CreateDeployment | ReportStatus | Say | RetireLive | AssignStage


class ArgoDecision(BaseModel):
    state: RolloutState
    effects: list[ArgoEffect] = Field(default_factory=list)


class ArgoView(BaseModel):
    """What a Rollout's status says, as far as a deploy needs it."""

    exists: bool = False
    version: str | None = None
    observed: bool = False  # Argo's controller has seen the current spec generation
    phase: str = ""
    message: str = ""
    step_index: int | None = None
    steps: int = 0
    aborted: bool = False
    pause_reasons: list[str] = Field(default_factory=list)
    finished: bool = False  # every step done and the new pods are the stable ones
    analysis: str = ""  # the phase of the analysis run Argo reports (background or step), if any
    analysis_message: str = ""


def view_of(rollout: dict[str, Any] | None) -> ArgoView:
    """The view of a Rollout object (None: it does not exist). Pure."""
    if rollout is None:
        return ArgoView()
    metadata = rollout.get("metadata") or {}
    status = rollout.get("status") or {}
    steps = (((rollout.get("spec") or {}).get("strategy") or {}).get("canary") or {}).get("steps") or []
    index = status.get("currentStepIndex")
    observed = str(status.get("observedGeneration", "")) == str(metadata.get("generation", "-"))
    phase = str(status.get("phase") or "")
    done = index is not None and int(index) >= len(steps)
    stable, current = status.get("stableRS"), status.get("currentPodHash")
    canary = status.get("canary") or {}
    run = canary.get("currentBackgroundAnalysisRunStatus") or canary.get("currentStepAnalysisRunStatus") or {}
    return ArgoView(
        exists=True, version=(metadata.get("annotations") or {}).get("mlops-bot/version"), observed=observed,
        phase=phase, message=str(status.get("message") or ""),
        step_index=None if index is None else int(index), steps=len(steps),
        aborted=bool(status.get("abort")) or phase == "Degraded",
        pause_reasons=[str(c.get("reason", "")) for c in status.get("pauseConditions") or []],
        finished=observed and phase == "Healthy" and done and bool(stable) and stable == current,
        analysis=str(run.get("status") or ""), analysis_message=str(run.get("message") or ""),
    )


class _Run:
    def __init__(self, state: RolloutState, now: float) -> None:
        self.state = state.model_copy(deep=True)
        self.now = now
        self.effects: list[ArgoEffect] = []

    def record(self, phase: Phase, message: str, status: DeploymentState | None = None) -> None:
        s = self.state
        s.phase = phase
        s.history.append(Transition(at=self.now, phase=phase, version=s.canary.version if s.canary else None,
                                    message=message))
        self.effects.append(Say(message=message) if status is None else ReportStatus(state=status,
                                                                                       message=message))

    def mirror(self, key: str, message: str, phase: Phase = "progressing") -> None:
        """A deployment status for what Argo reports, once per distinct step/pause."""
        if self.state.mirrored != key:
            self.state.mirrored = key
            self.record(phase, message, "in_progress")

    def done(self) -> ArgoDecision:
        return ArgoDecision(state=self.state, effects=self.effects)


def start(plan: RolloutPlan, state: RolloutState, ref: VersionRef, *, now: float,
          rollout_id: str) -> ArgoDecision:
    """A deploy job for `ref.version` begins (or resumes)."""
    run = _Run(state, now)
    s = run.state
    version = ref.version
    if is_resume(state, version):
        run.effects.append(Say(message=f"resuming the rollout of {version} (Argo Rollouts), "
                                       f"{s.mirrored or 'waiting for its status'}"))
        run.effects.append(ArgoCommand(action="apply", ref=ref,
                                       stable_version=s.stable.version if s.stable else version))
        return run.done()
    if s.phase not in TERMINAL and s.canary is not None:
        run.record("superseded", f"rollout of {s.canary.version} superseded by {version}", "inactive")
    if s.stable is not None and s.stable.version == version:
        s.canary, s.weight = None, 0
        s.phase = "promoted" if s.phase in ("superseded", "progressing", "paused") else s.phase
        run.effects.append(Say(message=f"{version} is already the stable version"))
        return run.done()
    s.rollout_id = rollout_id
    s.canary, s.step, s.reason, s.mirrored, s.promote_requested = ref, 0, "", "", False
    s.last_progress = s.step_started = now
    s.rollback = s.stable is not None and is_older(version, s.stable.version)
    stable_version = s.stable.version if s.stable else version
    if s.stable is None:
        s.weight = 100
        run.effects.append(CreateDeployment(version=version, description=f"first deploy of {version}"))
        run.effects.append(ArgoCommand(action="apply", ref=ref, stable_version=version))
        run.record("progressing", f"first deploy of {version}: waiting for its pods", "in_progress")
        return run.done()
    if s.rollback:
        s.weight = 100
        run.effects.append(CreateDeployment(version=version, description=f"rollback to {version}"))
        # Argo's full promotion is written on the first tick Argo's controller has seen this spec
        # (`watch`): before that its status still names the stable pods as the current ones.
        run.effects.append(ArgoCommand(action="apply", ref=ref, stable_version=stable_version))
        run.record("progressing", f"rolling back from {stable_version} to {version} (steps skipped)",
                   "in_progress")
        return run.done()
    s.weight = plan.steps[0].weight
    run.effects.append(CreateDeployment(version=version, description=f"canary {version}: {plan.describe()}"))
    run.effects.append(ReportStatus(state="queued", message=f"canary {version} queued"))
    run.effects.append(ArgoCommand(action="apply", ref=ref, stable_version=stable_version))
    run.record("progressing", f"canary {version} applied as an Argo Rollout: {plan.describe()}",
               "in_progress")
    return run.done()


def _argo_step(plan: RolloutPlan, index: int | None) -> int:
    """Our step for Argo's step index: each plan step is a setWeight then a pause."""
    return min(max(0, (index or 0) // 2), len(plan.steps) - 1)


def watch(plan: RolloutPlan, state: RolloutState, view: ArgoView, requests: list[ControlRequest], *,
          now: float) -> ArgoDecision:
    """One tick of a rollout Argo is stepping."""
    run = _Run(state, now)
    s = run.state
    if s.phase in TERMINAL or s.canary is None:
        return run.done()
    version = s.canary.version
    back_to = s.stable.version if s.stable else None
    for request in requests:
        s.handled_status_id = max(s.handled_status_id, request.status_id)
    for request in requests:
        if request.action in ("abort", "rollback"):
            run.effects.append(ArgoCommand(action="abort"))
            phase: Phase = "aborted" if request.action == "abort" else "rolled_back"
            verb = "aborted" if request.action == "abort" else "rolled back"
            _finish_failed(run, phase, f"{verb} by @{request.actor}: Argo Rollouts aborted {version}, "
                                       f"all traffic back to {back_to or 'the previous pods'}")
            return run.done()
        run.effects.append(ArgoCommand(action="promote"))
        run.effects.append(Say(message=f"/promote by @{request.actor}: Argo Rollouts told to go on"))
    if view.exists and view.version not in (None, version):
        run.record("superseded", f"the Rollout now runs {view.version}, not {version}: another deploy "
                                 "took over", "inactive")
        return run.done()
    if not view.exists or not view.observed:
        if now - s.last_progress > plan.progress_deadline:
            what = "does not exist" if not view.exists else "was not picked up by Argo Rollouts' controller"
            run.effects.append(ArgoCommand(action="abort"))
            _finish_failed(run, "aborted", f"the Rollout of {version} {what} within the progress deadline "
                                           f"({plan.progress_deadline:g}s): is the controller running?")
        return run.done()
    if view.aborted:
        _finish_failed(run, "aborted", _abort_reason(plan, version, view)[:300])
        return run.done()
    if view.finished:
        _finish_promoted(run)
        return run.done()
    s.last_progress = now
    if s.rollback and not s.promote_requested:
        s.promote_requested = True
        run.effects.append(ArgoCommand(action="promote-full"))
    if s.stable is None or s.rollback:
        run.mirror("deploying", f"{'rollback to' if s.rollback else 'first deploy of'} {version}: "
                   f"waiting for its pods ({view.phase or 'pending'})")
        return run.done()
    step = _argo_step(plan, view.step_index)
    s.step, s.weight = step, plan.steps[step].weight
    label = f"canary {version} {plan.step_label(step)}"
    if "InconclusiveAnalysisRun" in view.pause_reasons:
        promoted = any(request.action == "promote" for request in requests)
        if plan.on_inconclusive == "abort" and not promoted:  # Argo pauses for a person; abort instead
            run.effects.append(ArgoCommand(action="abort"))
            why = f"inconclusive (Argo analysis) at {label}: {_inconclusive_detail(view)}"
            _finish_failed(run, "aborted", f"{why}; rollout.on_inconclusive: abort"[:300])
            return run.done()
        run.mirror(f"{step}:inconclusive", f"{label}: paused, inconclusive (Argo analysis: no data or "
                   "neither pass nor fail); /promote to go on or /abort", "paused")
    elif view.pause_reasons and plan.steps[step].hold == "manual" and (view.step_index or 0) % 2 == 1:
        run.mirror(f"{step}:manual", f"{label}: waiting for /promote")
    else:
        run.mirror(f"{step}", label)
    return run.done()


def _inconclusive_detail(view: ArgoView) -> str:
    """What Argo says about an inconclusive analysis (the run's message, else the Rollout's)."""
    return view.analysis_message or view.message or "no data, or neither the success nor the failure " \
        "condition held"


def _abort_reason(plan: RolloutPlan, version: str, view: ArgoView) -> str:
    """Why Argo aborted by itself. A failed analysis keeps its message on every sync; a progress
    deadline shows as "ProgressDeadlineExceeded: ... timed out progressing." on the first only, then
    as a bare "RolloutAborted" (rollout/sync.go): an abort without a failed analysis is read as the
    deadline (an abort through kubectl, outside the bot, reads so too)."""
    message = view.message or "aborted"
    deadline = f"{version} not ready within the progress deadline ({plan.progress_deadline:g}s)"
    if "ProgressDeadlineExceeded" in message or "timed out progressing" in message:
        return f"{deadline}: {message}"
    if view.analysis in ("Failed", "Error") or "assessed Failed" in message or "assessed Error" in message:
        return f"gate failed (Argo analysis): {message if 'assessed' in message else view.analysis_message}"
    return (f"Argo Rollouts aborted {version} ({message}) with no failed analysis: {deadline} passed, "
            "or it was aborted outside the bot")


def _finish_failed(run: _Run, phase: Phase, message: str) -> None:
    s = run.state
    assert s.canary is not None
    failed = s.canary.version
    s.canary, s.weight, s.reason = None, 0, message
    run.record(phase, message, "failure")
    if s.stable is not None:
        run.effects.append(AssignStage(version=s.stable.version,
                                       trailers={"Rollback-Of": failed, "Reason": message[:100]},
                                       only_if_stage_is=failed))


def _finish_promoted(run: _Run) -> None:
    s = run.state
    assert s.canary is not None
    previous = s.stable.version if s.stable else None
    s.previous_stable, s.stable, s.canary, s.weight = previous, s.canary, None, 0
    version = s.stable.version
    if previous is None:
        run.record("promoted", f"{version} deployed as the first stable version (Argo Rollouts: Healthy)",
                   "success")
        trailers = {"Deployed-By": BOT_ACTOR}
    elif s.rollback:
        run.record("rolled_back", f"rolled back from {previous} to {version} (steps skipped)", "success")
        trailers = {"Rollback-Of": previous}
    else:
        run.record("promoted", f"Argo Rollouts completed every step; {version} promoted to 100% "
                               f"(was {previous})", "success")
        trailers = {"Promoted-From": previous, "Rollout": s.rollout_id}
    s.rollback = False
    run.effects += [RetireLive(), AssignStage(version=version, trailers=trailers)]
