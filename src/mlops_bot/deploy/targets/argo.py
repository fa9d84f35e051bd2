"""The Argo Rollouts engine, for teams serving with plain Deployments: Argo does the stepping, we
render what it needs from the plan, apply it, mirror its status and pass /abort and /promote on.

- `render_rollout`: a `Rollout` (argoproj.io/v1alpha1) whose canary steps are the plan's
  (`setWeight`, then `pause` with the hold as `duration`, or without for a manual hold), running our
  model server image, with a background analysis from the first step on;
- `render_analysis`: an `AnalysisTemplate` whose Prometheus metrics are the plan's gates (success
  rate, p99 latency, p99 ratio to stable), `interval` and `failureLimit` from the plan (Argo fails
  a metric when failures exceed `failureLimit`, we abort at `failure_limit` failures: limit - 1).
  Prediction drift (a Jensen-Shannon distance) is not a PromQL expression: with Argo it stays with
  the local/KServe targets;
- the control fields are Argo's own, as `kubectl argo rollouts` writes them (sources of
  github.com/argoproj/argo-rollouts v1.8, pkg/kubectl-argo-rollouts/cmd/abort and promote): abort =
  merge patch `{"status":{"abort":true}}` on the status subresource; promote = clear the pause
  conditions (or step past a running analysis) on status, plus `spec.paused: false` if paused;
- `ArgoTarget`: the I/O edge (apply both, read, abort, promote); what a Rollout's status means for
  the GitHub deployment and the rollout state is decided in `deploy/argo_mirror.py` (pure).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from mlops_bot.config import RolloutGates
from mlops_bot.deploy.plan import RolloutPlan
from mlops_bot.deploy.routing import VersionRef
from mlops_bot.deploy.targets.cluster import (
    ClusterError,
    explain,
    read_object,
    require_api,
    server_side_apply,
)
from mlops_bot.deploy.targets.kserve import DEFAULT_IMAGE, resource_name

GROUP, VERSION = "argoproj.io", "v1alpha1"
ROLLOUTS, TEMPLATES = "rollouts", "analysistemplates"
ABORT_PATCH: dict[str, Any] = {"status": {"abort": True}}
ANALYSIS_ARGS = ("model", "namespace", "version", "stable-version", "prometheus")
_SELECTOR = 'model="{{args.model}}",namespace="{{args.namespace}}"'
PROMOTE_FULL_PATCH: dict[str, Any] = {"status": {"promoteFull": True}}
# No data (an empty vector, or NaN from 0/0 before any request) is neither a success nor a failure:
# Argo counts the measurement Inconclusive, and an inconclusive run pauses the rollout (never a pass).
_DATA = "len(result) > 0 && !isNaN(result[0])"


def _conditions(passes: str, fails: str) -> dict[str, str]:
    return {"successCondition": f"{_DATA} && {passes}", "failureCondition": f"{_DATA} && {fails}"}


def _duration(seconds: float) -> str:
    return f"{max(1, math.ceil(seconds))}s"


def analysis_metrics(gates: RolloutGates, interval: float, failure_limit: int,
                     initial_delay: float = 0.0) -> list[dict[str, Any]]:
    """The plan's gates as AnalysisTemplate metrics (Prometheus provider)."""
    address = "{{args.prometheus}}"
    window = f"[{_duration(max(interval * 4, 60))}]"

    def rate(series: str, version: str = "{{args.version}}") -> str:
        return f'sum(rate({series}{{{_SELECTOR},version="{version}"}}{window}))'

    def p99(version: str) -> str:
        return (f'histogram_quantile(0.99, sum by (le) (rate(mlops_bot_request_duration_seconds_bucket'
                f'{{{_SELECTOR},version="{version}"}}{window})))')

    common: dict[str, Any] = {"interval": _duration(interval), "failureLimit": max(0, failure_limit - 1)}
    if initial_delay > 0:
        common["initialDelay"] = _duration(initial_delay)
    metrics = []
    if gates.min_success_rate is not None:
        metrics.append({
            "name": "success-rate", **common,
            **_conditions(f"result[0] >= {gates.min_success_rate}", f"result[0] < {gates.min_success_rate}"),
            "provider": {"prometheus": {"address": address, "query": (
                f"1 - {rate('mlops_bot_errors_total')} / {rate('mlops_bot_requests_total')}")}},
        })
    if gates.max_p99_latency_ms is not None:
        metrics.append({
            "name": "p99-latency", **common,
            **_conditions(f"result[0] <= {gates.max_p99_latency_ms}",
                          f"result[0] > {gates.max_p99_latency_ms}"),
            "provider": {"prometheus": {"address": address, "query": f"{p99('{{args.version}}')} * 1000"}},
        })
    if gates.max_p99_latency_ratio is not None:
        metrics.append({
            "name": "p99-latency-ratio", **common,
            **_conditions(f"result[0] <= {gates.max_p99_latency_ratio}",
                          f"result[0] > {gates.max_p99_latency_ratio}"),
            "provider": {"prometheus": {"address": address, "query": (
                f"{p99('{{args.version}}')} / {p99('{{args.stable-version}}')}")}},
        })
    return metrics


def render_analysis(model: str, namespace: str, plan: RolloutPlan) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "AnalysisTemplate",
        "metadata": {"name": f"{resource_name(model)}-gates", "namespace": namespace,
                     "labels": {"app.kubernetes.io/managed-by": "mlops-bot"}},
        "spec": {
            "args": [{"name": arg} for arg in ANALYSIS_ARGS],
            "metrics": analysis_metrics(plan.gates, plan.interval, plan.failure_limit, plan.initial_delay),
        },
    }


def render_rollout(model: str, version: str, stable_version: str, *, namespace: str, plan: RolloutPlan,
                   image: str, storage_uri: str, sha256: str | None, prometheus_url: str,
                   replicas: int = 2, token_secret: str | None = None) -> dict[str, Any]:
    """The Rollout for `version`; Argo keeps the previous pod template as stable."""
    name = resource_name(model)
    steps: list[dict[str, Any]] = []
    for step in plan.steps:
        steps.append({"setWeight": step.weight})
        steps.append({"pause": {} if step.hold == "manual" else {"duration": _duration(float(step.hold))}})
    args = ["serve", model, "--host", "0.0.0.0", "--port", "8080",  # noqa: S104 - pod network
            "--model-url", storage_uri, "--model-dir", "/mnt/models", "--version", version]
    if sha256:
        args += ["--model-sha256", sha256]
    labels = {"app.kubernetes.io/name": name, "app.kubernetes.io/managed-by": "mlops-bot"}
    # The container is written as Argo's controller re-serialises it when it updates the Rollout
    # (its revision annotation): `resources: {}` present, no empty `env`. Otherwise that update
    # changes the (atomic) containers list and takes it over, and our next apply conflicts.
    container: dict[str, Any] = {
        "name": "model-server", "image": image, "args": args, "resources": {},
        "ports": [{"name": "http", "containerPort": 8080}],
        "readinessProbe": {"httpGet": {"path": "/v2/health/ready", "port": 8080}},
        "livenessProbe": {"httpGet": {"path": "/v2/health/live", "port": 8080}},
        "volumeMounts": [{"name": "models", "mountPath": "/mnt/models"},
                         {"name": "tmp", "mountPath": "/tmp"}],  # noqa: S108 - emptyDir
        "securityContext": {"runAsNonRoot": True, "runAsUser": 10001, "readOnlyRootFilesystem": True,
                            "allowPrivilegeEscalation": False},
    }
    if token_secret:
        container["env"] = [{"name": "MLOPS_BOT_MODEL_TOKEN",
                             "valueFrom": {"secretKeyRef": {"name": token_secret, "key": "token"}}}]
    return {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "Rollout",
        "metadata": {"name": name, "namespace": namespace, "labels": labels,
                     "annotations": {"mlops-bot/model": model, "mlops-bot/version": version}},
        "spec": {
            "replicas": replicas,
            "progressDeadlineSeconds": max(1, math.ceil(plan.progress_deadline)),
            "progressDeadlineAbort": True,
            "selector": {"matchLabels": {"app.kubernetes.io/name": name}},
            "template": {
                "metadata": {"labels": labels, "annotations": {"mlops-bot/version": version}},
                "spec": {
                    "containers": [container],
                    "volumes": [{"name": "models", "emptyDir": {}}, {"name": "tmp", "emptyDir": {}}],
                },
            },
            "strategy": {"canary": {
                "steps": steps,
                "analysis": {
                    "templates": [{"templateName": f"{name}-gates"}],
                    "startingStep": 1,
                    "args": [{"name": "model", "value": model}, {"name": "namespace", "value": namespace},
                             {"name": "version", "value": version},
                             {"name": "stable-version", "value": stable_version},
                             {"name": "prometheus", "value": prometheus_url}],
                },
            }},
        },
    }


def promote_patches(rollout: dict[str, Any]) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """(spec patch, status patch) for a promote, as `kubectl argo rollouts promote` computes them
    (no --full, no skip flags). Pure."""
    spec, status = rollout.get("spec") or {}, rollout.get("status") or {}
    spec_patch = {"spec": {"paused": False}} if spec.get("paused") else None
    steps = ((spec.get("strategy") or {}).get("canary") or {}).get("steps") or []
    index = status.get("currentStepIndex", 0)
    analysis = ((status.get("canary") or {}).get("currentStepAnalysisRunStatus") or {}).get("status")
    pauses = status.get("pauseConditions") or []
    if analysis == "Inconclusive" and pauses and status.get("controllerPause"):
        nxt = index + 1 if index < len(steps) else index
        cleared = {"pauseConditions": None, "controllerPause": False, "currentStepIndex": nxt}
        return spec_patch, {"status": cleared}
    if pauses:
        return spec_patch, {"status": {"pauseConditions": None}}
    if steps:
        nxt = index + 1 if index < len(steps) else index
        return spec_patch, {"status": {"pauseConditions": None, "currentStepIndex": nxt}}
    return spec_patch, None


class ArgoTarget:
    """One model's Rollout + AnalysisTemplate in a namespace: the I/O of the Argo engine. `storage`
    maps a version to (storage URI, SHA-256), as for KServe."""

    def __init__(self, model: str, api_client: Any, *, namespace: str,
                 storage: Callable[[VersionRef], tuple[str, str]] | None = None,
                 image: str = DEFAULT_IMAGE, prometheus_url: str = "", replicas: int = 2,
                 token_secret: str | None = None) -> None:
        self.model = model
        self.api_client = api_client
        self.namespace = namespace
        self.name = resource_name(model)
        self.storage = storage
        self.image = image
        self.prometheus_url = prometheus_url
        self.replicas = replicas
        self.token_secret = token_secret
        self.endpoint = f"argo-rollouts://{namespace}/{self.name}"
        require_api(api_client, GROUP, VERSION, "Rollout", "Argo Rollouts")

    def manifests(self, ref: VersionRef, stable_version: str, plan: RolloutPlan
                  ) -> tuple[dict[str, Any], dict[str, Any]]:
        if self.storage is None:
            raise ClusterError("no storage for the Argo target: the model's URI and digest are unknown")
        uri, digest = self.storage(ref)
        rollout = render_rollout(self.model, ref.version, stable_version, namespace=self.namespace, plan=plan,
                                 image=self.image, storage_uri=uri, sha256=digest,
                                 prometheus_url=self.prometheus_url, replicas=self.replicas,
                                 token_secret=self.token_secret)
        return rollout, render_analysis(self.model, self.namespace, plan)

    def deploy(self, ref: VersionRef, stable_version: str, plan: RolloutPlan) -> dict[str, Any]:
        return self.apply(*self.manifests(ref, stable_version, plan))

    def apply(self, rollout: dict[str, Any], analysis: dict[str, Any]) -> dict[str, Any]:
        server_side_apply(self.api_client, GROUP, VERSION, TEMPLATES, self.namespace, analysis)
        return server_side_apply(self.api_client, GROUP, VERSION, ROLLOUTS, self.namespace, rollout)

    def read(self) -> dict[str, Any] | None:
        return read_object(self.api_client, GROUP, VERSION, ROLLOUTS, self.namespace, self.name)

    def _patch(self, body: dict[str, Any], status: bool) -> None:
        from kubernetes import client

        api: Any = client.CustomObjectsApi(self.api_client)
        call = api.patch_namespaced_custom_object_status if status else api.patch_namespaced_custom_object
        try:
            call(GROUP, VERSION, self.namespace, ROLLOUTS, self.name, body,
                 _content_type="application/merge-patch+json")
        except Exception as exc:
            raise explain(exc, "patch", f"{ROLLOUTS}{'/status' if status else ''}.{GROUP}", self.namespace,
                          self.name) from None

    def abort(self) -> None:
        self._patch(ABORT_PATCH, status=True)

    def _live(self) -> dict[str, Any]:
        live = self.read()
        if live is None:
            raise ClusterError(f"rollout {self.namespace}/{self.name} not found: nothing to promote")
        return live

    def promote(self) -> None:
        spec_patch, status_patch = promote_patches(self._live())
        if status_patch is not None:
            self._patch(status_patch, status=True)
        if spec_patch is not None:
            self._patch(spec_patch, status=False)

    def promote_full(self) -> None:
        """`kubectl argo rollouts promote --full`: skip the remaining steps and analysis."""
        live = self._live()
        status = live.get("status") or {}
        if status.get("currentPodHash") != status.get("stableRS"):
            self._patch(PROMOTE_FULL_PATCH, status=True)
        if (live.get("spec") or {}).get("paused"):
            self._patch({"spec": {"paused": False}}, status=False)
