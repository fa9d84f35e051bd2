"""A rollout survives its model server: the real `mlops-bot serve` process (local target) is killed
with SIGKILL mid-step; the controller re-creates it, serves the step's routing again and resumes
the step with fresh baselines and a fresh hold. A server that cannot be brought back (the canary's
model files are gone) ends in an abort to stable once the progress deadline has passed."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from mlops_bot.config import RolloutGates, RolloutSection, RolloutStep
from mlops_bot.deploy.controller import RolloutController, StateStore
from mlops_bot.deploy.plan import plan_from_config
from mlops_bot.deploy.routing import RoutingRequest, VersionRef
from mlops_bot.deploy.sources import DirectorySource
from mlops_bot.deploy.targets.local import LocalTarget
from mlops_bot.forge.local import LocalForge

GATES = RolloutGates(min_success_rate=0.95, max_p99_latency_ms=5000, max_p99_latency_ratio=None,
                     max_prediction_drift=None, min_requests=5)


class Clock:
    def __init__(self) -> None:
        self.now = 2_000_000.0

    def __call__(self) -> float:
        return self.now


def _dead(pid: int) -> bool:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def _kill(pid: int) -> None:
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 20
    while not _dead(pid):
        assert time.monotonic() < deadline, "the killed server did not go away"
        time.sleep(0.05)


def _children() -> set[int]:
    """Pids of this test process's live child processes (Linux /proc)."""
    me = str(os.getpid())
    pids = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError):
            if stat.read_text().rsplit(")", 1)[1].split()[1] == me:
                pids.add(int(stat.parent.name))
    return pids


def _send(target: LocalTarget, rows: list[dict[str, Any]], count: int) -> None:
    with httpx.Client(trust_env=False, timeout=30) as client:
        for i in range(count):
            response = client.post(f"{target.endpoint}/predict",
                                   json={"records": [rows[i % len(rows)]]})
            assert response.status_code == 200, response.text


@pytest.fixture
def setup(tmp_path: Path, model_dirs: dict[str, Path]) -> Any:
    models = tmp_path / "models"  # a private copy: a test deletes a version's files
    for version in ("v1.0.0", "v1.1.0"):
        shutil.copytree(model_dirs[version], models / version)
    plan = plan_from_config(RolloutSection(
        steps=[RolloutStep(weight=30, hold=60), RolloutStep(weight=60, hold=60)], gates=GATES,
        interval=10, progress_deadline=300))
    target = LocalTarget(tmp_path / "state", "credit", startup_timeout=180)
    forge = LocalForge(tmp_path / "forge", repo="acme/credit", actor="alice")
    clock = Clock()
    before = _children() - {target.pid}
    controller = RolloutController(
        "credit", plan, target, DirectorySource(models),
        StateStore(tmp_path / "state", "credit"), cache=tmp_path / "cache", forge=forge, clock=clock)
    yield controller, target, clock, forge
    target.stop()
    # Every server the target started, the re-created ones too (a recovery that fails to serve the
    # routing leaves the process it spawned behind): stopped by pid, like the target does.
    started = _children() - before
    for pid in started:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 20
    for pid in started:
        while not _dead(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if not _dead(pid):
            _kill(pid)


@pytest.mark.slow
def test_killed_server_is_recreated_and_the_step_resumes_with_a_fresh_hold(setup: Any,
                                                                           make_records: Any) -> None:
    controller, target, clock, forge = setup
    rows = make_records(20)
    controller.start("v1.0.0")
    state = controller.start("v1.1.0")
    assert (state.phase, state.weight, state.settling) == ("progressing", 30, False)
    _send(target, rows, 40)
    clock.now += 40  # 40 of the step's 60 s hold have passed
    controller.tick()
    old_pid = target.pid

    _kill(old_pid)
    clock.now += 10
    state = controller.tick()  # sees it dead, re-creates it
    assert state.server_down_since == clock.now and state.phase == "progressing"
    assert target.pid != old_pid and not _dead(target.pid)
    serving = target.metrics()
    assert (serving.stable, serving.canary, serving.weight) == ("v1.0.0", "v1.1.0", 30)

    clock.now += 10
    state = controller.tick()  # back: the step starts over
    assert state.server_down_since is None and state.step == 0 and state.step_started == clock.now
    assert state.canary_baseline is not None and state.canary_baseline.requests == 0
    assert any("model server back" in t.message for t in state.history)

    clock.now += 50  # the old hold would be over by now (40 + 10 + 10 + 50 > 60), the fresh one is not
    _send(target, rows, 40)
    assert controller.tick().step == 0
    clock.now += 15
    state = controller.tick()
    assert (state.step, state.weight) == (1, 60)
    for _ in range(10):
        _send(target, rows, 20)
        clock.now += 15
        state = controller.tick()
        if state.phase != "progressing":
            break
    assert state.phase == "promoted" and state.stable is not None and state.stable.version == "v1.1.0"
    deployment = forge.list_deployments("production")[0]
    texts = [s.description for s in forge.list_deployment_statuses(deployment.id)]
    assert any("model server back" in text for text in texts)


@pytest.mark.slow
def test_server_that_cannot_come_back_aborts_to_stable_after_the_deadline(setup: Any,
                                                                          make_records: Any) -> None:
    controller, target, clock, forge = setup
    controller.start("v1.0.0")
    state = controller.start("v1.1.0")
    assert state.canary is not None
    shutil.rmtree(state.canary.path)  # the re-created server cannot load the canary any more
    _kill(target.pid)
    clock.now += 10
    state = controller.tick()
    assert state.phase == "progressing" and state.server_down_since == clock.now
    clock.now += 200
    assert controller.tick().phase == "progressing"  # still trying, within the 300 s deadline
    clock.now += 120
    state = controller.tick()
    assert state.phase == "aborted" and "not back within the progress deadline" in state.reason
    serving = target.metrics()
    assert (serving.stable, serving.canary) == ("v1.0.0", None)
    _send(target, make_records(5), 5)  # stable answers
    deployment = forge.list_deployments("production")[0]
    assert forge.list_deployment_statuses(deployment.id)[0].state == "failure"


@pytest.mark.slow
def test_a_live_server_serving_other_versions_is_not_healthy(setup: Any) -> None:
    """Health is the server's own report of what it serves, not only that it answers: a server up
    with the wrong routing (e.g. re-created from a stale record) is neither alive nor ready."""
    controller, target, _clock, _forge = setup
    state = controller.start("v1.0.0")
    assert state.stable is not None
    stable = VersionRef(version="v1.0.0", path=state.stable.path)
    assert target.health(RoutingRequest(stable=stable)) == (True, True, "")
    wanted = RoutingRequest(stable=stable, canary=VersionRef(version="v1.1.0", path=state.stable.path),
                            weight=30)
    assert target.health(wanted) == (False, False, "model server serves v1.0.0/None, not v1.0.0/v1.1.0")
