"""A model's `model.trusted_types` reach the server on every target, rendered in one place
(`deploy/serve_args.py`): the KServe predictor's and the Argo Rollout pod's args, the docker
container's command (and its image's CMD), `deploy --manifests` for both cluster engines. A real
`mlops-bot serve` started with each rendering loads a version that needs a listed type and refuses,
naming it, a version that needs a type the list lacks. (The local target: test_pipeline_frameworks.
The renderings against the real CRDs and the KServe SDK's models: tests/kube_cluster and
test_deploy_kubernetes.py.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from deploy.conftest import save_version, training_frame
from deploy.test_deploy_delivery import serve_folders
from kube_cluster.prometheus_server import _stop, _wait, free_port
from mlops_bot.checksums import sha256_file
from mlops_bot.cli import main
from mlops_bot.config import RolloutSection
from mlops_bot.deploy.plan import plan_from_config
from mlops_bot.deploy.targets.argo import render_rollout
from mlops_bot.deploy.targets.docker import dockerfile, server_command
from mlops_bot.deploy.targets.kserve import inference_service
from mlops_bot.errors import IntegrityError

TRUSTED = ["numpy.asarray"]  # harmless, on no list: a stand-in for a team's own transformer
LAUNCHER = Path(__file__).resolve().parents[1] / "kube_cluster" / "serve_launcher.py"
CONFIG = ("model: {{name: {name}, task: classification, trusted_types: [numpy.asarray]}}\n"
          "train: {{builtin: {{estimator: logistic_regression}}}}\n"
          "data: {{train: t.csv, holdout: h.csv, target: y}}\n"
          "rollout:\n  engine: {engine}\n  steps: [{{weight: 20, hold: 30}}]\n"
          "  prometheus: {{url: 'http://prometheus.monitoring:9090'}}\n")


def needing(function: Callable[..., Any]) -> Pipeline:
    """A real model whose skops file names `function` (not on mlops-bot's allow-list)."""
    frame, target = training_frame()
    return make_pipeline(FunctionTransformer(function), StandardScaler(), LogisticRegression()).fit(
        frame[["income", "age"]], target)


@pytest.fixture(scope="module")
def versions(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """v1.0.0 needs numpy.asarray (listed); v1.1.0 takes the same inputs but needs numpy.asanyarray."""
    root = tmp_path_factory.mktemp("trusting")
    return {"v1.0.0": save_version(root, "v1.0.0", needing(np.asarray)),
            "v1.1.0": save_version(root, "v1.1.0", needing(np.asanyarray))}


def renderings(url: str, digest: str | None, port: int, trusted: list[str]) -> dict[str, list[str]]:
    """`mlops-bot` argv of each target's server for v1.0.0, as each target renders it."""
    kserve = inference_service("credit", storage_uri=url, version="v1.0.0", sha256=digest,
                               trusted_types=trusted)
    plan = plan_from_config(RolloutSection())
    argo = render_rollout("credit", "v1.0.0", "v1.0.0", namespace="ml", plan=plan, image="img:1",
                          storage_uri=url, sha256=digest, prometheus_url="http://p", trusted_types=trusted)
    return {"kserve": kserve["spec"]["predictor"]["containers"][0]["args"],
            "argo": argo["spec"]["template"]["spec"]["containers"][0]["args"],
            "docker": ["serve", *server_command("credit", "v1.0.0", port, trusted)]}


def test_every_target_renders_the_models_trusted_types() -> None:
    two = ["team_features.transformers.Clipper", "numpy.asarray"]
    for target, args in renderings("https://example.invalid/model.skops", "a" * 64, 8080, two).items():
        tail = args[args.index("--trusted-type"):]
        assert tail == ["--trusted-type", two[0], "--trusted-type", two[1]], target
    assert "--trusted-type" not in str(renderings("https://example.invalid/model.skops", None, 8080, []))
    cmd = [line for line in dockerfile("base:1", "credit", "v1.0.0", trusted_types=two).splitlines()
           if line.startswith("CMD ")]
    assert json.loads(cmd[0].removeprefix("CMD ")) == server_command("credit", "v1.0.0", 8080, two)
    # A name no list may hold is refused when rendering, before anything is started or applied.
    for forbidden in (["os.system"], ["Clipper"]):
        with pytest.raises(IntegrityError, match="can never be trusted"):
            renderings("https://example.invalid/model.skops", None, 8080, forbidden)


@pytest.mark.parametrize("engine", ["argo", "kserve"])
def test_deploy_manifests_carry_the_configs_trusted_types(versions: dict[str, Path], tmp_path: Path,
                                                          engine: str) -> None:
    config = tmp_path / "mlops.yml"
    config.write_text(CONFIG.format(engine=engine, name="credit"))
    out = tmp_path / "out"
    assert main(["deploy", "credit", "--version", "v1.0.0", "--target", "kubernetes", "--config", str(config),
                 "--models", str(versions["v1.0.0"].parent), "--manifests", str(out)]) == 0
    documents = [json.loads(path.read_text()) for path in sorted(out.iterdir())]
    containers = [d["spec"]["predictor"]["containers"][0] if d["kind"] == "InferenceService"
                  else d["spec"]["template"]["spec"]["containers"][0]
                  for d in documents if d["kind"] in ("InferenceService", "Rollout")]
    assert containers and all(c["args"][-2:] == ["--trusted-type", "numpy.asarray"] for c in containers)


def on_loopback(args: list[str], **values: str) -> list[str]:
    """The same argv with the values of some flags replaced (`model_dir` -> `--model-dir`): the pod
    network and the pod's paths become this machine's; every other word stays as rendered."""
    flags = {f"--{key.replace('_', '-')}": value for key, value in values.items()}
    return [flags[args[i - 1]] if i and args[i - 1] in flags else word for i, word in enumerate(args)]


@pytest.fixture
def assets(versions: dict[str, Path]) -> Iterator[str]:
    server, url = serve_folders({"v1.0.0": versions["v1.0.0"]})
    yield url
    server.shutdown()


@pytest.mark.slow
def test_a_server_started_as_each_target_renders_it_serves_the_trusting_model_and_no_other(
        versions: dict[str, Path], assets: str, tmp_path: Path) -> None:
    ports = {target: free_port() for target in ("kserve", "argo", "docker")}
    digest = sha256_file(versions["v1.0.0"] / "model.skops")
    rendered = renderings(f"{assets}/v1.0.0/model.skops", digest, ports["docker"], TRUSTED)
    specs = [
        {"args": on_loopback(rendered["kserve"], host="127.0.0.1", port=str(ports["kserve"]),
                             model_dir=str(tmp_path / "kserve-pod")), "log": str(tmp_path / "kserve.log")},
        {"args": on_loopback(rendered["argo"], host="127.0.0.1", port=str(ports["argo"]),
                             model_dir=str(tmp_path / "argo-pod")), "log": str(tmp_path / "argo.log")},
        # The container's view of the model baked into the image is /models/v1.0.0: here the folder.
        {"args": on_loopback(rendered["docker"], model=str(versions["v1.0.0"])),
         "log": str(tmp_path / "docker.log")},
    ]
    assert all(spec["args"][-2:] == ["--trusted-type", "numpy.asarray"] for spec in specs)
    loaded = {"kserve": str(tmp_path / "kserve-pod"), "argo": str(tmp_path / "argo-pod"),
              "docker": str(versions["v1.0.0"])}
    launcher = subprocess.Popen([sys.executable, str(LAUNCHER), json.dumps(specs)],
                                stdout=(tmp_path / "launcher.log").open("wb"), stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True,
                                env={**os.environ, "MLOPS_BOT_ADMIN_TOKEN": "admin-token"})
    frame, _ = training_frame(seed=3, rows=4)
    body = {"inputs": [{"name": name, "datatype": "FP64", "shape": [4], "data": frame[name].tolist()}
                       for name in ("income", "age")]}
    try:
        for target, port in ports.items():
            base = f"http://127.0.0.1:{port}"
            _wait(f"{base}/v2/health/ready", launcher, tmp_path / f"{target}.log", timeout=240)
            answer = httpx.post(f"{base}/v2/models/credit/infer", json=body, trust_env=False, timeout=60)
            assert answer.status_code == 200, (target, answer.text)
            assert answer.json()["model_version"] == "v1.0.0"
            # Every version the server loads gets the same list: one that needs another type is refused.
            refused = httpx.post(
                f"{base}/admin/versions", trust_env=False, timeout=60,
                headers={"Authorization": "Bearer admin-token"},
                json={"stable": {"version": "v1.0.0", "path": loaded[target]},
                      "canary": {"version": "v1.1.0", "path": str(versions["v1.1.0"])}, "weight": 10})
            assert refused.status_code == 422, (target, refused.text)
            assert "not on the model-type allow-list: numpy.asanyarray" in refused.json()["error"], target
    finally:
        _stop(launcher)


@pytest.mark.docker
@pytest.mark.slow
def test_the_docker_target_starts_its_container_with_the_models_trusted_types(
        versions: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`deploy --target docker` of a model needing numpy.asarray: the container runs with the list
    and answers. Its own container name (`mlops-bot-trusting`) and cleanup: it may share the engine
    with test_deploy_docker.py's containers."""
    from mlops_bot.deploy.targets.docker import engine_available

    ok, why = engine_available()
    if not ok:
        pytest.skip(f"docker engine tests need a running engine (make docker-test starts one): {why}")
    import docker

    client = docker.from_env()
    config = tmp_path / "mlops.yml"
    config.write_text(CONFIG.format(engine="kserve", name="trusting"))
    state_dir = tmp_path / "state"
    images = {image.id for image in client.images.list()}
    built: list[str] = []
    try:
        assert main(["deploy", "trusting", "--version", "v1.0.0", "--target", "docker", "--wait",
                     "--state-dir", str(state_dir), "--config", str(config), "--models",
                     str(versions["v1.0.0"].parent), "--timeout", "300"]) == 0
        endpoint = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["endpoint"]
        container = client.containers.get("mlops-bot-trusting")
        built.append(container.image.id)
        assert container.attrs["Config"]["Cmd"][-2:] == ["--trusted-type", "numpy.asarray"]
        frame, _ = training_frame(seed=3, rows=2)
        body = {"inputs": [{"name": name, "datatype": "FP64", "shape": [2], "data": frame[name].tolist()}
                           for name in ("income", "age")]}
        answer = httpx.post(f"{endpoint}/v2/models/trusting/infer", json=body, trust_env=False, timeout=60)
        assert answer.status_code == 200 and answer.json()["model_version"] == "v1.0.0", answer.text
    finally:
        main(["deploy", "stop", "trusting", "--target", "docker", "--state-dir", str(state_dir)])
        for image in built:
            if image not in images:  # the server image this test built (the base is the cache)
                client.images.remove(image, force=True)
