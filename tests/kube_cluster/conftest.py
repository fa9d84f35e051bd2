from kube_cluster.fixtures import control_plane, kubeconfig, namespace

__all__ = ["control_plane", "kubeconfig", "namespace"]
