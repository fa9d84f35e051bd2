"""The Argo Rollouts engine's decisions over plain data (deploy/argo_mirror.py): what a Rollout's
status means for the GitHub deployment, the rollout state and Argo's control fields. The same
decisions run against the real Argo controller in test_deploy_argo_e2e.py."""

from __future__ import annotations

from typing import Any

from mlops_bot.config import RolloutGates, RolloutSection, RolloutStep
from mlops_bot.deploy.argo_mirror import ArgoCommand, ArgoView, start, view_of, watch
from mlops_bot.deploy.control import ControlRequest
from mlops_bot.deploy.plan import plan_from_config
from mlops_bot.deploy.rollout import AssignStage, CreateDeployment, ReportStatus, RetireLive, RolloutState
from mlops_bot.deploy.routing import VersionRef

PLAN = plan_from_config(RolloutSection(
    steps=[RolloutStep(weight=10, hold=30), RolloutStep(weight=50, hold="manual")],
    gates=RolloutGates(), interval=5, progress_deadline=100))
V1, V2 = VersionRef(version="v1.0.0", path="/m/1"), VersionRef(version="v1.1.0", path="/m/2")


def rollout(version: str = "v1.1.0", *, generation: int = 2, observed: int = 2,
            **status: Any) -> dict[str, Any]:
    steps = [{"setWeight": 10}, {"pause": {"duration": "30s"}}, {"setWeight": 50}, {"pause": {}}]
    return {"metadata": {"generation": generation, "annotations": {"mlops-bot/version": version}},
            "spec": {"strategy": {"canary": {"steps": steps}}},
            "status": {"observedGeneration": str(observed), **status}}


def statuses(effects: list[Any]) -> list[tuple[str, str]]:
    return [(e.state, e.message) for e in effects if isinstance(e, ReportStatus)]


def commands(effects: list[Any]) -> list[str]:
    return [e.action for e in effects if isinstance(e, ArgoCommand)]


def canary_state() -> RolloutState:
    stable = RolloutState(model="credit", phase="promoted", stable=V1)
    return start(PLAN, stable, V2, now=0, rollout_id="r1").state


def test_view_of_reads_what_a_deploy_needs() -> None:
    assert view_of(None) == ArgoView()
    stale = view_of(rollout(generation=3, observed=2, phase="Healthy", currentStepIndex=4, stableRS="a",
                            currentPodHash="a"))
    assert stale.observed is False and stale.finished is False  # the status is the previous spec's
    done = view_of(rollout(phase="Healthy", currentStepIndex=4, stableRS="b", currentPodHash="b"))
    assert done.finished and done.version == "v1.1.0"
    mixed = rollout(phase="Healthy", currentStepIndex=4, stableRS="a", currentPodHash="b")
    assert not view_of(mixed).finished
    paused = view_of(rollout(phase="Paused", currentStepIndex=3,
                             pauseConditions=[{"reason": "CanaryPauseStep"}]))
    assert (paused.step_index, paused.pause_reasons, paused.aborted) == (3, ["CanaryPauseStep"], False)
    assert view_of(rollout(abort=True, phase="Degraded", message="RolloutAborted: x")).aborted


def test_start_a_canary_a_first_deploy_a_rollback_and_a_resume() -> None:
    first = start(PLAN, RolloutState(model="credit"), V1, now=0, rollout_id="r0")
    assert commands(first.effects) == ["apply"] and first.state.canary == V1 and first.state.stable is None
    assert first.state.phase == "progressing"  # success only once Argo reports the pods Healthy
    stable = RolloutState(model="credit", phase="promoted", stable=V1)
    canary = start(PLAN, stable, V2, now=0, rollout_id="r1")
    assert isinstance(canary.effects[0], CreateDeployment)
    apply = next(e for e in canary.effects if isinstance(e, ArgoCommand))
    assert (apply.ref, apply.stable_version) == (V2, "v1.0.0")
    assert [s for s, _ in statuses(canary.effects)] == ["queued", "in_progress"]
    resumed = start(PLAN, canary.state, V2, now=50, rollout_id="r2")
    assert resumed.state.rollout_id == "r1" and commands(resumed.effects) == ["apply"]
    assert not statuses(resumed.effects)  # same deployment, no new status
    back = start(PLAN, RolloutState(model="credit", phase="promoted", stable=V2), V1, now=0, rollout_id="r3")
    assert commands(back.effects) == ["apply"] and back.state.rollback
    # The full promotion waits until Argo's controller has seen the rollback's spec (until then its
    # status names the stable pods as current, and `promote --full` would write nothing), once.
    unseen = watch(PLAN, back.state, view_of(rollout("v1.0.0", generation=3, observed=2)), [], now=1)
    assert not commands(unseen.effects)
    seen = watch(PLAN, unseen.state, view_of(rollout("v1.0.0", phase="Progressing")), [], now=2)
    assert commands(seen.effects) == ["promote-full"]
    assert not commands(watch(PLAN, seen.state, view_of(rollout("v1.0.0", phase="Progressing")), [],
                              now=3).effects)
    same = start(PLAN, RolloutState(model="credit", phase="promoted", stable=V1), V1, now=0, rollout_id="r4")
    assert not commands(same.effects) and same.state.phase == "promoted"


def test_each_step_argo_reports_is_one_deployment_status() -> None:
    state = canary_state()
    seen = []
    for index in (0, 1, 1, 2, 3):
        reasons = [{"reason": "CanaryPauseStep"}] if index % 2 else []
        decision = watch(PLAN, state, view_of(rollout(phase="Paused" if reasons else "Progressing",
                                                      currentStepIndex=index, pauseConditions=reasons)),
                         [], now=index)
        state = decision.state
        seen += statuses(decision.effects)
    assert seen == [
        ("in_progress", "canary v1.1.0 step 1/2: 10%, hold 30s"),
        ("in_progress", "canary v1.1.0 step 2/2: 50%, hold until /promote"),
        ("in_progress", "canary v1.1.0 step 2/2: 50%, hold until /promote: waiting for /promote"),
    ]
    promote = watch(PLAN, state, view_of(rollout(phase="Paused", currentStepIndex=3)),
                    [ControlRequest(status_id=7, action="promote", actor="alice")], now=5)
    assert commands(promote.effects) == ["promote"] and promote.state.handled_status_id == 7
    done = watch(PLAN, promote.state, view_of(rollout(phase="Healthy", currentStepIndex=4, stableRS="b",
                                                      currentPodHash="b")), [], now=6)
    assert done.state.phase == "promoted" and done.state.stable == V2 and done.state.canary is None
    assert statuses(done.effects)[-1][0] == "success"
    assert any(isinstance(e, RetireLive) for e in done.effects)
    assert next(e for e in done.effects if isinstance(e, AssignStage)).version == "v1.1.0"


def test_abort_requests_and_argo_aborts_are_failures() -> None:
    state = watch(PLAN, canary_state(), view_of(rollout(phase="Progressing", currentStepIndex=0)), [],
                  now=1).state
    asked = watch(PLAN, state, view_of(rollout(phase="Progressing", currentStepIndex=0)),
                  [ControlRequest(status_id=9, action="abort", actor="alice")], now=2)
    assert commands(asked.effects) == ["abort"] and asked.state.phase == "aborted"
    assert statuses(asked.effects)[-1] == ("failure", "aborted by @alice: Argo Rollouts aborted v1.1.0, all "
                                                      "traffic back to v1.0.0")
    stage = next(e for e in asked.effects if isinstance(e, AssignStage))
    assert (stage.version, stage.only_if_stage_is) == ("v1.0.0", "v1.1.0")
    failed = watch(PLAN, state, view_of(rollout(abort=True, phase="Degraded", message=(
        'RolloutAborted: Rollout aborted update to revision 2: Metric "success-rate" assessed Failed due to '
        "failed (1) > failureLimit (0)"))), [], now=3)
    assert failed.state.phase == "aborted" and failed.state.reason.startswith("gate failed (Argo analysis)")
    assert not commands(failed.effects)  # Argo aborted by itself
    late = watch(PLAN, state, view_of(rollout(abort=True, phase="Degraded", message=(
        "ProgressDeadlineExceeded: ReplicaSet \"credit-6f\" has timed out progressing."))), [], now=3)
    assert "not ready within the progress deadline (100s)" in late.state.reason
    # On Argo's next sync the deadline's message is gone: a bare abort without a failed analysis.
    bare = watch(PLAN, state, view_of(rollout(abort=True, phase="Degraded", message=(
        "RolloutAborted: Rollout aborted update to revision 2"))), [], now=3)
    assert "no failed analysis: v1.1.0 not ready within the progress deadline (100s)" in bare.state.reason
    # A failed analysis is known by its run's phase too, whatever the message says.
    analysed = watch(PLAN, state, view_of(rollout(
        abort=True, phase="Degraded", message="RolloutAborted: Rollout aborted update to revision 2",
        canary={"currentBackgroundAnalysisRunStatus": {
            "name": "credit-6f-2", "status": "Failed",
            "message": 'Metric "prediction-drift" assessed Failed'}}
    )), [], now=3)
    assert analysed.state.reason == 'gate failed (Argo analysis): Metric "prediction-drift" assessed Failed'


def test_no_controller_picking_the_rollout_up_is_an_abort_past_the_deadline() -> None:
    state = canary_state()
    unseen = view_of(rollout(generation=2, observed=1))
    assert watch(PLAN, state, unseen, [], now=99).state.phase == "progressing"
    late = watch(PLAN, state, unseen, [], now=101)
    assert late.state.phase == "aborted" and "is the controller running?" in late.state.reason
    other = watch(PLAN, state, view_of(rollout("v2.0.0")), [], now=1)
    assert other.state.phase == "superseded"


def test_inconclusive_analysis_pauses_until_promote() -> None:
    view = view_of(rollout(phase="Paused", currentStepIndex=1, controllerPause=True,
                           pauseConditions=[{"reason": "InconclusiveAnalysisRun"}]))
    decision = watch(PLAN, canary_state(), view, [], now=1)
    assert decision.state.phase == "paused" and commands(decision.effects) == []
    assert statuses(decision.effects) == [("in_progress", "canary v1.1.0 step 1/2: 10%, hold 30s: paused, "
                                           "inconclusive (Argo analysis: no data or neither pass nor fail); "
                                           "/promote to go on or /abort")]


def test_inconclusive_analysis_aborts_when_the_plan_says_so() -> None:
    """`rollout.on_inconclusive: abort`: the job writes Argo's abort instead of waiting for a person
    (unless a /promote arrived in the same tick), and the reason carries Argo's message."""
    plan = plan_from_config(RolloutSection(steps=[RolloutStep(weight=10, hold=30)], on_inconclusive="abort",
                                           gates=RolloutGates(), interval=5, progress_deadline=100))
    stable = RolloutState(model="credit", phase="promoted", stable=V1)
    state = start(plan, stable, V2, now=0, rollout_id="r1").state
    message = 'Metric "success-rate" assessed Inconclusive due to inconclusive (1) > inconclusiveLimit (0)'
    view = view_of(rollout(phase="Paused", currentStepIndex=1, controllerPause=True,
                           pauseConditions=[{"reason": "InconclusiveAnalysisRun"}],
                           canary={"currentBackgroundAnalysisRunStatus": {"status": "Inconclusive",
                                                                          "message": message}}))
    decision = watch(plan, state, view, [], now=1)
    assert commands(decision.effects) == ["abort"] and decision.state.phase == "aborted"
    assert decision.state.reason == ("inconclusive (Argo analysis) at canary v1.1.0 step 1/1: 10%, "
                                     f"hold 30s: {message}; rollout.on_inconclusive: abort")
    assert statuses(decision.effects)[-1][0] == "failure"
    promote = ControlRequest(status_id=9, action="promote", actor="bob")
    promoted = watch(plan, state, view, [promote], now=1)
    assert commands(promoted.effects) == ["promote"] and promoted.state.phase == "paused"


def test_deploy_manifests_for_argo_need_no_cluster(tmp_path: Any, model_dirs: Any,
                                                   monkeypatch: Any) -> None:
    import json
    import shutil

    from mlops_bot.cli import main

    models = tmp_path / "models"
    shutil.copytree(model_dirs["v1.1.0"], models / "v1.1.0")
    config = tmp_path / "mlops.yml"
    config.write_text("model: {name: credit, task: classification}\n"
                      "train: {builtin: {estimator: logistic_regression}}\n"
                      "data: {train: t.csv, holdout: h.csv, target: y}\n"
                      "rollout:\n  engine: argo\n  steps: [{weight: 20, hold: manual}]\n"
                      "  prometheus: {url: 'http://prometheus.monitoring:9090'}\n"
                      "  argo: {namespace: models, replicas: 5}\n")
    monkeypatch.setenv("GITHUB_REPOSITORY", "acme/credit")
    out = tmp_path / "out"
    assert main(["deploy", "credit", "--version", "v1.1.0", "--target", "kubernetes", "--models", str(models),
                 "--config", str(config), "--manifests", str(out)]) == 0
    rollout = json.loads((out / "credit-rollout.json").read_text())
    assert rollout["metadata"]["namespace"] == "models" and rollout["spec"]["replicas"] == 5
    assert rollout["spec"]["strategy"]["canary"]["steps"] == [{"setWeight": 20}, {"pause": {}}]
    template = json.loads((out / "credit-analysistemplate.json").read_text())
    assert template["metadata"]["name"] == "credit-gates"
    assert all("failureCondition" in m for m in template["spec"]["metrics"])
