"""Argo Rollouts: the rendered Rollout and AnalysisTemplate are accepted by the real API server
against Argo's real CRDs (from its Go module), server-side applied; /abort and /promote write
Argo's own fields the way `kubectl argo rollouts` does (its v1.8 sources). Argo's controller does
not run in this module (tests/deploy/test_deploy_argo_e2e.py runs the real one), so the status it
would write is set by the test, and says so."""

from __future__ import annotations

from typing import Any

import pytest

from kube_cluster.control_plane import ControlPlane
from mlops_bot.config import RolloutGates, RolloutSection, RolloutStep
from mlops_bot.deploy.argo_mirror import view_of
from mlops_bot.deploy.plan import plan_from_config
from mlops_bot.deploy.targets.argo import (
    GROUP,
    ROLLOUTS,
    VERSION,
    ArgoTarget,
    promote_patches,
    render_analysis,
    render_rollout,
)
from mlops_bot.deploy.targets.cluster import ClusterError, connect

PLAN = plan_from_config(RolloutSection(
    steps=[RolloutStep(weight=10, hold=30), RolloutStep(weight=50, hold="manual")],
    gates=RolloutGates(min_success_rate=0.99, max_p99_latency_ms=500, max_p99_latency_ratio=1.5,
                       max_prediction_drift=0.2, min_requests=50),
    interval=15, failure_limit=2, progress_deadline=900))


def rendered(namespace: str, version: str = "v1.1.0") -> tuple[dict[str, Any], dict[str, Any]]:
    rollout = render_rollout("credit", version, "v1.0.0", namespace=namespace, plan=PLAN,
                             image="ghcr.io/acme/mlops-bot-server:1.0",
                             storage_uri="https://example.invalid/model.skops", sha256="a" * 64,
                             prometheus_url="http://prometheus.monitoring:9090")
    return rollout, render_analysis("credit", namespace, PLAN)


def test_plan_becomes_argo_steps_and_gates() -> None:
    rollout, analysis = rendered("ml")
    assert rollout["spec"]["strategy"]["canary"]["steps"] == [
        {"setWeight": 10}, {"pause": {"duration": "30s"}}, {"setWeight": 50}, {"pause": {}}]
    assert rollout["spec"]["progressDeadlineSeconds"] == 900
    metrics = {m["name"]: m for m in analysis["spec"]["metrics"]}
    assert sorted(metrics) == ["p99-latency", "p99-latency-ratio", "success-rate"]
    assert metrics["success-rate"]["failureLimit"] == 1 and metrics["success-rate"]["interval"] == "15s"
    assert "result[0] >= 0.99" in metrics["success-rate"]["successCondition"]
    assert 'version="{{args.version}}"' in metrics["p99-latency"]["provider"]["prometheus"]["query"]


@pytest.mark.kubernetes
def test_rollout_and_template_apply_against_the_real_crds(control_plane: ControlPlane,
                                                          namespace: str) -> None:
    argo = ArgoTarget("credit", connect(str(control_plane.kubeconfig)), namespace=namespace)
    rollout, analysis = rendered(namespace)
    applied = argo.apply(rollout, analysis)
    assert {m["manager"] for m in applied["metadata"]["managedFields"]} == {"mlops-bot"}
    assert applied["spec"]["strategy"]["canary"]["steps"][1] == {"pause": {"duration": "30s"}}
    bad, _ = rendered(namespace, "v1.2.0")
    bad["spec"]["strategy"]["canary"]["steps"][0] = {"setWeight": "ten"}
    with pytest.raises(ClusterError, match=r"rejected rollouts\.argoproj\.io/credit as invalid"):
        argo.apply(bad, analysis)


@pytest.mark.kubernetes
def test_abort_and_promote_write_argos_own_fields(control_plane: ControlPlane, namespace: str) -> None:
    from kubernetes import client

    api = connect(str(control_plane.kubeconfig))
    argo = ArgoTarget("credit", api, namespace=namespace)
    argo.apply(*rendered(namespace))
    custom: Any = client.CustomObjectsApi(api)
    # What Argo's controller would write at the manual pause of step 2 (it does not run here).
    custom.patch_namespaced_custom_object_status(GROUP, VERSION, namespace, ROLLOUTS, "credit", {"status": {
        "phase": "Paused", "message": "CanaryPauseStep", "currentStepIndex": 3, "controllerPause": True,
        "pauseConditions": [{"reason": "CanaryPauseStep", "startTime": "2026-01-01T00:00:00Z"}]}})
    view = view_of(argo.read())
    assert (view.version, view.step_index, view.pause_reasons) == ("v1.1.0", 3, ["CanaryPauseStep"])
    argo.promote()
    live = argo.read() or {}
    assert "pauseConditions" not in live["status"] and live["status"]["currentStepIndex"] == 3
    argo.abort()
    live = argo.read() or {}
    assert live["status"]["abort"] is True and view_of(live).aborted
    nobody = ArgoTarget("credit", connect(str(control_plane.kubeconfig_for("nobody"))), namespace=namespace)
    with pytest.raises(ClusterError, match=r"RBAC forbids 'patch' on rollouts/status.argoproj.io"):
        nobody.abort()


def test_promote_patches_follow_kubectl_argo_rollouts() -> None:
    steps = {"strategy": {"canary": {"steps": [{"setWeight": 10}, {"pause": {}}]}}}
    paused = {"spec": {**steps, "paused": True}, "status": {"pauseConditions": [{"reason": "x"}],
                                                           "currentStepIndex": 1}}
    assert promote_patches(paused) == ({"spec": {"paused": False}}, {"status": {"pauseConditions": None}})
    running = {"spec": steps, "status": {"currentStepIndex": 0}}
    assert promote_patches(running) == (None, {"status": {"pauseConditions": None, "currentStepIndex": 1}})
    inconclusive = {"spec": steps, "status": {
        "currentStepIndex": 1, "controllerPause": True, "pauseConditions": [{"reason": "Inconclusive"}],
        "canary": {"currentStepAnalysisRunStatus": {"status": "Inconclusive"}}}}
    assert promote_patches(inconclusive)[1] == {"status": {"pauseConditions": None, "controllerPause": False,
                                                           "currentStepIndex": 2}}


@pytest.mark.kubernetes
def test_argo_not_installed_is_a_one_line_error(control_plane: ControlPlane) -> None:
    from mlops_bot.deploy.targets.cluster import require_api

    with pytest.raises(ClusterError, match=r"Argo Rollouts is not installed on this cluster: no Rollout CRD"):
        require_api(connect(str(control_plane.kubeconfig)), GROUP, "v1alpha9", "Rollout", "Argo Rollouts")
