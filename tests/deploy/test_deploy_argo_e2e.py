"""End to end with the REAL Argo Rollouts controller: `mlops-bot deploy --target kubernetes` with
`rollout.engine: argo` applies a Rollout + AnalysisTemplate, Argo steps it and runs the analysis
against Prometheus, and the deploy job mirrors each step into GitHub deployment statuses, passes
/abort and /promote on as Argo's own fields, and resumes from the cluster's state when re-run.

What is real: kube-apiserver + etcd, kube-controller-manager (ReplicaSets get pods), kube-scheduler,
Argo Rollouts' rollouts-controller v1.8 and its CRDs (all built from source, see
kube_cluster/build.sh and kube_cluster/argo_harness.py), Argo's AnalysisRuns querying Debian's
Prometheus, which scrapes real `mlops-bot serve` processes, the local forge's deployment statuses.
What stands in: kwok marks the pods Running and Ready (no container runs), so the traffic a Service
would spread over the ready pods goes, per ready pod's version, to the `mlops-bot serve` process of
that version (a bounded loopback load generator that reads the pods back from the API server).

The tests share one world and run in file order (each starts from the stable version the
previous one left)."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kube_cluster.argo_harness import argo_controllers, harness_problem, logs
from kube_cluster.control_plane import ControlPlane
from kube_cluster.fixtures import between_ticks
from kube_cluster.prometheus_server import Serving
from kube_cluster.traffic import SplitLoad
from mlops_bot.cli import main
from mlops_bot.deploy.control import request_action
from mlops_bot.deploy.targets.argo import GROUP, ROLLOUTS, VERSION
from mlops_bot.deploy.targets.cluster import ClusterStateStore, connect
from mlops_bot.forge.local import LocalForge

pytestmark = [pytest.mark.kubernetes, pytest.mark.slow]

CONFIG = """
model: {{name: credit, task: classification}}
train: {{builtin: {{estimator: logistic_regression}}}}
data: {{train: t.csv, holdout: h.csv, target: y}}
rollout:
  environment: production
  engine: argo
  steps: [{{weight: 10, hold: {first}}}, {{weight: 50, hold: {second}}}]
  interval: 1
  initial_delay: 3
  progress_deadline: {deadline}
  # Argo pauses an inconclusive analysis for a person; here the job aborts it at once, so a test
  # whose measurement was inconclusive fails with Argo's message instead of waiting out --timeout.
  on_inconclusive: abort
  # min_requests 1: these tests check Argo's wiring; its PromQL semantics are checked by promtool
  # (test_deploy_argo_analysis.py), and 5 made a loaded machine's first measurement inconclusive.
  gates: {{min_requests: {min_requests}, min_success_rate: 0.95, max_p99_latency_ms: 10000,
          max_p99_latency_ratio: null, max_prediction_drift: {drift}}}
  prometheus: {{url: "{prometheus}"}}
  argo: {{namespace: {namespace}, image: "ghcr.io/acme/mlops-bot-server:1.0", replicas: 10}}
"""


class Load(SplitLoad):
    """Bounded loopback traffic (kube_cluster/traffic.py) spread over the Rollout's ready pods, as a
    Service would: each request goes to the version of a ready pod picked at random."""

    def __init__(self, world: World, rate: float = 60.0) -> None:
        super().__init__(lambda: dict(Counter(world.ready_pods())), world.servers, world.rows, rate=rate)


class World:
    def __init__(self, plane: ControlPlane, root: Path, namespace: str, servers: dict[str, str],
                 prometheus_url: str, models: Path, rows: list[dict[str, Any]], harness: Path) -> None:
        self.plane = plane
        self.root = root
        self.namespace = namespace
        self.servers = servers
        self.prometheus = prometheus_url
        self.models = models
        self.rows = rows
        self.harness = harness
        self.api = connect(str(plane.kubeconfig))
        self.forge_dir = root / "forge"

    def config(self, first: float | str, second: float | str, drift: float | None = None,
               deadline: int = 120, min_requests: int = 1) -> Path:
        path = self.root / f"mlops-{first}-{second}-{drift}-{deadline}-{min_requests}.yml"
        path.write_text(CONFIG.format(first=first, second=second, prometheus=self.prometheus,
                                      namespace=self.namespace, drift="null" if drift is None else drift,
                                      deadline=deadline, min_requests=min_requests))
        return path

    def args(self, version: str, first: float | str = 3, second: float | str = 3,
             drift: float | None = None, deadline: int = 120, min_requests: int = 1) -> list[str]:
        return ["deploy", "credit", "--version", version, "--target", "kubernetes", "--kubeconfig",
                str(self.plane.kubeconfig), "--models", str(self.models), "--config",
                str(self.config(first, second, drift, deadline, min_requests)), "--state-dir",
                str(self.root / "state"), "--timeout", "300"]

    def env(self) -> dict[str, str]:
        return {"MLOPS_BOT_LOCAL_FORGE": str(self.forge_dir), "GITHUB_REPOSITORY": "acme/credit"}

    def state(self) -> Any:
        return ClusterStateStore(self.api, self.namespace, "credit").load("credit")

    def rollout(self) -> dict[str, Any]:
        from kubernetes import client

        obj: dict[str, Any] = client.CustomObjectsApi(self.api).get_namespaced_custom_object(
            GROUP, VERSION, self.namespace, ROLLOUTS, "credit")
        return obj

    def ready_pods(self) -> list[str]:
        """The version of every ready pod of the Rollout (as a Service's endpoints would list them)."""
        from kubernetes import client

        pods = client.CoreV1Api(self.api).list_namespaced_pod(
            self.namespace, label_selector="app.kubernetes.io/name=credit").items
        return [(pod.metadata.annotations or {}).get("mlops-bot/version", "?") for pod in pods
                if pod.metadata.deletion_timestamp is None and pod.status.phase == "Running"
                and any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])]

    def statuses(self) -> list[tuple[str, str]]:
        forge = LocalForge(self.forge_dir, repo="acme/credit")
        newest = forge.list_deployments("production")[0]
        return [(s.state, s.description) for s in reversed(forge.list_deployment_statuses(newest.id))]

    def wait(self, check: Any, what: str, timeout: float = 120) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = check()
            if found:
                return found
            time.sleep(0.2)
        raise AssertionError(f"{what} not seen in {timeout:g}s; rollout status "
                             f"{self.rollout().get('status')}\n{logs(self.harness)}")


@pytest.fixture(scope="module")
def world(cluster_serving: Serving, control_plane: ControlPlane, make_records: Any) -> Iterator[World]:
    from kubernetes import client

    problem = harness_problem(control_plane.cache)
    if problem:  # fail (never skip) with the build's own reason
        pytest.fail(problem)
    namespace = cluster_serving.namespaces["argo"]
    client.CoreV1Api(control_plane.api_client()).create_namespace(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    root = cluster_serving.root / "argo"
    harness = root / "controllers"
    with argo_controllers(control_plane, control_plane.cache, harness):
        yield World(control_plane, root, namespace, cluster_serving.servers, cluster_serving.prometheus,
                    cluster_serving.models, make_records(30), harness)


@pytest.fixture
def deploy_env(world: World, monkeypatch: pytest.MonkeyPatch) -> World:
    for key, value in world.env().items():
        monkeypatch.setenv(key, value)
    return world


def test_healthy_version_steps_through_argo_with_a_status_per_step(
        deploy_env: World, capsys: pytest.CaptureFixture[str]) -> None:
    world = deploy_env
    with Load(world) as load:
        started = time.monotonic()
        assert main(world.args("v1.0.0")) == 0, (world.state().reason, logs(world.harness))
        first = time.monotonic() - started
        assert world.statuses()[-1][0] == "success"  # only once Argo reported the pods Healthy
        assert Counter(world.ready_pods()) == {"v1.0.0": 10}
        started = time.monotonic()
        assert main(world.args("v1.1.0")) == 0, (world.state().reason, logs(world.harness))
        took = time.monotonic() - started
    state = world.state()
    assert state.phase == "promoted" and state.stable is not None and state.stable.version == "v1.1.0"
    statuses = world.statuses()
    descriptions = [d for s, d in statuses if s == "in_progress"]
    assert any("step 1/2: 10%" in d for d in descriptions), statuses
    assert any("step 2/2: 50%" in d for d in descriptions), statuses
    assert statuses[-1][0] == "success" and "promoted to 100%" in statuses[-1][1], statuses
    live = world.rollout()["status"]
    assert live["phase"] == "Healthy" and live["stableRS"] == live["currentPodHash"]
    # Argo's own steps, seen as pods: 1 of 10 pods, then 5 of 10, then all.
    assert {"v1.0.0": 9, "v1.1.0": 1} in load.splits, load.splits
    assert {"v1.0.0": 5, "v1.1.0": 5} in load.splits, load.splits
    assert load.served["v1.1.0"] > 0 and not load.failed, load.failed
    with capsys.disabled():  # the figures docs/deploy.md quotes
        print(f"\nargo e2e: first deploy {first:.1f} s; 10% -> 50% -> 100% in {took:.1f} s; requests "
              f"{dict(load.served)}; statuses {[s for s, _ in statuses]}")


def test_failing_analysis_run_aborts(deploy_env: World) -> None:
    world = deploy_env
    with Load(world) as load:
        assert main(world.args("v9.0.0-broken", first=60, second=60)) == 1
        state = world.state()
        assert state.phase == "aborted", state
        assert state.reason.startswith("gate failed (Argo analysis)") and "success-rate" in state.reason
        world.wait(lambda: Counter(world.ready_pods()) == {"v1.1.0": 10}, "all pods back on v1.1.0")
    assert load.failed["v9.0.0-broken"] > 0 and set(load.failed) == {"v9.0.0-broken"}
    assert world.statuses()[-1][0] == "failure"
    live = world.rollout()["status"]
    assert live["abort"] is True and live["phase"] == "Degraded"
    # A canary that answers every request but always predicts 1 fails the prediction drift gate
    # (Jensen-Shannon distance to stable's predictions ~0.53 > 0.35), computed by Prometheus.
    with Load(world) as load:
        assert main(world.args("v9.1.0-constant", first=60, second=60, drift=0.35)) == 1
    state = world.state()
    assert state.phase == "aborted" and "prediction-drift" in state.reason, state
    assert load.served["v9.1.0-constant"] > 0 and not load.failed, load.failed
    assert world.rollout()["status"]["abort"] is True


def mirrored(world: World, version: str, step: str) -> bool:
    """The deploy job has mirrored Argo's `step` of `version` (read from the cluster's state)."""
    state = world.state()
    return state.canary is not None and state.canary.version == version and state.mirrored == step


def test_abort_mid_step(deploy_env: World) -> None:
    world = deploy_env
    result: list[int] = []
    with Load(world):
        runner = threading.Thread(target=lambda: result.append(main(world.args("v1.2.0", first=600))))
        runner.start()
        world.wait(lambda: mirrored(world, "v1.2.0", "0"), "step 1 mirrored")
        request_action(LocalForge(world.forge_dir, repo="acme/credit", actor="alice"), "production",
                       "abort", "alice")
        runner.join(timeout=120)
        assert result == [1]
        assert "aborted by @alice" in world.state().reason
        assert world.rollout()["status"].get("abort") is True  # Argo's own field, written by us
        world.wait(lambda: Counter(world.ready_pods()) == {"v1.1.0": 10}, "Argo scaling the canary down")


def test_promote_skips_a_manual_pause(deploy_env: World) -> None:
    world = deploy_env
    result: list[int] = []
    with Load(world):
        runner = threading.Thread(target=lambda: result.append(main(world.args("v1.3.0", first="manual"))))
        runner.start()
        world.wait(lambda: mirrored(world, "v1.3.0", "0:manual"), "the manual pause")
        assert world.statuses()[-1][1].endswith("waiting for /promote")
        paused = world.rollout()["status"]
        assert paused["currentStepIndex"] == 1 and paused.get("pauseConditions")
        request_action(LocalForge(world.forge_dir, repo="acme/credit", actor="bob"), "production",
                       "promote", "bob")
        runner.join(timeout=120)
    assert result == [0]
    state = world.state()
    assert state.phase == "promoted" and state.stable is not None and state.stable.version == "v1.3.0"
    assert any("step 2/2: 50%" in d for _, d in world.statuses())


def test_killed_deploy_job_resumes_while_argo_kept_stepping(deploy_env: World,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    import os
    import signal
    import subprocess
    import sys

    world = deploy_env
    with Load(world):
        job = subprocess.Popen([sys.executable, "-m", "mlops_bot", *world.args("v1.4.0", first=4, second=4)],
                               env={**os.environ, **world.env()},
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            world.wait(lambda: mirrored(world, "v1.4.0", "0") and between_ticks(world.api, world.namespace),
                       "step 1 mirrored by the first job")
        finally:
            job.send_signal(signal.SIGKILL)
            job.wait()
        at = world.state()
        deployments = len(LocalForge(world.forge_dir, repo="acme/credit").list_deployments("production"))
        capsys.readouterr()
        assert main(world.args("v1.4.0", first=4, second=4)) == 0, world.state().reason  # the re-run
    assert "resuming the rollout of v1.4.0 (Argo Rollouts)" in capsys.readouterr().out
    # Same rollout, same GitHub deployment; Argo went on stepping while no job watched.
    assert len(LocalForge(world.forge_dir, repo="acme/credit").list_deployments("production")) == deployments
    state = world.state()
    assert state.phase == "promoted" and state.stable is not None and state.stable.version == "v1.4.0"
    assert state.rollout_id == at.rollout_id
    assert world.statuses()[-1][0] == "success"


def test_rollback_is_argos_full_promotion(deploy_env: World) -> None:
    """An older version than stable skips the steps: we apply it and write `status.promoteFull`, and
    the real controller moves every pod at once (no 10 % split) and reports it Healthy."""
    world = deploy_env
    with Load(world) as load:
        # Holds of 10 minutes: only skipping the steps lets this return.
        assert main(world.args("v1.3.0", first=600, second=600)) == 0, world.state().reason
    state = world.state()
    assert state.phase == "rolled_back" and state.stable is not None and state.stable.version == "v1.3.0"
    statuses = world.statuses()
    assert statuses[-1] == ("success", "rolled back from v1.4.0 to v1.3.0 (steps skipped)")
    assert not any("step 1/2" in description for _, description in statuses), statuses
    assert Counter(world.ready_pods()) == {"v1.3.0": 10} and load.served["v1.3.0"] > 0
    live = world.rollout()["status"]
    assert live["stableRS"] == live["currentPodHash"] and live["currentStepIndex"] == 4
    assert not live.get("abort") and not live.get("promoteFull")  # Argo clears it once done


def test_progress_deadline_aborts_a_canary_that_never_gets_ready(deploy_env: World) -> None:
    """With the node tainted NoSchedule the canary's pod stays Pending: Argo's progress deadline
    (progressDeadlineSeconds with progressDeadlineAbort, 5 s here) aborts the update and the deploy
    job reports the deadline."""
    from kubernetes import client

    from kube_cluster.argo_harness import NODE

    world = deploy_env
    core = client.CoreV1Api(world.api)
    core.patch_node(NODE, {"spec": {"taints": [{"key": "e2e/full", "effect": "NoSchedule"}]}})
    try:
        assert main(world.args("v1.4.0", deadline=5)) == 1
    finally:
        core.patch_node(NODE, {"spec": {"taints": None}})
    state = world.state()
    assert state.phase == "aborted" and "not ready within the progress deadline (5s)" in state.reason, state
    assert world.statuses()[-1][0] == "failure"
    live = world.rollout()["status"]
    assert live["abort"] is True and live["phase"] == "Degraded"
    # Argo scales stable back up (its 10 % step had taken a pod), once the node takes pods again.
    world.wait(lambda: Counter(world.ready_pods()) == {"v1.3.0": 10}, "stable back to 10 pods")


def test_an_inconclusive_analysis_is_reported_at_once(deploy_env: World) -> None:
    """No canary can reach min_requests (10**9): every measurement is Inconclusive, Argo pauses the
    Rollout (InconclusiveAnalysisRun) for a person; with `on_inconclusive: abort` the deploy job
    writes Argo's abort on the tick it sees the pause and fails with Argo's message, instead of
    waiting out --timeout (a paused rollout has no progress deadline)."""
    world = deploy_env
    assert main(world.args("v1.4.0", first=600, second=600, min_requests=10**9)) == 1
    state = world.state()
    assert state.phase == "aborted" and state.reason.startswith("inconclusive (Argo analysis) at canary "
                                                                "v1.4.0 step 1/2: 10%"), state
    assert "Inconclusive" in state.reason and state.reason.endswith("rollout.on_inconclusive: abort"), state
    assert world.statuses()[-1][0] == "failure"
    live = world.rollout()["status"]
    assert live["abort"] is True
    world.wait(lambda: Counter(world.ready_pods()) == {"v1.3.0": 10}, "stable back to 10 pods")
