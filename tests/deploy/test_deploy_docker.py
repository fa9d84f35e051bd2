"""The docker target: the generated Dockerfile and base-rootfs plan (pure), and, where an engine
runs, a real image built from them serving predictions through a rollout step.

Engine tests need `dockerd` (`make docker-test` starts one); without it they skip with the reason.
"""

from __future__ import annotations

import json
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from mlops_bot.checksums import sha256_file
from mlops_bot.deploy.targets import docker_base
from mlops_bot.deploy.targets.docker import LABEL, SERVER_UID, dockerfile, engine_available, stage_model
from mlops_bot.deploy.targets.docker_base import (
    Entry,
    digest,
    library_entries,
    parse_ldd,
    requirement_closure,
)


# ------------------------------------------------------------------------------------------ pure
def test_dockerfile_builds_on_the_local_base_non_root_with_healthcheck_and_loopback_probe() -> None:
    text = dockerfile("mlops-bot-base:0123456789abcdef", "credit", "v1.2.0", port=8080)
    lines = text.splitlines()
    assert lines[1] == "FROM mlops-bot-base:0123456789abcdef"  # built locally: no registry is reachable
    assert "COPY model/ /models/v1.2.0/" in lines and "COPY mlops_bot/ /opt/mlops-bot/mlops_bot/" in lines
    user_at = lines.index(f"USER {SERVER_UID}:{SERVER_UID}")
    assert any(line.startswith("HEALTHCHECK") for line in lines[user_at:])
    assert not any(line.startswith(("RUN", "COPY")) for line in lines[user_at:])  # nothing runs as root after
    assert "http://127.0.0.1:" in text and "/v2/health/live" in text
    assert lines[-2] == 'ENTRYPOINT ["/opt/python/bin/python3", "-m", "mlops_bot", "serve"]'
    assert json.loads(lines[-1].removeprefix("CMD ")) == [
        "credit", "--model", "/models/v1.2.0", "--version", "v1.2.0", "--host", "127.0.0.1", "--port", "8080"]


def test_stage_model_keeps_the_model_file_name_of_any_format(tmp_path: Path) -> None:
    onnx_version = tmp_path / "onnx-v1"
    onnx_version.mkdir()
    (onnx_version / "model.onnx").write_bytes(b"graph")
    (onnx_version / "signature.json").write_text("{}")
    staged = stage_model(onnx_version, tmp_path / "staged" / "v1")
    assert sorted(p.name for p in staged.iterdir()) == ["model.onnx", "signature.json"]
    (onnx_version / "model.onnx").write_bytes(b"changed")
    assert (stage_model(onnx_version, staged) / "model.onnx").read_bytes() == b"graph"  # staged once
    single = tmp_path / "exported.onnx"
    single.write_bytes(b"graph")
    assert [p.name for p in stage_model(single, tmp_path / "staged" / "v2").iterdir()] == ["model.onnx"]
    skops_file = tmp_path / "model.skops"
    skops_file.write_bytes(b"skops")
    assert [p.name for p in stage_model(skops_file, tmp_path / "staged" / "v3").iterdir()] == ["model.skops"]


def test_requirement_closure_follows_markers_and_ignores_extras() -> None:
    requires = {
        "app": ["lib>=1", "winonly; sys_platform == 'win32'", "testing; extra == 'test'", "Old_Name"],
        "lib": ["app"],  # cycles end
        "old-name": None,
    }
    environment = {"sys_platform": "linux", "python_version": "3.11"}
    closure = requirement_closure(["App"], lambda name: requires.get(name), environment)
    assert closure == ["app", "lib", "old-name"]


def test_parse_ldd_keeps_resolved_libraries_and_the_loader() -> None:
    output = """/x/a.so:
\tlinux-vdso.so.1 (0x00007ffd)
\tlibm.so.6 => /lib/x86_64-linux-gnu/libm.so.6 (0x00007f01)
\tlibgone.so.2 => not found
\t/lib64/ld-linux-x86-64.so.2 (0x00007f02)
"""
    assert parse_ldd(output) == {"libm.so.6": "/lib/x86_64-linux-gnu/libm.so.6",
                                 "/lib64/ld-linux-x86-64.so.2": "/lib64/ld-linux-x86-64.so.2"}
    placed = library_entries(parse_ldd(output) | {"libbundled.so": "/site/numpy.libs/libbundled.so"},
                             {"/site/numpy.libs/libbundled.so"}, "x86_64-linux-gnu")
    assert [e.path for e in placed] == ["/lib64/ld-linux-x86-64.so.2", "/usr/lib/x86_64-linux-gnu/libm.so.6"]


def test_base_digest_covers_path_mode_and_content_but_not_order(tmp_path: Path) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    one.write_text("a")
    two.write_text("b")
    entries = [Entry("/opt/a", source=str(one)), Entry("/etc/passwd", text="root\n"),
               Entry("/var", mode=0o1777)]
    sha = sha256_file
    base = digest(entries, sha)
    assert digest(list(reversed(entries)), sha) == base
    assert digest([Entry("/opt/a", source=str(two)), *entries[1:]], sha) != base
    assert digest([Entry("/opt/a", source=str(one), mode=0o755), *entries[1:]], sha) != base
    assert digest([Entry("/opt/b", source=str(one)), *entries[1:]], sha) != base


def test_rootfs_tarball_is_root_owned_with_parents_and_reproducible(tmp_path: Path) -> None:
    source = tmp_path / "lib.so"
    source.write_bytes(b"\x7fELF...")
    entries = [Entry("/usr/lib/x86_64-linux-gnu/lib.so", source=str(source), mode=0o755),
               Entry("/opt/python/bin/python3", link="python3.11"), *docker_base.system_files()]
    first = docker_base.write_rootfs(entries, tmp_path / "a.tar")
    second = docker_base.write_rootfs(list(reversed(entries)), tmp_path / "b.tar")
    assert first.read_bytes() == second.read_bytes()
    with tarfile.open(first) as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert {"usr", "usr/lib", "opt/python/bin", "etc"} <= set(members)
    assert all(m.uid == 0 and m.gid == 0 for m in members.values())
    assert members["tmp"].isdir() and members["tmp"].mode == 0o1777
    assert members["opt/python/bin/python3"].linkname == "python3.11"
    assert members["usr/lib/x86_64-linux-gnu/lib.so"].mode == 0o755
    with tarfile.open(first) as tar:
        passwd = tar.extractfile("etc/passwd")
        assert passwd is not None and f"mlops:x:{SERVER_UID}:{SERVER_UID}:" in passwd.read().decode()


def test_base_plan_holds_only_the_server_runtime() -> None:
    """The real plan for this host: the interpreter, the server's packages, the libraries ldd finds;
    no tests, pip or the rest of the virtualenv (that is what keeps it ~0.5 GB, not ~2 GB)."""
    entries, pinned = docker_base.plan_rootfs()
    names = {p.split("==")[0] for p in pinned}
    assert {"fastapi", "numpy", "pandas", "scikit-learn", "scipy", "skops", "uvicorn", "pyyaml"} <= names
    assert not names & {"pip", "pytest", "matplotlib", "pygithub", "mlops-bot", "docker"}
    paths = {e.path for e in entries}
    stdlib = f"/opt/python/lib/python{docker_base._python_version()}"
    assert f"{stdlib}/os.py" in paths and "/opt/python/bin/python3" in paths
    assert not any(p.startswith(f"{stdlib}/test/") or "/site-packages/pip/" in p for p in paths)


# ------------------------------------------------------------------------------------ real engine
CONFIG = """
model: {name: credit, task: classification}
train: {builtin: {estimator: logistic_regression}}
data: {train: t.csv, holdout: h.csv, target: y}
rollout:
  environment: production
  steps: [{weight: 50, hold: 1}]
  interval: 0.2
  progress_deadline: 120
  gates: {min_requests: 3, min_success_rate: 0.95, max_p99_latency_ms: 5000,
          max_p99_latency_ratio: null, max_prediction_drift: null}
"""


@pytest.fixture
def docker_client() -> Iterator[Any]:
    ok, why = engine_available()
    if not ok:
        pytest.skip(f"docker engine tests need a running engine (make docker-test starts one): {why}")
    import docker

    client = docker.from_env()
    before = {image.id for image in client.images.list(filters={"label": LABEL})}
    yield client
    for container in client.containers.list(all=True, filters={"label": LABEL}):
        container.remove(force=True)
    for image in client.images.list(filters={"label": LABEL}):
        if image.id not in before:  # server images this test built; the base image is the cache
            client.images.remove(image.id, force=True)


def _listening_addresses(pid: int, port: int) -> set[str]:
    """Local addresses of sockets listening on `port`, from the process's /proc/net/tcp."""
    found = set()
    for line in Path(f"/proc/{pid}/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        address, hex_port = local.split(":")
        if state == "0A" and int(hex_port, 16) == port:
            found.add(".".join(str(int(address[i:i + 2], 16)) for i in (6, 4, 2, 0)))
    return found


@pytest.mark.docker
@pytest.mark.slow
def test_docker_image_serves_a_rollout_step(tmp_path: Path, model_dirs: dict[str, Path], make_records: Any,
                                            docker_client: Any, capsys: pytest.CaptureFixture[str]) -> None:
    from mlops_bot.cli import main
    from mlops_bot.demo.traffic import Traffic
    from mlops_bot.deploy.controller import StateStore

    config = tmp_path / "mlops.yml"
    config.write_text(CONFIG)
    models = str(model_dirs["v1.0.0"].parent)
    state_dir = tmp_path / "state"
    common = ["--target", "docker", "--wait", "--state-dir", str(state_dir), "--config", str(config),
              "--models", models, "--timeout", "120"]
    try:
        assert main(["deploy", "credit", "--version", "v1.0.0", *common]) == 0
        endpoint = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["endpoint"]
        port = int(endpoint.rsplit(":", 1)[1])
        container = docker_client.containers.get("mlops-bot-credit")
        config_of = container.attrs["Config"]
        assert config_of["User"] == f"{SERVER_UID}:{SERVER_UID}"
        assert config_of["Healthcheck"]["Test"][0] == "CMD"
        host = container.attrs["HostConfig"]
        assert host["NetworkMode"] == "host" and host["ReadonlyRootfs"] and host["CapDrop"] == ["ALL"]
        pid = container.attrs["State"]["Pid"]
        uid_line = next(line for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                        if line.startswith("Uid:"))
        assert uid_line.split()[1:] == [str(SERVER_UID)] * 4
        assert _listening_addresses(pid, port) == {"127.0.0.1"}

        body = {"inputs": [{"name": "income", "shape": [1], "datatype": "FP64", "data": [72.0]},
                           {"name": "age", "shape": [1], "datatype": "FP64", "data": [40.0]},
                           {"name": "region", "shape": [1], "datatype": "BYTES", "data": ["north"]}]}
        answer = httpx.post(f"{endpoint}/v2/models/credit/infer", json=body, trust_env=False, timeout=10)
        assert answer.status_code == 200 and answer.json()["model_version"] == "v1.0.0"
        assert answer.json()["outputs"][0]["data"] in ([0], [1])

        with Traffic(endpoint, make_records(20), threads=2) as load:  # v1.1.0 comes from the mount
            assert main(["deploy", "credit", "--version", "v1.1.0", *common]) == 0
        assert load.failures == 0, load.errors[:3]
        assert load.versions["v1.1.0"] > 0 and load.versions["v1.0.0"] > 0
        state = StateStore(state_dir, "credit").load("credit")
        assert state.phase == "promoted" and state.stable is not None and state.stable.version == "v1.1.0"
        assert docker_client.containers.get("mlops-bot-credit").id == container.id  # the same container
        deadline = time.monotonic() + 30  # the engine's own probe, every 3 s
        while True:
            container.reload()
            health = container.attrs["State"]["Health"]
            if health["Status"] == "healthy" or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert health["Status"] == "healthy" and health["Log"][-1]["ExitCode"] == 0, health
    finally:
        main(["deploy", "stop", "credit", "--target", "docker", "--state-dir", str(state_dir)])
    assert not docker_client.containers.list(all=True, filters={"name": "^/mlops-bot-credit$"})


@pytest.mark.docker
@pytest.mark.slow
def test_killed_container_is_recreated_and_the_step_resumes(tmp_path: Path, model_dirs: dict[str, Path],
                                                            docker_client: Any) -> None:
    """A rollout survives its container: killed mid-step, it is re-created with the step's routing
    and the step starts over (fresh baselines and hold)."""
    from mlops_bot.config import RolloutGates, RolloutSection, RolloutStep
    from mlops_bot.deploy.controller import RolloutController, StateStore
    from mlops_bot.deploy.plan import plan_from_config
    from mlops_bot.deploy.sources import DirectorySource
    from mlops_bot.deploy.targets.docker import DockerTarget

    now = [3_000_000.0]
    plan = plan_from_config(RolloutSection(
        steps=[RolloutStep(weight=30, hold=60)], interval=10, progress_deadline=600,
        gates=RolloutGates(min_requests=1000, max_p99_latency_ratio=None, max_prediction_drift=None)))
    target = DockerTarget(tmp_path / "state", "credit", client=docker_client)
    controller = RolloutController("credit", plan, target, DirectorySource(model_dirs["v1.0.0"].parent),
                                   StateStore(tmp_path / "state", "credit"), cache=tmp_path / "cache",
                                   clock=lambda: now[0])
    try:
        controller.start("v1.0.0")
        controller.start("v1.1.0")
        first = docker_client.containers.get("mlops-bot-credit")
        first.kill()
        now[0] += 10
        state = controller.tick()
        assert state.server_down_since == now[0]
        second = docker_client.containers.get("mlops-bot-credit")
        assert second.id != first.id and second.status == "running"
        serving = target.metrics()
        assert (serving.stable, serving.canary, serving.weight) == ("v1.0.0", "v1.1.0", 30)
        now[0] += 10
        state = controller.tick()
        assert state.server_down_since is None and state.step_started == now[0]
        assert any("model server back" in t.message for t in state.history)
    finally:
        target.stop()
