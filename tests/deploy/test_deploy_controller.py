"""The rollout controller: steps, gates, abort paths, restart recovery and newer versions.

Real models in a real router (in-process target), the file-backed forge for deployment statuses
and control requests, and an injected clock so holds take no real time.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from mlops_bot.config import RolloutGates, RolloutSection, RolloutStep
from mlops_bot.deploy.control import parse_marker, request_action
from mlops_bot.deploy.controller import RolloutController, StateStore
from mlops_bot.deploy.model_input import frame_from_records
from mlops_bot.deploy.plan import plan_from_config
from mlops_bot.deploy.router import ModelRouter
from mlops_bot.deploy.sources import DirectorySource
from mlops_bot.deploy.targets.local import InProcessTarget
from mlops_bot.errors import ConfigError, MlopsError
from mlops_bot.forge.local import LocalForge
from mlops_bot.model_signature import SignatureMismatch


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


GATES = RolloutGates(min_success_rate=0.95, max_p99_latency_ms=2000, max_p99_latency_ratio=None,
                     max_prediction_drift=0.3, min_requests=20)


def section(**changes: Any) -> RolloutSection:
    base: dict[str, Any] = {
        "steps": [RolloutStep(weight=20, hold=60), RolloutStep(weight=50, hold=60)],
        "gates": GATES, "interval": 10, "progress_deadline": 3600,
    }
    base.update(changes)
    return RolloutSection(**base)


class World:
    """One model's serving world: router, forge, state, and a controller factory."""

    def __init__(self, tmp: Path, model_dirs: dict[str, Path], make_records: Any, **plan: Any) -> None:
        self.router = ModelRouter("credit", seed=7)
        self.target = InProcessTarget(self.router)
        self.forge = LocalForge(tmp / "forge", repo="acme/credit", actor="alice")
        self.clock = Clock()
        self.tmp = tmp
        self.source = DirectorySource(next(iter(model_dirs.values())).parent)
        self.plan = plan_from_config(section(**plan))
        self.rows = make_records(30)

    def controller(self, registry: Any = None, watch_stage: str | None = None) -> RolloutController:
        return RolloutController(
            "credit", self.plan, self.target, self.source, StateStore(self.tmp / "state", "credit"),
            cache=self.tmp / "cache", forge=self.forge, registry=registry, watch_stage=watch_stage,
            clock=self.clock, sleep=self.clock.sleep,
        )

    def traffic(self, count: int) -> None:
        for i in range(count):
            self.router.infer(frame_from_records, {"records": [self.rows[i % len(self.rows)]]}, None)

    def statuses(self) -> list[tuple[str, str]]:
        out = []
        for deployment in reversed(self.forge.list_deployments("production")):
            for status in reversed(self.forge.list_deployment_statuses(deployment.id)):
                out.append((deployment.payload["version"], status.state))
        return out


@pytest.fixture
def world(tmp_path: Path, model_dirs: dict[str, Path], make_records: Any) -> World:
    return World(tmp_path, model_dirs, make_records)


def drive(world: World, controller: RolloutController, ticks: int, per_tick: int = 25) -> str:
    state = controller.state()
    for _ in range(ticks):
        world.traffic(per_tick)
        world.clock.sleep(world.plan.interval)
        state = controller.tick()
        if state.phase in ("promoted", "aborted", "rolled_back", "superseded"):
            break
    return state.phase


def test_plan_rejects_decreasing_weights() -> None:
    with pytest.raises(ConfigError, match=r"rollout.steps.1.weight"):
        plan_from_config(section(steps=[RolloutStep(weight=50), RolloutStep(weight=10)]))
    assert plan_from_config(section()).describe() == "20%, hold 60s -> 50%, hold 60s -> 100%"


def test_full_rollout_promotes(world: World) -> None:
    ctl = world.controller()
    assert ctl.start("v1.0.0").phase == "promoted"  # first deploy: straight to stable
    state = ctl.start("v1.1.0")
    assert (state.phase, state.weight, world.router.snapshot().canary) == ("progressing", 20, "v1.1.0")
    assert drive(world, ctl, 30) == "promoted"
    final = ctl.state()
    assert final.stable is not None and final.stable.version == "v1.1.0" and final.previous_stable == "v1.0.0"
    snap = world.router.snapshot()
    assert (snap.stable, snap.canary) == ("v1.1.0", None)
    weights = [t.message for t in final.history if "step" in t.message]
    assert any("step 2/2: 50%" in m for m in weights)
    statuses = world.statuses()
    assert ("v1.1.0", "queued") in statuses and statuses[-1] == ("v1.1.0", "success")
    assert ("v1.0.0", "inactive") in statuses  # the replaced deployment is retired
    assert all(len(s.description) <= 140 for d in world.forge.list_deployments()
               for s in world.forge.list_deployment_statuses(d.id))


def test_failed_gate_aborts_immediately(world: World) -> None:
    ctl = world.controller()
    ctl.start("v1.0.0")
    ctl.start("v9.0.0-broken")
    assert drive(world, ctl, 5) == "aborted"
    state = ctl.state()
    assert "gate failed: success rate" in state.reason
    snap = world.router.snapshot()
    assert (snap.stable, snap.canary, snap.weight) == ("v1.0.0", None, 0)
    assert world.statuses()[-1] == ("v9.0.0-broken", "failure")
    # No automatic retry: further ticks change nothing.
    assert drive(world, ctl, 3) == "aborted"


def test_a_version_with_other_inputs_is_refused_before_the_rollout_starts(world: World) -> None:
    """v2.0.0-no-region takes income and age only: one clear error, and nothing changed (no
    deployment, no state, stable still alone), whether it would be a canary or a rollback."""
    ctl = world.controller()
    ctl.start("v1.0.0")
    before = ctl.state()
    deployments = len(world.forge.list_deployments())
    with pytest.raises(SignatureMismatch) as refused:
        ctl.start("v2.0.0-no-region")
    assert str(refused.value) == (
        "credit v2.0.0-no-region takes other inputs than the stable version v1.0.0, so it cannot be rolled "
        "out in its place: only stable v1.0.0 takes region. Deploy it under another model name, or keep "
        "its inputs")
    assert ctl.state() == before and len(world.forge.list_deployments()) == deployments
    snap = world.router.snapshot()
    assert (snap.stable, snap.canary) == ("v1.0.0", None)
    # The same inputs in a failing model are not a mismatch: that canary is rolled out (and gated).
    assert ctl.start("v9.0.0-broken").phase == "progressing"


def test_prediction_drift_aborts(world: World) -> None:
    ctl = world.controller()
    ctl.start("v1.0.0")
    ctl.start("v9.1.0-constant")
    assert drive(world, ctl, 10) == "aborted"
    assert "prediction drift" in ctl.state().reason


def test_abort_and_rollback_requests_from_the_bot(world: World) -> None:
    ctl = world.controller()
    ctl.start("v1.0.0")
    ctl.start("v1.1.0")
    drive(world, ctl, 2)
    request_action(world.forge, "production", "abort", "bob")
    assert ctl.tick().phase == "aborted"
    assert ctl.state().reason.startswith("aborted by @bob")
    assert world.router.snapshot().canary is None
    # A second rollout, rolled back by request.
    ctl.start("v1.1.0")
    request_action(world.forge, "production", "rollback", "carol")
    assert ctl.tick().phase == "rolled_back"
    assert world.router.snapshot().stable == "v1.0.0"
    with pytest.raises(MlopsError, match="no rollout is running"):
        request_action(world.forge, "production", "abort", "bob")


def test_manual_hold_waits_for_promote(tmp_path: Path, model_dirs: dict[str, Path],
                                       make_records: Any) -> None:
    world = World(tmp_path, model_dirs, make_records,
                  steps=[RolloutStep(weight=30, hold="manual")])
    ctl = world.controller()
    ctl.start("v1.0.0")
    ctl.start("v1.1.0")
    assert drive(world, ctl, 4) == "progressing"
    world.clock.sleep(36_000)  # hours pass; it waits for a person
    assert drive(world, ctl, 2, per_tick=0) == "progressing"
    assert any("waiting for /promote" in t.message for t in ctl.state().history)
    request_action(world.forge, "production", "promote", "alice")
    assert ctl.tick().phase == "promoted"


def test_inconclusive_pauses_then_promote_resumes(tmp_path: Path, model_dirs: dict[str, Path],
                                                  make_records: Any) -> None:
    world = World(tmp_path, model_dirs, make_records, steps=[RolloutStep(weight=10, hold=20)])
    ctl = world.controller()
    ctl.start("v1.0.0")
    ctl.start("v1.1.0")
    assert drive(world, ctl, 5, per_tick=0) == "paused"
    world.clock.sleep(36_000)
    assert drive(world, ctl, 2, per_tick=0) == "paused"  # paused: no progress deadline either
    # A deploy job given --timeout says where it stands and what the pause waits for.
    with pytest.raises(MlopsError, match=r"^rollout of v1\.1\.0 still paused after 300s: paused, "
                                         r"inconclusive \(.*\); /promote to go on or /abort$"):
        ctl.run("v1.1.0", timeout=300)
    request_action(world.forge, "production", "promote", "alice")
    assert ctl.tick().phase == "promoted"


def test_inconclusive_can_abort(tmp_path: Path, model_dirs: dict[str, Path], make_records: Any) -> None:
    world = World(tmp_path, model_dirs, make_records, steps=[RolloutStep(weight=10, hold=20)],
                  on_inconclusive="abort")
    ctl = world.controller()
    ctl.start("v1.0.0")
    ctl.start("v1.1.0")
    assert drive(world, ctl, 5, per_tick=0) == "aborted"
    assert ctl.state().reason.startswith("inconclusive")


def test_progress_deadline_aborts(tmp_path: Path, model_dirs: dict[str, Path], make_records: Any) -> None:
    world = World(tmp_path, model_dirs, make_records, steps=[RolloutStep(weight=10, hold=600)],
                  progress_deadline=120)
    ctl = world.controller()
    ctl.start("v1.0.0")
    ctl.start("v1.1.0")
    assert drive(world, ctl, 20) == "aborted"
    assert "progress deadline" in ctl.state().reason


def test_state_survives_a_controller_restart(world: World) -> None:
    first = world.controller()
    first.start("v1.0.0")
    first.start("v1.1.0")
    drive(world, first, 7)  # past step 1 into step 2
    assert first.state().step == 1
    del first
    second = world.controller()  # a new process: same state file, same server
    state = second.start("v1.1.0")
    assert (state.phase, state.step, state.weight) == ("progressing", 1, 50)
    assert drive(world, second, 20) == "promoted"
    assert sum(1 for t in second.state().history if t.message.startswith("gates passed; canary")) == 1


def test_newer_version_restarts_the_steps(world: World, model_dirs: dict[str, Path]) -> None:
    ctl = world.controller()
    ctl.start("v1.0.0")
    (model_dirs["v1.0.0"].parent / "v1.2.0").symlink_to(model_dirs["v1.1.0"], target_is_directory=True)
    ctl.start("v1.1.0")
    drive(world, ctl, 7)
    assert ctl.state().step == 1
    other = world.controller()  # e.g. the deploy workflow run for the newer merge
    state = other.start("v1.2.0")
    assert (state.step, state.weight, state.canary and state.canary.version) == (0, 20, "v1.2.0")
    assert ctl.tick().phase == "superseded"  # the old controller stands down
    assert ("v1.1.0", "inactive") in world.statuses()
    assert world.router.snapshot().canary == "v1.2.0"
    assert drive(world, other, 30) == "promoted"


def test_older_version_is_a_rollback_that_skips_steps(world: World) -> None:
    ctl = world.controller()
    ctl.start("v1.0.0")
    ctl.start("v1.1.0")
    assert drive(world, ctl, 30) == "promoted"
    state = ctl.start("v1.0.0")
    assert state.phase == "rolled_back" and state.stable is not None and state.stable.version == "v1.0.0"
    assert world.router.snapshot().stable == "v1.0.0"


def test_control_markers() -> None:
    assert parse_marker("mlops-bot:abort by @alice") == ("abort", "alice")
    assert parse_marker("mlops-bot:delete by @alice") is None
    assert parse_marker("deploying v1") is None


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout


@pytest.mark.slow
def test_registry_records_promotion_and_abort(world: World) -> None:
    from mlops_bot.registry.registry import Registry

    repo = world.tmp / "repo"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "main")
    origin = world.tmp / "origin.git"
    _git(world.tmp, "init", "-q", "--bare", str(origin))
    _git(repo, "remote", "add", "origin", str(origin))
    registry = Registry(repo)

    def register(version: str) -> None:
        _git(repo, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "--allow-empty",
             "-m", version)
        registry.register("credit", version=version, push=True)

    for version in ("v1.0.0", "v1.1.0"):
        register(version)
    ctl = world.controller(registry=registry)
    ctl.start("v1.0.0")
    assert registry.stage_version("credit", "production") == "v1.0.0"
    ctl.start("v1.1.0")
    assert drive(world, ctl, 30) == "promoted"
    assert registry.stage_version("credit", "production") == "v1.1.0"
    # The bot assigns the stage before the deploy; an aborted canary moves it back.
    (world.source.root / "v1.2.5").symlink_to(world.source.root / "v9.0.0-broken", target_is_directory=True)
    register("v1.2.5")
    registry.assign("credit", "production", version="v1.2.5", push=True)
    ctl.start("v1.2.5")
    assert drive(world, ctl, 5) == "aborted"
    assert registry.stage_version("credit", "production") == "v1.1.0"
    assert len([e for e in registry.history("credit") if e.stage == "production"]) >= 4
    # Every stage move the controller made reached the remote, not only the runner's clone.
    pushed = _git(origin, "tag", "--list", "credit#production#*").split()
    local = _git(repo, "tag", "--list", "credit#production#*").split()
    assert sorted(pushed) == sorted(local) and len(pushed) >= 4
