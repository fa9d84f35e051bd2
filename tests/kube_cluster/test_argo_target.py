"""Argo Rollouts: the rendered Rollout and AnalysisTemplate are accepted by the real API server
against Argo's real CRDs (from its Go module), server-side applied; /abort and /promote write
Argo's own fields the way `kubectl argo rollouts` does (its v1.8 sources). Argo's controller does
not run in this module (tests/deploy/test_deploy_argo_e2e.py runs the real one), so the status it
would write is set by the test, and says so."""

from __future__ import annotations

import functools
from typing import Any

import jsonschema
import pytest
import yaml

from kube_cluster.control_plane import ControlPlane, build_control_plane
from mlops_bot.config import RolloutGates, RolloutSection, RolloutStep
from mlops_bot.deploy.argo_mirror import view_of
from mlops_bot.deploy.plan import plan_from_config
from mlops_bot.deploy.routing import VersionRef
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
TRUSTED = ["team_features.transformers.Clipper"]


def rendered(namespace: str, version: str = "v1.1.0") -> tuple[dict[str, Any], dict[str, Any]]:
    rollout = render_rollout("credit", version, "v1.0.0", namespace=namespace, plan=PLAN,
                             image="ghcr.io/acme/mlops-bot-server:1.0",
                             storage_uri="https://example.invalid/model.skops", sha256="a" * 64,
                             prometheus_url="http://prometheus.monitoring:9090", trusted_types=TRUSTED)
    return rollout, render_analysis("credit", namespace, PLAN)


def test_plan_becomes_argo_steps_and_gates() -> None:
    rollout, analysis = rendered("ml")
    assert rollout["spec"]["strategy"]["canary"]["steps"] == [
        {"setWeight": 10}, {"pause": {"duration": "30s"}}, {"setWeight": 50}, {"pause": {}}]
    assert rollout["spec"]["progressDeadlineSeconds"] == 900
    metrics = {m["name"]: m for m in analysis["spec"]["metrics"]}
    assert sorted(metrics) == ["p99-latency", "p99-latency-ratio", "prediction-drift", "success-rate"]
    drift = metrics["prediction-drift"]
    assert "result[0] <= 0.2" in drift["successCondition"] and "result[0] > 0.2" in drift["failureCondition"]
    query = drift["provider"]["prometheus"]["query"]
    # The metrics source's own template (deploy/prometheus.py), for both versions, over the window.
    assert 'sum by (prediction) (mlops_bot_predictions_total{model="{{args.model}}"' in query
    assert 'version="{{args.version}}"' in query and 'version="{{args.stable-version}}"' in query
    assert "[60s:3s]" in query
    for name, metric in metrics.items():  # every gate needs min_requests in the window, or yields nothing
        query = metric["provider"]["prometheus"]["query"]
        assert query.endswith(">= 50)") or (name == "success-rate" and ">= 50) or on() (" in query)
        assert metric["successCondition"].startswith("len(result) > 0 && !isNaN(result[0]) && ")
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
    args = applied["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[-2:] == ["--trusted-type", TRUSTED[0]]
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


def _write_status(api: Any, namespace: str, status: dict[str, Any]) -> None:
    """What Argo's controller would write (it does not run in this module)."""
    from kubernetes import client

    client.CustomObjectsApi(api).patch_namespaced_custom_object_status(
        GROUP, VERSION, namespace, ROLLOUTS, "credit", {"status": status})


@pytest.mark.kubernetes
def test_rollback_writes_promote_full_and_unpauses(control_plane: ControlPlane, namespace: str) -> None:
    """A rollback (an older version) is applied, then fully promoted: `status.promoteFull` (Argo's
    controller then skips the remaining steps and analysis, rollout/canary.go) and `spec.paused:
    false`, as `kubectl argo rollouts promote --full` writes them; accepted by the real CRD's status
    subresource. A rollout whose new pods are already the stable ones gets nothing."""
    from kubernetes import client

    api = connect(str(control_plane.kubeconfig))
    argo = ArgoTarget("credit", api, namespace=namespace)
    argo.apply(*rendered(namespace, "v0.9.0"))
    client.CustomObjectsApi(api).patch_namespaced_custom_object(
        GROUP, VERSION, namespace, ROLLOUTS, "credit", {"spec": {"paused": True}},
        _content_type="application/merge-patch+json")
    _write_status(api, namespace, {
        "phase": "Paused", "currentPodHash": "6f", "stableRS": "5d", "currentStepIndex": 1,
        "pauseConditions": [{"reason": "CanaryPauseStep", "startTime": "2026-01-01T00:00:00Z"}]})
    argo.promote_full()
    live = argo.read() or {}
    assert live["status"]["promoteFull"] is True and live["spec"]["paused"] is False
    _write_status(api, namespace, {"promoteFull": None, "currentPodHash": "6f", "stableRS": "6f"})
    argo.promote_full()
    assert "promoteFull" not in (argo.read() or {})["status"]


@pytest.mark.kubernetes
def test_progress_deadline_abort_as_argo_writes_it(control_plane: ControlPlane, namespace: str) -> None:
    """`progressDeadlineAbort` is accepted with the deadline; the status Argo's controller writes when
    a canary never gets ready (rollout/sync.go, utils/rollout/rolloututil.go: first the timeout
    condition, then on the next sync only "RolloutAborted") reads as an abort, in both forms, once
    stored by the real API server; the deploy job names the deadline in both."""
    from mlops_bot.deploy.argo_mirror import watch
    from mlops_bot.deploy.rollout import RolloutState

    api = connect(str(control_plane.kubeconfig))
    argo = ArgoTarget("credit", api, namespace=namespace)
    applied = argo.apply(*rendered(namespace))
    spec = applied["spec"]
    assert spec["progressDeadlineAbort"] is True and spec["progressDeadlineSeconds"] == 900
    generation = applied["metadata"]["generation"]
    timed_out = 'ReplicaSet "credit-6f" has timed out progressing.'
    first = {"abort": True, "abortedAt": "2026-01-01T00:15:00Z", "phase": "Degraded", "observedGeneration":
             str(generation), "currentStepIndex": 0, "currentPodHash": "6f", "stableRS": "5d",
             "message": f"ProgressDeadlineExceeded: {timed_out}", "conditions": [{
                 "type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
                 "message": timed_out, "lastUpdateTime": "2026-01-01T00:15:00Z",
                 "lastTransitionTime": "2026-01-01T00:15:00Z"}]}
    aborted = "Rollout aborted update to revision 2"
    then = {**first, "message": f"RolloutAborted: {aborted}", "conditions": [{
        **first["conditions"][0], "reason": "RolloutAborted", "message": aborted}]}
    stable, canary = VersionRef(version="v1.0.0", path="-"), VersionRef(version="v1.1.0", path="-")
    state = RolloutState(model="credit", phase="progressing", stable=stable, canary=canary, weight=10,
                         rollout_id="r1", last_progress=0, step_started=0)
    for status in (first, then):
        _write_status(api, namespace, status)
        view = view_of(argo.read())
        assert view.aborted and view.observed and not view.finished
        decided = watch(PLAN, state, view, [], now=10).state
        assert decided.phase == "aborted" and "progress deadline (900s)" in decided.reason, decided.reason


@functools.cache
def _crd_schemas() -> dict[str, dict[str, Any]]:
    """Kind -> the openAPIV3Schema of Argo's real CRDs (from its Go module, in the build cache)."""
    path = build_control_plane() / "crds" / "argo-rollouts.yaml"
    found = {}
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # ~1 MB of YAML: libyaml when there
    for document in yaml.load_all(path.read_text(), Loader=loader):
        if document:
            version = next(v for v in document["spec"]["versions"] if v["name"] == VERSION)
            found[document["spec"]["names"]["kind"]] = version["schema"]["openAPIV3Schema"]
    return found


def strict(schema: dict[str, Any]) -> dict[str, Any]:
    """A CRD's structural schema as JSON Schema, as strict as the API server's field validation: an
    object refuses fields its schema does not declare (unless it preserves unknown fields), and
    int-or-string means exactly that."""
    out = {k: v for k, v in schema.items() if not k.startswith("x-kubernetes-")}
    if schema.get("x-kubernetes-int-or-string"):
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if "properties" in schema:
        out["properties"] = {k: strict(v) for k, v in schema["properties"].items()}
        if not schema.get("x-kubernetes-preserve-unknown-fields") and "additionalProperties" not in schema:
            out["additionalProperties"] = False
    if isinstance(schema.get("additionalProperties"), dict):
        out["additionalProperties"] = strict(schema["additionalProperties"])
    if isinstance(schema.get("items"), dict):
        out["items"] = strict(schema["items"])
    return out


@pytest.mark.kubernetes
def test_rendered_objects_follow_argos_crd_schemas() -> None:
    """Every variant the plan can render, validated against Argo's real CRD schemas, no server."""
    schemas = {kind: jsonschema.Draft7Validator(strict(schema)) for kind, schema in _crd_schemas().items()
               if kind in ("Rollout", "AnalysisTemplate")}
    plans = [PLAN, plan_from_config(RolloutSection(
        steps=[RolloutStep(weight=25, hold="manual")], initial_delay=20,
        gates=RolloutGates(min_success_rate=None, max_p99_latency_ms=None, max_p99_latency_ratio=None,
                           max_prediction_drift=None, min_requests=10)))]
    for plan in plans:
        rollout = render_rollout("credit", "v1.1.0", "v1.0.0", namespace="ml", plan=plan, image="img:1",
                                 storage_uri="https://example.invalid/model.onnx", sha256=None,
                                 prometheus_url="http://prometheus:9090", token_secret="model-token",
                                 trusted_types=TRUSTED)
        analysis = render_analysis("credit", "ml", plan, {"requests": "sum(my_requests{v=\"$version\"})"})
        for kind, document in (("Rollout", rollout), ("AnalysisTemplate", analysis)):
            errors = [f"{list(e.absolute_path)}: {e.message}" for e in schemas[kind].iter_errors(document)]
            assert not errors, (kind, errors)
        assert "my_requests" in analysis["spec"]["metrics"][0]["provider"]["prometheus"]["query"]
    # The check is not vacuous: a misspelt field and a wrong type are refused.
    rollout, analysis = rendered("ml")
    analysis["spec"]["metrics"][0]["failurelimit"] = 1
    rollout["spec"]["strategy"]["canary"]["steps"][0] = {"setWeight": "ten"}
    assert any("failurelimit" in e.message for e in schemas["AnalysisTemplate"].iter_errors(analysis))
    assert any("'ten'" in e.message for e in schemas["Rollout"].iter_errors(rollout))


ROUTERS = {
    "nginx": "{nginx: {stableIngress: credit, additionalIngressAnnotations: {canary-by-header: X-Canary}}}",
    "smi": "{smi: {rootService: credit, trafficSplitName: credit-split}}",
    "istio": "{istio: {virtualService: {name: credit, routes: [primary]}}, maxTrafficWeight: 100}",
}


def argo_section(routing: str, services: str = "canary_service: credit-canary, "
                 "stable_service: credit-stable, ") -> RolloutSection:
    from mlops_bot.config.loading import parse_config

    text = ("model: {name: credit, task: classification}\n"
            "train: {builtin: {estimator: logistic_regression}}\n"
            "data: {train: t.csv, holdout: h.csv, target: y}\n"
            f"rollout: {{engine: argo, argo: {{{services}traffic_routing: {routing}}}}}\n")
    return parse_config(yaml.safe_load(text), ".github/mlops.yml", text).rollout


def routed(namespace: str, router: str) -> dict[str, Any]:
    from mlops_bot.cli.deploy_cluster import argo_traffic

    return render_rollout("credit", "v1.1.0", "v1.0.0", namespace=namespace, plan=PLAN, image="img:1",
                          storage_uri="https://example.invalid/model.skops", sha256=None,
                          prometheus_url="http://prometheus:9090", traffic=argo_traffic(argo_section(
                              ROUTERS[router])))


def test_traffic_routing_passes_through_from_the_config() -> None:
    from mlops_bot.errors import ConfigError

    canary = routed("ml", "nginx")["spec"]["strategy"]["canary"]
    assert canary["trafficRouting"] == {"nginx": {
        "stableIngress": "credit", "additionalIngressAnnotations": {"canary-by-header": "X-Canary"}}}
    assert (canary["canaryService"], canary["stableService"]) == ("credit-canary", "credit-stable")
    assert "trafficRouting" not in rendered("ml")[0]["spec"]["strategy"]["canary"]  # pods by default
    with pytest.raises(ConfigError, match=r"\.github/mlops\.yml:4: rollout\.argo\.traffic_routing\.nginx"
                                          r"\.stableIngres: unknown key"):
        argo_section("{nginx: {stableIngres: credit}}")
    with pytest.raises(ConfigError, match=r"rollout\.argo: traffic_routing needs canary_service and "
                                          r"stable_service"):
        argo_section(ROUTERS["smi"], services="")
    with pytest.raises(ConfigError, match=r"rollout\.argo\.traffic_routing: .*expected a traffic router"):
        argo_section("{maxTrafficWeight: 100}")
    subsets = argo_section("{istio: {virtualService: {name: credit}, destinationRule: {name: credit, "
                           "canarySubsetName: canary, stableSubsetName: stable}}}", services="")
    assert subsets.argo.traffic_routing is not None


def _undeclared(model: type[Any], schema: dict[str, Any], at: str) -> list[str]:
    """Fields of a config model (and its nested models) the CRD's schema does not declare."""
    from typing import get_args

    from pydantic import BaseModel

    found = []
    for name, field in model.model_fields.items():
        if name not in schema.get("properties", {}):
            found.append(f"{at}.{name}")
            continue
        sub = schema["properties"][name]
        sub = sub.get("items", sub)
        for arg in [field.annotation, *get_args(field.annotation)]:
            for inner in [arg, *get_args(arg)]:
                if isinstance(inner, type) and issubclass(inner, BaseModel):
                    found += _undeclared(inner, sub, f"{at}.{name}")
    return found


@pytest.mark.kubernetes
def test_traffic_routing_follows_argos_crd(control_plane: ControlPlane, namespace: str) -> None:
    """The config's trafficRouting schema is Argo's (every field it accepts is declared by the real
    CRD, at the same place), and a routed Rollout is valid by the CRD schema and the real API server."""
    from mlops_bot.config.rollout import ArgoTrafficRouting

    crd = _crd_schemas()["Rollout"]
    canary = crd["properties"]["spec"]["properties"]["strategy"]["properties"]["canary"]
    assert _undeclared(ArgoTrafficRouting, canary["properties"]["trafficRouting"], "trafficRouting") == []
    assert {"canaryService", "stableService"} <= set(canary["properties"])
    validator = jsonschema.Draft7Validator(strict(crd))
    for router in ROUTERS:
        errors = [e.message for e in validator.iter_errors(routed(namespace, router))]
        assert not errors, (router, errors)
    argo = ArgoTarget("credit", connect(str(control_plane.kubeconfig)), namespace=namespace)
    applied = argo.apply(routed(namespace, "nginx"), rendered(namespace)[1])
    assert applied["spec"]["strategy"]["canary"]["trafficRouting"]["nginx"]["stableIngress"] == "credit"


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
