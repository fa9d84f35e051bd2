"""The `kubernetes` target: KServe `InferenceService` (serving.kserve.io/v1beta1) manifests.

KServe's own canary support is used for the steps: the new version goes in `spec.predictor`
with `canaryTrafficPercent` set to the step weight; KServe keeps the last ready revision as the
stable one. Promotion = removing `canaryTrafficPercent` (100 %); abort = `canaryTrafficPercent: 0`.
The model server image is ours (OIP v2), so the predictor is a custom container, not a built-in
runtime. Manifests are built by pure functions; `apply_manifests` sends them with the kubernetes
client (server-side apply of a custom object).
"""

from __future__ import annotations

import re
from typing import Any

from mlops_bot.errors import MlopsError

GROUP, VERSION, PLURAL = "serving.kserve.io", "v1beta1", "inferenceservices"
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
    canary_percent: int | None = None,
    namespace: str = "default",
    image: str = DEFAULT_IMAGE,
    min_replicas: int = 1,
) -> dict[str, Any]:
    """The InferenceService for `version`; with `canary_percent` it takes that share of traffic
    while the previous ready revision keeps the rest."""
    if canary_percent is not None and not 0 <= canary_percent <= 100:
        raise MlopsError(f"canaryTrafficPercent must be within 0..100, got {canary_percent}")
    predictor: dict[str, Any] = {
        "minReplicas": min_replicas,
        "containers": [{
            "name": "kserve-container",
            "image": image,
            "args": ["serve", model, "--host", "0.0.0.0", "--port", "8080",  # noqa: S104 - pod network
                     "--model", "/mnt/models", "--version", version],
            "env": [{"name": "STORAGE_URI", "value": storage_uri}],
            "ports": [{"containerPort": 8080, "protocol": "TCP"}],
            "readinessProbe": {"httpGet": {"path": "/v2/health/ready", "port": 8080}},
            "livenessProbe": {"httpGet": {"path": "/v2/health/live", "port": 8080}},
            "securityContext": {"runAsNonRoot": True, "runAsUser": 10001,
                                "allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True},
        }],
    }
    if canary_percent is not None:
        predictor["canaryTrafficPercent"] = canary_percent
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "InferenceService",
        "metadata": {
            "name": resource_name(model),
            "namespace": namespace,
            "labels": {"app.kubernetes.io/managed-by": "mlops-bot"},
            "annotations": {"mlops-bot/model": model, "mlops-bot/version": version,
                            "serving.kserve.io/deploymentMode": "Serverless"},
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


def apply_manifests(manifests: list[dict[str, Any]], api_client: Any | None = None) -> list[Any]:
    """Server-side apply each InferenceService through the CustomObjectsApi."""
    try:
        from kubernetes import client, config
    except ImportError:
        raise MlopsError(
            "the kubernetes target needs the 'kubernetes' package (pip install kubernetes)"
        ) from None
    if api_client is None:
        try:
            config.load_kube_config()
        except Exception:  # try in-cluster next; report both as one clear error
            try:
                config.load_incluster_config()
            except Exception as exc:
                raise MlopsError(
                    f"no Kubernetes cluster configured (kubeconfig or in-cluster): {exc}"
                ) from None
        api_client = client.ApiClient()
    api = client.CustomObjectsApi(api_client)
    results = []
    for manifest in manifests:
        results.append(api.patch_namespaced_custom_object(
            GROUP, VERSION, manifest["metadata"]["namespace"], PLURAL, manifest["metadata"]["name"], manifest,
            field_manager="mlops-bot", force=True,
        ))
    return results
