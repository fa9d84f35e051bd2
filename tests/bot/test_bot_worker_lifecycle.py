"""`bot serve`'s worker process never outlives it: SIGKILL the server (no handler runs, nothing is
cleaned up) and its `bot work` child goes too, for the first worker (started by the server's main
thread) and for one the supervisor thread restarted (the kernel's parent-death signal is tied to
the thread that forked the child). Real processes, a real kill -9."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import pytest
from bot_testkit import BotProcess, World, children, wait_for

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
