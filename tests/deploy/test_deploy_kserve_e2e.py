"""End to end on a real control plane: `mlops-bot deploy --target kubernetes` drives a KServe
canary step by step.

What is real: kube-apiserver + etcd built from source, KServe's InferenceService CRD, server-side
apply, the ConfigMap state, `mlops-bot serve` processes (two versions each, standing in for a
revision's pods), Debian's Prometheus scraping them, the PromQL gates, the local forge's
deployment statuses and /abort markers, and the deploy job as a real process that gets killed.
What stands in: KServe's controller (it needs Knative), see kube_cluster/kserve_standin.py; and
the traffic: a bounded loopback load generator that splits requests by the weights it reads back
from the InferenceService's `status.components.predictor.traffic`.

The tests share one world and run in file order (each starts from the stable version the
previous one left)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kube_cluster.control_plane import ControlPlane
from kube_cluster.fixtures import between_ticks
from kube_cluster.kserve_standin import KServeStandIn
from kube_cluster.prometheus_server import Serving
from kube_cluster.traffic import SplitLoad
from mlops_bot.cli import main
from mlops_bot.deploy.control import request_action
from mlops_bot.deploy.routing import RoutingRequest, VersionRef
from mlops_bot.deploy.targets.cluster import ClusterStateStore, connect
from mlops_bot.deploy.targets.kserve import GROUP, PLURAL, VERSION, serving_state
from mlops_bot.forge.local import LocalForge

pytestmark = [pytest.mark.kubernetes, pytest.mark.slow]

CONFIG = """
model: {{name: credit, task: classification}}
train: {{builtin: {{estimator: logistic_regression}}}}
data: {{train: t.csv, holdout: h.csv, target: y}}
rollout:
  environment: production
  steps: [{{weight: 10, hold: {hold}}}, {{weight: 50, hold: {hold}}}]
  interval: 0.5
  progress_deadline: 120
  # An inconclusive hold (too few requests seen, e.g. a loaded machine's Prometheus behind) fails the
  # test at once with the gates' summary; paused (the default) it waited for a /promote until --timeout.
  on_inconclusive: abort
  gates: {{min_requests: 5, min_success_rate: 0.95, max_p99_latency_ms: 10000,
          max_p99_latency_ratio: null, max_prediction_drift: null}}
  prometheus: {{url: "{prometheus}"}}
  kserve: {{namespace: {namespace}, image: "ghcr.io/acme/mlops-bot-server:1.0"}}
"""


class Load(SplitLoad):
    """Bounded loopback traffic (kube_cluster/traffic.py) split by the InferenceService's traffic
    status as the API server returns it (`status.components.predictor.traffic`)."""

    def __init__(self, world: World, rate: float = 60.0) -> None:
        from kubernetes import client

        api = client.CustomObjectsApi(world.api)

        def read_split() -> dict[str, int]:
            obj: Any = api.get_namespaced_custom_object(GROUP, VERSION, world.namespace, PLURAL, "credit")
            status = obj.get("status") or {}
            traffic = ((status.get("components") or {}).get("predictor") or {}).get("traffic") or []
            revisions = world.standin.revision_versions
            return {revisions[t["revisionName"]]: int(t["percent"])
                    for t in traffic if t.get("revisionName") in revisions}

        super().__init__(read_split, world.servers, world.rows, rate=rate)


class World:
    def __init__(self, plane: ControlPlane, root: Path, namespace: str, servers: dict[str, str],
                 prometheus_url: str, standin: KServeStandIn, models: Path,
                 rows: list[dict[str, Any]]) -> None:
        self.plane = plane
        self.root = root
        self.namespace = namespace
        self.servers = servers
        self.prometheus = prometheus_url
        self.standin = standin
        self.models = models
        self.rows = rows
        self.api = connect(str(plane.kubeconfig))
        self.forge_dir = root / "forge"

    def config(self, hold: float) -> Path:
        path = self.root / f"mlops-{hold:g}.yml"
        path.write_text(CONFIG.format(hold=hold, prometheus=self.prometheus, namespace=self.namespace))
        return path

    def args(self, version: str, hold: float = 4) -> list[str]:
        return ["deploy", "credit", "--version", version, "--target", "kubernetes", "--kubeconfig",
                str(self.plane.kubeconfig), "--models", str(self.models), "--config", str(self.config(hold)),
                "--state-dir", str(self.root / "state"), "--timeout", "600"]

    def env(self) -> dict[str, str]:
        return {"MLOPS_BOT_LOCAL_FORGE": str(self.forge_dir), "GITHUB_REPOSITORY": "acme/credit"}

    def state(self) -> Any:
        return ClusterStateStore(self.api, self.namespace, "credit").load("credit")

    def isvc(self) -> dict[str, Any]:
        from kubernetes import client

        obj: dict[str, Any] = client.CustomObjectsApi(self.api).get_namespaced_custom_object(
            GROUP, VERSION, self.namespace, PLURAL, "credit")
        return obj

    def statuses(self) -> list[tuple[str, str]]:
        forge = LocalForge(self.forge_dir, repo="acme/credit")
        newest = forge.list_deployments("production")[0]
        return [(s.state, s.description) for s in reversed(forge.list_deployment_statuses(newest.id))]

    def wait_state(self, check: Any, timeout: float = 240) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = self.state()
            if check(state):
                return state
            time.sleep(0.2)
        raise AssertionError(f"rollout state never reached the expected point: {self.state()}")


@pytest.fixture(scope="module")
def world(cluster_serving: Serving, control_plane: ControlPlane, make_records: Any) -> Iterator[World]:
    from kubernetes import client

    namespace = cluster_serving.namespaces["kserve"]
    client.CoreV1Api(control_plane.api_client()).create_namespace(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    root = cluster_serving.root / "kserve"
    root.mkdir()
    with KServeStandIn(control_plane.api_client(), namespace) as standin:
        yield World(control_plane, root, namespace, cluster_serving.servers, cluster_serving.prometheus,
                    standin, cluster_serving.models, make_records(30))


@pytest.fixture
def deploy_env(world: World, monkeypatch: pytest.MonkeyPatch) -> World:
    for key, value in world.env().items():
        monkeypatch.setenv(key, value)
    return world


def test_healthy_version_goes_10_50_100_with_a_status_per_step(deploy_env: World,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    world = deploy_env
    assert main(world.args("v1.0.0")) == 0
    # The first version is promoted at once (nothing to compare with); KServe must have rolled it
    # out before a canary can split traffic with it (its first revision always takes 100 %).
    stable = RoutingRequest(stable=VersionRef(version="v1.0.0", path="-"))
    deadline = time.monotonic() + 60
    while not serving_state(world.isvc(), stable)[0]:
        assert time.monotonic() < deadline, world.standin.errors[-3:]
        time.sleep(0.2)
    started = time.monotonic()
    with Load(world) as load:
        assert main(world.args("v1.1.0")) == 0, (world.state().reason, world.standin.errors[-3:])
    took = time.monotonic() - started
    state = world.state()
    assert state.phase == "promoted" and state.stable is not None and state.stable.version == "v1.1.0"
    statuses = world.statuses()
    descriptions = [d for s, d in statuses if s == "in_progress"]
    assert any("step 1/2: 10%" in d for d in descriptions), statuses
    assert any("step 2/2: 50%" in d for d in descriptions), statuses
    assert statuses[-1][0] == "success" and "promoted to 100%" in statuses[-1][1]
    obj = world.isvc()
    assert "canaryTrafficPercent" not in obj["spec"]["predictor"]
    assert obj["metadata"]["annotations"]["mlops-bot/version"] == "v1.1.0"
    splits = load.splits
    assert {"v1.1.0": 10, "v1.0.0": 90} in splits and {"v1.1.0": 50, "v1.0.0": 50} in splits
    assert load.served["v1.1.0"] > 0 and load.served["v1.0.0"] > 0 and not load.failed, load.failed
    with capsys.disabled():  # the figures docs/deploy.md quotes
        print(f"\nkserve e2e: 10% -> 50% -> 100% in {took:.1f} s; requests served {dict(load.served)}; "
              f"splits seen {load.splits}; statuses {[s for s, _ in statuses]}")
    capsys.readouterr()
    assert main(["deploy", "status", "credit", "--target", "kubernetes", "--kubeconfig",
                 str(world.plane.kubeconfig), "--config", str(world.config(4))]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert (shown["phase"], shown["stable"]) == ("promoted", "v1.1.0")


def test_failing_canary_is_rolled_back(deploy_env: World) -> None:
    world = deploy_env
    with Load(world) as load:
        assert main(world.args("v9.0.0-broken")) == 1
    state = world.state()
    assert state.phase == "aborted" and "gate failed: success rate" in state.reason
    assert load.failed["v9.0.0-broken"] > 0 and set(load.failed) == {"v9.0.0-broken"}
    assert world.statuses()[-1][0] == "failure"
    obj = world.isvc()  # traffic back (canaryTrafficPercent 0), then the stable spec restored
    assert obj["metadata"]["annotations"]["mlops-bot/version"] == "v1.1.0"
    assert "canaryTrafficPercent" not in obj["spec"]["predictor"]


def test_abort_mid_step(deploy_env: World) -> None:
    world = deploy_env
    result: list[int] = []
    with Load(world):
        runner = threading.Thread(target=lambda: result.append(main(world.args("v1.2.0", hold=600))))
        runner.start()
        world.wait_state(lambda s: s.canary is not None and s.canary.version == "v1.2.0" and not s.settling)
        request_action(LocalForge(world.forge_dir, repo="acme/credit", actor="alice"), "production",
                       "abort", "alice")
        runner.join(timeout=240)
    assert result == [1]
    state = world.state()
    assert state.phase == "aborted" and "aborted by @alice" in state.reason
    assert world.isvc()["metadata"]["annotations"]["mlops-bot/version"] == "v1.1.0"


def test_killed_deploy_job_resumes_from_the_cluster_state(deploy_env: World,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    world = deploy_env
    with Load(world):
        job = subprocess.Popen([sys.executable, "-m", "mlops_bot", *world.args("v1.2.0", hold=4)],
                               env={**os.environ, **world.env()},
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            at = world.wait_state(lambda s: s.canary is not None and s.canary.version == "v1.2.0"
                                  and s.phase == "progressing" and not s.settling
                                  and between_ticks(world.api, world.namespace))
        finally:
            job.send_signal(signal.SIGKILL)
            job.wait()
        assert at.step == 0
        deployments = len(LocalForge(world.forge_dir, repo="acme/credit").list_deployments("production"))
        capsys.readouterr()
        assert main(world.args("v1.2.0", hold=4)) == 0, world.state().reason  # the re-run of the job
    out = capsys.readouterr().out
    assert "resuming the rollout of v1.2.0" in out
    # Same rollout, same GitHub deployment: the re-run did not start over.
    assert len(LocalForge(world.forge_dir, repo="acme/credit").list_deployments("production")) == deployments
    state = world.state()
    assert state.phase == "promoted" and state.stable is not None and state.stable.version == "v1.2.0"
    assert state.rollout_id == at.rollout_id


def test_newer_version_mid_rollout_restarts_the_steps(deploy_env: World) -> None:
    world = deploy_env
    with Load(world):
        old = subprocess.Popen([sys.executable, "-m", "mlops_bot", *world.args("v1.3.0", hold=600)],
                               env={**os.environ, **world.env()},
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            first = world.wait_state(lambda s: s.canary is not None and s.canary.version == "v1.3.0"
                                     and not s.settling)
            assert main(world.args("v1.4.0")) == 0, world.state().reason
            out, _ = old.communicate(timeout=240)
        finally:
            if old.poll() is None:
                old.kill()
                old.wait()
    assert '"phase": "superseded"' in out.splitlines()[-1]
    state = world.state()
    assert state.phase == "promoted" and state.stable is not None and state.stable.version == "v1.4.0"
    assert state.rollout_id != first.rollout_id
    messages = [t.message for t in state.history]
    superseded = next(i for i, m in enumerate(messages) if "rollout of v1.3.0 superseded by v1.4.0" in m)
    assert any("canary v1.4.0 step 1/2: 10%" in m for m in messages[superseded:])
