"""`bot serve`'s worker process never outlives it: SIGKILL the server (no handler runs, nothing is
cleaned up) and its `bot work` child goes too, for the first worker (started by the server's main
thread) and for one the supervisor thread restarted (the kernel's parent-death signal is tied to
the thread that forked the child). Real processes, a real kill -9. The worker also runs in the
lowest CPU class (SCHED_IDLE, every thread), the answering server in the normal one, and still
carries jobs out."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import httpx
import pytest
from bot_testkit import BotProcess, World, children, signed, wait_for

from mlops_bot.bot.worker import lower_priority
from mlops_bot.errors import MlopsError

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie is dead, waiting for whoever adopted it to reap it


def _working(pid: int) -> bool:
    """Past its start (where a worker whose parent is already gone exits by itself): its worker
    threads run."""
    try:
        return len(list(Path(f"/proc/{pid}/task").iterdir())) > 1
    except OSError:
        return False


def test_the_worker_dies_with_a_sigkilled_server_also_after_a_restart(world: World, tmp_path: Path) -> None:
    bot = BotProcess(world, tmp_path / "state").start()
    try:
        assert bot.proc is not None
        server = bot.proc.pid
        wait_for(lambda: len(children(server)) == 1, 20, "the worker process")
        first = children(server)[0]
        os.kill(first, signal.SIGKILL)  # the supervisor thread starts the next one after its backoff
        wait_for(lambda: [p for p in children(server) if p != first], 30, "a restarted worker")
        (second,) = [p for p in children(server) if p != first]
        wait_for(lambda: _working(second), 30, "the restarted worker to run")
        os.kill(server, signal.SIGKILL)
        bot.proc.wait(10)
        wait_for(lambda: not _alive(second), 20, "the restarted worker to die with its server")
    finally:
        bot.kill()


def _policies(pid: int) -> set[int]:
    """The scheduling policy of each thread of `pid` (the kernel's, per thread)."""
    return {os.sched_getscheduler(int(task.name)) for task in Path(f"/proc/{pid}/task").iterdir()}


def _nice(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[16])


@pytest.mark.parametrize(("setting", "policy", "nice"), [
    (None, "SCHED_IDLE", 19), ("batch", "SCHED_BATCH", 19)])
def test_the_worker_runs_in_the_cpu_class_asked_for_and_still_works(
        world: World, tmp_path: Path, setting: str | None, policy: str, nice: int) -> None:
    env = {"MLOPS_BOT_WORKER_PRIORITY": setting} if setting else {}
    bot = BotProcess(world, tmp_path / "state", env=env).start()
    try:
        assert bot.proc is not None
        server = bot.proc.pid
        wait_for(lambda: len(children(server)) == 1 and _working(children(server)[0]), 30, "the worker")
        (worker,) = children(server)
        assert _policies(worker) == {getattr(os, policy)}
        assert _nice(worker) == _nice(server) + nice
        assert _policies(server) == {os.SCHED_OTHER}  # the answering process keeps its class
        body, headers = signed(world.comment("/drift"), "issue_comment", delivery="priority-1")
        assert httpx.post(f"{bot.url}/webhook", content=body, headers=headers, timeout=10).status_code == 202
        wait_for(lambda: bot.depth() == 0, 60, "the job carried out by the low-priority worker")
    finally:
        bot.kill()
    assert [d["event_type"] for d in world.forge.dispatches()] == ["mlops-drift"]


def test_an_unknown_worker_priority_is_refused_naming_the_setting() -> None:
    with pytest.raises(MlopsError, match=r"MLOPS_BOT_WORKER_PRIORITY.*'lowest'.*idle, batch, normal"):
        lower_priority("lowest")
