"""The real Argo Rollouts controller on the test control plane, with what it needs to see pods:
kube-controller-manager (its ReplicaSet controller makes the pods), kube-scheduler (binds them to a
node) and kwok (sigs.k8s.io/kwok: a fake node whose pods it marks Running and Ready, as a kubelet
would; no container runs). All four are built from source by tests/kube_cluster/build.sh and run
on 127.0.0.1 (Argo's metrics/healthz servers are switched to loopback at build time).

A pod has no process behind it: the traffic a Service would send to the ready pods of each version
goes to real `mlops-bot serve` processes, one per version (see test_deploy_argo_e2e.py)."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

from kube_cluster.control_plane import ControlPlane

NODE = "kwok-node-0"
BINARIES = ("kube-controller-manager", "kube-scheduler", "kwok", "rollouts-controller")


def harness_problem(cache: Path) -> str | None:
    """Why the harness cannot run (the build's own words), or None."""
    failed = cache / "log" / "argo-harness.failed"
    if failed.is_file():
        return f"the Argo Rollouts harness did not build: {failed.read_text().strip()}"
    missing = [name for name in BINARIES if not (cache / "bin" / name).is_file()]
    if missing:
        return f"the Argo Rollouts harness is missing {', '.join(missing)} in {cache / 'bin'}: run " \
               "tests/kube_cluster/build.sh"
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start(command: list[str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(command, stdout=log.open("wb"), stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, env={**os.environ, "POD_NAMESPACE": "argo-rollouts"})


def _wait(check, what: str, processes: list[tuple[subprocess.Popen[bytes], Path]],  # type: ignore[no-untyped-def]
          timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for process, log in processes:
            if process.poll() is not None:
                raise RuntimeError(f"{log.stem} exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        with contextlib.suppress(Exception):
            if check():
                return
        time.sleep(0.2)
    tails = "\n".join(f"--- {log.stem}\n{log.read_text()[-1500:]}" for _, log in processes)
    raise RuntimeError(f"{what} not within {timeout:g}s:\n{tails}")


@contextlib.contextmanager
def argo_controllers(plane: ControlPlane, cache: Path, directory: Path) -> Iterator[None]:
    """Start the four controllers and a kwok node; stop them on exit."""
    from kubernetes import client

    problem = harness_problem(cache)
    if problem:
        raise RuntimeError(problem)
    directory.mkdir(parents=True, exist_ok=True)
    bin_dir, kubeconfig = cache / "bin", str(plane.kubeconfig)
    api = plane.api_client()
    core = client.CoreV1Api(api)
    core.create_node({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": NODE, "annotations": {"kwok.x-k8s.io/node": "fake"},
                     "labels": {"kubernetes.io/hostname": NODE, "type": "kwok"}},
        "status": {"allocatable": {"cpu": "32", "memory": "256Gi", "pods": "110"},
                   "capacity": {"cpu": "32", "memory": "256Gi", "pods": "110"}},
    })
    # The API server's TaintNodesByCondition admission taints a new node not-ready; kube-controller-
    # manager's node-lifecycle controller would lift it once kwok reports Ready, but it would also
    # evict pods when a loaded machine delays kwok's heartbeats: we lift the taint ourselves.
    core.patch_node(NODE, {"spec": {"taints": None}})
    for name in ("argo-rollouts",):
        with contextlib.suppress(Exception):
            core.create_namespace({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    started: list[tuple[subprocess.Popen[bytes], Path]] = []

    def run(name: str, *args: str) -> None:
        log = directory / f"{name}.log"
        started.append((_start([str(bin_dir / name), *args], log), log))

    try:
        run("kwok", "--kubeconfig", kubeconfig, "--manage-single-node", NODE, "--cidr", "10.244.0.0/16",
            "--node-ip", "10.0.0.10", "--node-lease-duration-seconds", "0")
        run("kube-controller-manager", "--kubeconfig", kubeconfig, "--leader-elect=false",
            "--controllers=replicaset-controller,garbage-collector-controller",
            "--bind-address=127.0.0.1", f"--secure-port={_free_port()}", "--concurrent-replicaset-syncs=2",
            "--use-service-account-credentials=false", "--authentication-skip-lookup=true",
            "--authorization-always-allow-paths=/healthz,/readyz,/livez,/metrics", "--v=1")
        run("kube-scheduler", "--kubeconfig", kubeconfig, "--leader-elect=false", "--bind-address=127.0.0.1",
            f"--secure-port={_free_port()}", "--authentication-skip-lookup=true", "--v=1")
        healthz = _free_port()
        run("rollouts-controller", "--kubeconfig", kubeconfig, "--leader-elect=false",
            "--metricsport", str(_free_port()), "--healthzPort", str(healthz), "--loglevel", "info",
            "--rollout-resync", "30")

        def node_ready() -> bool:
            node = core.read_node(NODE)
            return any(c.type == "Ready" and c.status == "True" for c in node.status.conditions or [])

        _wait(node_ready, "the kwok node Ready", started)
        import httpx

        _wait(lambda: httpx.get(f"http://127.0.0.1:{healthz}/healthz", timeout=2,
                                trust_env=False).status_code == 200,
              "Argo Rollouts' controller healthy", started)
        yield
    finally:
        running = [process for process, _ in reversed(started) if process.poll() is None]
        for process in running:  # all at once, then wait for each
            process.terminate()
        for process in running:
            if process.poll() is None:
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        with contextlib.suppress(Exception):
            core.delete_node(NODE)


def logs(directory: Path, name: str = "rollouts-controller", tail: int = 3000) -> str:
    path = directory / f"{name}.log"
    return path.read_text()[-tail:] if path.is_file() else ""
