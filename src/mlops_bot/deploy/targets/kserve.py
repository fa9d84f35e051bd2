"""The KServe target: a canary on an `InferenceService` (serving.kserve.io/v1beta1), step by step.

KServe's own canary does the traffic split (Serverless/Knative mode only, not RawDeployment): the
new version goes into `spec.predictor` with `canaryTrafficPercent` at the step's weight, and KServe
keeps the last ready revision as the previous one for the rest. Promotion removes
`canaryTrafficPercent` (100 % to the latest revision); abort sets it to 0 at once, then restores
the stable version's spec. Every change is a server-side apply under our field manager
(`targets/cluster.py`), and a step's hold starts only once `status` shows the revision ready and
the split in place (`health`). The model server is ours (OIP v2), a custom container that
downloads the version's release asset at start and verifies its SHA-256 before loading it.

Manifests are pure functions; `KServeTarget` is the I/O. Metrics come from a metrics source
(Prometheus, `deploy/prometheus.py`) since the pods are not reachable from a runner.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from mlops_bot.deploy.metrics import MetricsSnapshot
from mlops_bot.deploy.routing import RoutingRequest, VersionRef
from mlops_bot.deploy.serve_args import POD_MODEL_DIR, POD_PORT, pod_args
from mlops_bot.deploy.targets.cluster import ClusterError, read_object, require_api, server_side_apply
from mlops_bot.errors import MlopsError

GROUP, VERSION, PLURAL, KIND = "serving.kserve.io", "v1beta1", "inferenceservices", "InferenceService"
DEFAULT_IMAGE = "mlops-bot-server:latest"
_DNS = re.compile(r"[^a-z0-9-]+")


def resource_name(model: str) -> str:
    """A DNS-1035 label from a model name (KServe names must be one)."""
    name = _DNS.sub("-", model.lower()).strip("-")
    if not name or not name[0].isalpha():
        name = f"m-{name}"
    return name[:63].rstrip("-")


def inference_service(
    model: str,
    *,
    storage_uri: str,
    version: str,
    sha256: str | None = None,
    canary_percent: int | None = None,
    namespace: str = "default",
    image: str = DEFAULT_IMAGE,
    min_replicas: int = 1,
    token_secret: str | None = None,
    trusted_types: Iterable[str] = (),
) -> dict[str, Any]:
    """The InferenceService for `version`; with `canary_percent` it takes that share of traffic
    while the previous ready revision keeps the rest. The container fetches `storage_uri` at start
    and refuses a file whose SHA-256 is not `sha256`; `token_secret` names a Secret whose `token`
    key authenticates the download (private repositories); `trusted_types` (the model's
    `model.trusted_types`) go to the server as `serve_args` renders them."""
    if canary_percent is not None and not 0 <= canary_percent <= 100:
        raise MlopsError(f"canaryTrafficPercent must be within 0..100, got {canary_percent}")
    args = pod_args(model, version, storage_uri, sha256, trusted_types)
    env: list[dict[str, Any]] = [{"name": "STORAGE_URI", "value": storage_uri}]
    if token_secret:
        env.append({"name": "MLOPS_BOT_MODEL_TOKEN",
                    "valueFrom": {"secretKeyRef": {"name": token_secret, "key": "token"}}})
    predictor: dict[str, Any] = {
        "minReplicas": min_replicas,
        "containers": [{
            "name": "kserve-container",
            "image": image,
            "args": args,
            "env": env,
            "ports": [{"containerPort": POD_PORT, "protocol": "TCP"}],
            # The root filesystem is read-only: the download and Python's temp files get emptyDirs.
            "volumeMounts": [{"name": "models", "mountPath": POD_MODEL_DIR},
                             {"name": "tmp", "mountPath": "/tmp"}],  # noqa: S108 - the pod's own emptyDir
            "readinessProbe": {"httpGet": {"path": "/v2/health/ready", "port": POD_PORT}},
            "livenessProbe": {"httpGet": {"path": "/v2/health/live", "port": POD_PORT}},
            "securityContext": {"runAsNonRoot": True, "runAsUser": 10001,
                                "allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True},
        }],
    }
    predictor["volumes"] = [{"name": "models", "emptyDir": {}}, {"name": "tmp", "emptyDir": {}}]
    if canary_percent is not None:
        predictor["canaryTrafficPercent"] = canary_percent
    annotations = {"mlops-bot/model": model, "mlops-bot/version": version,
                   "mlops-bot/storage-uri": storage_uri, "serving.kserve.io/deploymentMode": "Serverless"}
    if sha256:
        annotations["mlops-bot/sha256"] = sha256
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": KIND,
        "metadata": {
            "name": resource_name(model),
            "namespace": namespace,
            "labels": {"app.kubernetes.io/managed-by": "mlops-bot"},
            "annotations": annotations,
        },
        "spec": {"predictor": predictor},
    }


def step_manifests(model: str, version: str, storage_uri: str, weights: list[int], **kwargs: Any
                   ) -> list[dict[str, Any]]:
    """One manifest per rollout step, then the promotion (no canaryTrafficPercent)."""
    manifests = [
        inference_service(model, storage_uri=storage_uri, version=version, canary_percent=w, **kwargs)
        for w in weights
    ]
    manifests.append(inference_service(model, storage_uri=storage_uri, version=version, **kwargs))
    return manifests


def serving_state(obj: dict[str, Any] | None, routing: RoutingRequest) -> tuple[bool, str]:
    """Does the object's `status` show `routing` in place? (ready, what is missing). Pure: KServe
    marks it with the Ready condition, the predictor's latest ready revision equal to the latest
    created one, and a traffic entry for the latest revision at the canary's percent (100 % when
    there is no canary)."""
    if obj is None:
        return False, "the InferenceService does not exist"
    want = routing.canary.version if routing.canary is not None else routing.stable.version
    have = (obj.get("metadata", {}).get("annotations") or {}).get("mlops-bot/version")
    if have != want:
        return False, f"the InferenceService serves {have}, not {want}"
    status = obj.get("status") or {}
    generation = obj.get("metadata", {}).get("generation")
    if status.get("observedGeneration") is not None and status.get("observedGeneration") != generation:
        return False, f"KServe has not seen generation {generation} yet"
    conditions = {c.get("type"): c for c in status.get("conditions") or []}
    ready = conditions.get("Ready") or {}
    if ready.get("status") != "True":
        why = ready.get("message") or ready.get("reason") or "no Ready condition"
        return False, f"InferenceService not ready: {why}"[:200]
    predictor = (status.get("components") or {}).get("predictor") or {}
    latest, latest_ready = predictor.get("latestCreatedRevision"), predictor.get("latestReadyRevision")
    if not latest or latest != latest_ready:
        return False, f"revision {latest} not ready (latest ready: {latest_ready})"
    percent = sum(int(t.get("percent") or 0) for t in predictor.get("traffic") or []
                  if t.get("latestRevision") or t.get("revisionName") == latest)
    expected = routing.weight if routing.canary is not None else 100
    if percent != expected:
        return False, f"revision {latest} has {percent}% of the traffic, not {expected}% yet"
    return True, ""


class MetricsSource(Protocol):
    def snapshot(self, model: str, namespace: str, routing: RoutingRequest) -> MetricsSnapshot: ...


class KServeTarget:
    """One model's InferenceService. `storage` maps a version to (storage URI, SHA-256)."""

    def __init__(self, model: str, api_client: Any, *, namespace: str,
                 storage: Callable[[VersionRef], tuple[str, str]],
                 image: str = DEFAULT_IMAGE, metrics_source: MetricsSource | None = None,
                 token_secret: str | None = None, min_replicas: int = 1,
                 trusted_types: Iterable[str] = ()) -> None:
        self.model = model
        self.api_client = api_client
        self.namespace = namespace
        self.name = resource_name(model)
        self.storage = storage
        self.image = image
        self.metrics_source = metrics_source
        self.token_secret = token_secret
        self.min_replicas = min_replicas
        self.trusted_types = list(trusted_types)  # the model's `model.trusted_types`, every version
        self.endpoint = f"kserve://{namespace}/{self.name}"
        self._routing: RoutingRequest | None = None
        require_api(api_client, GROUP, VERSION, KIND, "KServe")

    def manifest(self, ref: VersionRef, canary_percent: int | None) -> dict[str, Any]:
        uri, digest = self.storage(ref)
        return inference_service(self.model, storage_uri=uri, version=ref.version, sha256=digest,
                                 canary_percent=canary_percent, namespace=self.namespace, image=self.image,
                                 min_replicas=self.min_replicas, token_secret=self.token_secret,
                                 trusted_types=self.trusted_types)

    def read(self) -> dict[str, Any] | None:
        return read_object(self.api_client, GROUP, VERSION, PLURAL, self.namespace, self.name)

    def _apply(self, manifest: dict[str, Any]) -> dict[str, Any]:
        return server_side_apply(self.api_client, GROUP, VERSION, PLURAL, self.namespace, manifest)

    def apply(self, routing: RoutingRequest) -> None:
        self._routing = routing
        if routing.canary is not None:
            self._apply(self.manifest(routing.canary, routing.weight))
            return
        live = self.read()
        annotations = ((live or {}).get("metadata") or {}).get("annotations") or {}
        serving = annotations.get("mlops-bot/version")
        predictor = ((live or {}).get("spec") or {}).get("predictor") or {}
        canary_set = predictor.get("canaryTrafficPercent") is not None
        if live is not None and serving not in (None, routing.stable.version) and canary_set:
            # Abort: all traffic back to the previous revision at once, then the stable spec again.
            current = inference_service(
                self.model, storage_uri=annotations.get("mlops-bot/storage-uri", ""), version=serving,
                sha256=annotations.get("mlops-bot/sha256"), canary_percent=0, namespace=self.namespace,
                image=self.image, min_replicas=self.min_replicas, token_secret=self.token_secret,
                trusted_types=self.trusted_types)
            self._apply(current)
        self._apply(self.manifest(routing.stable, None))

    def health(self, routing: RoutingRequest) -> tuple[bool, bool, str]:
        """KServe (Knative) re-creates its own pods: the target is always 'alive'; ready once
        `status` shows the routing in place."""
        ready, detail = serving_state(self.read(), routing)
        return True, ready, detail

    def metrics(self) -> MetricsSnapshot:
        if self.metrics_source is None:
            raise ClusterError("no metrics source for the KServe target: set rollout.prometheus.url in "
                               ".github/mlops.yml (docs/deploy.md)")
        if self._routing is None:
            raise ClusterError("no routing applied yet")
        return self.metrics_source.snapshot(self.model, self.namespace, self._routing)
