"""The rollout controller: walks the canary steps, judges each with the gates, promotes or aborts.

It is a state machine advanced by `tick()`; `run()` is just tick + sleep until a terminal phase.
The state lives in a JSON file (atomic writes under a lock) and is re-read on every tick, so a
controller killed mid-rollout resumes where it was, and a second controller started for a newer
version takes over: the old one sees a different `rollout_id` and stops. Clock and sleep are passed
in, so tests drive hours of holds in milliseconds.

Every transition becomes a GitHub deployment status (environment = `rollout.environment`, payload
`{"model", "version"}`), and the outcome goes to the registry: a promotion assigns the stage to the
new version; an abort moves the stage back to the stable version if it had already moved.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal, TextIO

from pydantic import BaseModel, Field

from mlops_bot.deploy.control import pending_requests
from mlops_bot.deploy.gates import GateDecision, evaluate_gates
from mlops_bot.deploy.metrics import VersionStats
from mlops_bot.deploy.plan import RolloutPlan
from mlops_bot.deploy.routing import RoutingRequest, VersionRef
from mlops_bot.deploy.sources import ModelSource
from mlops_bot.deploy.targets.base import Target
from mlops_bot.errors import MlopsError
from mlops_bot.forge.base import DeploymentState, Forge

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
    history: list[Transition] = Field(default_factory=list)


class StateStore:
    """One JSON file per model, written atomically under an exclusive lock."""

    def __init__(self, directory: Path, model: str) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.path = self.directory / f"{model.replace('/', '_')}.rollout.json"
        self._lock_path = self.path.with_suffix(".lock")

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        with open(self._lock_path, "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def load(self, model: str) -> RolloutState:
        if not self.path.exists():
            return RolloutState(model=model)
        return RolloutState.model_validate_json(self.path.read_text(encoding="utf-8"))

    def save(self, state: RolloutState) -> None:
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".rollout.", suffix=".json")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(state.model_dump_json(indent=1))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self.path)


def _is_older(candidate: str, than: str) -> bool:
    from mlops_bot.registry.tags import SemVer

    if not (SemVer.is_valid(candidate) and SemVer.is_valid(than)):
        return False
    return SemVer.parse(candidate) < SemVer.parse(than)


class RolloutController:
    """Drives one model's rollouts on one target. `registry` (optional) records promotions and
    rollbacks; `forge` (optional) records deployment statuses and carries /abort, /rollback and
    /promote requests."""

    def __init__(
        self,
        name: str,
        plan: RolloutPlan,
        target: Target,
        source: ModelSource,
        store: StateStore,
        *,
        cache: Path,
        forge: Forge | None = None,
        registry: Any | None = None,
        watch_stage: str | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        out: TextIO | None = None,
    ) -> None:
        self.name = name
        self.plan = plan
        self.target = target
        self.source = source
        self.store = store
        self.cache = Path(cache)
        self.forge = forge
        self.registry = registry
        self.watch_stage = watch_stage
        self.clock = clock
        self.sleep = sleep
        self.out = out
        self.rollout_id = ""
        self._pending_restart: str | None = None

    # ------------------------------------------------------------------------------ helpers
    def _say(self, message: str) -> None:
        if self.out is not None:
            print(message, file=self.out, flush=True)

    def state(self) -> RolloutState:
        with self.store.locked():
            return self.store.load(self.name)

    def _record(self, state: RolloutState, phase: Phase, message: str,
                status: DeploymentState | None = None) -> None:
        state.phase = phase
        state.history.append(Transition(at=self.clock(), phase=phase,
                                        version=state.canary.version if state.canary else None,
                                        message=message))
        self._say(f"[{self.name}] {message}")
        if status is not None and self.forge is not None and state.deployment_id is not None:
            text = message if len(message) <= 140 else message[:139] + "…"
            self.forge.create_deployment_status(state.deployment_id, status, description=text,
                                                environment_url=self.target.endpoint)

    def _routing(self, state: RolloutState) -> RoutingRequest:
        assert state.stable is not None
        return RoutingRequest(stable=state.stable, canary=state.canary,
                              weight=state.weight if state.canary else 0,
                              shadow=self.plan.shadow and state.canary is not None)

    def _ref(self, version: str) -> VersionRef:
        path = self.source.fetch(self.name, version, self.cache)
        return VersionRef(version=version, path=str(Path(path).resolve()))

    def _new_deployment(self, state: RolloutState, version: str, description: str) -> None:
        if self.forge is None:
            state.deployment_id = None
            return
        deployment = self.forge.create_deployment(
            f"{self.name}@{version}" if self._tag_exists(version) else "HEAD", self.plan.environment,
            description=description[:140], payload={"model": self.name, "version": version},
            production=self.plan.environment == "production",
        )
        state.deployment_id = deployment.id
        statuses = self.forge.list_deployment_statuses(deployment.id)
        state.handled_status_id = max((s.id for s in statuses), default=0)

    def _tag_exists(self, version: str) -> bool:
        assert self.forge is not None
        try:
            return self.forge.get_ref_sha(f"tags/{self.name}@{version}") is not None
        except MlopsError:
            return False

    def _registry_stage(self) -> str | None:
        if self.registry is None:
            return None
        try:
            value = self.registry.stage_version(self.name, self.plan.stage)
        except MlopsError:
            return None
        return None if value is None else str(value)

    def _assign(self, version: str, trailers: dict[str, str]) -> None:
        """Point the registry stage at `version` unless it already is (the bot's /promote assigns
        before the deploy starts)."""
        if self.registry is None or self._registry_stage() == version:
            return
        try:
            # Push when the repository has its remote: a stage tag left in a CI runner's clone
            # would be lost with the runner, and nobody else would see the promotion.
            push = bool(self.registry.has_remote())
            self.registry.assign(self.name, self.plan.stage, version=version, actor=BOT_ACTOR,
                                 trailers=trailers, force=True, push=push)
        except MlopsError as exc:
            self._say(f"[{self.name}] registry not updated: {exc}")

    # ------------------------------------------------------------------------- entry points
    def start(self, version: str) -> RolloutState:
        """Begin (or resume) rolling out `version`. A newer version than the running canary
        supersedes it and restarts the steps; an older version than stable is a rollback and skips
        the steps; the version already being rolled out resumes where it was."""
        with self.store.locked():
            state = self.store.load(self.name)
            now = self.clock()
            if state.phase not in TERMINAL and state.canary is not None and state.canary.version == version:
                self.rollout_id = state.rollout_id
                self._say(f"[{self.name}] resuming the rollout of {version} at step {state.step + 1}")
                self.target.apply(self._routing(state))
                self.store.save(state)
                return state
            ref = self._ref(version)
            if state.stable is None:
                state = RolloutState(model=self.name, rollout_id=uuid.uuid4().hex, stable=ref,
                                     history=state.history)
                self.rollout_id = state.rollout_id
                self._new_deployment(state, version, f"first deploy of {version}")
                self.target.apply(self._routing(state))
                self._record(state, "promoted", f"{version} deployed as the first stable version", "success")
                state.live_deployment_id = state.deployment_id
                self._assign(version, {"Deployed-By": BOT_ACTOR})
                self.store.save(state)
                return state
            if state.phase not in TERMINAL and state.canary is not None:
                old = state.canary.version
                self._record(state, "superseded", f"rollout of {old} superseded by {version}", "inactive")
            if state.stable.version == version and state.phase in TERMINAL | {"superseded"}:
                state.canary = None
                state.weight = 0
                self.target.apply(self._routing(state))
                self.rollout_id = state.rollout_id
                self.store.save(state)
                self._say(f"[{self.name}] {version} is already the stable version")
                return state
            state.rollout_id = uuid.uuid4().hex
            self.rollout_id = state.rollout_id
            state.failures = 0
            state.promote_requested = False
            state.decision = None
            state.reason = ""
            state.waiting_notice = ""
            if _is_older(version, state.stable.version):
                self._new_deployment(state, version, f"rollback to {version}")
                previous = state.stable.version
                state.previous_stable, state.stable, state.canary, state.weight = previous, ref, None, 0
                self.target.apply(self._routing(state))
                self._record(state, "rolled_back",
                             f"rolled back from {previous} to {version} (steps skipped)", "success")
                self._retire_live(state)
                self._assign(version, {"Rollback-Of": previous})
                self.store.save(state)
                return state
            state.canary = ref
            state.step = 0
            state.weight = self.plan.steps[0].weight
            self._new_deployment(state, version, f"canary {version}: {self.plan.describe()}")
            if state.deployment_id is not None and self.forge is not None:
                self.forge.create_deployment_status(state.deployment_id, "queued",
                                                    description=f"canary {version} queued")
            self.target.apply(self._routing(state))
            self._begin_step(state, now)
            state.last_progress = now
            snapshot = self.target.metrics()
            state.stable_baseline = snapshot.stats(state.stable.version)
            self._record(state, "progressing", f"canary {version} {self.plan.step_label(0)}", "in_progress")
            self.store.save(state)
            return state

    def _begin_step(self, state: RolloutState, now: float) -> None:
        assert state.canary is not None
        state.step_started = now
        state.failures = 0
        state.waiting_notice = ""
        state.canary_baseline = self.target.metrics().stats(state.canary.version)

    def tick(self) -> RolloutState:
        """One pass: act on control requests, judge the gates, move on if the step is done."""
        self._pending_restart = None
        state = self._locked_tick()
        if self._pending_restart is not None:
            return self.start(self._pending_restart)
        return state

    def _locked_tick(self) -> RolloutState:
        with self.store.locked():
            state = self.store.load(self.name)
            if self.rollout_id and state.rollout_id != self.rollout_id:
                state = state.model_copy(update={"phase": "superseded"})
                return state  # another controller owns the rollout now; do not write
            if state.phase in TERMINAL or state.canary is None:
                return state
            self._tick(state)
            self.store.save(state)
            return state

    def _tick(self, state: RolloutState) -> None:
        assert state.canary is not None and state.stable is not None
        now = self.clock()
        for request in self._requests(state):
            if request.action == "abort":
                self._abort(state, "aborted", f"aborted by @{request.actor}: all traffic back to "
                            f"{state.stable.version}")
                return
            if request.action == "rollback":
                self._abort(state, "rolled_back",
                            f"rolled back by @{request.actor} to {state.stable.version}")
                return
            state.promote_requested = True
        newer = self._newer_in_stage(state)
        if newer is not None:
            self._say(f"[{self.name}] stage {self.watch_stage} moved to {newer}: restarting the steps")
            self._pending_restart = newer
            return
        if state.phase == "paused":
            if state.promote_requested:
                self._advance(state, now, "resumed by /promote")
            return
        step = self.plan.steps[state.step]
        # Like Argo Rollouts: time spent waiting for a person does not count against the deadline.
        if step.hold != "manual" and now - state.last_progress > self.plan.progress_deadline:
            self._abort(state, "aborted", f"progress deadline ({self.plan.progress_deadline:g}s) exceeded")
            return
        elapsed = now - state.step_started
        if elapsed < self.plan.initial_delay:
            return
        snapshot = self.target.metrics()
        canary = snapshot.stats(state.canary.version).minus(state.canary_baseline)
        stable = snapshot.stats(state.stable.version).minus(state.stable_baseline)
        decision = evaluate_gates(canary, stable, self.plan.gates)
        state.decision = decision
        if decision.outcome == "fail":
            state.failures += 1
            if state.failures >= self.plan.failure_limit:
                self._abort(state, "aborted", f"gate failed: {decision.summary(100)}")
                return
        if step.hold == "manual":
            if state.promote_requested:
                self._advance(state, now, "promoted manually")
            elif not state.waiting_notice:
                state.waiting_notice = "manual"
                self._record(state, "progressing",
                             f"{self.plan.step_label(state.step)}: waiting for /promote", "in_progress")
            return
        if elapsed < step.hold:
            return
        if decision.outcome == "pass":
            self._advance(state, now, "gates passed")
        elif decision.outcome == "inconclusive":
            if self.plan.on_inconclusive == "abort":
                self._abort(state, "aborted", f"inconclusive: {decision.summary(100)}")
            else:
                state.phase = "paused"
                self._record(state, "paused", f"paused, inconclusive ({decision.summary(60)}); "
                             "/promote to go on or /abort", "in_progress")

    def _requests(self, state: RolloutState) -> list[Any]:
        if self.forge is None or state.deployment_id is None:
            return []
        found = pending_requests(self.forge, state.deployment_id, state.handled_status_id)
        if found:
            state.handled_status_id = found[-1].status_id
        return found

    def _newer_in_stage(self, state: RolloutState) -> str | None:
        if self.watch_stage is None or state.canary is None:
            return None
        current = None
        with contextlib.suppress(MlopsError):
            current = self.registry.stage_version(self.name, self.watch_stage) if self.registry else None
        serving = (state.canary.version, state.stable.version if state.stable else None)
        if current is None or current in serving:
            return None
        return str(current) if _is_older(state.canary.version, str(current)) else None

    def _advance(self, state: RolloutState, now: float, why: str) -> None:
        assert state.canary is not None
        state.promote_requested = False
        state.phase = "progressing"
        state.last_progress = now
        if state.step + 1 >= len(self.plan.steps):
            self._promote(state, why)
            return
        state.step += 1
        state.weight = self.plan.steps[state.step].weight
        self.target.apply(self._routing(state))
        self._begin_step(state, now)
        self._record(state, "progressing", f"{why}; canary {state.canary.version} "
                     f"{self.plan.step_label(state.step)}", "in_progress")

    def _promote(self, state: RolloutState, why: str) -> None:
        assert state.canary is not None and state.stable is not None
        previous = state.stable.version
        state.previous_stable, state.stable, state.canary, state.weight = previous, state.canary, None, 0
        self.target.apply(self._routing(state))
        self._record(state, "promoted", f"{why}; {state.stable.version} promoted to 100% (was {previous})",
                     "success")
        self._retire_live(state)
        self._assign(state.stable.version, {"Promoted-From": previous, "Rollout": state.rollout_id})

    def _retire_live(self, state: RolloutState) -> None:
        if self.forge is not None and state.live_deployment_id not in (None, state.deployment_id):
            with contextlib.suppress(MlopsError):
                self.forge.create_deployment_status(state.live_deployment_id, "inactive",
                                                    description="replaced by a newer deployment")
        state.live_deployment_id = state.deployment_id

    def _abort(self, state: RolloutState, phase: Phase, message: str) -> None:
        """All traffic to stable at once; failure status; no retry."""
        assert state.canary is not None and state.stable is not None
        failed = state.canary.version
        state.canary, state.weight = None, 0
        self.target.apply(self._routing(state))
        state.reason = message
        self._record(state, phase, message, "failure")
        if self._registry_stage() == failed:
            self._assign(state.stable.version, {"Rollback-Of": failed, "Reason": message[:100]})

    # ------------------------------------------------------------------------------ the loop
    def run(self, version: str, *, timeout: float | None = None,
            on_tick: Callable[[RolloutState], None] | None = None) -> RolloutState:
        """start() then tick() every `plan.interval` seconds until the rollout ends."""
        state = self.start(version)
        deadline = None if timeout is None else self.clock() + timeout
        while state.phase not in TERMINAL:
            self.sleep(min(self.plan.interval, 1.0) if self.plan.interval > 0 else 0.05)
            state = self.tick()
            if on_tick is not None:
                on_tick(state)
            if deadline is not None and self.clock() > deadline:
                raise MlopsError(f"rollout of {version} still {state.phase} after {timeout:g}s")
        return state
