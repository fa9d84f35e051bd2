"""Fixtures, imported by the conftest of each directory whose tests use them: one real control
plane (etcd + kube-apiserver, built from source) with the engines' real CRDs installed, shared by
every `kubernetes` test; each test gets its own namespace."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from kube_cluster.control_plane import ControlPlane, build_control_plane, install_crds, running_control_plane


@pytest.fixture(scope="session")
def control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    cache = build_control_plane()
    with running_control_plane(cache, tmp_path_factory.mktemp("kube")) as plane:
        install_crds(plane, cache / "crds" / "inferenceservices.yaml")
        install_crds(plane, cache / "crds" / "argo-rollouts.yaml")
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
