"""Crash recovery of the real server process: a SIGKILL mid-queue loses no delivery, and every
command is carried out exactly once after the restart."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import httpx
import pytest
from bot_testkit import BotProcess, World, signed, wait_for

pytestmark = pytest.mark.slow


def send_commands(world: World, bot: BotProcess, count: int) -> list[int]:
    comment_ids = []
    with httpx.Client(timeout=10) as client:
        for i in range(count):
            payload = world.comment("/drift")  # /retrain has a cool-down per model
            body, headers = signed(payload, "issue_comment", delivery=f"delivery-{i}")
            response = client.post(f"{bot.url}/webhook", content=body, headers=headers)
            assert response.status_code == 202, response.text
            if i % 5 == 0:  # GitHub's "Redeliver" button: same delivery id
                again = client.post(f"{bot.url}/webhook", content=body, headers=headers)
                assert again.json()["status"] == "duplicate"
            comment_ids.append(payload["comment"]["id"])
    return comment_ids


def assert_exactly_once(world: World, comment_ids: list[int]) -> None:
    dispatched = [d for d in world.forge.dispatches() if d["event_type"] == "mlops-drift"]
    assert len(dispatched) == len(comment_ids)
    for comment_id in comment_ids:
        assert Counter(world.forge.reactions(comment_id)) == {"eyes": 1, "rocket": 1}, comment_id
    replies = Counter(c.body for c in world.forge.list_comments(world.pr) if c.user == "mlops-bot[bot]")
    assert sum(replies.values()) == len(comment_ids)


def test_jobs_queued_before_a_crash_are_processed_after_restart(world: World, tmp_path: Path) -> None:
    state = tmp_path / "bot-state"
    accepting = BotProcess(world, state, workers=0).start()  # accepts and queues, works on nothing
    try:
        comment_ids = send_commands(world, accepting, 8)
        assert accepting.depth() == 8
    finally:
        accepting.kill()
    assert world.forge.dispatches() == []
    restarted = BotProcess(world, state, workers=1).start()
    try:
        wait_for(lambda: restarted.depth() == 0, 60, "queue drained after restart")
    finally:
        restarted.kill()
    assert_exactly_once(world, comment_ids)


def test_kill_while_the_worker_is_busy_loses_and_repeats_nothing(world: World, tmp_path: Path) -> None:
    state = tmp_path / "bot-state"
    bot = BotProcess(world, state, workers=1).start()
    try:
        comment_ids = send_commands(world, bot, 10)
        wait_for(lambda: len(world.forge.dispatches()) >= 2, 30, "worker started")
    finally:
        bot.kill()
    assert len(world.forge.dispatches()) < 10, "worker finished before the kill; nothing was tested"
    restarted = BotProcess(world, state, workers=1).start()
    try:
        wait_for(lambda: restarted.depth() == 0, 60, "queue drained after restart")
    finally:
        restarted.kill()
    assert_exactly_once(world, comment_ids)
