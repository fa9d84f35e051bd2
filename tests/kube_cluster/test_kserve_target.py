"""The KServe target against a real kube-apiserver with KServe's real InferenceService CRD: real
server-side apply (managed fields, conflicts), schema validation by the API server, readiness read
from `status` (moved by the test-side stand-in, see kserve_standin.py), the state in a ConfigMap,
and the one-line errors (RBAC, missing CRD, no cluster)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from kube_cluster.control_plane import ControlPlane
from kube_cluster.kserve_standin import KServeStandIn
from mlops_bot.deploy.rollout import RolloutState
from mlops_bot.deploy.routing import RoutingRequest, VersionRef
from mlops_bot.deploy.targets.cluster import ClusterError, ClusterStateStore, connect, require_api
from mlops_bot.deploy.targets.kserve import GROUP, PLURAL, VERSION, KServeTarget, serving_state

pytestmark = pytest.mark.kubernetes

V1, V2 = VersionRef(version="v1.0.0", path="/m/v1"), VersionRef(version="v1.1.0", path="/m/v2")


def storage(ref: VersionRef) -> tuple[str, str]:
    return (f"https://github.com/acme/credit/releases/download/credit%40{ref.version}/model.skops",
            ref.version.replace(".", "").ljust(64, "0"))


def target(plane: ControlPlane, namespace: str, kubeconfig: Path | None = None) -> KServeTarget:
    return KServeTarget("credit", connect(str(kubeconfig or plane.kubeconfig)), namespace=namespace,
                        storage=storage, image="ghcr.io/acme/mlops-bot-server:1.0",
                        trusted_types=["team_features.transformers.Clipper"])


def managers(obj: dict[str, Any]) -> dict[str, str]:
    return {m["manager"]: m["operation"] for m in obj["metadata"].get("managedFields", [])}


def test_steps_are_server_side_applied_and_validated_by_the_real_crd(control_plane: ControlPlane,
                                                                     namespace: str) -> None:
    kserve = target(control_plane, namespace)
    kserve.apply(RoutingRequest(stable=V1))
    obj = kserve.read()
    assert obj is not None and managers(obj) == {"mlops-bot": "Apply"}
    assert "canaryTrafficPercent" not in obj["spec"]["predictor"]
    kserve.apply(RoutingRequest(stable=V1, canary=V2, weight=10))
    obj = kserve.read()
    assert obj is not None and obj["spec"]["predictor"]["canaryTrafficPercent"] == 10
    assert obj["metadata"]["annotations"]["mlops-bot/version"] == "v1.1.0"
    args = obj["spec"]["predictor"]["containers"][0]["args"]
    assert "--model-sha256" in args and args[-2:] == ["--trusted-type", "team_features.transformers.Clipper"]
    kserve.apply(RoutingRequest(stable=V1, canary=V2, weight=50))
    assert kserve.read()["spec"]["predictor"]["canaryTrafficPercent"] == 50  # type: ignore[index]
    # Promotion: the field we owned is gone, not set to 100.
    kserve.apply(RoutingRequest(stable=V2))
    obj = kserve.read()
    assert obj is not None and "canaryTrafficPercent" not in obj["spec"]["predictor"]
    assert obj["metadata"]["annotations"]["mlops-bot/version"] == "v1.1.0"


def test_abort_sets_zero_then_restores_the_stable_spec(control_plane: ControlPlane, namespace: str) -> None:
    kserve = target(control_plane, namespace)
    seen: list[tuple[str, Any]] = []
    original = kserve._apply

    def recording(manifest: dict[str, Any]) -> dict[str, Any]:
        seen.append((manifest["metadata"]["annotations"]["mlops-bot/version"],
                     manifest["spec"]["predictor"].get("canaryTrafficPercent")))
        return original(manifest)

    kserve._apply = recording  # type: ignore[method-assign]
    kserve.apply(RoutingRequest(stable=V1))
    kserve.apply(RoutingRequest(stable=V1, canary=V2, weight=10))
    kserve.apply(RoutingRequest(stable=V1))
    assert seen == [("v1.0.0", None), ("v1.1.0", 10), ("v1.1.0", 0), ("v1.0.0", None)]
    obj = kserve.read()
    assert obj is not None and obj["metadata"]["annotations"]["mlops-bot/version"] == "v1.0.0"


def test_a_field_owned_by_another_manager_is_a_clear_conflict(control_plane: ControlPlane,
                                                             namespace: str) -> None:
    from kubernetes import client

    kserve = target(control_plane, namespace)
    kserve.apply(RoutingRequest(stable=V1, canary=V2, weight=10))
    # Someone sets the canary share by hand, with their own server-side apply.
    client.CustomObjectsApi(control_plane.api_client()).patch_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, "credit",
        {"apiVersion": f"{GROUP}/{VERSION}", "kind": "InferenceService", "metadata": {"name": "credit"},
         "spec": {"predictor": {"canaryTrafficPercent": 30}}},
        field_manager="kubectl-edit", force=True, _content_type="application/apply-patch+yaml")
    with pytest.raises(ClusterError, match=r"server-side apply conflict on inferenceservices.*kubectl-edit"):
        kserve.apply(RoutingRequest(stable=V1, canary=V2, weight=50))


def test_the_crd_schema_rejects_a_bad_object(control_plane: ControlPlane, namespace: str) -> None:
    kserve = target(control_plane, namespace)
    with pytest.raises(ClusterError, match=r"rejected .* as invalid: .*canaryTrafficPercent"):
        manifest = kserve.manifest(V2, 10)
        manifest["spec"]["predictor"]["canaryTrafficPercent"] = "ten"
        kserve._apply(manifest)


def test_readiness_comes_from_status(control_plane: ControlPlane, namespace: str) -> None:
    kserve = target(control_plane, namespace)
    canary = RoutingRequest(stable=V1, canary=V2, weight=10)
    assert kserve.health(canary) == (True, False, "the InferenceService does not exist")
    with KServeStandIn(control_plane.api_client(), namespace) as standin:
        kserve.apply(RoutingRequest(stable=V1))
        wait_ready(kserve, RoutingRequest(stable=V1))
        kserve.apply(canary)
        obj = wait_ready(kserve, canary)
        traffic = obj["status"]["components"]["predictor"]["traffic"]
        assert sorted(t["percent"] for t in traffic) == [10, 90]
        standin.never_ready.add("v1.2.0")
        broken = RoutingRequest(stable=V1, canary=VersionRef(version="v1.2.0", path="/m/v3"), weight=10)
        kserve.apply(broken)
        wait_for(lambda: "crash-looping" in kserve.health(broken)[2])
        assert kserve.health(broken)[1] is False


def wait_for(check: Any, timeout: float = 60.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.1)


def wait_ready(kserve: KServeTarget, routing: RoutingRequest) -> dict[str, Any]:
    wait_for(lambda: kserve.health(routing)[1])
    obj = kserve.read()
    assert obj is not None and serving_state(obj, routing) == (True, "")
    return obj


def test_state_lives_in_a_configmap_and_refuses_lost_updates(control_plane: ControlPlane,
                                                             namespace: str) -> None:
    api = connect(str(control_plane.kubeconfig))
    first, second = ClusterStateStore(api, namespace, "credit"), ClusterStateStore(api, namespace, "credit")
    state = first.load("credit")
    assert state.phase == "idle"
    first.save(RolloutState(model="credit", phase="progressing", weight=10))
    assert second.load("credit").weight == 10
    loaded = first.load("credit")
    second.save(loaded.model_copy(update={"weight": 50}))
    with pytest.raises(ClusterError, match="changed by another controller"):
        first.save(loaded.model_copy(update={"weight": 20}))
    assert first.load("credit").weight == 50


def test_rbac_forbidden_names_the_verb_and_resource(control_plane: ControlPlane, namespace: str) -> None:
    kserve = target(control_plane, namespace, control_plane.kubeconfig_for("nobody"))
    with pytest.raises(ClusterError, match=r"RBAC forbids 'patch' on inferenceservices.serving.kserve.io in "
                       rf"namespace {namespace}"):
        kserve.apply(RoutingRequest(stable=V1, canary=V2, weight=10))
    with pytest.raises(ClusterError, match=r"RBAC forbids 'get' on inferenceservices.serving.kserve.io"):
        kserve.apply(RoutingRequest(stable=V1))  # promotion and abort read the live object first
    store = ClusterStateStore(connect(str(control_plane.kubeconfig_for("nobody"))), namespace, "credit")
    with pytest.raises(ClusterError, match=r"RBAC forbids 'get' on configmaps"):
        store.load("credit")


def test_missing_crd_and_missing_cluster_are_one_line_errors(control_plane: ControlPlane, tmp_path: Path
                                                             ) -> None:
    api = connect(str(control_plane.kubeconfig))
    with pytest.raises(ClusterError, match=r"KServe is not installed on this cluster: no InferenceService"):
        require_api(api, GROUP, "v1alpha9", "InferenceService", "KServe")
    with pytest.raises(ClusterError, match="no Kubernetes cluster configured"):
        connect(str(tmp_path / "missing-kubeconfig"))
    closed = tmp_path / "closed"
    closed.write_text(control_plane.kubeconfig.read_text().replace(control_plane.server, "https://127.0.0.1:9"))
    with pytest.raises(ClusterError, match="Kubernetes API unreachable"):
        target(control_plane, "default", closed)
    content = connect(control_plane.kubeconfig.read_text())  # the secret's content, not a path
    require_api(content, GROUP, VERSION, "InferenceService", "KServe")


def test_two_deploy_jobs_take_turns_on_the_lease(control_plane: ControlPlane, namespace: str) -> None:
    api = connect(str(control_plane.kubeconfig))
    first, second = ClusterStateStore(api, namespace, "credit"), ClusterStateStore(api, namespace, "credit")
    with first.locked(), pytest.raises(ClusterError, match="is locked by"), second.locked(timeout=1):
        pass
    with second.locked():  # released by the first
        pass
    # A job killed while holding the lease never releases nor renews it: its last renewal is old.
    from kubernetes import client
    leases: Any = client.CoordinationV1Api(api)
    version = leases.read_namespaced_lease(first.name, namespace).metadata.resource_version
    stamp = "2020-01-01T00:00:00.000001Z"  # the client re-serialises .000000 without digits
    leases.replace_namespaced_lease(first.name, namespace, {
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": first.name, "namespace": namespace, "resourceVersion": version},
        "spec": {"holderIdentity": "killed-job", "leaseDurationSeconds": 1, "acquireTime": stamp,
                 "renewTime": stamp}})
    with second.locked(timeout=30):  # taken over once the lease has expired
        assert second.load("credit").phase == "idle"


def test_a_held_rollout_lease_is_renewed_so_a_slow_step_keeps_out_a_second_job(
        control_plane: ControlPlane, namespace: str) -> None:
    """The Lease is renewed while its holder works: a step that takes longer than the lease (a slow
    revision) does not let a second deploy job take the rollout over."""
    import threading

    first = ClusterStateStore(connect(str(control_plane.kubeconfig)), namespace, "credit")
    second = ClusterStateStore(connect(str(control_plane.kubeconfig)), namespace, "credit")
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with first.locked(lease_seconds=4):
            held.set()
            release.wait(60)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert held.wait(60)
        # 9 s is more than twice the lease: without renewals the second job would get in.
        with pytest.raises(ClusterError, match="is locked by"), second.locked(timeout=9, lease_seconds=4):
            pass
    finally:
        release.set()
        holder.join(60)
    with second.locked(timeout=30, lease_seconds=4):  # released: the next job gets it at once
        pass
