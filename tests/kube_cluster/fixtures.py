"""Fixtures, imported by the conftest of each directory whose tests use them: one real control
plane (etcd + kube-apiserver, built from source) with the engines' real CRDs installed, shared by
every `kubernetes` test; each test gets its own namespace."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kube_cluster.control_plane import ControlPlane, build_control_plane, install_crds, running_control_plane


@pytest.fixture(scope="session")
def control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    cache = build_control_plane()
    with running_control_plane(cache, tmp_path_factory.mktemp("kube")) as plane:
        install_crds(plane, cache / "crds" / "inferenceservices.yaml", cache / "crds" / "argo-rollouts.yaml")
        yield plane


@pytest.fixture
def namespace(control_plane: ControlPlane) -> Iterator[str]:
    from kubernetes import client

    name = f"t-{uuid.uuid4().hex[:10]}"
    core = client.CoreV1Api(control_plane.api_client())
    core.create_namespace({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    yield name
    core.delete_namespace(name)


@pytest.fixture
def kubeconfig(control_plane: ControlPlane) -> Path:
    return control_plane.kubeconfig


def between_ticks(api_client: Any, namespace: str, model: str = "credit") -> bool:
    """No deploy job holds the rollout's Lease right now: a job holds it only while it reads,
    decides and writes (a tick), then sleeps `interval`. A job SIGKILLed here leaves no lease
    behind; one killed inside a tick leaves its lease to expire (30 s) before a re-run gets in,
    which tests/kube_cluster/test_kserve_target.py covers with an expired lease."""
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    from mlops_bot.deploy.targets.cluster import ClusterStateStore

    name = ClusterStateStore(api_client, namespace, model).name
    try:
        lease = client.CoordinationV1Api(api_client).read_namespaced_lease(name, namespace)
    except ApiException as exc:
        if exc.status == 404:
            return True
        raise
    return not lease.spec.holder_identity
