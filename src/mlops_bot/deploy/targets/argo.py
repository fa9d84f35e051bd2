"""The Argo Rollouts engine, for teams serving with plain Deployments: Argo does the stepping, we
render what it needs from the plan, apply it, mirror its status and pass /abort and /promote on.

- `render_rollout`: a `Rollout` (argoproj.io/v1alpha1) whose canary steps are the plan's
  (`setWeight`, then `pause` with the hold as `duration`, or without for a manual hold), running our
  model server image, with a background analysis from the first step on;
- `render_analysis`: an `AnalysisTemplate` whose Prometheus metrics are the plan's gates (success
  rate, p99 latency, p99 ratio to stable, prediction drift as a Jensen-Shannon distance between the
  canary's and the stable version's prediction distributions), each query built from the Prometheus
  metrics source's templates (`deploy/prometheus.py`, the same series the KServe target reads) as
  their increase over the analysis window; every gate needs `min_requests` in the window (no data:
  Inconclusive, a pause, never a pass). `interval` and `failureLimit` come from the plan (Argo
  fails a metric when failures exceed `failureLimit`, we abort at `failure_limit` failures: limit - 1);
- the control fields are Argo's own, as `kubectl argo rollouts` writes them (sources of
  github.com/argoproj/argo-rollouts v1.8, pkg/kubectl-argo-rollouts/cmd/abort and promote): abort =
  merge patch `{"status":{"abort":true}}` on the status subresource; promote = clear the pause
  conditions (or step past a running analysis) on status, plus `spec.paused: false` if paused;
- `ArgoTarget`: the I/O edge (apply both, read, abort, promote); what a Rollout's status means for
  the GitHub deployment and the rollout state is decided in `deploy/argo_mirror.py` (pure).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from mlops_bot.config import RolloutGates
from mlops_bot.deploy.plan import RolloutPlan
from mlops_bot.deploy.prometheus import DEFAULT_QUERIES, render_query
from mlops_bot.deploy.routing import VersionRef
from mlops_bot.deploy.serve_args import POD_MODEL_DIR, POD_PORT, pod_args
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
CANARY, STABLE = "{{args.version}}", "{{args.stable-version}}"
PROMOTE_FULL_PATCH: dict[str, Any] = {"status": {"promoteFull": True}}
# No data (an empty vector, or NaN from 0/0 before any request) is neither a success nor a failure:
# Argo counts the measurement Inconclusive, and an inconclusive run pauses the rollout (never a pass).
_DATA = "len(result) > 0 && !isNaN(result[0])"


def _conditions(passes: str, fails: str) -> dict[str, str]:
    return {"successCondition": f"{_DATA} && {passes}", "failureCondition": f"{_DATA} && {fails}"}


def _duration(seconds: float) -> str:
    return f"{max(1, math.ceil(seconds))}s"


def analysis_window(interval: float) -> tuple[str, str]:
    """(range, resolution) of the subquery each analysis query reads the counters over: four
    intervals, at least a minute, sampled every interval or twenty times, whichever is finer (a
    version's first counts show in the window after two samples)."""
    window = max(interval * 4, 60)
    return _duration(window), _duration(min(interval, window / 20))


class AnalysisQueries:
    """The PromQL of the analysis, built from the Prometheus metrics source's query templates
    (`deploy/prometheus.py`, overridable under `rollout.prometheus.queries`): each template's
    cumulative counts per version become their increase over the analysis window (a subquery), for
    the canary (`{{args.version}}`) or the stable version (`{{args.stable-version}}`). Pure."""

    def __init__(self, interval: float, min_requests: int, queries: Mapping[str, str] | None = None) -> None:
        self.window = ":".join(analysis_window(interval))
        self.min_requests = min_requests
        self.templates = {**DEFAULT_QUERIES, **(queries or {})}

    def increase(self, name: str, version: str) -> str:
        counts = render_query(self.templates[name], model="{{args.model}}", namespace="{{args.namespace}}",
                              version=version)
        return f"increase(({counts})[{self.window}])"

    def total(self, name: str, version: str) -> str:
        return f"sum({self.increase(name, version)})"

    def enough(self, version: str) -> str:
        """A filter: one sample when `version` served at least min_requests in the window, else none."""
        return f"({self.total('requests', version)} >= {self.min_requests})"

    def p99(self, version: str) -> str:
        return f"histogram_quantile(0.99, sum by (le) ({self.increase('latency_buckets', version)}))"

    def distribution(self, version: str) -> str:
        """The share of each prediction label among the version's predictions in the window."""
        counts = f"sum by (prediction) ({self.increase('predictions', version)})"
        return f"({counts} / on() group_left() sum({counts}))"

    def success_rate(self, min_rate: float) -> str:
        """As `deploy/gates.py` decides it: judged from min_requests on, or earlier once the errors
        already seen make `min_rate` unreachable (more than (1 - min_rate) x min_requests): a broken
        canary fails after a handful of requests, not after min_requests."""
        errors, requests = self.total("errors", CANARY), self.total("requests", CANARY)
        hopeless = f"({errors} > {(1 - min_rate) * self.min_requests!r})"
        return f"(1 - {errors} / {requests}) and on() ({self.enough(CANARY)} or on() {hopeless})"

    def p99_latency_ms(self) -> str:
        return f"({self.p99(CANARY)} * 1000) and on() {self.enough(CANARY)}"

    def p99_latency_ratio(self) -> str:
        return (f"({self.p99(CANARY)} / {self.p99(STABLE)}) and on() {self.enough(CANARY)} "
                f"and on() {self.enough(STABLE)}")

    def prediction_drift(self) -> str:
        """Jensen-Shannon distance (base 2), as `deploy/gates.prediction_drift` computes it with scipy:
        sqrt((KL(P||M) + KL(Q||M)) / 2 / ln 2), M = (P + Q) / 2, a label missing on one side counting
        0 there; only labels a side predicted enter its KL sum (0 * ln 0 = 0)."""
        p, q = self.distribution(CANARY), self.distribution(STABLE)
        p_all, q_all = f"({p} or on(prediction) ({q} * 0))", f"({q} or on(prediction) ({p} * 0))"
        m = f"(({p_all} + on(prediction) {q_all}) / 2)"

        def kl(x: str) -> str:
            seen = f"({x} > 0)"
            return f"sum({seen} * on(prediction) ln({seen} / on(prediction) {m}))"

        return (f"sqrt(({kl(p)} + {kl(q)}) / 2 / {math.log(2)!r}) and on() {self.enough(CANARY)} "
                f"and on() {self.enough(STABLE)}")


def analysis_metrics(gates: RolloutGates, interval: float, failure_limit: int,
                     initial_delay: float = 0.0, queries: Mapping[str, str] | None = None
                     ) -> list[dict[str, Any]]:
    """The plan's gates as AnalysisTemplate metrics (Prometheus provider). Every gate needs the
    canary to have served `min_requests` in the window (the comparisons with stable, stable too):
    fewer is no data, an inconclusive measurement (a pause), never a pass; except that the success
    rate fails early on errors that already make it unreachable, as on the other targets."""
    promql = AnalysisQueries(interval, gates.min_requests, queries)
    common: dict[str, Any] = {"interval": _duration(interval), "failureLimit": max(0, failure_limit - 1)}
    if initial_delay > 0:
        common["initialDelay"] = _duration(initial_delay)

    def metric(name: str, query: str, passes: str, fails: str) -> dict[str, Any]:
        return {"name": name, **common, **_conditions(passes, fails),
                "provider": {"prometheus": {"address": "{{args.prometheus}}", "query": query}}}

    metrics = []
    if gates.min_success_rate is not None:
        limit = gates.min_success_rate
        metrics.append(metric("success-rate", promql.success_rate(limit), f"result[0] >= {limit}",
                              f"result[0] < {limit}"))
    if gates.max_p99_latency_ms is not None:
        limit = gates.max_p99_latency_ms
        metrics.append(metric("p99-latency", promql.p99_latency_ms(), f"result[0] <= {limit}",
                              f"result[0] > {limit}"))
    if gates.max_p99_latency_ratio is not None:
        limit = gates.max_p99_latency_ratio
        metrics.append(metric("p99-latency-ratio", promql.p99_latency_ratio(), f"result[0] <= {limit}",
                              f"result[0] > {limit}"))
    if gates.max_prediction_drift is not None:
        limit = gates.max_prediction_drift
        metrics.append(metric("prediction-drift", promql.prediction_drift(), f"result[0] <= {limit}",
                              f"result[0] > {limit}"))
    if not metrics:  # min_requests alone still keeps a canary without traffic from passing
        metrics.append(metric("min-requests", promql.total("requests", CANARY),
                              f"result[0] >= {gates.min_requests}", "false"))
    return metrics


def render_analysis(model: str, namespace: str, plan: RolloutPlan,
                    queries: Mapping[str, str] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "AnalysisTemplate",
        "metadata": {"name": f"{resource_name(model)}-gates", "namespace": namespace,
                     "labels": {"app.kubernetes.io/managed-by": "mlops-bot"}},
        "spec": {
            "args": [{"name": arg} for arg in ANALYSIS_ARGS],
            "metrics": analysis_metrics(plan.gates, plan.interval, plan.failure_limit, plan.initial_delay,
                                        queries),
        },
    }


def render_rollout(model: str, version: str, stable_version: str, *, namespace: str, plan: RolloutPlan,
                   image: str, storage_uri: str, sha256: str | None, prometheus_url: str,
                   replicas: int = 2, token_secret: str | None = None,
                   traffic: Mapping[str, Any] | None = None, trusted_types: Iterable[str] = ()
                   ) -> dict[str, Any]:
    """The Rollout for `version`; Argo keeps the previous pod template as stable. `traffic`: the
    canary strategy's `trafficRouting`, `canaryService` and `stableService`, passed through (from
    `rollout.argo`, validated by the config's schema); without it a weight is a share of pods.
    `trusted_types` (the model's `model.trusted_types`) go to the server as `serve_args` renders
    them, as on every target."""
    name = resource_name(model)
    steps: list[dict[str, Any]] = []
    for step in plan.steps:
        steps.append({"setWeight": step.weight})
        steps.append({"pause": {} if step.hold == "manual" else {"duration": _duration(float(step.hold))}})
    args = pod_args(model, version, storage_uri, sha256, trusted_types)
    labels = {"app.kubernetes.io/name": name, "app.kubernetes.io/managed-by": "mlops-bot"}
    # The container is written as Argo's controller re-serialises it when it updates the Rollout
    # (its revision annotation): `resources: {}` present, no empty `env`. Otherwise that update
    # changes the (atomic) containers list and takes it over, and our next apply conflicts.
    container: dict[str, Any] = {
        "name": "model-server", "image": image, "args": args, "resources": {},
        "ports": [{"name": "http", "containerPort": POD_PORT}],
        "readinessProbe": {"httpGet": {"path": "/v2/health/ready", "port": POD_PORT}},
        "livenessProbe": {"httpGet": {"path": "/v2/health/live", "port": POD_PORT}},
        "volumeMounts": [{"name": "models", "mountPath": POD_MODEL_DIR},
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
                **(traffic or {}),
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
                 token_secret: str | None = None, queries: Mapping[str, str] | None = None,
                 traffic: Mapping[str, Any] | None = None, trusted_types: Iterable[str] = ()) -> None:
        self.model = model
        self.api_client = api_client
        self.namespace = namespace
        self.name = resource_name(model)
        self.storage = storage
        self.image = image
        self.prometheus_url = prometheus_url
        self.replicas = replicas
        self.token_secret = token_secret
        self.queries = dict(queries or {})
        self.traffic = dict(traffic or {})
        self.trusted_types = list(trusted_types)  # the model's `model.trusted_types`, every version
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
                                 token_secret=self.token_secret, traffic=self.traffic,
                                 trusted_types=self.trusted_types)
        return rollout, render_analysis(self.model, self.namespace, plan, self.queries)

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
