"""Fixtures shared across test directories. The real control plane is defined here, once: a session
fixture imported into two directories' conftests would be two fixtures, each starting its own
etcd + kube-apiserver in the same run."""

from kube_cluster.fixtures import control_plane, kubeconfig, namespace

__all__ = ["control_plane", "kubeconfig", "namespace"]
