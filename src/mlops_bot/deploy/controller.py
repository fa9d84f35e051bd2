"""The rollout controller: the edge around the pure state machine in `deploy/rollout.py`.

It loads the state, observes the world (clock, the target's health and metrics, /abort /rollback
/promote requests on the rollout's GitHub deployment, the registry stage it watches), hands that to
`rollout.begin` / `rollout.advance`, carries the returned effects out in order (routing, server
recovery, deployment statuses, registry stage moves) and stores the new state; `run()` repeats
that every `plan.interval` seconds until a terminal phase. The state store is a JSON file here
(atomic writes under a lock) or the cluster (`targets/kserve.py`), re-read on every tick, so a
controller killed mid-rollout resumes where it was, and a second controller started for a newer
version takes over: the old one sees a different `rollout_id` and stops. Clock and sleep are passed
in, so tests drive hours of holds in milliseconds.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, TextIO

from mlops_bot.deploy.control import pending_requests
from mlops_bot.deploy.rollout import (
    BOT_ACTOR,
    TERMINAL,
    ApplyRouting,
    AssignStage,
    CreateDeployment,
    Decision,
    Observation,
    Phase,
    RecoverServer,
    ReportStatus,
    Restart,
    RetireLive,
    RolloutState,
    Say,
    Transition,
    advance,
    begin,
    is_resume,
    resume,
    routing_of,
)
from mlops_bot.deploy.routing import VersionRef
from mlops_bot.deploy.sources import ModelSource
from mlops_bot.deploy.targets.base import Target
from mlops_bot.errors import MlopsError
from mlops_bot.forge.base import Forge
from mlops_bot.locked_files import file_lock, replace_atomically
from mlops_bot.model_signature import SignatureMismatch, input_difference

__all__ = ["TERMINAL", "Phase", "RolloutController", "RolloutState", "StateStore", "Transition"]


def timed_out(version: str, state: RolloutState, timeout: float) -> str:
    """The deploy's --timeout error: where the rollout stands, with its last status (a paused
    rollout's says what it waits for: /promote or /abort). The rollout itself goes on. Pure."""
    last = state.history[-1].message if state.history else ""
    return f"rollout of {version} still {state.phase} after {timeout:g}s" + (f": {last}" if last else "")


class StateConflict(MlopsError):
    """A store refused a write because the state changed since it was read."""


class RolloutStore(Protocol):
    """Where a model's rollout state lives: a file (`StateStore`) or the cluster."""

    def locked(self) -> contextlib.AbstractContextManager[None]: ...

    def load(self, model: str) -> RolloutState: ...

    def save(self, state: RolloutState) -> None: ...


class StateStore:
    """One JSON file per model, written atomically under an exclusive lock."""

    def __init__(self, directory: Path, model: str) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.path = self.directory / f"{model.replace('/', '_')}.rollout.json"
        self._lock_path = self.path.with_suffix(".lock")

    def locked(self) -> contextlib.AbstractContextManager[None]:
        return file_lock(self._lock_path)

    def load(self, model: str) -> RolloutState:
        if not self.path.exists():
            return RolloutState(model=model)
        return RolloutState.model_validate_json(self.path.read_text(encoding="utf-8"))

    def save(self, state: RolloutState) -> None:
        replace_atomically(self.path, state.model_dump_json(indent=1), prefix=".rollout.")


class RolloutController:
    """Drives one model's rollouts on one target. `registry` (optional) records promotions and
    rollbacks; `forge` (optional) records deployment statuses and carries /abort, /rollback and
    /promote requests."""

    def __init__(
        self,
        name: str,
        plan: Any,
        target: Target,
        source: ModelSource,
        store: RolloutStore,
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

    # ------------------------------------------------------------------------------ helpers
    def _say(self, message: str) -> None:
        if self.out is not None:
            print(f"[{self.name}] {message}", file=self.out, flush=True)

    def state(self) -> RolloutState:
        with self.store.locked():
            return self.store.load(self.name)

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
            self._say(f"registry not updated: {exc}")

    def _retire_live(self, state: RolloutState) -> None:
        if self.forge is not None and state.live_deployment_id not in (None, state.deployment_id):
            with contextlib.suppress(MlopsError):
                self.forge.create_deployment_status(state.live_deployment_id, "inactive",
                                                    description="replaced by a newer deployment")
        state.live_deployment_id = state.deployment_id

    # ------------------------------------------------------------------- observe and carry out
    def _observe(self, state: RolloutState) -> Observation:
        now = self.clock()
        requests = []
        if self.forge is not None and state.deployment_id is not None:
            requests = pending_requests(self.forge, state.deployment_id, state.handled_status_id)
        alive, ready, detail = True, True, ""
        health = getattr(self.target, "health", None)
        if health is not None and state.stable is not None:
            alive, ready, detail = health(routing_of(self.plan, state))
        metrics = None
        if alive:
            try:
                metrics = self.target.metrics()
            except MlopsError as exc:
                detail = detail or str(exc)
        return Observation(now=now, metrics=metrics, alive=alive, ready=ready, detail=detail,
                           requests=requests, newer=self._stage_version(state))

    def _stage_version(self, state: RolloutState) -> str | None:
        if self.watch_stage is None or self.registry is None or state.canary is None:
            return None
        with contextlib.suppress(MlopsError):
            current = self.registry.stage_version(self.name, self.watch_stage)
            return None if current is None else str(current)
        return None

    def _apply(self, routing: Any) -> None:
        """Set the routing; a target whose server died gets it re-created first (so an abort
        reaches stable even when the server had gone)."""
        try:
            self.target.apply(routing)
        except MlopsError:
            recover = getattr(self.target, "recover", None)
            if recover is None:
                raise
            recover(routing)

    def _carry_out(self, decision: Decision) -> tuple[RolloutState, str | None]:
        """Do what the decision says, in order; returns the state (with the deployment ids the
        forge handed out) and a version to restart with, if any."""
        state = decision.state
        restart = None
        for effect in decision.effects:
            if isinstance(effect, ApplyRouting):
                self._apply(effect.routing)
            elif isinstance(effect, RecoverServer):
                recover = getattr(self.target, "recover", None)
                try:
                    if recover is None:
                        self.target.apply(effect.routing)
                    else:
                        recover(effect.routing)
                except MlopsError as exc:
                    self._say(f"model server not back yet: {exc}")
            elif isinstance(effect, CreateDeployment):
                self._new_deployment(state, effect.version, effect.description)
            elif isinstance(effect, ReportStatus):
                self._say(effect.message)
                if self.forge is not None and state.deployment_id is not None:
                    text = effect.message if len(effect.message) <= 140 else effect.message[:139] + "…"
                    self.forge.create_deployment_status(state.deployment_id, effect.state, description=text,
                                                        environment_url=self.target.endpoint)
            elif isinstance(effect, Say):
                self._say(effect.message)
            elif isinstance(effect, RetireLive):
                self._retire_live(state)
            elif isinstance(effect, AssignStage):
                if effect.only_if_stage_is is None or self._registry_stage() == effect.only_if_stage_is:
                    self._assign(effect.version, effect.trailers)
            elif isinstance(effect, Restart):
                restart = effect.version
        return state, restart

    def _settle(self, state: RolloutState) -> RolloutState:
        """Right after a step's routing went out: when the target is ready at once (a local
        server), take the step's baselines now rather than on the next tick."""
        if not state.settling or state.phase in TERMINAL:
            return state
        seen = self._observe(state).model_copy(update={"requests": [], "newer": None})
        state, _ = self._carry_out(advance(self.plan, state, seen))
        return state

    def _refuse_other_inputs(self, state: RolloutState, ref: VersionRef) -> None:
        """Before anything changes: a version whose input signature differs from stable's would
        refuse (or misread) the requests stable's clients send, as a canary and as stable alike."""
        if state.stable is None or state.stable.version == ref.version:
            return
        from mlops_bot.deploy.loading import version_signature

        stable = self._ref(state.stable.version)
        difference = input_difference(version_signature(stable.path), version_signature(ref.path),
                                      (f"stable {stable.version}", ref.version))
        if difference is not None:
            raise SignatureMismatch(
                f"{self.name} {ref.version} takes other inputs than the stable version {stable.version}, "
                f"so it cannot be rolled out in its place: {difference}. Deploy it under another model "
                "name, or keep its inputs"
            )

    # ------------------------------------------------------------------------- entry points
    def start(self, version: str) -> RolloutState:
        """Begin (or resume) rolling out `version`. A newer version than the running canary
        supersedes it and restarts the steps; an older version than stable is a rollback and skips
        the steps; the version already being rolled out resumes where it was."""
        with self.store.locked():
            state = self.store.load(self.name)
            now = self.clock()
            if is_resume(state, version):
                decision = resume(self.plan, state, now=now)
            else:
                ref = self._ref(version)
                self._refuse_other_inputs(state, ref)
                decision = begin(self.plan, state, ref, now=now, rollout_id=uuid.uuid4().hex)
            self.rollout_id = decision.state.rollout_id
            state, _ = self._carry_out(decision)
            state = self._settle(state)
            self.store.save(state)
            return state

    def tick(self) -> RolloutState:
        """One pass: observe, decide (pure), carry the effects out, store."""
        with self.store.locked():
            state = self.store.load(self.name)
            if self.rollout_id and state.rollout_id != self.rollout_id:
                return state.model_copy(update={"phase": "superseded"})  # another controller owns it now
            if state.phase in TERMINAL or (state.canary is None and not state.settling):
                return state
            state, restart = self._carry_out(advance(self.plan, state, self._observe(state)))
            state = self._settle(state)
            try:
                self.store.save(state)
            except StateConflict:
                # A newer controller wrote first (a cluster store): re-read and defer to it.
                latest = self.store.load(self.name)
                if latest.rollout_id != self.rollout_id:
                    return latest.model_copy(update={"phase": "superseded"})
                raise
        if restart is not None:
            return self.start(restart)
        return state

    # ------------------------------------------------------------------------------ the loop
    def run(self, version: str, *, timeout: float | None = None,
            on_tick: Callable[[RolloutState], None] | None = None) -> RolloutState:
        """start() then tick() every `plan.interval` seconds until the rollout ends."""
        state = self.start(version)
        deadline = None if timeout is None else self.clock() + timeout
        while state.phase not in TERMINAL:
            self.sleep(self.plan.interval if self.plan.interval > 0 else 0.05)
            state = self.tick()
            if on_tick is not None:
                on_tick(state)
            if deadline is not None and self.clock() > deadline:
                raise MlopsError(timed_out(version, state, timeout or 0.0))
        return state
