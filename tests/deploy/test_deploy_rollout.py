"""The pure rollout state machine with plain data: no server, no clock, no forge."""

from __future__ import annotations

from mlops_bot.config import RolloutGates, RolloutSection, RolloutStep
from mlops_bot.deploy.control import ControlRequest
from mlops_bot.deploy.metrics import MetricsSnapshot, VersionStats
from mlops_bot.deploy.plan import plan_from_config
from mlops_bot.deploy.rollout import (
    ApplyRouting,
    AssignStage,
    Observation,
    RecoverServer,
    ReportStatus,
    Restart,
    RolloutState,
    advance,
    begin,
)
from mlops_bot.deploy.routing import VersionRef

PLAN = plan_from_config(RolloutSection(
    steps=[RolloutStep(weight=10, hold=60), RolloutStep(weight=50, hold=60)],
    gates=RolloutGates(min_success_rate=0.95, max_p99_latency_ms=None, max_p99_latency_ratio=None,
                       max_prediction_drift=None, min_requests=10),
    interval=5, progress_deadline=600))
V1, V2 = VersionRef(version="v1.0.0", path="/m/1"), VersionRef(version="v1.1.0", path="/m/2")


def snapshot(canary: int, errors: int = 0, stable: int = 0) -> MetricsSnapshot:
    return MetricsSnapshot(model="m", versions={"v1.1.0": VersionStats(requests=canary, errors=errors),
                                                "v1.0.0": VersionStats(requests=stable)})


def canary_state(now: float = 100.0) -> RolloutState:
    first = begin(PLAN, RolloutState(model="m"), V1, now=0, rollout_id="a").state
    return begin(PLAN, first, V2, now=now, rollout_id="b").state


def test_begin_applies_the_first_step_and_waits_for_ready_before_the_hold() -> None:
    decision = begin(PLAN, begin(PLAN, RolloutState(model="m"), V1, now=0, rollout_id="a").state, V2,
                     now=100, rollout_id="b")
    routes = [e.routing for e in decision.effects if isinstance(e, ApplyRouting)]
    assert [(r.stable.version, r.canary and r.canary.version, r.weight) for r in routes] == [
        ("v1.0.0", "v1.1.0", 10)]
    assert [e.state for e in decision.effects if isinstance(e, ReportStatus)] == ["queued", "in_progress"]
    state = decision.state
    assert state.settling and state.canary_baseline is None
    # Not ready: nothing moves, no baseline.
    waiting = advance(PLAN, state, Observation(now=130, metrics=snapshot(3), ready=False))
    assert waiting.state.settling and waiting.effects == []
    # Ready: baselines from that moment's counters, the hold starts now.
    ready = advance(PLAN, state, Observation(now=140, metrics=snapshot(3, stable=7))).state
    assert not ready.settling and ready.step_started == 140
    assert ready.canary_baseline is not None and ready.canary_baseline.requests == 3
    assert ready.stable_baseline is not None and ready.stable_baseline.requests == 7


def test_never_ready_aborts_at_the_progress_deadline_with_the_targets_reason() -> None:
    state = canary_state()
    seen = Observation(now=100 + 601, metrics=snapshot(0), ready=False, detail="revision v2 not ready")
    decision = advance(PLAN, state, seen)
    assert decision.state.phase == "aborted"
    assert "not ready within the progress deadline" in decision.state.reason
    assert "revision v2 not ready" in decision.state.reason
    applied = next(e for e in decision.effects if isinstance(e, ApplyRouting)).routing
    assert (applied.canary, applied.weight) == (None, 0)
    assert [e.only_if_stage_is for e in decision.effects if isinstance(e, AssignStage)] == ["v1.1.0"]


def test_unreadable_metrics_are_inconclusive_never_a_pass() -> None:
    state = advance(PLAN, canary_state(), Observation(now=100, metrics=snapshot(0))).state
    decision = advance(PLAN, state, Observation(now=1000 - 300, metrics=None, detail="prometheus down"))
    assert decision.state.phase == "paused" and decision.state.step == 0
    assert decision.state.decision is not None and decision.state.decision.outcome == "inconclusive"
    assert "prometheus down" in decision.state.decision.summary()


def test_gates_pass_then_next_step_then_promotion() -> None:
    state = advance(PLAN, canary_state(), Observation(now=100, metrics=snapshot(0))).state
    state = advance(PLAN, state, Observation(now=161, metrics=snapshot(20))).state
    assert (state.step, state.weight, state.settling) == (1, 50, True)
    state = advance(PLAN, state, Observation(now=162, metrics=snapshot(20))).state
    decision = advance(PLAN, state, Observation(now=223, metrics=snapshot(40)))
    assert decision.state.phase == "promoted" and decision.state.stable == V2
    assert decision.state.canary is None


def test_failed_gate_and_requests_abort() -> None:
    state = advance(PLAN, canary_state(), Observation(now=100, metrics=snapshot(0))).state
    assert advance(PLAN, state, Observation(now=120, metrics=snapshot(10, errors=5))).state.phase == "aborted"
    abort = ControlRequest(status_id=9, action="abort", actor="alice")
    decision = advance(PLAN, state, Observation(now=120, metrics=snapshot(1), requests=[abort]))
    assert decision.state.phase == "aborted" and decision.state.handled_status_id == 9
    assert "@alice" in decision.state.reason


def test_newer_version_restarts() -> None:
    state = advance(PLAN, canary_state(), Observation(now=100, metrics=snapshot(0))).state
    effects = advance(PLAN, state, Observation(now=110, metrics=snapshot(1), newer="v1.2.0")).effects
    assert [e.version for e in effects if isinstance(e, Restart)] == ["v1.2.0"]
    assert not [e for e in advance(PLAN, state, Observation(now=110, newer="v1.0.0")).effects
                if isinstance(e, Restart)]


def test_dead_server_is_recovered_then_the_step_starts_over() -> None:
    state = advance(PLAN, canary_state(), Observation(now=100, metrics=snapshot(0))).state
    down = advance(PLAN, state, Observation(now=150, alive=False, detail="process gone"))
    assert down.state.server_down_since == 150 and down.state.phase == "progressing"
    assert [e.routing.weight for e in down.effects if isinstance(e, RecoverServer)] == [10]
    still = advance(PLAN, down.state, Observation(now=400, alive=False))
    assert still.state.server_down_since == 150 and any(isinstance(e, RecoverServer) for e in still.effects)
    back = advance(PLAN, still.state, Observation(now=410, metrics=snapshot(0))).state
    assert back.server_down_since is None and back.step_started == 410 and back.step == 0
    assert back.canary_baseline is not None and back.canary_baseline.requests == 0
    gone = advance(PLAN, down.state, Observation(now=150 + 601, alive=False))
    assert gone.state.phase == "aborted" and "not back within the progress deadline" in gone.state.reason


def test_a_first_deploy_succeeds_only_once_the_target_is_ready() -> None:
    from mlops_bot.deploy.rollout import is_resume, resume

    first = begin(PLAN, RolloutState(model="m"), V1, now=0, rollout_id="a")
    assert first.state.phase == "progressing" and first.state.settling
    assert [e.state for e in first.effects if isinstance(e, ReportStatus)] == ["in_progress"]
    assert is_resume(first.state, "v1.0.0")  # a re-run of the job waits on, it does not start over
    assert [e.kind for e in resume(PLAN, first.state, now=5).effects] == ["say", "apply"]
    waiting = advance(PLAN, first.state, Observation(now=10, ready=False, detail="revision not ready"))
    assert waiting.state.phase == "progressing" and waiting.effects == []
    ready = advance(PLAN, first.state, Observation(now=20))
    assert ready.state.phase == "promoted" and not ready.state.settling
    assert [(e.state, e.message) for e in ready.effects if isinstance(e, ReportStatus)] == [
        ("success", "v1.0.0 deployed as the first stable version")]
    assert next(e for e in ready.effects if isinstance(e, AssignStage)).version == "v1.0.0"
    late = advance(PLAN, first.state, Observation(now=601, ready=False, detail="crash-looping"))
    assert late.state.phase == "aborted"
    assert late.state.reason == "v1.0.0 not ready within the progress deadline (600s): crash-looping"
    down = advance(PLAN, first.state, Observation(now=30, alive=False, ready=False))
    assert [e.kind for e in down.effects] == ["recover"]
