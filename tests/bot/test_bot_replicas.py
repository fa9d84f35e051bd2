"""Two bot replicas on one PostgreSQL queue (a real server, `postgres` fixture): deliveries spread
over both, one replica killed with SIGKILL mid-run, and still every command carried out exactly
once: the survivor claims the dead replica's orphaned jobs (their advisory locks died with its
connections) and resumes them from the shared step journal."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
from bot_testkit import BotProcess, World, signed, wait_for

pytestmark = pytest.mark.slow


def test_two_replicas_share_one_queue_and_survive_a_kill(world: World, tmp_path: Path, postgres: Any) -> None:
    env = {"MLOPS_BOT_DATABASE_URL": postgres.database()}
    first = BotProcess(world, tmp_path / "a", workers=2, env=env).start()
    second = BotProcess(world, tmp_path / "b", workers=2, env=env).start()
    comment_ids: list[int] = []
    try:
        with httpx.Client(timeout=10) as client:
            for i in range(24):
                payload = world.comment("/drift")
                body, headers = signed(payload, "issue_comment", delivery=f"r-{i}")
                target = (first, second)[i % 2]
                assert client.post(f"{target.url}/webhook", content=body, headers=headers).status_code == 202
                # the same delivery at the other replica: stored once, whoever got it first
                other = (second, first)[i % 2]
                again = client.post(f"{other.url}/webhook", content=body, headers=headers)
                assert (again.status_code, again.json()["status"]) == (200, "duplicate")
                comment_ids.append(payload["comment"]["id"])
        wait_for(lambda: len(world.forge.dispatches()) >= 3, 60, "both replicas working")
        first.kill()
        assert len(world.forge.dispatches()) < 24, "all done before the kill: nothing was tested"
        wait_for(lambda: second.depth() == 0, 120, "the survivor drained the shared queue")
    finally:
        first.kill()
        second.kill()
    dispatched = [d for d in world.forge.dispatches() if d["event_type"] == "mlops-drift"]
    sent = Counter(d["client_payload"]["delivery"] for d in dispatched)
    assert sent == Counter(f"r-{i}" for i in range(24))
    for comment_id in comment_ids:
        assert Counter(world.forge.reactions(comment_id)) == {"eyes": 1, "rocket": 1}, comment_id
    replies = [c for c in world.forge.list_comments(world.pr) if c.user == "mlops-bot[bot]"]
    assert len(replies) == 24
