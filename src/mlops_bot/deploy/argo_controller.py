"""The deploy job of the Argo Rollouts engine: the edge around `deploy/argo_mirror.py`.

Argo's controller, in the cluster, walks the steps and runs the analysis; this job applies the
Rollout, then every `plan.interval` seconds reads its status and the /abort /rollback /promote
requests on the GitHub deployment, hands them to `argo_mirror.watch` and carries the effects out:
Argo's own control fields, deployment statuses, the registry stage. The state lives in the
cluster (`ClusterStateStore`), so a re-run of the job resumes mirroring where it was, while Argo
went on stepping meanwhile.
"""

from __future__ import annotations

import uuid
from typing import Any

from mlops_bot.deploy.argo_mirror import ArgoCommand, ArgoDecision, start, view_of, watch
from mlops_bot.deploy.control import pending_requests
from mlops_bot.deploy.controller import RolloutController, StateConflict
from mlops_bot.deploy.rollout import TERMINAL, Decision, RolloutState, is_resume
from mlops_bot.deploy.targets.argo import ArgoTarget


class ArgoController(RolloutController):
    """`RolloutController`'s forge and registry edges, with Argo doing the stepping."""

    target: Any

    def _carry_out_argo(self, decision: ArgoDecision) -> RolloutState:
        state = decision.state
        argo: ArgoTarget = self.target
        for effect in decision.effects:
            if isinstance(effect, ArgoCommand):
                if effect.action == "apply":
                    assert effect.ref is not None
                    argo.deploy(effect.ref, effect.stable_version, self.plan)
                elif effect.action == "abort":
                    argo.abort()
                elif effect.action == "promote":
                    argo.promote()
                else:
                    argo.promote_full()
            else:
                state, _ = self._carry_out(Decision.model_construct(state=state, effects=[effect]))
        return state

    def start(self, version: str) -> RolloutState:
        with self.store.locked():
            state = self.store.load(self.name)
            # Fetched on a resume too: the digest is re-read on this runner, the spec stays the same.
            ref = self._ref(version)
            if not is_resume(state, version):
                self._refuse_other_inputs(state, ref)
            decision = start(self.plan, state, ref, now=self.clock(), rollout_id=uuid.uuid4().hex)
            self.rollout_id = decision.state.rollout_id
            state = self._carry_out_argo(decision)
            self.store.save(state)
            return state

    def tick(self) -> RolloutState:
        with self.store.locked():
            state = self.store.load(self.name)
            if self.rollout_id and state.rollout_id != self.rollout_id:
                return state.model_copy(update={"phase": "superseded"})
            if state.phase in TERMINAL or state.canary is None:
                return state
            requests = []
            if self.forge is not None and state.deployment_id is not None:
                requests = pending_requests(self.forge, state.deployment_id, state.handled_status_id)
            decision = watch(self.plan, state, view_of(self.target.read()), requests, now=self.clock())
            state = self._carry_out_argo(decision)
            try:
                self.store.save(state)
            except StateConflict:
                latest = self.store.load(self.name)
                if latest.rollout_id != self.rollout_id:
                    return latest.model_copy(update={"phase": "superseded"})
                raise
            return state
