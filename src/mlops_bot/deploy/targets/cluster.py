"""The Kubernetes API edge shared by the cluster targets (KServe, Argo Rollouts): connecting,
server-side apply, one-line errors a person can act on, and the rollout state kept in the cluster.

Server-side apply is `PATCH` with `Content-Type: application/apply-patch+yaml` and a field manager
(the Python client sends a merge patch unless `_content_type` says otherwise). We never force: a
field another manager owns is a 409 conflict, reported with who owns what.

The rollout state lives in a ConfigMap next to the served object (`mlops-bot-rollout-<name>`), so a
re-run of the deploy job, or a second runner, resumes the rollout; writes carry the
`resourceVersion` they read, so two controllers cannot silently overwrite each other.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mlops_bot.deploy import controller
from mlops_bot.deploy.rollout import RolloutState
from mlops_bot.errors import MlopsError

FIELD_MANAGER = "mlops-bot"
APPLY = "application/apply-patch+yaml"
HISTORY = 500


class ClusterError(MlopsError):
    """The cluster refused or could not be reached; the message says what to fix."""


class StateConflict(ClusterError, controller.StateConflict):
    """Another controller wrote the rollout state since we read it."""


def connect(kubeconfig: str | None = None, context: str | None = None) -> Any:
    """An ApiClient from `kubeconfig` (a path, or the file's content as the deploy template passes
    a secret), else $KUBECONFIG / ~/.kube/config, else the in-cluster service account."""
    try:
        from kubernetes import client, config
    except ImportError:
        raise ClusterError("the kubernetes target needs the kubernetes client: "
                           "pip install 'mlops-bot[kubernetes]'") from None
    if kubeconfig and not Path(kubeconfig).is_file() and "apiVersion" in kubeconfig:
        import yaml

        try:
            document = yaml.safe_load(kubeconfig)
        except yaml.YAMLError as exc:
            raise ClusterError(f"the kubeconfig content given is not YAML: {exc}") from None
        configuration = client.Configuration()
        try:
            config.load_kube_config_from_dict(document, context=context, client_configuration=configuration)
        except Exception as exc:
            raise ClusterError(f"the kubeconfig content given cannot be used: {exc}") from None
        return client.ApiClient(configuration)
    try:
        return config.new_client_from_config(config_file=kubeconfig, context=context)
    except Exception as first:
        if os.environ.get("KUBERNETES_SERVICE_HOST"):
            try:
                config.load_incluster_config()
                return client.ApiClient()
            except Exception as exc:
                raise ClusterError(f"no Kubernetes cluster configured: in-cluster config failed: {exc}"
                                   ) from None
        where = kubeconfig or os.environ.get("KUBECONFIG") or "~/.kube/config"
        raise ClusterError(f"no Kubernetes cluster configured: cannot load kubeconfig {where} ({first}); "
                           "pass --kubeconfig or set KUBECONFIG") from None


def explain(exc: Exception, verb: str, resource: str, namespace: str, name: str = "") -> ClusterError:
    """One line for a failed API call: unreachable, forbidden (verb + resource), missing CRD,
    apply conflict, invalid object."""
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError as TransportError

    target = f"{resource}/{name}" if name else resource
    if isinstance(exc, TransportError | OSError):
        return ClusterError(f"Kubernetes API unreachable ({type(exc).__name__}: {str(exc)[:160]}); "
                            "check the kubeconfig's server and the network")
    if not isinstance(exc, ApiException):
        return ClusterError(f"{verb} {target} in namespace {namespace} failed: {exc}")
    status = exc.status
    message = ""
    causes: list[dict[str, Any]] = []
    with contextlib.suppress(ValueError, TypeError):
        body = json.loads(exc.body or "")
        message = body.get("message", "")
        causes = (body.get("details") or {}).get("causes") or []
    if status == 401:
        return ClusterError(f"the Kubernetes API refused our credentials (401): {message or exc.reason}")
    if status == 403:
        return ClusterError(f"RBAC forbids '{verb}' on {resource} in namespace {namespace}: grant the deploy "
                            f"identity that verb (docs/deploy.md, RBAC); the API said: {message[:200]}")
    if status == 404 and not message:
        return ClusterError(f"{resource} is not served by this cluster: is its CRD installed? "
                            f"({verb} {target} got 404)")
    if status == 409:
        owners = sorted({f"{c['message']} on {c['field']}" if c.get("field") else c["message"]
                         for c in causes if c.get("message")})
        detail = "; ".join(owners) or message
        return ClusterError(f"server-side apply conflict on {target} in {namespace}: {detail[:300]} "
                            "(another field manager owns these fields; resolve it or let mlops-bot own them)")
    if status in (400, 422) or "failed to create typed patch object" in message:
        return ClusterError(f"the cluster rejected {target} as invalid: {message[:400]}")
    return ClusterError(f"{verb} {target} in namespace {namespace} failed ({status}): "
                        f"{message or exc.reason}")


def server_side_apply(api_client: Any, group: str, version: str, plural: str, namespace: str,
                      manifest: dict[str, Any], field_manager: str = FIELD_MANAGER) -> dict[str, Any]:
    """Apply `manifest` (a namespaced custom object) with server-side apply, never forcing."""
    from kubernetes import client

    api: Any = client.CustomObjectsApi(api_client)
    name = manifest["metadata"]["name"]
    try:
        result: dict[str, Any] | None = api.patch_namespaced_custom_object(
            group, version, namespace, plural, name, manifest, field_manager=field_manager,
            _content_type=APPLY)
    except Exception as exc:
        raise explain(exc, "patch", f"{plural}.{group}", namespace, name) from None
    if result is None:  # the generated client maps only 200; a created object (201) comes back empty
        result = read_object(api_client, group, version, plural, namespace, name) or {}
    return result


def read_object(api_client: Any, group: str, version: str, plural: str, namespace: str,
                name: str) -> dict[str, Any] | None:
    """The object, or None when it does not exist (a missing CRD is an error, not None)."""
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    api: Any = client.CustomObjectsApi(api_client)
    try:
        found: dict[str, Any] = api.get_namespaced_custom_object(group, version, namespace, plural, name)
    except ApiException as exc:
        if exc.status == 404 and exc.body and '"NotFound"' in exc.body and '"details"' in exc.body:
            return None
        raise explain(exc, "get", f"{plural}.{group}", namespace, name) from None
    except Exception as exc:
        raise explain(exc, "get", f"{plural}.{group}", namespace, name) from None
    return found


def require_api(api_client: Any, group: str, version: str, kind: str, engine: str) -> None:
    """Fail with 'engine not installed' when the cluster does not serve group/version kind."""
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    try:
        resources: Any = client.CustomObjectsApi(api_client).get_api_resources(group, version)
    except ApiException as exc:
        if exc.status == 404:
            raise ClusterError(f"{engine} is not installed on this cluster: no {kind} CRD "
                               f"({group}/{version}); install it first (docs/deploy.md)") from None
        raise explain(exc, "get", f"{group}/{version}", "-") from None
    except Exception as exc:
        raise explain(exc, "get", f"{group}/{version}", "-") from None
    items = resources.get("resources", []) if isinstance(resources, dict) else resources.resources or []
    kinds = {item["kind"] if isinstance(item, dict) else item.kind for item in items}
    if kind not in kinds:
        raise ClusterError(f"{engine} is not installed on this cluster: {group}/{version} has no {kind}")


class ClusterStateStore:
    """The rollout state in a ConfigMap; `save` writes only over the version `load` read."""

    def __init__(self, api_client: Any, namespace: str, name: str) -> None:
        self.api_client = api_client
        self.namespace = namespace
        self.name = f"mlops-bot-rollout-{name}"[:253]
        self._resource_version: str | None = None
        self._identity = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"

    @contextlib.contextmanager
    def locked(self, timeout: float = 120.0, lease_seconds: int = 30) -> Iterator[None]:
        """Hold the Lease `mlops-bot-rollout-<name>` (coordination.k8s.io) while reading, deciding
        and writing, as the file store holds its flock: two deploy jobs take turns. A lease its
        holder did not renew within `lease_seconds` (a killed job) is taken over. While held, a
        background thread renews it every third of `lease_seconds`, so a slow step (waiting for a
        revision to become ready) never lets a second job in."""
        from kubernetes import client
        from kubernetes.client.exceptions import ApiException

        api: Any = client.CoordinationV1Api(self.api_client)
        deadline = time.monotonic() + timeout
        holder = ""
        while True:
            now = datetime.datetime.now(datetime.UTC)
            stamp = now.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            body: dict[str, Any] = {
                "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": self.name, "namespace": self.namespace},
                "spec": {"holderIdentity": self._identity, "leaseDurationSeconds": lease_seconds,
                         "acquireTime": stamp, "renewTime": stamp},
            }
            try:
                try:
                    lease = api.read_namespaced_lease(self.name, self.namespace)
                except ApiException as exc:
                    if exc.status != 404:
                        raise
                    api.create_namespaced_lease(self.namespace, body)
                    break
                spec = lease.spec
                holder = spec.holder_identity or ""
                renewed = spec.renew_time or spec.acquire_time
                held_for = spec.lease_duration_seconds or 0
                expired = renewed is None or (now - renewed).total_seconds() > held_for
                if not holder or expired:
                    body["metadata"]["resourceVersion"] = lease.metadata.resource_version
                    api.replace_namespaced_lease(self.name, self.namespace, body)
                    break
            except ApiException as exc:
                if exc.status != 409:  # 409: someone else got there first; look again
                    raise explain(exc, "update", "leases.coordination.k8s.io", self.namespace,
                                  self.name) from None
            except Exception as exc:
                raise explain(exc, "get", "leases.coordination.k8s.io", self.namespace, self.name) from None
            if time.monotonic() > deadline:
                raise ClusterError(f"the rollout of {self.name} in {self.namespace} is locked by {holder} "
                                   f"(lease {self.namespace}/{self.name}) for more than {timeout:g}s")
            time.sleep(0.2)
        stop = threading.Event()

        def renew() -> None:
            while not stop.wait(max(lease_seconds / 3, 1.0)):
                with contextlib.suppress(Exception):  # a missed renewal is retried on the next beat
                    lease = api.read_namespaced_lease(self.name, self.namespace)
                    if lease.spec.holder_identity != self._identity:
                        return
                    # A plain body: MicroTime wants six fractional digits, which the client's
                    # datetime serialisation drops at .000000.
                    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
                    renewed = {**body, "metadata": {**body["metadata"],
                                                    "resourceVersion": lease.metadata.resource_version}}
                    renewed["spec"] = {**body["spec"], "renewTime": stamp}
                    api.replace_namespaced_lease(self.name, self.namespace, renewed)

        renewer = threading.Thread(target=renew, name=f"lease-{self.name}", daemon=True)
        renewer.start()
        try:
            yield
        finally:
            stop.set()
            renewer.join(timeout=10)
            with contextlib.suppress(Exception):
                lease = api.read_namespaced_lease(self.name, self.namespace)
                if lease.spec.holder_identity == self._identity:
                    lease.spec.holder_identity = None
                    api.replace_namespaced_lease(self.name, self.namespace, lease)

    def load(self, model: str) -> RolloutState:
        from kubernetes import client
        from kubernetes.client.exceptions import ApiException

        api: Any = client.CoreV1Api(self.api_client)
        try:
            found = api.read_namespaced_config_map(self.name, self.namespace)
        except ApiException as exc:
            if exc.status == 404:
                self._resource_version = None
                return RolloutState(model=model)
            raise explain(exc, "get", "configmaps", self.namespace, self.name) from None
        except Exception as exc:
            raise explain(exc, "get", "configmaps", self.namespace, self.name) from None
        self._resource_version = found.metadata.resource_version
        text = (found.data or {}).get("state.json")
        return RolloutState(model=model) if not text else RolloutState.model_validate_json(text)

    def save(self, state: RolloutState) -> None:
        from kubernetes import client

        api: Any = client.CoreV1Api(self.api_client)
        body: dict[str, Any] = {
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": self.name, "namespace": self.namespace,
                         "labels": {"app.kubernetes.io/managed-by": FIELD_MANAGER},
                         "annotations": {"mlops-bot/model": state.model}},
            # A ConfigMap holds at most 1 MiB: keep the newest transitions.
            "data": {"state.json": state.model_copy(update={"history": state.history[-HISTORY:]})
                     .model_dump_json()},
        }
        try:
            if self._resource_version is None:
                saved = api.create_namespaced_config_map(self.namespace, body)
            else:
                body["metadata"]["resourceVersion"] = self._resource_version
                saved = api.replace_namespaced_config_map(self.name, self.namespace, body)
        except Exception as exc:
            from kubernetes.client.exceptions import ApiException

            if isinstance(exc, ApiException) and exc.status == 409:
                raise StateConflict(f"the rollout state of {state.model} (configmap {self.namespace}/"
                                   f"{self.name}) was changed by another controller; re-run to pick it up"
                                   ) from None
            verb = "create" if self._resource_version is None else "update"
            raise explain(exc, verb, "configmaps", self.namespace, self.name) from None
        self._resource_version = saved.metadata.resource_version
